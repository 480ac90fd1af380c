//! Building a module zip from a git tree by the rules of golang.org/x/mod/zip, as the go command
//! does when it fetches a module straight from git (`modfetch.codeRepo.Zip`): the same files with
//! the same contents, so the zip hashes to the same `h1:` sum in go.sum whether a client fetched
//! the module directly or through Sluice.
//!
//! Those rules, in order, for each file of the module's directory:
//! - files of nested modules (a subdirectory with its own go.mod) are left out;
//! - files in vendored packages (`vendor/x/...`) are left out, `vendor/modules.txt` is kept;
//! - `.hg_archival.txt` is left out;
//! - a path Go would refuse (absolute, `..`, shell or Windows-hostile characters), a `go.mod` in
//!   another case, or two paths equal under case folding make the whole version invalid;
//! - symbolic links (and submodules, which have no content) are left out;
//! - go.mod and LICENSE may be at most 16 MiB each, the whole content 500 MiB.
//!
//! Go builds the zip from `git archive`, which holds no `.git` folder; other VCS folders that were
//! committed (`.hg`, `.svn`) stay in, as they do for Go, or the sums would differ. A module in a
//! subdirectory without its own LICENSE gets the repository's root LICENSE, as Go does.

use crate::SourceTree;
use sluice_plugin_sdk::{Error, TreeEntry};
use std::collections::{HashMap, HashSet};
use std::io::Write;

pub const MAX_ZIP_FILE: u64 = 500 << 20;
pub const MAX_GO_MOD: u64 = 16 << 20;
pub const MAX_LICENSE: u64 = 16 << 20;

/// A file that goes into the zip.
struct ZipFile {
    /// The path inside the module.
    name: String,
    /// The path in the repository, for reading it.
    source: String,
    size: u64,
}

/// Whether a file belongs to a vendored package. Go keeps files directly in a `vendor` folder
/// and drops those in its subfolders; an offset bug it keeps for checksum compatibility
/// (golang.org/issue/31562) drops every file under a nested `vendor` folder. So do we.
fn is_vendored_package(name: &str) -> bool {
    let start = if name.starts_with("vendor/") {
        "vendor/".len()
    } else if name.contains("/vendor/") {
        "/vendor/".len()
    } else {
        return false;
    };
    name.get(start..).is_some_and(|rest| rest.contains('/'))
}

/// Folds a character for case-insensitive comparison, so that names a case-insensitive file
/// system would merge (`README` and `readme`, `K` and the Kelvin sign) compare equal.
fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
        let c = chars.next()?;
        chars.next().is_none().then_some(c)
    }
    let lower = |c: char| single(c.to_lowercase());
    let upper = |c: char| single(c.to_uppercase());
    lower(c).and_then(upper).and_then(lower).or_else(|| lower(c)).unwrap_or(c)
}

fn fold(s: &str) -> String {
    s.chars().map(fold_char).collect()
}

/// Finds paths equal under case folding, and paths used both as a file and as a folder.
#[derive(Default)]
struct CollisionChecker {
    seen: HashMap<String, (String, bool)>,
}

impl CollisionChecker {
    fn check(&mut self, path: &str, is_dir: bool) -> Result<(), String> {
        match self.seen.get(&fold(path)) {
            Some((other, _)) if other != path => {
                return Err(format!("case-insensitive file name collision: {other:?} and {path:?}"))
            }
            Some((_, other_dir)) if *other_dir != is_dir => {
                return Err(format!("entry {path:?} is both a file and a directory"))
            }
            Some(_) if !is_dir => return Err(format!("multiple entries for file {path:?}")),
            Some(_) => {}
            None => {
                self.seen.insert(fold(path), (path.to_string(), is_dir));
            }
        }
        match path.rsplit_once('/') {
            Some((parent, _)) => self.check(parent, true),
            None => Ok(()),
        }
    }
}

