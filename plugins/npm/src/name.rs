//! npm package names: what a valid one is, how URLs spell them, and the tarball file name.

use sluice_plugin_sdk::Error;

/// npm's limit on the length of a package name.
const MAX_NAME_LEN: usize = 214;

/// Checks a package name by npm's rules for existing packages (`validate-npm-package-name`):
/// URL-safe characters only, `@scope/name` for scoped packages. Upper case is accepted because
/// old packages have it and names are compared case-sensitively.
pub fn validate(name: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::invalid(format!("invalid package name \"{name}\": {why}")));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is longer than 214 characters");
    }
    let (scope, base) = match name.strip_prefix('@') {
        Some(rest) => match rest.split_once('/') {
            Some((scope, base)) => (Some(scope), base),
            None => return bad("a scoped name is written @scope/name"),
        },
        None => (None, name),
    };
    for part in scope.into_iter().chain([base]) {
        if part.is_empty() {
            return bad("a scoped name is written @scope/name");
        }
        if part.starts_with('.') || part.starts_with('_') {
            return bad("it cannot start with a period or an underscore");
        }
        if !part.chars().all(is_url_safe) {
            return bad("it can only contain URL-safe characters");
        }
    }
    // `-` starts the registry's own routes (`/-/whoami`), and these two are blocked by npm.
    if name.starts_with('-') {
        return bad("it cannot start with a hyphen");
    }
    if matches!(name.to_ascii_lowercase().as_str(), "node_modules" | "favicon.ico") {
        return bad("it is a blocked name");
    }
    Ok(())
}

/// The characters `encodeURIComponent` leaves alone, which npm requires of names.
fn is_url_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c)
}

/// The name without its scope: `@scope/name` -> `name`.
pub fn base_name(name: &str) -> &str {
    name.rsplit_once('/').map_or(name, |(_, base)| base)
}

/// The tarball file name npm gives a version: `name-1.0.0.tgz` (without the scope).
pub fn tarball_file_name(name: &str, version: &str) -> String {
    format!("{}-{version}.tgz", base_name(name))
}

/// Splits the package name off the front of decoded path segments. npm encodes a scoped name as
/// one segment (`@scope%2fname`) in API calls but as two in tarball URLs (`@scope/name/-/...`).
pub fn split_name(segments: &[String]) -> Option<(String, &[String])> {
    let first = segments.first()?;
    if first.starts_with('@') && !first.contains('/') {
        let second = segments.get(1)?;
        Some((format!("{first}/{second}"), &segments[2..]))
    } else {
        Some((first.clone(), &segments[1..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        path.split('/').filter(|s| !s.is_empty()).map(sluice_plugin_sdk::http::decode).collect()
    }

    #[test]
    fn valid_and_invalid_names() {
        for ok in ["left-pad", "@scope/name", "JSONStream", "a.b_c~d"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "_private", "@scope", "@/name", "@scope/", "a b", "a/b", "-", "node_modules", "é"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        assert!(validate(&"a".repeat(215)).is_err());
    }

    #[test]
    fn names_from_paths() {
        let s = segs("/@scope%2fname/-rev/3");
        let (name, rest) = split_name(&s).unwrap();
        assert_eq!((name.as_str(), rest), ("@scope/name", &s[1..]));
        let s = segs("/@scope/name/-/name-1.0.0.tgz");
        let (name, rest) = split_name(&s).unwrap();
        assert_eq!(name, "@scope/name");
        assert_eq!(rest, ["-", "name-1.0.0.tgz"]);
        let s = segs("/left-pad");
        assert_eq!(split_name(&s).unwrap().0, "left-pad");
        assert_eq!(tarball_file_name("@scope/name", "1.0.0"), "name-1.0.0.tgz");
    }
}
