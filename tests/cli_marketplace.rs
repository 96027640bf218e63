//! The `ggen marketplace` commands end to end: the real binary with its
//! embedded file-registry plugin, in a temporary GGEN_HOME.

mod support;

use serde_json::json;
use sha2::{Digest, Sha256};
use support::{Env, check_catalog, manifest, publish_catalog, snapshot};

#[test]
fn publish_then_search_and_info() {
    let env = Env::new();
    publish_catalog(&env, &[]);
    check_catalog(&env, &[]);
}

#[test]
fn human_output_is_aligned_and_readable() {
    let env = Env::new();
    publish_catalog(&env, &[]);
    let out = env.ok(&["marketplace", "search", "rust"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME")
            && lines[0].contains("VERSION")
            && lines[0].contains("DESCRIPTION")
    );
    let col = lines[0].find("VERSION").unwrap();
    for row in &lines[1..7] {
        assert_eq!(
            row.find(|c: char| c.is_ascii_digit()),
            Some(col),
            "misaligned row: {row}"
        );
    }
    assert!(out.contains("1-6 of 6 matches"), "{out}");
    // Long descriptions are cut to 70 terminal columns: wide (CJK) characters count twice.
    env.publish(json!({"name": "wide", "version": "1.0.0", "description": "模板".repeat(50)}));
    env.publish(json!({"name": "narrow", "version": "1.0.0", "description": "ab ".repeat(50)}));
    for (name, chars, columns) in [("wide", 35, 69), ("narrow", 70, 70)] {
        let out = env.ok(&["marketplace", "search", name]);
        let row = out.lines().nth(1).unwrap();
        let description = row[row.find("1.0.0").unwrap() + "1.0.0".len()..].trim_start();
        assert!(description.ends_with('…'), "{row}");
        assert_eq!(description.chars().count(), chars, "{row}");
        assert_eq!(
            unicode_width::UnicodeWidthStr::width(description),
            columns,
            "{row}"
        );
    }
    // The header names the version an install picks: the newest stable one,
    // or the newest pre-release when there is nothing else.
    let info = env.ok(&["marketplace", "info", "rust-web"]);
    assert!(info.starts_with("rust-web 1.1.0 - Rust web"), "{info}");
    env.publish(json!({"name": "edge", "version": "0.1.0-alpha"}));
    env.publish(json!({"name": "edge", "version": "0.1.0-beta"}));
    assert!(
        env.ok(&["marketplace", "info", "edge"])
            .starts_with("edge 0.1.0-beta - edge")
    );
    let edge = env.json(&["marketplace", "search", "edge", "--json"]);
    assert_eq!(edge["results"][0]["version"], "0.1.0-beta");
    assert!(
        info.contains("rust ^0.9") && info.contains("sha256-"),
        "{info}"
    );
    assert!(
        env.ok(&["marketplace", "search", "zzz"])
            .contains("No packages match")
    );
    // A huge query is not echoed back whole.
    let none = env.ok(&["marketplace", "search", &"z".repeat(50_000)]);
    assert!(
        none.starts_with("No packages match \"zzz") && none.len() < 100,
        "{}",
        &none[..none.len().min(200)]
    );
}

#[test]
fn registry_text_cannot_inject_terminal_escapes() {
    let env = Env::new();
    env.publish(serde_json::json!({
        "name": "ctl", "version": "1.0.0", "description": "a\rb\u{7} \u{202e}gnp.exe"
    }));
    // Publish refuses control characters in titles, authors and licenses,
    // but an index.json written by another tool may hold them.
    let path = env.registry().join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let entry = &mut index["packages"]["ctl"]["versions"][0];
    entry["title"] = "Evil\u{1b}[31mRED\u{1b}[0m".into();
    entry["authors"] = serde_json::json!(["x\u{0}y"]);
    entry["license"] = "\u{9b}31m".into();
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
    for args in [
        &["marketplace", "info", "ctl"][..],
        &["marketplace", "search", "ctl"],
    ] {
        let out = env.ok(args);
        assert!(
            !out.contains(|c: char| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "{args:?}: {out:?}"
        );
        assert!(out.contains("\u{fffd}gnp.exe"), "{args:?}: {out:?}");
    }
    assert!(
        env.ok(&["marketplace", "info", "ctl"])
            .contains("Evil\u{fffd}[31mRED")
    );
    // JSON keeps the text exactly (escaped by the JSON encoding).
    let info = env.json(&["marketplace", "info", "ctl", "--json"]);
    assert_eq!(info["versions"][0]["title"], "Evil\u{1b}[31mRED\u{1b}[0m");

    // Errors echo what was typed: control characters were printed raw, and
    // long input in full (a 5,000-character name, a 4 KB path).
    let long = "a".repeat(5000);
    let ghost_dir = env.work.path().join("b".repeat(250)).join("c".repeat(250));
    for args in [
        &["marketplace", "info", "x\u{1b}[2Jy"][..],
        &["marketplace", "install", "--var", "k\u{1b}[2J"],
        &["marketplace", "info", &long],
        &["marketplace", "publish", ghost_dir.to_str().unwrap()],
    ] {
        let out = env.run(args);
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            !err.trim_end().contains(char::is_control) && err.lines().count() == 1,
            "{args:?}: {err:?}"
        );
        assert!(err.len() < 1000, "{args:?}: {} bytes", err.len());
    }
}

#[test]
fn output_that_cannot_be_written_ends_cleanly() {
    let env = Env::new();
    publish_catalog(&env, &[]);
    // The reader went away (`ggen ... | head`): quiet, no panic.
    let mut child = env
        .cmd(&["marketplace", "search", "", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "{}: {stderr}",
        out.status
    );
    // Nowhere to write: one error line and a failure.
    #[cfg(target_os = "linux")]
    {
        let full = std::fs::File::create("/dev/full").unwrap();
        let out = env
            .cmd(&["marketplace", "search", "rust"])
            .stdout(full)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr.trim(),
            "error: cannot write the output: No space left on device (os error 28); the command itself ran to the end, only its report is lost"
        );
        // Help too (clap's printing error was dropped: exit 0, no word).
        let full = std::fs::File::create("/dev/full").unwrap();
        let out = env.cmd(&["--help"]).stdout(full).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.starts_with("error: cannot write"), "{stderr}");
    }
    // A closed stderr (`2>&1 | head -1`) drops warnings and progress lines;
    // writing them panicked (exit 101), part-way through an install.
    std::fs::write(env.registry().join("index.json"), "{\"broken").unwrap();
    let target = env.work.path().join("closed-stderr");
    let target = target.to_str().unwrap();
    for args in [
        &["marketplace", "search", "rust"][..],
        &["marketplace", "install", "go-service", "--target", target],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = (env.cmd(args).stderr(writer)).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", out.status);
    }
    assert!(std::path::Path::new(target).join("ggen.lock").is_file());
}

