//! Careful unpacking of package archives (as cargo's `sources/registry` does):
//! every entry is validated before anything is written, and everything is
//! written through a capability handle (`cap_std::fs::Dir`) on the staging
//! directory, so even a missed check cannot reach outside it.
//!
//! Refused: paths that are absolute, contain `..`, `.`, empty components or
//! backslashes, are not UTF-8 or are too long; symlinks, hard links, devices,
//! FIFOs and sparse files; the same path twice, or a file where a directory
//! is needed; more entries, more extracted bytes or more decompressed bytes
//! (headers included, so PAX and long-name bombs too) than the limits; and
//! truncated or corrupt gzip or tar data (the gzip trailer is always checked).
//!
//! On error the destination may hold part of the archive: callers unpack into
//! a staging directory and remove it.

use std::cell::Cell;
use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read, Write};
use std::rc::Rc;

use cap_std::fs::{Dir, OpenOptions};
use flate2::read::GzDecoder;
use tar::EntryType;

use super::digest::HashingWriter;

#[derive(Debug, Clone, Copy)]
pub struct UnpackLimits {
    /// Entries of any kind.
    pub max_entries: u64,
    /// Bytes of file content written.
    pub max_bytes: u64,
    /// Bytes of one entry's path.
    pub max_path: usize,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_bytes: 1 << 30,
            max_path: 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("archive entry `{path}` {reason}")]
    Hostile { path: String, reason: String },
    #[error("archive is corrupt or truncated: {0}")]
    Corrupt(String),
    #[error("archive exceeds the limit of {0}")]
    TooLarge(String),
    #[error("cannot write `{path}` while unpacking: {source}")]
    Write { path: String, source: io::Error },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unpacked {
    pub files: u64,
    pub bytes: u64,
    /// Every file written, path → `sha256-<hex>` of its content.
    pub digests: BTreeMap<String, String>,
}

/// Longest path component most filesystems accept.
const MAX_COMPONENT: usize = 255;

/// Largest PAX or GNU long-name entry accepted: the tar crate reads those
/// into memory whole, so they are checked in a raw pass before unpacking.
pub const MAX_METADATA_ENTRY: u64 = 64 * 1024;

/// A first, raw pass over the archive (nothing written): refuses metadata
/// entries (PAX headers, GNU long names and links) larger than
/// [`MAX_METADATA_ENTRY`] before [`unpack`] would buffer them.
pub fn check_metadata(archive: impl Read) -> Result<(), UnpackError> {
    let mut tar = tar::Archive::new(GzDecoder::new(archive));
    let entries = tar.entries().map_err(|e| corrupt(e, None))?.raw(true);
    for entry in entries {
        let entry = entry.map_err(|e| corrupt(e, None))?;
        let kind = entry.header().entry_type();
        let metadata = matches!(
            kind,
            EntryType::XHeader
                | EntryType::XGlobalHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        );
        if metadata && entry.header().entry_size().unwrap_or(u64::MAX) > MAX_METADATA_ENTRY {
            return Err(UnpackError::TooLarge(format!(
                "{MAX_METADATA_ENTRY} bytes in one PAX or long-name entry"
            )));
        }
    }
    Ok(())
}

