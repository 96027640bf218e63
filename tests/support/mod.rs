//! Helpers shared by the end-to-end suites: run the real `ggen` binary in a
//! temporary GGEN_HOME, write package directories, build fixture plugins.
#![allow(dead_code)]

pub mod archives;
pub mod many;
pub mod nodes;
mod noise;

#[allow(unused_imports)] // not every suite makes payloads
pub use noise::noise;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `field` of every object in the JSON array `list` (panics if it is not one:
/// the output format is what the tests check).
pub fn strings<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|v| {
            v[field]
                .as_str()
                .unwrap_or_else(|| panic!("no string {field} in {v}"))
        })
        .collect()
}

/// The object named `name` in the JSON array `list` (panics if there is none).
pub fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

/// A scratch GGEN_HOME plus helpers to run ggen in it.
pub struct Env {
    pub home: tempfile::TempDir,
    pub work: tempfile::TempDir,
    /// Variables every command of this env gets (e.g. a test fault).
    pub extra_env: Vec<(String, String)>,
    /// Commands run as this user (through `setpriv`) with this copy of
    /// ggen, see [`Env::unprivileged`].
    run_as: Option<(u32, PathBuf)>,
}

/// The user `nobody`.
const NOBODY: u32 = 65534;

impl Env {
    pub fn new() -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
            extra_env: Vec::new(),
            run_as: None,
        }
    }

    /// An env whose commands run without root's power to write through
    /// any permission: when the tests run as root, as `nobody` (through
    /// util-linux's `setpriv`), the home and work directories handed to it,
    /// with a copy of ggen it can reach (the build's may lie under a
    /// directory only root may enter).
    pub fn unprivileged() -> Self {
        use std::os::unix::fs::MetadataExt;
        let mut env = Self::new();
        if std::fs::metadata("/proc/self").unwrap().uid() == 0 {
            for dir in [env.home.path(), env.work.path()] {
                std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
            }
            let bin = env.work.path().join(".bin");
            std::fs::create_dir(&bin).unwrap();
            std::fs::copy(env!("CARGO_BIN_EXE_ggen"), bin.join("ggen")).unwrap();
            env.run_as = Some((NOBODY, bin.join("ggen")));
        }
        env
    }

    /// Give `path` to the user an [`Env::unprivileged`] runs commands as.
    pub fn hand_over(&self, path: &Path) {
        if let Some((id, _)) = self.run_as {
            std::os::unix::fs::chown(path, Some(id), Some(id)).unwrap();
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Write `$GGEN_HOME/config.toml`.
    pub fn write_config(&self, toml: impl AsRef<[u8]>) {
        std::fs::write(self.home().join("config.toml"), toml).unwrap();
    }

    pub fn registry(&self) -> PathBuf {
        self.home.path().join("registry")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = match &self.run_as {
            None => Command::new(env!("CARGO_BIN_EXE_ggen")),
            Some((id, ggen)) => {
                let mut cmd = Command::new("setpriv");
                cmd.arg(format!("--reuid={id}"))
                    .arg(format!("--regid={id}"))
                    .arg("--clear-groups")
                    .arg(ggen);
                cmd
            }
        };
        cmd.args(args)
            .env("GGEN_HOME", self.home.path())
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Run and return the output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("ggen runs")
    }

    /// Run, assert success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_warned(args).0
    }

    /// Run, assert success, return stdout and stderr (its warnings).
    pub fn ok_warned(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "ggen {args:?} failed ({}):\nstdout: {}\nstderr: {stderr}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
        );
        (String::from_utf8(out.stdout).unwrap(), stderr)
    }

    /// Run, assert failure with a one-line error, return that line.
    pub fn fails(&self, args: &[&str]) -> String {
        self.one_error(args, self.run(args))
    }

    /// As [`Env::fails`] for a command that might hang: killed, and the test
    /// failed, if it still runs after `limit`. A hang check, not a timing
    /// assertion: give `limit` a wide margin.
    pub fn fails_unless_hung(&self, args: &[&str], limit: std::time::Duration) -> String {
        use std::process::Stdio;
        let mut child = (self.cmd(args).stdout(Stdio::piped()).stderr(Stdio::piped()))
            .spawn()
            .expect("ggen runs");
        let started = std::time::Instant::now();
        // Output stays small here: a full pipe would block the child.
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > limit {
                child.kill().unwrap();
                panic!("ggen {args:?} still ran after {limit:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.one_error(args, child.wait_with_output().unwrap())
    }

    fn one_error(&self, args: &[&str], out: Output) -> String {
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            !out.status.success(),
            "ggen {args:?} should fail; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "ggen {args:?} exited with {}: {stderr}",
            out.status
        );
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "expected exactly one error line, got: {stderr}"
        );
        errors[0].to_string()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("ggen {args:?} printed invalid JSON ({e}): {out}"))
    }

    /// Write a package directory under the work dir with this package.json and files.
    pub fn package(&self, dir: &str, manifest: &Value, files: &[(&str, &str)]) -> PathBuf {
        let path = self.work.path().join(dir);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(
            path.join("package.json"),
            serde_json::to_string_pretty(manifest).unwrap(),
        )
        .unwrap();
        for (name, content) in files {
            let file = path.join(name);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, content).unwrap();
        }
        path
    }

    /// Publish a package described by its manifest; returns the package dir.
    pub fn publish(&self, manifest: Value) -> PathBuf {
        let name = format!(
            "{}-{}",
            manifest["name"].as_str().unwrap(),
            manifest["version"].as_str().unwrap()
        );
        let dir = self.package(
            &name,
            &manifest,
            &[
                ("README.md", &format!("# {name}\n")),
                ("templates/main.tmpl", "{{name}}\n"),
            ],
        );
        self.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
        dir
    }
}

