//! Unpacking the downloaded file into `pkg/` with the tools the format plugin names (looked up on
//! the runner's PATH, run as job commands), then the containment check: nothing the package holds
//! may land outside `pkg/`.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Component, Path, PathBuf};

use super::exec::Run;
use super::job::{FailureReason, Outcome};
use super::process::{find_tool, run_logged, shell_quote, ProcEnd};
use super::workspace::{is_job_dir_name, list_dir, make_writable};

/// Runs the extraction steps of the job, then the containment check.
pub(crate) async fn extract(run: &mut Run<'_>) -> Result<(), Outcome> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::protocol::Step;
    use crate::runner::testing::{add_file, exec, job, no_cancel, run_with, tar_step, tgz};

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
}
