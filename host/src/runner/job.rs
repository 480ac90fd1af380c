//! How a job ended on this runner, and the report it makes of it. The wire types themselves
//! (the job the server sends, the finish the runner posts) are shared with the server in
//! [`super::protocol`].

pub(crate) use super::protocol::{FailureReason, Finish, Job, JobResult};

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
        Outcome::Failed { reason: Some(reason), exit_code: None }
    }

    /// The body of `POST /api/v1/jobs/{id}/finish`; `None` for a canceled job: the server
    /// already knows.
    pub(crate) fn finish(&self) -> Option<Finish> {
        match self {
            Outcome::Success => Some(Finish { status: JobResult::Success, exit_code: Some(0), failure_reason: None }),
            Outcome::Failed { reason, exit_code } => {
                Some(Finish { status: JobResult::Failed, exit_code: exit_code.map(i64::from), failure_reason: *reason })
            }
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
        let f = Outcome::Failed { reason: Some(FailureReason::JobTimeout), exit_code: None }.finish();
        assert_eq!(
            serde_json::to_value(f.unwrap()).unwrap(),
            serde_json::json!({"status": "failed", "exit_code": null, "failure_reason": "job_timeout"})
        );
        assert!(Outcome::Canceled.finish().is_none());
    }
}
