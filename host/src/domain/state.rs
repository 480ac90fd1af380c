//! The pipeline state machine, typed and pure: the statuses of jobs and pipelines, and the one
//! function that says what an event does to them. The store loads a pipeline's jobs, asks
//! [`transition`], and persists the answer; nothing else decides a status.
//!
//! How a pipeline moves:
//! - Stages run in order. When every job of the earlier stages is done, the jobs of the next
//!   stage become `pending` (runners take them) or, for a `when: manual` job, `manual` (it waits
//!   until someone plays it).
//! - A job is *done* when its status is final, or when it is a manual job that may fail
//!   (`allow_failure: true`) and nobody played it: such a job never holds the pipeline up.
//! - After a job that may not fail failed, later stages' waiting jobs are `skipped`.
//! - The pipeline's status follows its jobs: once all are done it is `failed` (a job that may not
//!   fail failed), `canceled` (a job was canceled) or `success`; before that `running`, `pending`,
//!   or `manual` when the only thing left is a manual job waiting to be played.
//! - Whether a pipeline's outcome releases the version to clients is the gate's rule
//!   ([`crate::domain::gate::releases`]); the transition reports it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The status of a job or of a pipeline. Serialised (API, UI, webhooks, SQL) as the lower-case
/// word, as before the enum existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Planned; its stage has not started.
    Created,
    /// Waiting for a runner.
    Pending,
    /// A runner has it.
    Running,
    /// A `when: manual` job waiting to be played (for a pipeline: waiting at such a job).
    Manual,
    Success,
    Failed,
    Canceled,
    /// Not run, because an earlier stage failed.
    Skipped,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Created,
        Status::Pending,
        Status::Running,
        Status::Manual,
        Status::Success,
        Status::Failed,
        Status::Canceled,
        Status::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Manual => "manual",
            Status::Success => "success",
            Status::Failed => "failed",
            Status::Canceled => "canceled",
            Status::Skipped => "skipped",
        }
    }

    /// A status that will not change any more (a `manual` job can still be played).
    pub fn is_final(self) -> bool {
        matches!(self, Status::Success | Status::Failed | Status::Canceled | Status::Skipped)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a pipeline status")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Status, UnknownStatus> {
        Status::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// What the state machine needs to know of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobState {
    pub id: i64,
    pub stage_index: i64,
    pub status: Status,
    pub allow_failure: bool,
    /// A `when: manual` job: it waits to be played when its stage comes.
    pub manual: bool,
}

impl JobState {
    /// Whether the job no longer holds up its stage (see the module's description).
    fn done(&self) -> bool {
        self.status.is_final() || (self.status == Status::Manual && self.allow_failure)
    }

    fn blocks(&self) -> bool {
        self.status == Status::Failed && !self.allow_failure
    }
}

/// What happened to a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Look again (after the pipeline was created, reset or a job was taken or lost).
    Advance,
    /// A runner reported its job's result.
    Finish { job: i64, success: bool },
    /// Someone allowed to approve played a manual job.
    Play { job: i64 },
    /// An admin canceled the pipeline.
    Cancel,
}

/// What an event does: the jobs whose status changes, the pipeline's status after it, and
/// whether the pipeline just reached the outcome that releases its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub jobs: Vec<(i64, Status)>,
    pub status: Status,
    pub release: bool,
}

impl Transition {
    fn none(status: Status) -> Transition {
        Transition { jobs: Vec::new(), status, release: false }
    }

    /// The new status of `job`, if this transition changes it.
    pub fn job(&self, job: i64) -> Option<Status> {
        self.jobs.iter().find(|(id, _)| *id == job).map(|(_, s)| *s)
    }
}

/// An event that does not apply to the pipeline as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("job {0} is not part of this pipeline")]
    NoSuchJob(i64),
    #[error("job {job} is {status}; only a job waiting in `manual` can be played")]
    NotManual { job: i64, status: Status },
}

