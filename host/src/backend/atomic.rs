//! Crash-safe file replacement: readers (and a process restarted after a
//! kill) see the old file or the new one, never a torn mix.

use std::io::Write;
use std::path::Path;

/// Write `bytes` to a temporary file in `tmp_dir` (same filesystem as
/// `target`), sync it, and rename it over `target`. The file keeps the
/// target's permissions, or gets the usual ones for a new file (0666 less
/// the umask), not the temporary file's private 0600.
pub fn write_file(target: &Path, bytes: &[u8], tmp_dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut tmp = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(tmp_dir)?;
    if let Ok(existing) = std::fs::metadata(target) {
        tmp.as_file().set_permissions(existing.permissions())?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(())
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
}
