//! Group repositories (`members = ["internal", "public"]`): one URL over several repositories of one
//! format. The host gives the group's plugin one view, and the plugin does the format's merge as
//! it does for a proxy:
//!
//! - the `registry` view is the union of the members' packages, read in order (the first member
//!   holding a version wins it, and a tag);
//! - the `upstream` import is the proxy member's (its settings, its kept metadata, its
//!   `min_age`), and files fetched through the group are stored in the proxy member, so its own
//!   URL serves them too;
//! - publishes go to the first local member (a group without one refuses them).
//!
//! Dependency confusion is stopped here, not in plugins: a name that a local member holds, or
//! that matches a local member's `private` patterns, is never resolved through the proxy
//! member. Its upstream answers are "nothing" (a 404), its fetches are refused, and the proxy
//! member's copies of it are left out of the view. An upstream request is checked by the package
//! the plugin names (`upstream.get-for`) and by its path, whichever refuses.

use std::collections::{BTreeMap, HashSet};

use crate::app::Repository;
use crate::error::AppError;
use crate::plugin::{wit, RegistryView};
use crate::store::db::Visibility;

use super::view::RepositoryView;
use super::Registry;

/// A group's view of its members.
pub(super) struct GroupView {
    /// Every member, in the configured order.
    members: Vec<RepositoryView>,
    /// Index of the proxy member in `members`.
    proxy: Option<usize>,
    /// The local members' `private` patterns.
    private: Vec<regex::Regex>,
}

impl Registry<'_> {
    /// The group's members, in order.
    pub(super) fn members<'r>(&'r self, group: &Repository) -> Result<Vec<&'r Repository>, AppError> {
        group.config.members.iter().map(|m| self.repository(m)).collect()
    }

    pub(super) fn group_view(&self, group: &Repository, principal: Option<&str>) -> Result<GroupView, AppError> {
        let members = self.members(group)?;
        Ok(GroupView {
            proxy: members.iter().position(|m| m.upstream.is_some()),
            private: members.iter().flat_map(|m| m.private.iter().cloned()).collect(),
            members: members.iter().map(|m| RepositoryView::member(self.db.clone(), m, principal)).collect(),
        })
    }

    /// Where a publish to the group lands: its first local member.
    pub(super) fn publish_target<'r>(&'r self, group: &Repository) -> Result<&'r Repository, AppError> {
        self.write_target(group.name()).ok_or_else(|| {
            AppError::Unsupported(format!(
                "group `{}` has no local member to publish to; publish to one of its members",
                group.name()
            ))
        })
    }

    /// A stored file through the group: the first member that holds it, the proxy member only
    /// for names it may resolve.
    pub(super) fn serve_group_file(&self, group: &Repository, f: &wit::FileRef) -> Result<super::Reply, AppError> {
        let view = self.group_view(group, None)?;
        for (i, member) in self.members(group)?.into_iter().enumerate() {
            if Some(i) == view.proxy && view.protected(&f.package) {
                continue;
            }
            if self.db.file_by_name(member.name(), &member.key(&f.package), &f.file_name)?.is_some() {
                if let Ok(reply) = self.serve_file(member, f) {
                    return Ok(reply);
                }
            }
        }
        Err(AppError::NotFound(format!("{} has no file {}", f.package, f.file_name)))
    }

    /// A file of the upstream through the group: fetched into the proxy member, unless the name
    /// is one the group keeps from the upstream.
    pub(super) fn fetch_group_file(
        &self,
        group: &Repository,
        f: &wit::UpstreamFile,
        site: &str,
    ) -> Result<super::Reply, AppError> {
        let view = self.group_view(group, None)?;
        let members = self.members(group)?;
        let proxy = view.proxy.map(|i| members[i]).filter(|_| !view.protected(&f.package));
        let Some(proxy) = proxy else {
            tracing::info!(
                repository = group.name(), package = %f.package,
                "a private name is not fetched from the upstream"
            );
            return Err(AppError::NotFound(format!("{} has no file {}", f.package, f.file_name)));
        };
        self.fetch_file(proxy, f, site)
    }
}

impl GroupView {
    fn locals(&self) -> impl Iterator<Item = &RepositoryView> {
        self.members.iter().filter(|m| m.upstream.is_none())
    }

    /// A name the proxy member must not resolve: held by a local member (in any state, pending
    /// or failed versions too: a version waiting for its pipeline must not let the public one
    /// in meanwhile) or matching a local member's `private` patterns.
    fn protected(&self, name: &str) -> bool {
        self.private.iter().any(|p| p.is_match(name))
            || self.locals().any(|m| {
                matches!(m.db.package_summary(m.name(), &m.key(name), Visibility::All), Ok(Some(s)) if !s.files.is_empty())
            })
    }

