//! The SQL of pipelines, jobs, pipeline files and webhook deliveries. What a status becomes is
//! decided by `domain::state`; this file loads what it needs and persists its answer.

use std::collections::BTreeMap;

use serde::Serialize;

use super::sql::{params, FromValue, Row, Sql, ToValue, Value};
use super::{now_ms, Db, DbError, Result};
use crate::domain::state::{self, Event, JobState, Refused, Status, Transition};

/// Most log kept per job; the rest is cut with a notice.
const MAX_LOG_BYTES: i64 = 4 << 20;

impl ToValue for Status {
    fn to_value(&self) -> Value {
        Value::Text(self.as_str().to_string())
    }
}

impl FromValue for Status {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        String::from_value(v)?.parse().map_err(|e: state::UnknownStatus| e.to_string())
    }
}

pub struct NewJob {
    pub name: String,
    pub stage: String,
    pub stage_index: usize,
    /// `host` (run by the server itself, already finished), `config` (stands for a pipeline file
    /// that could not be used; replaced on retry) or `runner`.
    pub kind: &'static str,
    pub script: Vec<String>,
    pub variables: BTreeMap<String, String>,
    pub allow_failure: bool,
    /// `when: manual`: waits in `manual` until played.
    pub manual: bool,
    pub timeout_seconds: u32,
    pub status: Status,
    pub log: String,
}

pub struct NewPipeline {
    pub source: String,
    /// The plugin's extraction descriptor, as JSON.
    pub extraction: serde_json::Value,
    pub variables: BTreeMap<String, String>,
    pub jobs: Vec<NewJob>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PipelineRow {
    pub id: i64,
    pub repository: String,
    pub push_id: i64,
    pub source: String,
    pub status: Status,
    pub variables: serde_json::Value,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub extraction: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobRow {
    pub id: i64,
    pub pipeline_id: i64,
    pub name: String,
    pub stage: String,
    pub stage_index: i64,
    pub kind: String,
    pub script: Vec<String>,
    pub variables: BTreeMap<String, String>,
    pub allow_failure: bool,
    pub timeout_seconds: i64,
    pub status: Status,
    pub runner: Option<String>,
    pub exit_code: Option<i64>,
    pub failure_reason: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// A `when: manual` job.
    pub manual: bool,
    /// Who played it (a token's name), and when.
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
}

impl JobRow {
    fn state(&self) -> JobState {
        JobState {
            id: self.id,
            stage_index: self.stage_index,
            status: self.status,
            allow_failure: self.allow_failure,
            manual: self.manual,
        }
    }
}

/// A pipeline whose status changed.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub pipeline: PipelineRow,
    pub previous: Status,
}

/// What an event did to a pipeline: the state machine's answer, and the pipeline's status change
/// if there was one (for the announcements).
#[derive(Debug, Clone)]
pub struct Stepped {
    pub transition: Transition,
    pub change: Option<StatusChange>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryRow {
    pub id: i64,
    pub repository: String,
    pub url: String,
    pub pipeline_id: i64,
    pub payload: String,
    pub attempts: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub delivered: bool,
    pub next_attempt_at: i64,
    pub created_at: i64,
}

const PIPELINE_COLUMNS: &str =
    "id, repository, push_id, source, status, variables, created_at, finished_at, extraction";
const JOB_COLUMNS: &str =
    "id, pipeline_id, name, stage, stage_index, kind, script, variables, allow_failure, timeout_seconds, \
     status, runner, exit_code, failure_reason, created_at, started_at, finished_at, manual, approved_by, approved_at";
/// How many columns `JOB_COLUMNS` names: the index of the first column a query adds after them.
const JOB_COLUMN_COUNT: usize = 20;
const DELIVERY_COLUMNS: &str =
    "id, repository, url, pipeline_id, payload, attempts, status_code, error, delivered, next_attempt_at, created_at";

fn json_col<T: serde::de::DeserializeOwned + Default>(r: &Row, i: usize) -> Result<T> {
    let s: String = r.get(i)?;
    Ok(serde_json::from_str(&s).unwrap_or_default())
}

fn pipeline_row(r: &Row) -> Result<PipelineRow> {
    Ok(PipelineRow {
        id: r.get(0)?,
        repository: r.get(1)?,
        push_id: r.get(2)?,
        source: r.get(3)?,
        status: r.get(4)?,
        variables: json_col(r, 5)?,
        created_at: r.get(6)?,
        finished_at: r.get(7)?,
        extraction: json_col(r, 8)?,
    })
}

fn job_row(r: &Row) -> Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        pipeline_id: r.get(1)?,
        name: r.get(2)?,
        stage: r.get(3)?,
        stage_index: r.get(4)?,
        kind: r.get(5)?,
        script: json_col(r, 6)?,
        variables: json_col(r, 7)?,
        allow_failure: r.get(8)?,
        timeout_seconds: r.get(9)?,
        status: r.get(10)?,
        runner: r.get(11)?,
        exit_code: r.get(12)?,
        failure_reason: r.get(13)?,
        created_at: r.get(14)?,
        started_at: r.get(15)?,
        finished_at: r.get(16)?,
        manual: r.get(17)?,
        approved_by: r.get(18)?,
        approved_at: r.get(19)?,
    })
}

