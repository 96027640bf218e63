//! Checking installed packages against ggen.lock: every file re-hashed and
//! compared with the digest recorded at install time.

use std::path::Path;

use serde::Serialize;

use super::installed::{self, FileChange, LockedPackage};
use super::{MarketplaceError, Result};
use crate::backend::digest;

#[derive(Debug, Clone, Serialize)]
pub struct PackageCheck {
    pub name: String,
    pub version: String,
    /// Files whose content differs from ggen.lock.
    pub modified: Vec<String>,
    /// Files ggen.lock lists that are gone.
    pub missing: Vec<String>,
    /// Files present that ggen.lock does not list.
    pub extra: Vec<String>,
    /// Files that differ from the published tarball because an approved
    /// post-install hook changed them, and are as that hook left them.
    pub changed_by_hooks: Vec<String>,
    /// Dependencies (`name@version`, as ggen.lock recorded them) that are
    /// not installed at that version: removed with --force, moved by hand,
    /// or dropped from ggen.lock.
    pub missing_dependencies: Vec<String>,
}

impl PackageCheck {
    pub fn ok(&self) -> bool {
        self.files_ok() && self.missing_dependencies.is_empty()
    }

    pub fn files_ok(&self) -> bool {
        self.modified.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub packages: Vec<PackageCheck>,
    /// Installs, updates or removes killed while moving packages, which the
    /// next one rolls back.
    pub interrupted: usize,
}

pub fn verify(root: &Path) -> Result<VerifyReport> {
    let lock = installed::read(root)?;
    let installed: std::collections::BTreeMap<&str, &str> = (lock.packages.iter())
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    let mut packages = lock
        .packages
        .iter()
        .map(|locked| {
            let mut check = check(root, locked)?;
            check.missing_dependencies = locked
                .dependencies
                .iter()
                // Recorded at another version than the one installed is
                // missing too: what it was installed against is gone.
                .filter(|(dep, version)| installed.get(dep.as_str()) != Some(&version.as_str()))
                .map(|(dep, version)| format!("{dep}@{version}"))
                .collect();
            Ok(check)
        })
        .collect::<Result<Vec<_>>>()?;
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    let interrupted = super::transaction::interrupted(root);
    Ok(VerifyReport {
        ok: interrupted == 0 && packages.iter().all(PackageCheck::ok),
        packages,
        interrupted,
    })
}

/// One installed package's files against what ggen.lock recorded.
pub fn check(root: &Path, locked: &LockedPackage) -> Result<PackageCheck> {
    let dir = root.join(&locked.name);
    // Not followed: a link (or a file) put in place of the package directory
    // is not what ggen installed, whatever it points at; replacing it would
    // lose it, so every file counts as modified.
    let replaced = dir.symlink_metadata().is_ok_and(|m| !m.is_dir());
    let mut on_disk = if !replaced && dir.is_dir() {
        digest::tree(&dir)
            .map_err(|e| MarketplaceError::storage(format!("cannot read {}", dir.display()), e))?
            .files
    } else {
        Default::default()
    };
    let mut check = PackageCheck {
        name: locked.name.clone(),
        version: locked.version.clone(),
        modified: Vec::new(),
        missing: Vec::new(),
        extra: Vec::new(),
        changed_by_hooks: Vec::new(),
        missing_dependencies: Vec::new(),
    };
    for (path, digest) in &locked.files {
        match on_disk.remove(path) {
            None if replaced => check.modified.push(path.clone()),
            None => check.missing.push(path.clone()),
            Some(actual) if &actual != digest => check.modified.push(path.clone()),
            Some(_) => {
                if matches!(
                    locked.hook_changes.get(path),
                    Some(FileChange::Created | FileChange::Modified)
                ) {
                    check.changed_by_hooks.push(path.clone());
                }
            }
        }
    }
    check.extra = on_disk.into_keys().collect();
    Ok(check)
}

/// Refuse to replace or remove a package whose files were edited or added
/// to since ggen installed it (a file deleted is not lost: it comes back).
pub fn refuse_local_changes(root: &Path, locked: &LockedPackage, doing: &str) -> Result<()> {
    let changes = local_changes(root, locked)?;
    if changes.is_empty() {
        return Ok(());
    }
    Err(MarketplaceError::AlreadyExists(format!(
        "{} has local changes ({}); {doing} would lose them: move them away, or pass --force to discard them",
        root.join(&locked.name).display(),
        changes.summary()
    )))
}

/// Files edited or added in an installed package since ggen installed it
/// (a deleted file is no loss: a reinstall brings it back).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LocalChanges {
    pub modified: Vec<String>,
    pub added: Vec<String>,
}

impl LocalChanges {
    pub fn is_empty(&self) -> bool {
        self.modified.is_empty() && self.added.is_empty()
    }

    /// `modified a, b; added c and 2 more`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (files, what) in [(&self.modified, "modified"), (&self.added, "added")] {
            if !files.is_empty() {
                parts.push(format!("{what} {}", cut_list(files, 3)));
            }
        }
        parts.join("; ")
    }
}

pub fn local_changes(root: &Path, locked: &LockedPackage) -> Result<LocalChanges> {
    let check = check(root, locked)?;
    Ok(LocalChanges {
        modified: check.modified,
        added: check.extra,
    })
}

/// `a, b, c and 4 more` (the CLI makes the user's file names terminal-safe).
fn cut_list(items: &[String], shown: usize) -> String {
    let mut text = items
        .iter()
        .take(shown)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > shown {
        text.push_str(&format!(" and {} more", items.len() - shown));
    }
    text
}
