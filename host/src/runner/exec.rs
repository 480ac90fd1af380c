//! Running one job on this machine: unpacking, the containment check, the script, the log. Nothing
//! here speaks HTTP; the log goes into a channel and cancellation comes from a watch channel, so all
//! of it is testable without a server.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt::Display;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Component, Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::job::{FailureReason, Job, Outcome};

/// The job's log: chunks of output, in order. The receiving end ships them to the server.
#[derive(Clone)]
pub(crate) struct Log {
    tx: mpsc::Sender<Vec<u8>>,
}

impl Log {
    /// A bounded channel: a script that writes faster than the log can be shipped is slowed down
    /// rather than buffered without limit.
    pub(crate) fn channel(capacity: usize) -> (Log, mpsc::Receiver<Vec<u8>>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Log { tx }, rx)
    }

    pub(crate) async fn raw(&self, bytes: Vec<u8>) {
        // The receiver only goes away once the job is canceled; output is then of no use.
        let _ = self.tx.send(bytes).await;
    }

    pub(crate) async fn line(&self, line: impl AsRef<str>) {
        let mut text = line.as_ref().to_owned();
        text.push('\n');
        self.raw(text.into_bytes()).await;
    }
}

/// Becomes `true` when the server cancels the job.
pub(crate) type Cancel = watch::Receiver<bool>;

pub(crate) async fn canceled(cancel: &mut Cancel) {
    if cancel.wait_for(|c| *c).await.is_err() {
        // Nobody can cancel any more.
        std::future::pending::<()>().await;
    }
}

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

    fn with_env(work: PathBuf, runner_token: &str, env: impl IntoIterator<Item = (OsString, OsString)>) -> Exec {
        let env = env
            .into_iter()
            .filter(|(_, v)| runner_token.is_empty() || !v.to_string_lossy().contains(runner_token))
            .collect();
        Exec { work, env }
    }

    fn path_var(&self) -> Option<&OsStr> {
        self.env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_os_str())
    }
}

/// `WORK/job-{id}` and what goes in it.
pub(crate) struct JobDir {
    pub root: PathBuf,
    pub archive: PathBuf,
    pub pkg: PathBuf,
    pub scratch: PathBuf,
    archive_name: String,
}

impl JobDir {
    pub(crate) fn new(work: &Path, job: &Job) -> JobDir {
        let root = work.join(format!("job-{}", job.id));
        let archive_name = sanitize_file_name(&job.file_name);
        JobDir {
            archive: root.join(&archive_name),
            pkg: root.join("pkg"),
            scratch: root.join("scratch"),
            root,
            archive_name,
        }
    }

    /// Creates the folder afresh (a leftover of a crashed runner is removed first).
    pub(crate) async fn create(&self) -> io::Result<()> {
        if tokio::fs::symlink_metadata(&self.root).await.is_ok() {
            self.remove().await?;
        }
        tokio::fs::create_dir_all(&self.root).await?;
        tokio::fs::create_dir(&self.pkg).await?;
        tokio::fs::create_dir(&self.scratch).await?;
        Ok(())
    }

    /// Removes the folder, even when the package unpacked read-only directories.
    pub(crate) async fn remove(&self) -> io::Result<()> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            if std::fs::remove_dir_all(&root).is_ok() || std::fs::symlink_metadata(&root).is_err() {
                return Ok(());
            }
            make_writable(&root);
            std::fs::remove_dir_all(&root)
        })
        .await
        .map_err(io::Error::other)?
    }
}

fn make_writable(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&d) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(meta.mode() | 0o700));
        if let Ok(entries) = std::fs::read_dir(&d) {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
    }
}

/// The downloaded file's name, reduced to one harmless path component.
pub(crate) fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().map(|c| if c.is_control() { '_' } else { c }).collect();
    match cleaned.as_str() {
        "" | "." | ".." => "package".to_owned(),
        "pkg" | "scratch" | "script.sh" => format!("package-{cleaned}"),
        _ => cleaned,
    }
}

