//! Shared by the benchmarks (each uses a part of it).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const GGEN: &str = env!("CARGO_BIN_EXE_ggen");

// The test suites' payload generator, shared rather than copied.
#[path = "../../../tests/support/noise.rs"]
mod payload;
#[allow(unused_imports)] // not every benchmark makes payloads
pub use payload::noise;

// The P2P suite's registry of many packages.
#[path = "../../../tests/support/many.rs"]
mod many;
#[allow(unused_imports)] // only the P2P benchmark plants one
pub use many::plant_registry;

/// `ggen args` in `home`, which must succeed: how long it took and its stdout.
pub fn run(home: &Path, args: &[&str]) -> (Duration, String) {
    let started = Instant::now();
    let out = Command::new(GGEN)
        .args(args)
        .env("GGEN_HOME", home)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "ggen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (elapsed, String::from_utf8(out.stdout).unwrap())
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A child process, killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ggen marketplace p2p start` on 127.0.0.1 in `home` (plus `extra`
/// arguments), once it prints `ready`: the process, its address, and how
/// long it took to get there.
pub fn start_node(home: &Path, extra: &[&str]) -> (Proc, String, Duration) {
    let (process, addr, elapsed, _) = start_node_until(home, extra, "ready");
    (process, addr, elapsed)
}

/// [`start_node`], waiting for the first line that starts with `until`
/// (also returned).
pub fn start_node_until(
    home: &Path,
    extra: &[&str],
    until: &str,
) -> (Proc, String, Duration, String) {
    let started = Instant::now();
    let mut child = Command::new(GGEN)
        .args([
            "marketplace",
            "p2p",
            "start",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--exit-after",
            "600s",
        ])
        .args(extra)
        .env("GGEN_HOME", home)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut last) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("listening on ") {
            addr = a.to_owned();
        }
        if line.starts_with(until) {
            last = line;
            break;
        }
    }
    assert!(!last.is_empty(), "the node stopped before `{until}`");
    let elapsed = started.elapsed();
    // Keep draining stdout so the node never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), addr, elapsed, last)
}

/// One request on a node's control socket (what `ggen` itself sends); the
/// whole answer (`{"ok": ...}` or `{"error": ...}`).
pub fn control(home: &Path, request: &serde_json::Value) -> serde_json::Value {
    let mut s = UnixStream::connect(home.join("p2p/control.sock")).unwrap();
    s.write_all(request.to_string().as_bytes()).unwrap();
    s.write_all(b"\n").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap()
}
