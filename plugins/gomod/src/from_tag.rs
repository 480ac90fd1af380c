//! Turning a git tag into a module version, the way the go command reads tags of a repository.
//!
//! A tag `vX.Y.Z` is a version of the module whose go.mod is at the repository root; a tag
//! `dir/vX.Y.Z` is a version of the module whose go.mod is at `dir/go.mod`. For v2 and above the
//! module path must end in `/vN`, with go.mod either in the tag's folder or in its `vN/`
//! subfolder ("major subdirectory"), exactly as Go looks for it.
//!
//! A repository root without go.mod (code from before modules: `github.com/pkg/errors`) is a
//! module too, as the go command treats it: its path is the source's module path (configured, or
//! implied by the URL), its go.mod is the one Go synthesizes (`module PATH`, not in the zip), and
//! its v2+ tags are `+incompatible` versions of that path.
//!
//! A source publishes only module paths under its prefix (its configured module path, or the one
//! its URL implies), so that one repository cannot publish another's module; a source whose
//! location implies no path (a local folder) and that names none publishes what its go.mod files say.
//!
//! Which tags are ignored and which are reported:
//! - ignored (`Ok(None)`): tags whose last element does not start with a digit or `v` and a
//!   digit (`release-candidate`, `latest`, `docs/draft`): they are names, not versions;
//! - reported (`Err(invalid)`): tags that start like a version but are not one Go accepts (`v1.2`,
//!   `1.2.3`, `v1.2.3.4`, pseudo-versions, `+incompatible`), subdirectory tags without a go.mod,
//!   root tags without a go.mod when the source has no module path, tags whose go.mod names a
//!   module that does not fit the tag (a v2 tag on a module without `/v2`, a `sub/` tag whose
//!   module path does not end in `/sub`), and modules outside the source's prefix.
//!
//! Build metadata is dropped as Go does: tag `v1.2.3+meta` is version `v1.2.3`.

use crate::module_path::{self, GoVersion};
use crate::{gomod_file, module_zip, SourceTree};
use sluice_plugin_sdk::{Error, TagFile, TagInfo, TreeEntry};

/// The module a tag is a version of, and where its files are.
#[derive(Debug, PartialEq, Eq)]
pub struct TaggedModule {
    pub module: String,
    pub version: GoVersion,
    /// The module's folder in the repository ("" for the root).
    pub dir: String,
    /// No go.mod at this commit: Go synthesizes `module PATH`.
    pub synthesized: bool,
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The module path a git URL implies, the way import paths name repositories:
/// `https://github.com/pkg/errors.git` and `git@github.com:pkg/errors.git` are
/// `github.com/pkg/errors`. A local path or `file://` URL implies none.
pub fn implied_module_path(url: &str) -> Option<String> {
    let (host, path) = if let Some((scheme, rest)) = url.split_once("://") {
        if scheme.eq_ignore_ascii_case("file") {
            return None;
        }
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        // A port is not part of the import path.
        let host = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        (host, path)
    } else {
        // scp-like `user@host:path`; a colon after a slash is a local path.
        let (authority, path) = url.split_once(':')?;
        if authority.contains('/') || authority.is_empty() {
            return None;
        }
        (authority.rsplit_once('@').map_or(authority, |(_, h)| h), path)
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path).trim_end_matches('/');
    if host.is_empty() || path.is_empty() {
        return None;
    }
    Some(format!("{}/{path}", host.to_ascii_lowercase()))
}

/// The prefix a source publishes under: its configured module path, or the one its URL implies.
pub fn source_prefix(tag: &TagInfo) -> Result<Option<String>, Error> {
    match tag.source_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => {
            module_path::check_module_path(name).map_err(|e| {
                Error::invalid(format!("the source's configured module path {name:?} is not valid: {e}"))
            })?;
            Ok(Some(name.to_string()))
        }
        None => Ok(implied_module_path(&tag.source).filter(|p| module_path::check_module_path(p).is_ok())),
    }
}