/// The module's files under `subdir` ("" for the repository root), checked by Go's rules.
fn select_files(entries: &[TreeEntry], subdir: &str) -> Result<Vec<ZipFile>, Error> {
    let prefix = if subdir.is_empty() { String::new() } else { format!("{subdir}/") };
    let candidates: Vec<(&TreeEntry, &str)> = entries
        .iter()
        .filter(|e| e.kind != "submodule")
        .filter_map(|e| e.path.strip_prefix(&prefix).map(|name| (e, name)))
        .filter(|(_, name)| !name.is_empty())
        .collect();

    let nested_module_dirs: HashSet<&str> = candidates
        .iter()
        .filter(|(e, _)| e.kind == "file")
        .filter_map(|(_, name)| match name.rsplit_once('/') {
            Some((dir, base)) if base.eq_ignore_ascii_case("go.mod") => Some(dir),
            _ => None,
        })
        .collect();
    let in_nested_module = |name: &str| {
        let mut dir = name;
        while let Some((parent, _)) = dir.rsplit_once('/') {
            if nested_module_dirs.contains(parent) {
                return true;
            }
            dir = parent;
        }
        false
    };

    let mut files = Vec::new();
    let mut invalid = Vec::new();
    let mut collisions = CollisionChecker::default();
    let mut total: u64 = 0;
    let mut too_large = false;
    for (entry, name) in candidates {
        if is_vendored_package(name) || in_nested_module(name) || name == ".hg_archival.txt" {
            continue;
        }
        if let Err(e) = crate::module_path::check_file_path(name) {
            invalid.push(format!("{name}: malformed file path: {e}"));
            continue;
        }
        if name.eq_ignore_ascii_case("go.mod") && name != "go.mod" {
            invalid.push(format!("{name}: go.mod files must have lowercase names"));
            continue;
        }
        if let Err(e) = collisions.check(name, false) {
            invalid.push(format!("{name}: {e}"));
            continue;
        }
        if entry.kind != "file" {
            // Symbolic links would point outside the module once unpacked (golang.org/issue/27093).
            continue;
        }
        match total.checked_add(entry.size) {
            Some(t) if t <= MAX_ZIP_FILE => total = t,
            _ => too_large = true,
        }
        if name == "go.mod" && entry.size > MAX_GO_MOD {
            invalid.push(format!("go.mod: file too large (max size is {MAX_GO_MOD} bytes)"));
            continue;
        }
        if name == "LICENSE" && entry.size > MAX_LICENSE {
            invalid.push(format!("LICENSE: file too large (max size is {MAX_LICENSE} bytes)"));
            continue;
        }
        files.push(ZipFile { name: name.to_string(), source: entry.path.clone(), size: entry.size });
    }
    if too_large {
        return Err(Error::too_large(format!("module source tree too large (max size is {MAX_ZIP_FILE} bytes)")));
    }
    if !invalid.is_empty() {
        let shown: Vec<_> = invalid.iter().take(10).cloned().collect();
        let more = if invalid.len() > shown.len() {
            format!("\n(and {} more)", invalid.len() - shown.len())
        } else {
            String::new()
        };
        return Err(Error::invalid(format!("files Go cannot accept in a module:\n{}{more}", shown.join("\n"))));
    }

    if !subdir.is_empty() && !files.iter().any(|f| f.name == "LICENSE") {
        if let Some(license) =
            entries.iter().find(|e| e.path == "LICENSE" && e.kind != "submodule" && e.size <= MAX_LICENSE)
        {
            files.push(ZipFile { name: "LICENSE".into(), source: license.path.clone(), size: license.size });
        }
    }
    Ok(files)
}

/// The zip extra field "extended timestamp" (`UT`): Unix seconds, exact where the DOS time has
/// two-second steps and no zone.
const EXTENDED_TIMESTAMP: u16 = 0x5455;

/// Builds the zip of `module@version` from the files under `subdir` of the tree. Every entry's
/// modification time is the commit time `time` (as in the `git archive` Go reads), which is how
/// the version's `.info` time travels with the stored zip.
pub fn create(
    tree: &impl SourceTree,
    entries: &[TreeEntry],
    subdir: &str,
    module: &str,
    version: &str,
    time: u64,
) -> Result<Vec<u8>, Error> {
    let files = select_files(entries, subdir)?;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let zip_error = |e: zip::result::ZipError| {
        Error::new(sluice_plugin_sdk::ErrorKind::Internal, format!("writing the module zip: {e}"))
    };
    let mut options = zip::write::FullFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    if let Ok(seconds) = u32::try_from(time) {
        let mut field = vec![1u8];
        field.extend_from_slice(&seconds.to_le_bytes());
        options.add_extra_data(EXTENDED_TIMESTAMP, field.into_boxed_slice(), false).map_err(zip_error)?;
    }
    for file in files {
        let data = tree.read(&file.source).map_err(|e| Error::invalid(format!("reading {}: {e}", file.source)))?;
        if data.len() as u64 != file.size {
            return Err(Error::invalid(format!(
                "{} is {} bytes, but the tree lists {}",
                file.source,
                data.len(),
                file.size
            )));
        }
        writer.start_file(format!("{module}@{version}/{}", file.name), options.clone()).map_err(zip_error)?;
        writer.write_all(&data).map_err(|e| zip_error(e.into()))?;
    }
    Ok(writer.finish().map_err(zip_error)?.into_inner())
}

