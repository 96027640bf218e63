//! Fetching a tarball out of a registry and verifying it (seeds §3.3 step 4,
//! §8.3): bytes are streamed into a temporary file while being hashed, and
//! nothing is handed on unless the sha256 matches the registry's metadata.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;

use super::progress::{Progress, Reading};
use super::{MarketplaceError, PackageVersion, Registry, Result};
use crate::backend::digest::{HashingWriter, is_checksum};

/// A verified tarball, rewound, in a temporary file that disappears when dropped.
#[derive(Debug)]
pub struct Verified {
    pub file: File,
    pub size: u64,
}

/// Stream `meta`'s tarball from `registry` into `tmp_dir`, verifying its
/// checksum (and its size when the metadata states one). At most `max_size`
/// bytes are accepted.
pub fn fetch_verified(
    registry: &mut dyn Registry,
    meta: &PackageVersion,
    tmp_dir: &Path,
    max_size: u64,
    progress: &dyn Progress,
) -> Result<Verified> {
    let id = format!("{}@{}", meta.name, meta.version);
    super::manifest::validate_name(&meta.name).map_err(MarketplaceError::Security)?;
    if !is_checksum(&meta.checksum) {
        return Err(MarketplaceError::Security(format!(
            "the registry's checksum for {id} is malformed (`{}`); refusing to install unverifiable bytes",
            meta.checksum
        )));
    }
    std::fs::create_dir_all(tmp_dir).map_err(|e| {
        MarketplaceError::storage(format!("cannot create {}", tmp_dir.display()), e)
    })?;
    let file = tempfile::tempfile_in(tmp_dir)
        .map_err(|e| MarketplaceError::storage("cannot create a temporary file", e))?;
    verify_into(registry, meta, file, max_size, progress)
}

/// [`fetch_verified`] into a file the caller provides.
pub fn verify_into(
    registry: &mut dyn Registry,
    meta: &PackageVersion,
    file: File,
    max_size: u64,
    progress: &dyn Progress,
) -> Result<Verified> {
    let id = format!("{}@{}", meta.name, meta.version);
    let mut sink = HashingWriter::new(file);
    progress.start(&format!("fetch  {id}"), meta.size);
    let stream = registry
        .open_tarball(&meta.name, &meta.version)?
        .take(max_size + 1);
    let mut stream = Reading {
        inner: stream,
        progress,
    };
    let copied = io::copy(&mut stream, &mut sink);
    drop(stream);
    progress.finish();
    copied.map_err(|e| fetch_failed(&id, e))?;
    let (mut file, actual, size) = sink.finish();
    if size > max_size {
        return Err(MarketplaceError::Security(format!(
            "{id} is larger than the {max_size}-byte limit"
        )));
    }
    if actual != meta.checksum {
        return Err(mismatch(registry, meta, &id, &actual));
    }
    if meta.size != 0 && size != meta.size {
        return Err(MarketplaceError::Security(format!(
            "{id} is {size} bytes but the registry says {}",
            meta.size
        )));
    }
    file.rewind()
        .map_err(|e| MarketplaceError::storage("temporary file", e))?;
    Ok(Verified { file, size })
}

/// The error for bytes that do not hash to `meta.checksum`. A `publish
/// --force` of the same version between reading the metadata and opening the
/// tarball is told apart by asking the registry again: it then vouches for
/// exactly the bytes received, and running the command again is all it takes.
fn mismatch(
    registry: &mut dyn Registry,
    meta: &PackageVersion,
    id: &str,
    actual: &str,
) -> MarketplaceError {
    match registry.get_package_version(&meta.name, &meta.version) {
        Ok(now) if now.checksum != meta.checksum && now.checksum == actual => {
            MarketplaceError::Changed(format!(
                "{id} was republished while it was being fetched (its checksum changed from {} to {}); run the command again",
                meta.checksum, now.checksum
            ))
        }
        _ => MarketplaceError::Security(format!(
            "checksum mismatch for {id}: expected {}, got {actual}; the tarball was altered or corrupted",
            meta.checksum
        )),
    }
}

/// A failed copy, worded once: a registry's own error travels inside the
/// io::Error, already saying "storage error" or what the plugin did.
fn fetch_failed(id: &str, e: io::Error) -> MarketplaceError {
    let text = e.to_string();
    match e
        .into_inner()
        .map(|inner| inner.downcast::<MarketplaceError>())
    {
        Some(Ok(err)) => match *err {
            MarketplaceError::Storage(why) => {
                MarketplaceError::Storage(format!("fetching {id} failed: {why}"))
            }
            other => other,
        },
        _ => MarketplaceError::Storage(format!("fetching {id} failed: {text}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_error_inside_a_failed_copy_is_worded_once() {
        let storage = io::Error::other(MarketplaceError::Storage("plugin x: disk gone".into()));
        assert_eq!(
            fetch_failed("a@1.0.0", storage).to_string(),
            "storage error: fetching a@1.0.0 failed: plugin x: disk gone"
        );
        let trap = io::Error::other(MarketplaceError::Plugin(
            "plugin x ran past its 5s deadline".into(),
        ));
        assert_eq!(
            fetch_failed("a@1.0.0", trap).to_string(),
            "plugin x ran past its 5s deadline"
        );
        let cut = io::Error::new(io::ErrorKind::UnexpectedEof, "cut short");
        assert_eq!(
            fetch_failed("a@1.0.0", cut).to_string(),
            "storage error: fetching a@1.0.0 failed: cut short"
        );
    }
}
