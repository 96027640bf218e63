//! Transactions over an install root: everything a command changes is staged
//! in `<root>/.ggen-staging/txn-*` (same filesystem, so moves are renames),
//! moved into place with the replaced copies kept aside, and made permanent
//! by writing ggen.lock. Dropping an uncommitted transaction undoes its moves.
//!
//! Crash safety: a journal (what will move, and ggen.lock as it was) is
//! written before the first move, and a `committed` marker after ggen.lock
//! (like cargo's `.cargo-ok`). [`recover`] finishes or undoes whatever a dead
//! process left; commands call it under the root's lock before they start.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::installed::{self, Lockfile};
use super::{MarketplaceError, Result};
use crate::backend::remove_tree::remove_tree;
use crate::backend::small_file::{read_if_present, read_to_string};

const STAGING: &str = ".ggen-staging";
const JOURNAL: &str = "journal.json";
const COMMITTED: &str = "committed";

#[derive(Serialize, Deserialize)]
struct Journal {
    /// Packages whose live directory the transaction replaces or removes,
    /// and whether a live copy existed before (then it is kept aside in `old/`).
    moves: Vec<(String, bool)>,
    /// ggen.lock before the transaction (None: there was none).
    lockfile_before: Option<String>,
}

pub struct Transaction {
    root: PathBuf,
    dir: Option<tempfile::TempDir>,
    /// (name, whether a previous copy was moved aside), in order.
    done: Vec<(String, bool)>,
    /// ggen.lock as it was, once the journal is written.
    lockfile_before: Option<Option<String>>,
    /// ggen.lock was replaced (undo must put the old one back).
    lock_written: bool,
    committed: bool,
}