fn delivery_row(r: &Row) -> Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.get(0)?,
        repository: r.get(1)?,
        url: r.get(2)?,
        pipeline_id: r.get(3)?,
        payload: r.get(4)?,
        attempts: r.get(5)?,
        status_code: r.get(6)?,
        error: r.get(7)?,
        delivered: r.get(8)?,
        next_attempt_at: r.get(9)?,
        created_at: r.get(10)?,
    })
}

fn insert_jobs(tx: &Sql, pipeline_id: i64, push_id: i64, jobs: &[NewJob]) -> Result<()> {
    let now = now_ms();
    for job in jobs {
        let mut vars = job.variables.clone();
        vars.insert("SLUICE_PIPELINE_ID".into(), pipeline_id.to_string());
        vars.insert("SLUICE_PUSH_ID".into(), push_id.to_string());
        vars.insert("SLUICE_JOB_NAME".into(), job.name.clone());
        let finished = job.status.is_final().then_some(now);
        tx.execute(
            "INSERT INTO jobs (pipeline_id, name, stage, stage_index, kind, script, variables, allow_failure, timeout_seconds, \
             status, log, created_at, started_at, finished_at, manual) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14)",
            params![
                pipeline_id, job.name, job.stage, job.stage_index as i64, job.kind,
                serde_json::to_string(&job.script).expect("strings serialise"),
                serde_json::to_string(&vars).expect("strings serialise"),
                job.allow_failure, job.timeout_seconds, job.status, job.log, now, finished, job.manual
            ],
        )?;
    }
    Ok(())
}

/// Inserts a push's pipeline; called inside the publish transaction.
pub(super) fn insert_pipeline(tx: &Sql, repository: &str, push_id: i64, p: &NewPipeline) -> Result<i64> {
    let mut vars = p.variables.clone();
    vars.insert("SLUICE_PUSH_ID".into(), push_id.to_string());
    let id: i64 = tx.query_value(
        "INSERT INTO pipelines (repository, push_id, source, status, variables, extraction, created_at) \
         VALUES ($1, $2, $3, $4, '{}', $5, $6) RETURNING id",
        params![repository, push_id, p.source, Status::Created, p.extraction.to_string(), now_ms()],
    )?;
    // The variables name the pipeline's id, known once the row is in.
    vars.insert("SLUICE_PIPELINE_ID".into(), id.to_string());
    tx.execute(
        "UPDATE pipelines SET variables = $2 WHERE id = $1",
        params![id, serde_json::to_string(&vars).expect("strings serialise")],
    )?;
    insert_jobs(tx, id, push_id, &p.jobs)?;
    Ok(id)
}

impl Db {
    pub fn pipeline(&self, id: i64) -> Result<Option<(PipelineRow, Vec<JobRow>)>> {
        self.read(|c| {
            let Some(p) = c.query_opt(
                &format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE id = $1"),
                params![id],
                pipeline_row,
            )?
            else {
                return Ok(None);
            };
            let jobs = Self::jobs_of(c, id)?;
            Ok(Some((p, jobs)))
        })
    }

    fn jobs_of(c: &Sql, pipeline_id: i64) -> Result<Vec<JobRow>> {
        c.query_map(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE pipeline_id = $1 ORDER BY stage_index, id"),
            params![pipeline_id],
            job_row,
        )
    }

    pub fn pipeline_of_push(&self, push_id: i64) -> Result<Option<PipelineRow>> {
        self.read(|c| {
            c.query_opt(
                &format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE push_id = $1"),
                params![push_id],
                pipeline_row,
            )
        })
    }

