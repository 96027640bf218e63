//! Updating installed packages to the newest versions the requirements allow.
//!
//! Named packages (or all, with `--all`) move: one that nothing installed
//! depends on may go to its newest version; a dependency goes as high as its
//! dependents' requirements allow. Everything not named stays at its installed
//! version (as `cargo update -p` does). The work is then an ordinary install
//! transaction.

use std::collections::BTreeSet;
use std::path::Path;

use super::install::{Backends, InstallOptions, InstallReport, Spec, install};
use super::installed;
use super::transaction::recover;
use super::{MarketplaceError, Result};

pub fn update<L>(
    backends: Backends<'_>,
    root: &Path,
    names: &[String],
    options: &InstallOptions,
    lock: impl FnOnce() -> Result<L>,
) -> Result<InstallReport> {
    // Lock and recover before reading ggen.lock: a dead transaction's
    // lockfile must not decide what gets pinned.
    let _guard = lock()?;
    recover(root)?;
    let locked = installed::read(root)?.packages;
    if locked.is_empty() {
        return Err(MarketplaceError::NotFound(format!(
            "nothing is installed in {}",
            root.display()
        )));
    }
    for name in names {
        if !locked.iter().any(|p| &p.name == name) {
            return Err(MarketplaceError::NotFound(format!(
                "`{name}` is not installed in {}; install it first",
                root.display()
            )));
        }
    }
    let selected = |name: &str| names.is_empty() || names.iter().any(|n| n == name);
    let depended_on: BTreeSet<&str> = locked
        .iter()
        .flat_map(|p| p.dependencies.keys().map(String::as_str))
        .collect();
    let mut specs = Vec::new();
    for p in &locked {
        let is_root = !depended_on.contains(p.name.as_str());
        let req = match (selected(&p.name), is_root) {
            (true, true) => semver::VersionReq::STAR,
            // Left to its dependents' requirements.
            (true, false) => continue,
            (false, _) => semver::VersionReq::parse(&format!("={}", p.version)).map_err(|e| {
                MarketplaceError::Storage(format!(
                    "ggen.lock has an invalid version for {}: {e}",
                    p.name
                ))
            })?,
        };
        specs.push(Spec {
            name: p.name.clone(),
            req,
        });
    }
    // Already locked: the lock is not re-entrant, so install must not take it again.
    install(
        backends,
        root,
        &specs,
        &InstallOptions {
            force: false,
            ..options.clone()
        },
        || Ok(()),
    )
}
