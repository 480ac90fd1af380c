//! `sluice runner`: takes package-push pipeline jobs from a Sluice server and runs them here.
//!
//! The loop long-polls `POST /api/v1/jobs/request`; each job runs in `WORK/job-{id}`: the push's
//! file is downloaded with the job's token and its sha256 checked ([`api`]), unpacked into `pkg/` with
//! the tool the format plugin names and checked for entries outside `pkg/` ([`extract`]), and the
//! script run with bash ([`exec`]) in a process group of its own ([`process`]), all inside the job
//! folder ([`workspace`]). The log is shipped while the job runs, in batches, and
//! the answer to each batch tells whether the job was canceled.
//!
//! May call: `domain` (the job statuses in [`protocol`]) and nothing else of the host: it is a
//! separate process that only speaks HTTP to the server. The server uses [`protocol`] alone.

mod api;
mod exec;
mod extract;
mod job;
mod process;
pub mod protocol;
#[cfg(test)]
mod testing;
mod workspace;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use api::{Api, RequestError};
use exec::{Exec, Run};
use job::{Job, Outcome};
use process::Log;
use workspace::JobDir;

/// How `sluice runner` was started.
pub struct RunnerOptions {
    /// The server's base URL, e.g. `http://127.0.0.1:8080` (a trailing slash is ignored).
    pub url: String,
    /// A token with the `runner` scope.
    pub token: String,
    /// Take one job, run it, exit.
    pub once: bool,
    /// Where jobs run (`job-{id}` folders); empty means `sluice-runner` in the system temp folder.
    pub work_dir: PathBuf,
    /// How many jobs run at once (at least 1).
    pub concurrency: usize,
    /// How long one request for a job waits on the server (the `wait` parameter), in seconds.
    pub poll_seconds: u64,
}

/// Runs the runner until `--once` is done, a signal (Ctrl-C, SIGTERM) stops it, or the server refuses
/// its token. On a signal it stops asking for jobs and lets the running ones finish; a second
/// signal kills them.
pub async fn run(opts: RunnerOptions) -> anyhow::Result<()> {
    let work = if opts.work_dir.as_os_str().is_empty() {
        std::env::temp_dir().join("sluice-runner")
    } else {
        opts.work_dir.clone()
    };
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create the work folder {}", work.display()))?;
    let work =
        std::fs::canonicalize(&work).with_context(|| format!("cannot use the work folder {}", work.display()))?;
    let exec = Arc::new(Exec::new(work.clone(), &opts.token));
    let api = Arc::new(Api::new(&opts.url, &opts.token, runner_name())?);
    let concurrency = if opts.once { 1 } else { opts.concurrency.max(1) };
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut signals = shutdown_signals();
    let mut running: JoinSet<()> = JoinSet::new();
    let mut failures: u32 = 0;
    let mut fatal = None;
    tracing::info!(server = %api.base(), work = %work.display(), concurrency, once = opts.once, "runner started");

    loop {
        while let Some(done) = running.try_join_next() {
            if let Err(e) = done {
                tracing::error!("a job task failed: {e}");
            }
        }
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = signals.changed() => break,
        };
        let asked = Instant::now();
        let answer = tokio::select! {
            answer = api.request_job(opts.poll_seconds) => answer,
            _ = signals.changed() => break,
        };
        match answer {
            Ok(Some(value)) => {
                failures = 0;
                match serde_json::from_value::<Job>(value.clone()) {
                    Ok(job) => {
                        let (api, exec) = (api.clone(), exec.clone());
                        running.spawn(async move {
                            run_job(&api, &exec, job).await;
                            drop(permit);
                        });
                    }
                    Err(e) => {
                        tracing::error!("the server sent a job this runner cannot read: {e}");
                        let api = api.clone();
                        running.spawn(async move { api.reject_job(&value, &e.to_string()).await });
                    }
                }
                if opts.once {
                    break;
                }
            }
            Ok(None) => {
                failures = 0;
                // A server that answers at once (wait=0, or it does not long-poll): do not spin.
                if asked.elapsed() < Duration::from_millis(500) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Err(RequestError::Fatal(e)) => {
                fatal = Some(e);
                break;
            }
            Err(RequestError::Transient(e)) => {
                let delay = Duration::from_secs((1u64 << failures.min(4)).min(10));
                failures += 1;
                tracing::warn!("cannot get a job from {}: {e:#}; retrying in {} s", api.base(), delay.as_secs());
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = signals.changed() => break,
                }
            }
        }
    }

    if !running.is_empty() {
        tracing::info!("waiting for {} running job(s) to finish", running.len());
        loop {
            tokio::select! {
                done = running.join_next() => match done {
                    None => break,
                    Some(Err(e)) => tracing::error!("a job task failed: {e}"),
                    Some(Ok(())) => {}
                },
                _ = signals.changed() => {
                    tracing::warn!("stopping the running jobs");
                    running.shutdown().await;
                    break;
                }
            }
        }
    }
    match fatal {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `<hostname>-<pid>`.
fn runner_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "runner".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Counts Ctrl-C and SIGTERM.
fn shutdown_signals() -> watch::Receiver<u32> {
    let (tx, rx) = watch::channel(0u32);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            let term_signal = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { std::future::pending::<()>().await },
                _ = term_signal => {}
            }
            tracing::info!("signal received: no more jobs will be taken");
            tx.send_modify(|n| *n += 1);
        }
    });
    rx
}

