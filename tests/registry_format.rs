//! The file registry's on-disk format: hand-written seeds-format indexes,
//! edits behind ggen's back, and recovery from a corrupt index.json.

mod support;

use serde_json::json;
use support::{Env, manifest, snapshot, strings};

fn write_index(env: &Env, index: &serde_json::Value) {
    std::fs::create_dir_all(env.registry()).unwrap();
    std::fs::write(
        env.registry().join("index.json"),
        serde_json::to_vec_pretty(index).unwrap(),
    )
    .unwrap();
}

/// A 20,000-package index.json, so that each index write takes a while (a
/// kill at a random moment then often lands inside one).
fn write_large_index(env: &Env) {
    let mut packages = serde_json::Map::new();
    for i in 0..20_000 {
        let name = format!("filler{i}");
        packages.insert(
            name.clone(),
            json!({"name": name, "versions": [
            {"version": "1.0.0", "description": "filler package for a large index",
             "checksum": "sha256-00", "tarball": format!("{name}/1.0.0/{name}-1.0.0.tar.gz")}]}),
        );
    }
    write_index(env, &json!({"version": "1", "packages": packages}));
}

/// The file registry's derived search index (in its private data directory).
fn search_index(env: &Env) -> std::path::PathBuf {
    let mut data = std::fs::read_dir(env.home().join("cache/data")).unwrap();
    data.next()
        .expect("the registry plugin has a data directory")
        .unwrap()
        .path()
        .join("search-index.bin")
}

#[test]
fn hand_written_seeds_index_is_searchable_as_is() {
    let env = Env::new();
    // Written the way the seeds describe it, by another tool: some optional fields absent.
    write_index(
        &env,
        &json!({
            "version": "1.0.0",
            "updated_at": "2025-11-02T00:00:00Z",
            "packages": {
                "io.ggen.rust.cli": {"name": "io.ggen.rust.cli", "versions": [
                    {"version": "1.0.0", "title": "Rust CLI", "description": "Clap based CLI template",
                     "categories": ["cli"], "tags": ["rust", "clap"], "authors": ["ggen team"], "license": "MIT",
                     "dependencies": {}, "checksum": "sha256-aa", "tarball": "io.ggen.rust.cli/1.0.0/io.ggen.rust.cli-1.0.0.tar.gz",
                     "published_at": "2025-11-01T10:00:00Z"},
                    {"version": "1.2.0", "title": "Rust CLI", "description": "Clap based CLI template with completions",
                     "categories": ["cli"], "tags": ["rust", "clap"], "authors": ["ggen team"], "license": "MIT",
                     "dependencies": {"io.ggen.base": "^0.3"}, "checksum": "sha256-bb",
                     "tarball": "io.ggen.rust.cli/1.2.0/io.ggen.rust.cli-1.2.0.tar.gz", "published_at": "2025-11-02T10:00:00Z"}
                ]},
                "io.ggen.base": {"name": "io.ggen.base", "versions": [
                    {"version": "0.3.1", "description": "Base templates", "checksum": "sha256-cc",
                     "tarball": "io.ggen.base/0.3.1/io.ggen.base-0.3.1.tar.gz"}
                ]}
            }
        }),
    );
    let before = std::fs::read(env.registry().join("index.json")).unwrap();
    let r = env.json(&["marketplace", "search", "clap", "--json"]);
    assert_eq!(r["total"], 1);
    assert_eq!(r["results"][0]["name"], "io.ggen.rust.cli");
    assert_eq!(
        r["results"][0]["version"], "1.2.0",
        "search shows the newest version"
    );
    let r = env.json(&["marketplace", "search", "base", "--json"]);
    assert_eq!(r["results"][0]["name"], "io.ggen.base");
    assert_eq!(
        r["results"][0]["title"], "io.ggen.base",
        "a missing title defaults to the name"
    );
    let info = env.json(&["marketplace", "info", "io.ggen.rust.cli", "--json"]);
    assert_eq!(info["versions"][0]["version"], "1.2.0");
    assert_eq!(info["versions"][0]["dependencies"]["io.ggen.base"], "^0.3");
    assert_eq!(info["versions"][1]["checksum"], "sha256-aa");
    assert_eq!(
        std::fs::read(env.registry().join("index.json")).unwrap(),
        before,
        "reading must not rewrite index.json"
    );
}

