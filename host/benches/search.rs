//! Search benchmark (issue 2): registries of 1k, 10k and 100k packages.
//!
//! * `ggen marketplace search` as a whole process, warm plugin cache: median of many runs;
//! * plugin load from the compiled cache (deserialize + link + instantiate);
//! * the same search through the WASM plugin and natively in this process
//!   (the very same file-registry code compiled for the host), calls
//!   alternating so that noise on the machine falls on both alike;
//! * the whole `ggen marketplace search rust web` process next to a process
//!   that does the same natively (this benchmark run again with
//!   `GGEN_BENCH_NATIVE_SEARCH`: config, registry, search, print), alternating;
//! * the cold first run: compiling the plugin, and rebuilding the search index;
//! * `ggen marketplace info <name>` reading the package's entry from the
//!   derived index, next to the same command while index.json's mtime says
//!   the derived index is stale (it then parses the whole index.json, as
//!   every call about one package did before the package table), alternating.
//!
//! Run: `cargo bench -p ggen --bench search` (GGEN_BENCH_SIZES=1000,10000 to
//! pick sizes, GGEN_BENCH_RUNS to change the sample count).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ggen::backend::plugin::{Limits, PluginEngine, Policy, WasmRegistry, WasmSource, embedded};
use ggen::backend::{Query, Registry};
use ggen::home::GgenHome;
use ggen::session::{Overrides, Session};
use ggen_file_registry::FileRegistry;

/// Set (to the query) in the child that plays a native `ggen marketplace search`.
const NATIVE_SEARCH: &str = "GGEN_BENCH_NATIVE_SEARCH";

