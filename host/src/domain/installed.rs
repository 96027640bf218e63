//! Installed packages, as recorded in `<packages>/ggen.lock`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{MarketplaceError, Result};

pub const LOCKFILE: &str = "ggen.lock";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Lockfile {
    pub version: u32,
    #[serde(default)]
    pub packages: Vec<LockedPackage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    /// Where it came from, e.g. `registry+file:///home/me/.ggen/registry`.
    pub source: String,
    /// `sha256-<hex>` of the tarball.
    pub integrity: String,
    #[serde(default)]
    pub dependencies: BTreeMap<String, String>,
}

/// The installed packages under `packages_dir` (none if nothing was installed).
pub fn list(packages_dir: &Path) -> Result<Vec<LockedPackage>> {
    let path = packages_dir.join(LOCKFILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(MarketplaceError::storage(format!("cannot read {}", path.display()), e)),
    };
    let lock: Lockfile = serde_json::from_str(&text)
        .map_err(|e| MarketplaceError::Storage(format!("{} is not a valid lockfile ({e})", path.display())))?;
    let mut packages = lock.packages;
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(packages)
}
