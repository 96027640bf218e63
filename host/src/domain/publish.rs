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
    /// The files packed, by their path in the archive, sorted.
    pub contents: Vec<String>,
    pub dry_run: bool,
    /// True when an existing version was overwritten (--force).
    pub replaced: bool,
}

/// A package directory checked for publishing: its manifest and the files
/// it packs. Checked before the registry is opened, so that a bad package
/// leaves nothing behind (no registry created, no plugin compiled).
#[derive(Debug)]
pub struct Prepared {
    manifest: Manifest,
    files: Vec<archive::PackFile>,
}

/// Validate `dir`: its package.json, what it packs, the hooks it declares.
pub fn prepare(dir: &Path) -> Result<Prepared> {
    if !dir.exists() {
        return Err(MarketplaceError::Validation(format!(
            "{} does not exist; give the package's directory",
            dir.display()
        )));
    }
    if !dir.is_dir() {
        return Err(MarketplaceError::Validation(format!(
            "{} is not a directory; give the directory that holds package.json",
            dir.display()
        )));
    }
    let manifest = manifest::load(dir)?;
    let files = archive::files(dir).map_err(MarketplaceError::Validation)?;
    let packed_names: Vec<&str> = files.iter().map(|(rel, _)| rel.as_str()).collect();
    super::hooks::check_declared(
        dir,
        &manifest.hooks,
        &packed_names,
        &crate::backend::plugin::builtin_hook_names(),
    )
    .map_err(|e| {
        MarketplaceError::Validation(format!(
            "{}: {e}",
            dir.join(manifest::MANIFEST_FILE).display()
        ))
    })?;
    Ok(Prepared { manifest, files })
}

/// Pack a prepared package deterministically and hand it to the registry.
/// `lock` serialises writers of the registry and is taken only for the write.
pub fn publish<L>(
    registry: &mut dyn Registry,
    prepared: &Prepared,
    options: &PublishOptions,
    lock: impl FnOnce() -> Result<L>,
) -> Result<PublishReport> {
    let Prepared { manifest, files } = prepared;
    // Checked before packing: a refusal should not wait for a large package.
    let _guard = if options.dry_run { None } else { Some(lock()?) };
    let exists = check_version_is_new(registry, &manifest.name, &manifest.version, options.force)?;

    let mut tarball = tempfile::tempfile()
        .map_err(|e| MarketplaceError::storage("cannot create a temporary file", e))?;
    let packed = archive::pack(files, &mut tarball).map_err(MarketplaceError::Validation)?;
    tarball
        .rewind()
        .map_err(|e| MarketplaceError::storage("temporary file", e))?;

    let meta = version_record(manifest, &packed.checksum, packed.size, &now_rfc3339());
    let published_manifest = published_manifest(manifest, &meta);
    if !options.dry_run {
        registry.publish(&meta, &published_manifest, Box::new(tarball), options.force)?;
    }
    Ok(PublishReport {
        name: meta.name,
        version: meta.version,
        checksum: meta.checksum,
        size: meta.size,
        files: packed.files,
        contents: files.iter().map(|(rel, _)| rel.clone()).collect(),
        dry_run: options.dry_run,
        replaced: exists,
    })
}

/// Whether `name@version` is already published (an error unless `force`).
/// A version that differs from a published one only in build metadata is
/// refused even with `force`: comparisons ignore build metadata, so
/// `1.0.0+b` would be indistinguishable from `1.0.0` to every requirement.
fn check_version_is_new(
    registry: &mut dyn Registry,
    name: &str,
    version: &semver::Version,
    force: bool,
) -> Result<bool> {
    let published = match registry.list_versions(name) {
        Ok(versions) => versions,
        Err(MarketplaceError::NotFound(_)) => Vec::new(),
        Err(e) => return Err(e),
    };
    let text = version.to_string();
    for other in &published {
        let Ok(parsed) = semver::Version::parse(&other.version) else {
            continue;
        };
        if other.version == text {
            if !force {
                return Err(MarketplaceError::AlreadyExists(format!(
                    "{name}@{text} is already published; bump \"version\" in package.json or use --force to replace it"
                )));
            }
            return Ok(true);
        }
        if parsed.cmp_precedence(version).is_eq() {
            return Err(MarketplaceError::AlreadyExists(format!(
                "{name}@{text} differs from the published {} only in build metadata, which version requirements ignore; choose another version",
                other.version
            )));
        }
    }
    Ok(false)
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
    // As read (`null` is no text): a rebuild of a lost index reads these.
    raw.insert("title".into(), Value::String(meta.title.clone()));
    raw.insert(
        "description".into(),
        Value::String(meta.description.clone()),
    );
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
