//! Everything the registry knows about one package, or about the versions
//! of it that `NAME@VERSION` / `NAME@RANGE` / `NAME@latest` pick.

use super::install::parse_spec;
use super::{MarketplaceError, Package, Registry, Result};

pub fn info(registry: &mut dyn Registry, text: &str) -> Result<Package> {
    let spec = parse_spec(text)?;
    let mut package = registry.get_package(&spec.name)?;
    if !text.contains('@') {
        return Ok(package);
    }
    let newest = package.newest().map(|v| v.version.clone());
    let all: Vec<String> = package.versions.iter().map(|v| v.version.clone()).collect();
    package.versions.retain(|v| match spec.latest {
        true => Some(&v.version) == newest.as_ref(),
        false => semver::Version::parse(&v.version).is_ok_and(|parsed| spec.req.matches(&parsed)),
    });
    if package.versions.is_empty() {
        return Err(MarketplaceError::NotFound(format!(
            "`{}` has no version that satisfies {}; it has {}",
            spec.name,
            spec.req,
            all.join(", ")
        )));
    }
    Ok(package)
}