/// The state machine: `pipeline` and `jobs` as stored, and an event. A finish for a job that is
/// no longer running (it was canceled or reaped) changes nothing: its runner learns that from
/// its next call.
pub fn transition(pipeline: Status, jobs: &[JobState], event: Event) -> Result<Transition, Refused> {
    let mut now: Vec<JobState> = jobs.to_vec();
    let find = |now: &[JobState], id: i64| now.iter().position(|j| j.id == id).ok_or(Refused::NoSuchJob(id));
    match event {
        Event::Cancel => {
            if pipeline.is_final() {
                return Ok(Transition::none(pipeline));
            }
            for j in now.iter_mut().filter(|j| !j.status.is_final()) {
                j.status = Status::Canceled;
            }
            return Ok(Transition { jobs: changes(jobs, &now), status: Status::Canceled, release: false });
        }
        Event::Finish { job, success } => {
            let i = find(&now, job)?;
            if now[i].status != Status::Running {
                return Ok(Transition::none(pipeline));
            }
            now[i].status = if success { Status::Success } else { Status::Failed };
        }
        Event::Play { job } => {
            let i = find(&now, job)?;
            if now[i].status != Status::Manual {
                return Err(Refused::NotManual { job, status: now[i].status });
            }
            now[i].status = Status::Pending;
        }
        Event::Advance => {}
    }
    // A canceled pipeline stays canceled: its runners' late results are recorded, nothing starts.
    if pipeline == Status::Canceled {
        return Ok(Transition { jobs: changes(jobs, &now), status: pipeline, release: false });
    }
    settle(&mut now);
    let status = pipeline_status(&now);
    let release = status != pipeline && super::gate::releases(status);
    Ok(Transition { jobs: changes(jobs, &now), status, release })
}

/// Starts the first stage not done yet, and skips what follows a blocking failure.
fn settle(jobs: &mut [JobState]) {
    let mut stages: Vec<i64> = jobs.iter().map(|j| j.stage_index).collect();
    stages.sort_unstable();
    stages.dedup();
    let mut blocked = false;
    for stage in stages {
        let in_stage = jobs.iter_mut().filter(|j| j.stage_index == stage);
        if blocked {
            for j in in_stage.filter(|j| matches!(j.status, Status::Created | Status::Pending | Status::Manual)) {
                j.status = Status::Skipped;
            }
            continue;
        }
        let mut done = true;
        for j in in_stage {
            if j.status == Status::Created {
                j.status = if j.manual { Status::Manual } else { Status::Pending };
            }
            done &= j.done();
            blocked |= j.blocks();
        }
        if !done {
            // A stage still running does not skip anything yet: later stages wait.
            break;
        }
    }
}

fn pipeline_status(jobs: &[JobState]) -> Status {
    if jobs.iter().all(JobState::done) {
        if jobs.iter().any(JobState::blocks) {
            Status::Failed
        } else if jobs.iter().any(|j| j.status == Status::Canceled) {
            Status::Canceled
        } else {
            Status::Success
        }
    } else if jobs.iter().any(|j| j.status == Status::Running) {
        Status::Running
    } else if jobs.iter().any(|j| j.status == Status::Pending) {
        Status::Pending
    } else if jobs.iter().any(|j| j.status == Status::Manual && !j.done()) {
        Status::Manual
    } else {
        Status::Pending
    }
}

