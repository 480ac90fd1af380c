//! A plugin whose protocol handler misbehaves on request: `GET /trap` traps, `GET /loop` never
//! returns, `GET /alloc` allocates without end, `GET /print` writes to stdout and answers.
//! Anything else answers 200 `ok`, so tests can check the server still serves this plugin.
//!
//! Only a wasm build exports anything: the export's post-return symbols do not link for the host
//! target, and `cargo build` at the workspace root builds every member for the host.
#![cfg(target_arch = "wasm32")]

use sluice_plugin_sdk::{http, Blob, Error, Extraction, Format, FormatInfo, Metadata, Outcome, PublishMode, Request, Response,
    TagFile, TagInfo, Tree, Trigger};

struct Fault;

impl Format for Fault {
    fn info() -> FormatInfo {
        FormatInfo {
            name: "fault".into(),
            display_name: "Fault injection".into(),
            case_insensitive_names: false,
            publish: PublishMode::Upload,
            credential_headers: Vec::new(),
            install_hint: String::new(),
        }
    }

    fn parse(_file_name: String, _file: &Blob) -> Result<Metadata, Error> {
        Err(Error::unsupported("the fault plugin parses nothing"))
    }

    fn extraction_for(_meta: Metadata) -> Extraction {
        Extraction { media_type: "application/octet-stream".into(), steps: Vec::new(), image: None }
    }

    fn trigger_for(_meta: Metadata) -> Trigger {
        Trigger { event: "package_push".into(), variables: Vec::new(), jobs: Vec::new() }
    }

    fn handle(req: Request, _body: &Blob) -> Result<Outcome, Error> {
        match req.path.as_str() {
            "/trap" => panic!("the fault plugin was asked to trap"),
            "/loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "/alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "/print" => {
                println!("hello from the fault plugin");
                Ok(Outcome::respond(http::text(200, "printed")))
            }
            _ => Ok(Outcome::respond(http::text(200, "ok"))),
        }
    }

    fn render_error(err: Error) -> Response {
        http::text(500, err.message)
    }

    fn from_tag(_tag: TagInfo, _tree: &Tree) -> Result<Option<TagFile>, Error> {
        Ok(None)
    }
}

sluice_plugin_sdk::export_format!(Fault with_types_in sluice_plugin_sdk);
