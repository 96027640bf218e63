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
const SKIPPED: &str = ".git";
/// Ignore files of our own, in gitignore syntax, applied after `.gitignore`.
pub const IGNORE_FILE: &str = ".ggenignore";
/// Packed whatever the ignore files say: installs need it.
const MANIFEST: &str = "package.json";

/// A file to pack: its path in the archive (`/`-separated) and on disk.
pub type PackFile = (String, PathBuf);

/// The files `dir` publishes, sorted by their path in the archive: every
/// regular file except `.git` (at any depth) and what `.gitignore` and
/// [`IGNORE_FILE`] files leave out, each for its directory and below, as
/// git reads them (the latter win: `!name` there takes back what
/// `.gitignore` leaves out). Only files inside `dir` count (no parent
/// directory's, no global excludes), so the same directory publishes the
/// same files anywhere. `package.json` is always in. Symlinks and special
/// files are refused: what is published is exactly what an installer will
/// extract.
pub fn files(dir: &Path) -> Result<Vec<PackFile>, String> {
    let walk = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .git_ignore(true)
        .require_git(false)
        .add_custom_ignore_filename(IGNORE_FILE)
        .filter_entry(|e| e.depth() == 0 || e.file_name() != SKIPPED)
        .build();
    let mut files = Vec::new();
    for entry in walk {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        if entry.depth() == 0 {
            continue;
        }
        let path = entry.path();
        let rel = path
            .strip_prefix(dir)
            .expect("the walk stays under its root");
        let key = (rel.components())
            .map(|c| c.as_os_str().to_str())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("{} has a file name that is not UTF-8", path.display()))?
            .join("/");
        let kind = entry
            .file_type()
            .ok_or_else(|| format!("cannot stat {}", path.display()))?;
        if kind.is_symlink() {
            return Err(format!(
                "{} is a symbolic link; packages may contain only regular files (or leave it out in {IGNORE_FILE})",
                path.display()
            ));
        } else if kind.is_file() {
            files.push((key, path.to_owned()));
        } else if !kind.is_dir() {
            return Err(format!(
                "{} is not a regular file; packages may contain only regular files (or leave it out in {IGNORE_FILE})",
                path.display()
            ));
        }
    }
    let manifest = dir.join(MANIFEST);
    // Never through a link, whatever the ignore files say.
    let regular = std::fs::symlink_metadata(&manifest).is_ok_and(|m| m.is_file());
    if regular && !files.iter().any(|(rel, _)| rel == MANIFEST) {
        files.push((MANIFEST.to_owned(), manifest));
    }
    files.sort();
    installable(&files)?;
    Ok(files)
}

/// Pack `files` (from [`files`]) into `out` as a deterministic tar.gz.
pub fn pack(files: &[PackFile], out: &mut File) -> Result<Packed, String> {
    let gz = GzBuilder::new()
        .mtime(0)
        .write(HashingWriter::new(out), Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (rel, path) in files {
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
fn installable(files: &[PackFile]) -> Result<(), String> {
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
        let packed = pack(&files(dir).unwrap(), &mut f).unwrap();
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
        assert!(files(d.path()).unwrap_err().contains("symbolic link"));
        // One an ignore file leaves out is no matter.
        std::fs::write(d.path().join(IGNORE_FILE), "link\n").unwrap();
        assert_eq!(names(&files(d.path()).unwrap()), [IGNORE_FILE]);
    }

    fn names(files: &[PackFile]) -> Vec<&str> {
        files.iter().map(|(rel, _)| rel.as_str()).collect()
    }

    #[test]
    fn ignore_files_leave_files_out_as_git_would() {
        let d = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let path = d.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("package.json", "{}");
        write(".env", "SECRET=1");
        write("node_modules/x/index.js", "x");
        write("templates/main.tmpl", "t");
        write("templates/local.tmpl", "t");
        write("templates/.gitignore", "local.tmpl\n");
        write("build/keep.txt", "k");
        write("build/out.bin", "o");
        // Even an ignore file that leaves out everything keeps package.json.
        write(
            ".gitignore",
            ".env\nnode_modules/\nbuild/\n*\n!templates/\n!templates/**\n!.gitignore\n",
        );
        write(IGNORE_FILE, "!build/\nbuild/*\n!build/keep.txt\n");
        assert_eq!(
            names(&files(d.path()).unwrap()),
            [
                ".gitignore",
                "build/keep.txt",
                "package.json",
                "templates/.gitignore",
                "templates/main.tmpl",
            ]
        );
        // A .gitignore above the package, or a global one, does not count.
        let inner = d.path().join("templates");
        assert_eq!(names(&files(&inner).unwrap()), [".gitignore", "main.tmpl"]);
    }
}
