//! Compiled-component cache: `<cache>/plugins/<wasm sha256>-<engine hash>.cwasm`.
//! A warm load maps the file (`deserialize_file`) instead of compiling.
//! Entries, and the plugins' data directories (`<cache>/data/*`), unused
//! for [`UNUSED_FOR`] are removed when a compile adds an entry: a few MB
//! per plugin and ggen version, and a derived index of up to tens of MB
//! per registry root, otherwise stayed forever.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Where the compiled form of `sha256` for this engine lives. The engine's
/// compatibility hash covers the wasmtime version and every codegen setting.
pub fn entry(cache_dir: &Path, engine: &Engine, sha256: &str) -> PathBuf {
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    cache_dir.join("plugins").join(format!(
        "{}-{:016x}.cwasm",
        &sha256[..32.min(sha256.len())],
        h.finish()
    ))
}

/// Load a cached compilation, if present, sealed (see [`Seal`]) and loadable.
pub fn load(engine: &Engine, path: &Path) -> Option<Component> {
    let sealed = Seal::read(path)?;
    if file_id(path)? != sealed.file {
        // Changed since it was sealed: a renewed mark of use, or damage,
        // or another entry copied over it. Only its bytes can tell.
        let bytes = std::fs::read(path).ok()?;
        if Seal::digest(path, &bytes) != sealed.digest {
            tracing::debug!(
                "ignoring cached plugin {}: its bytes changed",
                path.display()
            );
            return None;
        }
    }
    // SAFETY: compiled code runs as it is, so it must be what `Component::serialize`
    // wrote for this exact engine configuration (the name carries its hash): the
    // seal's digest was taken of those bytes, and the file checked against it (by
    // its inode and change time, which only the kernel sets, else its bytes);
    // wasmtime also checks its header.
    match unsafe { Component::deserialize_file(engine, path) } {
        Ok(c) => {
            mark_used(path);
            // Renewing the mark changes the change time: sealed again, so
            // the next load need not read the bytes.
            if let Some(file) = file_id(path).filter(|f| *f != sealed.file) {
                let _ = Seal { file, ..sealed }.write(path);
            }
            Some(c)
        }
        Err(e) => {
            tracing::debug!("ignoring unusable cached plugin {}: {e}", path.display());
            None
        }
    }
}

/// Store a compilation, sealed; failures only cost the next run a recompile.
pub fn store(path: &Path, component: &Component) {
    let result = (|| -> std::io::Result<()> {
        let dir = path.parent().expect("cache entries live in a directory");
        std::fs::create_dir_all(dir)?;
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        crate::backend::atomic::write_file(path, &bytes, dir)?;
        let file = file_id(path).ok_or_else(|| std::io::Error::other("it vanished"))?;
        Seal {
            file,
            digest: Seal::digest(path, &bytes),
        }
        .write(path)
    })();
    if let Err(e) = result {
        tracing::debug!("could not cache compiled plugin at {}: {e}", path.display());
    }
}

/// What a compiled entry was when it was written, in `<entry>.seal`: the
/// sha256 of its name and bytes, and the file's device, inode, change time
/// and size. Compiled code is run as it is: a damaged entry crashed every
/// command natively, and another entry copied over one ran in its place.
/// A load that finds the file as sealed maps it at once; one that finds it
/// changed reads and hashes it first.
struct Seal {
    file: FileId,
    digest: String,
}

/// A file's device, inode, change time (seconds, nanoseconds) and size.
type FileId = (u64, u64, i64, i64, u64);

/// The entry's file as it is now (a regular file, not through a link).
fn file_id(entry: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = entry.symlink_metadata().ok().filter(|m| m.is_file())?;
    Some((m.dev(), m.ino(), m.ctime(), m.ctime_nsec(), m.size()))
}

impl Seal {
    fn path_of(entry: &Path) -> PathBuf {
        let mut name = entry.as_os_str().to_owned();
        name.push(".seal");
        PathBuf::from(name)
    }

    /// The digest of an entry's bytes, bound to its name (whose hashes say
    /// what it was compiled from and for).
    fn digest(entry: &Path, bytes: &[u8]) -> String {
        use sha2::Digest;
        let name = entry.file_name().unwrap_or_default().as_encoded_bytes();
        let mut h = sha2::Sha256::new();
        h.update((name.len() as u64).to_le_bytes());
        h.update(name);
        h.update(bytes);
        hex::encode(h.finalize())
    }

