//! How long a packument of a package with many versions takes to render natively:
//! `cargo run -p sluice-plugin-npm --example render_many -- 10000` (add
//! `--config 'profile.dev.package.sluice-plugin-npm.opt-level=3'` or `--release` for optimised
//! figures). Prints the best and median of a few renders of the full and abbreviated documents.

use sluice_plugin_npm::{packument, parse};
use sluice_plugin_sdk::{Artifact, PackageView};
use std::time::{Duration, Instant};

fn main() {
    let count: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let artifacts: Vec<Artifact> = (0..count)
        .map(|i| {
            let version = format!("1.{}.{}", i / 100, i % 100);
            let manifest = serde_json::json!({
                "name": "many", "version": version, "description": "A package with many versions",
                "license": "MIT", "main": "index.js", "bin": "cli.js",
                "scripts": {"test": "node test.js", "postinstall": "node setup.js"},
                "dependencies": {"left-pad": "^1.3.0", "lodash": "^4.17.21"},
                "devDependencies": {"mocha": "^10.0.0"},
                "repository": {"type": "git", "url": "https://example.com/many.git"},
                "keywords": ["many", "versions"], "author": "Ada <ada@example.com>",
            });
            Artifact {
                version: version.clone(),
                qualifier: String::new(),
                file_name: format!("many-{version}.tgz"),
                size: 1000,
                sha256: "00".repeat(32),
                sha512: "ab".repeat(64),
                sha1: "cd".repeat(20),
                published_ms: 1_700_000_000_000 + i as u64,
                metadata: parse::metadata_from_manifest(&manifest.to_string()).unwrap(),
                deprecated: None,
                yanked: false,
            }
        })
        .collect();
    let view = PackageView {
        name: "many".into(),
        created_ms: 1_700_000_000_000,
        modified_ms: 1_700_000_000_000 + count as u64,
        tags: vec![("latest".into(), artifacts.last().unwrap().version.clone())],
        artifacts,
    };
    let base = "http://reg.test/npm";
    let time = |render: &dyn Fn() -> Vec<u8>| {
        let mut runs: Vec<(Duration, usize)> = (0..7)
            .map(|_| {
                let start = Instant::now();
                let bytes = render().len();
                (start.elapsed(), bytes)
            })
            .collect();
        runs.sort();
        (runs[0].0, runs[runs.len() / 2].0, runs[0].1)
    };
    let full = time(&|| serde_json::to_vec(&packument::full(&view, base)).unwrap());
    let abbreviated = time(&|| serde_json::to_vec(&packument::abbreviated(&view, base)).unwrap());
    println!("{count} versions: full packument best {:?} median {:?} ({} bytes)", full.0, full.1, full.2);
    println!(
        "{count} versions: abbreviated packument best {:?} median {:?} ({} bytes)",
        abbreviated.0, abbreviated.1, abbreviated.2
    );
}
