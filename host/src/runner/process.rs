//! Running one command of a job: in a process group of its own, its output streamed to the job's
//! log, killed (with whatever it started) on the job's deadline or on cancellation. Also where a
//! tool is looked up on PATH. Nothing here knows about jobs, folders or HTTP.

use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

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
pub(crate) fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%{}".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_found_on_path_only() {
        let path = std::env::var_os("PATH");
        assert!(find_tool("tar", path.as_deref()).is_some());
        assert!(find_tool("definitely-not-installed-tool", path.as_deref()).is_none());
        assert!(find_tool("/usr/bin/tar", path.as_deref()).is_none());
    }
}
