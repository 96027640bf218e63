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
    // The name is only for people: the clock and counter make it unique.
    // Cut so that a long name (a 64-character package at a 128-character
    // version, being replaced) stays within the 255 bytes filesystems allow.
    let mut keep = name.len().min(MAX_NAME_KEPT);
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    target.with_file_name(format!(".{}.tmp-{nanos}-{n}", &name[..keep]))
}

/// What a temporary name keeps of the target's name.
const MAX_NAME_KEPT: usize = 160;

/// Why `path` could not be opened, in words a user can act on: in the
/// sandbox a directory opens as `bad-descriptor`, and a symbolic link that
/// leads out of the registry as `permission denied` (or, dangling, as not found).
pub fn open_failure(path: &Path, e: &io::Error) -> String {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => "it is a directory, not a file".into(),
        // ggen refuses to open these: a FIFO would wait for a writer forever.
        Ok(m) if !m.is_file() && !m.is_symlink() => {
            "it is not a regular file (a FIFO, socket or device); put the file itself there".into()
        }
        Ok(m) if m.is_symlink() => {
            // The sandbox hides targets outside the registry, absolute ones included.
            let to = fs::read_link(path)
                .map(|t| format!(" to `{}`", t.display()))
                .unwrap_or_default();
            format!(
                "it is a symbolic link{to} that leads to no file inside the registry (the plugin can read nothing else)"
            )
        }
        _ => e.to_string(),
    }
}

/// Write `bytes` to `target` so readers see either the old or the new file, never a mix.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(target, |w| w.write_all(bytes)).map(drop)
}

/// Like [`write_atomic`], with the content streamed by `fill` through a
/// buffer; the metadata of the file written, taken before it took
/// `target`'s name (whatever replaces `target` after that).
pub fn write_atomic_with(
    target: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<fs::Metadata> {
    via_temp(target, buffered(fill), |tmp| {
        let written = fs::metadata(tmp)?;
        fs::rename(tmp, target).map(|()| written)
    })
}

/// Like [`write_atomic_with`], but only if `target` does not exist: None
/// (and nothing written) if it does, even if it appeared meanwhile. Else
/// the metadata of the file written, taken before it took `target`'s name
/// (whatever replaces `target` after that, this is what was written).
pub fn write_new_with(
    target: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<Option<fs::Metadata>> {
    via_temp(target, buffered(fill), |tmp| {
        let written = fs::metadata(tmp)?;
        // A hard link never replaces a file, unlike a rename.
        match fs::hard_link(tmp, target) {
            Ok(()) => Ok(Some(written)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            // A filesystem without hard links: check, then rename.
            Err(_) if fs::symlink_metadata(target).is_ok() => Ok(None),
            Err(_) => fs::rename(tmp, target).map(|()| Some(written)),
        }
    })
}

/// Stream exactly `size` bytes of `reader` into `target` atomically: a
/// stream of another length (`InvalidData`) is never put in place.
pub fn copy_atomic(target: &Path, reader: &mut dyn Read, size: u64) -> io::Result<()> {
    let copy = |f: &mut fs::File| {
        let n = io::copy(&mut Read::take(reader, size + 1), f)?;
        if n == size {
            return Ok(());
        }
        let what = if n > size {
            "longer than"
        } else {
            "shorter than"
        };
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the tarball is {what} the announced {size} bytes"),
        ))
    };
    via_temp(target, copy, |tmp| fs::rename(tmp, target))
}

/// `fill` writing through a 1 MiB buffer into the file.
fn buffered(
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> impl FnOnce(&mut fs::File) -> io::Result<()> {
    |f| {
        let mut w = io::BufWriter::with_capacity(1 << 20, f);
        fill(&mut w)?;
        w.flush()
    }
}

/// Fill a temporary file beside `target`, sync it and hand it to `place`
/// (a rename or a link); the temporary name is gone afterwards either way.
fn via_temp<T>(
    target: &Path,
    fill: impl FnOnce(&mut fs::File) -> io::Result<()>,
    place: impl FnOnce(&Path) -> io::Result<T>,
) -> io::Result<T> {
    let tmp = temp_beside(target);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        place(&tmp)
    })();
    // After a rename there is nothing left to remove; after a link or a failure there is.
    let _ = fs::remove_file(&tmp);
    result
}
