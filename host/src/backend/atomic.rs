//! Crash-safe file replacement: readers (and a process restarted after a
//! kill) see the old file or the new one, never a torn mix.

use std::io::Write;
use std::path::Path;

use tempfile::NamedTempFile;

/// Write `bytes` to a temporary file in `tmp_dir` (same filesystem as
/// `target`), sync it, and rename it over `target`. The file keeps the
/// target's permissions, or gets the usual ones for a new file (0666 less
/// the umask), not the temporary file's private 0600.
pub fn write_file(target: &Path, bytes: &[u8], tmp_dir: &Path) -> std::io::Result<()> {
    let mut tmp = temp_for(target, tmp_dir, 0o666)?;
    if let Ok(existing) = std::fs::metadata(target) {
        tmp.as_file().set_permissions(existing.permissions())?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

/// A new temporary file in `dir` (mode `mode`, less the umask) that will
/// replace `target`, named `.<target's name>.XXXX.tmp` so that one left by a
/// killed writer is known for what it is; such leftovers are removed first
/// (they stayed forever).
pub fn temp_for(target: &Path, dir: &Path, mode: u32) -> std::io::Result<NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let prefix = temp_prefix(target);
    remove_abandoned(dir, &prefix, SUFFIX);
    tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(SUFFIX)
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
}

/// Remove what killed writers of `target` left in `dir` (see [`temp_for`]).
pub fn remove_abandoned_temps(target: &Path, dir: &Path) {
    remove_abandoned(dir, &temp_prefix(target), SUFFIX);
}

fn temp_prefix(target: &Path) -> String {
    format!(
        ".{}.",
        target.file_name().unwrap_or_default().to_string_lossy()
    )
}

const SUFFIX: &str = ".tmp";
/// A temporary file untouched this long belongs to a killed writer; a
/// younger one may be another process's write in progress.
pub const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// Remove the temporary files in `dir` named `<prefix>...<suffix>` that
/// nobody touched for [`ABANDONED_AFTER`].
pub fn remove_abandoned(dir: &Path, prefix: &str, suffix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let ours = (name.to_str()).is_some_and(|n| n.starts_with(prefix) && n.ends_with(suffix));
        let age = (entry.metadata().and_then(|m| m.modified()))
            .ok()
            .and_then(|t| t.elapsed().ok());
        if ours && age.is_some_and(|age| age >= ABANDONED_AFTER) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Make `path` look left by a writer killed long ago (older than
/// [`ABANDONED_AFTER`]), for tests of the clean-up.
#[cfg(test)]
pub fn abandon(path: &Path) {
    let long_ago = std::time::SystemTime::now() - 2 * ABANDONED_AFTER;
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(long_ago).unwrap();
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaced_files_keep_their_mode_and_new_ones_are_not_private() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        super::write_file(&target, b"new", dir.path()).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|m| u32::from_str_radix(m.trim(), 8).unwrap())
            .unwrap();
        assert_eq!(mode(&target), 0o666 & !umask);
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
        super::write_file(&target, b"again", dir.path()).unwrap();
        assert_eq!(mode(&target), 0o640);
        assert_eq!(std::fs::read(&target).unwrap(), b"again");
    }

    #[test]
    fn a_killed_writers_file_goes_at_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("peers.json");
        let (old, fresh, other) = (
            dir.path().join(".peers.json.abc.tmp"),
            dir.path().join(".peers.json.def.tmp"),
            dir.path().join(".keypair.ghi.tmp"),
        );
        for f in [&old, &fresh, &other] {
            std::fs::write(f, b"half").unwrap();
        }
        super::abandon(&old);
        super::abandon(&other);
        super::write_file(&target, b"new", dir.path()).unwrap();
        assert!(!old.exists(), "a killed write of this file stays");
        assert!(fresh.exists(), "a write in progress was removed");
        assert!(other.exists(), "another file's write was removed");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 3, "{left:?}");
    }
}
