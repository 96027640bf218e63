//! The marketplace's data, as the domain and the JSON output see it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One published version of a package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageVersion {
    pub name: String,
    pub version: String,
    pub title: String,
    pub description: String,
    pub categories: Vec<String>,
    pub tags: Vec<String>,
    pub authors: Vec<String>,
    pub license: Option<String>,
    /// name → semver requirement
    pub dependencies: BTreeMap<String, String>,
    /// `sha256-<hex>` of the tarball.
    pub checksum: String,
    pub published_at: String,
    pub size: u64,
}

/// A package with all its versions, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub versions: Vec<PackageVersion>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Query {
    pub text: String,
    pub categories: Vec<String>,
    pub tags: Vec<String>,
    pub limit: u32,
    pub offset: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResults {
    /// Matches before paging.
    pub total: u64,
    pub hits: Vec<PackageVersion>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegistryMetadata {
    pub name: String,
    pub description: String,
    pub package_count: u64,
    pub version_count: u64,
    pub writable: bool,
}