/// One job, from the folder's creation to its report.
async fn run_job(api: &Api, exec: &Exec, job: Job) {
    tracing::info!(job = job.id, pipeline = job.pipeline_id, name = %job.name, "job started");
    let deadline = Instant::now() + Duration::from_secs(job.timeout_seconds);
    let (log, chunks) = Log::channel(64);
    let (cancel_tx, cancel) = watch::channel(false);
    let shipper = {
        let (api, id, token) = (api.clone(), job.id, job.token.clone());
        tokio::spawn(async move { api.ship_log(id, &token, chunks, cancel_tx).await })
    };
    let dir = JobDir::new(&exec.work, &job);
    let outcome = {
        let mut run = Run { exec, job: &job, dir: &dir, log: &log, cancel, deadline };
        log.line(format!(
            "Running job {} `{}` (stage {}) of pipeline {} on runner {}",
            job.id,
            job.name,
            job.stage,
            job.pipeline_id,
            api.runner_name()
        ))
        .await;
        if let Some(sha) = &job.commit_sha {
            log.line(format!("Commit {sha}")).await;
        }
        match dir.create().await {
            Err(e) => {
                log.line(format!("ERROR: cannot create the job folder {}: {e}", dir.root.display())).await;
                Outcome::Failed { reason: None, exit_code: None }
            }
            Ok(()) => match api.download(&mut run).await {
                Err(outcome) => outcome,
                Ok(()) => exec::unpack_and_run(&mut run).await,
            },
        }
    };
    if let Err(e) = dir.remove().await {
        tracing::warn!(job = job.id, "cannot remove {}: {e}", dir.root.display());
    }
    drop(log);
    let canceled = shipper.await.unwrap_or(false);
    if canceled || outcome == Outcome::Canceled {
        tracing::info!(job = job.id, "job canceled");
        return;
    }
    tracing::info!(job = job.id, outcome = ?outcome, "job done");
    if let Some(finish) = outcome.finish() {
        api.finish(job.id, &job.token, &finish).await;
    }
}

#[cfg(test)]
mod tests {
    //! The whole runner against a stand-in server on loopback (the real server's end-to-end tests
    //! are in tests/pipelines.rs).

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    use axum::body::Bytes;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use axum::Json;
    use sha2::{Digest, Sha256};

    use super::*;

    #[derive(Default)]
    struct Mock {
        jobs: Mutex<Vec<serde_json::Value>>,
        file: Vec<u8>,
        log: Mutex<String>,
        finished: Mutex<Vec<(u64, serde_json::Value)>>,
        /// Answer `canceled` once the log contains this.
        cancel_on: Option<String>,
        canceled: AtomicBool,
    }

