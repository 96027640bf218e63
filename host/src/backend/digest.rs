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
    let root = cap_std::fs::Dir::open_ambient_dir(dir, cap_std::ambient_authority())?;
    let mut out = Tree::default();
    walk(&root, "", &mut out)?;
    Ok(out)
}

/// Through directory handles, not paths: install unpacks the same way, so
/// a tree whose full paths pass PATH_MAX (under a long --target) can be
/// verified too (paths failed with "File name too long").
fn walk(dir: &cap_std::fs::Dir, prefix: &str, out: &mut Tree) -> io::Result<()> {
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
            walk(&entry.open_dir()?, &rel, out)?;
        } else if kind.is_file() {
            let (digest, size) = reader(entry.open()?.into_std())?;
            out.bytes += size;
            out.files.insert(rel, digest);
        } else {
            out.files.insert(rel, NOT_A_REGULAR_FILE.into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
