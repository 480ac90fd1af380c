//! NuGet versions: parsing, normalisation and ordering the way NuGet.Versioning does them.
//!
//! A NuGet version is `Major.Minor[.Patch[.Revision]][-prerelease][+metadata]`. Its normalised form
//! (the identity stored and compared) always has three parts, keeps the fourth only when it is not
//! zero, drops leading zeros and build metadata: `1.0` -> `1.0.0`, `01.2.3.0` -> `1.2.3`,
//! `1.0.0+sha.1` -> `1.0.0`.

use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone)]
pub struct NuGetVersion {
    numbers: [u32; 4],
    /// Prerelease labels as written (`beta`, `1`); empty for a release.
    labels: Vec<String>,
    /// The build metadata after `+`, which makes it a SemVer 2 version. It is not part of the
    /// version's identity (`1.0.0+a` is `1.0.0`), but registrations and search show it.
    metadata: Option<String>,
}

/// Versions are equal when their numbers and labels are: build metadata does not count.
impl PartialEq for NuGetVersion {
    fn eq(&self, other: &Self) -> bool {
        self.numbers == other.numbers && self.labels == other.labels
    }
}

impl Eq for NuGetVersion {}

impl NuGetVersion {
    /// Parses a version as NuGet accepts it, or explains why it is not one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let invalid = |why: &str| format!("`{text}` is not a valid NuGet version: {why}");
        let (rest, metadata) = match text.split_once('+') {
            Some((rest, metadata)) => (rest, Some(metadata)),
            None => (text, None),
        };
        if metadata.is_some_and(|m| !labels_are_valid(m)) {
            return Err(invalid("build metadata must be dot-separated alphanumeric labels"));
        }
        let (numbers_text, prerelease) = match rest.split_once('-') {
            Some((numbers, prerelease)) => (numbers, Some(prerelease)),
            None => (rest, None),
        };
        let parts: Vec<&str> = numbers_text.split('.').collect();
        if parts.len() < 2 || parts.len() > 4 {
            return Err(invalid("it needs two to four numeric parts, like 1.0 or 1.2.3"));
        }
        let mut numbers = [0u32; 4];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("each numeric part must be digits"));
            }
            *slot = part.parse().map_err(|_| invalid("a numeric part is too large"))?;
        }
        let labels = match prerelease {
            Some(p) if !labels_are_valid(p) => {
                return Err(invalid("the prerelease must be dot-separated alphanumeric labels"))
            }
            Some(p) => p.split('.').map(str::to_string).collect(),
            None => Vec::new(),
        };
        Ok(NuGetVersion { numbers, labels, metadata: metadata.map(str::to_string) })
    }

    pub fn is_prerelease(&self) -> bool {
        !self.labels.is_empty()
    }

    /// A SemVer 2 version (dotted prerelease or build metadata) is hidden from clients that do not
    /// send `semVerLevel=2.0.0`.
    pub fn is_semver2(&self) -> bool {
        self.labels.len() > 1 || self.metadata.is_some()
    }

    /// The normalised form with the build metadata, as nuget.org shows a SemVer 2 version in
    /// registrations and search (`5.0.0-beta.1+build.5`).
    pub fn full(&self) -> String {
        match &self.metadata {
            Some(metadata) => format!("{self}+{metadata}"),
            None => self.to_string(),
        }
    }

    /// The lower-case normalised form, used in flat-container and registration URLs.
    pub fn lower(&self) -> String {
        self.to_string().to_lowercase()
    }
}

fn labels_are_valid(text: &str) -> bool {
    text.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

impl fmt::Display for NuGetVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [major, minor, patch, revision] = self.numbers;
        write!(f, "{major}.{minor}.{patch}")?;
        if revision != 0 {
            write!(f, ".{revision}")?;
        }
        if !self.labels.is_empty() {
            write!(f, "-{}", self.labels.join("."))?;
        }
        Ok(())
    }
}

