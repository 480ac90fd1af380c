//! Pipelines: what a push triggers, how its jobs move from stage to stage, how runners get
//! them, and who hears about it: the pipeline file ([`config`], its rules language [`rules`]),
//! planning, claiming and advancing jobs, webhooks. The state machine itself is
//! `domain::state` (pure); the SQL is in `store::db::pipelines`; this is the behaviour between.
//!
//! The service is [`Pipelines`], over the app state (`Pipelines(&app)`); its background task is
//! [`run_background`].
//!
//! May call: `app` (the state it runs on), `store`, `domain`, `auth`, `error`, `outbound`
//! (webhooks), `plugin` (the contract's records) and `runner::protocol` (the wire types of the job
//! a runner is given). Called by `registry` (planning and advancing at publish) and `http`.

pub mod config;
pub mod rules;
mod webhooks;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use config::PipelineConfig;

use crate::app::{App, Repository};
use crate::auth::{self, Principal};
use crate::domain::state::Status;
use crate::error::AppError;
use crate::plugin::wit;
use crate::runner::protocol;
use crate::store::db::{JobRow, NewJob, NewPipeline, StatusChange};
use crate::store::Digests;

/// The stage of the host's own jobs, always first.
pub const HOST_STAGE: &str = "metadata";
/// How long a runner may stay silent (no log, no finish) before its job is failed.
const RUNNER_SILENCE: Duration = Duration::from_secs(60);

/// What a push is, for planning its pipeline.
pub struct PushFacts<'a> {
    pub meta: &'a wit::Metadata,
    pub digests: &'a Digests,
    pub file_name: &'a str,
    pub commit_sha: Option<&'a str>,
}

/// The pipelines service over the app state: `Pipelines(&app).claim_job(..)`. Methods read the
/// app's parts (`db`, `events`, `config`, `repositories`) through `Deref`.
#[derive(Clone, Copy)]
pub struct Pipelines<'a>(pub &'a App);

impl std::ops::Deref for Pipelines<'_> {
    type Target = App;
    fn deref(&self) -> &App {
        self.0
    }
}