fn changes(before: &[JobState], after: &[JobState]) -> Vec<(i64, Status)> {
    before.iter().zip(after).filter(|(b, a)| b.status != a.status).map(|(_, a)| (a.id, a.status)).collect()
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    fn job(id: i64, stage_index: i64, status: Status) -> JobState {
        JobState { id, stage_index, status, allow_failure: false, manual: false }
    }
    fn may_fail(j: JobState) -> JobState {
        JobState { allow_failure: true, ..j }
    }
    fn manual(j: JobState) -> JobState {
        JobState { manual: true, ..j }
    }
    fn run(pipeline: Status, jobs: &[JobState], event: Event) -> Transition {
        transition(pipeline, jobs, event).unwrap()
    }

    /// The metadata job (done by the host) and two runner stages.
    fn planned() -> Vec<JobState> {
        vec![job(1, 0, Success), job(2, 1, Created), job(3, 1, Created), job(4, 2, Created)]
    }

    #[test]
    fn statuses_read_and_write_as_the_words_the_api_always_used() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        assert!("blocked".parse::<Status>().is_err());
        let finals: Vec<Status> = Status::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [Success, Failed, Canceled, Skipped]);
    }

    #[test]
    fn a_new_pipeline_starts_its_first_runner_stage_only() {
        let t = run(Created, &planned(), Event::Advance);
        assert_eq!(t, Transition { jobs: vec![(2, Pending), (3, Pending)], status: Pending, release: false });
    }

    #[test]
    fn advancing_twice_changes_nothing() {
        let jobs = [job(1, 0, Success), job(2, 1, Pending), job(3, 1, Pending), job(4, 2, Created)];
        assert_eq!(run(Pending, &jobs, Event::Advance), Transition { jobs: vec![], status: Pending, release: false });
    }

    #[test]
    fn a_taken_job_makes_the_pipeline_running() {
        let jobs = [job(1, 0, Success), job(2, 1, Running), job(3, 1, Pending), job(4, 2, Created)];
        assert_eq!(run(Pending, &jobs, Event::Advance).status, Running);
    }

    #[test]
    fn the_next_stage_waits_for_every_job_of_this_one() {
        let jobs = [job(1, 0, Success), job(2, 1, Running), job(3, 1, Running), job(4, 2, Created)];
        let t = run(Running, &jobs, Event::Finish { job: 2, success: true });
        assert_eq!(t, Transition { jobs: vec![(2, Success)], status: Running, release: false });
        let jobs = [job(1, 0, Success), job(2, 1, Success), job(3, 1, Running), job(4, 2, Created)];
        let t = run(Running, &jobs, Event::Finish { job: 3, success: true });
        assert_eq!(t, Transition { jobs: vec![(3, Success), (4, Pending)], status: Pending, release: false });
    }

    #[test]
    fn the_last_success_succeeds_the_pipeline_and_releases() {
        let jobs = [job(1, 0, Success), job(2, 1, Running)];
        let t = run(Running, &jobs, Event::Finish { job: 2, success: true });
        assert_eq!(t, Transition { jobs: vec![(2, Success)], status: Success, release: true });
    }

    #[test]
    fn a_pipeline_of_host_jobs_only_succeeds_at_once() {
        assert_eq!(
            run(Created, &[job(1, 0, Success)], Event::Advance),
            Transition { jobs: vec![], status: Success, release: true }
        );
    }

    #[test]
    fn a_failure_skips_later_stages_and_fails_the_pipeline() {
        let jobs = [
            job(1, 0, Success),
            job(2, 1, Running),
            job(3, 1, Success),
            job(4, 2, Created),
            manual(job(5, 3, Created)),
        ];
        let t = run(Running, &jobs, Event::Finish { job: 2, success: false });
        assert_eq!(
            t,
            Transition { jobs: vec![(2, Failed), (4, Skipped), (5, Skipped)], status: Failed, release: false }
        );
    }

    #[test]
    fn a_failure_waits_for_the_rest_of_its_stage() {
        let jobs = [job(1, 0, Success), job(2, 1, Running), job(3, 1, Running), job(4, 2, Created)];
        let t = run(Running, &jobs, Event::Finish { job: 2, success: false });
        assert_eq!(t, Transition { jobs: vec![(2, Failed)], status: Running, release: false });
    }

    #[test]
    fn a_job_that_may_fail_does_not_stop_the_pipeline() {
        let jobs = [job(1, 0, Success), may_fail(job(2, 1, Running)), job(3, 2, Created)];
        let t = run(Running, &jobs, Event::Finish { job: 2, success: false });
        assert_eq!(t, Transition { jobs: vec![(2, Failed), (3, Pending)], status: Pending, release: false });
        let jobs = [job(1, 0, Success), may_fail(job(2, 1, Failed)), job(3, 2, Running)];
        assert_eq!(run(Running, &jobs, Event::Finish { job: 3, success: true }).status, Success);
    }

    #[test]
    fn a_broken_pipeline_file_fails_the_pipeline_at_once() {
        // The host's `pipeline-file` job stands failed in the first stage.
        let jobs = [job(1, 0, Success), job(2, 0, Failed)];
        assert_eq!(run(Created, &jobs, Event::Advance), Transition { jobs: vec![], status: Failed, release: false });
    }

    #[test]
    fn a_late_finish_of_a_job_no_longer_running_changes_nothing() {
        let jobs = [job(1, 0, Success), job(2, 1, Canceled)];
        assert_eq!(run(Canceled, &jobs, Event::Finish { job: 2, success: true }), Transition::none(Canceled));
        let jobs = [job(1, 0, Success), job(2, 1, Failed)];
        assert_eq!(run(Failed, &jobs, Event::Finish { job: 2, success: true }), Transition::none(Failed));
    }

    #[test]
    fn a_canceled_pipeline_stays_canceled() {
        let jobs = [job(1, 0, Success), job(2, 1, Canceled), job(3, 2, Canceled)];
        assert_eq!(run(Canceled, &jobs, Event::Advance), Transition::none(Canceled));
    }

    #[test]
    fn cancel_stops_every_unfinished_job() {
        let jobs =
            [job(1, 0, Success), job(2, 1, Running), job(3, 1, Pending), manual(job(4, 1, Manual)), job(5, 2, Created)];
        let t = run(Running, &jobs, Event::Cancel);
        assert_eq!(
            t,
            Transition {
                jobs: vec![(2, Canceled), (3, Canceled), (4, Canceled), (5, Canceled)],
                status: Canceled,
                release: false
            }
        );
    }

    #[test]
    fn cancel_of_a_finished_pipeline_changes_nothing() {
        let jobs = [job(1, 0, Success), job(2, 1, Success)];
        assert_eq!(run(Success, &jobs, Event::Cancel), Transition::none(Success));
    }

    #[test]
    fn a_retried_pipeline_starts_again() {
        // reset_pipeline replaced the runner jobs with new `created` ones.
        let jobs = [job(1, 0, Success), job(7, 1, Created)];
        assert_eq!(
            run(Created, &jobs, Event::Advance),
            Transition { jobs: vec![(7, Pending)], status: Pending, release: false }
        );
    }

    #[test]
    fn a_manual_job_waits_and_holds_the_pipeline_in_manual() {
        let jobs = [job(1, 0, Success), manual(job(2, 1, Created)), job(3, 2, Created)];
        let t = run(Created, &jobs, Event::Advance);
        assert_eq!(t, Transition { jobs: vec![(2, Manual)], status: Manual, release: false });
        // Nothing moves it but a play.
        let jobs = [job(1, 0, Success), manual(job(2, 1, Manual)), job(3, 2, Created)];
        assert_eq!(run(Manual, &jobs, Event::Advance), Transition::none(Manual));
    }

    #[test]
    fn a_manual_job_waits_after_the_stage_before_it() {
        let jobs = [job(1, 0, Success), job(2, 1, Running), manual(job(3, 2, Created))];
        let t = run(Running, &jobs, Event::Finish { job: 2, success: true });
        assert_eq!(t, Transition { jobs: vec![(2, Success), (3, Manual)], status: Manual, release: false });
    }

    #[test]
    fn a_manual_job_beside_a_running_one_leaves_the_pipeline_running() {
        let jobs = [job(1, 0, Success), job(2, 1, Running), manual(job(3, 1, Created))];
        let t = run(Pending, &jobs, Event::Advance);
        assert_eq!(t, Transition { jobs: vec![(3, Manual)], status: Running, release: false });
    }

    #[test]
    fn playing_queues_the_job_for_a_runner() {
        let jobs = [job(1, 0, Success), manual(job(2, 1, Manual)), job(3, 2, Created)];
        let t = run(Manual, &jobs, Event::Play { job: 2 });
        assert_eq!(t, Transition { jobs: vec![(2, Pending)], status: Pending, release: false });
        // Its success then releases the version like any other.
        let jobs = [job(1, 0, Success), manual(job(2, 1, Running))];
        assert!(run(Running, &jobs, Event::Finish { job: 2, success: true }).release);
    }

    #[test]
    fn only_a_waiting_manual_job_can_be_played() {
        let jobs = [job(1, 0, Success), job(2, 1, Pending), manual(job(3, 1, Success))];
        assert_eq!(
            transition(Pending, &jobs, Event::Play { job: 2 }),
            Err(Refused::NotManual { job: 2, status: Pending })
        );
        assert_eq!(
            transition(Pending, &jobs, Event::Play { job: 3 }),
            Err(Refused::NotManual { job: 3, status: Success })
        );
        assert_eq!(transition(Pending, &jobs, Event::Play { job: 9 }), Err(Refused::NoSuchJob(9)));
        assert_eq!(transition(Pending, &jobs, Event::Finish { job: 9, success: true }), Err(Refused::NoSuchJob(9)));
    }

    #[test]
    fn a_manual_job_that_may_fail_does_not_hold_the_pipeline() {
        let jobs = [job(1, 0, Success), may_fail(manual(job(2, 1, Created))), job(3, 2, Created)];
        let t = run(Created, &jobs, Event::Advance);
        assert_eq!(t, Transition { jobs: vec![(2, Manual), (3, Pending)], status: Pending, release: false });
        let jobs = [job(1, 0, Success), may_fail(manual(job(2, 1, Manual))), job(3, 2, Running)];
        let t = run(Running, &jobs, Event::Finish { job: 3, success: true });
        assert_eq!(t, Transition { jobs: vec![(3, Success)], status: Success, release: true });
        // Played later, it runs; the pipeline follows it again.
        let jobs = [job(1, 0, Success), may_fail(manual(job(2, 1, Manual))), job(3, 2, Success)];
        assert_eq!(
            run(Success, &jobs, Event::Play { job: 2 }),
            Transition { jobs: vec![(2, Pending)], status: Pending, release: false }
        );
    }

    #[test]
    fn a_manual_job_after_a_failure_is_skipped() {
        let jobs = [job(1, 0, Success), job(2, 1, Running), manual(job(3, 2, Created))];
        let t = run(Running, &jobs, Event::Finish { job: 2, success: false });
        assert_eq!(t, Transition { jobs: vec![(2, Failed), (3, Skipped)], status: Failed, release: false });
    }

    #[test]
    fn release_is_reported_once() {
        let jobs = [job(1, 0, Success), job(2, 1, Success)];
        assert_eq!(run(Success, &jobs, Event::Advance), Transition::none(Success));
    }
}
