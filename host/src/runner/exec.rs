//! Running one job on this machine once its file is downloaded: unpack it ([`super::extract`]),
//! then run the script with bash ([`super::process`]) in the job folder ([`super::workspace`]).
//! Nothing here speaks HTTP; the log goes into a channel and cancellation comes from a watch
//! channel, so all of it is testable without a server.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use tokio::process::Command;
use tokio::time::Instant;

use super::extract::extract;
use super::job::{FailureReason, Job, Outcome};
use super::process::{find_tool, run_logged, shell_quote, Cancel, Log, ProcEnd};
use super::workspace::JobDir;

/// What every job on this runner shares.
pub(crate) struct Exec {
    /// The runner's work folder, canonical.
    pub work: PathBuf,
    /// Environment for every command a job runs: the runner's own, minus anything holding the
    /// runner token.
    pub env: Vec<(OsString, OsString)>,
}

impl Exec {
    pub(crate) fn new(work: PathBuf, runner_token: &str) -> Exec {
        Exec::with_env(work, runner_token, std::env::vars_os())
    }

    pub(crate) fn with_env(
        work: PathBuf,
        runner_token: &str,
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Exec {
        let env = env
            .into_iter()
            .filter(|(_, v)| runner_token.is_empty() || !v.to_string_lossy().contains(runner_token))
            .collect();
        Exec { work, env }
    }

    pub(crate) fn path_var(&self) -> Option<&OsStr> {
        self.env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_os_str())
    }
}

