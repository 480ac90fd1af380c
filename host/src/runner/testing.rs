//! What the runner's unit tests share: a job, a work folder, running everything after the download
//! on a given file, and building tar.gz archives.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::exec::{unpack_and_run, Exec, Run};
use super::job::{Job, Outcome};
use super::process::{Cancel, Log};
use super::protocol::{Extraction, Step};
use super::workspace::JobDir;

pub(crate) fn job(id: u64, script: &[&str], steps: Vec<Step>) -> Job {
    Job {
        id,
        pipeline_id: 1,
        name: "check".into(),
        stage: "test".into(),
        token: "JOBTOKEN".into(),
        script: script.iter().map(|s| s.to_string()).collect(),
        variables: BTreeMap::from([("SLUICE_PACKAGE_NAME".to_owned(), "left-pad".to_owned())]),
        timeout_seconds: 60,
        sha256: String::new(),
        file_name: "left-pad-1.0.0.tgz".into(),
        file_url: String::new(),
        commit_sha: None,
        extraction: Some(Extraction { media_type: "application/gzip".into(), steps, image: None }),
    }
}

pub(crate) fn tar_step() -> Vec<Step> {
    vec![Step {
        tool: "tar".into(),
        argv: ["-xzf", "{archive}", "-C", "{dest}", "--strip-components=1"].map(String::from).to_vec(),
    }]
}

/// A work folder, with the runner token hidden from jobs.
pub(crate) fn exec() -> (tempfile::TempDir, Exec) {
    let tmp = tempfile::tempdir().unwrap();
    let work = std::fs::canonicalize(tmp.path()).unwrap().join("work");
    std::fs::create_dir(&work).unwrap();
    (tmp, Exec::new(work, "RUNNER-TOKEN-SECRET"))
}

/// Runs everything after the download with `archive` as the file; returns the outcome, the log
/// and how long it took.
pub(crate) async fn run_with(exec: &Exec, job: &Job, archive: &[u8], cancel: Cancel) -> (Outcome, String, Duration) {
    let dir = JobDir::new(&exec.work, job);
    dir.create().await.unwrap();
    std::fs::write(&dir.archive, archive).unwrap();
    let (log, mut rx) = Log::channel(4);
    let collect = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(chunk) = rx.recv().await {
            all.extend(chunk);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let started = std::time::Instant::now();
    let mut run = Run {
        exec,
        job,
        dir: &dir,
        log: &log,
        cancel,
        deadline: Instant::now() + Duration::from_secs(job.timeout_seconds),
    };
    let outcome = unpack_and_run(&mut run).await;
    let took = started.elapsed();
    drop(log);
    (outcome, collect.await.unwrap(), took)
}

pub(crate) fn no_cancel() -> Cancel {
    let (tx, rx) = watch::channel(false);
    std::mem::forget(tx);
    rx
}

pub(crate) fn tgz(build: impl FnOnce(&mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>)) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    build(&mut builder);
    builder.into_inner().unwrap().finish().unwrap()
}

pub(crate) fn add_file(b: &mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, data).unwrap();
}
