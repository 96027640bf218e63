//! Publishing a package directory into a registry (seeds §4.2).

use std::io::Seek;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::manifest::{self, Manifest};
use super::{MarketplaceError, PackageVersion, Registry, Result};
use crate::backend::archive;

#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub dry_run: bool,
    pub force: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    pub name: String,
    pub version: String,
    pub checksum: String,
    pub size: u64,
    pub files: usize,
    pub dry_run: bool,
    /// True when an existing version was overwritten (--force).
    pub replaced: bool,
}

/// Validate `dir`, pack it deterministically and hand it to the registry.
/// `lock` serialises writers of the registry and is taken only for the write.
pub fn publish<L>(
    registry: &mut dyn Registry,
    dir: &Path,
    options: &PublishOptions,
    lock: impl FnOnce() -> Result<L>,
) -> Result<PublishReport> {
    if !dir.is_dir() {
        return Err(MarketplaceError::Validation(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let manifest = manifest::load(dir)?;
    for hook in &manifest.hooks {
        if !hook.starts_with(super::hooks::BUILTIN_PREFIX) && !dir.join(hook).is_file() {
            return Err(MarketplaceError::Validation(format!(
                "{}: post-install hook `{hook}` is not a file in the package; build it (cargo build --target wasm32-wasip2 --release) and copy it there",
                dir.join(manifest::MANIFEST_FILE).display()
            )));
        }
    }
    let mut tarball = tempfile::tempfile()
        .map_err(|e| MarketplaceError::storage("cannot create a temporary file", e))?;
    let packed = archive::pack(dir, &mut tarball).map_err(MarketplaceError::Validation)?;
    tarball
        .rewind()
        .map_err(|e| MarketplaceError::storage("temporary file", e))?;

    let meta = version_record(&manifest, &packed.checksum, packed.size, &now_rfc3339());
    let published_manifest = published_manifest(&manifest, &meta);

    let _guard = if options.dry_run { None } else { Some(lock()?) };
    let exists = match registry.get_package_version(&meta.name, &meta.version) {
        Ok(_) => true,
        Err(MarketplaceError::NotFound(_)) => false,
        Err(e) => return Err(e),
    };
    if exists && !options.force {
        return Err(MarketplaceError::AlreadyExists(format!(
            "{}@{} is already published; bump \"version\" in package.json or use --force to replace it",
            meta.name, meta.version
        )));
    }
    if !options.dry_run {
        registry.publish(&meta, &published_manifest, Box::new(tarball), options.force)?;
    }
    Ok(PublishReport {
        name: meta.name,
        version: meta.version,
        checksum: meta.checksum,
        size: meta.size,
        files: packed.files,
        dry_run: options.dry_run,
        replaced: exists,
    })
}

fn version_record(m: &Manifest, checksum: &str, size: u64, published_at: &str) -> PackageVersion {
    PackageVersion {
        name: m.name.clone(),
        version: m.version.to_string(),
        title: m.title.clone(),
        description: m.description.clone(),
        categories: m.categories.clone(),
        tags: m.tags.clone(),
        authors: m.authors.clone(),
        license: m.license.clone(),
        dependencies: m
            .dependencies
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
        checksum: checksum.to_owned(),
        published_at: published_at.to_owned(),
        size,
    }
}

/// The manifest as stored next to the tarball: the author's JSON (unknown
/// fields kept) plus what publishing established.
fn published_manifest(m: &Manifest, meta: &PackageVersion) -> String {
    let mut raw = m.raw.clone();
    raw.insert("title".into(), Value::String(meta.title.clone()));
    raw.insert("checksum".into(), Value::String(meta.checksum.clone()));
    raw.insert(
        "published_at".into(),
        Value::String(meta.published_at.clone()),
    );
    raw.insert("size".into(), Value::from(meta.size));
    serde_json::to_string_pretty(&Value::Object(raw)).expect("JSON values serialise")
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