impl Pipelines<'_> {
    /// The repository's pipeline file: the one set through the API, else the configured file,
    /// else none (only the host's jobs).
    pub fn pipeline_config(&self, repo: &Repository) -> Result<(PipelineConfig, String), AppError> {
        let yaml = match self.db.pipeline_config(repo.name())? {
            Some(y) => y,
            None => match &repo.config.pipeline {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| AppError::Internal(anyhow::anyhow!("read pipeline file {}: {e}", path.display())))?,
                None => String::new(),
            },
        };
        let config = PipelineConfig::parse(&yaml).map_err(|e| AppError::BadRequest(e.to_string()))?;
        Ok((config, yaml))
    }

    /// Plans a push's pipeline: the metadata job the host already ran (with what the plugin
    /// found), then the jobs of the repository's pipeline file and of the format's trigger.
    pub fn plan_pipeline(&self, repo: &Repository, push: &PushFacts) -> Result<NewPipeline, AppError> {
        let plugin = &repo.plugin;
        let trigger = plugin.trigger_for(push.meta).map_err(|e| AppError::Internal(e.into()))?;
        let extraction = plugin.extraction_for(push.meta).map_err(|e| AppError::Internal(e.into()))?;
        let mut variables: BTreeMap<String, String> = trigger.variables.iter().cloned().collect();
        for (k, v) in [
            ("SLUICE_REPOSITORY", repo.name()),
            ("SLUICE_PACKAGE_FORMAT", plugin.name()),
            ("SLUICE_PACKAGE_NAME", &push.meta.name),
            ("SLUICE_PACKAGE_VERSION", &push.meta.version),
            ("SLUICE_PACKAGE_QUALIFIER", &push.meta.qualifier),
            ("SLUICE_PACKAGE_FILE_NAME", push.file_name),
            ("SLUICE_PACKAGE_SHA256", &push.digests.sha256),
            ("SLUICE_PIPELINE_SOURCE", &trigger.event),
            ("SLUICE_COMMIT_SHA", push.commit_sha.unwrap_or("")),
        ] {
            variables.insert(k.to_string(), v.to_string());
        }
        // A pipeline file that cannot be used does not lose the push: the pipeline records why
        // and fails (keeping a gated version hidden) until the file is fixed and it is retried.
        let config = match self.pipeline_config(repo) {
            Ok((config, _)) => Ok(config),
            Err(AppError::BadRequest(msg)) => Err(msg),
            Err(AppError::Internal(e)) => Err(format!("{e:#}")),
            Err(other) => return Err(other),
        };
        if let Ok(config) = &config {
            for (k, v) in &config.variables {
                variables.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let mut jobs = vec![metadata_job(repo, push, &extraction, &trigger, &variables)];
        match &config {
            Ok(config) => jobs.extend(runner_jobs(config, &trigger, &variables)),
            Err(problem) => jobs.push(pipeline_file_job(problem, &variables)),
        }
        Ok(NewPipeline {
            source: trigger.event.clone(),
            extraction: serde_json::to_value(&extraction).expect("records serialise"),
            variables,
            jobs,
        })
    }

    /// Moves a pipeline on and tells runners and webhooks.
    pub fn advance_pipeline(&self, id: i64) {
        match self.db.advance_pipeline(id) {
            Ok(change) => self.announce(change),
            Err(e) => tracing::error!(pipeline = id, error = %e, "advancing pipeline failed"),
        }
    }

    fn announce(&self, change: Option<StatusChange>) {
        // New pending jobs may exist even when the status did not change.
        self.events.jobs.notify_waiters();
        let Some(change) = change else { return };
        let p = &change.pipeline;
        tracing::info!(repository = %p.repository, pipeline = p.id, push_id = p.push_id, from = %change.previous, to = %p.status, "pipeline status");
        webhooks::enqueue(self.0, &change);
    }

    /// Gives the oldest pending job to a runner, with a fresh job token; a runner token limited
    /// to a repository only gets that repository's jobs.
    pub fn claim_job(
        &self,
        runner: &str,
        repository: Option<&str>,
        base_url: &str,
    ) -> Result<Option<protocol::Job>, AppError> {
        let token = auth::generate_token();
        let Some(job) = self.db.claim_job(runner, repository, &auth::hash_token(&token))? else { return Ok(None) };
        let (pipeline, _) = self
            .db
            .pipeline(job.pipeline_id)?
            .ok_or_else(|| AppError::not_found(format!("pipeline {}", job.pipeline_id)))?;
        let push =
            self.db.push(pipeline.push_id)?.ok_or_else(|| AppError::not_found(format!("push {}", pipeline.push_id)))?;
        self.advance_pipeline(job.pipeline_id);
        tracing::info!(repository = %pipeline.repository, pipeline = pipeline.id, job = job.id, push_id = push.id, runner, "job started");
        // The plugin's extraction record was stored as JSON; an empty one (no steps) is "nothing".
        let extraction = match serde_json::from_value::<protocol::Extraction>(pipeline.extraction.clone()) {
            Ok(e) => Some(e),
            Err(e) if pipeline.extraction.is_null() => {
                tracing::debug!(pipeline = pipeline.id, error = %e, "no extraction");
                None
            }
            Err(e) => {
                return Err(AppError::Internal(anyhow::anyhow!(
                    "pipeline {}: stored extraction unreadable: {e}",
                    pipeline.id
                )))
            }
        };
        Ok(Some(protocol::Job {
            id: job.id as u64,
            pipeline_id: job.pipeline_id as u64,
            name: job.name,
            stage: job.stage,
            token,
            script: job.script,
            variables: job.variables,
            timeout_seconds: job.timeout_seconds.max(0) as u64,
            file_url: format!("{base_url}/api/v1/pushes/{}/file", push.sha256),
            sha256: push.sha256,
            file_name: push.file_name,
            commit_sha: push.commit_sha,
            extraction,
        }))
    }

    /// A runner's result for its job; the job's status after it (unchanged when the job was no
    /// longer running: canceled, or given up on).
    pub fn finish_job(&self, job: &JobRow, finish: &protocol::Finish) -> Result<Status, AppError> {
        let reason = finish.failure_reason.map(protocol::FailureReason::as_str);
        let success = finish.status == protocol::JobResult::Success;
        match self.db.finish_job(job, success, finish.exit_code, reason)? {
            Some(stepped) => {
                let status = finish.status.status();
                tracing::info!(pipeline = job.pipeline_id, job = job.id, %status, exit_code = finish.exit_code, "job finished");
                self.announce(stepped.change);
                Ok(status)
            }
            None => Ok(self.db.job(job.id)?.map(|(j, _)| j.status).unwrap_or(job.status)),
        }
    }

    /// Plays a manual job for `by`, who must be allowed to approve on its repository (checked by
    /// the caller, `http/access.rs`): the job is queued for runners and who played it recorded.
    pub fn play_job(&self, job: &JobRow, repository: &str, by: &Principal) -> Result<(), AppError> {
        let stepped = self.db.play_job(job, &by.name)?.map_err(|refused| AppError::Conflict(refused.to_string()))?;
        tracing::info!(
            repository, pipeline = job.pipeline_id, job = job.id, name = %job.name, approved_by = %by.name,
            token_id = by.token_id, "manual job played"
        );
        self.announce(stepped.change);
        Ok(())
    }

    pub fn cancel_pipeline(&self, id: i64) -> Result<(), AppError> {
        let change = self.db.cancel_pipeline(id)?;
        self.announce(change);
        Ok(())
    }

    /// Runs a finished pipeline's runner jobs again, from the repository's current definition:
    /// the pipeline file as it is now (the one set through the API, else the configured file,
    /// read again: `pipeline_config`), its top-level `variables`, and the format's trigger jobs
    /// for the push's file, planned as a new push's would be. What the push was (the `SLUICE_*`
    /// variables) is kept from the first run.
    pub fn retry_pipeline(&self, id: i64) -> Result<(), AppError> {
        let (pipeline, _) = self.db.pipeline(id)?.ok_or_else(|| AppError::not_found(format!("pipeline {id}")))?;
        let repo = self.repository(&pipeline.repository)?;
        let (config, _) = self.pipeline_config(repo)?;
        let stored: BTreeMap<String, String> = serde_json::from_value(pipeline.variables.clone()).unwrap_or_default();
        // As `plan_pipeline` orders them: the push's own variables over the format's, and the
        // file's only where neither sets one; but the file's are today's, not the first run's.
        let (trigger, mut variables) = match self.trigger_of_push(repo, pipeline.push_id) {
            Some(trigger) => {
                let mut vars: BTreeMap<String, String> = trigger.variables.iter().cloned().collect();
                vars.extend(stored.into_iter().filter(|(k, _)| k.starts_with("SLUICE_")));
                (trigger, vars)
            }
            // The file is gone or unreadable: the first run's variables, and no format jobs.
            None => {
                let trigger = wit::Trigger { event: pipeline.source.clone(), variables: Vec::new(), jobs: Vec::new() };
                (trigger, stored)
            }
        };
        for (k, v) in &config.variables {
            variables.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let jobs = runner_jobs(&config, &trigger, &variables);
        let reset = self.db.reset_pipeline(id, &jobs)?;
        tracing::info!(repository = %reset.repository, pipeline = id, jobs = jobs.len(), "pipeline retried");
        self.advance_pipeline(id);
        Ok(())
    }
}

impl Pipelines<'_> {
    /// The format's trigger for a push's stored file (its jobs and variables), as at publish;
    /// none when the file is gone or its metadata no longer reads.
    fn trigger_of_push(&self, repo: &Repository, push_id: i64) -> Option<wit::Trigger> {
        let push = self.db.push(push_id).ok()??;
        let (_, file) = self.db.file_by_name(repo.name(), &repo.key(&push.package), &push.file_name).ok()??;
        let meta: wit::Metadata = serde_json::from_str(&file.metadata).ok()?;
        repo.plugin
            .trigger_for(&meta)
            .map_err(|e| tracing::warn!(repository = repo.name(), push_id, error = %e, "trigger-for failed on a retry"))
            .ok()
    }
}

/// Background work: webhook deliveries, and failing jobs whose runner went silent.
pub async fn run_background(app: Arc<App>) {
    for id in app.db.unfinished_pipelines().unwrap_or_default() {
        Pipelines(&app).advance_pipeline(id);
    }
    let http = crate::outbound::client(app.config.allow_local_webhooks, Duration::from_secs(10));
    let mut last_reap = std::time::Instant::now();
    loop {
        // One replica at a time delivers webhooks and reaps (see `app::leader`).
        if !app.lead.is_leading() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        webhooks::deliver_due(&app, &http).await;
        if last_reap.elapsed() > Duration::from_secs(5) {
            last_reap = std::time::Instant::now();
            let a = app.clone();
            let lost =
                tokio::task::spawn_blocking(move || a.db.fail_lost_jobs(RUNNER_SILENCE.as_millis() as i64)).await;
            if let Ok(Ok(pipelines)) = lost {
                for (id, change) in pipelines {
                    tracing::warn!(pipeline = id, "a runner went silent; its job failed");
                    Pipelines(&app).announce(change);
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), app.events.webhooks.notified()).await;
    }
}

fn metadata_job(
    repo: &Repository,
    push: &PushFacts,
    extraction: &wit::Extraction,
    trigger: &wit::Trigger,
    vars: &BTreeMap<String, String>,
) -> NewJob {
    let m = push.meta;
    let mut log = format!(
        "Sluice parsed {file} ({size} bytes, sha256 {sha}) with the `{format}` plugin ({source}).\n\
         name: {name}\nversion: {version}\n",
        file = push.file_name,
        size = push.digests.size,
        sha = push.digests.sha256,
        format = repo.plugin.name(),
        source = repo.plugin.source,
        name = m.name,
        version = m.version,
    );
    let optional = [
        ("qualifier", (!m.qualifier.is_empty()).then(|| m.qualifier.clone())),
        ("summary", m.summary.clone()),
        ("license", m.license.clone()),
        ("homepage", m.homepage.clone()),
        ("repository", m.repository.clone()),
        ("authors", (!m.authors.is_empty()).then(|| m.authors.join(", "))),
        ("keywords", (!m.keywords.is_empty()).then(|| m.keywords.join(", "))),
        ("commit", push.commit_sha.map(str::to_string)),
    ];
    for (label, value) in optional {
        if let Some(v) = value {
            log.push_str(&format!("{label}: {v}\n"));
        }
    }
    log.push_str(&format!("dependencies: {}\n", m.dependencies.len()));
    for d in &m.dependencies {
        let group = if d.group.is_empty() { String::new() } else { format!(" [{}]", d.group) };
        log.push_str(&format!("  {} {} ({}){group}\n", d.name, d.requirement, d.kind));
    }
    log.push_str(&format!("runners unpack it with: {}\n", describe_extraction(extraction)));
    log.push_str(&format!("pipeline source: {}\n", trigger.event));
    NewJob {
        name: "metadata".into(),
        stage: HOST_STAGE.into(),
        stage_index: 0,
        kind: "host",
        script: Vec::new(),
        variables: vars.clone(),
        allow_failure: false,
        manual: false,
        timeout_seconds: 0,
        status: Status::Success,
        log,
    }
}

/// The failed job that stands for a pipeline file that could not be used.
fn pipeline_file_job(problem: &str, vars: &BTreeMap<String, String>) -> NewJob {
    NewJob {
        name: "pipeline-file".into(),
        stage: HOST_STAGE.into(),
        stage_index: 0,
        kind: "config",
        script: Vec::new(),
        variables: vars.clone(),
        allow_failure: false,
        manual: false,
        timeout_seconds: 0,
        status: Status::Failed,
        log: format!(
            "The repository's pipeline file could not be used, so no runner job ran:\n{problem}\n\
             Fix the file (or replace it with PUT /api/v1/repositories/{{repo}}/pipeline), then retry this pipeline.\n"
        ),
    }
}

fn describe_extraction(e: &wit::Extraction) -> String {
    let steps: Vec<String> = e.steps.iter().map(|s| format!("{} {}", s.tool, s.argv.join(" "))).collect();
    format!("{} ({})", if steps.is_empty() { "nothing".into() } else { steps.join(" && ") }, e.media_type)
}

/// The runner jobs of a pipeline file and a trigger whose rules include them, stage by stage.
fn runner_jobs(config: &PipelineConfig, trigger: &wit::Trigger, vars: &BTreeMap<String, String>) -> Vec<NewJob> {
    let mut stages: Vec<String> = config.stages.clone();
    for t in &trigger.jobs {
        if !stages.contains(&t.stage) {
            stages.push(t.stage.clone());
        }
    }
    let index = |stage: &str| 1 + stages.iter().position(|s| s == stage).expect("every stage is listed");
    let from_config = config.jobs.iter().filter_map(|j| {
        let manual = match j.when_for(vars) {
            config::When::Never => return None,
            config::When::Manual => true,
            config::When::OnSuccess => false,
        };
        let mut variables = vars.clone();
        variables.extend(j.variables.clone());
        Some(NewJob {
            name: j.name.clone(),
            stage: j.stage.clone(),
            stage_index: index(&j.stage),
            kind: "runner",
            script: j.script.clone(),
            variables,
            allow_failure: j.allow_failure,
            manual,
            timeout_seconds: j.timeout_seconds,
            status: Status::Created,
            log: String::new(),
        })
    });
    let from_trigger = trigger.jobs.iter().map(|t| NewJob {
        name: t.name.clone(),
        stage: t.stage.clone(),
        stage_index: index(&t.stage),
        kind: "runner",
        script: t.script.clone(),
        variables: vars.clone(),
        allow_failure: t.allow_failure,
        manual: false,
        timeout_seconds: t.timeout_seconds.unwrap_or(config::DEFAULT_TIMEOUT_SECONDS),
        status: Status::Created,
        log: String::new(),
    });
    let mut jobs: Vec<NewJob> = from_config.chain(from_trigger).collect();
    jobs.sort_by_key(|j| j.stage_index);
    jobs
}
