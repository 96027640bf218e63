//! P2P transfer benchmark (issue 6), release build, two real node processes
//! on 127.0.0.1, side by side in one run with `curl` fetching the very same
//! file from `python3 -m http.server`:
//!
//! * a 10 MB tarball: time of the download alone (the running node's `fetch`
//!   through its control socket: chunk requests, hashing, writing) against
//!   `curl -o` of the same file, median of 7 each;
//! * a 100 MB tarball: peak RSS (VmHWM) of both nodes above their idle RSS.
//!
//! Run: `cargo bench -p ggen --bench p2p_transfer`.

mod common;

use common::{Proc, median, noise, run, start_node};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A control request that must succeed; its answer.
fn control(home: &Path, request: &serde_json::Value) -> serde_json::Value {
    let v = common::control(home, request);
    assert!(v.get("ok").is_some(), "{v}");
    v["ok"].clone()
}

/// Publish a package with `size` incompressible bytes; its record.
fn publish(home: &Path, work: &Path, name: &str, size: usize) -> serde_json::Value {
    let dir = work.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("package.json"),
        serde_json::json!({"name": name, "version": "1.0.0"}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("payload.bin"), noise(size, size as u64)).unwrap();
    run(
        home,
        &["marketplace", "p2p", "publish", dir.to_str().unwrap()],
    );
    let info: serde_json::Value =
        serde_json::from_str(&run(home, &["marketplace", "info", name, "--json"]).1).unwrap();
    info["versions"][0].clone()
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The peers providing `meta`'s tarball, as seen from the node in `home`.
fn provider_order(home: &Path, meta: &serde_json::Value) -> Vec<String> {
    control(
        home,
        &serde_json::json!({"op": "providers", "package": meta}),
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|p| p["peer_id"].as_str().unwrap().to_owned())
    .collect()
}

fn serve_file(home: &Path, meta: &serde_json::Value) -> PathBuf {
    let hex = meta["checksum"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256-");
    home.join(format!("p2p/serve/{hex}.tar.gz"))
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    let a_home = tempfile::tempdir().unwrap();
    let b_home = tempfile::tempdir().unwrap();
    let (a, a_addr, _) = start_node(a_home.path(), &[]);
    let (b, _, _) = start_node(b_home.path(), &["--bootstrap", &a_addr]);

    // 10 MB: the P2P download next to curl from python's http.server.
    let meta = publish(a_home.path(), work.path(), "ten-mb", 10 << 20);
    let file = serve_file(a_home.path(), &meta);
    let size = std::fs::metadata(&file).unwrap().len();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let _http = Proc(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(file.parent().unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let url = format!(
        "http://127.0.0.1:{port}/{}",
        file.file_name().unwrap().to_str().unwrap()
    );
    let order = provider_order(b_home.path(), &meta);
    let mut p2p = Vec::new();
    let mut curl = Vec::new();
    for i in 0..7 {
        let dest = work.path().join(format!("p2p-{i}.tar.gz"));
        let t = Instant::now();
        control(
            b_home.path(),
            &serde_json::json!({"op": "fetch", "package": meta, "order": order, "dest": dest}),
        );
        p2p.push(t.elapsed());
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), size);
        let t = Instant::now();
        let status = Command::new("curl")
            .args([
                "-s",
                "-o",
                work.path().join("curl.tar.gz").to_str().unwrap(),
                &url,
            ])
            .status()
            .unwrap();
        curl.push(t.elapsed());
        assert!(status.success());
    }
    let mbps = |d: Duration| size as f64 / d.as_secs_f64() / (1 << 20) as f64;
    let (p, c) = (median(p2p), median(curl));
    println!(
        "10 MB: P2P fetch {:.1} ms ({:.0} MiB/s), curl from http.server {:.1} ms ({:.0} MiB/s): P2P/curl throughput {:.2}x",
        p.as_secs_f64() * 1000.0,
        mbps(p),
        c.as_secs_f64() * 1000.0,
        mbps(c),
        mbps(p) / mbps(c)
    );

    // 100 MB: memory of both nodes.
    let idle = (status_kb(a.0.id(), "VmRSS:"), status_kb(b.0.id(), "VmRSS:"));
    let meta = publish(a_home.path(), work.path(), "hundred-mb", 100 << 20);
    let order = provider_order(b_home.path(), &meta);
    let dest = work.path().join("big.tar.gz");
    let t = Instant::now();
    control(
        b_home.path(),
        &serde_json::json!({"op": "fetch", "package": meta, "order": order, "dest": dest}),
    );
    let took = t.elapsed();
    let peak = (status_kb(a.0.id(), "VmHWM:"), status_kb(b.0.id(), "VmHWM:"));
    println!(
        "100 MB: fetched in {:.2} s; peak RSS above idle: serving node {:.1} MB, fetching node {:.1} MB (idle {:.1} / {:.1} MB)",
        took.as_secs_f64(),
        peak.0.saturating_sub(idle.0) as f64 / 1024.0,
        peak.1.saturating_sub(idle.1) as f64 / 1024.0,
        idle.0 as f64 / 1024.0,
        idle.1 as f64 / 1024.0
    );
}