/// The job's script as bash runs it: stop at the first failing line, and echo each line as `$ line`
/// before running it (without `set -x`, which would also trace what the lines themselves run).
pub(crate) fn script_text(lines: &[String]) -> String {
    let mut text = String::from("set -eo pipefail\n");
    for line in lines {
        text.push_str(&format!("printf '%s\\n' {}\n", shell_quote(&format!("$ {line}"))));
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// One job being run here.
pub(crate) struct Run<'a> {
    pub exec: &'a Exec,
    pub job: &'a Job,
    pub dir: &'a JobDir,
    pub log: &'a Log,
    pub cancel: Cancel,
    /// The job's timeout, as a point in time.
    pub deadline: Instant,
}

impl Run<'_> {
    pub(crate) async fn timed_out(&self) -> Outcome {
        self.log.line(format!("ERROR: job exceeded its timeout of {} s", self.job.timeout_seconds)).await;
        Outcome::failed(FailureReason::JobTimeout)
    }

    pub(crate) fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.dir.root).env_clear().envs(self.exec.env.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

/// Everything after the download: unpack into `pkg/`, check that nothing landed elsewhere, run the
/// script.
pub(crate) async fn unpack_and_run(run: &mut Run<'_>) -> Outcome {
    if let Err(outcome) = extract(run).await {
        return outcome;
    }
    run_script(run).await
}

async fn run_script(run: &mut Run<'_>) -> Outcome {
    let script = run.dir.root.join("script.sh");
    if let Err(e) = tokio::fs::write(&script, script_text(&run.job.script)).await {
        run.log.line(format!("ERROR: cannot write the script: {e}")).await;
        return Outcome::failed(FailureReason::ScriptFailure);
    }
    let Some(bash) = find_tool("bash", run.exec.path_var()) else {
        run.log.line("ERROR: `bash` is not installed on this runner (needed to run the script)").await;
        return Outcome::failed(FailureReason::MissingTool);
    };
    let mut cmd = run.command(bash);
    cmd.arg("script.sh")
        .envs(&run.job.variables)
        .env("CI", "true")
        .env("SLUICE_JOB_ID", run.job.id.to_string())
        .env("SLUICE_PKG_DIR", &run.dir.pkg)
        .env("SLUICE_PACKAGE_FILE", &run.dir.archive);
    match run_logged(cmd, run.log, &mut run.cancel, run.deadline).await {
        Err(e) => {
            run.log.line(format!("ERROR: could not start bash: {e}")).await;
            Outcome::failed(FailureReason::ScriptFailure)
        }
        Ok(ProcEnd::TimedOut) => run.timed_out().await,
        Ok(ProcEnd::Canceled) => Outcome::Canceled,
        Ok(ProcEnd::Exited(status)) => match (status.code(), status.signal()) {
            (Some(0), _) => {
                run.log.line("Job succeeded").await;
                Outcome::Success
            }
            (Some(code), _) => {
                run.log.line(format!("ERROR: Job failed: exit code {code}")).await;
                Outcome::Failed { reason: Some(FailureReason::ScriptFailure), exit_code: Some(code) }
            }
            (None, signal) => {
                run.log
                    .line(format!("ERROR: Job failed: the script was killed by signal {}", signal.unwrap_or(0)))
                    .await;
                Outcome::Failed { reason: Some(FailureReason::ScriptFailure), exit_code: None }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::watch;

    use super::*;
    use crate::runner::testing::{exec, job, no_cancel, run_with};

    /// The `State:` line of the process whose pid is in `pid_file` (empty once it is gone). SIGKILL
    /// is delivered at once but acted on when the process next runs, so on a loaded machine it can
    /// still show as running for a moment: this waits up to 2 s for it to be gone or a zombie.
    async fn state_once_killed(pid_file: &std::path::Path) -> String {
        let pid = std::fs::read_to_string(pid_file).unwrap();
        let state = || {
            let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap_or_default();
            status.lines().find(|l| l.starts_with("State:")).unwrap_or("").to_string()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            let now = state();
            if now.is_empty() || now.contains('Z') || std::time::Instant::now() > deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn the_timeout_kills_the_script_and_what_it_started() {
        let (_tmp, exec) = exec();
        let mut j = job(10, &["sleep 60 & echo $! > \"$SLUICE_PKG_DIR/../../sleep.pid\"", "sleep 60"], vec![]);
        j.timeout_seconds = 1;
        let (outcome, log, took) = run_with(&exec, &j, b"", no_cancel()).await;
        assert_eq!(outcome, Outcome::failed(FailureReason::JobTimeout), "{log}");
        assert!(log.contains("job exceeded its timeout of 1 s"), "{log}");
        println!("stopped after {took:?}");
        let state = state_once_killed(&exec.work.join("sleep.pid")).await;
        assert!(state.is_empty() || state.contains('Z'), "the background sleep survived the timeout: {state}");
    }

    #[tokio::test]
    async fn cancellation_stops_the_script_at_once() {
        let (_tmp, exec) = exec();
        let j = job(11, &["sleep 60 & echo $! > \"$SLUICE_PKG_DIR/../../sleep.pid\"; wait"], vec![]);
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            tx.send(true).unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let (outcome, log, took) = run_with(&exec, &j, b"", rx).await;
        assert_eq!(outcome, Outcome::Canceled, "{log}");
        println!("stopped after {took:?}");
        let state = state_once_killed(&exec.work.join("sleep.pid")).await;
        assert!(state.is_empty() || state.contains('Z'), "the script's process survived the cancel: {state}");
    }

    #[tokio::test]
    async fn output_streams_in_order_while_the_script_runs() {
        let (_tmp, exec) = exec();
        let j = job(12, &["for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.3; done"], vec![]);
        let dir = JobDir::new(&exec.work, &j);
        dir.create().await.unwrap();
        let (log, mut rx) = Log::channel(4);
        let started = std::time::Instant::now();
        let collect = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut text = String::new();
            while let Some(chunk) = rx.recv().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
                seen.push((started.elapsed(), text.clone()));
            }
            (seen, text)
        });
        let mut run = Run {
            exec: &exec,
            job: &j,
            dir: &dir,
            log: &log,
            cancel: no_cancel(),
            deadline: Instant::now() + Duration::from_secs(60),
        };
        let outcome = unpack_and_run(&mut run).await;
        drop(log);
        let (seen, text) = collect.await.unwrap();
        assert_eq!(outcome, Outcome::Success, "{text}");
        let expected = "$ for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.3; done\nout 1\nerr 1\nout 2\nerr 2\nout 3\nerr 3\n";
        assert!(text.contains(expected), "{text}");
        // `out 1` was in the log well before the script ended.
        let first = seen.iter().find(|(_, t)| t.contains("out 1")).unwrap().0;
        let last = seen.last().unwrap().0;
        assert!(last - first >= Duration::from_millis(400), "first {first:?}, last {last:?}");
    }

    #[tokio::test]
    async fn the_exit_code_is_reported_and_later_lines_do_not_run() {
        let (_tmp, exec) = exec();
        let j = job(13, &["echo before", "exit 3", "echo after"], vec![]);
        let (outcome, log, _) = run_with(&exec, &j, b"", no_cancel()).await;
        assert_eq!(
            outcome,
            Outcome::Failed { reason: Some(FailureReason::ScriptFailure), exit_code: Some(3) },
            "{log}"
        );
        assert!(log.contains("before\n"), "{log}");
        assert!(log.contains("ERROR: Job failed: exit code 3"), "{log}");
        assert!(!log.contains("after\n"), "{log}");

        let j = job(14, &["false | cat", "echo after"], vec![]);
        let (outcome, log, _) = run_with(&exec, &j, b"", no_cancel()).await;
        assert_eq!(
            outcome,
            Outcome::Failed { reason: Some(FailureReason::ScriptFailure), exit_code: Some(1) },
            "{log}"
        );
    }

    #[tokio::test]
    async fn the_script_sees_the_job_variables_and_not_the_runner_token() {
        let (_tmp, exec) = exec();
        let mut env = exec.env.clone();
        env.push(("LEAKY".into(), "xx-RUNNER-TOKEN-SECRET-xx".into()));
        let exec = Exec::with_env(exec.work.clone(), "RUNNER-TOKEN-SECRET", env);
        assert!(exec.env.iter().any(|(k, _)| k == "PATH"));
        let j = job(
            15,
            &[
                "echo \"name=$SLUICE_PACKAGE_NAME ci=$CI id=$SLUICE_JOB_ID\"",
                "echo \"file=$SLUICE_PACKAGE_FILE\"",
                "env",
            ],
            vec![],
        );
        let (outcome, log, _) = run_with(&exec, &j, b"", no_cancel()).await;
        assert_eq!(outcome, Outcome::Success, "{log}");
        assert!(log.contains("name=left-pad ci=true id=15\n"), "{log}");
        assert!(log.contains(&format!("file={}\n", exec.work.join("job-15/left-pad-1.0.0.tgz").display())), "{log}");
        assert!(!log.contains("RUNNER-TOKEN-SECRET"), "{log}");
    }

    #[test]
    fn script_lines_are_echoed_literally() {
        let lines = vec!["echo \"it's $HOME\"".to_owned(), "x='a b'".to_owned()];
        let text = script_text(&lines);
        let out = std::process::Command::new("bash").arg("-c").arg(&text).output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.starts_with("$ echo \"it's $HOME\"\nit's /"), "{stdout}");
        assert!(stdout.ends_with("$ x='a b'\n"), "{stdout}");
    }
}
