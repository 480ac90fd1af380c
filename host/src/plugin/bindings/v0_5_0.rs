//! `sluice:plugin@0.5.0`, the newest contract: its types are the host's own (`plugin::wit`), and
//! `plugin::host` implements its imports.

wasmtime::component::bindgen!({
    path: "../wit/v0.5.0",
    world: "format-plugin",
    imports: { default: trappable },
    with: {
        "sluice:plugin/types.blob": crate::plugin::host::BlobHandle,
        "sluice:plugin/types.tree": crate::plugin::host::TreeHandle,
    },
    additional_derives: [serde::Serialize, serde::Deserialize],
});

pub use self::sluice::plugin::types::*;

use crate::plugin::host::CallState;
use wasmtime::component::{HasSelf, Linker};

pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    FormatPlugin::add_to_linker::<CallState, HasSelf<CallState>>(linker, |s| s)
}