#[test]
fn a_malformed_entry_is_left_out_with_a_readable_warning() {
    let env = Env::new();
    write_index(
        &env,
        &json!({"version": "1.0.0", "packages": {
            "good": {"name": "good", "versions": [{"version": "1.0.0", "description": "fine"}]},
            "bad": {"name": "bad", "versions": [{"version": 5}]}
        }}),
    );
    let out = env.run(&["marketplace", "search", "--json"]);
    assert!(out.status.success());
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(strings(&results["results"], "name"), ["good"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(
            "warning: plugin file-registry (built in): index.json entry for `bad` is malformed: \
             invalid type: integer `5`, expected a string"
        ) && stderr
            .trim_end()
            .ends_with("; it is left out of search results"),
        "{stderr}"
    );
    // What to do is said where the package is asked for.
    let err = env.fails(&["marketplace", "info", "bad"]);
    assert!(
        err.contains("fix or remove that entry in index.json"),
        "{err}"
    );
}

/// A registry with many damaged entries: one call shows 20 warnings and
/// counts the rest, which `-v` shows (a plugin cannot flood the terminal).
#[test]
fn many_damaged_entries_show_twenty_warnings_and_count_the_rest() {
    let env = Env::new();
    let mut packages = serde_json::Map::new();
    packages.insert(
        "good".into(),
        json!({"name": "good", "versions": [{"version": "1.0.0"}]}),
    );
    for i in 0..30 {
        packages.insert(format!("bad{i:02}"), json!({"versions": [{"version": 5}]}));
    }
    write_index(&env, &json!({"version": "1", "packages": packages}));
    let out = env.run(&["marketplace", "search", "--json"]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 21, "{stderr}");
    assert!(
        lines[..20].iter().all(|l| l.contains("is malformed")),
        "{stderr}"
    );
    assert!(
        lines[20].ends_with("10 more warnings from `search` not shown (-v shows them)"),
        "{stderr}"
    );
    // With the derived index gone the next search builds it again, warning
    // again: with -v, every one is there.
    std::fs::remove_dir_all(env.home().join("cache/data")).unwrap();
    let out = env.run(&["-v", "marketplace", "search", "--json"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    let malformed = stderr
        .lines()
        .filter(|l| l.contains("is malformed"))
        .count();
    assert_eq!(malformed, 30, "{stderr}");
}

#[test]
fn entries_nothing_could_install_are_left_out_and_named() {
    // Search showed them, and install then said "not in the registry".
    let env = Env::new();
    let entry = |version: &str| json!({"version": version, "description": "x"});
    write_index(
        &env,
        &json!({"version": "1", "packages": {
            "good": {"name": "good", "versions": [entry("1.0.0")]},
            "../evil": {"name": "../evil", "versions": [entry("1.0.0")]},
            "App": {"name": "App", "versions": [entry("1.0.0")]},
            "mixed": {"name": "mixed", "versions": [entry("1.0.0"), entry("not.a.version")]},
            "nover": {"name": "nover", "versions": [entry("latest")]}
        }}),
    );
    let out = env.run(&["marketplace", "search", "--json"]);
    assert!(out.status.success());
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(strings(&results["results"], "name"), ["good", "mixed"]);
    assert_eq!(results["results"][1]["version"], "1.0.0");
    let stderr = String::from_utf8(out.stderr).unwrap();
    for expected in [
        "index.json has an entry `../evil`, which is not a package name; fix or remove that entry",
        "index.json has an entry `App`, which is not a package name",
        "index.json entry for `mixed` has versions that are not semver (`not.a.version`); fix or remove them (they are ignored)",
        "index.json entry for `nover` has versions that are not semver (`latest`)",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    let info = env.json(&["marketplace", "info", "mixed", "--json"]);
    assert_eq!(strings(&info["versions"], "version"), ["1.0.0"]);
    // With no version left, it is not there.
    let out = env.run(&["marketplace", "info", "nover"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("not semver (`latest`)")
            && stderr.contains("`nover` is not in this registry"),
        "{stderr}"
    );
    // Publishing it writes the entry back without them (it failed, and left
    // the new version's files behind).
    env.publish(json!({"name": "nover", "version": "1.0.0"}));
    let info = env.json(&["marketplace", "info", "nover", "--json"]);
    assert_eq!(strings(&info["versions"], "version"), ["1.0.0"]);
}

#[test]
fn a_malformed_entry_keeps_every_version_still_readable() {
    let env = Env::new();
    env.publish(json!({"name": "alpha", "version": "1.0.0", "description": "about rust"}));
    env.publish(json!({"name": "alpha", "version": "1.1.0", "description": "about rust"}));
    env.publish(json!({"name": "beta", "version": "1.0.0", "description": "rust too"}));
    let path = env.registry().join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let versions = index["packages"]["alpha"]["versions"]
        .as_array_mut()
        .unwrap();
    // A version only index.json knows (written by another tool, its tarball
    // elsewhere), next to one damaged by a hand edit: the entry as a whole
    // no longer parses.
    let mut by_hand = versions[1].clone();
    assert_eq!(by_hand["version"], "1.0.0");
    by_hand["version"] = json!("0.9.0");
    versions.push(by_hand);
    let newest = versions
        .iter_mut()
        .find(|v| v["version"] == "1.1.0")
        .unwrap();
    newest["tags"] = json!(5);
    std::fs::write(&path, index.to_string()).unwrap();

    // It vanished from search, info failed, and no new version could be
    // published, while its package.json files were all there; then the
    // versions only index.json held were lost.
    let out = env.run(&["marketplace", "search", "rust", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("index.json entry for `alpha` is malformed")
            && stderr.contains("kept the 3 version(s) still readable (2 from the entry, 1 from its package.json files)"),
        "{stderr}"
    );
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["total"], 2, "{found}");
    let versions = |info: serde_json::Value| -> Vec<String> {
        info["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        versions(env.json(&["marketplace", "info", "alpha", "--json"])),
        ["1.1.0", "1.0.0", "0.9.0"]
    );
    env.publish(json!({"name": "alpha", "version": "1.2.0", "description": "about rust"}));
    // The publish wrote the entry back whole, the hand-written version too.
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        index["packages"]["alpha"]["versions"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let out = env.run(&["marketplace", "info", "alpha", "--json"]);
    assert!(out.status.success() && out.stderr.is_empty());
    assert_eq!(
        versions(serde_json::from_slice(&out.stdout).unwrap()),
        ["1.2.0", "1.1.0", "1.0.0", "0.9.0"]
    );
}

/// A call about one package reads its entry from the derived index, not
/// the whole index.json: within a memory cap far below what parsing the
/// index takes, until index.json changes or the derived index is damaged.
#[test]
fn one_package_is_read_without_parsing_the_whole_index() {
    let env = Env::new();
    write_large_index(&env);
    env.publish(manifest("real", "1.2.0"));
    let small = ["--plugin-memory", "4"];
    // Parsing all of index.json takes more than 4 MiB: a lookup that does
    // fails so.
    let parses_index = |name: &str| {
        let err = env.fails(&["--plugin-memory", "4", "marketplace", "info", name]);
        assert!(err.contains("exceeded its memory cap of 4 MiB"), "{err}");
    };
    let info = |name: &str| {
        let mut args = small.to_vec();
        args.extend(["marketplace", "info", name, "--json"]);
        env.json(&args)
    };
    assert_eq!(info("real")["versions"][0]["version"], "1.2.0");
    let filler = info("filler19999");
    assert_eq!(
        filler["versions"][0]["description"],
        "filler package for a large index"
    );
    let missing = env.fails(&["--plugin-memory", "4", "marketplace", "info", "nowhere"]);
    assert!(
        missing.contains("`nowhere` is not in this registry"),
        "{missing}"
    );
    // The tarball too: install reads nothing else of the index.
    let target = env.home().join("project");
    let target_arg = target.to_str().unwrap();
    let mut install = small.to_vec();
    install.extend(["marketplace", "install", "real", "--target", target_arg]);
    env.ok(&install);
    assert!(target.join("ggen.lock").is_file());

    // Behind ggen's back, index.json changes: lookups read it again (and
    // this one needs the memory to), so they see the change.
    let path = env.registry().join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    index["packages"]["real"]["versions"][0]["description"] = json!("edited by hand");
    // Pretty-printed, as a person would: the table finds entries wherever
    // the whitespace puts them.
    std::fs::write(&path, serde_json::to_vec_pretty(&index).unwrap()).unwrap();
    parses_index("real");
    let r = env.json(&["marketplace", "info", "real", "--json"]);
    assert_eq!(r["versions"][0]["description"], "edited by hand");

    // The next search stores a fresh derived index. Cut short (or with a
    // count or length its size does not match), it is not believed:
    // lookups read index.json, and the next search stores it anew.
    env.ok(&["marketplace", "search", "real"]);
    assert_eq!(info("real")["versions"][0]["description"], "edited by hand");
    let file = search_index(&env);
    let len = std::fs::metadata(&file).unwrap().len();
    let cut = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    cut.set_len(len - 20).unwrap();
    drop(cut);
    parses_index("filler19999");
    let r = env.json(&["marketplace", "info", "filler19999", "--json"]);
    assert_eq!(r["versions"][0]["version"], "1.0.0");
    env.ok(&["marketplace", "search", "real"]);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), len);
    assert_eq!(info("filler19999")["versions"][0]["version"], "1.0.0");

    // The table points into index.json rather than holding a copy of
    // each entry (which made the derived index three times as large).
    let bytes = std::fs::read(&file).unwrap();
    assert!(!bytes.windows(12).any(|w| w == b"\"versions\":["));

    // One flipped bit in a name in the table ("real" as "Real"): the lookup
    // does not believe it, removes the derived index (a search would not
    // notice), and the next search stores it anew.
    let mut bytes = std::fs::read(&file).unwrap();
    let at = (bytes.windows(4).rposition(|w| w == b"real")).unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    parses_index("real");
    assert!(!file.exists());
    env.ok(&["marketplace", "search", "real"]);
    assert_eq!(info("real")["versions"][0]["description"], "edited by hand");

    // Two slots of the table swapped, each whole (a damaged disk block
    // can move data whole): each slot's hash covers its position, so the
    // lookup does not answer "absent" from a table out of order.
    let mut bytes = std::fs::read(&file).unwrap();
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let table = 64 + u64_at(32) + u64_at(40);
    let count = u32::from_le_bytes(bytes[48..52].try_into().unwrap()) as usize;
    let (last, before) = (table + (count - 1) * 40, table + (count - 2) * 40);
    let slot: Vec<u8> = bytes[last..last + 40].to_vec();
    bytes.copy_within(before..before + 40, last);
    bytes[before..before + 40].copy_from_slice(&slot);
    std::fs::write(&file, &bytes).unwrap();
    parses_index("real");
    assert!(!file.exists());
    env.ok(&["marketplace", "search", "real"]);
    assert_eq!(info("real")["versions"][0]["description"], "edited by hand");

    // index.json rewritten in place with its size and mtime unchanged (a
    // tool that keeps mtimes): the entry no longer matches the table, so
    // the lookup parses index.json, sees the edit, and drops the table.
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut json = std::fs::read(&path).unwrap();
    let at = (json.windows(14).position(|w| w == b"edited by hand")).unwrap();
    json[at] = b'E';
    std::fs::write(&path, &json).unwrap();
    let handle = std::fs::File::options().write(true).open(&path).unwrap();
    handle.set_modified(mtime).unwrap();
    drop(handle);
    parses_index("real");
    assert!(!file.exists());
    let r = env.json(&["marketplace", "info", "real", "--json"]);
    assert_eq!(r["versions"][0]["description"], "Edited by hand");
}

#[test]
fn edits_to_index_json_are_seen_by_the_next_search() {
    let env = Env::new();
    env.publish(manifest("first", "1.0.0"));
    assert_eq!(env.json(&["marketplace", "search", "--json"])["total"], 1);
    // Another tool adds a package; the derived search index must notice.
    let path = env.registry().join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    index["packages"]["second"] = json!({"name": "second", "versions": [{"version": "0.1.0", "description": "added by hand"}]});
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
    let r = env.json(&["marketplace", "search", "hand", "--json"]);
    assert_eq!(r["results"][0]["name"], "second");
}

/// The contents of the `index.json.corrupt-*` backups in the registry.
fn corrupt_backups(env: &Env) -> Vec<Vec<u8>> {
    std::fs::read_dir(env.registry())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("index.json.corrupt-")
        })
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect()
}

#[test]
fn corrupt_index_is_kept_as_backup_and_rebuilt_without_loss() {
    let env = Env::new();
    for (name, version) in [
        ("alpha", "1.0.0"),
        ("alpha", "1.1.0"),
        ("beta", "0.1.0"),
        ("gamma", "2.0.0"),
    ] {
        env.publish(json!({"name": name, "version": version, "description": format!("{name} package"), "tags": ["t"]}));
    }
    let info_before = env.json(&["marketplace", "info", "alpha", "--json"]);
    let path = env.registry().join("index.json");
    std::fs::write(
        &path,
        b"{\"version\": \"1\", \"packages\": {\"alpha\": [tru",
    )
    .unwrap();

    let out = env.run(&["marketplace", "search", "package", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning:")
            && stderr.contains("corrupt")
            && stderr.contains("index.json.corrupt-"),
        "{stderr}"
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["total"], 3);

    let backups = corrupt_backups(&env);
    assert_eq!(backups.len(), 1);
    assert!(
        backups[0].ends_with(b"[tru"),
        "the backup keeps the corrupt bytes"
    );
    let info_after = env.json(&["marketplace", "info", "alpha", "--json"]);
    assert_eq!(
        info_before, info_after,
        "nothing lost: versions, checksums and dates rebuilt from package.json"
    );
    // And the next run is quiet.
    let out = env.run(&["marketplace", "search", "package"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));

    // Two more corruptions in quick succession: each copy is kept.
    for bad in ["second", "third"] {
        std::fs::write(&path, bad).unwrap();
        env.ok(&["marketplace", "search", "package"]);
    }
    let kept = corrupt_backups(&env);
    assert_eq!(kept.len(), 3);
    assert!(kept.contains(&b"second".to_vec()) && kept.contains(&b"third".to_vec()));

    // Valid JSON without the packages (a tool that truncated it): damage
    // too, not an empty registry that the next publish would make final.
    for bad in ["{}", "[]"] {
        std::fs::write(&path, bad).unwrap();
        let r = env.json(&["marketplace", "search", "package", "--json"]);
        assert_eq!(r["total"], 3, "{bad}: {r}");
        assert!(corrupt_backups(&env).contains(&bad.as_bytes().to_vec()));
    }
}

#[test]
fn leftovers_of_a_stopped_publish_are_cleaned_up() {
    let env = Env::new();
    env.publish(json!({"name": "left", "version": "1.0.0"}));
    // What a publish stopped by its deadline or a kill leaves behind.
    let version_dir = env.registry().join("left/1.0.0");
    let stale = [
        version_dir.join(".left-1.0.0.tar.gz.tmp-17-0"),
        version_dir.join(".package.json.tmp-17-1"),
        env.registry().join(".index.json.tmp-17-2"),
    ];
    for path in &stale {
        std::fs::write(path, "partial").unwrap();
    }
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale[2])
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    // A recent one in the root may belong to a search rewriting index.json.
    let recent = env.registry().join(".index.json.tmp-18-0");
    std::fs::write(&recent, "in flight").unwrap();
    let dir = env.package(
        "p",
        &json!({"name": "left", "version": "1.0.0"}),
        &[("a", "b")],
    );
    env.ok(&["marketplace", "publish", dir.to_str().unwrap(), "--force"]);
    for path in &stale {
        assert!(!path.exists(), "{} was left", path.display());
    }
    assert!(recent.exists());

    // A publish that fails leaves no empty directories for its version.
    let long = format!("1.0.0-{}", "a".repeat(200));
    let dir = env.package("q", &json!({"name": "other", "version": long}), &[]);
    let err = env.fails(&["marketplace", "publish", dir.to_str().unwrap()]);
    assert!(err.contains("is longer than 128 characters"), "{err}");
    assert!(!env.registry().join("other").exists());
}

/// Unpublish removes a tarball another tool's index keeps outside the
/// version's directory (unless an entry still names it, or it holds other
/// bytes), and a publish or unpublish clears away the version directories
/// a killed one left: neither listed nor marked by a package.json.
#[test]
fn unpublish_and_publish_leave_no_unlisted_tarballs() {
    let env = Env::new();
    let tarballs = env.registry().join("tarballs");
    std::fs::create_dir_all(&tarballs).unwrap();
    let mut versions = Vec::new();
    for (version, file, bytes) in [
        ("1.0.0", "solo.tgz", "one"),
        ("1.0.0+b", "solo.tgz", "one"),
        ("2.0.0", "two.tgz", "two"),
        ("3.0.0", "three.tgz", "three"),
    ] {
        std::fs::write(tarballs.join(file), bytes).unwrap();
        let sum = support::sha256_hex(bytes.as_bytes());
        versions.push(
            json!({"version": version, "tarball": format!("tarballs/{file}"),
            "checksum": format!("sha256-{sum}")}),
        );
    }
    // 3.0.0's file now holds other bytes than the index says.
    std::fs::write(tarballs.join("three.tgz"), "replaced by hand").unwrap();
    write_index(
        &env,
        &json!({"packages": {"solo": {"name": "solo", "versions": versions}}}),
    );
    for version in ["1.0.0", "2.0.0", "3.0.0"] {
        let spec = format!("solo@{version}");
        env.ok(&["marketplace", "unpublish", &spec]);
    }
    // 1.0.0+b still names solo.tgz; three.tgz is not 3.0.0's tarball.
    assert!(tarballs.join("solo.tgz").exists());
    assert!(!tarballs.join("two.tgz").exists());
    assert!(tarballs.join("three.tgz").exists());

    // What a killed publish or unpublish leaves: a version directory with
    // a tarball and no package.json, which the index does not list.
    env.publish(json!({"name": "kept", "version": "1.0.0"}));
    let killed = env.registry().join("kept/0.9.0");
    std::fs::create_dir_all(&killed).unwrap();
    std::fs::write(killed.join("kept-0.9.0.tar.gz"), "partial").unwrap();
    // Listed without its package.json (killed between the two writes): kept.
    std::fs::remove_file(env.registry().join("kept/1.0.0/package.json")).unwrap();
    env.publish(json!({"name": "kept", "version": "1.1.0"}));
    assert!(!killed.exists());
    assert!(env.registry().join("kept/1.0.0/kept-1.0.0.tar.gz").exists());
    std::fs::create_dir_all(&killed).unwrap();
    env.ok(&["marketplace", "unpublish", "kept@1.1.0"]);
    assert!(!killed.exists() && !env.registry().join("kept/1.1.0").exists());
    let info = env.json(&["marketplace", "info", "kept", "--json"]);
    assert_eq!(strings(&info["versions"], "version"), ["1.0.0"]);
}

/// What unpublish and its clean-up take never holds a tarball the index
/// still lists, however the index spells its path: an entry naming another
/// package's tarball (`c//2.0.0/...`), a version kept in a directory with a
/// version-like name, another version's tarball kept in the unpublished
/// version's directory.
#[test]
fn unpublish_leaves_every_listed_tarball() {
    let env = Env::new();
    env.publish(manifest("c", "2.0.0"));
    for v in ["0.9.0", "1.0.0", "1.1.0"] {
        env.publish(manifest("b", v));
    }
    for v in ["1.0.0", "2.0.0"] {
        env.publish(manifest("d", v));
    }
    let root = env.registry();
    let index_path = root.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let c_checksum = index["packages"]["c"]["versions"][0]["checksum"].clone();
    let b1 = version_entry(&mut index, "b", "1.0.0");
    b1["tarball"] = json!("c//2.0.0/c-2.0.0.tar.gz");
    b1["checksum"] = c_checksum;
    std::fs::rename(root.join("b/0.9.0"), root.join("b/0.9.0-old")).unwrap();
    std::fs::remove_file(root.join("b/0.9.0-old/package.json")).unwrap();
    version_entry(&mut index, "b", "0.9.0")["tarball"] = json!("b/0.9.0-old/b-0.9.0.tar.gz");
    std::fs::rename(
        root.join("d/1.0.0/d-1.0.0.tar.gz"),
        root.join("d/2.0.0/d-1.0.0.tar.gz"),
    )
    .unwrap();
    version_entry(&mut index, "d", "1.0.0")["tarball"] = json!("d/./2.0.0/d-1.0.0.tar.gz");
    write_index(&env, &index);

    env.ok(&["marketplace", "unpublish", "b@1.0.0"]);
    env.ok(&["marketplace", "unpublish", "d@2.0.0"]);
    assert!(root.join("c/2.0.0/c-2.0.0.tar.gz").is_file());
    assert!(root.join("b/0.9.0-old/b-0.9.0.tar.gz").is_file());
    assert!(root.join("d/2.0.0/d-1.0.0.tar.gz").is_file());
    assert!(!root.join("d/2.0.0/d-2.0.0.tar.gz").exists());
    let target = env.work.path().join("t");
    let target = target.to_str().unwrap();
    for spec in ["c", "b@0.9.0", "d@1.0.0"] {
        env.ok(&["marketplace", "install", spec, "--target", target]);
    }
    // The clean-up after a publish leaves them too.
    env.publish(manifest("b", "1.2.0"));
    assert!(root.join("b/0.9.0-old/b-0.9.0.tar.gz").is_file());
}

/// `name@version`'s entry in a parsed index.json.
fn version_entry<'a>(
    index: &'a mut serde_json::Value,
    name: &str,
    version: &str,
) -> &'a mut serde_json::Value {
    let versions = index["packages"][name]["versions"].as_array_mut().unwrap();
    let at = versions
        .iter()
        .position(|e| e["version"] == version)
        .unwrap();
    &mut versions[at]
}

/// A version an index lists twice goes whole, and counts once: the
/// dependents check does not take the second entry for another version.
#[test]
fn unpublish_of_a_version_listed_twice() {
    let env = Env::new();
    env.publish(manifest("e", "1.0.0"));
    let mut user = manifest("f", "1.0.0");
    user["dependencies"] = json!({"e": "^1.0"});
    env.publish(user);
    let index_path = env.registry().join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let twice = index["packages"]["e"]["versions"][0].clone();
    index["packages"]["e"]["versions"]
        .as_array_mut()
        .unwrap()
        .push(twice);
    write_index(&env, &index);
    let err = env.fails(&["marketplace", "unpublish", "e@1.0.0"]);
    assert!(err.contains("f@1.0.0 (requires e ^1.0) needs it"), "{err}");
    let r = env.json(&["marketplace", "unpublish", "e@1.0.0", "--force", "--json"]);
    assert_eq!(r["remaining"], json!([]), "{r}");
    assert_eq!(r["broken_dependents"], json!(["f@1.0.0 (requires e ^1.0)"]));
}

#[test]
fn damaged_search_cache_is_rebuilt() {
    let env = Env::new();
    env.publish(manifest("cached", "1.0.0"));
    env.ok(&["marketplace", "search", "cached"]);
    let file = search_index(&env);
    assert!(file.is_file());
    for garbage in [&b"GGSIDX09"[..], b"", &[0xff; 4096][..]] {
        std::fs::write(&file, garbage).unwrap();
        let r = env.json(&["marketplace", "search", "cached", "--json"]);
        assert_eq!(r["results"][0]["name"], "cached");
    }
    // A flipped bit in a hit's stored metadata (its checksum, first held in
    // the blobs) is not shown: the search rebuilds the file instead.
    let r = env.json(&["marketplace", "search", "cached", "--json"]);
    let checksum = r["results"][0]["checksum"].as_str().unwrap().to_owned();
    let sound = std::fs::read(&file).unwrap();
    let at = sound
        .windows(checksum.len())
        .position(|w| w == checksum.as_bytes())
        .unwrap();
    let mut flipped = sound.clone();
    flipped[at + checksum.len() - 1] ^= 1;
    std::fs::write(&file, &flipped).unwrap();
    let r = env.json(&["marketplace", "search", "cached", "--json"]);
    assert_eq!(r["results"][0]["checksum"], checksum.as_str());
    assert_eq!(std::fs::read(&file).unwrap(), sound);
}

/// `"description": null` publishes as no description, and a lost index
/// rebuilt from the package.json files keeps the package (the null an
/// earlier publish stored there made the rebuild skip it: the package was
/// gone from search and info).
#[test]
fn a_null_description_survives_an_index_rebuild() {
    let env = Env::new();
    env.publish(json!({"name": "nulldesc", "version": "1.0.0", "description": null}));
    let stored = env.registry().join("nulldesc/1.0.0/package.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stored).unwrap()).unwrap();
    assert_eq!(manifest["description"], "");
    // As an earlier ggen stored it.
    manifest["description"] = serde_json::Value::Null;
    std::fs::write(&stored, manifest.to_string()).unwrap();
    std::fs::remove_file(env.registry().join("index.json")).unwrap();
    let r = env.json(&["marketplace", "search", "nulldesc", "--json"]);
    assert_eq!(r["results"][0]["name"], "nulldesc", "{r}");
    env.ok(&["marketplace", "info", "nulldesc"]);
}

#[test]
fn missing_index_is_rebuilt_from_package_manifests() {
    let env = Env::new();
    env.publish(manifest("kept", "1.0.0"));
    env.publish(manifest("kept", "1.1.0"));
    std::fs::remove_file(env.registry().join("index.json")).unwrap();
    // A version whose package.json cannot be read is named, not dropped
    // silently.
    let unreadable = env.registry().join("kept/1.1.0/package.json");
    std::fs::remove_file(&unreadable).unwrap();
    std::fs::create_dir(&unreadable).unwrap();
    let out = env.run(&["marketplace", "search", "kept", "--json"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipping kept/1.1.0: cannot read its package.json"),
        "{stderr}"
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["results"][0]["name"], "kept");
    assert_eq!(r["results"][0]["version"], "1.0.0");
    assert!(env.registry().join("index.json").is_file());
}

/// Longer than any command takes: a command still running then hangs.
const HANG: std::time::Duration = std::time::Duration::from_secs(120);

#[test]
fn an_index_that_is_no_file_is_named_not_rebuilt_over() {
    let env = Env::new();
    env.publish(manifest("kept", "1.0.0"));
    let index = env.registry().join("index.json");
    std::fs::remove_file(&index).unwrap();
    let before = snapshot(&env.registry());

    // A dangling symlink: rebuilding could never write an index there (it
    // recursed until the plugin's stack overflowed).
    std::os::unix::fs::symlink("nowhere.json", &index).unwrap();
    for cmd in [&["search", "kept"][..], &["info", "kept"]] {
        let err = env.fails(&[&["marketplace"][..], cmd].concat());
        assert!(
            err.contains("cannot read index.json: it is a symbolic link to `nowhere.json`"),
            "{err}"
        );
    }
    // A link out of the registry is refused by the sandbox, and said so.
    std::fs::remove_file(&index).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &index).unwrap();
    let err = env.fails(&["marketplace", "search", "kept"]);
    assert!(
        err.contains("cannot read index.json: it is a symbolic link that leads to no file inside the registry"),
        "{err}"
    );
    std::fs::remove_file(&index).unwrap();

    // A directory (it said `bad-descriptor`).
    std::fs::create_dir(&index).unwrap();
    let err = env.fails(&["marketplace", "search", "kept"]);
    assert!(
        err.contains("cannot read index.json: it is a directory, not a file"),
        "{err}"
    );
    std::fs::remove_dir(&index).unwrap();

    // A FIFO: opening it waited for a writer forever, in the host, where
    // the plugin's deadline does not reach.
    support::mkfifo(&index);
    let err = env.fails_unless_hung(&["marketplace", "search", "kept"], HANG);
    assert!(
        err.contains("cannot read index.json: it is not a regular file (a FIFO"),
        "{err}"
    );
    std::fs::remove_file(&index).unwrap();
    assert_eq!(snapshot(&env.registry()), before, "nothing was written");

    // A link inside the registry is followed.
    env.ok(&["marketplace", "search", "kept"]); // rebuilds index.json
    std::fs::rename(&index, env.registry().join("real.json")).unwrap();
    std::os::unix::fs::symlink("real.json", &index).unwrap();
    let r = env.json(&["marketplace", "search", "kept", "--json"]);
    assert_eq!(r["results"][0]["name"], "kept");
}

#[test]
fn empty_registry_searches_without_writing() {
    let env = Env::new();
    let r = env.json(&["marketplace", "search", "anything", "--json"]);
    assert_eq!(r["total"], 0);
    assert!(snapshot(&env.registry()).is_empty());
    assert!(
        !search_index(&env).exists(),
        "no index.json, so no search index is stored (it could never be fresh)"
    );
}

#[test]
fn search_matches_a_brute_force_scan() {
    let env = Env::new();
    let words = ["alpha", "beta", "gamma", "delta", "omega", "sigma"];
    let mut packages = serde_json::Map::new();
    let mut fields = Vec::new();
    for i in 0..400usize {
        let w = |k: usize| words[(i * 7 + k * 3 + i / 5) % words.len()];
        let (name, title, desc, tag) = (
            format!("p{i}-{}", w(0)),
            format!("{} kit", w(1)),
            format!("uses {} and {}", w(2), w(3)),
            w(4),
        );
        packages.insert(name.clone(), json!({"name": name, "versions": [
            {"version": "1.0.0", "title": title, "description": desc, "tags": [tag], "categories": [if i % 2 == 0 { "even" } else { "odd" }]}
        ]}));
        fields.push((name, format!("{title} {desc} {tag}"), i % 2 == 0));
    }
    write_index(&env, &json!({"version": "1", "packages": packages}));
    for query in [
        "alpha beta",
        "omega",
        "sigma gamma delta",
        "p12",
        "kit uses",
        "nothing",
    ] {
        let terms: Vec<&str> = query.split_whitespace().collect();
        let mut expected: Vec<&str> = fields
            .iter()
            .filter(|(name, text, _)| terms.iter().all(|t| name.contains(t) || text.contains(t)))
            .map(|(name, _, _)| name.as_str())
            .collect();
        expected.sort();
        let r = env.json(&["marketplace", "search", query, "--limit", "1000", "--json"]);
        let mut got: Vec<&str> = strings(&r["results"], "name");
        got.sort();
        assert_eq!(got, expected, "query {query:?}");
        assert_eq!(r["total"], expected.len());
        let even = env.json(&[
            "marketplace",
            "search",
            query,
            "--category",
            "even",
            "--limit",
            "1000",
            "--json",
        ]);
        let even_expected = fields
            .iter()
            .filter(|(n, _, e)| *e && expected.contains(&n.as_str()))
            .count();
        assert_eq!(
            even["total"], even_expected,
            "query {query:?} in category even"
        );
    }
}

/// The documented ranking, computed the obvious way: whole query equal to the
/// name, then per term name prefix > name > title > tags > description.
fn reference_score(
    query: &str,
    name: &str,
    title: &str,
    tags: &[String],
    desc: &str,
) -> Option<u32> {
    let whole = query.trim();
    let mut score = if name == whole { 1000 } else { 0 };
    for term in whole.split_whitespace() {
        score += if name.starts_with(term) {
            50
        } else if name.contains(term) {
            40
        } else if title.contains(term) {
            30
        } else if tags.iter().any(|t| t.contains(term)) {
            20
        } else if desc.contains(term) {
            10
        } else {
            return None;
        };
    }
    Some(score)
}

#[test]
fn ranking_over_a_multi_megabyte_index_matches_the_documented_tiers() {
    // Syllables that make words across field boundaries ("xal" + "pha...")
    // which must not count; thousands of packages so the search index is
    // read in several chunks with records cut between them.
    let syllables = [
        "al", "pha", "be", "ta", "gam", "ma", "del", "om", "ega", "sig",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut pick = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        syllables[(seed % syllables.len() as u64) as usize]
    };
    let env = Env::new();
    let mut packages = serde_json::Map::new();
    let mut all = Vec::new();
    for i in 0..12_000usize {
        let name = format!("p{i}{}", pick());
        let title = format!("{}{} kit", pick(), pick());
        let tags = vec![format!("{}{}", pick(), pick()), pick().to_owned()];
        let desc: Vec<&str> = (0..40).map(|_| pick()).collect();
        let desc = desc.join(if i % 3 == 0 { "" } else { " " });
        packages.insert(name.clone(), json!({"name": name, "versions": [
            {"version": "1.0.0", "title": title, "description": desc, "tags": tags, "categories": ["c"]}
        ]}));
        all.push((name, title, tags, desc));
    }
    write_index(&env, &json!({"version": "1", "packages": packages}));
    // A term longer than a 16-byte vector step (from a description written
    // without spaces), and a one-byte term.
    let long_term = all[777].3[5..27].to_owned();
    for query in [
        "alpha",
        "ma ta",
        "gamma kit",
        "ega om",
        "p12",
        "p1234al",
        "pha sig del",
        "zzz",
        "g",
        &long_term,
    ] {
        let mut expected: Vec<(u32, &str)> = all
            .iter()
            .filter_map(|(n, t, tags, d)| {
                reference_score(query, n, t, tags, d).map(|s| (s, n.as_str()))
            })
            .collect();
        expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        let total = expected.len();
        let expected: Vec<&str> = expected.into_iter().map(|(_, n)| n).take(10_000).collect();
        let r = env.json(&["marketplace", "search", query, "--limit", "10000", "--json"]);
        let got: Vec<&str> = strings(&r["results"], "name");
        assert_eq!(r["total"], total, "query {query:?}");
        assert!(
            got == expected,
            "query {query:?}: ranking differs from the reference"
        );
    }
    let size = std::fs::metadata(search_index(&env)).unwrap().len();
    assert!(
        size > 1 << 20,
        "the search index is only {size} bytes: too small to need several reads"
    );
}

/// Searches rebuild a lost or corrupt index.json without the registry lock.
/// A search whose scan began before a publish wrote the index must not
/// overwrite it afterwards: the published version would vanish.
#[test]
fn a_search_rebuilding_the_index_never_drops_a_concurrent_publish() {
    let env = Env::new();
    env.publish(manifest("race", "0.1.0"));
    // Many versions without checksums: each rebuild hashes every tarball, so
    // its scan is long enough to overlap a whole publish.
    for i in 0..300 {
        let dir = env.registry().join(format!("bulk{i}/1.0.0"));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest =
            json!({"name": format!("bulk{i}"), "version": "1.0.0", "description": "bulk"});
        std::fs::write(dir.join("package.json"), manifest.to_string()).unwrap();
        std::fs::write(
            dir.join(format!("bulk{i}-1.0.0.tar.gz")),
            vec![i as u8; 64 << 10],
        )
        .unwrap();
    }
    let index = env.registry().join("index.json");
    let rounds = 6;
    for round in 1..=rounds {
        // Alternately lost and corrupt.
        if round % 2 == 0 {
            std::fs::write(&index, "{\"packages\": [").unwrap();
        } else {
            let _ = std::fs::remove_file(&index);
        }
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        env.ok(&["marketplace", "search", "bulk", "--limit", "1"]);
                    }
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(20 * round));
            env.publish(manifest("race", &format!("1.0.{round}")));
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let info = env.json(&["marketplace", "info", "race", "--json"]);
        assert_eq!(
            info["versions"].as_array().unwrap().len() as u64,
            round + 1,
            "round {round}: a published version vanished from the index: {info}"
        );
        // Nor from search: a rebuild that read index.json before the
        // publish wrote it was stored as the new file's search index.
        let hit = env.json(&["marketplace", "search", "race", "--json"]);
        assert_eq!(
            hit["results"][0]["version"],
            format!("1.0.{round}"),
            "round {round}: search shows an index from before the publish: {hit}"
        );
    }
    let all = env.json(&["marketplace", "search", "bulk", "--json"]);
    assert_eq!(all["total"], 300);
}

