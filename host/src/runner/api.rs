//! The runner's side of the jobs API.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::exec::Run;
use super::job::{FailureReason, Finish, JobResult, Outcome};
use super::protocol::LogAnswer;
use super::{process, workspace};
use crate::domain::state::Status;

pub(crate) enum RequestError {
    /// Ask again later (connection refused, server error, ...).
    Transient(anyhow::Error),
    /// Do not ask again (the token is refused, ...).
    Fatal(anyhow::Error),
}

/// Log batches: sent when this much is waiting, or this often, or (empty) this often at least.
const LOG_BATCH_BYTES: usize = 8 * 1024;
const LOG_BATCH_EVERY: Duration = Duration::from_millis(200);
const LOG_HEARTBEAT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub(crate) struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
    name: String,
}

impl Api {
    pub(crate) fn new(url: &str, token: &str, name: String) -> anyhow::Result<Api> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("sluice-runner/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Api { client, base: url.trim_end_matches('/').to_owned(), token: token.to_owned(), name })
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn runner_name(&self) -> &str {
        &self.name
    }

    /// One long poll. `Some(job)` (as JSON: it is parsed by the caller, which can still fail a job it
    /// cannot read) or `None` when the wait ended without a job.
    pub(crate) async fn request_job(&self, wait: u64) -> Result<Option<serde_json::Value>, RequestError> {
        let response = self
            .client
            .post(format!("{}/api/v1/jobs/request?wait={wait}", self.base))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "runner": self.name }))
            .timeout(Duration::from_secs(wait + 30))
            .send()
            .await
            .map_err(|e| RequestError::Transient(e.into()))?;
        let status = response.status();
        match status {
            StatusCode::NO_CONTENT => Ok(None),
            StatusCode::OK | StatusCode::CREATED => {
                let body = response.bytes().await.map_err(|e| RequestError::Transient(e.into()))?;
                serde_json::from_slice(&body).map(Some).map_err(|e| {
                    RequestError::Fatal(anyhow::anyhow!("the server's answer to a job request is not JSON: {e}"))
                })
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(RequestError::Fatal(anyhow::anyhow!(
                "the server refused the runner token (HTTP {status}): a token with the `runner` scope is needed"
            ))),
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT => {
                Err(RequestError::Transient(anyhow::anyhow!("HTTP {s}")))
            }
            s => {
                let body = response.text().await.unwrap_or_default();
                Err(RequestError::Fatal(anyhow::anyhow!(
                    "unexpected answer to a job request: HTTP {s}: {}",
                    body.trim()
                )))
            }
        }
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_owned()
        }
    }

    /// Downloads the push's file into the job folder and checks its sha256.
    pub(crate) async fn download(&self, run: &mut Run<'_>) -> Result<(), Outcome> {
        let url = self.absolute(&run.job.file_url);
        run.log.line(format!("Downloading {} (sha256 {})", run.job.file_name, run.job.sha256)).await;
        let attempts = async {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let result = self.try_download(&url, &run.job.token, &run.dir.archive).await;
                match result {
                    Err((message, true)) if attempt < 3 => {
                        run.log.line(format!("{message}; retrying")).await;
                        tokio::time::sleep(Duration::from_secs(attempt)).await;
                    }
                    other => break other.map_err(|(message, _)| message),
                }
            }
        };
        let mut cancel = run.cancel.clone();
        let result = tokio::select! {
            result = attempts => result,
            _ = tokio::time::sleep_until(run.deadline) => return Err(run.timed_out().await),
            _ = process::canceled(&mut cancel) => return Err(Outcome::Canceled),
        };
        match result {
            Ok((sha256, size)) if sha256.eq_ignore_ascii_case(run.job.sha256.trim()) => {
                run.log.line(format!("Downloaded {size} bytes; sha256 verified")).await;
                Ok(())
            }
            Ok((sha256, _)) => {
                run.log.line(format!("ERROR: sha256 mismatch: expected {}, got {sha256}", run.job.sha256)).await;
                Err(Outcome::failed(FailureReason::DownloadFailure))
            }
            Err(message) => {
                run.log.line(format!("ERROR: {message}")).await;
                Err(Outcome::failed(FailureReason::DownloadFailure))
            }
        }
    }

    /// The error says whether trying again may help.
    async fn try_download(
        &self,
        url: &str,
        token: &str,
        dest: &std::path::Path,
    ) -> Result<(String, u64), (String, bool)> {
        let response = self
            .client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| (format!("download failed: {e}"), true))?;
        let status = response.status();
        if !status.is_success() {
            return Err((format!("download failed: HTTP {status} from {url}"), status.is_server_error()));
        }
        workspace::save_stream(response.bytes_stream(), dest).await.map_err(|m| (m, true))
    }

    /// Appends to the job's log. `Ok(true)`: the job is no longer running on the server (canceled,
    /// or gone): stop it.
    async fn append_log(&self, id: u64, token: &str, text: String) -> Result<bool, String> {
        let response = self
            .client
            .post(format!("{}/api/v1/jobs/{id}/log", self.base))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(text)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::GONE)
        {
            // The job token no longer opens this job: it was canceled or removed.
            return Ok(true);
        }
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        // `running` goes on; `canceled`, or any other state the server has put the job in (a
        // finished job, one it gave up on), stops it.
        // An answer this runner cannot read says nothing: the job goes on.
        let answer: Option<LogAnswer> = response.json().await.ok();
        Ok(answer.is_some_and(|a| a.status != Status::Running))
    }

    /// Ships log chunks as they come, batched, with an empty heartbeat when there is no output; on
    /// cancellation sets `cancel` and drops the rest. Returns once `chunks` is closed and what it
    /// held is sent; `true` when the job was canceled.
    pub(crate) async fn ship_log(
        &self,
        id: u64,
        token: &str,
        mut chunks: mpsc::Receiver<Vec<u8>>,
        cancel: watch::Sender<bool>,
    ) -> bool {
        let mut buf: Vec<u8> = Vec::new();
        let mut last_post = Instant::now();
        let mut tick = tokio::time::interval(LOG_BATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut closed = false;
        let mut canceled = false;
        let mut final_failures = 0u64;
        loop {
            let flush = tokio::select! {
                chunk = chunks.recv(), if !closed => match chunk {
                    Some(chunk) => {
                        if !canceled {
                            buf.extend_from_slice(&chunk);
                        }
                        buf.len() >= LOG_BATCH_BYTES
                    }
                    None => {
                        closed = true;
                        true
                    }
                },
                _ = tick.tick() => !buf.is_empty() || last_post.elapsed() >= LOG_HEARTBEAT,
            };
            if canceled {
                if closed {
                    return true;
                }
                continue;
            }
            if closed && buf.is_empty() {
                return false;
            }
            if !flush {
                continue;
            }
            let cut = if closed { buf.len() } else { utf8_cut(&buf) };
            let text = String::from_utf8_lossy(&buf[..cut]).into_owned();
            match self.append_log(id, token, text).await {
                Ok(false) => {
                    buf.drain(..cut);
                    last_post = Instant::now();
                }
                Ok(true) => {
                    canceled = true;
                    buf.clear();
                    let _ = cancel.send(true);
                    if closed {
                        return true;
                    }
                }
                Err(e) => {
                    tracing::warn!(job = id, "cannot send the job's log: {e}");
                    if closed {
                        final_failures += 1;
                        if final_failures >= 5 {
                            return false;
                        }
                        tokio::time::sleep(Duration::from_secs(final_failures)).await;
                    } else if buf.len() > 64 * LOG_BATCH_BYTES * 16 {
                        // The server has been unreachable for a long while: keep the newest part.
                        let keep = buf.split_off(buf.len() - LOG_BATCH_BYTES * 64);
                        buf = b"\n[... log dropped: the server was unreachable ...]\n".to_vec();
                        buf.extend_from_slice(&keep);
                    }
                }
            }
        }
    }

    /// Reports how the job ended, retrying while the server is unreachable.
    pub(crate) async fn finish(&self, id: u64, token: &str, finish: &Finish) {
        for attempt in 1..=5u64 {
            let sent = self
                .client
                .post(format!("{}/api/v1/jobs/{id}/finish", self.base))
                .bearer_auth(token)
                .json(finish)
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => return,
                Ok(r) if !r.status().is_server_error() => {
                    tracing::warn!(job = id, "the server refused the job's result: HTTP {}", r.status());
                    return;
                }
                Ok(r) => tracing::warn!(job = id, "cannot report the job's result: HTTP {}", r.status()),
                Err(e) => tracing::warn!(job = id, "cannot report the job's result: {e}"),
            }
            tokio::time::sleep(Duration::from_secs(attempt)).await;
        }
        tracing::error!(job = id, "gave up reporting the job's result");
    }

    /// Fails a job whose description this runner cannot read, when it can tell which job it is.
    pub(crate) async fn reject_job(&self, value: &serde_json::Value, error: &str) {
        let id = value.get("id").and_then(|v| v.as_u64());
        let token = value.get("token").and_then(|v| v.as_str());
        let (Some(id), Some(token)) = (id, token) else {
            return;
        };
        let _ =
            self.append_log(id, token, format!("ERROR: runner {} cannot read this job: {error}\n", self.name)).await;
        self.finish(id, token, &Finish { status: JobResult::Failed, exit_code: None, failure_reason: None }).await;
    }
}

/// Where to cut `buf` so that a character split between two reads is not split between two posts.
fn utf8_cut(buf: &[u8]) -> usize {
    let n = buf.len();
    for back in 1..=n.min(4) {
        let b = buf[n - back];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let need = match b {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if need > back { n - back } else { n };
    }
    n
}

#[cfg(test)]
mod tests {
    use super::utf8_cut;

    #[test]
    fn utf8_cut_keeps_split_characters_whole() {
        let s = "añ€😀".as_bytes();
        assert_eq!(utf8_cut(s), s.len());
        assert_eq!(utf8_cut(&s[..s.len() - 1]), s.len() - 4);
        assert_eq!(utf8_cut(&s[..2]), 1);
        assert_eq!(utf8_cut(b"plain"), 5);
        assert_eq!(utf8_cut(b""), 0);
    }
}
