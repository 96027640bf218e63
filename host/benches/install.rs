//! Install benchmark (issue 3), whole processes, release build:
//!
//! * a 10-package dependency graph of 1 MB tarballs installed from the local
//!   registry, next to the floor of the same work in a shell loop
//!   (`sha256sum` + `tar xzf` of the same ten files), both in this run;
//! * one 100 MB package: time and peak RSS (GNU time's maximum resident size).
//!
//! Run: `cargo bench -p ggen --bench install` (GGEN_BENCH_RUNS to change the sample count).

mod common;

use common::{ms, noise, run};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ggen(home: &Path, args: &[&str]) -> Duration {
    run(home, args).0
}

fn publish(home: &Path, work: &Path, name: &str, deps: serde_json::Value, size: usize, seed: u64) {
    let dir = work.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("package.json"),
        serde_json::json!({"name": name, "version": "1.0.0", "dependencies": deps}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("payload.bin"), noise(size, seed)).unwrap();
    ggen(home, &["marketplace", "publish", dir.to_str().unwrap()]);
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[0], v[v.len() / 2])
}

fn main() {
    let runs: usize = std::env::var("GGEN_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();

    // app -> mid0..mid3 -> leaf0..leaf4 (a diamond-rich graph of 10 packages).
    for i in 0..5 {
        publish(
            home.path(),
            work.path(),
            &format!("leaf{i}"),
            serde_json::json!({}),
            1 << 20,
            10 + i,
        );
    }
    for i in 0..4 {
        let deps = serde_json::json!({format!("leaf{i}"): "^1", format!("leaf{}", i + 1): "^1"});
        publish(
            home.path(),
            work.path(),
            &format!("mid{i}"),
            deps,
            1 << 20,
            20 + i,
        );
    }
    publish(
        home.path(),
        work.path(),
        "app",
        serde_json::json!({"mid0": "^1", "mid1": "^1", "mid2": "^1", "mid3": "^1"}),
        1 << 20,
        30,
    );

    let mut ours = Vec::new();
    for run in 0..runs {
        let target = work.path().join(format!("t{run}"));
        ours.push(ggen(
            home.path(),
            &[
                "marketplace",
                "install",
                "app",
                "--target",
                target.to_str().unwrap(),
            ],
        ));
    }
    let tarballs: Vec<String> = std::fs::read_dir(home.path().join("registry"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            format!("{}/1.0.0/{name}-1.0.0.tar.gz", e.path().display())
        })
        .collect();
    assert_eq!(tarballs.len(), 10);
    let mut floor = Vec::new();
    for run in 0..runs {
        let out = work.path().join(format!("s{run}"));
        let script = format!(
            "set -e; for f in {}; do sha256sum \"$f\" >/dev/null; d={}/$(basename \"$f\" .tar.gz); mkdir -p \"$d\"; tar xzf \"$f\" -C \"$d\"; done",
            tarballs.join(" "),
            out.display()
        );
        let started = Instant::now();
        assert!(
            Command::new("bash")
                .arg("-c")
                .arg(&script)
                .status()
                .unwrap()
                .success()
        );
        floor.push(started.elapsed());
    }
    let ((our_min, our_med), (floor_min, floor_med)) = (stats(ours), stats(floor));
    println!("## install: 10 packages x 1 MB, {runs} runs\n");
    println!("| | min | median |\n|---|---|---|");
    println!(
        "| `ggen marketplace install app` | {} | {} |",
        ms(our_min),
        ms(our_med)
    );
    println!(
        "| sha256sum + tar xzf loop | {} | {} |",
        ms(floor_min),
        ms(floor_med)
    );
    println!(
        "| ratio | {:.2}x | {:.2}x |\n",
        our_min.as_secs_f64() / floor_min.as_secs_f64(),
        our_med.as_secs_f64() / floor_med.as_secs_f64()
    );

    // One 100 MB package: time and peak memory of the whole process.
    publish(
        home.path(),
        work.path(),
        "huge",
        serde_json::json!({}),
        100 << 20,
        99,
    );
    let target = work.path().join("huge-target");
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %M"])
        .arg(env!("CARGO_BIN_EXE_ggen"))
        .args([
            "marketplace",
            "install",
            "huge",
            "--target",
            target.to_str().unwrap(),
        ])
        .env("GGEN_HOME", home.path())
        .stdout(Stdio::null())
        .output()
        .expect("GNU time (/usr/bin/time) is needed for the memory measurement");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    let mut parts = last.split_whitespace();
    let secs: f64 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    let kib: f64 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    let idle = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(env!("CARGO_BIN_EXE_ggen"))
        .args(["marketplace", "list"])
        .env("GGEN_HOME", home.path())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let idle_kib: f64 = String::from_utf8_lossy(&idle.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(f64::NAN);
    println!("## install: one 100 MB package\n");
    println!(
        "| time | peak RSS | peak RSS of `ggen marketplace list` (no plugin) |\n|---|---|---|"
    );
    println!(
        "| {secs:.2} s | {:.1} MB | {:.1} MB |",
        kib / 1024.0,
        idle_kib / 1024.0
    );
}