/// The first publish into a registry with no index.json, beside searches: a
/// search that began before index.json existed stored its empty result as
/// the search index of the file the publish then wrote, hiding the package
/// until the next change. (Directories without package.json, as killed
/// publishes leave, make each search's scan long enough to overlap.)
#[test]
fn a_search_beside_the_first_publish_never_hides_it() {
    let env = Env::new();
    env.ok(&["marketplace", "search", "warm"]); // compiles the plugin
    for round in 1..=8 {
        let registry = env.work.path().join(format!("registry{round}"));
        for i in 0..2000 {
            std::fs::create_dir_all(registry.join(format!("junk{i}/1.0.0"))).unwrap();
        }
        let at = ["--registry", registry.to_str().unwrap(), "marketplace"];
        let search = [&at[..], &["search", "first"]].concat();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        let out = env.run(&search);
                        let stderr = String::from_utf8_lossy(&out.stderr);
                        assert!(out.status.success() && stderr.is_empty(), "{stderr}");
                    }
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(15 * round));
            let dir = env.package(&format!("first{round}"), &manifest("first", "1.0.0"), &[]);
            env.ok(&[&at[..], &["publish", dir.to_str().unwrap()]].concat());
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let hit = env.json(&[&search[..], &["--json"]].concat());
        assert_eq!(
            hit["total"], 1,
            "round {round}: search does not find the published package: {hit}"
        );
    }
}

