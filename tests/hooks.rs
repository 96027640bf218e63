//! Post-install hooks end to end: the shipped hooks through `install`,
//! consent (flags, config.toml, approve-hooks), ggen.lock records and
//! `verify`, hostile hooks against the sandbox, and `plugin inspect`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::archives::{entry, gz};
use support::{Env, fixture, named, plant_tarball, sha256_hex, snapshot, strings};

fn lock(env: &Env) -> Value {
    let text = std::fs::read(env.home().join("packages/ggen.lock")).unwrap();
    serde_json::from_slice(&text).unwrap()
}

fn installed(env: &Env, name: &str) -> PathBuf {
    env.home().join("packages").join(name)
}

/// A template package rendered and catalogued by the shipped hooks.
fn publish_template(env: &Env) {
    let dir = env.package(
        "web-1.0.0",
        &json!({
            "name": "web",
            "version": "1.0.0",
            "variables": {"project_name": "demo-app", "port": "8080"},
            "hooks": {"post-install": ["builtin:render-templates", "builtin:file-manifest"]}
        }),
        &[
            (
                "templates/main.rs.tmpl",
                "// {{ project_name }} ({{package}} {{version}})\nconst PORT: u16 = {{port}};\nconst RAW: &str = \"\\{{kept}}\";\n",
            ),
            ("static/logo.txt", "{{ not a template: no .tmpl suffix }}\n"),
        ],
    );
    env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
}

/// A package whose post-install hook is the `hostile-hook` fixture.
fn publish_hostile(env: &Env, name: &str, version: &str, deps: Value) {
    publish_hostile_with(env, (name, version, deps), 1, &[]);
}

/// A package that runs the `hostile-hook` fixture `runs` times, with
/// `files` besides.
fn publish_hostile_with(
    env: &Env,
    (name, version, deps): (&str, &str, Value),
    runs: usize,
    files: &[(&str, &str)],
) {
    let dir = env.package(
        &format!("{name}-{version}"),
        &json!({
            "name": name,
            "version": version,
            "dependencies": deps,
            "hooks": {"post-install": vec!["hooks/setup.wasm"; runs]}
        }),
        &[&[("README.md", "hostile\n")][..], files].concat(),
    );
    std::fs::create_dir_all(dir.join("hooks")).unwrap();
    std::fs::copy(fixture("hostile-hook"), dir.join("hooks/setup.wasm")).unwrap();
    env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
}

fn config(env: &Env, text: &str) {
    env.write_config(text);
}

#[test]
fn shipped_hooks_render_templates_and_list_files() {
    let env = Env::new();
    publish_template(&env);
    let out = env.run(&[
        "marketplace",
        "install",
        "web",
        "--allow-hooks",
        "web",
        "--var",
        "project_name=shiny",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[web] builtin:render-templates: rendered 1 template"),
        "{stderr}"
    );

    let dir = installed(&env, "web");
    let rendered = std::fs::read_to_string(dir.join("templates/main.rs")).unwrap();
    assert_eq!(
        rendered,
        "// shiny (web 1.0.0)\nconst PORT: u16 = 8080;\nconst RAW: &str = \"{{kept}}\";\n"
    );
    assert!(!dir.join("templates/main.rs.tmpl").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("static/logo.txt")).unwrap(),
        "{{ not a template: no .tmpl suffix }}\n"
    );

    // The manifest lists every other file with its real digest.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("ggen-manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["package"], "web");
    let files = manifest["files"].as_array().unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["package.json", "static/logo.txt", "templates/main.rs"]
    );
    for f in files {
        let bytes = std::fs::read(dir.join(f["path"].as_str().unwrap())).unwrap();
        assert_eq!(f["size"], bytes.len());
        assert_eq!(f["sha256"], sha256_hex(&bytes));
    }

    // ggen.lock: each hook's digest and outcome, what they changed, and the
    // files as the hooks left them.
    let lock = lock(&env);
    let entry = &lock["packages"][0];
    let hooks = entry["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks[0]["hook"], "builtin:render-templates");
    assert_eq!(hooks[0]["outcome"], "ran");
    assert!(hooks[0]["digest"].as_str().unwrap().starts_with("sha256-"));
    assert_eq!(
        entry["hook_changes"],
        json!({"ggen-manifest.json": "created", "templates/main.rs": "created", "templates/main.rs.tmpl": "removed"})
    );
    assert_eq!(
        entry["files"]["templates/main.rs"],
        format!("sha256-{}", sha256_hex(rendered.as_bytes()))
    );
    assert!(entry["files"].get("templates/main.rs.tmpl").is_none());
}