/// Streams a download to `path`, computing its sha256 on the way. Returns the hex digest and size.
pub(crate) async fn save_stream<S, B, E>(mut stream: S, path: &Path) -> Result<(String, u64), String>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: Display,
{
    let mut file = tokio::fs::File::create(path).await.map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("download interrupted: {e}"))?;
        let chunk = chunk.as_ref();
        hasher.update(chunk);
        size += chunk.len() as u64;
        file.write_all(chunk).await.map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    file.flush().await.map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((hex::encode(hasher.finalize()), size))
}

/// Looks a command name up on `path` (a PATH value). Names with a slash are not looked up.
pub(crate) fn find_tool(tool: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    if tool.is_empty() || tool.contains('/') {
        return None;
    }
    std::env::split_paths(path?).filter(|d| d.is_absolute()).map(|d| d.join(tool)).find(|candidate| {
        std::fs::metadata(candidate).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    })
}

/// Quotes a word for display (and for bash) when it needs it.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%{}".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
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

/// How a command ended.
#[derive(Debug)]
pub(crate) enum ProcEnd {
    Exited(ExitStatus),
    TimedOut,
    Canceled,
}

/// Kills every process of a process group, with kill(1) or else bash's builtin `kill`, looked up on
/// PATH and then in the usual places (a runner started with a narrow PATH must still be able to
/// stop a job).
async fn kill_group(pgid: u32) {
    let target = format!("-{pgid}");
    let builtin = format!("kill -KILL -- {target}");
    let candidates: [(&str, &[&str]); 6] = [
        ("kill", &["-KILL", "--", &target]),
        ("/usr/bin/kill", &["-KILL", "--", &target]),
        ("/bin/kill", &["-KILL", "--", &target]),
        ("bash", &["-c", &builtin]),
        ("/usr/bin/bash", &["-c", &builtin]),
        ("/bin/bash", &["-c", &builtin]),
    ];
    for (program, args) in candidates {
        let status = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        // It ran (an exit status of 1 only means that nothing was left to kill).
        if status.is_ok() {
            return;
        }
    }
    tracing::error!("cannot kill process group {pgid}: neither kill nor bash can be started");
}