/// `publish --force` over a version, killed at any moment: the index entry
/// and the tarball it names always agree, so installs never see a checksum
/// mismatch, and the next publish cleans up what the kill left.
#[test]
fn a_forced_publish_killed_at_any_moment_leaves_the_entry_matching_its_file() {
    let env = Env::new();
    write_large_index(&env);
    let dir = env.package(
        "victim",
        &manifest("victim", "1.0.0"),
        &[("round.txt", "0")],
    );
    let publish = ["marketplace", "publish", dir.to_str().unwrap(), "--force"];
    env.ok(&publish); // compiles the plugin
    let start = std::time::Instant::now();
    env.ok(&publish);
    let whole = start.elapsed();
    let check = |round: u32| {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(env.registry().join("index.json")).unwrap())
                .unwrap();
        let entry = &index["packages"]["victim"]["versions"][0];
        let file = env.registry().join(entry["tarball"].as_str().unwrap());
        let bytes = std::fs::read(&file)
            .unwrap_or_else(|e| panic!("round {round}: {} is gone: {e}", file.display()));
        assert_eq!(
            entry["checksum"],
            format!("sha256-{}", support::sha256_hex(&bytes)),
            "round {round}: the index entry does not match {}",
            file.display()
        );
    };
    let rounds = 24;
    for round in 1..=rounds {
        std::fs::write(dir.join("round.txt"), round.to_string()).unwrap();
        let mut child = env
            .cmd(&publish)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(whole * round / rounds);
        let _ = child.kill();
        let _ = child.wait();
        check(round);
    }
    env.ok(&publish);
    check(rounds + 1);
    let leftovers: Vec<_> = std::fs::read_dir(env.registry().join("victim/1.0.0"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "package.json" && n != "victim-1.0.0.tar.gz")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    env.ok(&["marketplace", "install", "victim"]);
}