/// Unpack the tar.gz read from `archive` into `dest`.
pub fn unpack(
    archive: impl Read,
    dest: &Dir,
    limits: &UnpackLimits,
) -> Result<Unpacked, UnpackError> {
    // Everything tar reads, headers and padding included, counts against one
    // budget, which also bounds what the tar crate buffers for PAX headers.
    let budget = limits
        .max_bytes
        .saturating_add(limits.max_entries.saturating_mul(3 * 512))
        .saturating_add(1 << 20);
    let exceeded = Rc::new(Cell::new(false));
    let decoded = Budget {
        inner: GzDecoder::new(archive),
        left: budget,
        exceeded: exceeded.clone(),
    };
    let mut tar = tar::Archive::new(decoded);
    // tar wraps reader errors, so the budget reports through this flag.
    let corrupt = |e: io::Error, path: Option<&str>| {
        if exceeded.get() {
            UnpackError::TooLarge(format!("{budget} decompressed bytes"))
        } else {
            corrupt(e, path)
        }
    };
    let mut seen_files: HashSet<String> = HashSet::new();
    let mut seen_dirs: HashSet<String> = HashSet::new();
    let mut done = Unpacked::default();
    let mut entries_seen = 0u64;

    let entries = tar.entries().map_err(|e| corrupt(e, None))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(e, None))?;
        entries_seen += 1;
        if entries_seen > limits.max_entries {
            return Err(UnpackError::TooLarge(format!(
                "{} entries",
                limits.max_entries
            )));
        }
        let path = checked_path(&entry.path_bytes(), limits)?;
        let hostile = |reason: &str| UnpackError::Hostile {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        let kind = entry.header().entry_type();
        if path.is_empty() {
            // The archive's own root (`./`): nothing to create.
            if kind == EntryType::Directory {
                continue;
            }
            return Err(UnpackError::Hostile {
                path: ".".into(),
                reason: "is a file without a name".into(),
            });
        }
        match kind {
            EntryType::Regular | EntryType::Continuous => {}
            EntryType::Directory => {
                if seen_files.contains(&path) {
                    return Err(hostile("is both a file and a directory"));
                }
                ancestors_are_not_files(&path, &seen_files)
                    .map_err(|a| hostile(&format!("is inside `{a}`, which is a file")))?;
                seen_dirs.insert(path.clone());
                dest.create_dir_all(&path)
                    .map_err(|e| write_error(&path, e))?;
                continue;
            }
            EntryType::XGlobalHeader => continue,
            EntryType::Symlink => {
                return Err(hostile(
                    "is a symbolic link; packages may contain only files and directories",
                ));
            }
            EntryType::Link => {
                return Err(hostile(
                    "is a hard link; packages may contain only files and directories",
                ));
            }
            EntryType::Char | EntryType::Block => return Err(hostile("is a device file")),
            EntryType::Fifo => return Err(hostile("is a FIFO")),
            EntryType::GNUSparse => return Err(hostile("is a sparse file")),
            other => return Err(hostile(&format!("has unsupported type {other:?}"))),
        }
        if !seen_files.insert(path.clone()) {
            return Err(hostile("appears twice in the archive"));
        }
        if seen_dirs.contains(&path) {
            return Err(hostile("is both a file and a directory"));
        }
        ancestors_are_not_files(&path, &seen_files)
            .map_err(|a| hostile(&format!("is inside `{a}`, which is a file")))?;

        if let Some((parent, _)) = path.rsplit_once('/') {
            dest.create_dir_all(parent)
                .map_err(|e| write_error(&path, e))?;
        }
        let executable = entry
            .header()
            .mode()
            .map(|m| m & 0o111 != 0)
            .unwrap_or(false);
        let file = dest
            .open_with(&path, OpenOptions::new().write(true).create_new(true))
            .map_err(|e| write_error(&path, e))?;
        let mut file = HashingWriter::new(file);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = entry.read(&mut buf).map_err(|e| corrupt(e, Some(&path)))?;
            if n == 0 {
                break;
            }
            done.bytes += n as u64;
            if done.bytes > limits.max_bytes {
                return Err(UnpackError::TooLarge(format!(
                    "{} bytes of content",
                    limits.max_bytes
                )));
            }
            file.write_all(&buf[..n])
                .map_err(|e| write_error(&path, e))?;
        }
        let (file, digest, _) = file.finish();
        set_mode(&file, executable).map_err(|e| write_error(&path, e))?;
        done.digests.insert(path.clone(), digest);
        done.files += 1;
    }

    // Read to the end of the gzip stream so its CRC and length are checked
    // even when tar stopped at its end-of-archive marker.
    let mut rest = tar.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| corrupt(e, None))?;
    Ok(done)
}

/// A path as written to disk: relative, `/`-separated, normal components only.
pub(crate) fn checked_path(raw: &[u8], limits: &UnpackLimits) -> Result<String, UnpackError> {
    let shown = String::from_utf8_lossy(raw).into_owned();
    let hostile = |reason: &str| UnpackError::Hostile {
        path: shown.clone(),
        reason: reason.to_owned(),
    };
    let text = std::str::from_utf8(raw).map_err(|_| hostile("has a name that is not UTF-8"))?;
    if text.len() > limits.max_path {
        return Err(hostile(&format!(
            "has a path longer than {} bytes",
            limits.max_path
        )));
    }
    if text.starts_with('/') {
        return Err(hostile("has an absolute path"));
    }
    if text.contains('\\') || text.contains('\0') || text.contains(':') {
        return Err(hostile("has a path with `\\`, `:` or NUL"));
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            // `./a` and `a//b` are how other tools write `a` and `a/b`.
            "" | "." => continue,
            ".." => return Err(hostile("has a `..` path component")),
            p if p.len() > MAX_COMPONENT => {
                return Err(hostile(&format!(
                    "has a path component longer than {MAX_COMPONENT} bytes"
                )));
            }
            p if p.chars().any(char::is_control) => {
                return Err(hostile("has control characters in its path"));
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

fn ancestors_are_not_files(path: &str, files: &HashSet<String>) -> Result<(), String> {
    let mut end = 0;
    while let Some(i) = path[end..].find('/') {
        let ancestor = &path[..end + i];
        if files.contains(ancestor) {
            return Err(ancestor.to_owned());
        }
        end += i + 1;
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(file: &cap_std::fs::File, executable: bool) -> io::Result<()> {
    use cap_std::fs::PermissionsExt;
    file.set_permissions(cap_std::fs::Permissions::from_mode(if executable {
        0o755
    } else {
        0o644
    }))
}

#[cfg(not(unix))]
fn set_mode(_: &cap_std::fs::File, _: bool) -> io::Result<()> {
    Ok(())
}

fn corrupt(e: io::Error, path: Option<&str>) -> UnpackError {
    match path {
        Some(p) => UnpackError::Corrupt(format!("{e} (in `{p}`)")),
        None => UnpackError::Corrupt(e.to_string()),
    }
}

fn write_error(path: &str, source: io::Error) -> UnpackError {
    UnpackError::Write {
        path: path.to_owned(),
        source,
    }
}

/// Counts decompressed bytes; past the budget it reports end of data and
/// remembers why, so a bomb stops early instead of filling memory or disk.
struct Budget<R> {
    inner: R,
    left: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Probe one byte: real data past the budget is a bomb, EOF is fine.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? > 0 {
                self.exceeded.set(true);
                return Err(io::Error::other("decompressed size exceeds the limit"));
            }
            return Ok(0);
        }
        let max = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}
