//! One long-running node per GGEN_HOME: it holds an exclusive lock on
//! `p2p/node.lock` while it runs. Asking the control socket is not enough:
//! two nodes starting at once both find it silent, and the second would take
//! the socket over and leave the first running unreachable.
//!
//! `p2p start --daemon` takes the lock itself and hands it to the node it
//! starts (as that node's stdin), so two such starts racing never both spawn
//! a node: the loser is refused before it touches the winner's log.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use crate::backend::{MarketplaceError, Result};

pub const LOCK_FILE: &str = "node.lock";

/// Set for the node `--daemon` starts: its stdin is the lock, already taken.
pub const HANDED_OVER: &str = "GGEN_P2P_LOCK_ON_STDIN";

/// Claim `dir` for the node this process runs: with the lock `--daemon`
/// handed over, if it did, else as [`claim`] does.
pub fn claim_for_node(dir: &Path) -> Result<File> {
    if std::env::var_os(HANDED_OVER).is_some()
        && let Some(lock) = handed_over(dir)
    {
        return Ok(lock);
    }
    claim(dir)
}

/// Claim `dir` (released when the file is dropped, or the process dies),
/// or say that a node already runs there.
pub fn claim(dir: &Path) -> Result<File> {
    let fail =
        |e| MarketplaceError::storage(format!("cannot lock {}", dir.join(LOCK_FILE).display()), e);
    std::fs::create_dir_all(dir).map_err(fail)?;
    crate::backend::lock::try_exclusive(&dir.join(LOCK_FILE), true)
        .map_err(fail)?
        .ok_or_else(|| already_running(dir))
}

/// The lock on `dir` this process was given as stdin, if that is what
/// stdin is. Stdin becomes /dev/null: held open there, the lock would
/// outlive the returned file (and go to any process started from here).
fn handed_over(dir: &Path) -> Option<File> {
    let stdin = File::from(std::io::stdin().as_fd().try_clone_to_owned().ok()?);
    let lock = crate::backend::lock::try_exclusive_given(stdin, &dir.join(LOCK_FILE))?;
    if let Err(e) = File::open("/dev/null").and_then(|null| Ok(rustix::stdio::dup2_stdin(&null)?)) {
        tracing::debug!("cannot let go of the lock on stdin: {e}");
    }
    Some(lock)
}

/// Whether a node holds `dir` now (nothing is created to find out).
pub fn held(dir: &Path) -> Result<bool> {
    let path = dir.join(LOCK_FILE);
    match crate::backend::lock::try_exclusive(&path, false) {
        Ok(free) => Ok(free.is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(MarketplaceError::storage(
            format!("cannot lock {}", path.display()),
            e,
        )),
    }
}

/// Wait until the node holding `dir` has let go of it (a node asked to stop
/// answers first, then shuts down): a `start` right after `stop` found it
/// still running.
pub fn wait_until_free(dir: &Path, within: std::time::Duration) -> Result<()> {
    let path = dir.join(LOCK_FILE);
    crate::backend::lock::lock_within(&path, within)
        .map(drop)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut => MarketplaceError::Network(format!(
                "the P2P node was asked to stop but still holds {} after {}s; {}",
                path.display(),
                within.as_secs(),
                how_to_end(dir)
            )),
            _ => MarketplaceError::storage(format!("cannot lock {}", path.display()), e),
        })
}

/// What to do about a node that holds `dir` and does not answer (asking it
/// to stop is no way out then).
pub fn how_to_end(dir: &Path) -> String {
    let lock = dir.join(LOCK_FILE);
    format!(
        "wait for it, or end its process (`fuser -k {}`)",
        lock.display()
    )
}

fn already_running(dir: &Path) -> MarketplaceError {
    MarketplaceError::AlreadyExists(format!(
        "a P2P node is already running for this GGEN_HOME (it holds {}); stop it with `ggen marketplace p2p stop`",
        dir.join(LOCK_FILE).display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asking_whether_a_node_holds_a_home_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p2p = dir.path().join("p2p");
        assert!(!held(&p2p).unwrap());
        assert!(!p2p.exists());
    }

    #[test]
    fn a_second_claim_is_refused_until_the_first_ends() {
        let dir = tempfile::tempdir().unwrap();
        let first = claim(dir.path()).unwrap();
        let err = claim(dir.path()).unwrap_err().to_string();
        assert!(err.contains("already running"), "{err}");
        assert!(held(dir.path()).unwrap());
        drop(first);
        assert!(!held(dir.path()).unwrap());
        drop(claim(dir.path()).unwrap());
    }
}
