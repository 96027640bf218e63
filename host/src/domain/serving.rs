//! The verified tarball copies a node serves, `<serve dir>/<sha256 hex>.tar.gz`:
//! exported from the local registry and checked before they are served
//! (receivers penalise a node that serves damaged bytes).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::progress::Silent;
use super::{MarketplaceError, PackageVersion, Query, Registry, Result};
use crate::backend::{MAX_TARBALL, digest};

/// Put a verified copy of `meta`'s tarball where the node serves it from
/// (`<serve_dir>/<sha256 hex>.tar.gz`), unless it is there already.
pub fn export_tarball(
    registry: &mut dyn Registry,
    meta: &PackageVersion,
    serve_dir: &Path,
) -> Result<PathBuf> {
    let hex = meta
        .checksum
        .strip_prefix(digest::PREFIX)
        .filter(|_| digest::is_checksum(&meta.checksum))
        .ok_or_else(|| {
            MarketplaceError::Security(format!("{} has a malformed checksum", meta.name))
        })?;
    let path = serve_dir.join(format!("{hex}.tar.gz"));
    // Checked, not trusted: a damaged copy was served (and its receivers
    // penalised this node) until someone deleted it by hand.
    match digest::file(&path) {
        Ok((actual, _)) if actual == meta.checksum => return Ok(path),
        Ok(_) => tracing::warn!(
            "the copy of {}@{} this node serves was damaged; serving a fresh one",
            meta.name,
            meta.version
        ),
        Err(_) => {}
    }
    let fail = |e: std::io::Error| {
        MarketplaceError::storage(format!("cannot write {}", path.display()), e)
    };
    std::fs::create_dir_all(serve_dir).map_err(fail)?;
    let tmp = (tempfile::Builder::new().prefix(PARTIAL))
        .tempfile_in(serve_dir)
        .map_err(fail)?;
    let handle = tmp.as_file().try_clone().map_err(fail)?;
    super::fetch::verify_into(registry, meta, handle, MAX_TARBALL, &Silent)?;
    tmp.persist(&path).map_err(|e| fail(e.error))?;
    Ok(path)
}

/// A copy being exported (its name until it is complete and verified).
const PARTIAL: &str = ".partial-";

/// The checksums of the copies in `serve_dir` other than `newest`'s whose
/// bytes match their name: tarballs this node served before, still wanted
/// by whoever pinned them in a lockfile. A damaged copy is exported afresh
/// when the registry (opened only then) still holds those bytes, and
/// deleted otherwise.
pub fn earlier_copies(
    serve_dir: &Path,
    newest: &HashSet<String>,
    open_registry: impl FnOnce() -> Result<Box<dyn Registry>>,
) -> Vec<String> {
    // A killed export's file; a young one may be another process's export.
    crate::backend::atomic::remove_abandoned(serve_dir, PARTIAL, "");
    let Ok(entries) = std::fs::read_dir(serve_dir) else {
        return Vec::new();
    };
    let (mut copies, mut damaged) = (Vec::new(), HashSet::new());
    for entry in entries.flatten() {
        let name = entry.file_name();
        // A checksum is lowercase hex: the node opens the lowercase name, so
        // another spelling would pass a digest check and then not be served.
        let Some(checksum) = (name.to_str())
            .and_then(|n| n.strip_suffix(".tar.gz"))
            .map(|hex| format!("{}{hex}", digest::PREFIX))
            .filter(|c| digest::is_checksum(c))
        else {
            continue;
        };
        if newest.contains(&checksum) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        match digest::file(&entry.path()) {
            Ok((actual, _)) if actual == checksum => copies.push(checksum),
            Ok(_) => {
                tracing::warn!("deleting {}: damaged", entry.path().display());
                let _ = std::fs::remove_file(entry.path());
                damaged.insert(checksum);
            }
            Err(e) => tracing::warn!("not serving {}: {e}", entry.path().display()),
        }
    }
    if !damaged.is_empty() {
        match open_registry().and_then(|mut r| restore(r.as_mut(), serve_dir, &damaged)) {
            Ok(restored) => copies.extend(restored),
            Err(e) => tracing::warn!("cannot restore damaged copies from the registry: {e}"),
        }
    }
    copies
}

/// Export again the versions of the registry whose checksum is in `wanted`;
/// their checksums.
fn restore(
    registry: &mut dyn Registry,
    serve_dir: &Path,
    wanted: &HashSet<String>,
) -> Result<Vec<String>> {
    let mut restored = Vec::new();
    for hit in registry.search(&Query::everything())?.hits {
        for version in registry.list_versions(&hit.name)? {
            if !wanted.contains(&version.checksum) {
                continue;
            }
            match export_tarball(registry, &version, serve_dir) {
                Ok(_) => {
                    tracing::info!("restored the copy of {}@{}", version.name, version.version);
                    restored.push(version.checksum);
                }
                Err(e) => tracing::warn!("not serving {}@{}: {e}", version.name, version.version),
            }
        }
    }
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checksum(bytes: &[u8]) -> String {
        let mut w = digest::HashingWriter::new(std::io::sink());
        std::io::Write::write_all(&mut w, bytes).unwrap();
        w.finish().1
    }

    #[test]
    fn earlier_copies_are_the_intact_ones_not_newest() {
        let dir = tempfile::tempdir().unwrap();
        let put = |bytes: &[u8], named: &str| {
            let hex = named.strip_prefix(digest::PREFIX).unwrap();
            let path = dir.path().join(format!("{hex}.tar.gz"));
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let (old, newest) = (checksum(b"old"), checksum(b"newest"));
        put(b"old", &old);
        put(b"newest", &newest);
        let damaged = put(b"flipped", &checksum(b"original"));
        std::fs::write(dir.path().join("notes.txt"), "not a copy").unwrap();
        let upper = checksum(b"upper").to_uppercase().replace("SHA256-", "");
        std::fs::write(dir.path().join(format!("{upper}.tar.gz")), b"upper").unwrap();

        // The registry cannot restore the damaged copy: it is deleted.
        let no_registry = || Err(MarketplaceError::NotFound("no registry here".into()));
        let found = earlier_copies(dir.path(), &HashSet::from([newest]), no_registry);
        assert_eq!(found, [old]);
        assert!(!damaged.exists(), "a damaged copy is deleted");
        assert!(dir.path().join("notes.txt").exists());
        // A killed export's file goes once it is old; a fresh one may be
        // another process's export in progress.
        let (old_part, new_part) = (dir.path().join(".partial-a"), dir.path().join(".partial-b"));
        std::fs::write(&old_part, b"half").unwrap();
        std::fs::write(&new_part, b"half").unwrap();
        crate::backend::atomic::abandon(&old_part);
        let newest = HashSet::from([checksum(b"newest")]);
        earlier_copies(dir.path(), &newest, || unreachable!());
        assert!(!old_part.exists() && new_part.exists());
        let none = dir.path().join("none");
        assert!(earlier_copies(&none, &HashSet::new(), || unreachable!()).is_empty());
    }
}
