//! The repository as a plugin sees it, behind a trait so that protocol code unit-tests natively.

use crate::{PackageView, SearchPage};

/// Read access to the repository's visible packages (the host has applied the gate).
pub trait Registry {
    fn package(&self, name: &str) -> Option<PackageView>;
    fn search(&self, query: &str, offset: u32, limit: u32) -> SearchPage;
    fn all_packages(&self) -> Vec<PackageView>;
}

/// The host's registry, through the plugin's imports.
pub struct HostRegistry;

impl Registry for HostRegistry {
    fn package(&self, name: &str) -> Option<PackageView> {
        crate::sluice::plugin::registry::package(name)
    }
    fn search(&self, query: &str, offset: u32, limit: u32) -> SearchPage {
        crate::sluice::plugin::registry::search(query, offset, limit)
    }
    fn all_packages(&self) -> Vec<PackageView> {
        crate::sluice::plugin::registry::all_packages()
    }
}

/// An in-memory registry for unit tests of protocol handlers.
#[derive(Default)]
pub struct MemoryRegistry {
    pub packages: Vec<PackageView>,
}

impl Registry for MemoryRegistry {
    fn package(&self, name: &str) -> Option<PackageView> {
        self.packages.iter().find(|p| p.name.eq_ignore_ascii_case(name)).cloned()
    }
    fn search(&self, query: &str, offset: u32, limit: u32) -> SearchPage {
        let q = query.to_lowercase();
        let hits: Vec<_> = self.packages.iter().filter(|p| p.name.to_lowercase().contains(&q)).cloned().collect();
        SearchPage {
            total: hits.len() as u64,
            packages: hits.into_iter().skip(offset as usize).take(limit as usize).collect(),
        }
    }
    fn all_packages(&self) -> Vec<PackageView> {
        self.packages.clone()
    }
}