#[test]
fn verify_tells_hook_edits_from_later_tampering() {
    let env = Env::new();
    publish_template(&env);
    env.ok(&["marketplace", "install", "web", "--allow-all-hooks"]);
    let report = env.json(&["marketplace", "verify", "--json"]);
    assert_eq!(report["ok"], true);
    assert_eq!(
        report["packages"][0]["changed_by_hooks"],
        json!(["ggen-manifest.json", "templates/main.rs"])
    );
    let human = env.ok(&["marketplace", "verify"]);
    assert!(
        human.contains("as its approved post-install hooks left them"),
        "{human}"
    );

    std::fs::write(
        installed(&env, "web").join("templates/main.rs"),
        "tampered\n",
    )
    .unwrap();
    let out = env.run(&["marketplace", "verify", "--json"]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &report["packages"][0];
    assert_eq!(p["modified"], json!(["templates/main.rs"]));
    assert_eq!(p["changed_by_hooks"], json!(["ggen-manifest.json"]));
}

/// A compiled entry copied over another one's in the plugin cache is not
/// run in its place (file-manifest ran as render-templates): its seal
/// tells, and the hook is compiled again.
#[test]
fn a_cache_entry_copied_over_another_is_not_run_in_its_place() {
    let env = Env::new();
    publish_template(&env);
    env.ok(&["marketplace", "install", "web", "--allow-hooks", "web"]);
    let lock = lock(&env);
    let prefix = |i: usize| {
        let digest = lock["packages"][0]["hooks"][i]["digest"].as_str().unwrap();
        digest["sha256-".len()..][..32].to_owned()
    };
    let plugins = env.home().join("cache/plugins");
    let entry = |prefix: &str| {
        std::fs::read_dir(&plugins)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let name = p.file_name().unwrap().to_str().unwrap();
                name.starts_with(prefix) && name.ends_with(".cwasm")
            })
            .unwrap()
    };
    let (render, manifest) = (entry(&prefix(0)), entry(&prefix(1)));
    std::fs::copy(&manifest, &render).unwrap();
    env.ok(&[
        "marketplace",
        "install",
        "web",
        "--force",
        "--allow-hooks",
        "web",
    ]);
    let main = std::fs::read_to_string(installed(&env, "web").join("templates/main.rs")).unwrap();
    assert!(main.starts_with("// demo-app (web 1.0.0)"), "{main}");
    assert_ne!(
        std::fs::read(&render).unwrap(),
        std::fs::read(&manifest).unwrap()
    );
}

#[test]
fn unapproved_hooks_are_skipped_and_reported() {
    let env = Env::new();
    publish_template(&env);
    let out = env.ok(&["marketplace", "install", "web"]);
    assert!(
        out.contains("Skipped post-install hooks (not approved)"),
        "{out}"
    );
    assert!(
        out.contains("web@1.0.0: builtin:render-templates, builtin:file-manifest"),
        "{out}"
    );
    assert!(out.contains("ggen marketplace approve-hooks"), "{out}");
    assert!(out.contains("--allow-hooks web"), "{out}");
    let dir = installed(&env, "web");
    assert!(dir.join("templates/main.rs.tmpl").is_file());
    assert!(!dir.join("ggen-manifest.json").exists());
    let lock = lock(&env);
    let outcomes: Vec<&str> = strings(&lock["packages"][0]["hooks"], "outcome");
    assert_eq!(outcomes, ["skipped", "skipped"]);
    assert!(lock["packages"][0].get("hook_changes").is_none());

    // Approving some other package changes nothing for this one.
    let report = env.json(&[
        "marketplace",
        "install",
        "web",
        "--force",
        "--allow-hooks",
        "other",
        "--json",
    ]);
    assert_eq!(report["hooks"][0]["outcome"], "skipped");
    assert!(
        installed(&env, "web")
            .join("templates/main.rs.tmpl")
            .is_file()
    );
    // Allowing them later on an install that has nothing to do points to
    // approve-hooks, rather than only to --force.
    let out = env.ok(&["marketplace", "install", "web", "--allow-hooks", "web"]);
    assert!(
        out.contains("The post-install hooks of web were skipped when it was installed; run them with `ggen marketplace approve-hooks`."),
        "{out}"
    );
    // --var with no hook running is said to be unused (it was lost silently).
    let (_, stderr) = env.ok_warned(&[
        "marketplace",
        "install",
        "web",
        "--force",
        "--var",
        "project_name=x",
    ]);
    assert!(
        stderr.contains("--var was not used and is not kept: no post-install hook ran (give the values to approve-hooks when you approve the hooks)"),
        "{stderr}"
    );
    // In another root, the hints name it (approve-hooks without it worked
    // on the default root).
    let other = env.work.path().join("other root");
    let other = other.to_str().unwrap();
    let out = env.ok(&["marketplace", "install", "web", "--target", other]);
    let approve = format!("Run them with `ggen marketplace approve-hooks --target '{other}'`;");
    assert!(out.contains(&approve), "{out}");
    let out = env.ok(&[
        "marketplace",
        "install",
        "web",
        "--target",
        other,
        "--allow-hooks",
        "web",
    ]);
    assert!(
        out.contains(&format!(
            "`ggen marketplace approve-hooks --target '{other}'`."
        )),
        "{out}"
    );
}

#[test]
fn config_toml_approval_and_limits_are_honoured() {
    let env = Env::new();
    publish_template(&env);
    config(&env, "[hooks]\nallow = [\"web\"]\n");
    let report = env.json(&["marketplace", "install", "web", "--json"]);
    assert_eq!(report["hooks"][0]["outcome"], "ran");
    assert_eq!(report["hooks"][0]["summary"], "rendered 1 template");
    assert!(installed(&env, "web").join("templates/main.rs").is_file());

    // The deadline comes from [hooks] timeout_ms.
    publish_hostile(&env, "slow", "1.0.0", json!({}));
    config(&env, "[hooks]\nallow = [\"slow\"]\ntimeout_ms = 300\n");
    let err = env.fails(&["marketplace", "install", "slow", "--var", "attack=loop"]);
    assert!(err.contains("ran past its 300ms deadline"), "{err}");
    assert!(
        err.contains("raise it with [hooks] timeout_ms in config.toml"),
        "{err}"
    );
    assert!(!err.contains("memory_mib"), "{err}");
    // So does a hook asleep in the host (where epoch checks do not run).
    let err = env.fails_unless_hung(
        &["marketplace", "install", "slow", "--var", "attack=sleep"],
        Duration::from_secs(120),
    );
    assert!(err.contains("ran past its 300ms deadline"), "{err}");
    assert!(!installed(&env, "slow").exists());

    // Names that cannot be packages approve nothing: refused, not ignored.
    config(&env, "[hooks]\nallow = [\"*\"]\n");
    let err = env.fails(&["marketplace", "install", "web", "--force"]);
    assert!(
        err.contains("[hooks] allow in")
            && err.contains("`*` is not a package name; use --allow-all-hooks"),
        "{err}"
    );
    config(&env, "");
    let err = env.fails(&[
        "marketplace",
        "install",
        "web",
        "--force",
        "--allow-hooks",
        "Web App",
    ]);
    assert!(
        err.contains("--allow-hooks: package name `Web App` has uppercase letters"),
        "{err}"
    );
}

