//! The gate: the one place that decides whether a version is visible to clients.
//!
//! A repository is either open (`gate = "none"`, the default: a version is served as soon as it
//! is stored) or gated (`gate = "pipeline"`: a version is served once its push's pipeline
//! succeeded). A stored file carries `released`, set at publish for an open repository and by
//! the pipeline's success for a gated one. Everyone who shows or serves a file to clients asks
//! here:
//!
//! - publish (`registry/protocol.rs`): [`released_at_publish`];
//! - the store's client queries (`store/db/mod.rs`, `Visibility`): [`only_released`];
//! - downloads by name and by address (`registry/protocol.rs` `serve_file`,
//!   `http/pipelines.rs` `push_file`) and the API's package view (`http/api.rs`): [`visible`];
//! - the pipeline state machine (`domain/state.rs`): [`releases`], persisted by the store's
//!   `release_push`;
//! - a proxy's file request for a version its gate holds (quarantine, `registry/upstream.rs`):
//!   [`may_release_unattended`] says whether waiting a moment (`quarantine_wait`) can help.
//!
//! - an admin's release past the gate (`http/ui/gate.rs` `release`, for the UI and the API, and
//!   the store's `ui_release`, which asks again in its transaction): [`release_reason`] and
//!   [`release_needs_reason`].
//!
//! A pipeline waiting at a `when: manual` job (that may not fail) is not a success, so its
//! version stays hidden until someone allowed to approve plays the job and it passes.

use super::state::Status;
use crate::config::Gate;

/// Whether clients may see a file of a repository with this gate, given its `released` flag.
pub fn visible(gate: Gate, released: bool) -> bool {
    match gate {
        Gate::None => true,
        Gate::Pipeline => released,
    }
}

/// Whether a file is released as it is stored, before any pipeline ran.
pub fn released_at_publish(gate: Gate) -> bool {
    visible(gate, false)
}

/// Whether client-facing queries must leave out files not released yet.
pub fn only_released(gate: Gate) -> bool {
    !visible(gate, false)
}

/// Whether a pipeline reaching this status releases its push's files (and their pending tags).
pub fn releases(pipeline: Status) -> bool {
    pipeline == Status::Success
}

/// Whether a pipeline in this status may still release its push with nobody acting: it has
/// not finished and waits for no one's approval. A client asking for a held file is worth
/// keeping waiting (a bounded time) for such a pipeline only; a failed, canceled or manual one
/// needs a person (a retry, a release, a play).
pub fn may_release_unattended(pipeline: Status) -> bool {
    matches!(pipeline, Status::Created | Status::Pending | Status::Running)
}

/// The longest reason a release may give, in characters: a sentence or two for the audit log
/// (where the version was reviewed, the false positive's ticket), not a document.
pub const MAX_RELEASE_REASON: usize = 1000;

/// Whether an admin's release past a pipeline in this status must say why. Only a failed
/// pipeline has a verdict the release overrides (a check said no), and an override that is
/// audited without its reason tells the next reader nothing. A pipeline still running, waiting
/// for approval (a manual gate) or canceled has no verdict yet: a reason is kept if given.
pub fn release_needs_reason(pipeline: Status) -> bool {
    pipeline == Status::Failed
}

/// The reason a release gives, as it is stored: trimmed, `None` when blank. Refused (with why)
/// when longer than [`MAX_RELEASE_REASON`] or when it holds control characters (a line break
/// would forge lines in the server's log and break the one-line views of the audit log).
pub fn release_reason(given: Option<&str>) -> Result<Option<String>, String> {
    let Some(reason) = given.map(str::trim).filter(|r| !r.is_empty()) else { return Ok(None) };
    if reason.chars().count() > MAX_RELEASE_REASON {
        return Err(format!("a release's reason is at most {MAX_RELEASE_REASON} characters"));
    }
    if reason.chars().any(char::is_control) {
        return Err("a release's reason is one line of text, without control characters".into());
    }
    Ok(Some(reason.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_repository_shows_everything_at_once() {
        assert!(released_at_publish(Gate::None));
        assert!(visible(Gate::None, false));
        assert!(!only_released(Gate::None));
    }

    #[test]
    fn a_gated_repository_shows_released_files_only() {
        assert!(!released_at_publish(Gate::Pipeline));
        assert!(!visible(Gate::Pipeline, false));
        assert!(visible(Gate::Pipeline, true));
        assert!(only_released(Gate::Pipeline));
    }

    #[test]
    fn only_success_releases() {
        for s in Status::ALL {
            assert_eq!(releases(s), s == Status::Success, "{s}");
        }
    }

    #[test]
    fn only_an_unfinished_pipeline_nobody_must_act_on_is_worth_waiting_for() {
        for s in Status::ALL {
            let waits = matches!(s, Status::Created | Status::Pending | Status::Running);
            assert_eq!(may_release_unattended(s), waits, "{s}");
            // Whatever is worth waiting for has not finished, and a finished one never is.
            assert!(!(waits && s.is_final()), "{s}");
        }
    }

    #[test]
    fn only_a_failed_pipeline_needs_a_reason_to_be_released_past() {
        for s in Status::ALL {
            assert_eq!(release_needs_reason(s), s == Status::Failed, "{s}");
        }
    }

    #[test]
    fn a_release_reason_is_one_trimmed_line_of_bounded_length() {
        assert_eq!(release_reason(None), Ok(None));
        assert_eq!(release_reason(Some(" \t ")), Ok(None), "blank is no reason");
        assert_eq!(release_reason(Some("  a false positive\n")), Ok(Some("a false positive".into())));
        assert_eq!(release_reason(Some("vérifié à la main")), Ok(Some("vérifié à la main".into())));
        assert!(release_reason(Some("line one\nline two")).unwrap_err().contains("one line"));
        assert!(release_reason(Some("bell\u{7}")).is_err());
        let longest = "é".repeat(MAX_RELEASE_REASON);
        assert_eq!(release_reason(Some(&longest)), Ok(Some(longest.clone())), "counted in characters, not bytes");
        assert!(release_reason(Some(&format!("{longest}x"))).unwrap_err().contains("at most"));
    }
}
