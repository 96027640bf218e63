//! Real `ggen marketplace p2p start` processes on 127.0.0.1 for the P2P
//! suites. Each node has its own GGEN_HOME, a free port, and stops by
//! itself (`--exit-after`) or when the test drops it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::Env;

/// `p2p start` on a free port of 127.0.0.1.
pub const START_LOCAL: [&str; 5] = [
    "marketplace",
    "p2p",
    "start",
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
];

pub struct Node {
    pub env: Env,
    pub peer_id: String,
    pub addr: String,
    child: Child,
}

impl Node {
    /// Start a DHT-server node, optionally bootstrapped from `bootstrap`.
    pub fn start(bootstrap: &[&str]) -> Self {
        Self::start_in(Env::new(), bootstrap)
    }

    pub fn start_in(env: Env, bootstrap: &[&str]) -> Self {
        Self::start_as(env, "--dht-server", bootstrap)
    }

    /// Start a node in `mode` (`--dht-server` or `--dht-client`).
    pub fn start_as(env: Env, mode: &str, bootstrap: &[&str]) -> Self {
        let mut args = START_LOCAL.to_vec();
        args.extend([mode, "--exit-after", "180s"]);
        for b in bootstrap {
            args.extend(["--bootstrap", b]);
        }
        let mut child = env
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(env.work.path().join("node.stderr")).unwrap())
            .spawn()
            .expect("ggen starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The last start-up line: its local packages are on the network.
                let done = line.starts_with("announced:");
                lines.push(line);
                if done {
                    let _ = tx.send(lines.clone());
                }
            }
        });
        let lines = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the node announces its local packages within 30s");
        let field = |prefix: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no `{prefix}` line in {lines:?}"))
                .trim()
                .to_owned()
        };
        Self {
            peer_id: field("PeerId:"),
            addr: field("listening on"),
            env,
            child,
        }
    }

    pub fn home(&self) -> &Path {
        self.env.home()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send the node's process `signal` (e.g. `STOP`, `CONT`).
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Stop the process and hand back its home (for restarts).
    pub fn stop(mut self) -> Env {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.env, Env::new())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Retry `check` until it holds or `limit` passes; the last value either way.
pub fn eventually<T>(limit: Duration, mut check: impl FnMut() -> (bool, T)) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let (ok, value) = check();
        if ok || std::time::Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A package directory with this name, version and description, published
/// into `env`'s local registry by `p2p publish` (through its running node).
pub fn p2p_publish(env: &Env, name: &str, version: &str, description: &str) -> serde_json::Value {
    let dir = env.package(
        &format!("{name}-{version}"),
        &serde_json::json!({"name": name, "version": version, "description": description, "tags": ["p2p"]}),
        &[("README.md", description)],
    );
    env.json(&[
        "marketplace",
        "p2p",
        "publish",
        dir.to_str().unwrap(),
        "--json",
    ])
}
