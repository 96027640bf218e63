//! Advisory file locks that serialise ggen processes working on one directory.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

/// Held until dropped (the OS releases it if the process dies).
pub struct DirLock {
    _file: File,
}

/// Take the exclusive lock `<dir>/<name>`, telling the user if another process
/// holds it and we have to wait.
pub fn lock_exclusive(dir: &Path, name: &str, waiting: impl FnOnce()) -> std::io::Result<DirLock> {
    std::fs::create_dir_all(dir)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(name))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            waiting();
            file.lock()?;
        }
        Err(TryLockError::Error(e)) => return Err(e),
    }
    Ok(DirLock { _file: file })
}
