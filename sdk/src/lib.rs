//! The small SDK every Sluice format plugin builds on.
//!
//! It carries the bindings of the newest plugin contract (`wit/v0.5.0`), and the helpers that
//! every plugin would otherwise copy: reading a [`Blob`] as a file ([`io`]), finding string values
//! in a large JSON body without holding it ([`json_scan`]), answering HTTP requests ([`http`]),
//! declaring which responses the host may keep ([`Outcome::keep_for_package`] and friends) and
//! looking things up in the repository through a [`Registry`] that native unit tests can replace
//! with [`MemoryRegistry`].
//!
//! A plugin built with this SDK is a plugin of contract 0.5.0. A document rendered in parts
//! ([`PartedBody`], [`Outcome::in_parts`]) is re-rendered by the host one changed version at a
//! time through [`Plugin::render_parts`]. A proxy repository's plugin asks
//! its upstream through [`Registry::upstream_get`] (the host fetches and caches) and answers
//! [`Outcome::fetch_file`] for a file only the upstream has; in a gated proxy it leaves the
//! versions [`quarantined_versions`] names out of what it offers. Plugins built against older
//! contracts keep loading (the host converts at the boundary); they are built from `wit/v0.1.0`
//! directly, as the runtime tests' fault plugin is.
//!
//! A plugin implements [`Plugin`] (only what its format needs: the other methods have defaults)
//! and exports it with `sluice_plugin_sdk::export!(MyPlugin);`, which expands to nothing but on
//! `wasm32`, so that the format logic stays a plain Rust library that `cargo test` runs natively.

wit_bindgen::generate!({
    path: "../wit/v0.5.0",
    world: "format-plugin",
    pub_export_macro: true,
    export_macro_name: "export_format",
    default_bindings_module: "sluice_plugin_sdk",
    generate_all,
    // Lets unit tests compare what handlers return (keeps, effects) directly.
    additional_derives: [PartialEq],
});

pub mod http;
pub mod io;
pub mod json_scan;
mod keep;
pub mod parts;
mod plugin;
pub mod quarantine;
mod registry_view;

/// The raw generated export trait; plugins implement [`Plugin`] instead and [`export!`] bridges.
pub use exports::sluice::plugin::format::Guest as Format;
pub use parts::PartedBody;
pub use plugin::{HostTree, Plugin, SourceTree};
pub use quarantine::quarantined_versions;
pub use registry_view::{summary_of, HostRegistry, MemoryProxy, MemoryRegistry, Registry, SummaryOnly};
pub use sluice::plugin::types::*;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
}

impl ErrorKind {
    /// The HTTP status the contract gives this kind (the host uses the same table when a plugin
    /// cannot render an error); formats override it where their clients expect another.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::Gone => 410,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::Conflict => 409,
            ErrorKind::TooLarge => 413,
            ErrorKind::Unsupported => 405,
            ErrorKind::Internal => 500,
            ErrorKind::Unavailable => 502,
        }
    }
}

impl From<std::io::Error> for Error {
    /// Reading a package file only fails on a malformed file (a truncated gzip stream, a tar
    /// header that lies about its size): the package is invalid.
    fn from(e: std::io::Error) -> Self {
        Error::invalid(e.to_string())
    }
}

impl Metadata {
    /// Metadata with the identity set and everything else empty.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Metadata {
            name: name.into(),
            version: version.into(),
            qualifier: String::new(),
            summary: None,
            description: None,
            license: None,
            homepage: None,
            repository: None,
            authors: Vec::new(),
            keywords: Vec::new(),
            dependencies: Vec::new(),
            manifest: String::new(),
            readme: None,
        }
    }
}

impl Limits {
    /// Limits for native unit tests: the host's defaults (1 GiB uploads, 512 MiB unpacked).
    pub const TEST: Limits = Limits { max_upload_bytes: 1 << 30, max_unpacked_bytes: 512 << 20 };
}

