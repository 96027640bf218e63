//! Deleting a directory tree ggen owns (a finished transaction's replaced
//! copies), including parts a user made read-only: `chmod a-w` on a folder
//! of an installed package left its old copy behind, and every later
//! command in that root stopped on it.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// `fs::remove_dir_all`, and where that is refused for want of permission,
/// again after giving the owner full access to each directory below `path`
/// (as npm's rimraf does; links are not followed, files keep their modes).
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            open_up(path);
            fs::remove_dir_all(path)
        }
        other => other,
    }
}

/// Give the owner read, write and search permission on `top` and every
/// directory below it (a loop, not recursion: trees may be deep). What
/// cannot be changed is left for the removal to report.
fn open_up(top: &Path) {
    let mut dirs = vec![top.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(meta) = fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let mode = meta.permissions().mode();
        if mode & 0o700 != 0o700 {
            let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(mode | 0o700));
        }
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(entry.path());
            }
        }
    }
}
