//! Checking installed packages against ggen.lock: every file re-hashed and
//! compared with the digest recorded at install time.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde::Serialize;

use super::installed;
use super::{MarketplaceError, Result};
use crate::backend::digest::HashingWriter;

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
}

impl PackageCheck {
    pub fn ok(&self) -> bool {
        self.modified.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub packages: Vec<PackageCheck>,
}

pub fn verify(root: &Path) -> Result<VerifyReport> {
    let lock = installed::read(root)?;
    let mut packages = Vec::new();
    for locked in &lock.packages {
        let dir = root.join(&locked.name);
        let mut on_disk = BTreeMap::new();
        if dir.is_dir() {
            hash_tree(&dir, "", &mut on_disk)?;
        }
        let mut check = PackageCheck {
            name: locked.name.clone(),
            version: locked.version.clone(),
            modified: Vec::new(),
            missing: Vec::new(),
            extra: Vec::new(),
        };
        for (path, digest) in &locked.files {
            match on_disk.remove(path) {
                None => check.missing.push(path.clone()),
                Some(actual) if &actual != digest => check.modified.push(path.clone()),
                Some(_) => {}
            }
        }
        check.extra = on_disk.into_keys().collect();
        packages.push(check);
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(VerifyReport {
        ok: packages.iter().all(PackageCheck::ok),
        packages,
    })
}

/// path → digest for every file under `dir`; symlinks and special files count
/// with a digest no real file can have, so they show up as modified or extra.
fn hash_tree(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) -> Result<()> {
    let read = fs::read_dir(dir)
        .map_err(|e| MarketplaceError::storage(format!("cannot list {}", dir.display()), e))?;
    for entry in read {
        let entry = entry
            .map_err(|e| MarketplaceError::storage(format!("cannot list {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry
            .file_type()
            .map_err(|e| MarketplaceError::storage(format!("cannot stat {rel}"), e))?;
        if kind.is_dir() {
            hash_tree(&entry.path(), &rel, out)?;
        } else if kind.is_file() {
            let mut file = fs::File::open(entry.path())
                .map_err(|e| MarketplaceError::storage(format!("cannot read {rel}"), e))?;
            let mut hasher = HashingWriter::new(io::sink());
            io::copy(&mut file, &mut hasher)
                .map_err(|e| MarketplaceError::storage(format!("cannot read {rel}"), e))?;
            out.insert(rel, hasher.finish().1);
        } else {
            out.insert(rel, "not-a-regular-file".into());
        }
    }
    Ok(())
}
