//! What the server hands a runner, and what the runner reports back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A job as `POST /api/v1/jobs/request` returns it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Job {
    pub id: u64,
    #[serde(default)]
    pub pipeline_id: Option<u64>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub stage: String,
    /// Job token: reads this job's push file, appends to its log, finishes it. Nothing else.
    pub token: String,
    #[serde(default)]
    pub script: Vec<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    pub sha256: String,
    pub file_name: String,
    pub file_url: String,
    #[serde(default)]
    pub commit_sha: Option<String>,
    #[serde(default)]
    pub extraction: Option<Extraction>,
}

fn default_timeout() -> u64 {
    3600
}

/// The format plugin's description of how to unpack the file.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Extraction {
    #[serde(default)]
    pub media_type: String,
    #[serde(default)]
    pub steps: Vec<Step>,
    /// A container image the plugin suggests; this runner runs on the host and ignores it.
    #[serde(default)]
    pub image: Option<String>,
}

/// One command: `tool` is looked up on PATH; `{archive}`, `{dest}` and `{scratch}` in `argv` become
/// absolute paths.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Step {
    pub tool: String,
    #[serde(default)]
    pub argv: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FailureReason {
    ScriptFailure,
    JobTimeout,
    ExtractionFailure,
    DownloadFailure,
    MissingTool,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failed {
        reason: Option<FailureReason>,
        exit_code: Option<i32>,
    },
    /// The server canceled the job; nothing more is reported.
    Canceled,
}

impl Outcome {
    pub(crate) fn failed(reason: FailureReason) -> Outcome {
        Outcome::Failed {
            reason: Some(reason),
            exit_code: None,
        }
    }
}

/// Body of `POST /api/v1/jobs/{id}/finish`.
#[derive(Debug, Serialize)]
pub(crate) struct Finish {
    pub status: &'static str,
    pub exit_code: Option<i32>,
    pub failure_reason: Option<FailureReason>,
}

impl Finish {
    /// `None` for a canceled job: the server already knows.
    pub(crate) fn from_outcome(outcome: &Outcome) -> Option<Finish> {
        match outcome {
            Outcome::Success => Some(Finish {
                status: "success",
                exit_code: Some(0),
                failure_reason: None,
            }),
            Outcome::Failed { reason, exit_code } => Some(Finish {
                status: "failed",
                exit_code: *exit_code,
                failure_reason: *reason,
            }),
            Outcome::Canceled => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_job() {
        let job: Job = serde_json::from_str(
            r#"{"id": 12, "pipeline_id": 5, "name": "check", "stage": "test", "token": "JOBTOKEN",
                "script": ["line1", "line2"], "variables": {"SLUICE_PACKAGE_NAME": "left-pad"},
                "timeout_seconds": 3600, "sha256": "ab", "file_name": "left-pad-1.0.0.tgz",
                "file_url": "http://x/api/v1/pushes/ab/file", "commit_sha": null,
                "extraction": {"media_type": "application/gzip",
                  "steps": [{"tool": "tar", "argv": ["-xzf", "{archive}", "-C", "{dest}", "--strip-components=1"]}],
                  "image": null}}"#,
        )
        .unwrap();
        assert_eq!(job.id, 12);
        assert_eq!(job.extraction.unwrap().steps[0].tool, "tar");
        assert_eq!(job.variables["SLUICE_PACKAGE_NAME"], "left-pad");
    }

    #[test]
    fn finish_bodies() {
        let f = Finish::from_outcome(&Outcome::Failed {
            reason: Some(FailureReason::JobTimeout),
            exit_code: None,
        });
        assert_eq!(
            serde_json::to_value(f.unwrap()).unwrap(),
            serde_json::json!({"status": "failed", "exit_code": null, "failure_reason": "job_timeout"})
        );
        assert!(Finish::from_outcome(&Outcome::Canceled).is_none());
    }
}
