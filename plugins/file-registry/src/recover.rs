//! Rebuilding index.json from the per-version package.json files, after the
//! index was lost or corrupted.

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ggen_plugin_sdk::Error;
use sha2::{Digest, Sha256};

use crate::index::{IndexEntry, IndexFile, IndexPackage, tarball_path};
use crate::registry::{FileRegistry, INDEX_FILE, replacements};
use crate::warn;

/// index.json did not parse: keep it as a backup, rebuild, warn.
pub fn rebuild_corrupt(reg: &FileRegistry, why: &str) -> Result<IndexFile, Error> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // A name no earlier backup has (two corruptions within a second must not
    // overwrite the first one's copy).
    let backup = (1..)
        .map(|n| match n {
            1 => format!("{INDEX_FILE}.corrupt-{secs}"),
            n => format!("{INDEX_FILE}.corrupt-{secs}-{n}"),
        })
        .find(|name| fs::symlink_metadata(reg.root.join(name)).is_err())
        .expect("some backup name is free");
    match fs::rename(reg.index_path(), reg.root.join(&backup)) {
        Ok(()) => {}
        // Another process moved it aside first, and rebuilds.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return reg.load_index(),
        Err(e) => {
            return Err(Error::io(format!(
                "{INDEX_FILE} is corrupt ({why}) and could not be moved aside: {e}"
            )));
        }
    }
    let mut index = scan(reg)?;
    let versions: usize = index
        .iter()
        .filter_map(|(_, p)| p.ok())
        .map(|p| p.versions.len())
        .sum();
    // Said even when another process writes the new index first: this one
    // moved the corrupt file aside, and only it can say where to.
    warn(&format!(
        "registry {INDEX_FILE} was corrupt ({why}); kept it as {backup} and rebuilt the index from {versions} package.json file(s)"
    ));
    if !reg.save_new_index(&mut index)? {
        return reg.load_index();
    }
    Ok(index)
}

/// No index.json: rebuild from manifests if any exist, else an empty index
/// (nothing is written until the first publish).
pub fn rebuild_missing(reg: &FileRegistry) -> Result<IndexFile, Error> {
    let mut index = scan(reg)?;
    if !index.stored().is_empty() {
        if !reg.save_new_index(&mut index)? {
            // Written meanwhile (a publish): that one is newer than our scan.
            return reg.load_index();
        }
        warn(&format!(
            "registry had no {INDEX_FILE}; rebuilt it from the package.json files"
        ));
    }
    Ok(index)
}

/// Walk `<name>/<version>/package.json`.
fn scan(reg: &FileRegistry) -> Result<IndexFile, Error> {
    let mut index = IndexFile::default();
    let names = match fs::read_dir(&reg.root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(index),
        Err(e) => return Err(Error::io(format!("cannot list the registry: {e}"))),
    };
    let mut found = Vec::new();
    for name_dir in names.flatten() {
        let Ok(name) = name_dir.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || !name_dir.path().is_dir() {
            continue;
        }
        if let Some(package) = package_from_manifests(&reg.root, &name)? {
            found.push((name, package));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, package) in found {
        if let Some(newest) = package.versions.iter().map(|e| &e.published_at).max()
            && *newest > index.updated_at
        {
            index.updated_at = newest.clone();
        }
        index.set_package(&name, &package);
    }
    Ok(index)
}

/// One package's versions as its `<name>/<version>/package.json` files
/// describe them (None if it has none): for a lost or corrupt index, or an
/// index entry that does not parse.
pub fn package_from_manifests(root: &Path, name: &str) -> Result<Option<IndexPackage>, Error> {
    let Ok(versions) = fs::read_dir(root.join(name)) else {
        return Ok(None);
    };
    let mut package = IndexPackage {
        name: name.to_owned(),
        versions: Vec::new(),
    };
    for version_dir in versions.flatten() {
        let Ok(version) = version_dir.file_name().into_string() else {
            continue;
        };
        let manifest = version_dir.path().join("package.json");
        let bytes = match fs::read(&manifest) {
            Ok(bytes) => bytes,
            // Not a version directory (or one a publish is still making);
            // a link to nothing is named below.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && fs::symlink_metadata(&manifest).is_err() =>
            {
                continue;
            }
            Err(e) => {
                warn(&format!(
                    "skipping {name}/{version}: cannot read its package.json ({e})"
                ));
                continue;
            }
        };
        let Ok(mut entry) = serde_json::from_slice::<IndexEntry>(&bytes) else {
            warn(&format!(
                "skipping unreadable {name}/{version}/package.json"
            ));
            continue;
        };
        if entry.version != version || (!entry.name.is_empty() && entry.name != name) {
            warn(&format!(
                "skipping {name}/{version}/package.json: it names {}@{}",
                entry.name, entry.version
            ));
            continue;
        }
        entry.name.clear();
        entry.tarball = match interrupted_replacement(root, name, &version, &entry.checksum)? {
            Some(side) => side,
            None => tarball_path(name, &version),
        };
        let tarball = root.join(&entry.tarball);
        let Ok(meta) = fs::metadata(&tarball) else {
            warn(&format!(
                "skipping {name}@{version}: its tarball is missing"
            ));
            continue;
        };
        entry.size = meta.len();
        if entry.checksum.is_empty() {
            entry.checksum = sha256_file(&tarball)?;
        }
        package.versions.push(entry);
    }
    if package.versions.is_empty() {
        return Ok(None);
    }
    package.sort_newest_first();
    Ok(Some(package))
}

/// A `publish --force` killed after writing package.json but before
/// copying the new tarball into place left the bytes package.json names in
/// a side file (`<tarball>.replacing-*`): that file, when the usual one
/// holds other bytes. Side files are rare, so only then is anything hashed.
fn interrupted_replacement(
    root: &Path,
    name: &str,
    version: &str,
    checksum: &str,
) -> Result<Option<String>, Error> {
    let usual = tarball_path(name, version);
    let (dir, file_name) = usual.rsplit_once('/').expect("name/version/file");
    let sides = replacements(&root.join(dir), file_name);
    if checksum.is_empty()
        || sides.is_empty()
        || sha256_file(&root.join(&usual)).ok().as_deref() == Some(checksum)
    {
        return Ok(None);
    }
    // The newest first (named by the time they were made).
    Ok(sides
        .iter()
        .rev()
        .map(|side| format!("{dir}/{side}"))
        .find(|rel| sha256_file(&root.join(rel)).ok().as_deref() == Some(checksum)))
}

pub(crate) fn sha256_file(path: &std::path::Path) -> Result<String, Error> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(71);
    hex.push_str("sha256-");
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    Ok(hex)
}
