//! The NuGet format plugin: reads `.nupkg` files and speaks the NuGet V3 protocol (plus the V2
//! search feed `nuget list` needs), so that nuget.exe and dotnet can push, restore, search and
//! unlist packages.
//!
//! Everything here is plain Rust that unit-tests natively; `sluice_plugin_sdk::export!` turns
//! its [`Plugin`] impl into the contract's `format` export when built for `wasm32`.

pub mod errors;
pub mod multipart;
pub mod parse;
pub mod protocol;
pub mod proxy;
pub mod registration;
pub mod search;
pub mod v2feed;
pub mod version;

use sluice_plugin_sdk::io::ReadAt;
use sluice_plugin_sdk::{
    Error, Extraction, ExtractionStep, FormatInfo, Limits, Metadata, Outcome, Plugin, PublishMode, Registry, Request,
    Response, Trigger,
};

pub fn info() -> FormatInfo {
    FormatInfo {
        name: "nuget".into(),
        display_name: "NuGet".into(),
        case_insensitive_names: true,
        publish: PublishMode::Upload,
        credential_headers: vec!["x-nuget-apikey".into()],
        install_hint: "nuget install {name} -Version {version} -Source {url}/v3/index.json".into(),
    }
}

/// A `.nupkg` is a zip: runners unpack it with `unzip`.
pub fn extraction() -> Extraction {
    Extraction {
        media_type: "application/zip".into(),
        steps: vec![ExtractionStep {
            tool: "unzip".into(),
            argv: ["-q", "-o", "{archive}", "-d", "{dest}"].map(String::from).to_vec(),
        }],
        image: None,
    }
}

pub fn trigger(meta: &Metadata) -> Trigger {
    Trigger {
        event: "package_push".into(),
        variables: vec![
            ("NUGET_PACKAGE_ID".into(), meta.name.clone()),
            ("NUGET_PACKAGE_VERSION".into(), meta.version.clone()),
        ],
        jobs: Vec::new(),
    }
}

/// The NuGet plugin, exported through the SDK.
pub struct NuGet;

impl Plugin for NuGet {
    fn info() -> FormatInfo {
        info()
    }
    fn parse(_file_name: &str, file: impl ReadAt, limits: &Limits) -> Result<Metadata, Error> {
        parse::parse(file, limits)
    }
    fn extraction_for(_meta: &Metadata) -> Extraction {
        extraction()
    }
    fn trigger_for(meta: &Metadata) -> Trigger {
        trigger(meta)
    }
    fn handle(registry: &impl Registry, req: &Request, body: impl ReadAt, limits: &Limits) -> Result<Outcome, Error> {
        protocol::handle(registry, req, &body, limits)
    }
    fn render_error(err: &Error) -> Response {
        protocol::render_error(err)
    }
}

sluice_plugin_sdk::export!(NuGet);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_format() {
        let info = info();
        assert_eq!(info.name, "nuget");
        assert!(info.case_insensitive_names);
        assert_eq!(extraction().steps[0].argv, ["-q", "-o", "{archive}", "-d", "{dest}"]);
        let trigger = trigger(&Metadata::new("Sluice.Demo", "1.0.0"));
        assert_eq!(trigger.event, "package_push");
        assert_eq!(trigger.variables[0], ("NUGET_PACKAGE_ID".to_string(), "Sluice.Demo".to_string()));
        assert_eq!(trigger.variables[1], ("NUGET_PACKAGE_VERSION".to_string(), "1.0.0".to_string()));
    }
}
