//! P2P benchmark (issue 5), real `ggen` node processes on 127.0.0.1, release
//! build. In one run, next to the cost of starting the `ggen` process at all
//! (`ggen --version`, the floor of every command):
//!
//! * node start → listening and bootstrapped (the `ready` line);
//! * `p2p publish` on node 1 → found by `p2p search` on node 3 (node 3
//!   bootstrapped only through node 2);
//! * 50 nodes as separate processes: one announcement → every node has it
//!   (polled through the control sockets);
//! * `p2p search` over the 50 nodes from a short-lived client node, and
//!   through a running node;
//! * a node whose local registry holds 10,000 packages (GGEN_BENCH_LOCAL to
//!   change), bootstrapped from one peer: start → `announced` (every
//!   tarball exported and checked, every record put), first start and
//!   restart (the copies are there), next to the same node with an empty
//!   registry.
//!
//! Run: `cargo bench -p ggen --bench p2p` (GGEN_BENCH_NODES to change 50).

mod common;

use common::{Proc, control, median, ms, run, start_node, start_node_until};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Node {
    // Declared first so the process stops before its home is removed.
    _process: Proc,
    home: tempfile::TempDir,
    addr: String,
}

/// A GGEN_HOME whose compiled-plugin cache is warm, as any user's is after
/// the first command: nodes start from a copy, so 50 of them do not all
/// compile the registry plugin at once on two cores.
fn warm_cache() -> &'static Path {
    static WARM: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    WARM.get_or_init(|| {
        let home = tempfile::tempdir().unwrap();
        run(home.path(), &["marketplace", "search", "warm-up"]);
        home
    })
    .path()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn start(bootstrap: Option<&str>) -> (Node, Duration) {
    let home = tempfile::tempdir().unwrap();
    copy_dir(
        &warm_cache().join("cache/plugins"),
        &home.path().join("cache/plugins"),
    );
    let mut extra = vec!["--dht-server"];
    if let Some(b) = bootstrap {
        extra.extend(["--bootstrap", b]);
    }
    let (process, addr, elapsed) = start_node(home.path(), &extra);
    (
        Node {
            _process: process,
            home,
            addr,
        },
        elapsed,
    )
}

fn package(dir: &Path, name: &str, description: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("package.json"),
        serde_json::json!({"name": name, "version": "1.0.0", "description": description})
            .to_string(),
    )
    .unwrap();
    p
}

