//! The trait a format plugin implements, and the `export!` macro that turns it into the
//! contract's `format` export (Zed's extension API pattern: defaults for what most formats do
//! not need, so a plugin writes only its format).
//!
//! Every method is a plain Rust function over plain values: the registry, the request body and a
//! git tree come in as traits ([`Registry`], [`ReadAt`], [`SourceTree`]) that native unit tests
//! fill with [`MemoryRegistry`](crate::MemoryRegistry), a `Vec<u8>` and a map.

use crate::io::ReadAt;
use crate::registry_view::Registry;
use crate::{
    http, Change, Error, ErrorKind, Extraction, FormatInfo, Limits, Metadata, Outcome, Parts, Request, Response,
    TagFile, TagInfo, TreeEntry, Trigger,
};

/// The files of a tagged commit: the host's `tree` resource in the plugin, a map in unit tests.
pub trait SourceTree {
    fn entries(&self) -> Vec<TreeEntry>;
    fn read(&self, path: &str) -> Result<Vec<u8>, String>;
}

/// The host's tree resource seen through [`SourceTree`].
pub struct HostTree<'a>(pub &'a crate::Tree);

impl SourceTree for HostTree<'_> {
    fn entries(&self) -> Vec<TreeEntry> {
        self.0.entries()
    }
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        self.0.read(path)
    }
}

/// A format plugin. Implement it on a unit struct and export it with
/// `sluice_plugin_sdk::export!(MyPlugin);`.
pub trait Plugin {
    /// What the format is called and how it publishes.
    fn info() -> FormatInfo;

    /// Reads a package file: its metadata, or why it is not a valid package of this format. An
    /// archive is unpacked no further than `limits.max_unpacked_bytes`.
    fn parse(file_name: &str, file: impl ReadAt, limits: &Limits) -> Result<Metadata, Error>;

    /// How runners unpack files of this format.
    fn extraction_for(meta: &Metadata) -> Extraction;

    /// What a push triggers: a `package_push` pipeline with no variables or jobs of the format's own.
    fn trigger_for(_meta: &Metadata) -> Trigger {
        Trigger { event: "package_push".into(), variables: Vec::new(), jobs: Vec::new() }
    }

    /// Serves one request of the format's protocol.
    fn handle(registry: &impl Registry, req: &Request, body: impl ReadAt, limits: &Limits) -> Result<Outcome, Error>;

    /// Renders an error as plain text with the contract's status for its kind; an internal
    /// error's message is logged by the host, not shown.
    fn render_error(err: &Error) -> Response {
        let message = if err.kind == ErrorKind::Internal { "internal server error" } else { err.message.as_str() };
        http::text(err.kind.status(), format!("{message}\n"))
    }

    /// For git-tag formats: turns a tagged tree into the file of a version. Upload formats
    /// refuse.
    fn from_tag(_tag: &TagInfo, _tree: &impl SourceTree) -> Result<Option<TagFile>, Error> {
        Err(Error::unsupported(format!("{} packages are uploaded, not built from git tags", Self::info().display_name)))
    }

    /// For a kept `append-only` response to `req`: the bytes to append for `changes` (oldest
    /// first), or none to have the host render the whole document again.
    fn extend(_registry: &impl Registry, _req: &Request, _changes: &[Change]) -> Result<Option<Vec<u8>>, Error> {
        Ok(None)
    }

    /// For a kept response to `req` rendered in parts ([`Outcome::in_parts`]): the new whole
    /// segments and the items of the versions `changes` touch, or none to have the host render
    /// it whole. Render them with the same code as the whole document, into
    /// [`PartedBody::changed`](crate::PartedBody::changed), so that the two cannot differ.
    fn render_parts(_registry: &impl Registry, _req: &Request, _changes: &[Change]) -> Result<Option<Parts>, Error> {
        Ok(None)
    }
}

/// Exports a [`Plugin`] as the contract's `format` interface, backed by the host's registry,
/// blobs and trees. Expands to nothing unless the target is `wasm32`, so the crate's native build
/// and tests never see the bindings' imports.
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::Plugin as _;

            struct __SluiceExport;

            impl $crate::Format for __SluiceExport {
                fn info() -> $crate::FormatInfo {
                    <$plugin as $crate::Plugin>::info()
                }
                fn parse(
                    file_name: ::std::string::String,
                    file: &$crate::Blob,
                    limits: $crate::Limits,
                ) -> ::std::result::Result<$crate::Metadata, $crate::Error> {
                    <$plugin as $crate::Plugin>::parse(&file_name, file, &limits)
                }
                fn extraction_for(meta: $crate::Metadata) -> $crate::Extraction {
                    <$plugin as $crate::Plugin>::extraction_for(&meta)
                }
                fn trigger_for(meta: $crate::Metadata) -> $crate::Trigger {
                    <$plugin as $crate::Plugin>::trigger_for(&meta)
                }
                fn handle(
                    req: $crate::Request,
                    body: &$crate::Blob,
                    limits: $crate::Limits,
                ) -> ::std::result::Result<$crate::Outcome, $crate::Error> {
                    <$plugin as $crate::Plugin>::handle(&$crate::HostRegistry, &req, body, &limits)
                }
                fn render_error(err: $crate::Error) -> $crate::Response {
                    <$plugin as $crate::Plugin>::render_error(&err)
                }
                fn from_tag(
                    tag: $crate::TagInfo,
                    tree: &$crate::Tree,
                ) -> ::std::result::Result<::std::option::Option<$crate::TagFile>, $crate::Error> {
                    <$plugin as $crate::Plugin>::from_tag(&tag, &$crate::HostTree(tree))
                }
                fn extend(
                    req: $crate::Request,
                    changes: ::std::vec::Vec<$crate::Change>,
                ) -> ::std::result::Result<::std::option::Option<::std::vec::Vec<u8>>, $crate::Error> {
                    <$plugin as $crate::Plugin>::extend(&$crate::HostRegistry, &req, &changes)
                }
                fn render_parts(
                    req: $crate::Request,
                    changes: ::std::vec::Vec<$crate::Change>,
                ) -> ::std::result::Result<::std::option::Option<$crate::Parts>, $crate::Error> {
                    <$plugin as $crate::Plugin>::render_parts(&$crate::HostRegistry, &req, &changes)
                }
            }

    $crate::export_format!(__SluiceExport with_types_in $crate);
        };
    };
}