impl Ord for NuGetVersion {
    /// SemVer precedence with NuGet's fourth part: a release sorts after its prereleases, numeric
    /// labels compare as numbers and before alphanumeric ones, which compare case-insensitively.
    fn cmp(&self, other: &Self) -> Ordering {
        self.numbers.cmp(&other.numbers).then_with(|| match (self.labels.is_empty(), other.labels.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                for (a, b) in self.labels.iter().zip(&other.labels) {
                    let order = compare_label(a, b);
                    if order != Ordering::Equal {
                        return order;
                    }
                }
                self.labels.len().cmp(&other.labels.len())
            }
        })
    }
}

impl PartialOrd for NuGetVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn compare_label(a: &str, b: &str) -> Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()),
    }
}

/// Whether two version strings name the same NuGet version (`1.0` and `1.0.0.0`, `1.0.0-Beta` and
/// `1.0.0-beta`).
pub fn same_version(a: &str, b: &str) -> bool {
    match (NuGetVersion::parse(a), NuGetVersion::parse(b)) {
        (Ok(x), Ok(y)) => x.cmp(&y) == Ordering::Equal,
        _ => a.eq_ignore_ascii_case(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(v: &str) -> String {
        NuGetVersion::parse(v).unwrap().to_string()
    }

    #[test]
    fn normalises_like_nuget() {
        assert_eq!(norm("1.0"), "1.0.0");
        assert_eq!(norm("1.0.0.0"), "1.0.0");
        assert_eq!(norm("1.2.3.4"), "1.2.3.4");
        assert_eq!(norm("01.002.0003"), "1.2.3");
        assert_eq!(norm("1.0.0+build.5"), "1.0.0");
        assert_eq!(norm("1.0.0-Beta.2+sha.abc"), "1.0.0-Beta.2");
        assert_eq!(norm(" 2.0-rc1 "), "2.0.0-rc1");
        assert_eq!(NuGetVersion::parse("1.0.0-Beta").unwrap().lower(), "1.0.0-beta");
        let semver2 = NuGetVersion::parse("05.0-beta.1+build.5").unwrap();
        assert_eq!(
            (semver2.to_string(), semver2.full()),
            ("5.0.0-beta.1".to_string(), "5.0.0-beta.1+build.5".to_string())
        );
        assert_eq!(semver2, NuGetVersion::parse("5.0.0-beta.1").unwrap(), "metadata is not identity");
        assert_eq!(NuGetVersion::parse("1.0").unwrap().full(), "1.0.0");
    }

    #[test]
    fn rejects_malformed_versions() {
        for bad in ["", "1", "1.2.3.4.5", "a.b", "1..2", "1.0-", "1.0-be_ta", "1.0+", "1.0.0-a..b", "99999999999.0"] {
            assert!(NuGetVersion::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn orders_by_semver_precedence() {
        let mut versions: Vec<NuGetVersion> =
            ["1.0.0", "1.0.0-beta.10", "1.0.0-beta.2", "1.0.0-alpha", "0.9.0.1", "1.0.0.1", "1.0.0-1"]
                .iter()
                .map(|v| NuGetVersion::parse(v).unwrap())
                .collect();
        versions.sort();
        let sorted: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
        assert_eq!(sorted, ["0.9.0.1", "1.0.0-1", "1.0.0-alpha", "1.0.0-beta.2", "1.0.0-beta.10", "1.0.0", "1.0.0.1"]);
        assert!(same_version("1.0", "1.0.0.0"));
        assert!(same_version("1.0.0-BETA", "1.0.0-beta"));
        assert!(!same_version("1.0.0", "1.0.1"));
    }

    #[test]
    fn knows_semver2_and_prerelease() {
        assert!(NuGetVersion::parse("1.0.0-beta.1").unwrap().is_semver2());
        assert!(NuGetVersion::parse("1.0.0+meta").unwrap().is_semver2());
        assert!(!NuGetVersion::parse("1.0.0-beta1").unwrap().is_semver2());
        assert!(NuGetVersion::parse("1.0.0-beta1").unwrap().is_prerelease());
        assert!(!NuGetVersion::parse("1.0.0").unwrap().is_prerelease());
    }
}
