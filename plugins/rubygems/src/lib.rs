//! The RubyGems format: `.gem` files, `gem push`/`gem yank`, and the indexes `gem` and `bundle`
//! install from (the compact index and the Marshal indexes).
//!
//! The format logic is plain Rust that unit-tests natively; `sluice_plugin_sdk::export!` turns
//! its [`Plugin`] impl into the contract's `format` export when built for `wasm32`.

pub mod errors;
pub mod index;
pub mod marshal;
pub mod parse;
pub mod platform;
pub mod protocol;
pub mod proxy;
pub mod spec;
pub mod version;

use sluice_plugin_sdk::io::ReadAt;
use sluice_plugin_sdk::{
    Change, Error, Extraction, ExtractionStep, FormatInfo, Limits, Metadata, Outcome, Plugin, PublishMode, Registry,
    Request, Response, Trigger,
};

pub fn info() -> FormatInfo {
    FormatInfo {
        name: "rubygems".into(),
        display_name: "RubyGems".into(),
        case_insensitive_names: false,
        publish: PublishMode::Upload,
        credential_headers: Vec::new(),
        install_hint: "gem install {name} -v {version} --source {url}".into(),
    }
}

/// Reads and checks a `.gem`. The host stores it under `file_name`, which must be the name
/// RubyGems gives this gem (`NAME-VERSION[-PLATFORM].gem`): clients download it by that name.
pub fn parse(file_name: &str, file: impl ReadAt, limits: &Limits) -> Result<Metadata, Error> {
    let parse::GemContents { spec, readme } =
        parse::read_gem_within(file, parse::Check::Full, limits.max_unpacked_bytes)?;
    if file_name != spec.file_name() {
        return Err(Error::invalid(format!(
            "the file is named {file_name:?} but its gemspec makes it {:?}",
            spec.file_name()
        )));
    }
    let mut meta = spec.to_metadata();
    meta.readme = readme;
    Ok(meta)
}

/// A gem is a tar holding `data.tar.gz`: unpack the outer tar to scratch, then the files.
pub fn extraction() -> Extraction {
    let step =
        |argv: &[&str]| ExtractionStep { tool: "tar".into(), argv: argv.iter().map(|a| a.to_string()).collect() };
    Extraction {
        media_type: "application/x-tar".into(),
        steps: vec![
            step(&["-xf", "{archive}", "-C", "{scratch}"]),
            step(&["-xzf", "{scratch}/data.tar.gz", "-C", "{dest}"]),
        ],
        image: None,
    }
}

pub fn trigger(meta: &Metadata) -> Trigger {
    let platform = if meta.qualifier.is_empty() { spec::RUBY_PLATFORM } else { meta.qualifier.as_str() };
    Trigger {
        event: "package_push".into(),
        variables: vec![
            ("GEM_NAME".into(), meta.name.clone()),
            ("GEM_VERSION".into(), meta.version.clone()),
            ("GEM_PLATFORM".into(), platform.into()),
        ],
        jobs: Vec::new(),
    }
}

/// The RubyGems plugin, exported through the SDK.
pub struct RubyGems;

impl Plugin for RubyGems {
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
    fn extend(registry: &impl Registry, req: &Request, changes: &[Change]) -> Result<Option<Vec<u8>>, Error> {
        protocol::extend(registry, req, changes)
    }
}

sluice_plugin_sdk::export!(RubyGems);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::tests::HELLO_GEM;

    #[test]
    fn parse_checks_the_stored_name() {
        let meta = parse("sluice-hello-1.2.0.gem", HELLO_GEM, &Limits::TEST).unwrap();
        assert_eq!((meta.name.as_str(), meta.version.as_str(), meta.qualifier.as_str()), ("sluice-hello", "1.2.0", ""));
        assert_eq!(meta.summary.as_deref(), Some("Says hello"));
        assert_eq!(meta.authors, ["Ada", "Bob"]);
        let err = parse("upload.gem", HELLO_GEM, &Limits::TEST).unwrap_err();
        assert!(err.message.contains("sluice-hello-1.2.0.gem"), "{}", err.message);
    }

    #[test]
    fn trigger_and_extraction() {
        let meta = parse("sluice-hello-1.2.0.gem", HELLO_GEM, &Limits::TEST).unwrap();
        let t = trigger(&meta);
        assert_eq!(t.event, "package_push");
        assert!(t.variables.contains(&("GEM_PLATFORM".to_string(), "ruby".to_string())));
        let e = extraction();
        assert_eq!(e.steps[1].argv, ["-xzf", "{scratch}/data.tar.gz", "-C", "{dest}"]);
        assert_eq!(info().name, "rubygems");
    }
}
