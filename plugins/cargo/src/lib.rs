//! The Cargo format: `.crate` files, served to cargo as an alternative registry over the sparse
//! index protocol (RFC 2789) and the registry web API (`cargo publish`, `yank`, `search`,
//! `owner --list`).
//!
//! The format logic is plain Rust that unit-tests natively; `sluice_plugin_sdk::export!` turns
//! its [`Plugin`] impl into the contract's `format` export when built for `wasm32`.

pub mod errors;
pub mod index;
pub mod manifest;
pub mod parse;
pub mod protocol;
pub mod publish;

use sluice_plugin_sdk::io::ReadAt;
use sluice_plugin_sdk::{
    Error, Extraction, ExtractionStep, FormatInfo, Limits, Metadata, Outcome, Plugin, PublishMode, Registry, Request,
    Response, Trigger,
};

pub fn info() -> FormatInfo {
    FormatInfo {
        name: "cargo".into(),
        display_name: "Cargo".into(),
        // crates.io compares names without case; the index path is the lower-cased name.
        case_insensitive_names: true,
        // cargo sends its token as the whole `Authorization` header, which the host reads.
        credential_headers: Vec::new(),
        publish: PublishMode::Upload,
        install_hint: "cargo add {name}@{version} --registry NAME  # [registries.NAME] index = \"sparse+{url}/index/\""
            .into(),
    }
}

/// Reads and checks a `.crate`; the host stores it under `file_name`, which must be the name
/// cargo downloads it by (`NAME-VERSION.crate`).
pub fn parse(file_name: &str, file: impl ReadAt, limits: &Limits) -> Result<Metadata, Error> {
    let (manifest, readme) = parse::read_crate_within(file, parse::Check::Full, limits.max_unpacked_bytes)?;
    if file_name != manifest.file_name() {
        return Err(Error::invalid(format!(
            "the file is named {file_name:?} but its Cargo.toml makes it {:?}",
            manifest.file_name()
        )));
    }
    let mut meta = manifest.to_metadata();
    meta.readme = readme;
    Ok(meta)
}

/// A `.crate` is a gzipped tar with everything under `NAME-VERSION/`: unpack it so that
/// `Cargo.toml` is at the top of the job's `pkg/`.
pub fn extraction() -> Extraction {
    Extraction {
        media_type: "application/gzip".into(),
        steps: vec![ExtractionStep {
            tool: "tar".into(),
            argv: ["-xzf", "{archive}", "-C", "{dest}", "--strip-components=1"].map(String::from).to_vec(),
        }],
        image: None,
    }
}

pub fn trigger(meta: &Metadata) -> Trigger {
    Trigger {
        event: "package_push".into(),
        variables: vec![("CRATE_NAME".into(), meta.name.clone()), ("CRATE_VERSION".into(), meta.version.clone())],
        jobs: Vec::new(),
    }
}

/// The Cargo plugin, exported through the SDK.
pub struct Cargo;

impl Plugin for Cargo {
    fn info() -> FormatInfo {
        info()
    }
    fn parse(file_name: &str, file: impl ReadAt, limits: &Limits) -> Result<Metadata, Error> {
        parse(file_name, file, limits)
    }
    fn extraction_for(_meta: &Metadata) -> Extraction {
        extraction()
    }
    fn trigger_for(meta: &Metadata) -> Trigger {
        trigger(meta)
    }
    fn handle(registry: &impl Registry, req: &Request, body: impl ReadAt, _limits: &Limits) -> Result<Outcome, Error> {
        protocol::handle(registry, req, body)
    }
    fn render_error(err: &Error) -> Response {
        protocol::render_error(err)
    }
}

sluice_plugin_sdk::export!(Cargo);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::tests::app_crate;

    #[test]
    fn parse_checks_the_stored_name() {
        let meta = parse("sluice-app-0.2.0.crate", app_crate(), &Limits::TEST).unwrap();
        assert_eq!((meta.name.as_str(), meta.version.as_str()), ("sluice-app", "0.2.0"));
        assert_eq!(meta.license.as_deref(), Some("MIT OR Apache-2.0"));
        let err = parse("upload.crate", app_crate(), &Limits::TEST).unwrap_err();
        assert!(err.message.contains("sluice-app-0.2.0.crate"), "{}", err.message);
    }

    #[test]
    fn trigger_and_extraction() {
        let meta = parse("sluice-app-0.2.0.crate", app_crate(), &Limits::TEST).unwrap();
        assert_eq!(trigger(&meta).variables[0], ("CRATE_NAME".to_string(), "sluice-app".to_string()));
        assert_eq!(extraction().steps[0].argv.join(" "), "-xzf {archive} -C {dest} --strip-components=1");
        assert_eq!(info().name, "cargo");
    }
}
