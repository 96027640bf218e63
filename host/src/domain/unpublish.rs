//! Taking one published version out of the registry (npm's `unpublish`):
//! its index entry, package.json and tarball. Installed copies stay; a
//! lockfile that pins the version can no longer be installed afresh.

use serde::Serialize;

use super::{MarketplaceError, Registry, Result, excerpt};

#[derive(Debug, Clone, Serialize)]
pub struct UnpublishReport {
    pub name: String,
    pub version: String,
    /// The checksum of the tarball that was removed.
    pub checksum: String,
    /// The versions still published, newest first (empty: the package is gone).
    pub remaining: Vec<String>,
}

/// Remove `NAME@VERSION` (an exact version, as `info` lists it) from
/// `registry`. `lock` serialises writers of the registry.
pub fn unpublish<L>(
    registry: &mut dyn Registry,
    text: &str,
    lock: impl FnOnce() -> Result<L>,
) -> Result<UnpublishReport> {
    let (name, version) = parse(text)?;
    let _guard = lock()?;
    let mut versions = registry.get_package(name)?.versions;
    let Some(at) = versions.iter().position(|v| v.version == version) else {
        let listed: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
        return Err(MarketplaceError::NotFound(format!(
            "{name}@{version} is not published; {name} has {}",
            listed.join(", ")
        )));
    };
    registry.delete(name, version)?;
    let gone = versions.remove(at);
    Ok(UnpublishReport {
        name: gone.name,
        version: gone.version,
        checksum: gone.checksum,
        remaining: versions.into_iter().map(|v| v.version).collect(),
    })
}

/// `NAME@VERSION`, the version exact: removing "whatever `^1` picks" is
/// too easy to get wrong.
fn parse(text: &str) -> Result<(&str, &str)> {
    let shown = excerpt(text, 80);
    match super::install::split_spec(text)? {
        (name, Some(version)) if semver::Version::parse(version).is_ok() => Ok((name, version)),
        (name, Some(other)) => Err(MarketplaceError::Validation(format!(
            "`{shown}`: `{}` is not an exact version; unpublish takes one version, as `ggen marketplace info {name}` lists it",
            excerpt(other, 64)
        ))),
        (name, None) => Err(MarketplaceError::Validation(format!(
            "`{shown}`: name the version to unpublish, as NAME@VERSION (`ggen marketplace info {name}` lists them)"
        ))),
    }
}