fn main() {
    let nodes: usize = std::env::var("GGEN_BENCH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let work = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();

    let floor = median(
        (0..9)
            .map(|_| run(scratch.path(), &["--version"]).0)
            .collect(),
    );
    println!("process floor (ggen --version): {}", ms(floor));

    // Start-up: 9 nodes each bootstrapping from a hub.
    let (hub, hub_start) = start(None);
    let mut startups = vec![hub_start];
    let mut extra = Vec::new();
    for _ in 0..8 {
        let (n, t) = start(Some(&hub.addr));
        startups.push(t);
        extra.push(n);
    }
    drop(extra);
    println!(
        "node start → listening + bootstrapped: median {}",
        ms(median(startups))
    );

    // A node serving a large local registry.
    let local: usize = std::env::var("GGEN_BENCH_LOCAL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let (big, empty) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for home in [&big, &empty] {
        copy_dir(
            &warm_cache().join("cache/plugins"),
            &home.path().join("cache/plugins"),
        );
    }
    common::plant_registry(&big.path().join("registry"), "local", local);
    run(big.path(), &["marketplace", "search", "local"]); // builds the derived index
    // Each stops (dropped) before the next start in its home.
    let announced = |home: &Path| {
        let (_node, _, elapsed, line) =
            start_node_until(home, &["--bootstrap", &hub.addr], "announced");
        (elapsed, line)
    };
    let (none, _) = announced(empty.path());
    let (first, line) = announced(big.path());
    let (again, _) = announced(big.path());
    println!(
        "{local} local packages, start → announced: first start {}, restart {} (empty registry {}); {line}",
        ms(first),
        ms(again),
        ms(none)
    );

    // Publish on node 1 → found on node 3 (through node 2).
    let (n2, _) = start(Some(&hub.addr));
    let (n3, _) = start(Some(&n2.addr));
    let mut found_times = Vec::new();
    let mut local_times = Vec::new();
    let local = tempfile::tempdir().unwrap();
    copy_dir(
        &warm_cache().join("cache/plugins"),
        &local.path().join("cache/plugins"),
    );
    for i in 0..5 {
        let name = format!("bench-pkg-{i}");
        let dir = package(work.path(), &name, "measured");
        let started = Instant::now();
        run(
            hub.home.path(),
            &["marketplace", "p2p", "publish", dir.to_str().unwrap()],
        );
        loop {
            let r = control(
                n3.home.path(),
                &json!({
                    "op": "search",
                    "query": {"text": name, "categories": [], "tags": [], "limit": 10, "offset": 0},
                    "names": [],
                }),
            );
            if r.to_string().contains(&name) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never found");
            std::thread::sleep(Duration::from_millis(2));
        }
        found_times.push(started.elapsed());
        // The same package through the local registry only, for comparison.
        let t = Instant::now();
        run(
            local.path(),
            &["marketplace", "publish", dir.to_str().unwrap()],
        );
        run(local.path(), &["marketplace", "search", &name]);
        local_times.push(t.elapsed());
    }
    println!(
        "publish on node 1 → found on node 3: median {} (local publish + search: {})",
        ms(median(found_times)),
        ms(median(local_times))
    );
    drop((n2, n3));

    // N nodes, each bootstrapped from a random earlier one.
    let mut crowd = vec![hub];
    let mut seed = 0x2545_f491_u64;
    let started = Instant::now();
    while crowd.len() < nodes {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let via = crowd[(seed as usize) % crowd.len()].addr.clone();
        crowd.push(start(Some(&via)).0);
    }
    println!(
        "{nodes} nodes started in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(5)); // let meshes form
    let dir = package(work.path(), "crowd-news", "spreading");
    let started = Instant::now();
    run(
        crowd[nodes / 2].home.path(),
        &["marketplace", "p2p", "publish", dir.to_str().unwrap()],
    );
    let mut pending: Vec<usize> = (0..nodes).filter(|&i| i != nodes / 2).collect();
    let mut arrivals = Vec::new();
    while !pending.is_empty() {
        pending.retain(|&i| {
            let s = control(crowd[i].home.path(), &json!({"op": "status"}));
            let heard = s["ok"]["metrics"]["announcements_received"]
                .as_u64()
                .unwrap_or(0)
                > 0;
            if heard {
                let peers = s["ok"]["connected_peers"].as_array().map_or(0, |a| a.len());
                arrivals.push((started.elapsed(), i, peers));
            }
            !heard
        });
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} nodes never heard",
            pending.len()
        );
    }
    if std::env::var_os("GGEN_BENCH_VERBOSE").is_some() {
        for (t, i, peers) in &arrivals {
            println!("  node {i:2} ({peers:2} peers) heard after {}", ms(*t));
        }
    }
    println!(
        "announcement reached all {} other nodes in {} (including the publish process)",
        nodes - 1,
        ms(started.elapsed())
    );

    let client = tempfile::tempdir().unwrap();
    copy_dir(
        &warm_cache().join("cache/plugins"),
        &client.path().join("cache/plugins"),
    );
    let client_search: Vec<Duration> = (0..5)
        .map(|_| {
            let (t, out) = run(
                client.path(),
                &[
                    "marketplace",
                    "p2p",
                    "search",
                    "crowd-news",
                    "--bootstrap",
                    &crowd[nodes - 1].addr,
                    "--json",
                ],
            );
            assert!(out.contains("crowd-news"), "{out}");
            t
        })
        .collect();
    let node_search: Vec<Duration> = (0..5)
        .map(|_| {
            let (t, out) = run(
                crowd[1].home.path(),
                &["marketplace", "p2p", "search", "spreading", "--json"],
            );
            assert!(out.contains("crowd-news"), "{out}");
            t
        })
        .collect();
    println!(
        "p2p search over {nodes} nodes: short-lived client node {}, through a running node {}",
        ms(median(client_search)),
        ms(median(node_search))
    );
}
