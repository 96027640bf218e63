//! `p2p start --daemon`: the same command again, detached, with its output
//! in `$GGEN_HOME/p2p/node.log`; we return once its control socket answers.
//! The node's lock is taken here and handed over (see `running`), so only
//! the start that holds it writes to the log.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::control::ControlClient;
use crate::backend::{MarketplaceError, Result};

pub fn spawn(
    args: Vec<OsString>,
    log: &Path,
    socket: &Path,
    wait: Duration,
) -> Result<ControlClient> {
    let fail = |e| MarketplaceError::storage("cannot start the P2P node in the background", e);
    // Before anything is written or started, as a foreground start does.
    super::control::check_socket_path(socket)?;
    // Else the wait below would find the running node's socket and report
    // it as the one just started. Held until the child has it too.
    let lock = super::running::claim(socket.parent().unwrap_or(Path::new(".")))?;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| {
            MarketplaceError::storage(
                format!("cannot open the background node's log {}", log.display()),
                e,
            )
        })?;
    // Where this run's output starts: its error is quoted if it exits.
    let start = out.metadata().map_err(fail)?.len();
    let err = out.try_clone().map_err(fail)?;
    let exe = std::env::current_exe().map_err(fail)?;
    let mut child = Command::new(exe)
        .args(args)
        .env(super::running::HANDED_OVER, "1")
        .stdin(Stdio::from(lock))
        .stdout(out)
        .stderr(err)
        // Its own process group: the shell's Ctrl-C does not reach it.
        .process_group(0)
        .spawn()
        .map_err(fail)?;
    let deadline = Instant::now() + wait;
    loop {
        // A child that exited (another node won the race) is checked first.
        if let Ok(Some(status)) = child.try_wait() {
            let why = match last_error(log, start) {
                Some(error) => format!("exited: {error}"),
                // Started, and stopped (`p2p stop`, a signal) before we asked.
                None if status.success() => "stopped right after it started".to_owned(),
                None => format!("exited ({status})"),
            };
            return Err(MarketplaceError::Unsupported(format!(
                "the background P2P node {why} (see {})",
                log.display()
            )));
        }
        if let Some(node) = ControlClient::connect(socket, Duration::from_secs(5)) {
            return Ok(node);
        }
        if Instant::now() > deadline {
            let said =
                last_error(log, start).map_or_else(String::new, |e| format!(" (it said: {e})"));
            return Err(MarketplaceError::Unsupported(format!(
                "the background P2P node did not open its control socket within {}s{said}; see {}",
                wait.as_secs(),
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `error: ` line `log` received from byte `start` on, without
/// the prefix (cut short: the log is the node's, and may hold anything).
fn last_error(log: &Path, start: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    // The tail is enough: the error is the node's last word.
    const TAIL: u64 = 64 << 10;
    let mut file = std::fs::File::open(log).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(start.max(len.saturating_sub(TAIL))))
        .ok()?;
    let mut text = Vec::new();
    file.read_to_end(&mut text).ok()?;
    let text = String::from_utf8_lossy(&text);
    let line = text.lines().rev().find_map(|l| l.strip_prefix("error: "))?;
    Some(crate::backend::excerpt(line.trim(), 400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_error_of_this_run_is_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("node.log");
        std::fs::write(&log, "error: an earlier run\n").unwrap();
        let start = std::fs::metadata(&log).unwrap().len();
        assert_eq!(last_error(&log, start), None);
        let mut text = std::fs::read_to_string(&log).unwrap();
        text.push_str("warning: noise\nerror: cannot listen on /ip4/127.0.0.1/tcp/1\nmore\n");
        std::fs::write(&log, text).unwrap();
        assert_eq!(
            last_error(&log, start).as_deref(),
            Some("cannot listen on /ip4/127.0.0.1/tcp/1")
        );
    }
}