    /// Pipelines, newest first.
    pub fn pipelines(&self, repository: Option<&str>, limit: u32) -> Result<Vec<PipelineRow>> {
        self.read(|c| {
            c.query_map(
                &format!(
                    "SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE (CAST($1 AS TEXT) IS NULL OR repository = $1) ORDER BY id DESC LIMIT $2"
                ),
                params![repository, limit],
                pipeline_row,
            )
        })
    }

    /// Pipelines not yet finished (for recovery at start-up).
    pub fn unfinished_pipelines(&self) -> Result<Vec<i64>> {
        self.read(|c| c.query_map("SELECT id FROM pipelines WHERE finished_at IS NULL", params![], |r| r.get(0)))
    }

    pub fn job(&self, id: i64) -> Result<Option<(JobRow, String)>> {
        self.read(|c| {
            c.query_opt(&format!("SELECT {JOB_COLUMNS}, log FROM jobs WHERE id = $1"), params![id], |r| {
                Ok((job_row(r)?, r.get(JOB_COLUMN_COUNT)?))
            })
        })
    }

    /// Applies `event` to pipeline `id` inside a write: loads its jobs, asks the state machine,
    /// and persists the answer (job statuses, the pipeline's status, the release of its push's
    /// files). A refused event changes nothing.
    fn step(tx: &Sql, id: i64, event: Event) -> Result<std::result::Result<Stepped, Refused>> {
        let p = tx.query_one(
            &format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE id = $1"),
            params![id],
            pipeline_row,
        )?;
        let states: Vec<JobState> = Self::jobs_of(tx, id)?.iter().map(JobRow::state).collect();
        let t = match state::transition(p.status, &states, event) {
            Ok(t) => t,
            Err(refused) => return Ok(Err(refused)),
        };
        let now = now_ms();
        for (job, status) in &t.jobs {
            tx.execute(
                "UPDATE jobs SET status = $2, finished_at = $3 WHERE id = $1",
                params![job, status, status.is_final().then_some(now)],
            )?;
        }
        let mut change = None;
        if t.status != p.status {
            let finished = t.status.is_final().then_some(now);
            tx.execute(
                "UPDATE pipelines SET status = $2, finished_at = $3 WHERE id = $1",
                params![id, t.status, finished],
            )?;
            let previous = p.status;
            change = Some(StatusChange {
                pipeline: PipelineRow { status: t.status, finished_at: finished, ..p.clone() },
                previous,
            });
        }
        if t.release {
            Self::release_push(tx, p.push_id)?;
        }
        Ok(Ok(Stepped { transition: t, change }))
    }

    /// Moves a pipeline forward (see `domain::state`); on success the push's files are
    /// released to clients.
    pub fn advance_pipeline(&self, id: i64) -> Result<Option<StatusChange>> {
        self.write(|tx| {
            let stepped = Self::step(tx, id, Event::Advance)?.map_err(|e| DbError::Aborted(e.to_string()))?;
            Ok(stepped.change)
        })
    }