/// A new version's package.json, the file a rebuild of a lost index lists
/// versions from, appears only once the index lists the version. A publish
/// killed at any moment (or a search rebuilding beside one still under way)
/// must not make an unpublished version appear.
#[test]
fn a_publish_killed_at_any_moment_leaves_no_version_a_rebuild_would_list() {
    let env = Env::new();
    write_large_index(&env);
    let publish = |version: &str| {
        let dir = env.package(version, &manifest("killed", version), &[]);
        env.cmd(&["marketplace", "publish", dir.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    publish("0.0.1").wait().unwrap(); // compiles the plugin
    let start = std::time::Instant::now();
    assert!(publish("0.0.2").wait().unwrap().success());
    let whole = start.elapsed();
    let rounds = 24;
    for round in 1..=rounds {
        let version = format!("1.0.{round}");
        let mut child = publish(&version);
        std::thread::sleep(whole * round / rounds);
        let _ = child.kill();
        let _ = child.wait();
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(env.registry().join("index.json")).unwrap())
                .unwrap();
        let listed = index["packages"]["killed"]["versions"]
            .as_array()
            .is_some_and(|v| v.iter().any(|e| e["version"] == version.as_str()));
        let manifest = env
            .registry()
            .join("killed")
            .join(&version)
            .join("package.json");
        assert!(
            listed || !manifest.exists(),
            "round {round}: {version} has a package.json but is not in the index"
        );
    }
}

/// `publish --force` writes package.json before it copies the new tarball
/// over the old one. Killed in between, the new bytes are only in the side
/// file: a rebuilt index must point there (it paired package.json's checksum
/// with the old file, and the version could not be installed).
#[test]
fn a_rebuild_after_a_replacement_killed_midway_finds_the_new_bytes() {
    let env = Env::new();
    let dir = env.package("p", &manifest("mid", "1.0.0"), &[("a.txt", "old")]);
    env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
    let usual = env.registry().join("mid/1.0.0/mid-1.0.0.tar.gz");
    let old = std::fs::read(&usual).unwrap();
    std::fs::write(dir.join("a.txt"), "new").unwrap();
    env.ok(&["marketplace", "publish", dir.to_str().unwrap(), "--force"]);
    // The state the kill leaves: package.json and the side file new, the
    // usual file old, and then the index lost.
    let side = env
        .registry()
        .join("mid/1.0.0/mid-1.0.0.tar.gz.replacing-1");
    std::fs::rename(&usual, &side).unwrap();
    std::fs::write(&usual, &old).unwrap();
    std::fs::remove_file(env.registry().join("index.json")).unwrap();
    env.ok(&["marketplace", "search", "mid"]);
    let target = env.work.path().join("t");
    env.ok(&[
        "marketplace",
        "install",
        "mid",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(target.join("mid/a.txt")).unwrap(),
        "new"
    );
}