impl Outcome {
    /// Just a response, no effects.
    pub fn respond(response: Response) -> Self {
        Outcome { effects: Vec::new(), reply: Reply::Respond(response), keep: None }
    }
    /// Effects, then a response.
    pub fn with_effects(effects: Vec<Effect>, response: Response) -> Self {
        Outcome { effects, reply: Reply::Respond(response), keep: None }
    }
    /// Stream a stored file.
    pub fn serve_file(
        package: impl Into<String>,
        file_name: impl Into<String>,
        content_type: impl Into<String>,
    ) -> Self {
        Outcome {
            effects: Vec::new(),
            reply: Reply::ServeFile(FileRef {
                package: package.into(),
                file_name: file_name.into(),
                content_type: content_type.into(),
            }),
            keep: None,
        }
    }
    /// Stream a file of the upstream: the host serves its stored copy, or downloads, verifies
    /// and stores it first (contract 0.4.0).
    pub fn fetch_file(file: UpstreamFile) -> Self {
        Outcome { effects: Vec::new(), reply: Reply::FetchFile(file), keep: None }
    }
}

impl UpstreamResponse {
    /// A response header by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl Request {
    /// A request header by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// The path split on `/`, each segment percent-decoded, empty segments dropped.
    pub fn segments(&self) -> Vec<String> {
        self.path.split('/').filter(|s| !s.is_empty()).map(http::decode).collect()
    }
    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        http::query_pairs(&self.query).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

impl Artifact {
    /// Whether this artifact is a version clients may install (not yanked).
    pub fn is_live(&self) -> bool {
        !self.yanked
    }
}

/// The most of a README a plugin keeps for the package page (nuget.org's limit on an embedded
/// README): longer ones are cut there, so that one package cannot bloat every listing.
pub const MAX_README_BYTES: u64 = 1024 * 1024;

/// A README file's bytes as text for [`Metadata::readme`]: at most [`MAX_README_BYTES`] (cut on
/// a character boundary), invalid UTF-8 replaced, none when it is empty or blank.
pub fn readme_text(bytes: &[u8]) -> Option<String> {
    let cut = &bytes[..bytes.len().min(MAX_README_BYTES as usize)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < bytes.len() && text.ends_with('\u{fffd}') {
        // The cut split a character.
        text.pop();
    }
    let text = text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text);
    (!text.trim().is_empty()).then_some(text)
}

/// Whether a file name (no folder) is a README, and how much a package page prefers it: Markdown
/// (`README.md`, `readme.markdown`) before plain text (`README`, `README.txt`) before any other
/// (`README.rdoc`, `README.rst`). Lower is preferred; none for other files.
pub fn readme_rank(file_name: &str) -> Option<u8> {
    let lower = file_name.to_ascii_lowercase();
    if lower != "readme" && !lower.starts_with("readme.") {
        return None;
    }
    Some(if lower.ends_with(".md") || lower.ends_with(".markdown") {
        0
    } else if lower == "readme" || lower.ends_with(".txt") {
        1
    } else {
        2
    })
}

#[cfg(test)]
mod readme_tests {
    use super::*;

    #[test]
    fn readme_text_is_capped_and_lossy() {
        assert_eq!(readme_text(b"\xef\xbb\xbf# Hi\n").as_deref(), Some("# Hi\n"));
        assert_eq!(readme_text(b"  \n"), None);
        let long = "é".repeat(MAX_README_BYTES as usize);
        let text = readme_text(long.as_bytes()).unwrap();
        assert_eq!(text.len(), MAX_README_BYTES as usize);
        assert!(text.chars().all(|c| c == 'é'));
        assert_eq!(readme_rank("README.md"), Some(0));
        assert_eq!(readme_rank("readme"), Some(1));
        assert_eq!(readme_rank("README.rdoc"), Some(2));
        assert_eq!(readme_rank("READMEFIRST"), None);
        assert_eq!(readme_rank("CHANGELOG.md"), None);
    }
}