impl Transaction {
    pub fn begin(root: &Path) -> Result<Self> {
        let staging = root.join(STAGING);
        if staging_dir(root)?.is_none() {
            fs::create_dir(&staging).map_err(|e| {
                MarketplaceError::storage(format!("cannot create {}", staging.display()), e)
            })?;
        }
        let dir = tempfile::Builder::new()
            .prefix("txn-")
            .tempdir_in(&staging)
            .map_err(|e| MarketplaceError::storage("cannot create a staging directory", e))?;
        Ok(Self {
            root: root.to_path_buf(),
            dir: Some(dir),
            done: Vec::new(),
            lockfile_before: None,
            lock_written: false,
            committed: false,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until dropped").path()
    }

    /// Where the new copy of `name` is staged before it moves into place.
    pub fn staged(&self, name: &str) -> PathBuf {
        self.path().join("new").join(name)
    }

    fn aside(&self, name: &str) -> PathBuf {
        self.path().join("old").join(name)
    }

    /// Record what is about to move; must precede the first move.
    pub fn write_journal(&mut self, names: &[String]) -> Result<()> {
        let path = self.root.join(installed::LOCKFILE);
        let lockfile_before = match read_if_present(&path, installed::MAX_LOCKFILE_BYTES) {
            Ok(text) => text,
            Err(e) => {
                return Err(MarketplaceError::storage(
                    format!("cannot read {}", path.display()),
                    e,
                ));
            }
        };
        self.lockfile_before = Some(lockfile_before.clone());
        let journal = Journal {
            moves: names
                .iter()
                .map(|n| (n.clone(), present(&self.root.join(n))))
                .collect(),
            lockfile_before,
        };
        write_synced(
            &self.path().join(JOURNAL),
            serde_json::to_string(&journal)
                .expect("journals serialise")
                .as_bytes(),
        )
    }

    /// Move the live copy of `name` aside (if any) and its staged copy in.
    pub fn put_in_place(&mut self, name: &str) -> Result<()> {
        let had_old = self.move_aside(name)?;
        if let Err(e) = fs::rename(self.staged(name), self.root.join(name)) {
            if had_old {
                let _ = fs::rename(self.aside(name), self.root.join(name));
            }
            return Err(MarketplaceError::storage(
                format!("cannot move {name} into {}", self.root.display()),
                e,
            ));
        }
        self.done.push((name.to_owned(), had_old));
        Ok(())
    }

    /// Move the live copy of `name` aside, leaving nothing in its place.
    pub fn take_out(&mut self, name: &str) -> Result<()> {
        let had_old = self.move_aside(name)?;
        self.done.push((name.to_owned(), had_old));
        Ok(())
    }

    fn move_aside(&self, name: &str) -> Result<bool> {
        let live = self.root.join(name);
        if !present(&live) {
            return Ok(false);
        }
        let fail =
            |e| MarketplaceError::storage(format!("cannot move {} aside", live.display()), e);
        fs::create_dir_all(self.path().join("old")).map_err(fail)?;
        fs::rename(&live, self.aside(name)).map_err(|e| match e.kind() {
            // Moving a directory to another parent rewrites its `..`.
            std::io::ErrorKind::PermissionDenied => MarketplaceError::Storage(format!(
                "cannot move {} aside: it is not writable; nothing was changed; give yourself write permission on it (`chmod u+w {}`) and run the command again",
                live.display(),
                live.display()
            )),
            _ => fail(e),
        })?;
        Ok(true)
    }

    /// Make it permanent: write ggen.lock, then the marker. On failure
    /// everything is undone (by the drop).
    pub fn commit(mut self, lockfile: &Lockfile) -> Result<()> {
        // The temporary lockfile lives in the transaction, so a kill mid-write
        // leaves nothing in the root that recovery would not remove.
        self.lock_written = true;
        fault("writing-lockfile")?;
        installed::write_via(&self.root, lockfile, self.path())?;
        fault("after-lockfile")?;
        write_synced(&self.path().join(COMMITTED), b"")?;
        // From here on the transaction is done. Drop the journal before
        // anything else, so that a kill while the directory is being deleted
        // can never look like an unfinished transaction to `recover`.
        fs::remove_file(self.path().join(JOURNAL))
            .map_err(|e| MarketplaceError::storage("cannot finish the transaction", e))?;
        self.committed = true;
        fault("committed")?;
        Ok(())
    }

    /// Put everything back; false if some step failed (then the transaction
    /// directory is kept for `recover`).
    fn undo(&mut self) -> bool {
        let mut ok = true;
        while let Some((name, had_old)) = self.done.pop() {
            let live = self.root.join(&name);
            if present(&live) && fs::remove_dir_all(&live).is_err() {
                ok = false;
            }
            if had_old && fs::rename(self.aside(&name), &live).is_err() {
                ok = false;
            }
        }
        // A write that failed before replacing ggen.lock (a full disk) left
        // it as it was: rewriting it could fail the same way and keep the
        // transaction, so that a failed command looked like a killed one.
        if self.lock_written && !self.lockfile_unchanged() {
            let restored = match self.lockfile_before.clone().flatten() {
                Some(before) => {
                    installed::write_raw_via(&self.root, before.as_bytes(), self.path()).is_ok()
                }
                None => fs::remove_file(self.root.join(installed::LOCKFILE)).is_ok(),
            };
            ok &= restored;
        }
        ok
    }

    /// ggen.lock holds what it held before this transaction.
    fn lockfile_unchanged(&self) -> bool {
        let Some(before) = &self.lockfile_before else {
            return false;
        };
        let path = self.root.join(installed::LOCKFILE);
        match (read_to_string(&path, installed::MAX_LOCKFILE_BYTES), before) {
            (Ok(now), Some(before)) => now == *before,
            (Err(e), None) => e.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.committed && !self.undo() {
            // Leave the journal and the kept-aside copies for `recover`.
            if let Some(dir) = self.dir.take() {
                let _ = dir.keep();
            }
            return;
        }
        // Staged packages, or the replaced copies of a committed transaction
        // (parts of which a user may have made read-only).
        if let Some(dir) = self.dir.take() {
            let path = dir.keep();
            // Undone: nothing for `recover` to undo again if the rest stays.
            let _ = fs::remove_file(path.join(JOURNAL));
            if let Err(e) = remove_tree(&path) {
                tracing::warn!(
                    "cannot remove {}: {e}; nothing in it is installed, and the next install, update or remove here tries again",
                    path.display()
                );
            }
        }
        let _ = fs::remove_dir(self.root.join(STAGING));
    }
}

/// Write, sync, then rename into place: a torn journal never exists under its
/// real name (it would look like moves that never happened).
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .expect("transaction files live in the transaction directory");
    crate::backend::atomic::write_file(path, bytes, dir)
        .map_err(|e| MarketplaceError::storage(format!("cannot write {}", path.display()), e))
}

/// How many transactions in `root` died while moving packages (their
/// journal is there, their commit marker is not): until the next install,
/// update or remove rolls them back, the root is not what ggen.lock says.
pub fn interrupted(root: &Path) -> usize {
    let Ok(Some(staging)) = staging_dir(root) else {
        return 0;
    };
    let Ok(entries) = fs::read_dir(staging) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let txn = e.path();
            is_transaction(e) && txn.join(JOURNAL).is_file() && !txn.join(COMMITTED).exists()
        })
        .count()
}

/// What a transaction makes: a real `txn-*` directory.
fn is_transaction(entry: &fs::DirEntry) -> bool {
    entry.file_name().to_string_lossy().starts_with("txn-")
        && entry.file_type().is_ok_and(|t| t.is_dir())
}

