//! The wasm export: the contract's `format` interface over the plain Rust modules.

use crate::SourceTree;
use sluice_plugin_sdk::{
    Blob, Error, Extraction, Format, FormatInfo, HostRegistry, Metadata, Outcome, Request, Response, TagFile, TagInfo,
    Tree, TreeEntry, Trigger,
};

struct Plugin;

/// The host's tree resource seen through [`SourceTree`].
struct HostTree<'a>(&'a Tree);

impl SourceTree for HostTree<'_> {
    fn entries(&self) -> Vec<TreeEntry> {
        self.0.entries()
    }
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        self.0.read(path)
    }
}

impl Format for Plugin {
    fn info() -> FormatInfo {
        crate::info()
    }
    fn parse(file_name: String, file: &Blob, _limits: sluice_plugin_sdk::Limits) -> Result<Metadata, Error> {
        crate::parse::parse(&file_name, file)
    }
    fn extraction_for(meta: Metadata) -> Extraction {
        crate::extraction_for(&meta)
    }
    fn trigger_for(meta: Metadata) -> Trigger {
        crate::trigger_for(&meta)
    }
    fn handle(req: Request, _body: &Blob, _limits: sluice_plugin_sdk::Limits) -> Result<Outcome, Error> {
        crate::proxy::handle(&HostRegistry, &req)
    }
    fn render_error(err: Error) -> Response {
        crate::proxy::render_error(&err)
    }
    fn from_tag(tag: TagInfo, tree: &Tree) -> Result<Option<TagFile>, Error> {
        crate::from_tag::from_tag(&tag, &HostTree(tree))
    }
}

sluice_plugin_sdk::export_format!(Plugin with_types_in sluice_plugin_sdk);
