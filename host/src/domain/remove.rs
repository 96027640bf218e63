//! Removing an installed package, as a transaction: refused while another
//! installed package depends on it, or while its files have local changes
//! (unless forced).

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
    let mut tx = Transaction::begin(root)?;
    tx.write_journal(&[name.to_owned()])?;
    tx.take_out(name)?;
    fault("moved")?;
    lockfile.packages.retain(|p| p.name != name);
    tx.commit(&lockfile)?;
    Ok(RemoveReport {
        name: entry.name,
        version: entry.version,
        broken_dependents: dependents,
    })
}