/// Runs `cmd` in a process group of its own with stdout and stderr (one pipe, so their order is
/// kept) going to `log` as it arrives. Past `deadline` or on cancellation the whole group is killed.
/// When the command ends, whatever it left running in its group is killed too.
pub(crate) async fn run_logged(
    mut cmd: Command,
    log: &Log,
    cancel: &mut Cancel,
    deadline: Instant,
) -> io::Result<ProcEnd> {
    let (reader, writer) = io::pipe()?;
    cmd.stdin(Stdio::null()).stdout(writer.try_clone()?).stderr(writer).process_group(0).kill_on_drop(true);
    let spawned = cmd.spawn();
    // The command holds our copies of the pipe's write end: without dropping it, no end of file.
    drop(cmd);
    let mut child = spawned?;
    let pgid = child.id().ok_or_else(|| io::Error::other("the process ended before it started"))?;
    let mut reader = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut open = true;
    let end = loop {
        tokio::select! {
            read = reader.read(&mut buf), if open => match read {
                Ok(0) | Err(_) => open = false,
                Ok(n) => log.raw(buf[..n].to_vec()).await,
            },
            status = child.wait() => match status {
                Ok(status) => break ProcEnd::Exited(status),
                Err(e) => {
                    kill_group(pgid).await;
                    return Err(e);
                }
            },
            _ = tokio::time::sleep_until(deadline) => break ProcEnd::TimedOut,
            _ = canceled(cancel) => break ProcEnd::Canceled,
        }
    };
    kill_group(pgid).await;
    if !matches!(end, ProcEnd::Exited(_)) {
        let _ = child.wait().await;
    }
    if open && !matches!(end, ProcEnd::Canceled) {
        // What is still in the pipe. The group is dead, so the end of file comes at once, unless
        // something left the group (setsid) holding the pipe: do not wait for that.
        let drain = async {
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => log.raw(buf[..n].to_vec()).await,
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    }
    Ok(end)
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

    fn command(&self, program: impl AsRef<OsStr>) -> Command {
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

fn is_job_dir_name(name: &OsStr) -> bool {
    name.to_str()
        .and_then(|n| n.strip_prefix("job-"))
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

fn list_dir(dir: &Path) -> HashSet<OsString> {
    std::fs::read_dir(dir).map(|entries| entries.flatten().map(|e| e.file_name()).collect()).unwrap_or_default()
}

async fn extract(run: &mut Run<'_>) -> Result<(), Outcome> {
    let Some(extraction) = run.job.extraction.clone().filter(|e| !e.steps.is_empty()) else {
        run.log.line(format!("No extraction steps: the file stays as it is, at {}", run.dir.archive.display())).await;
        return Ok(());
    };
    let media_type = if extraction.media_type.is_empty() { "this package" } else { extraction.media_type.as_str() };
    if let Some(image) = &extraction.image {
        run.log.line(format!("Note: this runner unpacks on its host and does not use the image `{image}`")).await;
    }
    run.log.line(format!("Unpacking {} ({media_type}) into pkg/", run.dir.archive_name)).await;
    let work_before = list_dir(&run.exec.work);
    for step in &extraction.steps {
        let Some(program) = find_tool(&step.tool, run.exec.path_var()) else {
            run.log
                .line(format!(
                    "ERROR: extraction tool `{}` is not installed on this runner (needed to unpack {media_type})",
                    step.tool
                ))
                .await;
            return Err(Outcome::failed(FailureReason::MissingTool));
        };
        let args: Vec<String> = step
            .argv
            .iter()
            .map(|a| {
                a.replace("{archive}", &run.dir.archive.to_string_lossy())
                    .replace("{dest}", &run.dir.pkg.to_string_lossy())
                    .replace("{scratch}", &run.dir.scratch.to_string_lossy())
            })
            .collect();
        let shown: Vec<String> =
            std::iter::once(step.tool.as_str()).chain(args.iter().map(String::as_str)).map(shell_quote).collect();
        run.log.line(format!("$ {}", shown.join(" "))).await;
        let mut cmd = run.command(&program);
        cmd.args(&args);
        match run_logged(cmd, run.log, &mut run.cancel, run.deadline).await {
            Err(e) => {
                run.log.line(format!("ERROR: could not run extraction tool `{}`: {e}", step.tool)).await;
                return Err(Outcome::failed(FailureReason::ExtractionFailure));
            }
            Ok(ProcEnd::TimedOut) => return Err(run.timed_out().await),
            Ok(ProcEnd::Canceled) => return Err(Outcome::Canceled),
            Ok(ProcEnd::Exited(status)) if !status.success() => {
                let how = match (status.code(), status.signal()) {
                    (Some(code), _) => format!("exited with code {code}"),
                    (None, Some(sig)) => format!("was killed by signal {sig}"),
                    _ => "failed".to_owned(),
                };
                run.log
                    .line(format!(
                        "ERROR: extraction failed: `{}` {how} (its messages are above); the package may \
                         hold entries that would land outside pkg/, or be damaged",
                        step.tool
                    ))
                    .await;
                return Err(Outcome::failed(FailureReason::ExtractionFailure));
            }
            Ok(ProcEnd::Exited(_)) => {}
        }
    }
    let work = run.exec.work.clone();
    let root = run.dir.root.clone();
    let archive_name = run.dir.archive_name.clone();
    let checked =
        tokio::task::spawn_blocking(move || check_containment(&work, &root, &archive_name, &work_before)).await;
    match checked {
        Ok(Ok(())) => {
            run.log.line("Unpacked; every entry is inside pkg/").await;
            Ok(())
        }
        Ok(Err(message)) => {
            run.log.line(format!("ERROR: {message}")).await;
            Err(Outcome::failed(FailureReason::ExtractionFailure))
        }
        Err(e) => {
            run.log.line(format!("ERROR: the containment check failed: {e}")).await;
            Err(Outcome::failed(FailureReason::ExtractionFailure))
        }
    }
}

/// After unpacking: the job folder holds only the archive, `pkg/` and `scratch/`; every symlink
/// under those two resolves inside them; no file there is hard-linked to one elsewhere; and the work
/// folder gained nothing but job folders (a stray entry there is removed).
pub(crate) fn check_containment(
    work: &Path,
    root: &Path,
    archive_name: &str,
    work_before: &HashSet<OsString>,
) -> Result<(), String> {
    let outside = |shown: &str, why: &str| format!("entry `{shown}` would land outside pkg/{why}");
    let mut stray: Vec<OsString> =
        list_dir(work).into_iter().filter(|n| !work_before.contains(n) && !is_job_dir_name(n)).collect();
    if !stray.is_empty() {
        stray.sort();
        for name in &stray {
            let path = work.join(name);
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {
                    make_writable(&path);
                    let _ = std::fs::remove_dir_all(&path);
                }
                _ => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        return Err(outside(
            &format!("../../{}", stray[0].to_string_lossy()),
            " (it was written to the runner's work folder, and removed)",
        ));
    }
    let mut names: Vec<OsString> = list_dir(root).into_iter().collect();
    names.sort();
    for name in &names {
        if name != archive_name && name != "pkg" && name != "scratch" {
            return Err(outside(&format!("../{}", name.to_string_lossy()), ""));
        }
    }
    let roots = [root.join("pkg"), root.join("scratch")];
    for r in &roots {
        match std::fs::symlink_metadata(r) {
            Ok(m) if m.is_dir() => {}
            _ => return Err(format!("{} is no longer a plain folder", r.display())),
        }
    }
    // inode -> (links it has, links seen here, a path for the message)
    let mut hard_links: HashMap<(u64, u64), (u64, u64, PathBuf)> = HashMap::new();
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let shown = path.strip_prefix(root.join("pkg")).unwrap_or(&path).to_string_lossy().into_owned();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap_or_default();
                let resolved = resolve(&dir.join(&target));
                if !roots.iter().any(|r| resolved.starts_with(r)) {
                    return Err(outside(&shown, &format!(" (a symlink to `{}`)", target.display())));
                }
            } else if meta.is_dir() {
                stack.push(path);
            } else if meta.nlink() > 1 {
                let seen = hard_links.entry((meta.dev(), meta.ino())).or_insert((meta.nlink(), 0, path.clone()));
                seen.1 += 1;
            }
        }
    }
    if let Some((_, _, path)) = hard_links.values().find(|(links, seen, _)| seen < links) {
        let shown = path.strip_prefix(root.join("pkg")).unwrap_or(path).to_string_lossy().into_owned();
        return Err(outside(&shown, " (a hard link to a file outside it)"));
    }
    Ok(())
}

/// Where an absolute path leads: canonical when it exists; otherwise its longest existing prefix,
/// canonical, followed by the rest taken literally.
fn resolve(path: &Path) -> PathBuf {
    if let Ok(canonical) = std::fs::canonicalize(path) {
        return canonical;
    }
    let components: Vec<Component> = path.components().collect();
    for split in (1..components.len()).rev() {
        let prefix: PathBuf = components[..split].iter().collect();
        if let Ok(mut out) = std::fs::canonicalize(&prefix) {
            for c in &components[split..] {
                match c {
                    Component::Normal(n) => out.push(n),
                    Component::ParentDir => {
                        out.pop();
                    }
                    _ => {}
                }
            }
            return out;
        }
    }
    path.to_path_buf()
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
    use std::collections::BTreeMap;
    use std::io::Write as _;

    use super::*;
    use crate::runner::protocol::{Extraction, Step};

    fn job(id: u64, script: &[&str], steps: Vec<Step>) -> Job {
        Job {
            id,
            pipeline_id: 1,
            name: "check".into(),
            stage: "test".into(),
            token: "JOBTOKEN".into(),
            script: script.iter().map(|s| s.to_string()).collect(),
            variables: BTreeMap::from([("SLUICE_PACKAGE_NAME".to_owned(), "left-pad".to_owned())]),
            timeout_seconds: 60,
            sha256: String::new(),
            file_name: "left-pad-1.0.0.tgz".into(),
            file_url: String::new(),
            commit_sha: None,
            extraction: Some(Extraction { media_type: "application/gzip".into(), steps, image: None }),
        }
    }

    fn tar_step() -> Vec<Step> {
        vec![Step {
            tool: "tar".into(),
            argv: ["-xzf", "{archive}", "-C", "{dest}", "--strip-components=1"].map(String::from).to_vec(),
        }]
    }

    /// A work folder, with the runner token hidden from jobs.
    fn exec() -> (tempfile::TempDir, Exec) {
        let tmp = tempfile::tempdir().unwrap();
        let work = std::fs::canonicalize(tmp.path()).unwrap().join("work");
        std::fs::create_dir(&work).unwrap();
        (tmp, Exec::new(work, "RUNNER-TOKEN-SECRET"))
    }

    /// Runs everything after the download with `archive` as the file; returns the outcome, the log
    /// and how long it took.
    async fn run_with(exec: &Exec, job: &Job, archive: &[u8], cancel: Cancel) -> (Outcome, String, Duration) {
        let dir = JobDir::new(&exec.work, job);
        dir.create().await.unwrap();
        std::fs::write(&dir.archive, archive).unwrap();
        let (log, mut rx) = Log::channel(4);
        let collect = tokio::spawn(async move {
            let mut all = Vec::new();
            while let Some(chunk) = rx.recv().await {
                all.extend(chunk);
            }
            String::from_utf8_lossy(&all).into_owned()
        });
        let started = std::time::Instant::now();
        let mut run = Run {
            exec,
            job,
            dir: &dir,
            log: &log,
            cancel,
            deadline: Instant::now() + Duration::from_secs(job.timeout_seconds),
        };
        let outcome = unpack_and_run(&mut run).await;
        let took = started.elapsed();
        drop(log);
        (outcome, collect.await.unwrap(), took)
    }

    fn no_cancel() -> Cancel {
        let (tx, rx) = watch::channel(false);
        std::mem::forget(tx);
        rx
    }

    fn tgz(build: impl FnOnce(&mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>)) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        build(&mut builder);
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn add_file(b: &mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn npm_package() -> Vec<u8> {
        tgz(|b| {
            add_file(b, "package/package.json", br#"{"name": "left-pad", "version": "1.0.0"}"#);
            add_file(b, "package/lib/index.js", b"module.exports = 1;\n");
        })
    }

    #[tokio::test]
    async fn extracts_a_tgz_with_tar_into_pkg_and_runs_the_script() {
        let (_tmp, exec) = exec();
        let j = job(1, &["test -f \"$SLUICE_PKG_DIR/package.json\"", "cat pkg/lib/index.js", "ls scratch"], tar_step());
        let (outcome, log, _) = run_with(&exec, &j, &npm_package(), no_cancel()).await;
        assert_eq!(outcome, Outcome::Success, "{log}");
        assert!(log.contains("$ tar -xzf "), "{log}");
        assert!(log.contains("module.exports = 1;"), "{log}");
        assert!(log.contains("Unpacked; every entry is inside pkg/"), "{log}");
        let pkg = exec.work.join("job-1/pkg");
        assert!(pkg.join("package.json").is_file());
        assert!(pkg.join("lib/index.js").is_file());
    }

    /// A tar with a `../evil` member, written with raw header bytes (the tar crate refuses `..`).
    fn dotdot_tgz() -> Vec<u8> {
        tgz(|b| {
            add_file(b, "package/package.json", b"{}");
            let data = b"gotcha\n";
            let mut h = tar::Header::new_old();
            let name = b"../evil";
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append(&h, &data[..]).unwrap();
        })
    }

    #[tokio::test]
    async fn a_dotdot_member_creates_nothing_outside_pkg_and_fails_clearly() {
        let (tmp, exec) = exec();
        let j = job(2, &["echo should not run"], tar_step());
        let (outcome, log, _) = run_with(&exec, &j, &dotdot_tgz(), no_cancel()).await;
        assert_eq!(outcome, Outcome::failed(FailureReason::ExtractionFailure), "{log}");
        assert!(log.contains("ERROR: extraction failed: `tar` exited with code"), "{log}");
        assert!(log.contains("outside pkg/"), "{log}");
        assert!(!log.contains("should not run"), "{log}");
        // Without --strip-components `../evil` would be job-2/evil; with it, it would be pkg/evil's
        // sibling or the work folder's: none of these exist.
        assert!(!exec.work.join("job-2/evil").exists());
        assert!(!exec.work.join("evil").exists());
        assert!(!tmp.path().join("evil").exists());
        let entries = list_dir(&exec.work.join("job-2"));
        assert_eq!(entries.len(), 3, "{entries:?}");
    }

    #[tokio::test]
    async fn a_dotdot_member_without_strip_components_is_refused_too() {
        let (_tmp, exec) = exec();
        let steps =
            vec![Step { tool: "tar".into(), argv: ["-xzf", "{archive}", "-C", "{dest}"].map(String::from).to_vec() }];
        let j = job(3, &["true"], steps);
        let (outcome, log, _) = run_with(&exec, &j, &dotdot_tgz(), no_cancel()).await;
        assert_eq!(outcome, Outcome::failed(FailureReason::ExtractionFailure), "{log}");
        assert!(!exec.work.join("job-3/evil").exists(), "{log}");
    }

    #[tokio::test]
    async fn an_entry_written_beside_pkg_fails_the_job() {
        let (_tmp, exec) = exec();
        let steps = vec![Step { tool: "touch".into(), argv: vec!["{dest}/../evil".into()] }];
        let j = job(4, &["echo should not run"], steps);
        let (outcome, log, _) = run_with(&exec, &j, b"", no_cancel()).await;
        assert_eq!(outcome, Outcome::failed(FailureReason::ExtractionFailure), "{log}");
        assert!(log.contains("ERROR: entry `../evil` would land outside pkg/"), "{log}");
        assert!(!log.contains("should not run"), "{log}");
    }

    #[tokio::test]
    async fn an_entry_written_into_the_work_folder_fails_the_job_and_is_removed() {
        let (_tmp, exec) = exec();
        let steps = vec![Step { tool: "mkdir".into(), argv: vec!["{dest}/../../evil-dir".into()] }];
        let j = job(5, &["true"], steps);
        let (outcome, log, _) = run_with(&exec, &j, b"", no_cancel()).await;
        assert_eq!(outcome, Outcome::failed(FailureReason::ExtractionFailure), "{log}");
        assert!(log.contains("entry `../../evil-dir` would land outside pkg/"), "{log}");
        assert!(!exec.work.join("evil-dir").exists());
    }

    #[tokio::test]
    async fn a_missing_tool_fails_the_job_naming_it() {
        let (_tmp, exec) = exec();
        let mut j = job(
            6,
            &["true"],
            vec![Step { tool: "definitely-not-installed-tool".into(), argv: vec!["{archive}".into()] }],
        );
        j.extraction.as_mut().unwrap().media_type = "application/zip".into();
        let (outcome, log, _) = run_with(&exec, &j, b"PK", no_cancel()).await;
        assert_eq!(outcome, Outcome::failed(FailureReason::MissingTool), "{log}");
        assert!(
            log.contains(
                "extraction tool `definitely-not-installed-tool` is not installed on this runner (needed to unpack application/zip)"
            ),
            "{log}"
        );
    }

    fn add_symlink(b: &mut tar::Builder<flate2::write::GzEncoder<Vec<u8>>>, path: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_link_name(target).unwrap();
        h.set_size(0);
        h.set_mode(0o777);
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
    }

    #[tokio::test]
    async fn a_symlink_pointing_outside_pkg_fails_the_job() {
        let (_tmp, exec) = exec();
        let archive = tgz(|b| {
            add_file(b, "package/package.json", b"{}");
            add_symlink(b, "package/lib/passwd", "/etc/passwd");
        });
        let j = job(7, &["echo should not run"], tar_step());
        let (outcome, log, _) = run_with(&exec, &j, &archive, no_cancel()).await;
        assert_eq!(outcome, Outcome::failed(FailureReason::ExtractionFailure), "{log}");
        assert!(log.contains("entry `lib/passwd` would land outside pkg/ (a symlink to `/etc/passwd`)"), "{log}");

        // Relative, dangling, through `..`: outside too.
        let archive = tgz(|b| add_symlink(b, "package/up", "../../../nowhere/at/all"));
        let j = job(8, &["true"], tar_step());
        let (outcome, log, _) = run_with(&exec, &j, &archive, no_cancel()).await;
        assert_eq!(outcome, Outcome::failed(FailureReason::ExtractionFailure), "{log}");
        assert!(log.contains("entry `up` would land outside pkg/"), "{log}");
    }

    #[tokio::test]
    async fn symlinks_inside_pkg_are_fine() {
        let (_tmp, exec) = exec();
        let archive = tgz(|b| {
            add_file(b, "package/lib/index.js", b"1");
            add_symlink(b, "package/main.js", "lib/index.js");
            add_symlink(b, "package/lib/self", "..");
            add_symlink(b, "package/dangling", "not/there");
        });
        let j = job(9, &["cat pkg/main.js"], tar_step());
        let (outcome, log, _) = run_with(&exec, &j, &archive, no_cancel()).await;
        assert_eq!(outcome, Outcome::Success, "{log}");
    }

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

    #[test]
    fn file_names_are_one_harmless_component() {
        assert_eq!(sanitize_file_name("left-pad-1.0.0.tgz"), "left-pad-1.0.0.tgz");
        assert_eq!(sanitize_file_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_file_name("a\\b"), "b");
        assert_eq!(sanitize_file_name(".."), "package");
        assert_eq!(sanitize_file_name("dir/"), "package");
        assert_eq!(sanitize_file_name("pkg"), "package-pkg");
    }

    #[tokio::test]
    async fn save_stream_hashes_what_it_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let chunks: Vec<Result<Vec<u8>, String>> = vec![Ok(b"hello ".to_vec()), Ok(b"world".to_vec())];
        let (sha, size) = save_stream(futures_util::stream::iter(chunks), &path).await.unwrap();
        assert_eq!(size, 11);
        assert_eq!(sha, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        let failing: Vec<Result<Vec<u8>, String>> = vec![Ok(b"x".to_vec()), Err("reset".into())];
        assert!(save_stream(futures_util::stream::iter(failing), &path).await.unwrap_err().contains("reset"));
    }

    #[tokio::test]
    async fn read_only_folders_are_removed_with_the_job() {
        let (_tmp, exec) = exec();
        let j = job(16, &[], vec![]);
        let dir = JobDir::new(&exec.work, &j);
        dir.create().await.unwrap();
        let ro = dir.pkg.join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::File::create(ro.join("f")).unwrap().write_all(b"x").unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        dir.remove().await.unwrap();
        assert!(!dir.root.exists());
    }

    #[test]
    fn tools_are_found_on_path_only() {
        let path = std::env::var_os("PATH");
        assert!(find_tool("tar", path.as_deref()).is_some());
        assert!(find_tool("definitely-not-installed-tool", path.as_deref()).is_none());
        assert!(find_tool("/usr/bin/tar", path.as_deref()).is_none());
    }
}