#[test]
fn published_tarball_is_deterministic_and_matches_its_checksum() {
    let a = Env::new();
    let b = Env::new();
    let files = [
        ("b.txt", "bee"),
        ("a/nested/file.txt", "deep"),
        ("a.txt", "ay"),
    ];
    let dir_a = a.package("p", &manifest("same", "1.0.0"), &files);
    let dir_b = b.package("p", &manifest("same", "1.0.0"), &files);
    let ra = a.json(&["marketplace", "publish", dir_a.to_str().unwrap(), "--json"]);
    let rb = b.json(&["marketplace", "publish", dir_b.to_str().unwrap(), "--json"]);
    assert_eq!(ra["checksum"], rb["checksum"]);
    assert_eq!(ra["files"], 4);

    let stored = std::fs::read(a.registry().join("same/1.0.0/same-1.0.0.tar.gz")).unwrap();
    assert_eq!(
        ra["checksum"],
        format!("sha256-{}", hex(&Sha256::digest(&stored)))
    );
    assert_eq!(ra["size"], stored.len());
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(a.registry().join("same/1.0.0/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["checksum"], ra["checksum"]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.registry().join("index.json")).unwrap()).unwrap();
    let entry = &index["packages"]["same"]["versions"][0];
    assert_eq!(entry["tarball"], "same/1.0.0/same-1.0.0.tar.gz");
    assert_eq!(entry["checksum"], ra["checksum"]);
    for key in [
        "version",
        "title",
        "description",
        "categories",
        "tags",
        "authors",
        "license",
        "dependencies",
        "published_at",
    ] {
        assert!(entry.get(key).is_some(), "index entry lacks {key}: {entry}");
    }
}

#[test]
fn ignore_files_keep_secrets_and_build_output_out_of_the_package() {
    let env = Env::new();
    let dir = env.package(
        "p",
        &manifest("tidy", "1.0.0"),
        &[
            ("templates/main.tmpl", "t"),
            (".env", "TOKEN=secret"),
            ("node_modules/dep/index.js", "x"),
            ("notes.txt", "n"),
            (".gitignore", ".env\nnode_modules/\nnotes.txt\n"),
            (".ggenignore", "!notes.txt\n"),
        ],
    );
    let d = dir.to_str().unwrap();
    // --dry-run lists what would be packed, as `cargo package --list` does.
    let plan = env.ok(&["marketplace", "publish", d, "--dry-run"]);
    let listed: Vec<&str> = (plan.lines())
        .filter_map(|l| l.strip_prefix("  "))
        .collect();
    assert_eq!(
        listed,
        [
            ".ggenignore",
            ".gitignore",
            "notes.txt",
            "package.json",
            "templates/main.tmpl"
        ],
        "{plan}"
    );
    let report = env.json(&["marketplace", "publish", d, "--json"]);
    assert_eq!(report["files"], 5);
    assert_eq!(report["contents"][2], "notes.txt", "{report}");
    // What installs is what was listed.
    let target = env.work.path().join("t");
    env.ok(&[
        "marketplace",
        "install",
        "tidy",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert!(target.join("tidy/notes.txt").is_file());
    assert!(!target.join("tidy/.env").exists());
    assert!(!target.join("tidy/node_modules").exists());
}

/// The packages the quick start publishes are real templates: published
/// as they are and installed with their hooks approved, they render.
#[test]
fn the_example_packages_publish_and_render() {
    let env = Env::new();
    let examples = support::workspace_root().join("examples/packages");
    for name in [
        "base-templates",
        "python-fastapi",
        "rust-cli",
        "rust-web-service",
    ] {
        env.ok(&[
            "marketplace",
            "publish",
            examples.join(name).to_str().unwrap(),
        ]);
    }
    let target = env.work.path().join("t");
    let t = target.to_str().unwrap();
    env.ok(&[
        "marketplace",
        "install",
        "rust-web-service",
        "rust-cli",
        "--target",
        t,
        "--allow-all-hooks",
        "--var",
        "project_name=demo",
    ]);
    let read = |rel: &str| std::fs::read_to_string(target.join(rel)).unwrap();
    assert!(read("rust-web-service/templates/main.rs").contains("bind(\"127.0.0.1:3000\")"));
    assert!(read("rust-cli/templates/main.rs").contains("/// A command-line tool\n"));
    // Every template of the examples renders, with --var where given.
    assert!(read("rust-cli/templates/Cargo.toml").contains("name = \"demo\""));
    assert!(read("rust-cli/templates/tests/cli.rs").contains("CARGO_BIN_EXE_demo"));
    assert!(read("rust-web-service/templates/Dockerfile").contains("/usr/local/bin/demo"));
    assert!(read("base-templates/templates/LICENSE").contains("the demo authors"));
    assert_eq!(
        read("base-templates/templates/README.md"),
        "# demo\n\nA project started from ggen templates\n"
    );
    assert!(!target.join("rust-cli/templates/main.rs.tmpl").exists());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_package_json_with_a_byte_order_mark_is_read() {
    let env = Env::new();
    let dir = env.work.path().join("bom");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("package.json"),
        "\u{feff}{\"name\": \"bom\", \"version\": \"1.0.0\"}",
    )
    .unwrap();
    env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
    assert_eq!(
        env.json(&["marketplace", "info", "bom", "--json"])["versions"][0]["version"],
        "1.0.0"
    );
    // And installed: the tarball's package.json keeps the mark, and install
    // checks that it names this package.
    env.ok(&["marketplace", "install", "bom"]);
    assert!(env.home().join("packages/bom/package.json").is_file());
}

#[test]
fn the_longest_name_and_version_can_be_republished() {
    // 64 and 128 characters, the limits: the replacement's temporary file
    // name went past the 255 bytes a file name may have.
    let env = Env::new();
    let (name, version) = ("n".repeat(64), format!("1.0.0-{}", "v".repeat(122)));
    let dir = env.package("long", &manifest(&name, &version), &[("a.txt", "one")]);
    env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
    std::fs::write(dir.join("a.txt"), "two").unwrap();
    env.ok(&["marketplace", "publish", dir.to_str().unwrap(), "--force"]);
    env.ok(&["marketplace", "install", &format!("{name}@={version}")]);
    let installed = env.home().join("packages").join(&name).join("a.txt");
    assert_eq!(std::fs::read_to_string(installed).unwrap(), "two");
}

#[test]
fn existing_version_is_refused_unless_forced() {
    let env = Env::new();
    let dir = env.package("p", &manifest("dup", "1.0.0"), &[("a.txt", "one")]);
    env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
    std::fs::write(dir.join("a.txt"), "two").unwrap();
    let before = snapshot(&env.registry());
    let err = env.fails(&["marketplace", "publish", dir.to_str().unwrap()]);
    assert!(
        err.contains("dup@1.0.0 is already published") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        snapshot(&env.registry()),
        before,
        "a refused publish changed the registry"
    );

    let out = env.ok(&["marketplace", "publish", dir.to_str().unwrap(), "--force"]);
    assert!(out.contains("Republished dup@1.0.0"), "{out}");
    assert_ne!(snapshot(&env.registry()), before);
    let info = env.json(&["marketplace", "info", "dup", "--json"]);
    assert_eq!(info["versions"].as_array().unwrap().len(), 1);

    // Build metadata does not make a new version, forced or not.
    let build = env.package("b", &manifest("dup", "1.0.0+build.5"), &[("a.txt", "x")]);
    for extra in [&[][..], &["--force"]] {
        let mut args = vec!["marketplace", "publish", build.to_str().unwrap()];
        args.extend(extra);
        let err = env.fails(&args);
        assert!(
            err.contains(
                "dup@1.0.0+build.5 differs from the published 1.0.0 only in build metadata"
            ),
            "{err}"
        );
    }
    let info = env.json(&["marketplace", "info", "dup", "--json"]);
    assert_eq!(info["versions"].as_array().unwrap().len(), 1);
}

/// `unpublish NAME@VERSION` takes that version out (index entry,
/// package.json, tarball) and leaves the others; what it refuses changes
/// nothing, and a rebuild of a lost index does not bring it back.
#[test]
fn unpublish_removes_one_version_and_refusals_change_nothing() {
    let env = Env::new();
    for v in ["1.0.0", "1.1.0"] {
        let dir = env.package(&format!("v{v}"), &manifest("gone", v), &[("a.txt", v)]);
        env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
    }
    // Published packages that need it: any version counts (an install
    // falls back on an older one when the newest cannot be installed, and
    // a lockfile may pin one).
    for (name, version, req) in [
        ("user", "1.0.0", "^1.1"),
        ("any", "2.0.0", "^1.0"),
        ("user", "0.9.0", "=1.0.0"),
    ] {
        let mut m = manifest(name, version);
        m["dependencies"] = serde_json::json!({ "gone": req });
        let dir = env.package(&format!("{name}-{version}"), &m, &[]);
        env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
    }
    let before = snapshot(&env.registry());
    for (spec, needle) in [
        (
            "gone",
            "`gone`: name the version to unpublish, as NAME@VERSION",
        ),
        ("gone@^1", "`gone@^1`: `^1` is not an exact version"),
        (
            "gone@2.0.0",
            "gone@2.0.0 is not published; gone has 1.1.0, 1.0.0",
        ),
        ("absent@1.0.0", "`absent` is not in this registry"),
        ("../gone@1.0.0", "package name `../gone`"),
        (
            "gone@1.1.0",
            "cannot unpublish gone@1.1.0: user@1.0.0 (requires gone ^1.1) needs it and no other version of gone will do; publish a version they accept first, or use --force",
        ),
    ] {
        let err = env.fails(&["marketplace", "unpublish", spec]);
        assert!(err.contains(needle), "{spec}: {err}");
        assert_eq!(
            snapshot(&env.registry()),
            before,
            "{spec} changed the registry"
        );
    }
    let target = env.work.path().join("project");
    let target = target.to_str().unwrap();
    env.ok(&["marketplace", "install", "user", "--target", target]);
    let info = env.json(&["marketplace", "info", "gone@1.1.0", "--json"]);
    let r = env.json(&[
        "marketplace",
        "unpublish",
        "gone@1.1.0",
        "--force",
        "--json",
    ]);
    assert_eq!(r["name"], "gone");
    let broken = serde_json::json!(["user@1.0.0 (requires gone ^1.1)"]);
    assert_eq!(r["broken_dependents"], broken);
    assert_eq!(r["version"], "1.1.0");
    assert_eq!(r["checksum"], info["versions"][0]["checksum"]);
    assert_eq!(r["remaining"], serde_json::json!(["1.0.0"]));
    assert!(!env.registry().join("gone/1.1.0").exists());
    let search = env.json(&["marketplace", "search", "gone", "--json"]);
    assert_eq!(search["results"][0]["version"], "1.0.0", "{search}");
    // Installed, it stays; it cannot be fetched again.
    env.ok(&["marketplace", "install", "user", "--target", target]);
    let err = env.fails(&[
        "marketplace",
        "install",
        "user",
        "--force",
        "--target",
        target,
    ]);
    let stays = "package `gone` version 1.1.0 is not in this registry, so the installed copy cannot be fetched again to reinstall it; it stays as installed";
    assert!(err.contains(stays), "{err}");
    let err = env.fails(&["marketplace", "install", "gone@1.1.0"]);
    let gone =
        "`gone` has no version that satisfies =1.1.0 (required by your request); it has 1.0.0";
    assert!(err.contains(gone), "{err}");
    // A corrupt index.json is rebuilt from the package.json files left.
    std::fs::write(env.registry().join("index.json"), "{").unwrap();
    let info = env.json(&["marketplace", "info", "gone", "--json"]);
    assert_eq!(info["versions"].as_array().unwrap().len(), 1, "{info}");
    assert_eq!(info["versions"][0]["version"], "1.0.0", "{info}");
    let err = env.fails(&["marketplace", "unpublish", "gone@1.0.0"]);
    assert!(
        err.contains(": any@2.0.0 (requires gone ^1.0), user@0.9.0 (requires gone =1.0.0) need it"),
        "{err}"
    );
    let out = env.ok(&["marketplace", "unpublish", "gone@1.0.0", "--force"]);
    assert!(
        out.starts_with("Unpublished gone@1.0.0 (checksum sha256-"),
        "{out}"
    );
    assert!(out.contains("gone has no published version left"), "{out}");
    let lost = "left without a version they require: any@2.0.0 (requires gone ^1.0), user@0.9.0 (requires gone =1.0.0)";
    assert!(out.contains(lost), "{out}");
    let err = env.fails(&["marketplace", "info", "gone"]);
    assert!(err.contains("`gone` is not in this registry"), "{err}");
    assert!(!env.registry().join("gone").exists());
    // Bad input is refused before a registry is made or a plugin compiled.
    let fresh = Env::new();
    fresh.fails(&["marketplace", "unpublish", "gone"]);
    assert!(!fresh.home().join("registry").exists() && !fresh.home().join("cache").exists());
}

#[test]
fn info_of_a_version_or_range_shows_only_those() {
    let env = Env::new();
    for v in ["1.0.0", "1.1.0", "2.0.0", "3.0.0-rc.1"] {
        let dir = env.package(&format!("v{v}"), &manifest("multi", v), &[]);
        env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
    }
    for (spec, expected) in [
        ("multi", &["3.0.0-rc.1", "2.0.0", "1.1.0", "1.0.0"][..]),
        ("multi@1.1.0", &["1.1.0"]),
        ("multi@^1", &["1.1.0", "1.0.0"]),
        ("multi@latest", &["2.0.0"]),
        ("multi@3.0.0-rc.1", &["3.0.0-rc.1"]),
    ] {
        let info = env.json(&["marketplace", "info", spec, "--json"]);
        let versions: Vec<&str> = (info["versions"].as_array().unwrap().iter())
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(versions, expected, "{spec}");
    }
    let err = env.fails(&["marketplace", "info", "multi@^9"]);
    assert!(
        err.contains(
            "`multi` has no version that satisfies ^9; it has 3.0.0-rc.1, 2.0.0, 1.1.0, 1.0.0"
        ),
        "{err}"
    );
}

#[test]
fn usage_errors_are_one_line_with_status_2() {
    let env = Env::new();
    for (args, expected) in [
        (
            &["marketplace", "install"][..],
            "error: the following required arguments were not provided: <NAME[@REQ]>...; \
             usage: ggen marketplace install <NAME[@REQ]>...; see --help",
        ),
        (
            // Both ways to say what (it named only <PACKAGES>).
            &["marketplace", "update"],
            "error: the following required arguments were not provided: <PACKAGES|--all>; \
             usage: ggen marketplace update <PACKAGES|--all>; see --help",
        ),
        (
            &["marketplace", "serch"],
            "error: unrecognized subcommand 'serch'; tip: a similar subcommand exists: 'search'; \
             usage: ggen marketplace [OPTIONS] <COMMAND>; see --help",
        ),
        (
            &["marketplace", "search", "--limit", "x"],
            "error: invalid value 'x' for '--limit <LIMIT>': invalid digit found in string; see --help",
        ),
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("{expected}\n")
        );
    }
    // Help and version are still clap's, on stdout, with success; a
    // command's own options come first, the global ones under their heading.
    let help = env.ok(&["marketplace", "install", "--help"]);
    assert!(help.contains("Usage: ggen marketplace install"), "{help}");
    let (own, global) =
        (help.split_once("\nGlobal options:\n")).unwrap_or_else(|| panic!("{help}"));
    assert!(
        own.contains("--no-dependencies") && !own.contains("--registry"),
        "{help}"
    );
    assert!(
        global.contains("--registry-plugin") && !global.contains("--target"),
        "{help}"
    );
    assert!(env.ok(&["--version"]).starts_with("ggen "));
}

#[test]
fn dry_run_writes_nothing() {
    let env = Env::new();
    let dir = env.package("p", &manifest("dry", "1.0.0"), &[("a.txt", "x")]);
    let report = env.json(&[
        "marketplace",
        "publish",
        dir.to_str().unwrap(),
        "--dry-run",
        "--json",
    ]);
    assert_eq!(report["dry_run"], true);
    assert!(report["checksum"].as_str().unwrap().starts_with("sha256-"));
    assert!(!env.registry().exists(), "a dry run created the registry");
    // Nor does a refused publish into a new registry leave its directory.
    let new = env.work.path().join("new/registry");
    let bad = env.package("bad", &manifest("bad", "one"), &[]);
    for dir in [&bad, &dir] {
        let mut args = vec![
            "marketplace",
            "--registry",
            new.to_str().unwrap(),
            "publish",
        ];
        args.push(dir.to_str().unwrap());
        if dir == &bad {
            env.fails(&args);
        } else {
            args.push("--dry-run");
            assert!(
                env.ok(&args)
                    .starts_with("Would publish dry@1.0.0 (2 files, ")
            );
        }
        assert!(!env.work.path().join("new").exists(), "{args:?}");
    }
    let err = env.fails(&["marketplace", "info", "dry"]);
    assert!(err.contains("`dry` is not in this registry"), "{err}");
}

#[test]
fn bad_packages_fail_with_one_line_and_write_nothing() {
    let env = Env::new();
    env.publish(manifest("existing", "1.0.0"));
    let before = snapshot(env.home());
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        ("missing", None, "no package.json"),
        ("malformed", Some("{\"name\": \"x\", "), "not valid JSON"),
        ("not-object", Some("[]"), "must be a JSON object"),
        (
            "no-name",
            Some(r#"{"version":"1.0.0"}"#),
            "missing \"name\"",
        ),
        (
            "bad-name",
            Some(r#"{"name":"Bad Name","version":"1.0.0"}"#),
            "package name `Bad Name` has uppercase letters; names are lowercase",
        ),
        (
            "slash-name",
            Some(r#"{"name":"a/../b","version":"1.0.0"}"#),
            "contains `/`",
        ),
        (
            "index-name",
            Some(r#"{"name":"index.json","version":"1.0.0"}"#),
            "package name `index.json` is reserved",
        ),
        (
            "backup-name",
            Some(r#"{"name":"index.json.corrupt-1","version":"1.0.0"}"#),
            "is reserved",
        ),
        (
            "bad-version",
            Some(r#"{"name":"ok","version":"one"}"#),
            "not a semver version",
        ),
        (
            "bad-dep",
            Some(r#"{"name":"ok","version":"1.0.0","dependencies":{"base":"~>1"}}"#),
            "not a semver requirement",
        ),
        (
            "bad-dep-name",
            Some(r#"{"name":"ok","version":"1.0.0","dependencies":{"B A D":"1"}}"#),
            "dependencies",
        ),
        (
            "wrong-type",
            Some(r#"{"name":"ok","version":"1.0.0","tags":"web"}"#),
            "\"tags\": invalid type",
        ),
        (
            "number-version",
            Some(r#"{"name":"ok","version":1}"#),
            "\"version\": invalid type: integer `1`, expected a string",
        ),
        (
            "duplicate-key",
            Some(r#"{"name":"ok","version":"1.0.0","version":"9.0.0"}"#),
            "duplicate key \"version\"",
        ),
    ];
    for (dir, content, expected) in cases {
        let path = env.work.path().join(dir);
        std::fs::create_dir_all(&path).unwrap();
        if let Some(text) = content {
            std::fs::write(path.join("package.json"), text).unwrap();
        }
        let err = env.fails(&["marketplace", "publish", path.to_str().unwrap()]);
        assert!(
            err.contains(expected),
            "{dir}: expected `{expected}` in: {err}"
        );
    }
    let err = env.fails(&["marketplace", "publish", "/definitely/not/here"]);
    assert!(err.contains("/definitely/not/here does not exist"), "{err}");
    let file = env.work.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = env.fails(&["marketplace", "publish", file.to_str().unwrap()]);
    assert!(
        err.contains("is not a directory; give the directory"),
        "{err}"
    );
    let json_dir = env.work.path().join("json-dir");
    std::fs::create_dir_all(json_dir.join("package.json")).unwrap();
    let err = env.fails(&["marketplace", "publish", json_dir.to_str().unwrap()]);
    assert!(err.contains("package.json: is not a file"), "{err}");
    #[cfg(unix)]
    {
        let dir = env.package("with-link", &manifest("linky", "1.0.0"), &[]);
        std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd")).unwrap();
        let err = env.fails(&["marketplace", "publish", dir.to_str().unwrap()]);
        assert!(err.contains("symbolic link"), "{err}");
        // Files an installer would refuse are refused at publish already.
        let deep: String = (0..11)
            .map(|i| format!("{}/", format!("{i}").repeat(100)))
            .collect();
        for (name, file, expected) in [
            ("newline", "a\nb.txt".to_owned(), "control characters"),
            ("backslash", "a\\b".to_owned(), "with `\\`"),
            ("deep", format!("{deep}f"), "longer than 1024 bytes"),
        ] {
            let dir = env.package(name, &manifest(name, "1.0.0"), &[]);
            let path = dir.join(&file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "x").unwrap();
            let err = env.fails(&["marketplace", "publish", dir.to_str().unwrap()]);
            assert!(
                err.contains(expected) && err.contains("installs refuse"),
                "{name}: {err}"
            );
        }
    }
    let err = env.fails(&["marketplace", "info", "NOPE"]);
    assert!(
        err.contains("package name `NOPE` has uppercase letters; names are lowercase: `nope`"),
        "{err}"
    );
    // Huge input is quoted cut short, not echoed whole.
    let long = format!("a{}", "b".repeat(50_000));
    let long_version = env.work.path().join("long-version");
    std::fs::create_dir_all(&long_version).unwrap();
    std::fs::write(
        long_version.join("package.json"),
        format!(r#"{{"name":"ok","version":"{}"}}"#, "1".repeat(50_000)),
    )
    .unwrap();
    for (args, expected) in [
        (
            vec!["marketplace", "info", long.as_str()],
            "is longer than 64 characters",
        ),
        (
            vec!["marketplace", "install", long.as_str()],
            "is longer than 64 characters",
        ),
        (
            vec!["marketplace", "publish", long_version.to_str().unwrap()],
            "is longer than 128 characters",
        ),
    ] {
        let err = env.fails(&args);
        assert!(
            err.contains(expected) && err.len() < 400,
            "{args:?}: {} bytes",
            err.len()
        );
    }
    assert_eq!(
        snapshot(env.home()),
        before,
        "a failed command wrote to GGEN_HOME"
    );
    // In a fresh home too: neither a registry nor a compiled plugin is made.
    let fresh = Env::new();
    let path = env.work.path().join("malformed");
    let err = fresh.fails(&["marketplace", "publish", path.to_str().unwrap()]);
    assert!(err.contains("not valid JSON"), "{err}");
    let err = fresh.fails(&["marketplace", "p2p", "publish", path.to_str().unwrap()]);
    let why = match cfg!(feature = "p2p") {
        true => "not valid JSON",
        false => "built without P2P support",
    };
    assert!(err.contains(why), "{err}");
    let made: Vec<String> = snapshot(fresh.home()).into_iter().map(|(p, _)| p).collect();
    assert!(made.is_empty(), "a failed publish made {made:?}");
}

#[test]
fn list_reads_the_lockfile() {
    let env = Env::new();
    assert!(
        env.ok(&["marketplace", "list"])
            .contains("No packages installed")
    );
    assert_eq!(
        env.json(&["marketplace", "list", "--json"]),
        json!({"packages": [], "interrupted": 0})
    );
    let packages = env.home().join("packages");
    std::fs::create_dir_all(&packages).unwrap();
    std::fs::write(
        packages.join("ggen.lock"),
        json!({"version": 1, "packages": [
            {"name": "zeta", "version": "1.0.0", "source": "registry+file:///r", "integrity": "sha256-00", "dependencies": {}},
            {"name": "alpha", "version": "2.1.0", "source": "registry+file:///r", "integrity": "sha256-11", "dependencies": {"zeta": "1.0.0"}}
        ]})
        .to_string(),
    )
    .unwrap();
    let listed = env.json(&["marketplace", "list", "--json"]);
    assert_eq!(listed["packages"][0]["name"], "alpha");
    assert_eq!(listed["packages"][1]["integrity"], "sha256-00");
    let text = env.ok(&["marketplace", "list"]);
    assert!(
        text.lines().nth(1).unwrap().starts_with("alpha  2.1.0"),
        "{text}"
    );
    std::fs::write(packages.join("ggen.lock"), "{oops").unwrap();
    assert!(
        env.fails(&["marketplace", "list"])
            .contains("not a valid lockfile")
    );
}

#[test]
fn registry_flag_and_config_choose_the_root() {
    let env = Env::new();
    let elsewhere = env.work.path().join("other-registry");
    // A chosen registry that does not exist is an error (a typo must not look
    // like an empty registry) and is not created; publishing creates it.
    for command in [
        &["search", "placed"][..],
        &["info", "placed"],
        &["install", "placed"],
    ] {
        let mut args = vec!["--registry", elsewhere.to_str().unwrap(), "marketplace"];
        args.extend(command);
        let err = env.fails(&args);
        assert!(
            err.contains(&format!("registry {} does not exist", elsewhere.display())),
            "{command:?}: {err}"
        );
    }
    assert!(!elsewhere.exists());
    let dir = env.package("p", &manifest("placed", "1.0.0"), &[("a", "a")]);
    env.ok(&[
        "--registry",
        elsewhere.to_str().unwrap(),
        "marketplace",
        "publish",
        dir.to_str().unwrap(),
    ]);
    assert!(elsewhere.join("placed/1.0.0/placed-1.0.0.tar.gz").is_file());
    assert!(!env.registry().join("index.json").exists());
    assert!(
        env.ok(&["marketplace", "search", "placed"])
            .contains("No packages match")
    );
    env.write_config(format!("[marketplace]\nregistry_path = {:?}\n", elsewhere));
    assert!(
        env.ok(&["marketplace", "search", "placed"])
            .contains("placed")
    );
    // GGEN_HOME must be a directory.
    let file = env.work.path().join("home-file");
    std::fs::write(&file, "").unwrap();
    let out = env
        .cmd(&["marketplace", "list"])
        .env("GGEN_HOME", &file)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: configuration error: {} is not a directory (GGEN_HOME, default ~/.ggen); point GGEN_HOME at a directory\n",
            file.display()
        )
    );
    // A relative path in config.toml is relative to GGEN_HOME, wherever ggen runs.
    let home_reg = env.home().join("relative-reg");
    std::fs::rename(&elsewhere, &home_reg).unwrap();
    env.write_config(
        "[marketplace]\nregistry_path = \"relative-reg\"\npackages_path = \"relative-pkgs\"\n",
    );
    let out = env
        .cmd(&["marketplace", "install", "placed"])
        .current_dir(env.work.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.home().join("relative-pkgs/placed/a").is_file());
    assert!(!env.work.path().join("relative-pkgs").exists());
    // Unknown keys (typos) are ignored with a warning naming them.
    env.write_config("[marketplace]\nregistry_path = \"relative-reg\"\nregitry_path = \"x\"\n");
    let out = env.run(&["marketplace", "search", "placed"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "warning: {}: unknown key `marketplace.regitry_path` is ignored\n",
            env.home().join("config.toml").display()
        )
    );
    // A bad config.toml names the file, the line and what was expected.
    for (text, expected) in [
        ("[marketplace\n", "config.toml line 1: unclosed table"),
        (
            "[marketplace.plugins]\ntimeout_ms = \"fast\"\n",
            "config.toml line 2: invalid type: string \"fast\", expected u64",
        ),
        (
            "[marketplace]\nregistry_path = \"\"\n",
            "registry_path under [marketplace] in",
        ),
        (
            "[marketplace.plugins]\ntimeout_ms = 0\n",
            "timeout_ms and memory_mib under [marketplace.plugins]",
        ),
        (
            "marketplace = 3\n",
            "config.toml line 1: invalid type: integer `3`, expected a table of settings",
        ),
        (
            "[marketplace.p2p.reputation]\nprune_threshold = 0.1\nmin_reputation = 5\n",
            "config.toml line 3: a reputation is between 0.0 and 1.0, not 5",
        ),
        // A huge timeout overflowed the clock (a panic); 0 timed everything out.
        (
            "[marketplace.p2p]\nquery_timeout_secs = 9223372036854775807\n",
            "config.toml line 2: a timeout in seconds is between 1 and 86400, not 9223372036854775807",
        ),
        (
            "[marketplace.p2p]\nbootstrap_timeout_secs = 0\n",
            "config.toml line 2: a timeout in seconds is between 1 and 86400, not 0",
        ),
        // Days were multiplied into seconds (an overflow panic), and the
        // cache was allocated whole (an abort).
        (
            "[marketplace.p2p.reputation]\nprune_after_days = 213503982334602\n",
            "config.toml line 2: prune_after_days is between 0 and 36500, not 213503982334602",
        ),
        (
            "[marketplace.p2p]\ncache_capacity = 1000000000\n",
            "config.toml line 2: cache_capacity (packages kept in memory) is between 1 and 1000000, not 1000000000",
        ),
        // A limit of 0 refused every package at install time.
        (
            "[marketplace.install]\nmax_entries = 0\n",
            "config.toml line 2: a limit must be at least 1, not 0",
        ),
        (
            "[marketplace.install]\nmax_path = 0\n",
            "config.toml line 2: a limit must be at least 1, not 0",
        ),
        // A misspelt key in a bootstrap entry was refused as "data did not
        // match any variant of untagged enum BootstrapNode".
        (
            "[[marketplace.p2p.bootstrap_nodes]]\nadress = \"/ip4/127.0.0.1/tcp/1\"\n",
            "a bootstrap_nodes entry is an address string, or a table with `address` (a string) and optionally `priority` (0 to 4294967295), and no other key",
        ),
    ] {
        env.write_config(text);
        let err = env.fails(&["marketplace", "search", "x"]);
        assert!(err.contains(expected), "{text:?}: {err}");
    }
}

#[test]
fn concurrent_publishes_lose_nothing() {
    let env = Env::new();
    env.publish(manifest("warmup", "1.0.0")); // compile the plugin once
    let dirs: Vec<_> = (0..6)
        .map(|i| {
            env.package(
                &format!("c{i}"),
                &manifest(&format!("conc-{i}"), "1.0.0"),
                &[("f", "x")],
            )
        })
        .collect();
    let children: Vec<_> = dirs
        .iter()
        .map(|d| {
            env.cmd(&["marketplace", "publish", d.to_str().unwrap()])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let r = env.json(&["marketplace", "search", "conc", "--json"]);
    assert_eq!(r["total"], 6, "{r}");
}

#[test]
fn a_cache_that_cannot_be_made_only_costs_speed() {
    let env = Env::new();
    env.publish(manifest("uncached", "1.0.0"));
    // As in a read-only GGEN_HOME (a file where the cache directory goes:
    // unlike permissions, that stops root too).
    std::fs::remove_dir_all(env.home().join("cache")).unwrap();
    std::fs::write(env.home().join("cache"), "not a directory").unwrap();
    let r = env.json(&["marketplace", "search", "uncached", "--json"]);
    assert_eq!(r["results"][0]["name"], "uncached", "{r}");
    let info = env.json(&["marketplace", "info", "uncached", "--json"]);
    assert_eq!(info["versions"][0]["version"], "1.0.0");
    assert_eq!(
        std::fs::read(env.home().join("cache")).unwrap(),
        b"not a directory"
    );
}

#[test]
fn dangling_links_and_files_in_place_of_directories_are_named() {
    let env = Env::new();
    let work = env.work.path();
    let dangling = work.join("dangling");
    std::os::unix::fs::symlink(work.join("gone"), &dangling).unwrap();
    let file = work.join("file");
    std::fs::write(&file, "").unwrap();
    let (d, f) = (dangling.to_str().unwrap(), file.to_str().unwrap());
    // Each said "File exists (os error 17)" or "Not a directory (os error 20)".
    let one_line = |out: std::process::Output| {
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        err
    };
    let err = one_line(
        env.cmd(&["marketplace", "search", "x"])
            .env("GGEN_HOME", &dangling)
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("is a symbolic link to") && err.contains("gone, which does not exist"),
        "{err}"
    );
    for args in [
        &["marketplace", "install", "x", "--target", d][..],
        &["marketplace", "search", "x", "--registry", d],
        &["marketplace", "list", "--target", f],
        &["marketplace", "verify", "--target", f],
    ] {
        let err = env.fails(args);
        assert!(
            err.contains("which does not exist") || err.contains("file is not a directory"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("os error"), "{err}");
    }
    assert!(!work.join("gone").exists());
    // The same in GGEN_HOME's own places: a file at registry/ said "File
    // exists", one at packages/ "Not a directory", a directory in place of
    // the install lock "Is a directory", a socket at config.toml "No such
    // device or address".
    let home = work.join("home");
    std::fs::create_dir(&home).unwrap();
    let in_home = |args: &[&str]| one_line(env.cmd(args).env("GGEN_HOME", &home).output().unwrap());
    std::fs::write(home.join("registry"), "").unwrap();
    let err = in_home(&["marketplace", "search", "x"]);
    assert!(
        err.contains("registry is not a directory") && err.contains("move it away"),
        "{err}"
    );
    std::fs::write(home.join("packages"), "").unwrap();
    let err = in_home(&["marketplace", "list"]);
    assert!(
        err.contains("packages is not a directory") && err.contains("move it away"),
        "{err}"
    );
    std::fs::remove_file(home.join("packages")).unwrap();
    std::fs::create_dir_all(home.join("packages/.ggen-install.lock")).unwrap();
    for args in [
        &["marketplace", "list"][..],
        &["marketplace", "remove", "x"],
    ] {
        let err = in_home(args);
        assert!(
            err.contains(".ggen-install.lock is a directory, not a lock file ggen made; remove it"),
            "{args:?}: {err}"
        );
    }
    let _socket = std::os::unix::net::UnixListener::bind(home.join("config.toml")).unwrap();
    let err = in_home(&["marketplace", "list"]);
    assert!(
        err.contains("config.toml: it is not a regular file"),
        "{err}"
    );

    // A quoted `~/` in GGEN_HOME is the home directory, not a directory named `~`.
    let dir = env.package("p", &manifest("tilde", "1.0.0"), &[]);
    env.cmd(&["marketplace", "publish", dir.to_str().unwrap()])
        .env("GGEN_HOME", "~/ggen-home")
        .env("HOME", work)
        .current_dir(work)
        .output()
        .unwrap();
    assert!(work.join("ggen-home/registry/index.json").is_file());
    assert!(!work.join("~").exists());
}

/// A GGEN_HOME that does not exist (a typo) is named by the commands that
/// only read its registry, and not created; a registry chosen elsewhere
/// is read as usual, and publishing creates the home.
#[test]
fn a_mistyped_ggen_home_is_named_and_not_created() {
    let env = Env::new();
    let typo = env.work.path().join("ggen-hmoe");
    let run = |args: &[&str]| env.cmd(args).env("GGEN_HOME", &typo).output().unwrap();
    for command in [
        &["search", "x"][..],
        &["info", "x"],
        &["unpublish", "x@1.0.0"],
    ] {
        let out = run(&[&["marketplace"][..], command].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command:?}");
        assert_eq!(
            stderr.trim(),
            format!(
                "error: configuration error: GGEN_HOME is {}, which does not exist; check the path (publishing or installing a package creates it)",
                typo.display()
            ),
            "{command:?}"
        );
        assert!(!typo.exists(), "{command:?} created it");
    }
    let elsewhere = env.registry();
    env.publish(manifest("placed", "1.0.0"));
    let out = run(&[
        "--registry",
        elsewhere.to_str().unwrap(),
        "marketplace",
        "search",
        "placed",
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("placed"));
    let dir = env.package("p", &manifest("mine", "1.0.0"), &[("a", "a")]);
    let out = run(&["marketplace", "publish", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(typo.join("registry/index.json").is_file());
    let out = run(&["marketplace", "search", "mine"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("mine"));
}
