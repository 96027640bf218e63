//! Small filesystem helpers: crash-safe writes and unique temp names.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A temp path beside `target`, unique across processes (clock) and calls (counter).
pub fn temp_beside(target: &Path) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("file");
    target.with_file_name(format!(".{name}.tmp-{nanos}-{n}"))
}

/// Write `bytes` to `target` so readers see either the old or the new file, never a mix.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(target, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], with the content streamed by `fill` through a buffer.
pub fn write_atomic_with(
    target: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_beside(target);
    let result = (|| {
        let mut w = io::BufWriter::with_capacity(1 << 20, fs::File::create(&tmp)?);
        fill(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Like [`write_atomic_with`], but only if `target` does not exist: false
/// (and nothing written) if it does, even if it appeared meanwhile.
pub fn write_new_with(
    target: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<bool> {
    let tmp = temp_beside(target);
    let result = (|| {
        let mut w = io::BufWriter::with_capacity(1 << 20, fs::File::create(&tmp)?);
        fill(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        // A hard link never replaces a file, unlike a rename.
        match fs::hard_link(&tmp, target) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            // A filesystem without hard links: check, then rename.
            Err(_) if fs::symlink_metadata(target).is_ok() => Ok(false),
            Err(_) => fs::rename(&tmp, target).map(|()| true),
        }
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// Stream `reader` into `target` atomically; refuses more than `max` bytes.
pub fn copy_atomic(target: &Path, reader: &mut dyn Read, max: u64) -> io::Result<u64> {
    let tmp = temp_beside(target);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        let n = io::copy(&mut Read::take(&mut *reader, max + 1), &mut f)?;
        if n > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("stream is longer than the announced {max} bytes"),
            ));
        }
        f.sync_all()?;
        fs::rename(&tmp, target)?;
        Ok(n)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
