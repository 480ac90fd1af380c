//! Quarantine in a gated proxy repository (`upstream = "..."` with `gate = "pipeline"`): a file
//! fetched from the upstream is stored as a push whose pipeline must pass before clients may
//! have it. Contract 0.4.0 tells a plugin enough to see which versions those are, with no new
//! call: [`Registry::cached_versions`] names every version the repository holds because it was
//! fetched (whatever its gate says), while the registry view ([`Registry::summary`],
//! [`Registry::package`]) shows only what the gate lets through. A version that is held but has
//! no visible file is in quarantine (its pipeline is pending, running or failed), and a proxy
//! must not offer it in the metadata it builds from the upstream's answer, or clients would
//! resolve to a version whose file the host refuses (with the pipeline's verdict).
//!
//! A plugin still answers the file request of such a version with `fetch-file` (or
//! `serve-file`): the host tells the client why it is held, so that someone whose lockfile names
//! it learns what to ask the registry's admins for.

use std::collections::BTreeSet;

use crate::Registry;

/// The versions of `package` in quarantine: held from the upstream, none of their files visible.
/// Empty outside a proxy repository and in a repository without a gate (every held version is
/// visible there).
pub fn quarantined_versions(registry: &(impl Registry + ?Sized), package: &str) -> BTreeSet<String> {
    let held = registry.cached_versions(package);
    if held.is_empty() {
        return BTreeSet::new();
    }
    // `summary` is the gate-applied view at a fraction of `package`'s cost (no metadata).
    let visible: BTreeSet<String> =
        registry.summary(package).map(|s| s.files.into_iter().map(|f| f.version).collect()).unwrap_or_default();
    held.into_iter().filter(|v| !visible.contains(v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryProxy, MemoryRegistry, PackageSummary, PackageView, SearchPage, TokenInfo, VersionState};

    fn view(name: &str, versions: &[&str]) -> PackageView {
        PackageView {
            name: name.into(),
            created_ms: 0,
            modified_ms: 0,
            tags: Vec::new(),
            artifacts: versions
                .iter()
                .map(|v| crate::Artifact {
                    version: v.to_string(),
                    qualifier: String::new(),
                    file_name: format!("{name}-{v}.tgz"),
                    size: 1,
                    sha256: String::new(),
                    sha512: String::new(),
                    sha1: String::new(),
                    published_ms: 0,
                    metadata: crate::Metadata::new(name, *v),
                    deprecated: None,
                    yanked: false,
                })
                .collect(),
        }
    }

    #[test]
    fn held_versions_without_a_visible_file_are_in_quarantine() {
        // 1.0.0 passed its pipeline, 1.1.0 failed or still runs, 2.0.0 was never fetched.
        let p = MemoryProxy {
            local: MemoryRegistry::with_packages(vec![view("left-pad", &["1.0.0"])]),
            cached: vec!["1.0.0".into(), "1.1.0".into()],
            ..Default::default()
        };
        assert_eq!(quarantined_versions(&p, "left-pad"), BTreeSet::from(["1.1.0".to_string()]));
    }

    #[test]
    fn a_package_with_nothing_visible_yet_has_every_held_version_in_quarantine() {
        let p = MemoryProxy { cached: vec!["0.1.0".into(), "0.2.0".into()], ..Default::default() };
        assert_eq!(quarantined_versions(&p, "fresh").len(), 2);
    }

    #[test]
    fn nothing_is_in_quarantine_without_held_versions_or_a_gate() {
        // Not a proxy: no held versions at all.
        let local = MemoryRegistry::with_packages(vec![view("mine", &["1.0.0"])]);
        assert!(quarantined_versions(&local, "mine").is_empty());
        // An open proxy: every held version is visible.
        let open = MemoryProxy {
            local: MemoryRegistry::with_packages(vec![view("x", &["1.0.0", "2.0.0"])]),
            cached: vec!["1.0.0".into(), "2.0.0".into()],
            ..Default::default()
        };
        assert!(quarantined_versions(&open, "x").is_empty());
    }

    /// A yanked (or deprecated) version is visible: it is the format's business, not quarantine.
    #[test]
    fn a_yanked_version_is_not_in_quarantine() {
        struct Yanked;
        impl Registry for Yanked {
            fn package(&self, _: &str) -> Option<PackageView> {
                None
            }
            fn search(&self, _: &str, _: u32, _: u32) -> SearchPage {
                SearchPage { total: 0, packages: Vec::new() }
            }
            fn all_packages(&self) -> Vec<PackageView> {
                Vec::new()
            }
            fn summary(&self, name: &str) -> Option<PackageSummary> {
                Some(PackageSummary {
                    name: name.into(),
                    tags: Vec::new(),
                    files: vec![VersionState {
                        version: "1.0.0".into(),
                        qualifier: String::new(),
                        deprecated: None,
                        yanked: true,
                    }],
                })
            }
            fn tokens(&self) -> Vec<TokenInfo> {
                Vec::new()
            }
            fn cached_versions(&self, _: &str) -> Vec<String> {
                vec!["1.0.0".into()]
            }
        }
        assert!(quarantined_versions(&Yanked, "y").is_empty());
    }
}