    /// Whether an upstream path names a protected package. The host does not know how a format
    /// spells a package in a path, so every run of the decoded path's segments is a candidate
    /// (`/@acme%2fsecret` gives `@acme/secret`; a module path several segments long is one
    /// run). It can only refuse too much (a path that merely contains such a name), never too
    /// little.
    fn protected_path(&self, path_and_query: &str) -> bool {
        candidate_names(path_and_query).iter().any(|n| self.protected(n))
    }

    /// Whether an upstream request is kept from the upstream: its package (when the plugin names
    /// it, `upstream.get-for`) is protected, or its path names a protected package. The name is
    /// the one the format compares (Go escapes capitals in paths, `github.com/!acme/tools`, so only
    /// the name shows it is `github.com/Acme/tools`); the path check stays for requests that name
    /// no package, and for plugins built before `get-for` (0.4.0), which never name one.
    fn refuses(&self, package: Option<&str>, path_and_query: &str) -> bool {
        package.is_some_and(|p| self.protected(p)) || self.protected_path(path_and_query)
    }

    /// An upstream GET through the proxy member, answered 404 ("nothing") when `refuses`.
    fn through_proxy(
        &self,
        package: Option<&str>,
        path_and_query: &str,
        accept: Option<&str>,
    ) -> Result<wit::UpstreamResponse, wit::Error> {
        let Some(proxy) = self.proxy.map(|i| &self.members[i]) else {
            return Err(wit::Error {
                kind: wit::ErrorKind::Unsupported,
                message: "this group has no proxy member".into(),
            });
        };
        if self.refuses(package, path_and_query) {
            tracing::info!(
                repository = proxy.name(), package = package.unwrap_or_default(), path = %path_and_query,
                "a private name is not resolved through the upstream; answering as if it had nothing"
            );
            return Ok(wit::UpstreamResponse {
                status: 404,
                headers: vec![("content-type".into(), "application/json".into())],
                body: b"{}".to_vec(),
                stale: false,
            });
        }
        proxy.upstream_get(path_and_query, accept)
    }

    /// The members' views to read, in order: the proxy member's left out for a protected name.
    fn readable(&self, name: &str) -> Vec<&RepositoryView> {
        let skip_proxy = self.proxy.is_some() && self.protected(name);
        self.members
            .iter()
            .enumerate()
            .filter(|(i, _)| !(skip_proxy && Some(*i) == self.proxy))
            .map(|(_, m)| m)
            .collect()
    }
}

/// Every run of up to 8 consecutive segments of the percent-decoded path (the query left out),
/// joined by `/`.
pub fn candidate_names(path_and_query: &str) -> Vec<String> {
    let path = path_and_query.split('?').next().unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let segments: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).take(32).collect();
    let mut names = Vec::new();
    for start in 0..segments.len() {
        for end in start + 1..=segments.len().min(start + 8) {
            names.push(segments[start..end].join("/"));
        }
    }
    names
}

/// Members' views of one package merged: the first member's files win per version and
/// qualifier, and its tags per tag name; oldest first.
fn merge_views(views: impl IntoIterator<Item = wit::PackageView>) -> Option<wit::PackageView> {
    let mut views = views.into_iter();
    let mut out = views.next()?;
    let mut have: HashSet<(String, String)> =
        out.artifacts.iter().map(|a| (a.version.clone(), a.qualifier.clone())).collect();
    for v in views {
        out.created_ms = out.created_ms.min(v.created_ms);
        out.modified_ms = out.modified_ms.max(v.modified_ms);
        for a in v.artifacts {
            if have.insert((a.version.clone(), a.qualifier.clone())) {
                out.artifacts.push(a);
            }
        }
        for (tag, version) in v.tags {
            if !out.tags.iter().any(|(t, _)| *t == tag) {
                out.tags.push((tag, version));
            }
        }
    }
    out.artifacts.sort_by_key(|a| a.published_ms);
    Some(out)
}

fn merge_summaries(summaries: impl IntoIterator<Item = wit::PackageSummary>) -> Option<wit::PackageSummary> {
    let mut summaries = summaries.into_iter();
    let mut out = summaries.next()?;
    let mut have: HashSet<(String, String)> =
        out.files.iter().map(|f| (f.version.clone(), f.qualifier.clone())).collect();
    for s in summaries {
        for f in s.files {
            if have.insert((f.version.clone(), f.qualifier.clone())) {
                out.files.push(f);
            }
        }
        for (tag, version) in s.tags {
            if !out.tags.iter().any(|(t, _)| *t == tag) {
                out.tags.push((tag, version));
            }
        }
    }
    Some(out)
}

