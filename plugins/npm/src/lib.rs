//! The npm format of Sluice: `.tgz` packages with a `package.json` in their one top folder
//! (`package/` as npm packs them), served over the npm registry protocol that npm 11 speaks.
//!
//! The format logic is plain Rust that unit-tests natively; `component` exports it as the
//! `format` interface when built for `wasm32`.

pub mod error;
pub mod layout;
pub mod name;
pub mod packument;
pub mod protocol;
pub mod tarball;

#[cfg(target_arch = "wasm32")]
mod component;

use sluice_plugin_sdk::{Extraction, ExtractionStep, FormatInfo, Metadata, PublishMode, Trigger};

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
