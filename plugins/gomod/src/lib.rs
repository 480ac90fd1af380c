//! Go modules for Sluice: versions come from git tags, each turned into the module zip Go itself
//! would build, and are served to the go command over the GOPROXY protocol.

pub mod errors;
pub mod from_tag;
pub mod gomod_file;
pub mod module_path;
pub mod module_zip;
pub mod parse;
pub mod protocol;
pub mod proxy;

use sluice_plugin_sdk::io::ReadAt;
pub use sluice_plugin_sdk::SourceTree;
use sluice_plugin_sdk::{
    Error, Extraction, ExtractionStep, FormatInfo, Limits, Metadata, Outcome, Plugin, PublishMode, Registry, Request,
    Response, TagFile, TagInfo, Trigger,
};

/// The stored file name of a version; unique within a module because versions are.
pub fn zip_file_name(version: &str) -> String {
    format!("{version}.zip")
}

pub fn info() -> FormatInfo {
    FormatInfo {
        name: "gomod".into(),
        display_name: "Go modules".into(),
        case_insensitive_names: false,
        publish: PublishMode::GitTag,
        // GONOSUMDB: a private module is not in the public checksum database.
        credential_headers: Vec::new(),
        install_hint: "GOPROXY={url} GONOSUMDB={name} go get {name}@{version}".into(),
    }
}

/// Unzips into scratch, then copies the `module@version/` folder's content into `pkg/`, so that a
/// job finds go.mod at the root of `pkg/` and can run `go test ./...` there.
pub fn extraction_for(meta: &Metadata) -> Extraction {
    let step = |tool: &str, argv: &[&str]| ExtractionStep {
        tool: tool.into(),
        argv: argv.iter().map(|a| a.to_string()).collect(),
    };
    let module_root = format!("{{scratch}}/{}@{}/.", meta.name, meta.version);
    Extraction {
        media_type: "application/zip".into(),
        steps: vec![
            step("unzip", &["-q", "-o", "{archive}", "-d", "{scratch}"]),
            step("cp", &["-R", &module_root, "{dest}"]),
        ],
        image: None,
    }
}

pub fn trigger_for(meta: &Metadata) -> Trigger {
    Trigger {
        event: "package_push".into(),
        variables: vec![("GO_MODULE".into(), meta.name.clone()), ("GO_VERSION".into(), meta.version.clone())],
        jobs: Vec::new(),
    }
}

/// The Go modules plugin, exported through the SDK.
pub struct GoModules;

impl Plugin for GoModules {
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
    fn handle(registry: &impl Registry, req: &Request, _body: impl ReadAt, _limits: &Limits) -> Result<Outcome, Error> {
        protocol::handle(registry, req)
    }
    fn render_error(err: &Error) -> Response {
        protocol::render_error(err)
    }
    fn from_tag(tag: &TagInfo, tree: &impl SourceTree) -> Result<Option<TagFile>, Error> {
        from_tag::from_tag(tag, tree)
    }
}

sluice_plugin_sdk::export!(GoModules);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sluice_plugin_sdk::TreeEntry;

    /// An in-memory tree of files, symlinks and submodules.
    pub struct MemoryTree {
        pub entries: Vec<TreeEntry>,
        files: Vec<(String, Vec<u8>)>,
    }

    impl MemoryTree {
        pub fn new(files: &[(&str, &str)]) -> Self {
            let mut tree = MemoryTree { entries: Vec::new(), files: Vec::new() };
            for (path, body) in files {
                tree.entries.push(TreeEntry { path: path.to_string(), kind: "file".into(), size: body.len() as u64 });
                tree.files.push((path.to_string(), body.as_bytes().to_vec()));
            }
            tree
        }
        pub fn with_symlink(mut self, path: &str, target: &str) -> Self {
            self.entries.push(TreeEntry { path: path.into(), kind: "symlink".into(), size: target.len() as u64 });
            self.files.push((path.into(), target.as_bytes().to_vec()));
            self
        }
        pub fn with_submodule(mut self, path: &str) -> Self {
            self.entries.push(TreeEntry { path: path.into(), kind: "submodule".into(), size: 0 });
            self
        }
    }

    impl SourceTree for MemoryTree {
        fn entries(&self) -> Vec<TreeEntry> {
            self.entries.clone()
        }
        fn read(&self, path: &str) -> Result<Vec<u8>, String> {
            self.files
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, b)| b.clone())
                .ok_or_else(|| format!("{path}: no such file"))
        }
    }

    #[test]
    fn describes_itself_and_its_jobs() {
        let info = info();
        assert_eq!((info.name.as_str(), info.case_insensitive_names), ("gomod", false));
        assert!(matches!(info.publish, PublishMode::GitTag));
        let meta = Metadata::new("example.com/m/v2", "v2.0.0");
        let extraction = extraction_for(&meta);
        assert_eq!(extraction.steps[0].argv, ["-q", "-o", "{archive}", "-d", "{scratch}"]);
        assert_eq!(extraction.steps[1].argv, ["-R", "{scratch}/example.com/m/v2@v2.0.0/.", "{dest}"]);
        let trigger = trigger_for(&meta);
        assert_eq!(trigger.event, "package_push");
        assert_eq!(
            trigger.variables,
            vec![("GO_MODULE".into(), "example.com/m/v2".into()), ("GO_VERSION".into(), "v2.0.0".into())]
        );
    }
}
