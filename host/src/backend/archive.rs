//! Deterministic package archives: identical files give identical tar.gz bytes
//! (sorted entries; fixed mtime, owner and modes; no gzip timestamp).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};

use super::digest::HashingWriter;
use super::unpack::{UnpackError, UnpackLimits, checked_path};

/// What `pack` produced.
#[derive(Debug, Clone)]
pub struct Packed {
    /// `sha256-<hex>` of the archive bytes.
    pub checksum: String,
    pub size: u64,
    pub files: usize,
}

/// Never packed, at any depth: a repository's `.git` directory, or a
/// submodule's `.git` file (as npm leaves them out).
const SKIPPED: &[&str] = &[".git"];

/// Whether a file at `rel` (relative to the package directory) would be left
/// out of the archive.
pub fn never_packed(rel: &Path) -> bool {
    rel.components()
        .any(|c| SKIPPED.iter().any(|s| c.as_os_str() == *s))
}

/// Pack every regular file under `dir` into `out` as a deterministic tar.gz.
/// Symlinks and special files are refused: what is published is exactly what
/// an installer will extract.
pub fn pack(dir: &Path, out: &mut File) -> Result<Packed, String> {
    let mut files = Vec::new();
    collect(dir, Path::new(""), &mut files)?;
    files.sort();
    installable(&files)?;

    let gz = GzBuilder::new()
        .mtime(0)
        .write(HashingWriter::new(out), Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (rel, path) in &files {
        let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(meta.len());
        header.set_mode(if is_executable(&meta) { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("").ok();
        header.set_groupname("").ok();
        tar.append_data(
            &mut header,
            rel,
            io::BufReader::new(file).take_exact(meta.len()),
        )
        .map_err(|e| format!("cannot pack {rel}: {e}"))?;
    }
    let gz = tar
        .into_inner()
        .map_err(|e| format!("cannot finish the archive: {e}"))?;
    let (out, checksum, size) = gz
        .finish()
        .map_err(|e| format!("cannot finish the archive: {e}"))?
        .finish();
    out.flush()
        .map_err(|e| format!("cannot write the archive: {e}"))?;
    Ok(Packed {
        checksum,
        size,
        files: files.len(),
    })
}

/// What is published must be installable: the installer's checks (with its
/// default limits) applied before anything is stored.
fn installable(files: &[(String, PathBuf)]) -> Result<(), String> {
    let limits = UnpackLimits::default();
    if files.len() as u64 > limits.max_entries {
        return Err(format!(
            "the package has {} files; installs take at most {}",
            files.len(),
            limits.max_entries
        ));
    }
    let mut bytes = 0u64;
    for (rel, path) in files {
        checked_path(rel.as_bytes(), &limits).map_err(|e| match e {
            UnpackError::Hostile { reason, .. } => format!(
                "`{}` {reason}, which installs refuse; rename it",
                super::excerpt(&rel.escape_debug().to_string(), 80)
            ),
            other => other.to_string(),
        })?;
        bytes += std::fs::metadata(path).map_or(0, |m| m.len());
    }
    if bytes > limits.max_bytes {
        return Err(format!(
            "the package holds {bytes} bytes; installs take at most {}",
            limits.max_bytes
        ));
    }
    Ok(())
}

fn collect(root: &Path, rel: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), String> {
    let dir = root.join(rel);
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let name = entry.file_name();
        let Some(name_str) = name.to_str() else {
            return Err(format!(
                "{} has a file name that is not UTF-8",
                entry.path().display()
            ));
        };
        if SKIPPED.contains(&name_str) {
            continue;
        }
        let child = rel.join(name_str);
        let kind = entry
            .file_type()
            .map_err(|e| format!("cannot stat {}: {e}", entry.path().display()))?;
        if kind.is_symlink() {
            return Err(format!(
                "{} is a symbolic link; packages may contain only regular files",
                entry.path().display()
            ));
        } else if kind.is_dir() {
            collect(root, &child, out)?;
        } else if kind.is_file() {
            let key = child
                .components()
                .map(|c| c.as_os_str().to_str().unwrap())
                .collect::<Vec<_>>()
                .join("/");
            out.push((key, entry.path()));
        } else {
            return Err(format!(
                "{} is not a regular file; packages may contain only regular files",
                entry.path().display()
            ));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

/// Reads exactly `len` bytes, failing if the file changed size while packing.
trait TakeExact: io::Read + Sized {
    fn take_exact(self, len: u64) -> ExactReader<Self> {
        ExactReader {
            inner: self,
            left: len,
        }
    }
}
impl<R: io::Read> TakeExact for R {}

struct ExactReader<R> {
    inner: R,
    left: u64,
}

impl<R: io::Read> io::Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being packed",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};

    /// The entry names of a packed archive, in order.
    fn entry_names(bytes: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    fn pack_to_vec(dir: &Path) -> (Packed, Vec<u8>) {
        let mut f = tempfile::tempfile().unwrap();
        let packed = pack(dir, &mut f).unwrap();
        f.rewind().unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        (packed, bytes)
    }

    #[test]
    fn identical_files_give_identical_bytes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        // Same content, created in a different order at different times.
        std::fs::create_dir_all(a.path().join("src")).unwrap();
        std::fs::write(a.path().join("src/z.txt"), "z").unwrap();
        std::fs::write(a.path().join("a.txt"), "a").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(b.path().join("a.txt"), "a").unwrap();
        std::fs::create_dir_all(b.path().join("src")).unwrap();
        std::fs::write(b.path().join("src/z.txt"), "z").unwrap();
        let (pa, ba) = pack_to_vec(a.path());
        let (pb, bb) = pack_to_vec(b.path());
        assert_eq!(ba, bb);
        assert_eq!(pa.checksum, pb.checksum);
        assert_eq!(pa.files, 2);
        assert_eq!(pa.size, ba.len() as u64);

        assert_eq!(entry_names(&ba), ["a.txt", "src/z.txt"]);
    }

    #[test]
    fn git_metadata_is_left_out_at_any_depth() {
        let d = tempfile::tempdir().unwrap();
        for dir in [".git/objects", "sub/.git", "src"] {
            std::fs::create_dir_all(d.path().join(dir)).unwrap();
        }
        std::fs::write(d.path().join(".git/HEAD"), "ref").unwrap();
        std::fs::write(d.path().join("sub/.git/config"), "x").unwrap();
        std::fs::write(d.path().join("src/.git"), "gitdir: ../.git/modules/src").unwrap();
        std::fs::write(d.path().join("src/lib.txt"), "kept").unwrap();
        std::fs::write(d.path().join(".gitignore"), "kept too").unwrap();
        let (packed, bytes) = pack_to_vec(d.path());
        assert_eq!(entry_names(&bytes), [".gitignore", "src/lib.txt"]);
        assert_eq!(packed.files, 2);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_refused() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("link")).unwrap();
        let mut f = tempfile::tempfile().unwrap();
        assert!(
            pack(d.path(), &mut f)
                .unwrap_err()
                .contains("symbolic link")
        );
    }
}
