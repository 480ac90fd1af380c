//! A repository's pipeline file: a small, documented subset of GitLab CI.
//!
//! ```yaml
//! stages: [test, scan]            # order of stages (default: [test])
//! variables: { REGION: eu }       # for every job
//! check-manifest:                 # a job; names starting with `.` are templates and ignored
//!   stage: test
//!   script:
//!     - test -f pkg/package.json
//!   variables: { STRICT: "1" }
//!   allow_failure: false          # default false, for manual jobs too (see below)
//!   timeout: 10m                  # `90s`, `10m`, `1h 30m` or seconds; default 1h
//!   rules:                        # first match decides; no match: the job is left out
//!     - if: '$SLUICE_PACKAGE_NAME =~ /^@acme\// && $SLUICE_PACKAGE_VERSION !~ /-/'
//!     - if: '$SLUICE_PACKAGE_NAME == "left-pad"'
//!       when: never
//! ```
//!
//! `when: manual` (on the job, or on the rule that includes it) makes a job wait, in status
//! `manual`, until an admin or a token with the `approve` scope plays it (`POST
//! /api/v1/jobs/{id}/play`, or the pipeline page's button). Unlike GitLab, a manual job's
//! `allow_failure` defaults to `false` here too: the pipeline waits at it, so a gated version stays
//! hidden until someone approves it. With `allow_failure: true` it is optional and holds nothing
//! up. `when: on_success` (the default) and `always` run the job normally.
//!
//! `if:` expressions are the rules language of [`super::rules`].

use std::collections::BTreeMap;

use serde::Deserialize;

use super::rules::Expr;

/// The default stage list, and the stage of a job that names none.
pub const DEFAULT_STAGE: &str = "test";
/// A job's timeout when it names none: GitLab's default.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 3600;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("pipeline file: {0}")]
pub struct ConfigError(pub String);

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    pub stages: Vec<String>,
    pub variables: BTreeMap<String, String>,
    pub jobs: Vec<JobConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    pub name: String,
    pub stage: String,
    pub script: Vec<String>,
    pub variables: BTreeMap<String, String>,
    pub allow_failure: bool,
    pub timeout_seconds: u32,
    /// The job's own `when:` (`on_success` or `manual`); a matching rule's `when:` wins.
    pub when: When,
    pub rules: Vec<Rule>,
}

/// When a job runs once its stage comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// As soon as its stage starts (`on_success`, `always`, or no `when:`).
    OnSuccess,
    /// When someone plays it.
    Manual,
    /// Not at all (only in rules).
    Never,
}

