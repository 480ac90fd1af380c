//! `GET /metrics` in the Prometheus text format: plugin calls and their failures (counters since
//! start), and what the store holds (gauges read from SQLite at scrape time).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::app::App;
use crate::auth::Scope;
use crate::config::MetricsAccess;
use crate::error::AppError;
use crate::store::db::metrics::Rows;

/// `/metrics`. A private repository's series are shown only to a token that may read it, so
/// an anonymous scrape does not name private repositories; `metrics = "token"` needs a token
/// for any of it.
pub async fn metrics(State(reg): State<super::State>, caller: super::Caller) -> Result<impl IntoResponse, AppError> {
    let text = super::blocking(move || {
        let caller = caller.principal()?;
        if reg.config.metrics == MetricsAccess::Token && caller.is_none() {
            return Err(AppError::Unauthorized("metrics need a token here".into()));
        }
        let may_see = |repository: &str| match reg.repositories.get(repository) {
            Some(r) if r.private() => {
                caller.as_ref().is_some_and(|p| super::access::grants(p, Scope::Read, Some(repository)))
            }
            _ => true,
        };
        render(&reg, &may_see)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text))
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
}

fn gauge(out: &mut String, name: &str, help: &str, label_names: &[&str], rows: Rows) {
    family(out, name, "gauge", help);
    for (labels, value) in rows {
        let pairs: Vec<(&str, &str)> = label_names.iter().copied().zip(labels.iter().map(String::as_str)).collect();
        sample(out, name, &pairs, value);
    }
}

fn render(reg: &App, may_see: &dyn Fn(&str) -> bool) -> Result<String, AppError> {
    // Rows whose first label is the repository.
    let visible = |rows: Rows| -> Rows {
        rows.into_iter().filter(|(labels, _)| labels.first().is_none_or(|r| may_see(r))).collect()
    };
    let mut out = String::new();
    family(&mut out, "sluice_plugin_calls_total", "counter", "Calls into each format plugin.");
    for p in reg.plugins.values() {
        sample(&mut out, "sluice_plugin_calls_total", &[("plugin", p.name())], p.stats.calls.load(Ordering::Relaxed));
    }
    family(
        &mut out,
        "sluice_plugin_call_failures_total",
        "counter",
        "Plugin calls that trapped, ran out of time or out of memory.",
    );
    for p in reg.plugins.values() {
        for (reason, counter) in
            [("timeout", &p.stats.timeouts), ("out_of_memory", &p.stats.out_of_memory), ("trap", &p.stats.traps)]
        {
            sample(
                &mut out,
                "sluice_plugin_call_failures_total",
                &[("plugin", p.name()), ("reason", reason)],
                counter.load(Ordering::Relaxed),
            );
        }
    }
    family(&mut out, "sluice_plugin_call_seconds_total", "counter", "Time spent in plugin calls.");
    for p in reg.plugins.values() {
        let seconds = p.stats.micros.load(Ordering::Relaxed) as f64 / 1e6;
        sample(&mut out, "sluice_plugin_call_seconds_total", &[("plugin", p.name())], seconds);
    }
    gauge(&mut out, "sluice_files", "Stored package files.", &["repository"], visible(reg.db.files_per_repository()?));
    gauge(&mut out, "sluice_pushes", "Recorded pushes.", &["repository"], visible(reg.db.pushes_per_repository()?));
    gauge(
        &mut out,
        "sluice_pipelines",
        "Pipelines by status.",
        &["repository", "status"],
        visible(reg.db.pipelines_per_status()?),
    );
    gauge(&mut out, "sluice_jobs", "Runner jobs by status.", &["status"], reg.db.jobs_per_status()?);
    let d = &reg.documents.stats;
    family(&mut out, "sluice_documents_total", "counter", "Kept protocol documents: what reads of them did.");
    for (event, counter) in [
        ("hit", &d.hits),
        ("not_modified", &d.not_modified),
        ("render", &d.renders),
        ("append", &d.appends),
        ("part_render", &d.part_renders),
        ("failed_render", &d.failed_renders),
        ("stale_served", &d.stale_served),
        ("evicted", &d.evictions),
    ] {
        sample(&mut out, "sluice_documents_total", &[("event", event)], counter.load(Ordering::Relaxed));
    }
    family(
        &mut out,
        "sluice_upstream_total",
        "counter",
        "Proxy repositories' upstream requests: kept copies served (hit, stale_served), upstream answers (fetched, revalidated), failures, and files stored or refused.",
    );
    for repo in reg.repositories.values().filter(|r| may_see(r.name())) {
        let Some(u) = &repo.upstream else { continue };
        let s = &u.stats;
        for (event, counter) in [
            ("hit", &s.hits),
            ("fetched", &s.fetched),
            ("revalidated", &s.revalidated),
            ("stale_served", &s.stale_served),
            ("failure", &s.failures),
            ("file_stored", &s.files_stored),
            ("file_refused", &s.files_refused),
        ] {
            sample(
                &mut out,
                "sluice_upstream_total",
                &[("repository", repo.name()), ("event", event)],
                counter.load(Ordering::Relaxed),
            );
        }
    }
    family(&mut out, "sluice_document_bytes", "gauge", "Memory held by kept protocol documents.");
    sample(&mut out, "sluice_document_bytes", &[], reg.documents.size());
    Ok(out)
}
