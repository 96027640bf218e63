//! Updating installed packages to the newest versions the requirements allow.
//!
//! Named packages (or all, with `--all`) move up: one that nothing installed
//! depends on to its newest version, a dependency as high as its dependents'
//! requirements allow; none ever moves down (when nothing fits, the error
//! names what holds it back). Everything not named stays at its installed
//! version (as `cargo update -p` does). The work is then an ordinary install
//! transaction, from the registry or from peers (the caller's `install`).

use std::path::Path;

use super::install::{InstallOptions, InstallReport, Spec};
use super::installed;
use super::p2p_install::SOURCE_PREFIX;
use super::transaction::recover;
use super::{MarketplaceError, Result};

/// `install` runs the transaction with the root already locked (the lock is
/// not re-entrant, so it must not take it again); `from_peers` says whether it
/// asks the network.
pub fn update<L>(
    root: &Path,
    names: &[String],
    options: &InstallOptions,
    from_peers: bool,
    lock: impl FnOnce() -> Result<L>,
    install: impl FnOnce(&[Spec], &InstallOptions) -> Result<InstallReport>,
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
    if !from_peers {
        let delivered: Vec<&str> = (locked.iter())
            .filter(|p| selected(&p.name) && p.source.starts_with(SOURCE_PREFIX))
            .map(|p| p.name.as_str())
            .collect();
        if !delivered.is_empty() {
            // Their newer versions may exist only on the network.
            tracing::warn!(
                "{} came from peers; only the registry is searched for newer versions unless you pass --p2p",
                delivered.join(", ")
            );
        }
    }
    let mut specs = Vec::new();
    for p in &locked {
        // A selected package goes as high as its dependents' requirements
        // allow, never lower; the others stay where they are.
        let op = if selected(&p.name) { ">=" } else { "=" };
        let req = semver::VersionReq::parse(&format!("{op}{}", p.version)).map_err(|e| {
            MarketplaceError::Storage(format!(
                "ggen.lock has an invalid version for {}: {e}",
                p.name
            ))
        })?;
        specs.push(Spec {
            name: p.name.clone(),
            req,
        });
    }
    install(
        &specs,
        &InstallOptions {
            force: false,
            ..options.clone()
        },
    )
}