#[test]
fn approve_hooks_lists_approves_and_runs_them() {
    let env = Env::new();
    publish_template(&env);
    env.ok(&["marketplace", "install", "web"]);
    config(
        &env,
        "# my settings\n[marketplace.plugins]\ntimeout_ms = 4000\n",
    );

    // Without a terminal and without --yes nothing is approved.
    let before = snapshot(&env.home().join("packages"));
    let err = env.fails(&["marketplace", "approve-hooks"]);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(snapshot(&env.home().join("packages")), before);
    // Running the hooks reinstalls the package: local changes are not lost
    // without --force.
    let note = installed(&env, "web").join("note.txt");
    std::fs::write(&note, "mine").unwrap();
    let err = env.fails(&["marketplace", "approve-hooks", "--yes"]);
    assert!(
        err.contains("has local changes (added note.txt)") && err.contains("--force"),
        "{err}"
    );
    assert!(note.exists());

    let out = env.ok(&[
        "marketplace",
        "approve-hooks",
        "--yes",
        "--force",
        "--var",
        "project_name=later",
    ]);
    assert!(!note.exists(), "--force discards the local change");
    assert!(out.contains("web"), "{out}");
    assert!(
        out.contains("builtin:render-templates, builtin:file-manifest"),
        "{out}"
    );
    let rendered =
        std::fs::read_to_string(installed(&env, "web").join("templates/main.rs")).unwrap();
    assert!(rendered.starts_with("// later (web 1.0.0)"), "{rendered}");
    let config = std::fs::read_to_string(env.home().join("config.toml")).unwrap();
    assert!(config.contains("# my settings"), "{config}");
    assert!(config.contains("timeout_ms = 4000"), "{config}");
    assert!(config.contains("allow = [\"web\"]"), "{config}");
    assert_eq!(lock(&env)["packages"][0]["hooks"][0]["outcome"], "ran");
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);

    let out = env.ok(&["marketplace", "approve-hooks", "--yes"]);
    assert!(out.contains("No post-install hooks are waiting"), "{out}");
    // Approved for good: a reinstall runs them without flags.
    let report = env.json(&["marketplace", "install", "web", "--force", "--json"]);
    assert_eq!(report["hooks"][0]["outcome"], "ran");

    // Consent is for the hooks of the bytes that were installed: a version
    // republished with --force since then is refused, not run (it ran
    // whatever the registry served now).
    let dir = env.package(
        "swapped-1.0.0",
        &json!({"name": "swapped", "version": "1.0.0",
                "hooks": {"post-install": "builtin:file-manifest"}}),
        &[("a.txt", "as installed\n")],
    );
    env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
    env.ok(&["marketplace", "install", "swapped"]);
    std::fs::write(dir.join("a.txt"), "swapped behind your back\n").unwrap();
    env.ok(&["marketplace", "publish", dir.to_str().unwrap(), "--force"]);
    let (packages, config_before) = (
        snapshot(&env.home().join("packages")),
        std::fs::read(env.home().join("config.toml")).unwrap(),
    );
    let err = env.fails(&["marketplace", "approve-hooks", "--yes"]);
    assert!(
        err.contains("swapped@1.0.0 in the registry is not what was installed")
            && err.contains("install swapped@=1.0.0 --force"),
        "{err}"
    );
    assert_eq!(snapshot(&env.home().join("packages")), packages);
    assert_eq!(
        std::fs::read(env.home().join("config.toml")).unwrap(),
        config_before
    );
    env.ok(&["marketplace", "remove", "swapped"]);

    // Hooks that fail are not approved: config.toml stays as it was.
    let dir = env.package(
        "needs-1.0.0",
        &json!({"name": "needs", "version": "1.0.0",
                "hooks": {"post-install": "builtin:render-templates"}}),
        &[("a.txt.tmpl", "hello {{ who }}\n")],
    );
    env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
    env.ok(&["marketplace", "install", "needs"]);
    let config_before = std::fs::read(env.home().join("config.toml")).unwrap();
    let err = env.fails(&["marketplace", "approve-hooks", "--yes"]);
    assert!(
        err.contains("no value for `who`; pass --var who=VALUE"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(env.home().join("config.toml")).unwrap(),
        config_before
    );
    env.ok(&["marketplace", "approve-hooks", "--yes", "--var", "who=you"]);
    let config = std::fs::read_to_string(env.home().join("config.toml")).unwrap();
    assert!(config.contains("allow = [\"web\", \"needs\"]"), "{config}");

    // An install killed before it committed is rolled back, not completed:
    // its skipped hooks were listed from the ggen.lock it had written.
    let dir = env.package(
        "killed-1.0.0",
        &json!({"name": "killed", "version": "1.0.0",
                "hooks": {"post-install": "builtin:file-manifest"}}),
        &[("a.txt", "a\n")],
    );
    env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
    let crashed = (env.cmd(&["marketplace", "install", "killed"]))
        .env("GGEN_CRASH", "after-lockfile")
        .output()
        .unwrap();
    assert!(!crashed.status.success());
    let out = env.ok(&["marketplace", "approve-hooks", "--yes"]);
    assert!(out.contains("No post-install hooks are waiting"), "{out}");
    assert!(!installed(&env, "killed").exists());
    let config = std::fs::read_to_string(env.home().join("config.toml")).unwrap();
    assert!(!config.contains("killed"), "{config}");

    // A mistyped --target is an error, as for list and verify.
    let missing = env.work.path().join("no-such-root");
    let err = env.fails(&[
        "marketplace",
        "approve-hooks",
        "--yes",
        "--target",
        missing.to_str().unwrap(),
    ]);
    assert!(err.contains("no such directory"), "{err}");
}