    fn bearer(headers: &HeaderMap) -> String {
        headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
    }

    async fn request(
        State(m): State<Arc<Mock>>,
        headers: HeaderMap,
        Json(body): Json<serde_json::Value>,
    ) -> axum::response::Response {
        if bearer(&headers) != "Bearer RUNNER" {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        assert!(body["runner"].as_str().unwrap().contains('-'));
        let next = {
            let mut jobs = m.jobs.lock().unwrap();
            if jobs.is_empty() {
                None
            } else {
                Some(jobs.remove(0))
            }
        };
        match next {
            Some(job) => (StatusCode::CREATED, Json(job)).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        }
    }

    async fn file(State(m): State<Arc<Mock>>, headers: HeaderMap) -> axum::response::Response {
        if bearer(&headers) != "Bearer JOBTOKEN" {
            return StatusCode::FORBIDDEN.into_response();
        }
        m.file.clone().into_response()
    }

    async fn log(State(m): State<Arc<Mock>>, headers: HeaderMap, body: Bytes) -> axum::response::Response {
        assert_eq!(bearer(&headers), "Bearer JOBTOKEN");
        let mut log = m.log.lock().unwrap();
        if m.canceled.load(Ordering::SeqCst) {
            return Json(serde_json::json!({"status": "canceled"})).into_response();
        }
        log.push_str(std::str::from_utf8(&body).unwrap());
        if m.cancel_on.as_ref().is_some_and(|c| log.contains(c.as_str())) {
            m.canceled.store(true, Ordering::SeqCst);
        }
        Json(serde_json::json!({"status": "running"})).into_response()
    }

    async fn finish(
        State(m): State<Arc<Mock>>,
        Path(id): Path<u64>,
        headers: HeaderMap,
        Json(body): Json<serde_json::Value>,
    ) -> StatusCode {
        assert_eq!(bearer(&headers), "Bearer JOBTOKEN");
        m.finished.lock().unwrap().push((id, body));
        StatusCode::OK
    }

    async fn serve(mock: Mock) -> (String, Arc<Mock>) {
        let mock = Arc::new(mock);
        let app = axum::Router::new()
            .route("/api/v1/jobs/request", post(request))
            .route("/api/v1/pushes/{sha}/file", get(file))
            .route("/api/v1/jobs/{id}/log", post(log))
            .route("/api/v1/jobs/{id}/finish", post(finish))
            .with_state(mock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, mock)
    }

    fn npm_package() -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        let data = br#"{"name": "left-pad"}"#;
        let mut h = tar::Header::new_gnu();
        h.set_path("package/package.json").unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
        b.into_inner().unwrap().finish().unwrap()
    }

    fn finished(mock: &Mock) -> Option<serde_json::Value> {
        mock.finished.lock().unwrap().first().map(|(_, body)| body.clone())
    }

    fn job_json(url: &str, file: &[u8], script: &[&str]) -> serde_json::Value {
        let sha = hex::encode(Sha256::digest(file));
        serde_json::json!({
            "id": 12, "pipeline_id": 5, "name": "check", "stage": "test", "token": "JOBTOKEN",
            "script": script, "variables": {"SLUICE_PACKAGE_NAME": "left-pad"}, "timeout_seconds": 60,
            "sha256": sha, "file_name": "left-pad-1.0.0.tgz", "file_url": format!("{url}/api/v1/pushes/{sha}/file"),
            "commit_sha": null,
            "extraction": {"media_type": "application/gzip", "image": null,
                "steps": [{"tool": "tar", "argv": ["-xzf", "{archive}", "-C", "{dest}", "--strip-components=1"]}]}
        })
    }

