//! Advisory file locks that serialise ggen processes working on one directory.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::created_dir::CreatedDir;

/// Held until dropped (the OS releases it if the process dies).
///
/// Dropping it tidies up after work that wrote nothing (a refused install or
/// publish): the lock file goes unless the directory's own data (`keep_if`,
/// else anything besides the lock) is there, and so do the directories that
/// taking the lock created, once empty. Removing the file is safe because it
/// happens while the lock is held, and a waiter checks that it locked the
/// file that is still on disk.
pub struct DirLock {
    _file: File,
    path: PathBuf,
    keep_if: Option<String>,
    /// Dropped after the lock file is gone (fields drop after `drop`).
    _dir: CreatedDir,
}

/// Take the exclusive lock `<dir>/<name>`, telling the user if another process
/// holds it and we have to wait. `keep_if` names the file whose presence
/// keeps the lock file when the lock is dropped (see [`DirLock`]).
pub fn lock_exclusive(
    dir: &Path,
    name: &str,
    keep_if: Option<&str>,
    waiting: impl FnOnce(),
) -> std::io::Result<DirLock> {
    let mut waiting = Some(waiting);
    loop {
        let dir_guard = CreatedDir::create(dir)?;
        let path = dir.join(name);
        let file = match open_lock_file(
            OpenOptions::new().create(true).truncate(false).write(true),
            &path,
        ) {
            Ok(file) => file,
            // The directory was removed by a holder that wrote nothing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                if let Some(tell) = waiting.take() {
                    tell();
                }
                file.lock()?;
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        // The holder we waited for may have removed the file (see [`DirLock`]):
        // then this lock guards nothing, and the next attempt takes a new file.
        let ours = file.metadata()?;
        match std::fs::metadata(&path) {
            Ok(now) if same_file(&now, &ours) => {
                return Ok(DirLock {
                    _file: file,
                    path,
                    keep_if: keep_if.map(str::to_owned),
                    _dir: dir_guard,
                });
            }
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Take the exclusive lock on the file `path` (made if missing), waiting at
/// most `wait` for its holder: for a lock a process takes for a moment
/// while others go on (a periodic save), where waiting long is worse than
/// skipping a turn. Held until the file is dropped.
pub fn lock_within(path: &Path, wait: std::time::Duration) -> std::io::Result<File> {
    let file = open_lock_file(
        OpenOptions::new().create(true).truncate(false).write(true),
        path,
    )?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "another process held {} for {:.1}s",
                        path.display(),
                        wait.as_secs_f64()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// Take the exclusive lock on the file `path` unless another process holds
/// it (`Ok(None)`); `create` makes the file if missing, else a missing file
/// is `NotFound`. Held until the file is dropped.
pub fn try_exclusive(path: &Path, create: bool) -> std::io::Result<Option<File>> {
    let mut options = OpenOptions::new();
    match create {
        true => options.create(true).truncate(false).write(true),
        false => options.read(true),
    };
    let file = open_lock_file(&mut options, path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// `file`, opened and handed over by another process, as the exclusive
/// lock on `path`: if it is that file and locking it succeeds (a lock held
/// through this very open file is ours already; one held through another
/// open of it refuses).
pub fn try_exclusive_given(file: File, path: &Path) -> Option<File> {
    let (given, there) = (file.metadata().ok()?, std::fs::metadata(path).ok()?);
    (same_file(&given, &there) && file.try_lock().is_ok()).then_some(file)
}

fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Wait for whoever holds the lock `<dir>/<name>` (if the file exists) and
/// keep writers out while the returned guard lives, without creating
/// anything: for commands that only read (they may lack write access).
pub fn lock_shared_if_present(
    dir: &Path,
    name: &str,
    waiting: impl FnOnce(),
) -> std::io::Result<Option<File>> {
    let path = dir.join(name);
    let file = match open_lock_file(OpenOptions::new().read(true), &path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match file.try_lock_shared() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            waiting();
            file.lock_shared()?;
        }
        Err(TryLockError::Error(e)) => return Err(e),
    }
    Ok(Some(file))
}

/// Open a lock file, never through a symlink: one in its place would make
/// the lock create (and then remove) files wherever it points.
fn open_lock_file(options: &mut OpenOptions, path: &Path) -> std::io::Result<File> {
    use rustix::fs::OFlags;
    // Non-blocking, so that a FIFO put in its place cannot hang the open
    // (flock ignores the flag; waiting for the lock still waits).
    let flags = (OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32;
    let not_ours = |what: &str| {
        std::io::Error::other(format!(
            "{} is {what}, not a lock file ggen made; remove it",
            path.display()
        ))
    };
    let file = options.custom_flags(flags).open(path).map_err(|e| {
        match e.raw_os_error().map(rustix::io::Errno::from_raw_os_error) {
            Some(rustix::io::Errno::LOOP) => not_ours("a symbolic link"),
            // A FIFO without a reader refuses a non-blocking writer.
            Some(rustix::io::Errno::NXIO) => not_ours("not a regular file"),
            Some(rustix::io::Errno::ISDIR) => not_ours("a directory"),
            _ => e,
        }
    })?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(not_ours("a directory"));
    }
    if !meta.is_file() {
        return Err(not_ours("not a regular file"));
    }
    Ok(file)
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let Some(dir) = self.path.parent() else {
            return;
        };
        let keep = match &self.keep_if {
            Some(data) => dir.join(data).exists(),
            None => std::fs::read_dir(dir).map_or(true, |entries| entries.count() > 1),
        };
        if !keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handed_over_lock_is_taken_only_if_it_is_that_file_and_free() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.lock");
        let other = dir.path().join("other");
        std::fs::write(&other, "").unwrap();
        let held = try_exclusive(&path, true).unwrap().unwrap();
        // Another open of the file, while the lock is held through the first.
        let again = File::open(&path).unwrap();
        assert!(try_exclusive_given(again, &path).is_none());
        // The holder's own open file: held already, so it is ours.
        let same = held.try_clone().unwrap();
        let lock = try_exclusive_given(same, &path).unwrap();
        drop(held);
        assert!(try_exclusive(&path, false).unwrap().is_none());
        drop(lock);
        // Some other file is no lock at all.
        assert!(try_exclusive_given(File::open(&other).unwrap(), &path).is_none());
        // Nobody holds it: taken.
        let taken = try_exclusive_given(File::open(&path).unwrap(), &path).unwrap();
        assert!(try_exclusive(&path, false).unwrap().is_none());
        drop(taken);
        assert!(try_exclusive(&path, false).unwrap().is_some());
    }

    #[test]
    fn a_bounded_lock_is_never_taken_through_a_symlink() {
        // One in its place would make ggen create or lock a file elsewhere.
        let tmp = tempfile::tempdir().unwrap();
        let (lock, elsewhere) = (tmp.path().join("x.lock"), tmp.path().join("elsewhere"));
        std::os::unix::fs::symlink(&elsewhere, &lock).unwrap();
        let err = lock_within(&lock, std::time::Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert!(!elsewhere.exists());
    }

    #[test]
    fn a_fifo_in_place_of_a_lock_file_is_refused_not_waited_on() {
        // Opening a FIFO for writing waits for a reader: forever.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let made = std::process::Command::new("mkfifo")
            .arg(dir.join(".lock"))
            .status()
            .unwrap();
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let exclusive = lock_exclusive(&dir, ".lock", None, || {}).map(drop);
            let shared = lock_shared_if_present(&dir, ".lock", || {}).map(drop);
            let tried = try_exclusive(&dir.join(".lock"), true).map(drop);
            let existing = try_exclusive(&dir.join(".lock"), false).map(drop);
            tx.send([exclusive, shared, tried, existing]).unwrap();
        });
        let results = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("opening the FIFO hung");
        for err in results.map(Result::unwrap_err) {
            assert!(err.to_string().contains("is not a regular file"), "{err}");
        }
    }

    #[test]
    fn a_directory_in_place_of_a_lock_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join(".lock")).unwrap();
        let exclusive = lock_exclusive(tmp.path(), ".lock", None, || {}).map(drop);
        let shared = lock_shared_if_present(tmp.path(), ".lock", || {}).map(drop);
        for err in [exclusive, shared].map(Result::unwrap_err) {
            assert!(
                err.to_string()
                    .ends_with(".lock is a directory, not a lock file ggen made; remove it"),
                "{err}"
            );
        }
    }

    #[test]
    fn what_the_lock_created_goes_when_nothing_else_was_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/c");
        let lock = || lock_exclusive(&dir, ".lock", Some("data"), || {}).unwrap();
        drop(lock());
        assert!(!tmp.path().join("a").exists());

        // The data written under the lock: everything stays.
        let held = lock();
        std::fs::write(dir.join("data"), "{}").unwrap();
        drop(held);
        assert!(dir.join(".lock").is_file() && dir.join("data").is_file());

        // Other files, but not the data: only the lock file goes.
        std::fs::remove_file(dir.join("data")).unwrap();
        std::fs::write(dir.join("user-file"), "mine").unwrap();
        drop(lock());
        assert!(!dir.join(".lock").exists() && dir.join("user-file").is_file());

        // Without `keep_if`, anything besides the lock file keeps it.
        drop(lock_exclusive(&dir, ".lock", None, || {}).unwrap());
        assert!(dir.join(".lock").is_file());
        std::fs::remove_file(dir.join("user-file")).unwrap();
        drop(lock_exclusive(&dir, ".lock", None, || {}).unwrap());
        assert!(
            !dir.join(".lock").exists() && dir.is_dir(),
            "only what it created goes"
        );
    }

    #[test]
    fn a_waiter_whose_file_was_removed_locks_the_new_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("root");
        let first = lock_exclusive(&dir, ".lock", None, || {}).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let lock = lock_exclusive(&dir, ".lock", None, || tx.send(()).unwrap()).unwrap();
                let held = lock._file.metadata().unwrap().ino();
                let on_disk = std::fs::metadata(dir.join(".lock")).unwrap().ino();
                (held, on_disk)
            })
        };
        rx.recv().unwrap();
        // The first holder wrote nothing: dropping it removes the file and directory.
        drop(first);
        let (held, on_disk) = waiter.join().unwrap();
        assert_eq!(
            held, on_disk,
            "the waiter must hold the lock file that exists"
        );
    }
}