    /// Lets clients see a push's files, and points the tags they were published with at them.
    fn release_push(tx: &Sql, push_id: i64) -> Result<()> {
        let pending: Vec<(i64, String, String)> = tx.query_map(
            "SELECT package_id, version, pending_tags FROM files WHERE push_id = $1 AND released = 0",
            params![push_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        for (package_id, version, tags) in pending {
            for tag in serde_json::from_str::<Vec<String>>(&tags).unwrap_or_default() {
                Self::put_tag(tx, package_id, &tag, &version)?;
            }
        }
        // `released = 0` lets the partial index `files_unreleased` find the rows: without it
        // every release scanned every file of the registry (a publish cost that grew with it).
        tx.execute(
            "UPDATE files SET released = 1, pending_tags = '[]' WHERE push_id = $1 AND released = 0",
            params![push_id],
        )?;
        Ok(())
    }

    /// Hands the oldest pending job (of `repository`, if given) to a runner, with the hash of its
    /// new job token. The queue's own move (`pending` to `running`, across pipelines, atomic);
    /// the pipeline then follows with an [`Event::Advance`].
    pub fn claim_job(&self, runner: &str, repository: Option<&str>, token_hash: &str) -> Result<Option<JobRow>> {
        self.write(|tx| {
            let now = now_ms();
            tx.query_opt(
                &format!(
                    "UPDATE jobs SET status = $5, runner = $1, token_hash = $2, started_at = $3, touched_at = $3 \
                     WHERE id = (SELECT j.id FROM jobs j JOIN pipelines p ON p.id = j.pipeline_id \
                       WHERE j.status = $6 AND j.kind = 'runner' AND (CAST($4 AS TEXT) IS NULL OR p.repository = $4) \
                       ORDER BY j.id LIMIT 1) \
                     RETURNING {JOB_COLUMNS}"
                ),
                params![runner, token_hash, now, repository, Status::Running, Status::Pending],
                job_row,
            )
        })
    }

    /// The job a job token belongs to (running, or canceled and not yet finished by its runner),
    /// and its push's sha256. Tokens are cleared when a job finishes or is reaped.
    pub fn job_by_token(&self, token_hash: &str) -> Result<Option<(JobRow, String)>> {
        self.read(|c| {
            c.query_opt(
                &format!(
                    "SELECT {}, pu.sha256 FROM jobs j JOIN pipelines p ON p.id = j.pipeline_id JOIN pushes pu ON pu.id = p.push_id \
                     WHERE j.token_hash = $1",
                    JOB_COLUMNS.split(", ").map(|c| format!("j.{c}")).collect::<Vec<_>>().join(", ")
                ),
                params![token_hash],
                |r| Ok((job_row(r)?, r.get(JOB_COLUMN_COUNT)?)),
            )
        })
    }

    /// Appends to a running job's log; returns the job's status (the runner stops on `canceled`).
    pub fn append_log(&self, job_id: i64, chunk: &str) -> Result<Status> {
        self.write(|tx| {
            tx.execute(
                "UPDATE jobs SET touched_at = $3, log = CASE \
                   WHEN length(log) + length($2) <= $4 THEN log || $2 \
                   WHEN log LIKE '%[log truncated]%' THEN log \
                   ELSE log || $6 END \
                 WHERE id = $1 AND status = $5",
                params![job_id, chunk, now_ms(), MAX_LOG_BYTES, Status::Running, "\n[log truncated]\n"],
            )?;
            tx.query_value("SELECT status FROM jobs WHERE id = $1", params![job_id])
        })
    }

    /// Records a runner job's result and moves its pipeline on. `None` when the job was no
    /// longer running (canceled, reaped); its token ends either way, so a finished or canceled
    /// job's token reads nothing more.
    pub fn finish_job(
        &self,
        job: &JobRow,
        success: bool,
        exit_code: Option<i64>,
        reason: Option<&str>,
    ) -> Result<Option<Stepped>> {
        self.write(|tx| {
            tx.execute("UPDATE jobs SET token_hash = NULL WHERE id = $1", params![job.id])?;
            let stepped = match Self::step(tx, job.pipeline_id, Event::Finish { job: job.id, success })? {
                Ok(s) if s.transition.job(job.id).is_some() => s,
                Ok(_) => return Ok(None),
                Err(refused) => return Err(DbError::NotFound(refused.to_string())),
            };
            tx.execute(
                "UPDATE jobs SET exit_code = $2, failure_reason = $3 WHERE id = $1",
                params![job.id, exit_code, reason],
            )?;
            Ok(Some(stepped))
        })
    }

    /// Fails running jobs whose runner has not been heard of for `silence_ms` past their timeout,
    /// through the state machine as a failed finish; returns their pipelines' status changes.
    pub fn fail_lost_jobs(&self, silence_ms: i64) -> Result<Vec<(i64, Option<StatusChange>)>> {
        self.write(|tx| {
            let now = now_ms();
            let lost: Vec<(i64, i64)> = tx.query_map(
                "SELECT id, pipeline_id FROM jobs WHERE status = $3 AND kind = 'runner' AND \
                   (touched_at < $1 - $2 OR started_at + timeout_seconds * 1000 + $2 < $1)",
                params![now, silence_ms, Status::Running],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let mut out = Vec::new();
            for (job, pipeline) in lost {
                tx.execute(
                    "UPDATE jobs SET failure_reason = 'runner_lost', token_hash = NULL, log = log || $2 WHERE id = $1",
                    params![job, "\nThe runner stopped reporting; the job is marked failed.\n"],
                )?;
                let stepped = Self::step(tx, pipeline, Event::Finish { job, success: false })?
                    .map_err(|e| DbError::Aborted(e.to_string()))?;
                out.push((pipeline, stepped.change));
            }
            Ok(out)
        })
    }

    /// Cancels every unfinished job of a pipeline, and the pipeline.
    pub fn cancel_pipeline(&self, id: i64) -> Result<Option<StatusChange>> {
        // Running jobs keep their token, so that their runner learns of the cancel.
        self.write(|tx| Ok(Self::step(tx, id, Event::Cancel)?.map_err(|e| DbError::Aborted(e.to_string()))?.change))
    }

    /// Plays a manual job on behalf of `by` (a token's name): it is queued for a runner, and
    /// who played it and when is kept with the job and in its log. `Err(Refused)` when the job
    /// is not waiting in `manual`.
    pub fn play_job(&self, job: &JobRow, by: &str) -> Result<std::result::Result<Stepped, Refused>> {
        self.write(|tx| {
            let stepped = match Self::step(tx, job.pipeline_id, Event::Play { job: job.id })? {
                Ok(s) => s,
                Err(refused) => return Ok(Err(refused)),
            };
            let now = now_ms();
            tx.execute(
                "UPDATE jobs SET approved_by = $2, approved_at = $3, log = log || $4 WHERE id = $1",
                params![job.id, by, now, format!("Played (approved) by `{by}`.\n")],
            )?;
            Ok(Ok(stepped))
        })
    }

    /// Replaces a finished pipeline's runner jobs with new ones (a retry after the pipeline file
    /// changed runs the new jobs); host jobs keep their result.
    pub fn reset_pipeline(&self, id: i64, jobs: &[NewJob]) -> Result<PipelineRow> {
        self.write(|tx| {
            let p = tx.query_one(
                &format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE id = $1"),
                params![id],
                pipeline_row,
            )?;
            if !p.status.is_final() {
                return Err(DbError::Conflict(format!("pipeline {id} is still {}; a retry", p.status)));
            }
            tx.execute("DELETE FROM jobs WHERE pipeline_id = $1 AND kind IN ('runner', 'config')", params![id])?;
            insert_jobs(tx, id, p.push_id, jobs)?;
            tx.execute(
                "UPDATE pipelines SET status = $2, finished_at = NULL WHERE id = $1",
                params![id, Status::Created],
            )?;
            Ok(PipelineRow { status: Status::Created, finished_at: None, ..p })
        })
    }

    // ---- pipeline files -----------------------------------------------------------------------

    pub fn pipeline_config(&self, repository: &str) -> Result<Option<String>> {
        self.read(|c| {
            c.query_opt("SELECT yaml FROM pipeline_configs WHERE repository = $1", params![repository], |r| r.get(0))
        })
    }

    pub fn set_pipeline_config(&self, repository: &str, yaml: &str) -> Result<()> {
        self.read(|c| {
            c.execute(
                "INSERT INTO pipeline_configs (repository, yaml, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (repository) DO UPDATE SET yaml = excluded.yaml, updated_at = excluded.updated_at",
                params![repository, yaml, now_ms()],
            )
        })?;
        Ok(())
    }

    // ---- webhook deliveries -------------------------------------------------------------------

    pub fn insert_delivery(&self, repository: &str, url: &str, pipeline_id: i64, payload: &str) -> Result<i64> {
        let now = now_ms();
        self.read(|c| {
            c.query_value(
                "INSERT INTO webhook_deliveries (repository, url, pipeline_id, payload, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
                params![repository, url, pipeline_id, payload, now],
            )
        })
    }

    /// Deliveries due for an attempt, oldest first.
    pub fn due_deliveries(&self, max_attempts: i64) -> Result<Vec<DeliveryRow>> {
        self.read(|c| {
            c.query_map(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE delivered = 0 AND attempts < $1 AND next_attempt_at <= $2 \
                     ORDER BY id LIMIT 100"
                ),
                params![max_attempts, now_ms()],
                delivery_row,
            )
        })
    }

    pub fn record_attempt(
        &self,
        id: i64,
        status_code: Option<u16>,
        error: Option<&str>,
        delivered: bool,
        retry_in_ms: i64,
    ) -> Result<()> {
        self.read(|c| {
            c.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, status_code = $2, error = $3, delivered = $4, \
                 next_attempt_at = $5 WHERE id = $1",
                params![id, status_code, error, delivered, now_ms() + retry_in_ms],
            )
        })?;
        Ok(())
    }

    pub fn deliveries(&self, repository: Option<&str>, limit: u32) -> Result<Vec<DeliveryRow>> {
        self.read(|c| {
            c.query_map(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE (CAST($1 AS TEXT) IS NULL OR repository = $1) ORDER BY id DESC LIMIT $2"
                ),
                params![repository, limit],
                delivery_row,
            )
        })
    }
}
