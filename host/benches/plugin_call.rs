//! One plugin call as the server makes it (a fresh instance from the pooling allocator, then
//! `parse` of a ~50 KB npm tarball read through the blob resource), against the same parse
//! compiled natively. Run with `cargo bench -p sluice --bench plugin_call`.

mod common;

use std::time::{Duration, Instant};

use sluice::plugin::{builtin, BlobHandle, Limits, PluginRuntime};

const ROUNDS: usize = 3000;

fn median_and_p99(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (common::percentile(&samples, 50.0), common::percentile(&samples, 99.0))
}

fn main() {
    let tarball = common::npm_tarball("bench-pkg", "1.0.0", 50 * 1024);
    let cache = tempfile::tempdir().unwrap();
    let runtime = PluginRuntime::new(Limits::default(), cache.path().to_path_buf()).unwrap();
    let wasm = builtin::PLUGINS.iter().find(|(name, _)| *name == "npm").expect("the npm plugin is built in").1;
    let plugin = runtime.load(wasm, "builtin:npm").unwrap();

    // Warm up both paths.
    for _ in 0..200 {
        plugin.parse("bench-pkg-1.0.0.tgz", BlobHandle::Memory(tarball.clone())).unwrap().unwrap();
        sluice_plugin_npm::parse::parse("bench-pkg-1.0.0.tgz", &tarball, &sluice_plugin_sdk::Limits::TEST).unwrap();
    }
    let mut wasm_samples = Vec::with_capacity(ROUNDS);
    let mut native_samples = Vec::with_capacity(ROUNDS);
    let mut instance_samples = Vec::with_capacity(ROUNDS);
    let mut inflate_samples = Vec::with_capacity(ROUNDS);
    // Interleave the three so that machine noise hits them alike.
    for _ in 0..ROUNDS {
        let blob = BlobHandle::Memory(tarball.clone());
        let t = Instant::now();
        let meta = plugin.parse("bench-pkg-1.0.0.tgz", blob).unwrap().unwrap();
        wasm_samples.push(t.elapsed());
        assert_eq!(meta.name, "bench-pkg");

        let t = Instant::now();
        let meta =
            sluice_plugin_npm::parse::parse("bench-pkg-1.0.0.tgz", &tarball, &sluice_plugin_sdk::Limits::TEST).unwrap();
        native_samples.push(t.elapsed());
        assert_eq!(meta.name, "bench-pkg");

        // The floor of any parse that checks every entry: inflating the archive, natively.
        let t = Instant::now();
        let unpacked = std::io::copy(&mut flate2::read::GzDecoder::new(&tarball[..]), &mut std::io::sink()).unwrap();
        inflate_samples.push(t.elapsed());
        assert!(unpacked > tarball.len() as u64);

        let t = Instant::now();
        plugin
            .render_error(&sluice::plugin::wit::Error {
                kind: sluice::plugin::wit::ErrorKind::NotFound,
                message: String::new(),
            })
            .unwrap();
        instance_samples.push(t.elapsed());
    }
    let (wasm_med, wasm_p99) = median_and_p99(wasm_samples);
    let (native_med, native_p99) = median_and_p99(native_samples);
    let (inst_med, inst_p99) = median_and_p99(instance_samples);
    let (inflate_med, inflate_p99) = median_and_p99(inflate_samples);
    common::say(&format!("tarball: {} bytes, {ROUNDS} rounds", tarball.len()));
    common::say(&format!(
        "plugin call (fresh instance + parse): median {:.1} µs, p99 {:.1} µs",
        common::micros(wasm_med),
        common::micros(wasm_p99)
    ));
    common::say(&format!(
        "native parse (same code, no wasm):   median {:.1} µs, p99 {:.1} µs",
        common::micros(native_med),
        common::micros(native_p99)
    ));
    common::say(&format!(
        "native inflate of the tarball alone:  median {:.1} µs, p99 {:.1} µs",
        common::micros(inflate_med),
        common::micros(inflate_p99)
    ));
    common::say(&format!(
        "fresh instance + trivial call:        median {:.1} µs, p99 {:.1} µs",
        common::micros(inst_med),
        common::micros(inst_p99)
    ));
    common::say(&format!("ratio plugin/native (medians): {:.2}x", wasm_med.as_secs_f64() / native_med.as_secs_f64()));
}