/// Clean up after commands that died (killed, power loss) in this root: a
/// committed transaction only needs its leftovers removed; one that was
/// moving packages is undone from its journal, ggen.lock included; one that
/// was still staging is just removed. Call it under the root's lock, so no
/// live transaction can be mistaken for a dead one.
pub fn recover(root: &Path) -> Result<usize> {
    let Some(staging) = staging_dir(root)? else {
        return Ok(0);
    };
    let Ok(entries) = fs::read_dir(&staging) else {
        return Ok(0);
    };
    let mut recovered = 0;
    for entry in entries.flatten() {
        let txn = entry.path();
        if !is_transaction(&entry) {
            continue;
        }
        if txn.join(COMMITTED).exists() {
            // Finished: make sure no journal outlives the marker while the rest goes.
            let _ = fs::remove_file(txn.join(JOURNAL));
        } else {
            // The journal holds ggen.lock as it was, and the list of moves.
            let max = 2 * installed::MAX_LOCKFILE_BYTES;
            let text = match read_to_string(&txn.join(JOURNAL), max) {
                Ok(text) => Some(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(MarketplaceError::storage(
                        format!("cannot read the journal of {}", txn.display()),
                        e,
                    ));
                }
            };
            if let Some(text) = text {
                let journal: Journal = serde_json::from_str(&text).map_err(|e| {
                    MarketplaceError::Storage(format!(
                        "interrupted transaction {} has an unreadable journal ({e}); remove that directory by hand",
                        txn.display()
                    ))
                })?;
                // Names come from a file anyone could have written: only a
                // package name may lead to a directory recovery moves or deletes.
                if let Some((name, _)) = journal
                    .moves
                    .iter()
                    .find(|(name, _)| super::manifest::validate_name(name).is_err())
                {
                    return Err(MarketplaceError::Security(format!(
                        "interrupted transaction {} has a journal naming `{}`, which is not a package; remove that directory by hand",
                        txn.display(),
                        crate::backend::excerpt(name, 80)
                    )));
                }
                // Every step is idempotent: recovery itself may be killed and rerun.
                for (name, existed) in journal.moves.iter().rev() {
                    let live = root.join(name);
                    let old = txn.join("old").join(name);
                    if *existed {
                        if present(&old) {
                            let _ = fs::remove_dir_all(&live);
                            fs::rename(&old, &live).map_err(|e| {
                                MarketplaceError::storage(
                                    format!(
                                        "cannot restore {name} from an interrupted transaction"
                                    ),
                                    e,
                                )
                            })?;
                        }
                    } else {
                        let _ = fs::remove_dir_all(&live);
                    }
                }
                match journal.lockfile_before {
                    Some(before) => installed::write_raw_via(root, before.as_bytes(), &txn)?,
                    None => {
                        let _ = fs::remove_file(root.join(installed::LOCKFILE));
                    }
                }
                // Undone: what is left is as inert as a finished
                // transaction's leftovers, and must not be undone again.
                fs::remove_file(txn.join(JOURNAL)).map_err(|e| {
                    MarketplaceError::storage(
                        format!("cannot finish rolling back {}", txn.display()),
                        e,
                    )
                })?;
                fault("recovered")?;
                tracing::warn!(
                    "rolled back an interrupted install or remove in {}",
                    root.display()
                );
            }
        }
        // No journal is left, so nothing in it is live: a directory that
        // cannot go is reported, not a reason to stop every command here.
        if let Err(e) = remove_tree(&txn) {
            tracing::warn!(
                "cannot remove {}: {e}; nothing in it is installed, so delete it by hand",
                txn.display()
            );
            continue;
        }
        recovered += 1;
    }
    let _ = fs::remove_dir(&staging);
    Ok(recovered)
}

/// `<root>/.ggen-staging` if it exists, refused unless it is a real
/// directory: through a symbolic link, staging and recovery would move and
/// delete directories elsewhere.
fn staging_dir(root: &Path) -> Result<Option<PathBuf>> {
    let staging = root.join(STAGING);
    match fs::symlink_metadata(&staging) {
        Ok(meta) if meta.is_dir() => Ok(Some(staging)),
        Ok(_) => Err(MarketplaceError::Storage(format!(
            "{} is not a directory (a file or a symbolic link); ggen stages installs there, so move it away",
            staging.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(MarketplaceError::storage(
            format!("cannot inspect {}", staging.display()),
            e,
        )),
    }
}

/// Test-only failure points: with `GGEN_FAULT=<point>` a debug build fails
/// there, with `GGEN_CRASH=<point>` it dies on the spot (abort, like a kill),
/// so tests can check that every step rolls back or recovers. With
/// `GGEN_PAUSE=<point>=<file>` it creates `<file>.here` and waits (at most a
/// minute) until `<file>` exists, so a test can act at that moment: another
/// process's race made deterministic. Release builds compile this to nothing.
pub fn fault(point: &str) -> Result<()> {
    if cfg!(debug_assertions) {
        if let Ok(spec) = std::env::var("GGEN_PAUSE")
            && let Some((at, go)) = spec.split_once('=')
            && at == point
        {
            let _ = std::fs::write(format!("{go}.here"), "");
            let started = std::time::Instant::now();
            while !Path::new(go).exists() && started.elapsed().as_secs() < 60 {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        if std::env::var("GGEN_CRASH").is_ok_and(|p| p == point) {
            std::process::abort();
        }
        if std::env::var("GGEN_FAULT").is_ok_and(|p| p == point) {
            return Err(MarketplaceError::Storage(format!(
                "injected fault at `{point}`"
            )));
        }
    }
    Ok(())
}

/// Whether anything is at `path`, a link to nothing included (`exists`
/// follows links, so such a link in a package's place was never moved).
fn present(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}
