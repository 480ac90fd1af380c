//! The npm format of Sluice: `.tgz` packages with a `package.json` in their one top folder
//! (`package/` as npm packs them), served over the npm registry protocol that npm 11 speaks.
//!
//! The format logic is plain Rust that unit-tests natively; `sluice_plugin_sdk::export!` turns
//! its [`Plugin`] impl into the contract's `format` export when built for `wasm32`.

pub mod errors;
pub mod layout;
pub mod name;
pub mod packument;
pub mod parse;
pub mod protocol;
pub mod proxy;
pub mod search;
pub mod tokens;

use sluice_plugin_sdk::io::ReadAt;
use sluice_plugin_sdk::{
    Change, Error, Extraction, ExtractionStep, FormatInfo, Limits, Metadata, Outcome, Parts, Plugin, PublishMode,
    Registry, Request, Response, Trigger,
};

pub fn info() -> FormatInfo {
    FormatInfo {
        name: "npm".into(),
        display_name: "npm".into(),
        case_insensitive_names: false,
        publish: PublishMode::Upload,
        credential_headers: Vec::new(),
        install_hint: "npm install --registry {url}/ {name}@{version}".into(),
    }
}

/// Runners unpack the tarball's top folder, whatever it is called, straight into their destination,
/// as npm does: `parse` checked every entry where this puts it.
pub fn extraction_for(_meta: &Metadata) -> Extraction {
    Extraction {
        media_type: "application/gzip".into(),
        steps: vec![ExtractionStep {
            tool: "tar".into(),
            argv: ["-xzf", "{archive}", "-C", "{dest}", "--strip-components=1"].map(String::from).to_vec(),
        }],
        image: None,
    }
}

pub fn trigger_for(meta: &Metadata) -> Trigger {
    Trigger {
        event: "package_push".into(),
        variables: vec![
            ("NPM_PACKAGE_NAME".into(), meta.name.clone()),
            ("NPM_PACKAGE_VERSION".into(), meta.version.clone()),
        ],
        jobs: Vec::new(),
    }
}

/// The npm plugin, exported through the SDK.
pub struct Npm;

impl Plugin for Npm {
    fn info() -> FormatInfo {
        info()
    }
    fn parse(file_name: &str, file: impl ReadAt, limits: &Limits) -> Result<Metadata, Error> {
        parse::parse(file_name, file, limits)
    }
    fn extraction_for(meta: &Metadata) -> Extraction {
        extraction_for(meta)
    }
    fn trigger_for(meta: &Metadata) -> Trigger {
        trigger_for(meta)
    }
    fn handle(registry: &impl Registry, req: &Request, body: impl ReadAt, limits: &Limits) -> Result<Outcome, Error> {
        protocol::handle(registry, req, body, limits)
    }
    fn render_error(err: &Error) -> Response {
        errors::render(err.clone())
    }
    fn render_parts(registry: &impl Registry, req: &Request, changes: &[Change]) -> Result<Option<Parts>, Error> {
        protocol::packument_parts(registry, req, changes)
    }
}

sluice_plugin_sdk::export!(Npm);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_pushes() {
        let meta = Metadata::new("@scope/demo", "1.0.0");
        let trigger = trigger_for(&meta);
        assert_eq!(trigger.event, "package_push");
        assert_eq!(trigger.variables[0], ("NPM_PACKAGE_NAME".to_string(), "@scope/demo".to_string()));
        let steps = extraction_for(&meta).steps;
        assert_eq!(steps[0].argv.join(" "), "-xzf {archive} -C {dest} --strip-components=1");
    }
}