impl When {
    fn parse(s: Option<&str>, job: &str, in_rule: bool) -> Result<Option<When>, ConfigError> {
        Ok(match s {
            None => None,
            Some("on_success" | "always") => Some(When::OnSuccess),
            Some("manual") => Some(When::Manual),
            Some("never") if in_rule => Some(When::Never),
            Some(other) => {
                let allowed = if in_rule { "on_success, always, manual, never" } else { "on_success, always, manual" };
                return Err(err(format!("job `{job}`: `when: {other}` is not supported ({allowed})")));
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub condition: Option<Expr>,
    /// The rule's `when:`, if it has one.
    pub when: Option<When>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Int(i64),
    Bool(bool),
    Text(String),
}

impl Scalar {
    fn text(self) -> String {
        match self {
            Scalar::Int(i) => i.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Text(s) => s,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    stage: Option<String>,
    script: serde_yaml::Value,
    #[serde(default)]
    variables: BTreeMap<String, Scalar>,
    #[serde(default)]
    allow_failure: bool,
    timeout: Option<Scalar>,
    when: Option<String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "if")]
    condition: Option<String>,
    when: Option<String>,
}

impl PipelineConfig {
    pub fn empty() -> Self {
        PipelineConfig { stages: vec![DEFAULT_STAGE.into()], variables: BTreeMap::new(), jobs: Vec::new() }
    }

    pub fn parse(yaml: &str) -> Result<PipelineConfig, ConfigError> {
        let doc: serde_yaml::Value = serde_yaml::from_str(yaml).map_err(|e| err(e.to_string()))?;
        let map = match doc {
            serde_yaml::Value::Null => return Ok(Self::empty()),
            serde_yaml::Value::Mapping(m) => m,
            _ => return Err(err("the top level must be a mapping of stages, variables and jobs")),
        };
        let mut config = Self::empty();
        let mut stages_given = false;
        for (key, value) in map {
            let key = key.as_str().ok_or_else(|| err("keys must be strings"))?.to_string();
            match key.as_str() {
                "stages" => {
                    config.stages = serde_yaml::from_value(value).map_err(|e| err(format!("stages: {e}")))?;
                    stages_given = true;
                }
                "variables" => {
                    let vars: BTreeMap<String, Scalar> =
                        serde_yaml::from_value(value).map_err(|e| err(format!("variables: {e}")))?;
                    config.variables = vars.into_iter().map(|(k, v)| (k, v.text())).collect();
                }
                "include" | "default" | "workflow" | "image" | "services" | "before_script" | "after_script"
                | "cache" => {
                    return Err(err(format!(
                        "`{key}` is not part of Sluice's pipeline subset (stages, variables, jobs)"
                    )));
                }
                _ if key.starts_with('.') => {}
                _ => {
                    let raw: RawJob = serde_yaml::from_value(value).map_err(|e| err(format!("job `{key}`: {e}")))?;
                    config.jobs.push(JobConfig::from_raw(key, raw)?);
                }
            }
        }
        for job in &config.jobs {
            if !config.stages.contains(&job.stage) {
                let hint = if stages_given { "" } else { " (list it under `stages:`)" };
                return Err(err(format!("job `{}` uses stage `{}` which is not defined{hint}", job.name, job.stage)));
            }
        }
        Ok(config)
    }
}

impl JobConfig {
    fn from_raw(name: String, raw: RawJob) -> Result<JobConfig, ConfigError> {
        let line = |v: &serde_yaml::Value| match v {
            serde_yaml::Value::String(s) => Some(s.clone()),
            serde_yaml::Value::Number(n) => Some(n.to_string()),
            serde_yaml::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        let script = match &raw.script {
            serde_yaml::Value::Sequence(items) => items.iter().map(line).collect::<Option<Vec<_>>>(),
            single => line(single).map(|l| vec![l]),
        }
        .ok_or_else(|| err(format!("job `{name}`: script must be a command or a list of commands")))?;
        if script.iter().all(|l| l.trim().is_empty()) {
            return Err(err(format!("job `{name}` has an empty script")));
        }
        let timeout_seconds = match raw.timeout {
            None => DEFAULT_TIMEOUT_SECONDS,
            Some(t) => parse_duration(&t.text())
                .ok_or_else(|| err(format!("job `{name}`: timeout must look like `90s`, `10m` or `1h 30m`")))?,
        };
        let rules = raw
            .rules
            .into_iter()
            .map(|r| {
                let when = When::parse(r.when.as_deref(), &name, true)?;
                let condition = r
                    .condition
                    .map(|c| Expr::parse(&c).map_err(|e| err(format!("job `{name}`: if `{c}`: {e}"))))
                    .transpose()?;
                Ok(Rule { condition, when })
            })
            .collect::<Result<_, _>>()?;
        let when = When::parse(raw.when.as_deref(), &name, false)?.unwrap_or(When::OnSuccess);
        Ok(JobConfig {
            when,
            name,
            stage: raw.stage.unwrap_or_else(|| DEFAULT_STAGE.into()),
            script,
            variables: raw.variables.into_iter().map(|(k, v)| (k, v.text())).collect(),
            allow_failure: raw.allow_failure,
            timeout_seconds,
            rules,
        })
    }

    /// Whether this job runs for a pipeline with these variables: no rules, or the first rule
    /// whose condition holds is not `when: never`.
    pub fn included(&self, vars: &BTreeMap<String, String>) -> bool {
        self.when_for(vars) != When::Never
    }

    /// When this job runs for a pipeline with these variables: the job's own `when:` without
    /// rules; else the first rule whose condition holds decides (its `when:`, or the job's), and
    /// no matching rule leaves the job out.
    pub fn when_for(&self, vars: &BTreeMap<String, String>) -> When {
        if self.rules.is_empty() {
            return self.when;
        }
        match self.rules.iter().find(|r| r.condition.as_ref().is_none_or(|c| c.eval(vars))) {
            Some(rule) => rule.when.unwrap_or(self.when),
            None => When::Never,
        }
    }
}

/// `90`, `90s`, `10m`, `1h 30m`, `2 hours` -> seconds.
pub fn parse_duration(s: &str) -> Option<u32> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u32>() {
        return Some(n);
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.trim().is_empty() {
        rest = rest.trim_start();
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let mult = match unit {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            _ => return None,
        };
        total += n * mult;
    }
    u32::try_from(total).ok().filter(|t| *t > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str, version: &str) -> BTreeMap<String, String> {
        [("SLUICE_PACKAGE_NAME", name), ("SLUICE_PACKAGE_VERSION", version)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_the_documented_subset() {
        let c = PipelineConfig::parse(
            "stages: [test, scan]\nvariables: {REGION: eu, N: 3}\n.template: {script: x}\n\
             check:\n  stage: test\n  script: test -f pkg/package.json\n  timeout: 1h 30m\n\
             audit:\n  stage: scan\n  script: [echo a, echo b]\n  allow_failure: true\n  variables: {STRICT: 1}\n",
        )
        .unwrap();
        assert_eq!(c.stages, vec!["test", "scan"]);
        assert_eq!(c.variables["N"], "3");
        assert_eq!(c.jobs.len(), 2);
        let check = c.jobs.iter().find(|j| j.name == "check").unwrap();
        assert_eq!(check.script, vec!["test -f pkg/package.json"]);
        assert_eq!(check.timeout_seconds, 5400);
        let audit = c.jobs.iter().find(|j| j.name == "audit").unwrap();
        assert!(audit.allow_failure);
        assert_eq!(audit.variables["STRICT"], "1");
    }

    #[test]
    fn rejects_what_it_does_not_support_clearly() {
        assert!(PipelineConfig::parse("include: x.yml").unwrap_err().0.contains("not part of"));
        assert!(PipelineConfig::parse("j:\n  stage: deploy\n  script: x").unwrap_err().0.contains("stage `deploy`"));
        assert!(PipelineConfig::parse("j:\n  script: x\n  needs: [a]").unwrap_err().0.contains("needs"));
        assert!(PipelineConfig::parse("j:\n  script: x\n  timeout: soon").is_err());
        assert!(PipelineConfig::parse("j:\n  script: {a: b}").unwrap_err().0.contains("script must be a command"));
        assert!(PipelineConfig::parse("j:\n  script: x\n  rules: [{if: '$A =='}]").is_err());
        assert_eq!(PipelineConfig::parse("").unwrap(), PipelineConfig::empty());
    }

    #[test]
    fn rules_match_names_and_versions_like_gitlab() {
        let c = PipelineConfig::parse(
            "scoped:\n  script: x\n  rules:\n    - if: '$SLUICE_PACKAGE_NAME =~ /^@acme\\// && $SLUICE_PACKAGE_VERSION !~ /-/'\n\
             not-left-pad:\n  script: x\n  rules:\n    - if: $SLUICE_PACKAGE_NAME == \"left-pad\"\n      when: never\n    - when: always\n\
             either:\n  script: x\n  rules:\n    - if: ($SLUICE_PACKAGE_NAME == \"a\" || $SLUICE_PACKAGE_NAME == \"b\") && $SLUICE_PACKAGE_VERSION\n",
        )
        .unwrap();
        let job = |n: &str| c.jobs.iter().find(|j| j.name == n).unwrap().clone();
        assert!(job("scoped").included(&vars("@acme/x", "1.0.0")));
        assert!(!job("scoped").included(&vars("@acme/x", "1.0.0-rc.1")));
        assert!(!job("scoped").included(&vars("other", "1.0.0")));
        assert!(!job("not-left-pad").included(&vars("left-pad", "1.0.0")));
        assert!(job("not-left-pad").included(&vars("right-pad", "1.0.0")));
        assert!(job("either").included(&vars("b", "2.0.0")));
        assert!(!job("either").included(&vars("c", "2.0.0")));
    }

    #[test]
    fn manual_jobs_wait_and_may_not_fail_unless_told() {
        let c = PipelineConfig::parse(
            "approve:\n  script: x\n  when: manual\n\
             optional:\n  script: x\n  when: manual\n  allow_failure: true\n\
             prod-only:\n  script: x\n  rules:\n    - if: $SLUICE_PACKAGE_VERSION =~ /-/\n      when: never\n    - when: manual\n\
             plain:\n  script: x\n",
        )
        .unwrap();
        let job = |n: &str| c.jobs.iter().find(|j| j.name == n).unwrap().clone();
        assert_eq!(job("approve").when_for(&vars("a", "1.0.0")), When::Manual);
        assert!(!job("approve").allow_failure, "a manual job may not fail unless it says so");
        assert!(job("optional").allow_failure);
        assert_eq!(job("prod-only").when_for(&vars("a", "1.0.0")), When::Manual);
        assert_eq!(job("prod-only").when_for(&vars("a", "1.0.0-rc.1")), When::Never);
        assert_eq!(job("plain").when_for(&vars("a", "1.0.0")), When::OnSuccess);
        assert!(PipelineConfig::parse("j:\n  script: x\n  when: never\n").unwrap_err().0.contains("when: never"));
        assert!(PipelineConfig::parse("j:\n  script: x\n  when: delayed\n").unwrap_err().0.contains("not supported"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(90));
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("10m"), Some(600));
        assert_eq!(parse_duration("1h 30m"), Some(5400));
        assert_eq!(parse_duration("2 hours"), Some(7200));
        assert_eq!(parse_duration("soon"), None);
    }
}
