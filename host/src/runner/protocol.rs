//! The runner API's wire types, serialised by the server (`pipeline/mod.rs`, `http/pipelines.rs`)
//! and read by `sluice runner` (`runner/*`): one definition, so the two sides cannot drift.
//!
//! - `POST /api/v1/jobs/request` answers a [`Job`] (201) or nothing (204);
//! - `POST /api/v1/jobs/{id}/log` takes text and answers a [`LogAnswer`];
//! - `POST /api/v1/jobs/{id}/finish` takes a [`Finish`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::state::Status;

/// A job as `POST /api/v1/jobs/request` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    pub pipeline_id: u64,
    pub name: String,
    pub stage: String,
    /// Job token: reads this job's push file, appends to its log, finishes it. Nothing else.
    pub token: String,
    pub script: Vec<String>,
    pub variables: BTreeMap<String, String>,
    pub timeout_seconds: u64,
    pub sha256: String,
    pub file_name: String,
    /// Where the job token downloads the push's file.
    pub file_url: String,
    pub commit_sha: Option<String>,
    /// How to unpack the file, as the format plugin described it; `None`: nothing to unpack.
    pub extraction: Option<Extraction>,
}

/// The format plugin's description of how to unpack the file (the WIT `extraction` record).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extraction {
    pub media_type: String,
    pub steps: Vec<Step>,
    /// A container image the plugin suggests; the built-in runner runs on the host and ignores it.
    pub image: Option<String>,
}

/// One command: `tool` is looked up on PATH; `{archive}`, `{dest}` and `{scratch}` in `argv` become
/// absolute paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub tool: String,
    pub argv: Vec<String>,
}

/// Why a job failed, as far as the runner (or the server, for a silent runner) can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    ScriptFailure,
    JobTimeout,
    ExtractionFailure,
    DownloadFailure,
    MissingTool,
    /// Set by the server when the runner stopped reporting.
    RunnerLost,
}

impl FailureReason {
    /// The word stored and shown (`failure_reason` of a job in the API).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::ScriptFailure => "script_failure",
            FailureReason::JobTimeout => "job_timeout",
            FailureReason::ExtractionFailure => "extraction_failure",
            FailureReason::DownloadFailure => "download_failure",
            FailureReason::MissingTool => "missing_tool",
            FailureReason::RunnerLost => "runner_lost",
        }
    }
}

/// A job's end as a runner reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobResult {
    Success,
    Failed,
}

impl JobResult {
    pub fn status(self) -> Status {
        match self {
            JobResult::Success => Status::Success,
            JobResult::Failed => Status::Failed,
        }
    }
}

/// Body of `POST /api/v1/jobs/{id}/finish`; the server answers the job's new status as
/// `{"status": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finish {
    pub status: JobResult,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub failure_reason: Option<FailureReason>,
}

/// The answer to a log append and to a finish: the job's status (a runner stops on `canceled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogAnswer {
    pub status: Status,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            id: 12,
            pipeline_id: 5,
            name: "check".into(),
            stage: "test".into(),
            token: "JOBTOKEN".into(),
            script: vec!["line1".into()],
            variables: BTreeMap::from([("SLUICE_PACKAGE_NAME".into(), "left-pad".into())]),
            timeout_seconds: 3600,
            sha256: "ab".into(),
            file_name: "left-pad-1.0.0.tgz".into(),
            file_url: "http://x/api/v1/pushes/ab/file".into(),
            commit_sha: None,
            extraction: Some(Extraction {
                media_type: "application/gzip".into(),
                steps: vec![Step { tool: "tar".into(), argv: vec!["-xzf".into(), "{archive}".into()] }],
                image: None,
            }),
        }
    }

    #[test]
    fn a_job_reads_back_as_it_was_sent() {
        let sent = serde_json::to_string(&job()).unwrap();
        assert_eq!(serde_json::from_str::<Job>(&sent).unwrap(), job());
    }

    #[test]
    fn the_plugins_extraction_record_reads_as_the_runners() {
        let wit = crate::plugin::wit::Extraction {
            media_type: "application/gzip".into(),
            steps: vec![crate::plugin::wit::ExtractionStep { tool: "tar".into(), argv: vec!["-xzf".into()] }],
            image: Some("debian".into()),
        };
        let read: Extraction = serde_json::from_value(serde_json::to_value(&wit).unwrap()).unwrap();
        assert_eq!(read.steps[0].tool, "tar");
        assert_eq!(read.image.as_deref(), Some("debian"));
    }

    #[test]
    fn finish_bodies_are_the_documented_json() {
        let f = Finish { status: JobResult::Failed, exit_code: None, failure_reason: Some(FailureReason::JobTimeout) };
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({"status": "failed", "exit_code": null, "failure_reason": "job_timeout"})
        );
        // A finish that names only its status is complete.
        let f: Finish = serde_json::from_str(r#"{"status": "success"}"#).unwrap();
        assert_eq!(f, Finish { status: JobResult::Success, exit_code: None, failure_reason: None });
        assert!(serde_json::from_str::<Finish>(r#"{"status": "canceled"}"#).is_err());
        for r in [FailureReason::ScriptFailure, FailureReason::RunnerLost, FailureReason::MissingTool] {
            assert_eq!(serde_json::to_value(r).unwrap(), serde_json::json!(r.as_str()));
        }
    }
}
