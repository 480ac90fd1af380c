//! The NuGet format plugin: reads `.nupkg` files and speaks the NuGet V3 protocol (plus the V2
//! search feed `nuget list` needs), so that nuget.exe and dotnet can push, restore, search and
//! unlist packages.
//!
//! Everything here is plain Rust that unit-tests natively; `component` (wasm32 only) exports it
//! through the plugin contract.

pub mod multipart;
pub mod nupkg;
pub mod protocol;
pub mod registration;
pub mod search;
pub mod v2feed;
pub mod version;

#[cfg(target_arch = "wasm32")]
mod component;

use sluice_plugin_sdk::{Extraction, ExtractionStep, FormatInfo, Metadata, PublishMode, Trigger};

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
