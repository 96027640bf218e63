//! Crash-safe file replacement: readers (and a process restarted after a
//! kill) see the old file or the new one, never a torn mix.

use std::io::Write;
use std::path::Path;

/// Write `bytes` to a temporary file in `tmp_dir` (same filesystem as
/// `target`), sync it, and rename it over `target`.
pub fn write_file(target: &Path, bytes: &[u8], tmp_dir: &Path) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(())
}
