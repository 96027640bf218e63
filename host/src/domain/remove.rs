//! Removing an installed package, as a transaction: refused while another
//! installed package depends on it, or while its files have local changes
//! (unless forced). Dependencies that nothing needs any more go with it, as
//! npm and pnpm prune them.

use std::path::Path;

use serde::Serialize;

use super::installed;
use super::transaction::{Transaction, fault, recover};
use super::{MarketplaceError, Result};

#[derive(Debug, Clone, Serialize)]
pub struct RemoveReport {
    pub name: String,
    pub version: String,
    /// Installed packages that still depend on it (only with --force).
    pub broken_dependents: Vec<String>,
    /// Dependencies removed with it (`name@version`): installed only for
    /// what is gone now, and not edited since.
    pub also_removed: Vec<String>,
}

pub fn remove<L>(
    root: &Path,
    name: &str,
    force: bool,
    lock: impl FnOnce() -> Result<L>,
) -> Result<RemoveReport> {
    super::manifest::validate_name(name).map_err(MarketplaceError::Validation)?;
    let _guard = lock()?;
    recover(root)?;
    let mut lockfile = installed::read(root)?;
    let Some(entry) = lockfile.packages.iter().find(|p| p.name == name).cloned() else {
        return Err(MarketplaceError::NotFound(format!(
            "`{name}` is not installed in {}",
            root.display()
        )));
    };
    let dependents: Vec<String> = lockfile
        .packages
        .iter()
        .filter(|p| p.dependencies.contains_key(name))
        .map(|p| format!("{}@{}", p.name, p.version))
        .collect();
    if !dependents.is_empty() && !force {
        return Err(MarketplaceError::Dependency(format!(
            "cannot remove {name}: {} depend{} on it; remove {} first or use --force",
            dependents.join(", "),
            if dependents.len() == 1 { "s" } else { "" },
            if dependents.len() == 1 { "it" } else { "them" }
        )));
    }
    if !force {
        super::verify::refuse_local_changes(root, &entry, "removing it")?;
    }
    lockfile.packages.retain(|p| p.name != name);
    let also = no_longer_needed(root, &mut lockfile)?;
    let mut tx = Transaction::begin(root)?;
    let gone: Vec<String> = std::iter::once(name.to_owned())
        .chain(also.iter().map(|p| p.name.clone()))
        .collect();
    tx.write_journal(&gone)?;
    for name in &gone {
        tx.take_out(name)?;
        fault("moved")?;
    }
    tx.commit(&lockfile)?;
    Ok(RemoveReport {
        name: entry.name,
        version: entry.version,
        broken_dependents: dependents,
        also_removed: also
            .iter()
            .map(|p| format!("{}@{}", p.name, p.version))
            .collect(),
    })
}

/// Take out of `lockfile` the packages installed only as dependencies that
/// nothing left depends on (and so on down), except those edited since:
/// they are kept, as a remove that was not asked for must lose nothing.
fn no_longer_needed(
    root: &Path,
    lockfile: &mut installed::Lockfile,
) -> Result<Vec<installed::LockedPackage>> {
    let mut kept = std::collections::BTreeSet::new();
    let mut gone = Vec::new();
    loop {
        let orphan = lockfile.packages.iter().position(|p| {
            !p.requested
                && !kept.contains(&p.name)
                && !(lockfile.packages.iter()).any(|q| q.dependencies.contains_key(&p.name))
        });
        let Some(i) = orphan else {
            return Ok(gone);
        };
        if super::verify::local_changes(root, &lockfile.packages[i])?.is_empty() {
            gone.push(lockfile.packages.remove(i));
        } else {
            kept.insert(lockfile.packages[i].name.clone());
        }
    }
}
