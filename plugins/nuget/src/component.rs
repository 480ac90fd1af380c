//! The plugin contract's `format` export, delegating to the native modules.

use sluice_plugin_sdk::{
    Blob, Error, Extraction, Format, FormatInfo, HostRegistry, Limits, Metadata, Outcome, Request, Response, TagFile,
    TagInfo, Tree, Trigger,
};

struct Plugin;

impl Format for Plugin {
    fn info() -> FormatInfo {
        crate::info()
    }

    fn parse(_file_name: String, file: &Blob, limits: Limits) -> Result<Metadata, Error> {
        crate::nupkg::parse(file, &limits)
    }

    fn extraction_for(_meta: Metadata) -> Extraction {
        crate::extraction()
    }

    fn trigger_for(meta: Metadata) -> Trigger {
        crate::trigger(&meta)
    }

    fn handle(req: Request, body: &Blob, limits: Limits) -> Result<Outcome, Error> {
        crate::protocol::handle(&HostRegistry, &req, &body, &limits)
    }

    fn render_error(err: Error) -> Response {
        crate::protocol::render_error(&err)
    }

    fn from_tag(_tag: TagInfo, _tree: &Tree) -> Result<Option<TagFile>, Error> {
        Err(Error::unsupported("NuGet packages are pushed, not built from git tags"))
    }
}

sluice_plugin_sdk::export_format!(Plugin with_types_in sluice_plugin_sdk);
