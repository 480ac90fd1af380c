//! The plugin contract's `format` export, delegating to the format logic.

use sluice_plugin_sdk::{
    Blob, Error, Extraction, FormatInfo, HostRegistry, Metadata, Outcome, Request, Response, TagFile, TagInfo, Tree,
    Trigger,
};

struct Plugin;

impl sluice_plugin_sdk::Format for Plugin {
    fn info() -> FormatInfo {
        crate::info()
    }

    fn parse(file_name: String, file: &Blob, _limits: sluice_plugin_sdk::Limits) -> Result<Metadata, Error> {
        crate::parse(&file_name, file)
    }

    fn extraction_for(_meta: Metadata) -> Extraction {
        crate::extraction()
    }

    fn trigger_for(meta: Metadata) -> Trigger {
        crate::trigger(&meta)
    }

    fn handle(req: Request, body: &Blob, _limits: sluice_plugin_sdk::Limits) -> Result<Outcome, Error> {
        crate::protocol::handle(&HostRegistry, &req, body)
    }

    fn render_error(err: Error) -> Response {
        crate::protocol::render_error(&err)
    }

    fn from_tag(_tag: TagInfo, _tree: &Tree) -> Result<Option<TagFile>, Error> {
        Err(Error::unsupported("Crates are published with `cargo publish`, not made from git tags"))
    }
}

sluice_plugin_sdk::export_format!(Plugin with_types_in sluice_plugin_sdk);
