//! sha256 checksums in the marketplace's `sha256-<64 lowercase hex>` form.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

pub const PREFIX: &str = "sha256-";

/// Whether `text` is a well-formed checksum.
pub fn is_checksum(text: &str) -> bool {
    text.strip_prefix(PREFIX).is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Passes writes through while hashing and counting them.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The inner writer, the checksum and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            format!("{PREFIX}{}", hex::encode(self.hasher.finalize())),
            self.written,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The checksum and size of the file at `path`.
pub fn file(path: &Path) -> io::Result<(String, u64)> {
    reader(std::fs::File::open(path)?)
}

/// The checksum and size of what `from` yields.
fn reader(mut from: impl io::Read) -> io::Result<(String, u64)> {
    let mut writer = HashingWriter::new(io::sink());
    io::copy(&mut from, &mut writer)?;
    let (_, digest, size) = writer.finish();
    Ok((digest, size))
}

/// What stands in for the digest of a symlink or special file: no real
/// file hashes to it, so such entries always show up as changed.
pub const NOT_A_REGULAR_FILE: &str = "not-a-regular-file";

/// Every file under a directory: relative path (`/`-separated) → checksum.
#[derive(Debug, Default)]
pub struct Tree {
    pub files: BTreeMap<String, String>,
    /// Total size of the regular files.
    pub bytes: u64,
}

/// Hash every file under `dir`, never following symlinks.
pub fn tree(dir: &Path) -> io::Result<Tree> {
    tree_within(dir, u64::MAX, u64::MAX).map(|t| t.expect("no bound"))
}

/// Which bound a tree passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passed {
    Bytes,
    Entries,
}

/// [`tree`], or which bound it passed as soon as the files pass
/// `max_bytes` (by their sizes, before reading them) or `max_entries`
/// (files, links and other entries but directories): a sparse file of
/// terabytes, which costs a hook one byte to make, took hours to hash.
pub fn tree_within(
    dir: &Path,
    max_bytes: u64,
    max_entries: u64,
) -> io::Result<Result<Tree, Passed>> {
    let root = cap_std::fs::Dir::open_ambient_dir(dir, cap_std::ambient_authority())?;
    let mut out = Tree::default();
    let walked = walk(&root, "", &mut out, (max_bytes, max_entries))?;
    Ok(walked.map(|()| out))
}

/// Through directory handles, not paths: install unpacks the same way, so
/// a tree whose full paths pass PATH_MAX (under a long --target) can be
/// verified too (paths failed with "File name too long").
fn walk(
    dir: &cap_std::fs::Dir,
    prefix: &str,
    out: &mut Tree,
    max @ (max_bytes, max_entries): (u64, u64),
) -> io::Result<Result<(), Passed>> {
    for entry in dir.entries()? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if let Err(passed) = walk(&entry.open_dir()?, &rel, out, max)? {
                return Ok(Err(passed));
            }
            continue;
        }
        if out.files.len() as u64 >= max_entries {
            return Ok(Err(Passed::Entries));
        }
        if kind.is_file() {
            let file = entry.open()?.into_std();
            let left = max_bytes - out.bytes;
            if file.metadata()?.len() > left {
                return Ok(Err(Passed::Bytes));
            }
            // Read no further than allowed, should it grow meanwhile.
            let (digest, size) = reader(io::Read::take(file, left.saturating_add(1)))?;
            if size > left {
                return Ok(Err(Passed::Bytes));
            }
            out.bytes += size;
            out.files.insert(rel, digest);
        } else {
            out.files.insert(rel, NOT_A_REGULAR_FILE.into());
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_tree_stops_before_reading_past_its_bounds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "abc").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), "de").unwrap();
        let whole = tree_within(dir.path(), 5, 2).unwrap().expect("within");
        assert_eq!((whole.files.len(), whole.bytes), (2, 5));
        assert_eq!(whole.files, tree(dir.path()).unwrap().files);
        assert_eq!(
            tree_within(dir.path(), 4, 2).unwrap().err(),
            Some(Passed::Bytes)
        );
        assert_eq!(
            tree_within(dir.path(), 5, 1).unwrap().err(),
            Some(Passed::Entries)
        );
        // A terabyte that takes no room: refused by its size, not read
        // (reading it would take many minutes).
        let sparse = std::fs::File::create(dir.path().join("sub/sparse")).unwrap();
        sparse.set_len(1 << 40).unwrap();
        let passed = tree_within(dir.path(), (1 << 40) - 1, 10).unwrap().err();
        assert_eq!(passed, Some(Passed::Bytes));
    }

    #[test]
    fn checksums_are_recognised() {
        let (_, sum, n) = {
            let mut w = HashingWriter::new(Vec::new());
            w.write_all(b"abc").unwrap();
            w.finish()
        };
        assert_eq!(
            sum,
            "sha256-ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(n, 3);
        assert!(is_checksum(&sum));
        assert!(!is_checksum(
            "sha256-BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
        ));
        assert!(!is_checksum("sha256-abc"));
        assert!(!is_checksum(
            "md5-ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        ));
    }
}
