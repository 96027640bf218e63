//! `p2p start --daemon`: the same command again, detached, with its output
//! in `$GGEN_HOME/p2p/node.log`; we return once its control socket answers.

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
    // Else the wait below would find the running node's socket and report
    // it as the one just started.
    super::running::check_free(socket.parent().unwrap_or(Path::new(".")))?;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(fail)?;
    let err = out.try_clone().map_err(fail)?;
    let exe = std::env::current_exe().map_err(fail)?;
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
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
            return Err(MarketplaceError::Unsupported(format!(
                "the background P2P node exited ({status}); see {}",
                log.display()
            )));
        }
        if let Some(node) = ControlClient::connect(socket, Duration::from_secs(5)) {
            return Ok(node);
        }
        if Instant::now() > deadline {
            return Err(MarketplaceError::Unsupported(format!(
                "the background P2P node did not open its control socket within {}s; see {}",
                wait.as_secs(),
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
