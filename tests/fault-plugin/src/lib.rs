//! A plugin whose protocol handler misbehaves on request: `GET /trap` traps, `GET /loop` never
//! returns, `GET /alloc` allocates without end, `GET /print` writes to stdout and answers.
//! Anything else answers 200 `ok`, so tests can check the server still serves this plugin.
//!
//! Only a wasm build exports anything: the export's post-return symbols do not link for the host
//! target, and `cargo build` at the workspace root builds every member for the host.
//!
//! It is built against the frozen contract 0.1.0 (`wit/v0.1.0`) with wit-bindgen directly, so that
//! the runtime tests prove a plugin of an older contract still loads and works.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    path: "../../wit/v0.1.0",
    world: "format-plugin",
    generate_all,
});

use exports::sluice::plugin::format::Guest as Format;
use sluice::plugin::types::{
    Blob, Error, ErrorKind, Extraction, FormatInfo, Metadata, Outcome, PublishMode, Reply, Request, Response, TagFile,
    TagInfo, Tree, Trigger,
};

fn text(status: u16, body: impl Into<String>) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
        body: body.into().into_bytes(),
    }
}

fn respond(response: Response) -> Outcome {
    Outcome { effects: Vec::new(), reply: Reply::Respond(response) }
}

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
        Err(Error { kind: ErrorKind::Unsupported, message: "the fault plugin parses nothing".into() })
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
                Ok(respond(text(200, "printed")))
            }
            _ => Ok(respond(text(200, "ok"))),
        }
    }

    fn render_error(err: Error) -> Response {
        text(500, err.message)
    }

    fn from_tag(_tag: TagInfo, _tree: &Tree) -> Result<Option<TagFile>, Error> {
        Ok(None)
    }
}

export!(Fault);