/// The commit time [`create`] wrote into an entry, if it has one.
pub fn entry_time<R: std::io::Read>(entry: &zip::read::ZipFile<'_, R>) -> Option<u64> {
    entry.extra_data_fields().find_map(|field| match field {
        zip::extra_fields::ExtraField::ExtendedTimestamp(t) => t.mod_time().map(u64::from),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::MemoryTree;
    use std::io::Read;

    fn names(zip_bytes: Vec<u8>) -> Vec<String> {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
        (0..archive.len()).map(|i| archive.by_index(i).unwrap().name().to_string()).collect()
    }

    #[test]
    fn prefixes_every_file_and_applies_go_rules() {
        let tree = MemoryTree::new(&[
            ("go.mod", "module example.com/m\n"),
            ("LICENSE", "MIT"),
            ("m.go", "package m"),
            ("vendor/modules.txt", "# example.com/dep v1.0.0"),
            ("vendor/example.com/dep/dep.go", "package dep"),
            ("internal/vendor/x.go", "package vendor"),
            ("internal/vendor/sub/y.go", "package sub"),
            ("nested/go.mod", "module example.com/m/nested\n"),
            ("nested/n.go", "package nested"),
            ("nested/deeper/d.go", "package deeper"),
            (".hg_archival.txt", "repo: x"),
            (".github/ci.yml", "on: push"),
        ])
        .with_symlink("link.go", "m.go")
        .with_submodule("third_party/lib");
        let zip_bytes = create(&tree, &tree.entries, "", "example.com/m", "v1.0.0", 0).unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes.clone())).unwrap();
        let mut gomod = String::new();
        archive.by_name("example.com/m@v1.0.0/go.mod").unwrap().read_to_string(&mut gomod).unwrap();
        assert_eq!(gomod, "module example.com/m\n");
        assert_eq!(
            names(zip_bytes),
            vec![
                "example.com/m@v1.0.0/go.mod",
                "example.com/m@v1.0.0/LICENSE",
                "example.com/m@v1.0.0/m.go",
                "example.com/m@v1.0.0/vendor/modules.txt",
                // Go's offset bug drops even files directly in a nested vendor folder.
                "example.com/m@v1.0.0/.github/ci.yml",
            ]
        );
    }

    #[test]
    fn subdirectory_module_gets_root_license() {
        let tree = MemoryTree::new(&[
            ("LICENSE", "Apache"),
            ("sub/go.mod", "module example.com/r/sub\n"),
            ("sub/s.go", "package s"),
            ("other.go", "package r"),
        ]);
        let zip_bytes = create(&tree, &tree.entries, "sub", "example.com/r/sub", "v1.2.3", 0).unwrap();
        assert_eq!(
            names(zip_bytes),
            vec![
                "example.com/r/sub@v1.2.3/go.mod",
                "example.com/r/sub@v1.2.3/s.go",
                "example.com/r/sub@v1.2.3/LICENSE"
            ]
        );
    }

    #[test]
    fn rejects_case_fold_collisions_and_bad_names() {
        let tree = MemoryTree::new(&[("go.mod", "module example.com/m\n"), ("README", "a"), ("readme", "b")]);
        let e = create(&tree, &tree.entries, "", "example.com/m", "v1.0.0", 0).unwrap_err();
        assert_eq!(e.kind, sluice_plugin_sdk::ErrorKind::Invalid);
        assert!(e.message.contains("case-insensitive file name collision"), "{}", e.message);

        let tree = MemoryTree::new(&[("go.mod", "module example.com/m\n"), ("Dir/a.go", "a"), ("dir", "b")]);
        assert!(create(&tree, &tree.entries, "", "example.com/m", "v1.0.0", 0)
            .unwrap_err()
            .message
            .contains("collision"));

        let tree = MemoryTree::new(&[("go.mod", "module example.com/m\n"), ("a:b.go", "x")]);
        assert!(create(&tree, &tree.entries, "", "example.com/m", "v1.0.0", 0)
            .unwrap_err()
            .message
            .contains("malformed file path"));

        let tree = MemoryTree::new(&[("GO.MOD", "module example.com/m\n")]);
        assert!(create(&tree, &tree.entries, "", "example.com/m", "v1.0.0", 0)
            .unwrap_err()
            .message
            .contains("lowercase"));

        // A symlink still takes part in collision checks before it is left out, as in Go.
        let tree = MemoryTree::new(&[("go.mod", "module example.com/m\n"), ("a.go", "x")]).with_symlink("A.go", "a.go");
        assert!(create(&tree, &tree.entries, "", "example.com/m", "v1.0.0", 0).is_err());
    }

    #[test]
    fn enforces_size_limits() {
        let mut tree = MemoryTree::new(&[("go.mod", "module example.com/m\n"), ("big.bin", "")]);
        tree.entries[1].size = MAX_ZIP_FILE + 1;
        let e = create(&tree, &tree.entries, "", "example.com/m", "v1.0.0", 0).unwrap_err();
        assert_eq!(e.kind, sluice_plugin_sdk::ErrorKind::TooLarge);

        let mut tree = MemoryTree::new(&[("go.mod", "module example.com/m\n")]);
        tree.entries[0].size = MAX_GO_MOD + 1;
        assert!(create(&tree, &tree.entries, "", "example.com/m", "v1.0.0", 0)
            .unwrap_err()
            .message
            .contains("go.mod: file too large"));
    }

    #[test]
    fn folding() {
        assert_eq!(fold("ReadMe.MD"), "readme.md");
        assert_eq!(fold("\u{212A}"), "k");
        assert_eq!(fold("ſ"), fold("S"));
        assert!(is_vendored_package("vendor/a/b.go"));
        assert!(!is_vendored_package("vendor/modules.txt"));
        assert!(!is_vendored_package("vendored/a/b.go"));
    }
}