    fn options(url: &str, token: &str, work: &std::path::Path) -> RunnerOptions {
        RunnerOptions {
            url: format!("{url}/"),
            token: token.into(),
            once: true,
            work_dir: work.to_path_buf(),
            concurrency: 2,
            poll_seconds: 1,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn once_takes_a_job_runs_it_and_reports_success() {
        let file = npm_package();
        let (url, mock) = serve(Mock { file: file.clone(), ..Default::default() }).await;
        mock.jobs.lock().unwrap().push(job_json(&url, &file, &["cat pkg/package.json"]));
        let work = tempfile::tempdir().unwrap();
        run(options(&url, "RUNNER", work.path())).await.unwrap();
        let log = mock.log.lock().unwrap().clone();
        assert!(log.contains("sha256 verified"), "{log}");
        assert!(log.contains("$ cat pkg/package.json\n{\"name\": \"left-pad\"}"), "{log}");
        assert_eq!(
            finished(&mock).unwrap(),
            serde_json::json!({"status": "success", "exit_code": 0, "failure_reason": null})
        );
        assert!(!work.path().join("job-12").exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sha256_mismatch_fails_the_download() {
        let file = npm_package();
        let (url, mock) = serve(Mock { file: b"tampered".to_vec(), ..Default::default() }).await;
        mock.jobs.lock().unwrap().push(job_json(&url, &file, &["echo should not run"]));
        let work = tempfile::tempdir().unwrap();
        run(options(&url, "RUNNER", work.path())).await.unwrap();
        let log = mock.log.lock().unwrap().clone();
        assert!(log.contains("ERROR: sha256 mismatch: expected "), "{log}");
        assert!(!log.contains("should not run"), "{log}");
        assert_eq!(
            finished(&mock).unwrap(),
            serde_json::json!({"status": "failed", "exit_code": null, "failure_reason": "download_failure"})
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_canceled_job_stops_at_once_and_reports_nothing() {
        let file = npm_package();
        let mock = Mock { file: file.clone(), cancel_on: Some("started\n".into()), ..Default::default() };
        let (url, mock) = serve(mock).await;
        mock.jobs.lock().unwrap().push(job_json(&url, &file, &["echo started", "sleep 60"]));
        let work = tempfile::tempdir().unwrap();
        run(options(&url, "RUNNER", work.path())).await.unwrap();
        assert!(mock.canceled.load(Ordering::SeqCst));
        assert!(finished(&mock).is_none());
        assert!(!work.path().join("job-12").exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_runner_token_ends_the_runner_with_an_error() {
        let (url, _mock) = serve(Mock::default()).await;
        let work = tempfile::tempdir().unwrap();
        let err = run(options(&url, "WRONG", work.path())).await.unwrap_err();
        assert!(err.to_string().contains("refused the runner token"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrency_runs_jobs_at_the_same_time() {
        let file = npm_package();
        let (url, mock) = serve(Mock { file: file.clone(), ..Default::default() }).await;
        let meeting = tempfile::tempdir().unwrap();
        let flag = meeting.path().join("b-started");
        // The first job succeeds only if the second one starts while it runs.
        let wait_for_b =
            format!("for i in $(seq 100); do [ -e {} ] && exit 0; sleep 0.1; done; exit 1", flag.display());
        let mut a = job_json(&url, &file, &[&wait_for_b]);
        let mut b = job_json(&url, &file, &[&format!("touch {}", flag.display())]);
        a["id"] = 21.into();
        b["id"] = 22.into();
        mock.jobs.lock().unwrap().extend([a, b]);
        let work = tempfile::tempdir().unwrap();
        let opts = RunnerOptions { once: false, ..options(&url, "RUNNER", work.path()) };
        let runner = tokio::spawn(run(opts));
        let started = std::time::Instant::now();
        while mock.finished.lock().unwrap().len() < 2 && started.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        runner.abort();
        let mut done = mock.finished.lock().unwrap().clone();
        done.sort_by_key(|(id, _)| *id);
        let statuses: Vec<_> = done.iter().map(|(id, body)| (*id, body["status"].clone())).collect();
        assert_eq!(statuses, [(21, "success".into()), (22, "success".into())], "{}", mock.log.lock().unwrap());
    }
}
