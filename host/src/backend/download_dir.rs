//! Per-install download directories under `$GGEN_HOME/p2p/downloads`. Each
//! holds a lock while its install runs, so the next install removes those
//! of installs that were killed (a kill mid-download left its partial
//! tarball behind for good).

use std::fs::{self, File};
use std::io;
use std::path::Path;

const LOCK: &str = ".lock";

pub struct DownloadDir {
    dir: tempfile::TempDir,
    _lock: File,
}

impl DownloadDir {
    /// A fresh directory in `parent`, after removing abandoned ones there.
    pub fn create(parent: &Path) -> io::Result<Self> {
        fs::create_dir_all(parent)?;
        remove_abandoned(parent);
        let dir = tempfile::Builder::new().prefix("dl-").tempdir_in(parent)?;
        // Locked before it takes its name: a lock file is never seen
        // unlocked while its directory is in use.
        let lock = tempfile::NamedTempFile::new_in(dir.path())?;
        lock.as_file().lock()?;
        let lock = lock.persist(dir.path().join(LOCK)).map_err(|e| e.error)?;
        Ok(Self { dir, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Remove the directories whose lock nobody holds. One without a lock file
/// is being made right now, and one whose lock is not a regular file is not
/// ours (a FIFO would hang the open): both are left alone.
fn remove_abandoned(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Ok(Some(_lock)) = super::lock::try_exclusive(&entry.path().join(LOCK), false) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_of_dead_installs_go_and_live_ones_stay() {
        let parent = tempfile::tempdir().unwrap();
        let live = DownloadDir::create(parent.path()).unwrap();
        std::fs::write(live.path().join("part.tar.gz"), b"partial").unwrap();
        let dead = parent.path().join("dl-dead");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(LOCK), b"").unwrap();
        std::fs::write(dead.join("part.tar.gz"), b"partial").unwrap();
        let foreign = parent.path().join("mine");
        std::fs::create_dir(&foreign).unwrap();
        // A FIFO in place of a lock would hold the open forever.
        let fifo = parent.path().join("dl-fifo");
        std::fs::create_dir(&fifo).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(fifo.join(LOCK))
            .status()
            .unwrap();
        assert!(made.success());

        let (tx, rx) = std::sync::mpsc::channel();
        let at = parent.path().to_owned();
        std::thread::spawn(move || tx.send(DownloadDir::create(&at).unwrap()).unwrap());
        let next = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("a FIFO lock hung the clean-up");
        assert!(fifo.is_dir(), "not ours: left alone");
        assert!(!dead.exists(), "an abandoned download stays");
        assert!(live.path().join("part.tar.gz").is_file());
        assert!(foreign.is_dir());
        let (live_path, next_path) = (live.path().to_owned(), next.path().to_owned());
        drop((live, next));
        assert!(!live_path.exists() && !next_path.exists());
    }
}