#[test]
fn a_package_hook_gets_its_install_context_and_output_is_shown() {
    let env = Env::new();
    env.publish(json!({"name": "base", "version": "1.2.3"}));
    publish_hostile(&env, "app", "2.0.0", json!({"base": "^1"}));
    let out = env.run(&[
        "marketplace",
        "install",
        "app",
        "--allow-hooks",
        "app",
        "--var",
        "attack=context",
        "--var",
        "greeting=hi there",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in [
        "[app] hello from the hook's stdout",
        "[app] and from its stderr",
        "[app] warning: a warning through the host log",
        "[app] hooks/setup.wasm: wrote context.txt",
    ] {
        assert!(stderr.contains(line), "missing {line:?} in {stderr}");
    }
    assert_eq!(
        std::fs::read_to_string(installed(&env, "app").join("context.txt")).unwrap(),
        "package=app\nversion=2.0.0\ndeps=base=1.2.3\nvars=attack=context,greeting=hi there\n"
    );
    // The digest recorded is the component's.
    let lock = lock(&env);
    let app = named(&lock["packages"], "app");
    let wasm = std::fs::read(fixture("hostile-hook")).unwrap();
    assert_eq!(
        app["hooks"][0]["digest"],
        format!("sha256-{}", sha256_hex(&wasm))
    );
}

#[test]
fn hook_output_shown_to_the_user_is_bounded() {
    let env = Env::new();
    publish_hostile(&env, "chatty", "1.0.0", json!({}));
    let out = env.run(&[
        "marketplace",
        "install",
        "chatty",
        "--allow-hooks",
        "chatty",
        "--var",
        "attack=chatty",
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = stderr
        .lines()
        .filter(|l| l.starts_with("[chatty] line "))
        .count();
    assert_eq!(shown, 100, "{stderr}");
    assert!(
        stderr.contains("[chatty] … 900 more lines not shown"),
        "{stderr}"
    );
}

/// Each attack fails the install with a clear line, leaves the install root
/// exactly as it was, and the next command works.
#[test]
fn hostile_hooks_are_contained_and_roll_back() {
    let env = Env::new();
    config(&env, "[hooks]\ntimeout_ms = 2000\nmemory_mib = 64\n");
    env.publish(json!({"name": "keep", "version": "1.0.0"}));
    env.ok(&["marketplace", "install", "keep"]);
    publish_hostile(&env, "evil", "1.0.0", json!({}));
    let root = env.home().join("packages");
    let before = snapshot(&root);
    let outside = env.home().join("escaped.txt");
    for (attack, expected) in [
        ("read-dotdot", "cannot read /package/../../../../etc/passwd"),
        ("read-absolute", "cannot read /etc/passwd"),
        ("write-outside", "cannot write outside"),
        ("symlink-etc", "/etc"),
        ("symlink-up", "up-link"),
        (
            "plant-symlink",
            "left a symlink or special file at `planted`",
        ),
        ("loop", "ran past its 2s deadline"),
        ("alloc", "exceeded its memory cap of 64 MiB"),
        ("stack", "crashed in `run`"),
        ("print", "wrote more than 1024 KiB of output"),
        ("fail", "the hook refused: missing licence key"),
    ] {
        let err = attack_fails(&env, attack, &before);
        assert!(err.contains(expected), "{attack}: {err}");
        assert!(!err.contains("root:"), "{attack} leaked /etc/passwd: {err}");
        assert!(!outside.exists(), "{attack} wrote outside the package");
    }
    // The host is fine and the same package installs when it behaves.
    env.ok(&["marketplace", "install", "evil", "--allow-hooks", "evil"]);
    assert!(installed(&env, "evil").join("context.txt").is_file());
}

/// Installs `evil` with its hook running `attack`, which must fail and
/// leave the install root as `before`; the error.
fn attack_fails(env: &Env, attack: &str, before: &[(String, Vec<u8>)]) -> String {
    attack_on_fails(env, "evil", attack, before)
}

/// [`attack_fails`] for the package `name` (at 1.0.0).
fn attack_on_fails(env: &Env, name: &str, attack: &str, before: &[(String, Vec<u8>)]) -> String {
    let err = env.fails(&[
        "marketplace",
        "install",
        name,
        "--allow-hooks",
        name,
        "--var",
        &format!("attack={attack}"),
    ]);
    assert!(err.contains(&format!("{name}@1.0.0")), "{attack}: {err}");
    let root = env.home().join("packages");
    assert_eq!(snapshot(&root), before, "{attack} changed the install root");
    assert!(
        !root.join(".ggen-staging").exists(),
        "{attack} left staging behind"
    );
    err
}

/// A hook is stopped once it has written what a package may hold, however
/// it writes: before, it could fill the disk until its deadline and was
/// refused only after.
#[test]
fn hooks_are_stopped_at_the_install_limits_while_they_write() {
    let env = Env::new();
    config(
        &env,
        "[hooks]\ntimeout_ms = 20000\n[marketplace.install]\nmax_unpacked_mib = 4\nmax_entries = 200\n",
    );
    env.publish(json!({"name": "keep", "version": "1.0.0"}));
    env.ok(&["marketplace", "install", "keep"]);
    publish_hostile(&env, "evil", "1.0.0", json!({}));
    let before = snapshot(&env.home().join("packages"));
    let bytes = "wrote more than the install limit (4 MiB) in `run` and was stopped (raise it with [marketplace.install] max_unpacked_mib in config.toml)";
    let entries = "created more than the install limit (200 files, directories and links) in `run` and was stopped (raise it with [marketplace.install] max_entries in config.toml)";
    for (attack, expected) in [
        ("fill", bytes),
        ("write-at", bytes),
        ("grow", bytes),
        // A byte past the end counts the gap too.
        ("sparse", bytes),
        ("sparse-stream", bytes),
        ("zeroes", bytes),
        ("splice", bytes),
        ("many-files", entries),
        ("many-dirs", entries),
        // Output is not file content: its own cap applies.
        ("print", "wrote more than 1024 KiB of output"),
    ] {
        let err = attack_fails(&env, attack, &before);
        assert!(err.contains(expected), "{attack}: {err}");
        assert_eq!(err.lines().count(), 1, "{attack}: {err}");
    }
    env.ok(&["marketplace", "install", "evil", "--allow-hooks", "evil"]);
}

/// The hooks of one package share the allowance (each had it whole, so
/// sixteen hooks could write sixteen times the limit), and what they leave
/// with the package's own files must fit the limits too.
#[test]
fn a_packages_hooks_write_within_one_allowance() {
    let env = Env::new();
    config(&env, "[marketplace.install]\nmax_unpacked_mib = 4\n");
    publish_hostile_with(&env, ("evil", "1.0.0", json!({})), 2, &[]);
    let before = snapshot(&env.home().join("packages"));
    let err = attack_fails(&env, "three-mib", &before);
    assert!(
        err.contains("hook hooks/setup.wasm wrote more than the 1 MiB its package's earlier hooks left of the install limit (4 MiB) in `run` and was stopped (raise it with [marketplace.install] max_unpacked_mib in config.toml)"),
        "{err}"
    );
    // One run fits the allowance, but not beside 2 MiB of the package's own.
    let big = "x".repeat(2 << 20);
    publish_hostile_with(&env, ("big", "1.0.0", json!({})), 1, &[("data.txt", &big)]);
    let err = attack_on_fails(&env, "big", "three-mib", &before);
    assert!(
        err.contains("the post-install hooks of big@1.0.0 left the package with more than the install limit of 4 MiB; nothing was installed"),
        "{err}"
    );
}

/// A write the hook started but did not wait for is done before the
/// package is checked and recorded: what ggen.lock holds is what is there.
#[test]
fn a_write_a_hook_leaves_running_ends_before_the_files_are_recorded() {
    let env = Env::new();
    config(&env, "[hooks]\nmemory_mib = 256\n");
    publish_hostile(&env, "evil", "1.0.0", json!({}));
    env.ok(&[
        "marketplace",
        "install",
        "evil",
        "--allow-hooks",
        "evil",
        "--var",
        "attack=async-write",
    ]);
    let file = installed(&env, "evil").join("async");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 64 << 20);
    let recorded = &lock(&env)["packages"][0]["files"]["async"];
    let actual = format!("sha256-{}", sha256_hex(&std::fs::read(&file).unwrap()));
    assert_eq!(recorded, &json!(actual));
}

#[test]
fn a_failing_hook_rolls_back_an_upgrade_completely() {
    let env = Env::new();
    env.publish(json!({"name": "lib", "version": "1.0.0"}));
    publish_hostile(&env, "lib", "1.1.0", json!({}));
    env.ok(&["marketplace", "install", "lib@1.0.0"]);
    let root = env.home().join("packages");
    let before = snapshot(&root);
    let err = env.fails(&[
        "marketplace",
        "install",
        "lib@1.1.0",
        "--allow-all-hooks",
        "--var",
        "attack=fail",
    ]);
    assert!(err.contains("nothing was installed"), "{err}");
    assert_eq!(snapshot(&root), before);
    assert_eq!(lock(&env)["packages"][0]["version"], "1.0.0");
}

#[test]
fn bad_templates_fail_the_install_naming_file_and_fix() {
    let env = Env::new();
    env.publish(json!({"name": "ok", "version": "1.0.0"}));
    env.ok(&["marketplace", "install", "ok"]);
    let root = env.home().join("packages");
    let before = snapshot(&root);
    // (package, its files, expected error)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (
            "unset",
            &[("a/main.rs.tmpl", "fn main() {}\n// {{ author }}\n")],
            "a/main.rs.tmpl:2: no value for `author`; pass --var author=VALUE \
             or give a default in package.json \"variables\"",
        ),
        (
            "unclosed",
            &[("x.tmpl", "{{ name")],
            "x.tmpl:1: `{{` is never closed with `}}`",
        ),
        (
            "nameless",
            &[("dir/.tmpl", "x")],
            "dir/.tmpl: a template needs a name before `.tmpl`, such as main.rs.tmpl",
        ),
        (
            "collides",
            &[("b.txt.tmpl", "new"), ("b.txt", "shipped")],
            "b.txt.tmpl renders to b.txt, which the package already has; rename one of them",
        ),
    ];
    for (name, files, expected) in cases {
        let dir = env.package(
            name,
            &json!({"name": name, "version": "1.0.0",
                    "hooks": {"post-install": "builtin:render-templates"}}),
            files,
        );
        env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
        let err = env.fails(&["marketplace", "install", name, "--allow-hooks", name]);
        assert!(err.contains(expected), "{name}: {err}");
        assert_eq!(snapshot(&root), before, "{name} changed the install root");
    }
}

#[test]
fn hooks_importing_what_ggen_does_not_provide_are_refused() {
    let env = Env::new();
    let dir = env.package(
        "alien-1.0.0",
        &json!({"name": "alien", "version": "1.0.0", "hooks": {"post-install": "h.wasm"}}),
        &[],
    );
    std::fs::copy(fixture("alien-import-hook"), dir.join("h.wasm")).unwrap();
    env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
    let err = env.fails(&["marketplace", "install", "alien", "--allow-hooks", "alien"]);
    assert!(err.contains("imports `wasi:http/"), "{err}");
    assert!(err.contains("which ggen does not provide"), "{err}");
    assert!(!installed(&env, "alien").exists());

    let inspection = env.json(&[
        "marketplace",
        "plugin",
        "inspect",
        fixture("alien-import-hook").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(inspection["loadable"], false);
    let why = inspection["not_loadable"].to_string();
    assert!(
        why.contains("it imports what ggen does not provide: wasi:http/"),
        "{why}"
    );
    let missing: Vec<&str> = inspection["imports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["provided"] == false)
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(
        !missing.is_empty() && missing.iter().all(|m| m.starts_with("wasi:http/")),
        "{missing:?}"
    );
}

#[test]
fn bad_hook_declarations_are_refused_at_publish_and_install() {
    let env = Env::new();
    for (hooks, needle) in [
        (
            json!({"post-install": "../outside.wasm"}),
            "must be a path inside the package",
        ),
        (
            json!({"post-install": "missing.wasm"}),
            "is not a file in the package",
        ),
        (json!({"pre-install": "x.wasm"}), "unknown hook kind"),
    ] {
        let dir = env.package(
            "bad",
            &json!({"name": "bad", "version": "1.0.0", "hooks": hooks}),
            &[],
        );
        let err = env.fails(&["marketplace", "publish", dir.to_str().unwrap()]);
        assert!(err.contains(needle), "{err}");
    }
    // A hook under .git, or one an ignore file leaves out, is there but
    // not packed: no install could run it.
    let in_git = env.package(
        "ingit",
        &json!({"name": "ingit", "version": "1.0.0", "hooks": {"post-install": "sub/.git/h.wasm"}}),
        &[("sub/.git/h.wasm", "x")],
    );
    let ignored = env.package(
        "ignored",
        &json!({"name": "ignored", "version": "1.0.0", "hooks": {"post-install": "out/h.wasm"}}),
        &[("out/h.wasm", "x"), (".gitignore", "out/\n")],
    );
    for (dir, hook) in [(in_git, "sub/.git/h.wasm"), (ignored, "out/h.wasm")] {
        let err = env.fails(&["marketplace", "publish", dir.to_str().unwrap()]);
        assert!(
            err.contains(&format!("post-install hook `{hook}` is left out of the package (by `.git`, `.gitignore` or `.ggenignore`)")),
            "{err}"
        );
    }
    // Hooks no install could load are refused at publish already...
    let not_wasm = env.package(
        "notwasm",
        &json!({"name": "notwasm", "version": "1.0.0", "hooks": {"post-install": "hook.wasm"}}),
        &[("hook.wasm", "not a component")],
    );
    let nope =
        json!({"name": "nobuiltin", "version": "1.0.0", "hooks": {"post-install": "builtin:nope"}});
    let no_builtin = env.package("nobuiltin", &nope, &[]);
    for (dir, needle) in [
        (
            &not_wasm,
            "post-install hook `hook.wasm` is not a WebAssembly component",
        ),
        (
            &no_builtin,
            "unknown post-install hook `builtin:nope`; this ggen ships builtin:render-templates",
        ),
    ] {
        let err = env.fails(&["marketplace", "publish", dir.to_str().unwrap()]);
        assert!(err.contains(needle), "{err}");
    }
    // ...and named at install time when a registry holds one anyway.
    env.publish(json!({"name": "nobuiltin", "version": "1.0.0"}));
    let manifest = serde_json::to_vec(&nope).unwrap();
    let tarball = gz(&[entry(b"package.json", tar::EntryType::Regular, &manifest)]);
    plant_tarball(&env, "nobuiltin", "1.0.0", &tarball);
    let err = env.fails(&["marketplace", "install", "nobuiltin", "--allow-all-hooks"]);
    assert!(
        err.contains("unknown post-install hook `builtin:nope`"),
        "{err}"
    );
    assert!(err.contains("builtin:render-templates"), "{err}");
}

#[test]
fn plugin_inspect_describes_components() {
    let env = Env::new();
    let inspect = |global: &[&str], file: &std::path::Path| {
        let args = [
            global,
            &[
                "marketplace",
                "plugin",
                "inspect",
                file.to_str().unwrap(),
                "--json",
            ],
        ];
        env.json(&args.concat())
    };
    let limits = |i: &Value| {
        let c = &i["capabilities"];
        (
            c["deadline_ms"].as_u64().unwrap(),
            c["memory_mib"].as_u64().unwrap(),
        )
    };
    let path = fixture("hostile-hook");
    let bytes = std::fs::read(&path).unwrap();
    let i = inspect(&[], &path);
    assert_eq!(i["world"], "post-install-hook");
    assert_eq!(i["contract"], "ggen:marketplace@0.1.0");
    assert_eq!(i["stamped"], true);
    assert_eq!(i["loadable"], true);
    assert_eq!(i["not_loadable"], json!([]));
    assert_eq!(i["size"], bytes.len());
    assert_eq!(i["sha256"], sha256_hex(&bytes));
    assert!(exports(&i).contains(&"ggen:marketplace/post-install@0.1.0".to_string()));
    assert_eq!(i["capabilities"]["preopens"][0]["guest"], "/package");
    assert_eq!(limits(&i), (10_000, 128));
    let writes = &i["capabilities"]["writes"];
    assert_eq!(
        (&writes["max_mib"], &writes["max_entries"]),
        (&json!(1024), &json!(100_000))
    );
    assert!(
        i["imports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["provided"] == true),
        "{i}"
    );

    let registry = fixture("memory-registry");
    let i = inspect(&[], &registry);
    assert_eq!(i["world"], "registry-plugin");
    assert!(exports(&i).contains(&"ggen:marketplace/registry@0.1.0".to_string()));
    let guests: Vec<&str> = strings(&i["capabilities"]["preopens"], "guest");
    assert_eq!(guests, ["/registry", "/cache"]);
    assert_eq!(limits(&i), (5_000, 256));
    assert_eq!(i["capabilities"]["writes"], Value::Null);
    // The limits shown are those this configuration gives (they were the
    // defaults whatever the settings).
    let limited = inspect(
        &["--plugin-timeout", "2s", "--plugin-memory", "64"],
        &registry,
    );
    assert_eq!(limits(&limited), (2_000, 64), "{limited}");
    config(
        &env,
        "[hooks]\ntimeout_ms = 3000\nmemory_mib = 32\n[marketplace.install]\nmax_unpacked_mib = 7\n",
    );
    let hook = inspect(&[], &path);
    assert_eq!(limits(&hook), (3_000, 32), "{hook}");
    assert_eq!(hook["capabilities"]["writes"]["max_mib"], 7, "{hook}");

    let future = fixture("future-contract");
    let i = inspect(&[], &future);
    assert_eq!(i["contract"], "ggen:marketplace@0.2.0");
    assert_eq!(i["loadable"], false);
    assert_eq!(
        i["not_loadable"],
        json!([
            "it was built for contract ggen:marketplace@0.2.0, but this ggen supports ggen:marketplace@0.1.x"
        ]),
        "{i}"
    );
    let human = env.ok(&["marketplace", "plugin", "inspect", future.to_str().unwrap()]);
    assert!(
        human.contains("loadable   no: it was built for contract ggen:marketplace@0.2.0"),
        "{human}"
    );

    let human = env.ok(&["marketplace", "plugin", "inspect", path.to_str().unwrap()]);
    assert!(human.contains("world      post-install-hook"), "{human}");
    assert!(
        human.contains("/package = the staged package directory (read-write)"),
        "{human}"
    );

    let not_wasm = env.work.path().join("notes.wasm");
    std::fs::write(&not_wasm, "hello").unwrap();
    let err = env.fails(&[
        "marketplace",
        "plugin",
        "inspect",
        not_wasm.to_str().unwrap(),
    ]);
    assert!(err.contains("not a WebAssembly component"), "{err}");

    // Files that never end or block are refused before reading: a FIFO
    // (no writer), a device, a directory; --registry-plugin the same way.
    let fifo = env.work.path().join("pipe.wasm");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for (odd, why) in [
        (fifo.as_path(), "it is not a regular file"),
        (Path::new("/dev/zero"), "it is not a regular file"),
        (env.work.path(), "it is a directory"),
    ] {
        let shown = odd.to_str().unwrap();
        let expected =
            format!("plugin file {shown} cannot be loaded: {why}; give a component (.wasm) file");
        let err = env.fails(&["marketplace", "plugin", "inspect", shown]);
        assert!(err.ends_with(&expected), "{err}");
        let err = env.fails(&["marketplace", "--registry-plugin", shown, "search", "x"]);
        assert!(err.ends_with(&expected), "{err}");
    }
}

fn exports(i: &Value) -> Vec<String> {
    i["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn approve_hooks_that_cannot_record_the_approval_runs_no_hook() {
    let env = Env::new();
    publish_template(&env);
    env.ok(&["marketplace", "install", "web"]);
    // config.toml cannot be written (its lock is a FIFO): the hooks ran and
    // committed first, the command then failed, and the consent was lost.
    let fifo = env.home().join("config.toml.lock");
    support::mkfifo(&fifo);
    let err = env.fails(&["marketplace", "approve-hooks", "--yes"]);
    assert!(err.contains("config.toml.lock"), "{err}");
    std::fs::remove_file(&fifo).unwrap();
    // A config.toml its owner made read-only was rewritten (by a rename).
    use std::os::unix::fs::PermissionsExt;
    let config = env.home().join("config.toml");
    std::fs::write(&config, "# mine\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = env.fails(&["marketplace", "approve-hooks", "--yes"]);
    assert!(
        err.contains("config.toml is read-only, so the approval cannot be recorded"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");
    assert!(
        installed(&env, "web")
            .join("templates/main.rs.tmpl")
            .is_file(),
        "a hook ran"
    );
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.ok(&["marketplace", "approve-hooks", "--yes"]);
    assert!(!out.contains("No post-install hooks"), "{out}");
    let config = std::fs::read_to_string(env.home().join("config.toml")).unwrap();
    assert!(config.contains("allow = [\"web\"]"), "{config}");
}

#[test]
fn approve_hooks_writes_through_a_linked_config_toml() {
    let env = Env::new();
    publish_template(&env);
    env.ok(&["marketplace", "install", "web"]);
    // config.toml kept elsewhere (a dotfiles repository) and linked in.
    let kept = env.work.path().join("dotfiles/ggen.toml");
    std::fs::create_dir_all(kept.parent().unwrap()).unwrap();
    std::fs::write(&kept, "# mine\n").unwrap();
    let link = env.home().join("config.toml");
    std::os::unix::fs::symlink(&kept, &link).unwrap();
    env.ok(&["marketplace", "approve-hooks", "--yes"]);
    // It kept the link (it used to replace it with a regular file).
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let text = std::fs::read_to_string(&kept).unwrap();
    assert!(
        text.contains("# mine") && text.contains("allow = [\"web\"]"),
        "{text}"
    );
    // Its lock sits beside the file it guards, so GGEN_HOME itself may be
    // read-only (as root, this machine cannot show that with permissions).
    assert!(kept.with_file_name("ggen.toml.lock").is_file());
    assert!(!env.home().join("config.toml.lock").exists());
}

/// `--var` values are kept per package in ggen.lock: an update, a
/// reinstall or `approve-hooks` runs the hooks with them again, under what
/// that command's `--var` sets (before, an update of a template without a
/// default failed for want of the value given at install).
#[test]
fn var_values_are_kept_for_later_runs_of_the_hooks() {
    let env = Env::new();
    let publish = |version: &str| {
        let dir = env.package(
            &format!("site-{version}"),
            &json!({
                "name": "site",
                "version": version,
                "hooks": {"post-install": "builtin:render-templates"}
            }),
            &[(
                "title.txt.tmpl",
                "{{ title }} by {{ owner }} ({{ version }})\n",
            )],
        );
        env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
    };
    let title = || std::fs::read_to_string(installed(&env, "site").join("title.txt")).unwrap();
    let kept = || lock(&env)["packages"][0]["variables"].clone();
    publish("1.0.0");
    // Skipped hooks ran with nothing, so nothing is kept.
    env.ok(&["marketplace", "install", "site", "--var", "title=Skipped"]);
    assert_eq!(kept(), Value::Null);
    env.ok(&[
        "marketplace",
        "approve-hooks",
        "--yes",
        "--var",
        "title=Home",
        "--var",
        "owner=ann",
    ]);
    assert_eq!(title(), "Home by ann (1.0.0)\n");
    assert_eq!(kept(), json!({"owner": "ann", "title": "Home"}));

    publish("1.1.0");
    let allow = ["--allow-hooks", "site"];
    env.ok(&[&["marketplace", "update", "site"][..], &allow].concat());
    assert_eq!(title(), "Home by ann (1.1.0)\n");
    // A value given now wins and is kept; the rest stay.
    env.ok(&[
        &[
            "marketplace",
            "install",
            "site",
            "--force",
            "--var",
            "owner=bob",
            "--var",
            "version=9.9.9",
        ][..],
        &allow,
    ]
    .concat());
    assert_eq!(title(), "Home by bob (9.9.9)\n");
    // The names of the package itself hold for that run only.
    assert_eq!(kept(), json!({"owner": "bob", "title": "Home"}));
    env.ok(&[&["marketplace", "install", "site", "--force"][..], &allow].concat());
    assert_eq!(title(), "Home by bob (1.1.0)\n");
    // Given where no hook runs, --var says how it would.
    let (_, warned) = env.ok_warned(
        &[
            &["marketplace", "install", "site", "--var", "owner=x"][..],
            &allow,
        ]
        .concat(),
    );
    assert!(
        warned.contains("--var was not used and is not kept: nothing was installed or replaced, so no post-install hook ran (`install NAME --force --allow-hooks NAME --var ...` runs an installed package's hooks again)"),
        "{warned}"
    );
    let (_, warned) = env.ok_warned(&["marketplace", "approve-hooks", "--yes", "--var", "owner=x"]);
    assert!(
        warned.contains("--var was not used: no hooks were waiting (`install NAME --force"),
        "{warned}"
    );
    assert_eq!(kept(), json!({"owner": "bob", "title": "Home"}));
    // A run that skips the hooks keeps what they last ran with.
    env.ok(&["marketplace", "install", "site@1.0.0"]);
    assert_eq!(kept(), json!({"owner": "bob", "title": "Home"}));
    // Gone with the package.
    env.ok(&["marketplace", "remove", "site"]);
    env.ok(&[
        &["marketplace", "install", "site"][..],
        &allow,
        &["--var", "title=New", "--var", "owner=cy"],
    ]
    .concat());
    assert_eq!(kept(), json!({"owner": "cy", "title": "New"}));
}
