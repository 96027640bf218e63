//! The marketplace's data, as the domain and the JSON output see it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Largest tarball ggen accepts, from a registry or from peers.
pub const MAX_TARBALL: u64 = 1 << 30;

/// One published version of a package.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The tarball's bytes; 0 where unknown (a download then asks the
    /// provider, and the checksum decides).
    pub size: u64,
}

impl PackageVersion {
    /// How strongly this version stands for its package where one version
    /// is shown or kept (search, info, merged P2P results): stable above
    /// pre-release, as an install without a version picks, then by semver;
    /// an unparseable version lowest. The SDK's `search::preference` is the
    /// same rule inside plugins, and this is it.
    pub fn preference(&self) -> Option<(bool, semver::Version)> {
        ggen_plugin_sdk::search::preference(&self.version)
    }

    /// When it was published; None (which sorts before any time) where
    /// `published_at` is no RFC 3339 time.
    pub fn published(&self) -> Option<time::OffsetDateTime> {
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        time::OffsetDateTime::parse(&self.published_at, rfc3339).ok()
    }
}

/// A package with all its versions, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub versions: Vec<PackageVersion>,
}

impl Package {
    /// The version that stands for the package (see [`PackageVersion::preference`]).
    pub fn newest(&self) -> Option<&PackageVersion> {
        self.versions.iter().max_by_key(|v| v.preference())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub text: String,
    pub categories: Vec<String>,
    pub tags: Vec<String>,
    pub limit: u32,
    pub offset: u32,
}

impl Query {
    /// Every package (its newest version), unpaged.
    pub fn everything() -> Self {
        Self {
            text: String::new(),
            categories: Vec::new(),
            tags: Vec::new(),
            limit: u32::MAX,
            offset: 0,
        }
    }
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

/// Package names become directory names everywhere (and arrive from
/// registries and peers): the SDK's rule, which plugins share.
pub use ggen_plugin_sdk::names::check_package_name as validate_name;

/// Longest title, description, tag or category, author and license, and
/// most entries per list. Publish refuses what exceeds them and peers drop
/// records that do, so whatever publishes is accepted across the network.
pub const MAX_TITLE: usize = 256;
pub const MAX_DESCRIPTION: usize = 8192;
pub const MAX_TAG: usize = 64;
pub const MAX_LIST_ENTRY: usize = 128;
pub const MAX_LIST_ENTRIES: usize = 64;
/// With the limits above, keeps a record within a peer's limit (p2p record.rs).
pub const MAX_DEPENDENCIES: usize = 128;

/// Check a package's texts and dependency count against those limits; the
/// error names the field.
pub fn check_texts(
    title: &str,
    description: &str,
    license: &str,
    tags: &[String],
    categories: &[String],
    authors: &[String],
    dependencies: usize,
) -> std::result::Result<(), String> {
    if dependencies > MAX_DEPENDENCIES {
        return Err(format!(
            "\"dependencies\" has {dependencies} entries; the limit is {MAX_DEPENDENCIES}"
        ));
    }
    let printable = |s: &str| !s.contains(char::is_control);
    if title.len() > MAX_TITLE || !printable(title) {
        return Err(format!(
            "\"title\" must be at most {MAX_TITLE} bytes of printable text"
        ));
    }
    if license.len() > MAX_LIST_ENTRY || !printable(license) {
        return Err(format!(
            "\"license\" must be at most {MAX_LIST_ENTRY} bytes of printable text, such as an SPDX expression (MIT OR Apache-2.0)"
        ));
    }
    if description.len() > MAX_DESCRIPTION {
        return Err(format!(
            "\"description\" is {} bytes; the limit is {MAX_DESCRIPTION}",
            description.len()
        ));
    }
    // Tags and categories are what search filters on: a blank one matches
    // nothing. (field, entries, longest entry, whether one may be blank)
    let lists = [
        ("tags", tags, MAX_TAG, false),
        ("categories", categories, MAX_TAG, false),
        ("authors", authors, MAX_LIST_ENTRY, true),
    ];
    for (field, list, max, blank_ok) in lists {
        if list.len() > MAX_LIST_ENTRIES {
            return Err(format!(
                "\"{field}\" has {} entries; the limit is {MAX_LIST_ENTRIES}",
                list.len()
            ));
        }
        let fits =
            |s: &String| s.len() <= max && printable(s) && (blank_ok || !s.trim().is_empty());
        if let Some(bad) = list.iter().find(|s| !fits(s)) {
            let least = if blank_ok { "at most " } else { "1-" };
            let what = if !blank_ok && bad.trim().is_empty() {
                "is blank; each entry must be"
            } else {
                "must be"
            };
            return Err(format!(
                "\"{field}\": `{}` {what} {least}{max} bytes of printable text",
                super::excerpt(&bad.escape_debug().to_string(), 40)
            ));
        }
    }
    Ok(())
}