/// Everything under `dir`, for before/after comparisons: each file with its
/// bytes, each directory (`name/`, so an empty one left behind shows), each
/// symlink with its target (not followed), anything else by its kind.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let Ok(meta) = p.symlink_metadata() else {
                continue;
            };
            let kind = meta.file_type();
            if kind.is_symlink() {
                let to = std::fs::read_link(&p).unwrap_or_default();
                out.push((rel, format!("-> {}", to.display()).into_bytes()));
            } else if kind.is_dir() {
                out.push((format!("{rel}/"), Vec::new()));
                walk(root, &p, out);
            } else if kind.is_file() {
                out.push((rel, std::fs::read(&p).unwrap_or_default()));
            } else {
                out.push((rel, format!("{kind:?}").into_bytes()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Build the test-fixture plugins (tests/fixtures) once per test process and
/// return the path of one of them (`name` as in its crate, e.g. "hostile").
pub fn fixture(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = workspace_root();
        let target = root.join("target/wasm-fixtures");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(root.join("tests/fixtures/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the fixture plugins failed");
        target.join("wasm32-wasip2/release")
    });
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.is_file(), "fixture {} missing", path.display());
    path
}

pub fn manifest(name: &str, version: &str) -> Value {
    serde_json::json!({ "name": name, "version": version })
}

/// A small catalogue chosen so each ranking tier has exactly one package for
/// the query "rust", plus a second version and a dependency.
pub fn publish_catalog(env: &Env, extra: &[&str]) {
    let catalog = [
        serde_json::json!({"name": "go-service", "version": "1.0.0", "title": "Go service", "description": "A service ported from Rust", "categories": ["backend"], "tags": ["go"]}),
        serde_json::json!({"name": "python-cli", "version": "0.2.0", "title": "Python CLI", "description": "Click based CLI", "categories": ["cli"], "tags": ["python", "rust"]}),
        serde_json::json!({"name": "axum-starter", "version": "0.1.0", "title": "Rust Axum starter", "description": "HTTP API skeleton", "categories": ["web", "backend"], "tags": ["http"]}),
        serde_json::json!({"name": "my-rust-tool", "version": "2.0.0", "title": "My tool", "description": "A command line tool", "categories": ["cli"], "tags": ["tool"]}),
        serde_json::json!({"name": "rust-web", "version": "1.0.0", "title": "Rust web", "description": "Web app template", "categories": ["web"], "tags": ["http", "web"], "license": "MIT", "authors": ["Ada"]}),
        serde_json::json!({"name": "rust-web", "version": "1.1.0", "title": "Rust web", "description": "Web app template, now with TLS", "categories": ["web"], "tags": ["http", "web", "tls"], "license": "MIT", "authors": ["Ada"], "dependencies": {"rust": "^0.9"}}),
        serde_json::json!({"name": "rust-web", "version": "2.0.0-beta.1", "title": "Rust web", "description": "Web app template, rewritten", "categories": ["web"], "tags": ["http", "web"], "license": "MIT", "authors": ["Ada"]}),
        serde_json::json!({"name": "rust", "version": "0.9.3", "title": "Base", "description": "Shared base templates", "categories": ["base"], "tags": []}),
    ];
    for manifest in catalog {
        let name = format!(
            "{}-{}",
            manifest["name"].as_str().unwrap(),
            manifest["version"].as_str().unwrap()
        );
        let dir = env.package(
            &name,
            &manifest,
            &[
                ("README.md", &format!("# {name}\n")),
                ("templates/main.tmpl", "{{name}}\n"),
            ],
        );
        let mut args = extra.to_vec();
        args.extend(["marketplace", "publish", dir.to_str().unwrap()]);
        env.ok(&args);
    }
}

fn names(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The search and info behaviour every backend must show for `publish_catalog`.
pub fn check_catalog(env: &Env, extra: &[&str]) {
    let run = |args: &[&str]| {
        let mut all = extra.to_vec();
        all.extend(args);
        env.json(&all)
    };
    // Ranking: exact name, name prefix, name contains, title, tags, description.
    let r = run(&["marketplace", "search", "rust", "--json"]);
    assert_eq!(
        names(&r),
        [
            "rust",
            "rust-web",
            "my-rust-tool",
            "axum-starter",
            "python-cli",
            "go-service"
        ]
    );
    assert_eq!(r["total"], 6);
    // The newest stable version is what search shows (as install picks it),
    // not the newer pre-release.
    assert_eq!(r["results"][1]["version"], "1.1.0");
    assert_eq!(r["results"][1]["dependencies"]["rust"], "^0.9");
    // Case-insensitive, every term must match.
    assert_eq!(
        names(&run(&["marketplace", "search", "RUST", "WEB", "--json"])),
        ["rust-web"]
    );
    assert_eq!(
        names(&run(&["marketplace", "search", "tls", "--json"])),
        ["rust-web"]
    );
    // Filters: category, tags (all required), limit and offset.
    assert_eq!(
        names(&run(&[
            "marketplace",
            "search",
            "rust",
            "--category",
            "web",
            "--json"
        ])),
        ["rust-web", "axum-starter"]
    );
    assert_eq!(
        names(&run(&[
            "marketplace",
            "search",
            "--category",
            "CLI",
            "--json"
        ])),
        ["my-rust-tool", "python-cli"]
    );
    assert_eq!(
        names(&run(&[
            "marketplace",
            "search",
            "--tag",
            "http",
            "--tag",
            "web",
            "--json"
        ])),
        ["rust-web"]
    );
    let page = run(&[
        "marketplace",
        "search",
        "rust",
        "--limit",
        "2",
        "--offset",
        "1",
        "--json",
    ]);
    assert_eq!(names(&page), ["rust-web", "my-rust-tool"]);
    assert_eq!(page["total"], 6);
    assert_eq!(
        names(&run(&[
            "marketplace",
            "search",
            "nothing-like-this",
            "--json"
        ])),
        Vec::<String>::new()
    );

    // info: every version, newest first, with dependencies and checksums.
    let info = run(&["marketplace", "info", "rust-web", "--json"]);
    let versions = info["versions"].as_array().unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["2.0.0-beta.1", "1.1.0", "1.0.0"]
    );
    assert_eq!(versions[1]["dependencies"]["rust"], "^0.9");
    assert!(versions[2]["dependencies"].as_object().unwrap().is_empty());
    for v in versions {
        let checksum = v["checksum"].as_str().unwrap();
        assert!(
            checksum.starts_with("sha256-") && checksum.len() == 71,
            "{checksum}"
        );
        assert_eq!(v["license"], "MIT");
        assert!(v["size"].as_u64().unwrap() > 0);
    }
}

/// Put `bytes` in the registry as `name@version`'s tarball, with a matching
/// checksum: what a registry filled by another tool could hold.
pub fn plant_tarball(env: &Env, name: &str, version: &str, bytes: &[u8]) {
    let path = env
        .registry()
        .join(format!("{name}/{version}/{name}-{version}.tar.gz"));
    std::fs::write(&path, bytes).unwrap();
    let index_path = env.registry().join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let entry = index["packages"][name]["versions"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|v| v["version"] == version)
        .unwrap();
    entry["checksum"] = serde_json::json!(format!("sha256-{}", sha256_hex(bytes)));
    entry["size"] = serde_json::json!(bytes.len());
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A FIFO at `path` (opening one for reading waits for a writer).
pub fn mkfifo(path: &std::path::Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status();
    assert!(made.unwrap().success());
}
