//! Module paths, file paths and versions as the go command checks them (golang.org/x/mod/module
//! and golang.org/x/mod/semver): a path or version Go would refuse is refused here too, so that
//! nothing Sluice serves fails later inside `go mod download`.

use std::fmt;

/// Why a path or version is not acceptable to Go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError(pub String);

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, PathError> {
    Err(PathError(message.into()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PathKind {
    Module,
    File,
}

/// Element names Windows reserves; Go refuses them so that modules extract everywhere.
const WINDOWS_RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1", "LPT2",
    "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

fn module_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

fn file_char_ok(c: char) -> bool {
    if c.is_ascii() {
        // Go leaves out shell metacharacters and the separators of every platform.
        c.is_ascii_alphanumeric() || "!#$%&()+,-.=@[]^_{}~ ".contains(c)
    } else {
        c.is_alphabetic()
    }
}

fn check_element(elem: &str, kind: PathKind) -> Result<(), PathError> {
    if elem.is_empty() {
        return err("empty path element");
    }
    if elem.chars().all(|c| c == '.') {
        return err(format!("invalid path element {elem:?}"));
    }
    if kind == PathKind::Module && elem.starts_with('.') {
        return err(format!("leading dot in path element {elem:?}"));
    }
    if elem.ends_with('.') {
        return err(format!("trailing dot in path element {elem:?}"));
    }
    let char_ok = match kind {
        PathKind::Module => module_char_ok,
        PathKind::File => file_char_ok,
    };
    if let Some(c) = elem.chars().find(|&c| !char_ok(c)) {
        return err(format!("invalid character {c:?} in path element {elem:?}"));
    }
    let short = elem.split('.').next().unwrap_or(elem);
    if WINDOWS_RESERVED.iter().any(|bad| bad.eq_ignore_ascii_case(short)) {
        return err(format!("{short:?} is not allowed as a path element (reserved on Windows)"));
    }
    if kind == PathKind::Module {
        // Windows short names such as `PROGRA~1` could alias another directory.
        if let Some(tilde) = short.rfind('~') {
            let suffix = &short[tilde + 1..];
            if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
                return err(format!("trailing tilde and digits in path element {elem:?}"));
            }
        }
    }
    Ok(())
}

fn check_path(path: &str, kind: PathKind) -> Result<(), PathError> {
    if path.is_empty() {
        return err("empty path");
    }
    if kind == PathKind::Module && path.starts_with('-') {
        return err("leading dash");
    }
    if path.contains("//") {
        return err("double slash");
    }
    if path.ends_with('/') {
        return err("trailing slash");
    }
    path.split('/').try_for_each(|elem| check_element(elem, kind))
}

/// Checks a file path inside a module (`module.CheckFilePath`): relative, clean, portable.
pub fn check_file_path(path: &str) -> Result<(), PathError> {
    if path.starts_with('/') {
        return err("absolute path");
    }
    check_path(path, PathKind::File)
}

/// Checks a module path (`module.CheckPath`): `host.tld/elements[/vN]`.
pub fn check_module_path(path: &str) -> Result<(), PathError> {
    check_path(path, PathKind::Module)?;
    let first = path.split('/').next().unwrap_or_default();
    if !first.contains('.') {
        return err(format!("missing dot in first path element {first:?} (module paths start with a domain name)"));
    }
    if let Some(c) = first.chars().find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')) {
        return err(format!("invalid character {c:?} in first path element {first:?}"));
    }
    split_path_version(path).map(|_| ())
}

/// Splits a module path into its prefix and major-version suffix (`/v2`, or `.v2` for gopkg.in),
/// the suffix empty for v0/v1 paths. Fails on suffixes Go refuses (`/v1`, `/v0`, `/v2.1`).
pub fn split_path_version(path: &str) -> Result<(&str, &str), PathError> {
    if path.starts_with("gopkg.in/") {
        let base = path.strip_suffix("-unstable").unwrap_or(path);
        let digits_start = base.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let digits = &base[digits_start..];
        let cut = digits_start.saturating_sub(2);
        if digits.is_empty() || !base[..digits_start].ends_with(".v") || (digits.starts_with('0') && digits != "0") {
            return err(format!("gopkg.in path {path:?} needs a .vN suffix"));
        }
        return Ok((&path[..cut], &path[cut..]));
    }
    let digits_start = path.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.').len();
    let tail = &path[digits_start..];
    if tail.is_empty() || !path[..digits_start].ends_with("/v") {
        return Ok((path, ""));
    }
    if tail.contains('.') || tail.starts_with('0') || tail == "1" {
        return err(format!(
            "invalid major version suffix /v{tail} in {path:?} (use /v2 or above, or none for v0 and v1)"
        ));
    }
    let cut = digits_start - 2;
    Ok((&path[..cut], &path[cut..]))
}

/// The major version a path suffix requires (`/v2` -> 2), none for v0/v1 paths.
pub fn suffix_major(path_major: &str) -> Option<u64> {
    let digits = path_major.get(2..)?;
    digits.strip_suffix("-unstable").unwrap_or(digits).parse().ok()
}

/// Escapes a module path or version for URLs and file names: `!` plus the lower-case letter for
/// each capital, so that case-insensitive file systems keep `Azure` and `azure` apart.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses [`escape`]; fails on capitals or a `!` not followed by a lower-case letter.
pub fn unescape(s: &str) -> Result<String, PathError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '!' => match chars.next() {
                Some(l) if l.is_ascii_lowercase() => out.push(l.to_ascii_uppercase()),
                _ => return err(format!("invalid escaped path {s:?}: '!' must be followed by a lower-case letter")),
            },
            c if c.is_ascii_uppercase() => {
                return err(format!(
                    "invalid escaped path {s:?}: capitals are written as '!' and the lower-case letter"
                ))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// A module version: a full semantic version with the `v` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoVersion {
    /// Canonical form without build metadata (`v1.2.3-rc.1`), as Go serves it; with
    /// `+incompatible` for an incompatible version.
    pub canonical: String,
    /// Without build metadata.
    pub semver: semver::Version,
    /// A v2+ version of a module without a go.mod, whose path has no `/vN` (`v2.0.0+incompatible`).
    pub incompatible: bool,
}

impl GoVersion {
    /// The same version as Go names it for a v2+ module path without a major suffix.
    pub fn into_incompatible(self) -> GoVersion {
        GoVersion { canonical: format!("{}+incompatible", self.canonical), incompatible: true, ..self }
    }
    pub fn major(&self) -> u64 {
        self.semver.major
    }
    pub fn is_prerelease(&self) -> bool {
        !self.semver.pre.is_empty()
    }
}

/// Whether a tag's last element reads as an attempt at a version (`v1.2`, `1.0.0`, `v2`) rather
/// than a name such as `release-candidate` or `latest`.
pub fn looks_like_version(s: &str) -> bool {
    let rest = s.strip_prefix('v').unwrap_or(s);
    rest.starts_with(|c: char| c.is_ascii_digit())
}

/// Parses `vMAJOR.MINOR.PATCH[-pre][+build]` the way Go reads a version tag: build metadata is
/// dropped from the version Go serves.
pub fn parse_version(s: &str) -> Result<GoVersion, PathError> {
    let Some(rest) = s.strip_prefix('v') else {
        return err(format!("{s:?} is not a Go version: versions start with 'v' (v{s})"));
    };
    let parsed = semver::Version::parse(rest)
        .map_err(|e| PathError(format!("{s:?} is not a semantic version vMAJOR.MINOR.PATCH[-PRERELEASE] ({e})")))?;
    let mut version = parsed.clone();
    version.build = semver::BuildMetadata::EMPTY;
    if parsed.build.as_str() == "incompatible" {
        return err(format!(
            "{s:?}: +incompatible versions are not supported; give the module a /v{} path",
            parsed.major
        ));
    }
    if is_pseudo_version(&version) {
        return err(format!(
            "{s:?} looks like a pseudo-version, which Go computes itself; tag a release version instead"
        ));
    }
    Ok(GoVersion { canonical: format!("v{version}"), semver: version, incompatible: false })
}

/// Parses a version as Go serves it: canonical, or a v2+ canonical version with `+incompatible`
/// (which no tag is named, but which a module without go.mod gets).
pub fn parse_served_version(s: &str) -> Result<GoVersion, PathError> {
    match s.strip_suffix("+incompatible") {
        Some(base) => {
            let version = parse_version(base)?;
            if version.major() < 2 || version.canonical != base {
                return err(format!("{s:?}: only canonical v2 and later versions can be +incompatible"));
            }
            Ok(version.into_incompatible())
        }
        None => parse_version(s),
    }
}

/// Pseudo-versions end in `<yyyymmddhhmmss>-<revision>` (`v0.0.0-20191109021931-daa7c04131f5`).
fn is_pseudo_version(v: &semver::Version) -> bool {
    let pre = v.pre.as_str();
    let Some((head, revision)) = pre.rsplit_once('-') else { return false };
    let stamp = head.rsplit(['.', '-']).next().unwrap_or(head);
    !revision.is_empty()
        && revision.bytes().all(|b| b.is_ascii_alphanumeric())
        && stamp.len() == 14
        && stamp.bytes().all(|b| b.is_ascii_digit())
}

/// Checks that a version fits the module path's major suffix (`module.CheckPathMajor`).
pub fn check_path_major(module: &str, version: &GoVersion) -> Result<(), PathError> {
    let (_, path_major) = split_path_version(module)?;
    if version.incompatible {
        return if path_major.is_empty() && version.major() >= 2 {
            Ok(())
        } else {
            err(format!("module {module} cannot have the +incompatible version {}", version.canonical))
        };
    }
    match suffix_major(path_major) {
        None if version.major() <= 1 => Ok(()),
        None => err(format!(
            "module {module} takes only v0 and v1 versions, not {} (a v{major} module's path ends in /v{major}; only a module without go.mod gets +incompatible versions)",
            version.canonical,
            major = version.major()
        )),
        Some(m) if m == version.major() => Ok(()),
        // gopkg.in/x.v0 and .v1 both hold v0 and v1 versions.
        Some(m) if path_major.starts_with(".v") && m <= 1 && version.major() <= 1 => Ok(()),
        Some(m) => err(format!("module {module} takes only v{m}.x.y versions, not {}", version.canonical)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_paths() {
        assert!(check_module_path("example.com/m").is_ok());
        assert!(check_module_path("github.com/Azure/azure-sdk-for-go/v2").is_ok());
        assert!(check_module_path("gopkg.in/yaml.v3").is_ok());
        assert!(check_module_path("example/m").unwrap_err().0.contains("missing dot"));
        assert!(check_module_path("Example.com/m").is_err());
        assert!(check_module_path("example.com/m/v1").unwrap_err().0.contains("/v1"));
        assert!(check_module_path("example.com/m/v0").is_err());
        assert!(check_module_path("example.com/a b").is_err());
        assert!(check_module_path("example.com/../x").is_err());
        assert!(check_module_path("example.com/m/").is_err());
        assert!(check_module_path("example.com/con").is_err());
        assert!(check_module_path("example.com/PROGRA~1").is_err());
    }

    #[test]
    fn file_paths() {
        assert!(check_file_path("a/b c.go").is_ok());
        assert!(check_file_path(".github/workflows/ci.yml").is_ok());
        assert!(check_file_path("/etc/passwd").is_err());
        assert!(check_file_path("../x").is_err());
        assert!(check_file_path("a/./b").is_err());
        assert!(check_file_path("a//b").is_err());
        assert!(check_file_path("a/b:c").is_err());
        assert!(check_file_path("a/*.go").is_err());
        assert!(check_file_path("aux.txt").is_err());
        assert!(check_file_path("héllo.go").is_ok());
    }

    #[test]
    fn major_suffixes() {
        assert_eq!(split_path_version("example.com/m/v2").unwrap(), ("example.com/m", "/v2"));
        assert_eq!(split_path_version("example.com/m").unwrap(), ("example.com/m", ""));
        assert_eq!(split_path_version("example.com/v2x").unwrap(), ("example.com/v2x", ""));
        assert_eq!(split_path_version("gopkg.in/yaml.v2").unwrap(), ("gopkg.in/yaml", ".v2"));
        let v = |s| parse_version(s).unwrap();
        assert!(check_path_major("example.com/m", &v("v1.2.3")).is_ok());
        assert!(check_path_major("example.com/m", &v("v0.1.0")).is_ok());
        assert!(check_path_major("example.com/m", &v("v2.0.0"))
            .unwrap_err()
            .0
            .contains("takes only v0 and v1 versions, not v2.0.0"));
        assert!(check_path_major("example.com/m/v2", &v("v2.1.0")).is_ok());
        assert!(check_path_major("example.com/m/v2", &v("v3.0.0")).is_err());
        assert!(check_path_major("example.com/m/v2", &v("v1.0.0")).is_err());
        assert!(check_path_major("gopkg.in/yaml.v2", &v("v2.4.0")).is_ok());
    }

    #[test]
    fn versions() {
        let v = parse_version("v1.2.3-rc.1+build.5").unwrap();
        assert_eq!(v.canonical, "v1.2.3-rc.1");
        assert!(v.is_prerelease());
        assert_eq!(parse_version("v2.0.0").unwrap().major(), 2);
        assert!(parse_version("1.2.3").unwrap_err().0.contains("start with 'v'"));
        assert!(parse_version("v1.2").is_err());
        assert!(parse_version("v1.2.3.4").is_err());
        assert!(parse_version("v01.2.3").is_err());
        assert!(parse_version("v2.0.0+incompatible").unwrap_err().0.contains("incompatible"));
        let served = parse_served_version("v2.0.0+incompatible").unwrap();
        assert_eq!((served.canonical.as_str(), served.incompatible, served.major()), ("v2.0.0+incompatible", true, 2));
        assert!(parse_served_version("v1.0.0+incompatible").is_err());
        assert!(parse_served_version("v2.0+incompatible").is_err());
        assert!(check_path_major("example.com/m", &served).is_ok());
        assert!(check_path_major("example.com/m/v2", &served).is_err());
        assert_eq!(parse_served_version("v1.0.0").unwrap().canonical, "v1.0.0");
        assert!(parse_version("v0.0.0-20191109021931-daa7c04131f5").unwrap_err().0.contains("pseudo-version"));
        assert!(parse_version("v1.2.4-0.20191109021931-daa7c04131f5").is_err());
        assert!(looks_like_version("v1.0"));
        assert!(looks_like_version("1.0.0"));
        assert!(!looks_like_version("release-candidate"));
        assert!(!looks_like_version("latest"));
        assert!(!looks_like_version("vendor-drop"));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("github.com/Azure/azure-sdk"), "github.com/!azure/azure-sdk");
        assert_eq!(unescape("github.com/!azure/azure-sdk").unwrap(), "github.com/Azure/azure-sdk");
        assert_eq!(escape("v1.0.0-RC1"), "v1.0.0-!r!c1");
        assert!(unescape("github.com/Azure").is_err());
        assert!(unescape("github.com/!1").is_err());
        assert!(unescape("trailing!").is_err());
    }
}
