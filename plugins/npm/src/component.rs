//! The wasm export: the `format` interface, backed by the host's registry and blobs.

use sluice_plugin_sdk::{
    Blob, Error, Extraction, Format, FormatInfo, HostRegistry, Limits, Metadata, Outcome, Request, Response, TagFile,
    TagInfo, Tree, Trigger,
};

struct Plugin;

impl Format for Plugin {
    fn info() -> FormatInfo {
        crate::info()
    }

    fn parse(file_name: String, file: &Blob, limits: Limits) -> Result<Metadata, Error> {
        crate::tarball::parse(&file_name, file, &limits)
    }

    fn extraction_for(meta: Metadata) -> Extraction {
        crate::extraction_for(&meta)
    }

    fn trigger_for(meta: Metadata) -> Trigger {
        crate::trigger_for(&meta)
    }

    fn handle(req: Request, body: &Blob, limits: Limits) -> Result<Outcome, Error> {
        crate::protocol::handle(&HostRegistry, &req, body, &limits)
    }

    fn render_error(err: Error) -> Response {
        crate::error::render(err)
    }

    fn from_tag(_tag: TagInfo, _tree: &Tree) -> Result<Option<TagFile>, Error> {
        Err(Error::unsupported("npm packages are published by upload, not from git tags"))
    }
}

sluice_plugin_sdk::export_format!(Plugin with_types_in sluice_plugin_sdk);
