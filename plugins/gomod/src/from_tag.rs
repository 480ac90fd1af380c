//! Turning a git tag into a module version, the way the go command reads tags of a repository.
//!
//! A tag `vX.Y.Z` is a version of the module whose go.mod is at the repository root; a tag
//! `dir/vX.Y.Z` is a version of the module whose go.mod is at `dir/go.mod`. For v2 and above the
//! module path must end in `/vN`, with go.mod either in the tag's folder or in its `vN/`
//! subfolder ("major subdirectory"), exactly as Go looks for it.
//!
//! Which tags are ignored and which are reported:
//! - ignored (`Ok(None)`): tags whose last element does not start with a digit or `v` and a
//!   digit (`release-candidate`, `latest`, `docs/draft`): they are names, not versions;
//! - reported (`Err(invalid)`): tags that start like a version but are not one Go accepts (`v1.2`,
//!   `1.2.3`, `v1.2.3.4`, pseudo-versions, `+incompatible`), tags without a go.mod where Go would
//!   look for it, and tags whose go.mod names a module that does not fit the tag (a v2 tag on a
//!   module without `/v2`, a `sub/` tag whose module path does not end in `/sub`).
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
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") }
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
pub fn resolve(tag: &str, tree: &impl SourceTree, entries: &[TreeEntry]) -> Result<Option<TaggedModule>, Error> {
    let (dir, name) = tag.rsplit_once('/').unwrap_or(("", tag));
    if !module_path::looks_like_version(name) {
        return Ok(None);
    }
    let version = module_path::parse_version(name).map_err(|e| Error::invalid(format!("tag {tag}: {e}")))?;
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
    let (module, module_dir) = if let (Some(b), Some(major_dir)) = (in_major_dir, major_dir) {
        if !fits(&b) {
            return Err(invalid(format!("{major_dir}/go.mod declares module {b}, which has no /v{} suffix", version.major())));
        }
        if in_dir.as_deref().is_some_and(fits) {
            return Err(invalid(format!("both {in_dir_path} and {major_dir}/go.mod declare a v{} module", version.major())));
        }
        (b, major_dir)
    } else {
        match in_dir {
            Some(a) if fits(&a) => (a, dir.to_string()),
            Some(a) => {
                let reason = module_path::check_path_major(&a, &version).err().map(|e| e.0).unwrap_or_default();
                return Err(invalid(format!("{in_dir_path}: {reason}")));
            }
            None => return Err(invalid(format!("no {in_dir_path} at this commit; Sluice serves modules that have a go.mod"))),
        }
    };
    module_path::check_module_path(&module).map_err(|e| invalid(format!("module path {module:?} is not valid: {e}")))?;
    if !dir.is_empty() {
        // Go finds a module's folder from its path: `example.com/repo/sub/v2` lives in `sub/`.
        let (without_major, _) = module_path::split_path_version(&module).map_err(|e| invalid(e.0))?;
        if !without_major.ends_with(&format!("/{dir}")) {
            return Err(invalid(format!(
                "module {module} in {dir}/ must have a path ending in /{dir}, or Go will not look for it under the tag prefix {dir}/"
            )));
        }
    }
    Ok(Some(TaggedModule { module, version, dir: module_dir }))
}

/// `from-tag`: the module zip for a version tag.
pub fn from_tag(tag: &TagInfo, tree: &impl SourceTree) -> Result<Option<TagFile>, Error> {
    let entries = tree.entries();
    let Some(tagged) = resolve(&tag.name, tree, &entries)? else { return Ok(None) };
    let bytes = module_zip::create(tree, &entries, &tagged.dir, &tagged.module, &tagged.version.canonical)
        .map_err(|e| Error::new(e.kind, format!("tag {}: {}", tag.name, e.message)))?;
    Ok(Some(TagFile { file_name: crate::zip_file_name(&tagged.version.canonical), bytes }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::MemoryTree;

    fn tag(name: &str) -> TagInfo {
        TagInfo { name: name.into(), commit: "0123456789abcdef0123456789abcdef01234567".into(), time: 1_700_000_000 }
    }

    fn resolved(name: &str, tree: &MemoryTree) -> Result<Option<(String, String, String)>, String> {
        resolve(name, tree, &tree.entries)
            .map(|r| r.map(|t| (t.module, t.version.canonical, t.dir)))
            .map_err(|e| e.message)
    }

    #[test]
    fn v0_v1_and_v2_modules() {
        let v1 = MemoryTree::new(&[("go.mod", "module example.com/m\n"), ("m.go", "package m")]);
        assert_eq!(resolved("v1.0.0", &v1).unwrap(), Some(("example.com/m".into(), "v1.0.0".into(), "".into())));
        assert_eq!(resolved("v0.3.0-rc.1+build", &v1).unwrap().unwrap().1, "v0.3.0-rc.1");
        assert!(resolved("v2.0.0", &v1).unwrap_err().contains("go.mod: module example.com/m takes only v0 and v1 versions"));

        let v2 = MemoryTree::new(&[("go.mod", "module example.com/m/v2\n")]);
        assert_eq!(resolved("v2.1.0", &v2).unwrap().unwrap().0, "example.com/m/v2");
        assert!(resolved("v1.5.0", &v2).unwrap_err().contains("takes only v2.x.y versions, not v1.5.0"));
        assert!(resolved("v3.0.0", &v2).is_err());

        let major_dir = MemoryTree::new(&[("go.mod", "module example.com/m\n"), ("v2/go.mod", "module example.com/m/v2\n")]);
        assert_eq!(resolved("v2.0.0", &major_dir).unwrap(), Some(("example.com/m/v2".into(), "v2.0.0".into(), "v2".into())));
        assert_eq!(resolved("v1.1.0", &major_dir).unwrap().unwrap().2, "");

        // Go refuses to guess when both places claim v2, or when v2/go.mod is not a v2 module.
        let both = MemoryTree::new(&[("go.mod", "module example.com/m/v2\n"), ("v2/go.mod", "module example.com/m/v2\n")]);
        assert!(resolved("v2.0.0", &both).unwrap_err().contains("both go.mod and v2/go.mod"));
        let wrong = MemoryTree::new(&[("go.mod", "module example.com/m/v2\n"), ("v2/go.mod", "module example.com/m\n")]);
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
        assert_eq!(resolved("tools/v1.2.3", &tree).unwrap(), Some(("example.com/repo/tools".into(), "v1.2.3".into(), "tools".into())));
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
        assert!(resolved("v1.0.0", &MemoryTree::new(&[("main.go", "package main")])).unwrap_err().contains("no go.mod"));
        assert!(resolved("v1.0.0", &MemoryTree::new(&[("go.mod", "go 1.21\n")])).unwrap_err().contains("no module directive"));
        assert!(resolved("v1.0.0", &MemoryTree::new(&[("go.mod", "module nodot/m\n")])).unwrap_err().contains("missing dot"));
    }

    #[test]
    fn builds_the_zip_named_after_the_version() {
        let tree = MemoryTree::new(&[("go.mod", "module example.com/m\n"), ("m.go", "package m")]);
        let file = from_tag(&tag("v1.0.0"), &tree).unwrap().unwrap();
        assert_eq!(file.file_name, "v1.0.0.zip");
        let meta = crate::parse::parse(&file.file_name, &file.bytes).unwrap();
        assert_eq!((meta.name.as_str(), meta.version.as_str()), ("example.com/m", "v1.0.0"));
        assert!(from_tag(&tag("nightly"), &tree).unwrap().is_none());
    }
}
