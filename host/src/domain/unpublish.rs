//! Taking one published version out of the registry (npm's `unpublish`):
//! its index entry, package.json and tarball. Installed copies stay; a
//! lockfile that pins the version can no longer be installed afresh. As
//! npm does, it is refused while other published packages need it.

use serde::Serialize;

use super::{MarketplaceError, Query, Registry, Result, excerpt};

/// Dependents named in a refusal; the rest are counted.
const NAMED: usize = 3;

#[derive(Debug, Clone, Serialize)]
pub struct UnpublishReport {
    pub name: String,
    pub version: String,
    /// The checksum of the tarball that was removed.
    pub checksum: String,
    /// The versions still published, newest first (empty: the package is gone).
    pub remaining: Vec<String>,
    /// Published packages left without a version they require (`--force`):
    /// `name@version (requires <name> <req>)`.
    pub broken_dependents: Vec<String>,
}

/// The version `unpublish` is to remove.
pub struct Target<'a> {
    name: &'a str,
    version: &'a str,
}

/// Remove `target` from `registry`, unless a published version of another
/// package requires it and no other version would do (`force` removes it
/// all the same). `lock` serialises writers of the registry.
pub fn unpublish<L>(
    registry: &mut dyn Registry,
    target: &Target,
    force: bool,
    lock: impl FnOnce() -> Result<L>,
) -> Result<UnpublishReport> {
    let Target { name, version } = *target;
    let _guard = lock()?;
    let versions = registry.get_package(name)?.versions;
    let Some(gone) = versions.iter().find(|v| v.version == version).cloned() else {
        let listed: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
        return Err(MarketplaceError::NotFound(format!(
            "{name}@{version} is not published; {name} has {}",
            listed.join(", ")
        )));
    };
    // An index written by hand may list a version twice: it goes whole.
    let mut remaining: Vec<String> = Vec::new();
    for v in versions {
        if v.version != version && !remaining.contains(&v.version) {
            remaining.push(v.version);
        }
    }
    let broken = needing(registry, name, version, &remaining)?;
    if !broken.is_empty() && !force {
        let more = match broken.len().saturating_sub(NAMED) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        return Err(MarketplaceError::Dependency(format!(
            "cannot unpublish {name}@{version}: {}{more} need{} it and no other version of {name} will do; publish a version they accept first, or use --force",
            broken[..broken.len().min(NAMED)].join(", "),
            if broken.len() == 1 { "s" } else { "" },
        )));
    }
    registry.delete(name, version)?;
    Ok(UnpublishReport {
        name: gone.name,
        version: gone.version,
        checksum: gone.checksum,
        remaining,
        broken_dependents: broken,
    })
}

/// The published versions of other packages that require `name` in a
/// range `version` satisfies and none of `remaining` does: not only each
/// one's newest, since an install falls back on an older version when the
/// newest cannot be installed, and a lockfile may pin one.
fn needing(
    registry: &mut dyn Registry,
    name: &str,
    version: &str,
    remaining: &[String],
) -> Result<Vec<String>> {
    let Ok(gone) = semver::Version::parse(version) else {
        return Ok(Vec::new());
    };
    let remaining: Vec<semver::Version> = (remaining.iter())
        .filter_map(|v| semver::Version::parse(v).ok())
        .collect();
    let mut needing = Vec::new();
    for hit in registry.search(&Query::everything())?.hits {
        if hit.name == name {
            continue;
        }
        let versions = match registry.list_versions(&hit.name) {
            Ok(versions) => versions,
            // Taken out since the search (not by a writer: the lock is held).
            Err(MarketplaceError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        for v in versions {
            let Some(req) =
                (v.dependencies.get(name)).and_then(|r| semver::VersionReq::parse(r).ok())
            else {
                continue;
            };
            if req.matches(&gone) && !remaining.iter().any(|r| req.matches(r)) {
                needing.push(format!("{}@{} (requires {name} {req})", v.name, v.version));
            }
        }
    }
    Ok(needing)
}

/// `NAME@VERSION`, the version exact (as `info` lists it): removing
/// "whatever `^1` picks" is too easy to get wrong. Checked before a
/// registry is opened.
pub fn parse(text: &str) -> Result<Target<'_>> {
    let shown = excerpt(text, 80);
    match super::install::split_spec(text)? {
        (name, Some(version)) if semver::Version::parse(version).is_ok() => {
            Ok(Target { name, version })
        }
        (name, Some(other)) => Err(MarketplaceError::Validation(format!(
            "`{shown}`: `{}` is not an exact version; unpublish takes one version, as `ggen marketplace info {name}` lists it",
            excerpt(other, 64)
        ))),
        (name, None) => Err(MarketplaceError::Validation(format!(
            "`{shown}`: name the version to unpublish, as NAME@VERSION (`ggen marketplace info {name}` lists them)"
        ))),
    }
}