impl GroupView {
    /// Every package of the members' lists merged by name, the proxy member's protected ones
    /// left out.
    fn merge_lists(&self, lists: Vec<(usize, Vec<wit::PackageView>)>) -> Vec<wit::PackageView> {
        let mut by_name: BTreeMap<String, Vec<wit::PackageView>> = BTreeMap::new();
        for (i, list) in lists {
            for p in list {
                if Some(i) == self.proxy && self.protected(&p.name) {
                    continue;
                }
                by_name.entry(self.members[i].key(&p.name)).or_default().push(p);
            }
        }
        by_name.into_values().filter_map(merge_views).collect()
    }
}

impl RegistryView for GroupView {
    fn package(&self, name: &str) -> Option<wit::PackageView> {
        merge_views(self.readable(name).into_iter().filter_map(|m| m.package(name)))
    }

    fn search(&self, query: &str, offset: u32, limit: u32) -> wit::SearchPage {
        // Each member's first `offset + limit` matches, merged and paged: the page is exact, the
        // total counts a name in several members once only among the pages read.
        let want = offset.saturating_add(limit.min(1000));
        let mut beyond = 0;
        let lists = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let page = m.search(query, 0, want);
                beyond += page.total.saturating_sub(page.packages.len() as u64);
                (i, page.packages)
            })
            .collect();
        let merged = self.merge_lists(lists);
        let total = merged.len() as u64 + beyond;
        wit::SearchPage {
            total,
            packages: merged.into_iter().skip(offset as usize).take(limit.min(1000) as usize).collect(),
        }
    }

    fn all_packages(&self) -> Vec<wit::PackageView> {
        self.merge_lists(self.members.iter().enumerate().map(|(i, m)| (i, m.all_packages())).collect())
    }

    fn summary(&self, name: &str) -> Option<wit::PackageSummary> {
        merge_summaries(self.readable(name).into_iter().filter_map(|m| m.summary(name)))
    }

    fn tokens(&self) -> Vec<wit::TokenInfo> {
        self.members.first().map(|m| m.tokens()).unwrap_or_default()
    }

    fn upstream_configured(&self) -> bool {
        self.proxy.is_some()
    }

    fn upstream_get(&self, path_and_query: &str, accept: Option<&str>) -> Result<wit::UpstreamResponse, wit::Error> {
        self.through_proxy(None, path_and_query, accept)
    }

    fn upstream_get_for(
        &self,
        package: &str,
        path_and_query: &str,
        accept: Option<&str>,
    ) -> Result<wit::UpstreamResponse, wit::Error> {
        self.through_proxy(Some(package), path_and_query, accept)
    }

    fn cached_versions(&self, package: &str) -> Vec<String> {
        let Some(proxy) = self.proxy.map(|i| &self.members[i]) else { return Vec::new() };
        if self.protected(package) {
            return Vec::new();
        }
        // A version a local member also holds is the local one in the merged view: not "fetched".
        let local: HashSet<String> = self
            .locals()
            .filter_map(|m| m.summary(package))
            .flat_map(|s| s.files.into_iter().map(|f| f.version))
            .collect();
        proxy.cached_versions(package).into_iter().filter(|v| !local.contains(v)).collect()
    }

    fn published_before(&self) -> Option<u64> {
        self.members[self.proxy?].published_before()
    }
}

#[cfg(test)]
mod tests {
    use super::{candidate_names, GroupView};

    #[test]
    fn a_named_package_is_refused_by_its_name_and_an_unnamed_request_by_its_path() {
        // A group whose local members hold nothing: only the `private` patterns protect.
        let pattern = |g| crate::app::name_pattern(g, false).unwrap();
        let view = GroupView {
            members: Vec::new(),
            proxy: None,
            private: vec![pattern("github.com/Acme/*"), pattern("example.com/acme/*")],
        };
        let escaped = "/github.com/!acme/tools/@v/list";
        assert!(view.refuses(Some("github.com/Acme/tools"), escaped), "the name shows what the path hides");
        assert!(!view.refuses(None, escaped), "the path alone cannot: why plugins name the package");
        assert!(view.refuses(None, "/example.com/acme/tool/@v/list"), "a 0.4.0 plugin's path is still checked");
        assert!(
            view.refuses(Some("github.com/Pub/greet"), "/example.com/acme/tool/@v/list"),
            "a package named wrongly does not get past the path check"
        );
        assert!(!view.refuses(Some("github.com/Pub/greet"), "/github.com/!pub/greet/@v/list"));
    }

    #[test]
    fn every_run_of_path_segments_is_a_candidate_name() {
        let names = candidate_names("/@acme%2Fsecret?write=true");
        assert!(names.contains(&"@acme/secret".to_string()), "{names:?}");
        assert!(names.contains(&"@acme".to_string()) && names.contains(&"secret".to_string()));
        assert!(!names.iter().any(|n| n.contains("write")), "the query is no name");
        let module = candidate_names("/example.com/acme/mod/@v/list");
        assert!(module.contains(&"example.com/acme/mod".to_string()), "{module:?}");
        assert!(candidate_names("/").is_empty());
    }
}