/// Whether `module` is `prefix` or a path below it (`prefix/sub`, `prefix/v2`).
fn is_under(module: &str, prefix: &str) -> bool {
    module == prefix || module.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// Reads and parses the go.mod at `path`, or none if the tree has no file there.
fn read_go_mod(tree: &impl SourceTree, entries: &[TreeEntry], tag: &str, path: &str) -> Result<Option<String>, Error> {
    let Some(entry) = entries.iter().find(|e| e.path == path) else { return Ok(None) };
    if entry.kind != "file" {
        return Err(Error::invalid(format!("tag {tag}: {path} is a {}, not a regular file", entry.kind)));
    }
    if entry.size > module_zip::MAX_GO_MOD {
        return Err(Error::too_large(format!("tag {tag}: {path} is larger than {} bytes", module_zip::MAX_GO_MOD)));
    }
    let bytes = tree.read(path).map_err(|e| Error::invalid(format!("tag {tag}: reading {path}: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| Error::invalid(format!("tag {tag}: {path} is not UTF-8 text")))?;
    let parsed = gomod_file::parse(&text).map_err(|e| Error::invalid(format!("tag {tag}: {path}: {e}")))?;
    Ok(Some(parsed.module))
}

/// Finds which module a version tag belongs to; none for tags that are not versions at all.
/// `prefix` is the source's module path prefix, if it has one.
pub fn resolve(
    tag: &str,
    tree: &impl SourceTree,
    entries: &[TreeEntry],
    prefix: Option<&str>,
) -> Result<Option<TaggedModule>, Error> {
    let (dir, name) = tag.rsplit_once('/').unwrap_or(("", tag));
    if !module_path::looks_like_version(name) {
        return Ok(None);
    }
    let mut version = module_path::parse_version(name).map_err(|e| Error::invalid(format!("tag {tag}: {e}")))?;
    let invalid = |message: String| Error::invalid(format!("tag {tag}: {message}"));

    let fits = |module: &str| module_path::check_path_major(module, &version).is_ok();
    let in_dir_path = join(dir, "go.mod");
    let in_dir = read_go_mod(tree, entries, tag, &in_dir_path)?;
    // A v2+ module may live in a `vN/` subfolder, tagged without that subfolder in the tag.
    let major_dir = (version.major() >= 2).then(|| join(dir, &format!("v{}", version.major())));
    let in_major_dir = match &major_dir {
        Some(d) => read_go_mod(tree, entries, tag, &join(d, "go.mod"))?,
        None => None,
    };
    let mut synthesized = false;
    let (module, module_dir) = if let (Some(b), Some(major_dir)) = (in_major_dir, major_dir) {
        if !fits(&b) {
            return Err(invalid(format!(
                "{major_dir}/go.mod declares module {b}, which has no /v{} suffix",
                version.major()
            )));
        }
        if in_dir.as_deref().is_some_and(fits) {
            return Err(invalid(format!(
                "both {in_dir_path} and {major_dir}/go.mod declare a v{} module",
                version.major()
            )));
        }
        (b, major_dir)
    } else {
        match in_dir {
            Some(a) if fits(&a) => (a, dir.to_string()),
            Some(a) => {
                let reason = module_path::check_path_major(&a, &version).err().map(|e| e.0).unwrap_or_default();
                return Err(invalid(format!("{in_dir_path}: {reason}")));
            }
            None if !dir.is_empty() => {
                return Err(invalid(format!(
                    "no {in_dir_path} at this commit; a module in a subdirectory needs its own go.mod"
                )))
            }
            None => {
                let Some(path) = prefix else {
                    return Err(invalid(
                        "no go.mod at this commit, and the source names no module path to serve it under (configure the git source as { url = \"...\", module = \"example.com/path\" })".into(),
                    ));
                };
                // As Go does for code from before modules: a v2+ tag of a path without /vN is
                // an +incompatible version; a path with /vN takes only its own major.
                synthesized = true;
                let (_, path_major) = module_path::split_path_version(path).map_err(|e| invalid(e.0))?;
                if path_major.is_empty() && version.major() >= 2 {
                    version = version.into_incompatible();
                } else if !fits(path) {
                    let reason = module_path::check_path_major(path, &version).err().map(|e| e.0).unwrap_or_default();
                    return Err(invalid(reason));
                }
                (path.to_string(), String::new())
            }
        }
    };
    module_path::check_module_path(&module)
        .map_err(|e| invalid(format!("module path {module:?} is not valid: {e}")))?;
    if !dir.is_empty() {
        // Go finds a module's folder from its path: `example.com/repo/sub/v2` lives in `sub/`.
        let (without_major, _) = module_path::split_path_version(&module).map_err(|e| invalid(e.0))?;
        if !without_major.ends_with(&format!("/{dir}")) {
            return Err(invalid(format!(
                "module {module} in {dir}/ must have a path ending in /{dir}, or Go will not look for it under the tag prefix {dir}/"
            )));
        }
    }
    if let Some(prefix) = prefix {
        if !is_under(&module, prefix) {
            return Err(invalid(format!(
                "go.mod declares module {module}, which is not under this source's module path {prefix}; a source publishes only its own modules"
            )));
        }
    }
    Ok(Some(TaggedModule { module, version, dir: module_dir, synthesized }))
}

/// The go.mod the go command synthesizes for a module without one (`modfetch.LegacyGoMod`).
pub fn synthesized_go_mod(module: &str) -> String {
    format!("module {}\n", gomod_file::auto_quote(module))
}

/// `from-tag`: the module zip for a version tag.
pub fn from_tag(tag: &TagInfo, tree: &impl SourceTree) -> Result<Option<TagFile>, Error> {
    let entries = tree.entries();
    let prefix = source_prefix(tag).map_err(|e| Error::new(e.kind, format!("tag {}: {}", tag.name, e.message)))?;
    let Some(tagged) = resolve(&tag.name, tree, &entries, prefix.as_deref())? else { return Ok(None) };
    let bytes = module_zip::create(tree, &entries, &tagged.dir, &tagged.module, &tagged.version.canonical, tag.time)
        .map_err(|e| Error::new(e.kind, format!("tag {}: {}", tag.name, e.message)))?;
    Ok(Some(TagFile { file_name: crate::zip_file_name(&tagged.version.canonical), bytes }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::MemoryTree;

    fn tag(name: &str) -> TagInfo {
        TagInfo {
            name: name.into(),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            time: 1_700_000_000,
            source: "/srv/git/m".into(),
            source_name: None,
        }
    }

    fn resolved(name: &str, tree: &MemoryTree) -> Result<Option<(String, String, String)>, String> {
        resolved_under(name, tree, None)
    }

    fn resolved_under(
        name: &str,
        tree: &MemoryTree,
        prefix: Option<&str>,
    ) -> Result<Option<(String, String, String)>, String> {
        resolve(name, tree, &tree.entries, prefix)
            .map(|r| r.map(|t| (t.module, t.version.canonical, t.dir)))
            .map_err(|e| e.message)
    }

    #[test]
    fn v0_v1_and_v2_modules() {
        let v1 = MemoryTree::new(&[("go.mod", "module example.com/m\n"), ("m.go", "package m")]);
        assert_eq!(resolved("v1.0.0", &v1).unwrap(), Some(("example.com/m".into(), "v1.0.0".into(), "".into())));
        assert_eq!(resolved("v0.3.0-rc.1+build", &v1).unwrap().unwrap().1, "v0.3.0-rc.1");
        assert!(resolved("v2.0.0", &v1)
            .unwrap_err()
            .contains("go.mod: module example.com/m takes only v0 and v1 versions"));

        let v2 = MemoryTree::new(&[("go.mod", "module example.com/m/v2\n")]);
        assert_eq!(resolved("v2.1.0", &v2).unwrap().unwrap().0, "example.com/m/v2");
        assert!(resolved("v1.5.0", &v2).unwrap_err().contains("takes only v2.x.y versions, not v1.5.0"));
        assert!(resolved("v3.0.0", &v2).is_err());

        let major_dir =
            MemoryTree::new(&[("go.mod", "module example.com/m\n"), ("v2/go.mod", "module example.com/m/v2\n")]);
        assert_eq!(
            resolved("v2.0.0", &major_dir).unwrap(),
            Some(("example.com/m/v2".into(), "v2.0.0".into(), "v2".into()))
        );
        assert_eq!(resolved("v1.1.0", &major_dir).unwrap().unwrap().2, "");

        // Go refuses to guess when both places claim v2, or when v2/go.mod is not a v2 module.
        let both =
            MemoryTree::new(&[("go.mod", "module example.com/m/v2\n"), ("v2/go.mod", "module example.com/m/v2\n")]);
        assert!(resolved("v2.0.0", &both).unwrap_err().contains("both go.mod and v2/go.mod"));
        let wrong =
            MemoryTree::new(&[("go.mod", "module example.com/m/v2\n"), ("v2/go.mod", "module example.com/m\n")]);
        assert!(resolved("v2.0.0", &wrong).unwrap_err().contains("has no /v2 suffix"));
        let linked = MemoryTree::new(&[]).with_symlink("go.mod", "other.mod");
        assert!(resolved("v1.0.0", &linked).unwrap_err().contains("not a regular file"));
    }

    #[test]
    fn subdirectory_modules() {
        let tree = MemoryTree::new(&[
            ("go.mod", "module example.com/repo\n"),
            ("tools/go.mod", "module example.com/repo/tools\n"),
            ("wrong/go.mod", "module example.com/elsewhere\n"),
        ]);
        assert_eq!(
            resolved("tools/v1.2.3", &tree).unwrap(),
            Some(("example.com/repo/tools".into(), "v1.2.3".into(), "tools".into()))
        );
        assert!(resolved("wrong/v1.0.0", &tree).unwrap_err().contains("ending in /wrong"));
        assert!(resolved("missing/v1.0.0", &tree).unwrap_err().contains("no missing/go.mod"));
    }

    #[test]
    fn non_versions_are_ignored_and_bad_versions_reported() {
        let tree = MemoryTree::new(&[("go.mod", "module example.com/m\n")]);
        assert_eq!(resolved("release-candidate", &tree).unwrap(), None);
        assert_eq!(resolved("latest", &tree).unwrap(), None);
        assert_eq!(resolved("docs/draft", &tree).unwrap(), None);
        assert!(resolved("v1.2", &tree).unwrap_err().contains("not a semantic version"));
        assert!(resolved("1.2.3", &tree).unwrap_err().contains("start with 'v'"));
        assert!(resolved("v1.0.0", &MemoryTree::new(&[("main.go", "package main")]))
            .unwrap_err()
            .contains("no go.mod"));
        assert!(resolved("v1.0.0", &MemoryTree::new(&[("go.mod", "go 1.21\n")]))
            .unwrap_err()
            .contains("no module directive"));
        assert!(resolved("v1.0.0", &MemoryTree::new(&[("go.mod", "module nodot/m\n")]))
            .unwrap_err()
            .contains("missing dot"));
    }

    #[test]
    fn builds_the_zip_named_after_the_version() {
        let tree = MemoryTree::new(&[("go.mod", "module example.com/m\n"), ("m.go", "package m")]);
        let file = from_tag(&tag("v1.0.0"), &tree).unwrap().unwrap();
        assert_eq!(file.file_name, "v1.0.0.zip");
        let meta = crate::parse::parse(&file.file_name, &file.bytes, &sluice_plugin_sdk::Limits::TEST).unwrap();
        assert_eq!((meta.name.as_str(), meta.version.as_str()), ("example.com/m", "v1.0.0"));
        assert!(from_tag(&tag("nightly"), &tree).unwrap().is_none());
    }

    #[test]
    fn modules_without_go_mod_take_the_source_path() {
        let legacy = MemoryTree::new(&[("errors.go", "package errors"), ("LICENSE", "BSD")]);
        let under =
            |tag: &str| resolve(tag, &legacy, &legacy.entries, Some("github.com/pkg/errors")).map(|r| r.unwrap());
        let v0 = under("v0.9.1").unwrap();
        assert_eq!(
            (v0.module.as_str(), v0.version.canonical.as_str(), v0.synthesized),
            ("github.com/pkg/errors", "v0.9.1", true)
        );
        // v2+ of a path without /vN: what the public proxy serves as +incompatible.
        let v2 = under("v2.1.0").unwrap();
        assert_eq!((v2.version.canonical.as_str(), v2.version.incompatible), ("v2.1.0+incompatible", true));
        assert!(resolved("v0.9.1", &legacy).unwrap_err().contains("names no module path"));
        assert!(resolved("sub/v1.0.0", &legacy).unwrap_err().contains("needs its own go.mod"));
        // A configured /v2 path takes only v2 versions.
        assert!(resolve("v3.0.0", &legacy, &legacy.entries, Some("example.com/m/v2")).is_err());
        assert_eq!(synthesized_go_mod("github.com/pkg/errors"), "module github.com/pkg/errors\n");

        let mut info = tag("v2.1.0");
        info.source_name = Some("github.com/pkg/errors".into());
        let file = from_tag(&info, &legacy).unwrap().unwrap();
        assert_eq!(file.file_name, "v2.1.0+incompatible.zip");
        let meta = crate::parse::parse(&file.file_name, &file.bytes, &sluice_plugin_sdk::Limits::TEST).unwrap();
        assert_eq!((meta.name.as_str(), meta.version.as_str()), ("github.com/pkg/errors", "v2.1.0+incompatible"));
        let manifest = crate::parse::Manifest::read(&meta.manifest);
        assert_eq!(manifest.go_mod, "module github.com/pkg/errors\n");
        assert_eq!(manifest.time, Some(1_700_000_000));
    }

    #[test]
    fn sources_publish_only_under_their_prefix() {
        let tree = MemoryTree::new(&[
            ("go.mod", "module github.com/them/lib\n"),
            ("sub/go.mod", "module github.com/me/lib/sub\n"),
        ]);
        let e = resolved_under("v1.0.0", &tree, Some("github.com/me/lib")).unwrap_err();
        assert!(e.contains("not under this source's module path github.com/me/lib"), "{e}");
        assert!(resolved_under("sub/v1.0.0", &tree, Some("github.com/me/lib")).unwrap().is_some());
        assert!(resolved_under("v1.0.0", &tree, Some("github.com/them")).unwrap().is_some());
        assert!(resolved_under("v1.0.0", &tree, Some("github.com/the")).is_err(), "a prefix is whole path elements");

        assert_eq!(implied_module_path("https://github.com/pkg/errors.git").as_deref(), Some("github.com/pkg/errors"));
        assert_eq!(
            implied_module_path("https://token@GitHub.com:443/pkg/errors/").as_deref(),
            Some("github.com/pkg/errors")
        );
        assert_eq!(
            implied_module_path("ssh://git@git.example.com/team/lib.git").as_deref(),
            Some("git.example.com/team/lib")
        );
        assert_eq!(implied_module_path("git@github.com:pkg/errors.git").as_deref(), Some("github.com/pkg/errors"));
        assert_eq!(implied_module_path("/srv/git/lib"), None);
        assert_eq!(implied_module_path("./lib:odd"), None);
        assert_eq!(implied_module_path("file:///srv/git/lib"), None);

        let mut info = tag("v1.0.0");
        info.source = "https://github.com/me/lib.git".into();
        assert!(from_tag(&info, &tree).unwrap_err().message.contains("not under"));
        info.source_name = Some("github.com/them/lib".into());
        assert!(from_tag(&info, &tree).unwrap().is_some(), "a configured module path wins over the URL");
        info.source_name = Some("not a path".into());
        assert!(from_tag(&info, &tree).unwrap_err().message.contains("configured module path"));
    }
}
