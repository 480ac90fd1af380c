//! `sluice:plugin@0.5.0`, the newest contract: its types are the host's own (`plugin::wit`), and
//! `plugin::host` implements its imports.

contract_bindings!("../wit/v0.5.0");