const WORDS: &[&str] = &[
    "rust",
    "web",
    "cli",
    "api",
    "http",
    "service",
    "template",
    "react",
    "vue",
    "python",
    "fastapi",
    "axum",
    "tokio",
    "async",
    "grpc",
    "graphql",
    "docker",
    "kube",
    "terraform",
    "ci",
    "test",
    "lint",
    "sql",
    "postgres",
    "redis",
    "cache",
    "auth",
    "jwt",
    "oauth",
    "crud",
    "admin",
    "dashboard",
    "chart",
    "ml",
    "data",
    "etl",
    "stream",
    "kafka",
    "queue",
    "worker",
    "cron",
    "email",
    "pdf",
    "image",
    "video",
    "audio",
    "game",
    "bevy",
    "wasm",
    "embedded",
    "iot",
];
const CATEGORIES: &[&str] = &["web", "cli", "backend", "frontend", "data", "devops"];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// A seeds-format index.json with `n` packages, as another tool would write it.
fn generate(root: &Path, n: usize) -> String {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut packages = serde_json::Map::new();
    let mut probe = String::new();
    for i in 0..n {
        let (w1, w2) = (rng.pick(WORDS), rng.pick(WORDS));
        let name = format!("{w1}-{w2}-{i}");
        if i == n / 2 {
            probe = name.clone();
        }
        let description: Vec<&str> = (0..12).map(|_| rng.pick(WORDS)).collect();
        let version = format!("1.{}.0", i % 10);
        packages.insert(
            name.clone(),
            serde_json::json!({"name": name, "versions": [{
                "version": version, "title": format!("{w1} {w2} template {i}"),
                "description": format!("{} template number {i}", description.join(" ")),
                "categories": [rng.pick(CATEGORIES), rng.pick(CATEGORIES)],
                "tags": [rng.pick(WORDS), rng.pick(WORDS), rng.pick(WORDS)],
                "authors": ["bench"], "license": "MIT", "dependencies": {},
                "checksum": format!("sha256-{:016x}{:016x}{:016x}{:016x}", rng.next(), rng.next(), rng.next(), rng.next()),
                "tarball": format!("{name}/{version}/{name}-{version}.tar.gz"),
                "published_at": "2026-01-01T00:00:00Z", "size": 1000
            }]}),
        );
    }
    let index = serde_json::json!({"version": "1", "updated_at": "2026-01-01T00:00:00Z", "packages": packages});
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    probe
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Median wall time of `runs` calls of `f`.
fn sample(runs: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

/// Medians of `runs` calls of `f` and of `g`, alternating, so that the
/// machine's noise falls on both alike.
fn sample_pair(runs: usize, mut f: impl FnMut(), mut g: impl FnMut()) -> (Duration, Duration) {
    let (mut a, mut b) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        let t = Instant::now();
        f();
        a.push(t.elapsed());
        let t = Instant::now();
        g();
        b.push(t.elapsed());
    }
    (median(a), median(b))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// What `ggen marketplace search <text>` does with the file registry compiled
/// into the host instead of sandboxed: read the config, search the same
/// registry through the same derived index, print a table.
fn native_search_process(text: &str) {
    let session = Session::new(GgenHome::from_env().unwrap(), Overrides::default()).unwrap();
    let data = session.registry_data_dir(embedded::FILE_REGISTRY.name);
    let results = FileRegistry::new(&session.registry_root, &data)
        .search(&sdk_query(text))
        .unwrap();
    let width = results.hits.iter().map(|h| h.name.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for hit in &results.hits {
        writeln!(
            out,
            "{:<width$}  {:<8}  {}",
            hit.name, hit.version, hit.title
        )
        .unwrap();
    }
    writeln!(
        out,
        "\n1-{} of {} matches",
        results.hits.len(),
        results.total
    )
    .unwrap();
}

/// `ggen marketplace search <text>` as the native child above.
fn native_cli(home: &Path, text: &str) -> Duration {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child.env(NATIVE_SEARCH, text);
    timed(child, home)
}

fn cli(home: &Path, args: &[&str]) -> Duration {
    let mut ggen = Command::new(env!("CARGO_BIN_EXE_ggen"));
    ggen.args(args);
    timed(ggen, home)
}

/// How long `cmd` took in `home`; it must succeed.
fn timed(mut cmd: Command, home: &Path) -> Duration {
    let started = Instant::now();
    let status = cmd
        .env("GGEN_HOME", home)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(status.success(), "{cmd:?} failed");
    elapsed
}

fn query(text: &str) -> Query {
    Query {
        text: text.into(),
        categories: vec![],
        tags: vec![],
        limit: 20,
        offset: 0,
    }
}

fn sdk_query(text: &str) -> ggen_plugin_sdk::Query {
    ggen_plugin_sdk::Query {
        text: text.into(),
        categories: vec![],
        tags: vec![],
        limit: 20,
        offset: 0,
    }
}

/// In-process search calls are cheap: many more samples than CLI runs.
const CALL_RUNS: usize = 101;

const LIMITS: Limits = Limits {
    deadline: Duration::from_secs(60),
    memory_bytes: 1 << 30,
};

fn main() {
    if let Ok(text) = std::env::var(NATIVE_SEARCH) {
        return native_search_process(&text);
    }
    let sizes: Vec<usize> = std::env::var("GGEN_BENCH_SIZES")
        .map(|s| s.split(',').map(|n| n.trim().parse().unwrap()).collect())
        .unwrap_or_else(|_| vec![1_000, 10_000, 100_000]);
    let runs: usize = std::env::var("GGEN_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(21);

    // Cold start: an empty GGEN_HOME compiles the embedded plugin once.
    let cold = tempfile::tempdir().unwrap();
    let first = cli(cold.path(), &["marketplace", "search", "x"]);
    let second = sample(runs, || {
        _ = cli(cold.path(), &["marketplace", "search", "x"])
    });
    println!("## cold start (empty registry)\n");
    println!(
        "| first run (compiles the plugin) | warm run (median of {runs}) |\n|---|---|\n| {} | {} |\n",
        ms(first),
        ms(second)
    );

    println!(
        "## search, {runs} runs per CLI cell, {CALL_RUNS} alternating WASM/native calls (medians)\n"
    );
    println!(
        "| packages | first search (compile + index build) | CLI `search rust web` | native process `search rust web` | CLI / native process | CLI `search kafka` | CLI exact name | plugin load (cached) | WASM search call | native search call | WASM / native | fresh instance + search |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut info_rows = Vec::new();
    for n in sizes {
        let home = tempfile::tempdir().unwrap();
        let root = home.path().join("registry");
        let probe = generate(&root, n);
        let rebuild = cli(home.path(), &["marketplace", "search", "rust", "web"]);
        let cli_med =
            |q: &str| sample(runs, || _ = cli(home.path(), &["marketplace", "search", q]));
        let (multi, native_process) = sample_pair(
            runs,
            || _ = cli(home.path(), &["marketplace", "search", "rust web"]),
            || _ = native_cli(home.path(), "rust web"),
        );
        let (common, exact) = (cli_med("kafka"), cli_med(&probe));

        // In process: the same registry through the plugin and natively.
        let engine = PluginEngine::new(home.path().join("cache")).unwrap();
        let source = WasmSource::embedded(&embedded::FILE_REGISTRY);
        let data = home.path().join("bench-data");
        let policy = Policy::registry(root.clone(), data.clone(), LIMITS);
        let load = sample(runs, || {
            drop(WasmRegistry::load(&engine, &source, &policy).unwrap())
        });
        let mut wasm = WasmRegistry::load(&engine, &source, &policy).unwrap();
        let q = query("rust web");
        let expected = wasm.search(&q).unwrap(); // also builds this data dir's search index
        let native = FileRegistry::new(&root, &data);
        let nq = sdk_query("rust web");
        let (wasm_call, native_call) = sample_pair(
            CALL_RUNS,
            || assert_eq!(wasm.search(&q).unwrap().total, expected.total),
            || assert_eq!(native.search(&nq).unwrap().total, expected.total),
        );
        let fresh = sample(runs, || {
            WasmRegistry::load(&engine, &source, &policy)
                .unwrap()
                .search(&q)
                .unwrap();
        });
        println!(
            "| {n} | {} | {} | {} | {:.2}x | {} | {} | {} | {} | {} | {:.2}x | {} |",
            ms(rebuild),
            ms(multi),
            ms(native_process),
            multi.as_secs_f64() / native_process.as_secs_f64(),
            ms(common),
            ms(exact),
            ms(load),
            ms(wasm_call),
            ms(native_call),
            wasm_call.as_secs_f64() / native_call.as_secs_f64(),
            ms(fresh)
        );

        // The derived index was built for index.json's current mtime; any
        // other mtime makes it stale, and the original makes it fresh again.
        let index = std::fs::File::options()
            .write(true)
            .open(root.join("index.json"))
            .unwrap();
        let built_for = index.metadata().unwrap().modified().unwrap();
        let info = |mtime| {
            index.set_modified(mtime).unwrap();
            cli(home.path(), &["marketplace", "info", &probe])
        };
        let (table, parse) = sample_pair(
            runs,
            || _ = info(built_for),
            || _ = info(built_for + Duration::from_secs(1)),
        );
        index.set_modified(built_for).unwrap();
        info_rows.push(format!(
            "| {n} | {} | {} | {:.1}x |",
            ms(table),
            ms(parse),
            parse.as_secs_f64() / table.as_secs_f64()
        ));
    }
    println!(
        "\n## `info <name>`, {runs} alternating runs each (medians)\n\n| packages | from the package table | parsing index.json | speed-up |\n|---|---|---|---|"
    );
    for row in info_rows {
        println!("{row}");
    }
}