    fn read(entry: &Path) -> Option<Seal> {
        // A regular file of a line only: a FIFO in its place must not block.
        let text = crate::backend::small_file::read_to_string(&Self::path_of(entry), 256).ok()?;
        let w: Vec<&str> = text.split_whitespace().collect();
        let [dev, ino, secs, nanos, size, digest] = w.as_slice() else {
            return None;
        };
        Some(Seal {
            file: (
                dev.parse().ok()?,
                ino.parse().ok()?,
                secs.parse().ok()?,
                nanos.parse().ok()?,
                size.parse().ok()?,
            ),
            digest: (*digest).to_owned(),
        })
    }

    fn write(&self, entry: &Path) -> std::io::Result<()> {
        let (dev, ino, secs, nanos, size) = self.file;
        let text = format!("{dev} {ino} {secs} {nanos} {size} {}\n", self.digest);
        let dir = entry.parent().expect("cache entries live in a directory");
        crate::backend::atomic::write_file(&Self::path_of(entry), text.as_bytes(), dir)
    }
}

/// How long an entry or data directory may go unused before a compile
/// removes it (it costs one compile, or one rebuild of a derived index, if
/// it is wanted again).
pub const UNUSED_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// How old the mark of use may get before a use renews it: at most one
/// metadata write a day per entry, not one per command.
const MARK_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Note that `path` (a compiled entry, or a plugin's data directory) is in
/// use: its modification time, renewed when older than [`MARK_EVERY`].
pub fn mark_used(path: &Path) {
    let Ok(modified) = path.metadata().and_then(|m| m.modified()) else {
        return;
    };
    if modified.elapsed().is_ok_and(|age| age > MARK_EVERY)
        && let Err(e) = std::fs::File::open(path).and_then(|f| f.set_modified(SystemTime::now()))
    {
        tracing::debug!("cannot mark {} as used: {e}", path.display());
    }
}

/// Remove the compiled entries and plugins' data directories under
/// `cache_dir` unused for [`UNUSED_FOR`]; what cannot be removed stays for
/// the next time. Only what ggen names so, in directories that are no
/// links (a `data` linked elsewhere would lead it to delete what is there).
/// Without a lock: a process taking up a directory unused for that long in
/// the same instant loses only its derived index, which its plugin builds
/// again.
pub fn collect(cache_dir: &Path) {
    let unused = |entry: &std::fs::DirEntry| {
        (entry.metadata().and_then(|m| m.modified()).ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > UNUSED_FOR)
    };
    let real_dir = |path: &Path| path.symlink_metadata().is_ok_and(|m| m.is_dir());
    let entries = |dir: &str| {
        let dir = cache_dir.join(dir);
        (real_dir(cache_dir) && real_dir(&dir))
            .then(|| std::fs::read_dir(dir))
            .into_iter()
            .flatten()
            .flatten()
            .flatten()
    };
    for entry in entries("plugins") {
        let ours = entry.file_name().to_str().is_some_and(is_entry_name);
        if ours && entry.file_type().is_ok_and(|t| t.is_file()) && unused(&entry) {
            remove(&entry.path(), std::fs::remove_file(entry.path()));
            let _ = std::fs::remove_file(Seal::path_of(&entry.path()));
        }
    }
    for entry in entries("data") {
        let ours = entry.file_name().to_str().is_some_and(is_data_name);
        if ours && entry.file_type().is_ok_and(|t| t.is_dir()) && unused(&entry) {
            remove(&entry.path(), std::fs::remove_dir_all(entry.path()));
        }
    }
}

/// `<32 hex>-<16 hex>.cwasm`, as [`entry`] names them.
fn is_entry_name(name: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    name.strip_suffix(".cwasm")
        .and_then(|stem| stem.split_once('-'))
        .is_some_and(|(sha, engine)| hex(sha, 32) && hex(engine, 16))
}

/// The data directory of registry plugin `plugin` for the registry at
/// `root`: `<cache>/data/<plugin>-<16 hex of the root's sha256>`.
pub fn data_dir(cache_dir: &Path, plugin: &str, root: &Path) -> PathBuf {
    use sha2::Digest;
    let root = sha2::Sha256::digest(root.as_os_str().as_encoded_bytes());
    cache_dir
        .join("data")
        .join(format!("{plugin}-{}", hex::encode(&root[..8])))
}

/// `<plugin>-<16 hex>`, as [`data_dir`] names them.
fn is_data_name(name: &str) -> bool {
    name.rsplit_once('-').is_some_and(|(plugin, root)| {
        !plugin.is_empty() && root.len() == 16 && root.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

fn remove(path: &Path, done: std::io::Result<()>) {
    let days = UNUSED_FOR.as_secs() / 86_400;
    match done {
        Ok(()) => tracing::debug!("removed {}: unused for {days} days", path.display()),
        Err(e) => tracing::debug!(
            "cannot remove {} (unused for {days} days): {e}",
            path.display()
        ),
    }
}
