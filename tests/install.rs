//! `ggen marketplace install` end to end: resolution, verification, staging,
//! atomic commit and rollback, against the real binary and file registry.

mod support;

use serde_json::{Value, json};
use support::{Env, named, plant_tarball, snapshot, strings};

fn pkg(env: &Env, name: &str, version: &str, deps: Value) {
    env.publish(json!({"name": name, "version": version, "description": format!("{name} {version}"), "dependencies": deps}));
}

/// Take `name`@`version` out of the registry (as a yank or cleanup would).
fn unlist(env: &Env, name: &str, version: &str) {
    let index_path = env.registry().join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let versions = index["packages"][name]["versions"].as_array_mut().unwrap();
    versions.retain(|v| v["version"] != version);
    std::fs::write(&index_path, index.to_string()).unwrap();
    std::fs::remove_dir_all(env.registry().join(name).join(version)).unwrap();
}

fn lock(root: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(root.join("ggen.lock")).unwrap()).unwrap()
}

fn locked_versions(lock: &Value) -> Vec<(String, String)> {
    lock["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["version"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The scene of the fault and crash tests: dep 1.0.0 (with a local edit, so
/// the installed copy is distinguishable from a fresh one: replacing it takes
/// --force) and other 1.0.0 installed; dep 1.1.0 and top (needing dep ^1)
/// published. Returns the root.
fn upgrade_scene(env: &Env) -> std::path::PathBuf {
    pkg(env, "dep", "1.0.0", json!({}));
    pkg(env, "dep", "1.1.0", json!({}));
    pkg(env, "top", "1.0.0", json!({"dep": "^1"}));
    pkg(env, "other", "1.0.0", json!({}));
    env.ok(&["marketplace", "install", "dep@1.0.0", "other"]);
    let root = env.home().join("packages");
    std::fs::write(root.join("dep/local-note.txt"), "mine").unwrap();
    root
}

/// Run ggen with a debug-only fault or crash point armed; true if it failed.
fn fails_at(env: &Env, var: &str, point: &str, args: &[&str]) -> bool {
    !env.cmd(args)
        .env(var, point)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn the_recorded_source_is_a_percent_encoded_url() {
    let env = Env::new();
    env.write_config("[marketplace]\nregistry_path = \"my reg #1?\"\n");
    pkg(&env, "solo", "1.0.0", json!({}));
    env.ok(&["marketplace", "install", "solo"]);
    let lock = lock(&env.home().join("packages"));
    assert_eq!(
        lock["packages"][0]["source"],
        format!(
            "registry+file://{}/my%20reg%20%231%3F",
            env.home().display()
        )
    );
}

#[test]
fn local_changes_are_discarded_only_when_forced() {
    let env = Env::new();
    pkg(&env, "app", "1.0.0", json!({}));
    pkg(&env, "app", "1.1.0", json!({}));
    pkg(&env, "lib", "1.0.0", json!({}));
    pkg(&env, "lib", "1.1.0", json!({}));
    env.ok(&["marketplace", "install", "app@1.0.0", "lib@1.0.0"]);
    let root = env.home().join("packages");
    // A deleted file is no loss (a reinstall brings it back): not a change.
    std::fs::remove_file(root.join("lib/README.md")).unwrap();
    std::fs::write(root.join("app/README.md"), "my notes").unwrap();
    std::fs::write(root.join("app/extra.txt"), "mine too").unwrap();
    let before = snapshot(&root);
    for args in [
        &["install", "app@1.1.0"][..],
        &["install", "app@1.1.0", "--dry-run"],
        &["update", "app"],
        &["update", "--all"],
        &["remove", "app"],
    ] {
        let mut full = vec!["marketplace"];
        full.extend(args);
        let err = env.fails(&full);
        let doing = if args[0] == "remove" {
            "removing it"
        } else {
            "replacing it with app@1.1.0"
        };
        assert!(
            err.contains("app has local changes (modified README.md; added extra.txt)")
                && err.contains(&format!("{doing} would lose them"))
                && err.contains("pass --force to discard them"),
            "{args:?}: {err}"
        );
        assert_eq!(snapshot(&root), before, "{args:?} touched the root");
    }
    // The package without changes moves as usual.
    env.ok(&["marketplace", "update", "lib"]);
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[("app", "1.0.0"), ("lib", "1.1.0")])
    );
    // Reinstalling at the same version is a no-op, so it loses nothing either.
    env.ok(&["marketplace", "install", "app@1.0.0"]);
    assert_eq!(
        std::fs::read_to_string(root.join("app/README.md")).unwrap(),
        "my notes"
    );
    env.ok(&["marketplace", "update", "app", "--force"]);
    assert!(!root.join("app/extra.txt").exists());
    std::fs::write(root.join("app/extra.txt"), "again").unwrap();
    let err = env.fails(&["marketplace", "remove", "app"]);
    assert!(err.contains("removing it would lose them"), "{err}");
    env.ok(&["marketplace", "remove", "app", "--force"]);
    assert!(!root.join("app").exists());
}

#[test]
fn installs_a_diamond_with_the_highest_compatible_versions() {
    let env = Env::new();
    pkg(&env, "base", "1.0.0", json!({}));
    pkg(&env, "base", "1.4.2", json!({}));
    pkg(&env, "base", "2.0.0", json!({}));
    pkg(&env, "left", "1.0.0", json!({"base": "^1.2"}));
    pkg(&env, "right", "0.3.1", json!({"base": ">=1.0, <1.5"}));
    pkg(&env, "app", "1.0.0", json!({"left": "^1", "right": "~0.3"}));
    let report = env.json(&["marketplace", "install", "app", "--json"]);
    let order: Vec<&str> = strings(&report["packages"], "name");
    assert_eq!(order.last(), Some(&"app"));
    assert_eq!(order[0], "base");

    let root = env.home().join("packages");
    let lock = lock(&root);
    assert_eq!(
        locked_versions(&lock),
        pairs(&[
            ("app", "1.0.0"),
            ("base", "1.4.2"),
            ("left", "1.0.0"),
            ("right", "0.3.1")
        ])
    );
    let app = named(&lock["packages"], "app");
    assert_eq!(
        app["dependencies"],
        json!({"left": "1.0.0", "right": "0.3.1"})
    );
    assert!(
        app["source"]
            .as_str()
            .unwrap()
            .starts_with("registry+file://")
    );
    let published = env.json(&["marketplace", "info", "app", "--json"]);
    assert_eq!(app["integrity"], published["versions"][0]["checksum"]);
    // The files themselves, exactly as published.
    assert_eq!(
        std::fs::read_to_string(root.join("base/README.md")).unwrap(),
        "# base-1.4.2\n"
    );
    assert!(root.join("app/templates/main.tmpl").is_file());
    assert!(
        !root.join(".ggen-staging").exists(),
        "staging must not outlive the transaction"
    );
    // `list` shows them.
    let listed = env.json(&["marketplace", "list", "--json"]);
    assert_eq!(listed["packages"].as_array().unwrap().len(), 4);
}

#[test]
fn specs_choose_versions() {
    let env = Env::new();
    for v in ["1.0.0", "1.1.0", "1.2.0", "2.0.0"] {
        pkg(&env, "tool", v, json!({}));
    }
    let target = env.work.path().join("t");
    let t = target.to_str().unwrap();
    let cases = [
        ("tool", "2.0.0"),
        ("tool@latest", "2.0.0"),
        ("tool@1.1.0", "1.1.0"),
        ("tool@^1", "1.2.0"),
        ("tool@~1.1", "1.1.0"),
        ("tool@>=1.0, <1.2", "1.1.0"),
    ];
    for (spec, expected) in cases {
        env.ok(&["marketplace", "install", spec, "--target", t]);
        assert_eq!(
            locked_versions(&lock(&target)),
            pairs(&[("tool", expected)]),
            "{spec}"
        );
    }
    assert!(
        !env.home().join("packages/ggen.lock").exists(),
        "--target must not touch the default root"
    );
    // A package with only pre-releases: search shows the newest, and
    // install by name installs it (it said no version satisfies `*`).
    for v in ["0.1.0-alpha.1", "0.2.0-beta.1"] {
        pkg(&env, "early", v, json!({}));
    }
    let found = env.json(&["marketplace", "search", "early", "--json"]);
    assert_eq!(found["results"][0]["version"], "0.2.0-beta.1", "{found}");
    env.ok(&["marketplace", "install", "early", "--target", t]);
    let versions = locked_versions(&lock(&target));
    assert!(
        versions.contains(&("early".into(), "0.2.0-beta.1".into())),
        "{versions:?}"
    );
    // A bare name takes whatever version fits the rest; `@latest` is
    // exactly the newest (it took any version, as a bare name does).
    pkg(&env, "kit", "1.0.0", json!({"tool": "^1"}));
    let fresh = env.work.path().join("fresh");
    let f = fresh.to_str().unwrap();
    env.ok(&["marketplace", "install", "kit", "tool", "--target", f]);
    assert_eq!(
        locked_versions(&lock(&fresh))[1],
        ("tool".into(), "1.2.0".into())
    );
    let err = env.fails(&[
        "marketplace",
        "install",
        "kit",
        "tool@latest",
        "--target",
        f,
    ]);
    assert!(err.contains("=2.0.0"), "{err}");
    env.ok(&["marketplace", "install", "early@latest", "--target", f]);
    assert!(locked_versions(&lock(&fresh)).contains(&("early".into(), "0.2.0-beta.1".into())));
    for (spec, expected) in [
        (
            "tool@9",
            "`tool` has no version that satisfies ^9 (required by your request); \
             it has 2.0.0, 1.2.0, 1.1.0, 1.0.0",
        ),
        (
            "tool@2.0.0 tool@^1",
            "`tool` is named twice (`=2.0.0` and `^1`)",
        ),
        (
            "nope",
            "error: package `nope` is not in the registry; check the name (`ggen marketplace search WORDS` finds packages)",
        ),
        ("tool@one", "is not a version"),
        // `tool@` was taken for `tool@latest`.
        ("tool@", "nothing follows `@`"),
        ("Tool", "names are lowercase: `tool`"),
        (
            "@1.0",
            "`@1.0`: the package name is missing; write NAME or NAME@VERSION",
        ),
    ] {
        let mut args = vec!["marketplace", "install", "--target", t];
        args.extend(spec.split(' '));
        let err = env.fails(&args);
        assert!(err.contains(expected), "{spec}: {err}");
    }
}

#[test]
fn dry_run_changes_nothing_and_reinstalling_is_a_no_op_unless_forced() {
    let env = Env::new();
    pkg(&env, "dep", "1.0.0", json!({}));
    pkg(&env, "top", "1.0.0", json!({"dep": "1"}));
    let plan = env.json(&["marketplace", "install", "top", "--dry-run", "--json"]);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["packages"][1]["action"], "install");
    assert!(!env.home().join("packages").join("ggen.lock").exists());

    env.ok(&["marketplace", "install", "top"]);
    let file = env.home().join("packages/top/README.md");
    std::fs::write(&file, "edited").unwrap();
    let again = env.json(&["marketplace", "install", "top", "--json"]);
    assert!(
        again["packages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["action"] == "unchanged")
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "edited");
    let forced = env.json(&["marketplace", "install", "top", "--force", "--json"]);
    assert!(
        forced["packages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["action"] == "reinstall")
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "# top-1.0.0\n");
}

#[test]
fn lockfiles_of_another_format_or_damaged_are_refused_untouched() {
    let env = Env::new();
    pkg(&env, "mine", "1.0.0", json!({}));
    let root = env.home().join("packages");
    std::fs::create_dir_all(&root).unwrap();
    for (text, expected) in [
        (
            r#"{"version": 99, "packages": []}"#,
            "is lockfile format 99; this ggen reads format 1",
        ),
        (r#"{"version": 1, "packa"#, "is not a valid lockfile"),
        // A link to nothing read as no lockfile: the next install replaced
        // it, and what was installed was no longer listed.
        ("", "is a symbolic link to a file that does not exist"),
    ] {
        let _ = std::fs::remove_file(root.join("ggen.lock"));
        match text {
            "" => std::os::unix::fs::symlink("gone", root.join("ggen.lock")).unwrap(),
            _ => std::fs::write(root.join("ggen.lock"), text).unwrap(),
        }
        for args in [
            &["marketplace", "list"][..],
            &["marketplace", "install", "mine"],
        ] {
            let err = env.fails(args);
            assert!(err.contains(expected), "{args:?}: {err}");
        }
        match text {
            "" => assert!(
                root.join("ggen.lock")
                    .symlink_metadata()
                    .unwrap()
                    .is_symlink()
            ),
            _ => assert_eq!(
                std::fs::read_to_string(root.join("ggen.lock")).unwrap(),
                text
            ),
        }
        assert!(!root.join("mine").exists());
    }
}

#[test]
fn a_missing_or_wrong_target_is_an_error_and_is_not_created_or_left_behind() {
    let env = Env::new();
    pkg(&env, "mine", "1.0.0", json!({}));
    let typo = env.work.path().join("typo/a/b");
    let t = typo.to_str().unwrap();
    for args in [
        &["marketplace", "remove", "mine", "--target", t][..],
        &["marketplace", "update", "--all", "--dry-run", "--target", t],
        &["marketplace", "update", "mine", "--target", t],
        &["marketplace", "verify", "--target", t],
        &["marketplace", "list", "--json", "--target", t],
    ] {
        let err = env.fails(args);
        assert!(err.contains("nothing is installed in"), "{args:?}: {err}");
    }
    assert!(!env.work.path().join("typo").exists());
    // An install creates its target, but a refused or dry-run one leaves nothing.
    for args in [
        &["marketplace", "install", "nope", "--target", t][..],
        &["marketplace", "install", "mine@9", "--target", t],
    ] {
        env.fails(args);
        assert!(!env.work.path().join("typo").exists(), "{args:?}");
    }
    env.ok(&["marketplace", "install", "mine", "--dry-run", "--target", t]);
    assert!(!env.work.path().join("typo").exists());
    let file = env.work.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = env.fails(&[
        "marketplace",
        "install",
        "mine",
        "--target",
        file.to_str().unwrap(),
    ]);
    assert!(err.contains("is not a directory"), "{err}");

    // The registry is no install root, nor inside one, however it is
    // spelled: install --force there replaced its package directories.
    let registry = env.registry();
    let before = snapshot(&registry);
    let link = env.work.path().join("reg-link");
    std::os::unix::fs::symlink(&registry, &link).unwrap();
    for target in [
        registry.clone(),
        link.join("mine"),
        env.home().to_path_buf(),
    ] {
        for args in [
            &["marketplace", "install", "mine", "--force"][..],
            &["marketplace", "remove", "mine"],
        ] {
            let err = env.fails(&[args, &["--target", target.to_str().unwrap()]].concat());
            assert!(
                err.contains("overlap; install packages into another directory"),
                "{err}"
            );
        }
    }
    assert_eq!(snapshot(&registry), before);
}

#[test]
fn files_ggen_did_not_install_are_replaced_only_when_forced() {
    let env = Env::new();
    pkg(&env, "mine", "1.0.0", json!({}));
    let root = env.work.path().join("project");
    let own = root.join("mine/notes.txt");
    std::fs::create_dir_all(own.parent().unwrap()).unwrap();
    std::fs::write(&own, "precious").unwrap();
    let before = snapshot(&root);
    let target = root.to_str().unwrap();
    let force = || {
        env.ok(&[
            "marketplace",
            "install",
            "mine",
            "--target",
            target,
            "--force",
        ])
    };
    for extra in [&[][..], &["--dry-run"]] {
        let mut args = vec!["marketplace", "install", "mine", "--target", target];
        args.extend(extra);
        let err = env.fails(&args);
        assert!(
            err.contains("is not a package ggen installed") && err.contains("--force"),
            "{err}"
        );
    }
    assert_eq!(
        snapshot(&root),
        before,
        "a refused install touched the user's files or left its lock"
    );
    force();
    assert!(!own.exists());
    assert!(root.join("mine/package.json").is_file());
    // A link to nothing in a package's place: `exists` said no one was
    // there, and moving the package in failed ("Not a directory").
    let mine = root.join("mine");
    std::fs::remove_dir_all(&mine).unwrap();
    std::os::unix::fs::symlink("nowhere", &mine).unwrap();
    force();
    assert!(mine.join("package.json").is_file());
    std::fs::remove_dir_all(&mine).unwrap();
    std::os::unix::fs::symlink("nowhere", &mine).unwrap();
    env.ok(&[
        "marketplace",
        "remove",
        "mine",
        "--target",
        target,
        "--force",
    ]);
    assert!(mine.symlink_metadata().is_err(), "remove left the link");
}

#[test]
fn no_dependencies_installs_only_what_was_named() {
    let env = Env::new();
    pkg(&env, "dep", "1.0.0", json!({}));
    pkg(&env, "top", "1.0.0", json!({"dep": "1"}));
    env.ok(&["marketplace", "install", "top", "--no-dependencies"]);
    let root = env.home().join("packages");
    assert_eq!(locked_versions(&lock(&root)), pairs(&[("top", "1.0.0")]));
    assert!(!root.join("dep").exists());
    // A dependency that is installed anyway is recorded (it was `{}`), so
    // remove knows top needs it.
    env.ok(&["marketplace", "remove", "top"]);
    env.ok(&["marketplace", "install", "dep"]);
    env.ok(&["marketplace", "install", "top", "--no-dependencies"]);
    let top = named(&lock(&root)["packages"], "top").clone();
    assert_eq!(top["dependencies"], json!({"dep": "1.0.0"}), "{top}");
    let err = env.fails(&["marketplace", "remove", "dep"]);
    assert!(err.contains("top"), "{err}");

    // What was left out stays out: other commands neither install it nor
    // fail for want of it (one dependency here is in no registry at all),
    // and ggen.lock keeps what the package was installed with.
    pkg(&env, "app", "1.0.0", json!({"lib": "^1", "ghost": "^1"}));
    pkg(&env, "lib", "1.0.0", json!({}));
    pkg(&env, "other", "1.0.0", json!({}));
    pkg(&env, "dep", "1.1.0", json!({}));
    env.ok(&["marketplace", "install", "app", "--no-dependencies"]);
    env.ok(&["marketplace", "install", "other"]);
    let plan = env.json(&["marketplace", "update", "dep", "--dry-run", "--json"]);
    let changed: Vec<&Value> = (plan["packages"].as_array().unwrap().iter())
        .filter(|p| p["action"] != "unchanged")
        .collect();
    assert_eq!(changed.len(), 1, "{plan}");
    assert_eq!(changed[0]["name"], "dep", "{plan}");
    env.ok(&["marketplace", "update", "dep"]);
    assert!(!root.join("lib").exists());
    let app = named(&lock(&root)["packages"], "app").clone();
    assert_eq!(app["dependencies"], json!({}), "{app}");
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);
    // Asking for the package itself resolves its dependencies again.
    let err = env.fails(&["marketplace", "install", "app"]);
    assert!(err.contains("`ghost`"), "{err}");
    // A dependency installed later still binds it: moving lib past its
    // requirement would break app, so it is refused.
    pkg(&env, "lib", "2.0.0", json!({}));
    env.ok(&["marketplace", "install", "lib@1.0.0"]);
    let err = env.fails(&["marketplace", "install", "lib@2"]);
    assert!(err.contains("app"), "{err}");
}

#[test]
fn a_package_installed_without_dependencies_stays_so_through_update_all() {
    // update --all moved app as if it had been named: its dependencies were
    // resolved again, so lib ^2 clashed with other's ^1 and ghost came in.
    let env = Env::new();
    let root = env.home().join("packages");
    pkg(&env, "lib", "1.0.0", json!({}));
    pkg(&env, "lib", "2.0.0", json!({}));
    pkg(&env, "ghost", "1.0.0", json!({}));
    pkg(&env, "other", "1.0.0", json!({"lib": "^1"}));
    pkg(&env, "app", "1.0.0", json!({"lib": "^2"}));
    env.ok(&["marketplace", "install", "other"]);
    env.ok(&["marketplace", "install", "app", "--no-dependencies"]);
    pkg(&env, "app", "1.1.0", json!({"lib": "^2", "ghost": "^1"}));
    env.ok(&["marketplace", "update", "--all"]);
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[("app", "1.1.0"), ("lib", "1.0.0"), ("other", "1.0.0")])
    );
    assert_eq!(
        named(&lock(&root)["packages"], "app")["dependencies"],
        json!({})
    );
    // ghost comes in for other (installed with its dependencies), and then
    // binds app too.
    pkg(&env, "other", "1.1.0", json!({"lib": "^1", "ghost": "^1"}));
    env.ok(&["marketplace", "update", "--all"]);
    let locked = lock(&root);
    assert_eq!(
        locked_versions(&locked),
        pairs(&[
            ("app", "1.1.0"),
            ("ghost", "1.0.0"),
            ("lib", "1.0.0"),
            ("other", "1.1.0")
        ])
    );
    assert_eq!(
        named(&locked["packages"], "app")["dependencies"],
        json!({"ghost": "1.0.0"})
    );
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);
    // Naming it resolves its dependencies again, as `install app` does.
    let err = env.fails(&["marketplace", "update", "app"]);
    assert!(err.contains("^2 (required by app@1.1.0)"), "{err}");
}

#[test]
fn what_comes_later_binds_a_package_installed_without_dependencies() {
    // tool needs kit ^1 but went in without it; kit installed afterwards
    // was not recorded as tool's, so `remove kit` was allowed, and an
    // install could put kit 2 in beside it.
    let env = Env::new();
    let root = env.home().join("packages");
    pkg(&env, "kit", "1.0.0", json!({}));
    pkg(&env, "kit", "2.0.0", json!({}));
    pkg(&env, "tool", "1.0.0", json!({"kit": "^1"}));
    pkg(&env, "maker", "1.0.0", json!({"kit": "^2"}));
    env.ok(&["marketplace", "install", "tool", "--no-dependencies"]);
    let before = snapshot(&root);
    for specs in [
        &["kit@2"][..],
        &["kit@2", "--no-dependencies"][..],
        &["maker"][..],
    ] {
        let mut args = vec!["marketplace", "install"];
        args.extend_from_slice(specs);
        let err = env.fails(&args);
        assert!(
            err.contains("`kit` ^1 (required by tool@1.0.0, which is installed without it)"),
            "{specs:?}: {err}"
        );
        assert_eq!(snapshot(&root), before, "{specs:?}");
    }
    env.ok(&["marketplace", "install", "kit"]);
    let locked = lock(&root);
    assert_eq!(named(&locked["packages"], "kit")["version"], "1.0.0");
    assert_eq!(
        named(&locked["packages"], "tool")["dependencies"],
        json!({"kit": "1.0.0"})
    );
    let err = env.fails(&["marketplace", "remove", "kit"]);
    assert!(err.contains("tool"), "{err}");
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);
}

#[test]
fn a_package_installed_without_dependencies_moves_to_fit_what_comes_later() {
    // tool 1.0 went in without kit ^1; maker needs kit 2, which tool 1.1
    // accepts. tool moves up for it, as any installed package moves for a
    // newer dependency (kit was held to ^1 for good: a conflict).
    let env = Env::new();
    let root = env.home().join("packages");
    pkg(&env, "kit", "1.0.0", json!({}));
    pkg(&env, "kit", "2.0.0", json!({}));
    pkg(&env, "tool", "1.0.0", json!({"kit": "^1"}));
    pkg(&env, "tool", "1.1.0", json!({"kit": "^2", "extra": "^1"}));
    pkg(&env, "maker", "1.0.0", json!({"kit": "^2"}));
    env.ok(&["marketplace", "install", "tool@1.0.0", "--no-dependencies"]);
    env.ok(&["marketplace", "install", "maker"]);
    let locked = lock(&root);
    assert_eq!(
        locked_versions(&locked),
        pairs(&[("kit", "2.0.0"), ("maker", "1.0.0"), ("tool", "1.1.0")])
    );
    // Still without what it was installed without (extra is not even
    // published), and bound to kit.
    assert_eq!(
        named(&locked["packages"], "tool")["dependencies"],
        json!({"kit": "2.0.0"})
    );
    assert!(
        env.fails(&["marketplace", "remove", "kit"])
            .contains("tool")
    );

    // Moving, it must not break on what is installed: tool 1.1 needs x 2,
    // so x moves too (tool moved alone, x left at 1, its record lost).
    let env = Env::new();
    let root = env.home().join("packages");
    pkg(&env, "kit", "1.0.0", json!({}));
    pkg(&env, "kit", "2.0.0", json!({}));
    pkg(&env, "x", "1.0.0", json!({}));
    pkg(&env, "x", "2.0.0", json!({}));
    pkg(&env, "tool", "1.0.0", json!({"kit": "^1", "x": "^1"}));
    pkg(&env, "tool", "1.1.0", json!({"kit": "^2", "x": "^2"}));
    env.ok(&["marketplace", "install", "x@1.0.0"]);
    env.ok(&["marketplace", "install", "tool@1.0.0", "--no-dependencies"]);
    env.ok(&["marketplace", "install", "kit"]);
    let locked = lock(&root);
    assert_eq!(
        locked_versions(&locked),
        pairs(&[("kit", "2.0.0"), ("tool", "1.1.0"), ("x", "2.0.0")])
    );
    assert_eq!(
        named(&locked["packages"], "tool")["dependencies"],
        json!({"kit": "2.0.0", "x": "2.0.0"})
    );

    // Kept from moving by another package, it refuses kit 2, and the error
    // says why in those words (it said kit 2 required tool 1.1.0).
    let env = Env::new();
    let root = env.home().join("packages");
    pkg(&env, "kit", "1.0.0", json!({}));
    pkg(&env, "kit", "2.0.0", json!({}));
    pkg(&env, "tool", "1.0.0", json!({"kit": "^1", "e": "^1"}));
    pkg(&env, "tool", "1.1.0", json!({"kit": "^2", "e": "^1"}));
    pkg(&env, "q", "1.0.0", json!({"tool": "~1.0.0"}));
    env.ok(&["marketplace", "install", "tool@1.0.0", "--no-dependencies"]);
    env.ok(&["marketplace", "install", "q"]);
    let before = snapshot(&root);
    let err = env.fails(&["marketplace", "install", "kit@^2"]);
    assert!(
        err.contains("1.1.0 (the versions that accept kit@2.0.0) and ~1.0.0 (required by q@1.0.0)")
            && err.contains(
                "`kit` ^1 for tool 1.0.0; ^2 for tool 1.1.0 (tool@1.0.0 is installed without it)"
            ),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);

    // Where moving it would need what cannot be, the requirement is its own
    // (it read "required by app@1.1.0 → kit@3.0.0", as if app needed kit).
    let env = Env::new();
    pkg(&env, "lib", "1.1.0", json!({}));
    pkg(&env, "kit", "2.0.0", json!({"app": "=1.0.0"}));
    pkg(&env, "kit", "3.0.0", json!({"lib": "^2"}));
    pkg(&env, "app", "1.1.0", json!({}));
    env.ok(&["marketplace", "install", "lib"]);
    env.ok(&["marketplace", "install", "kit@^2", "--no-dependencies"]);
    let err = env.fails(&["marketplace", "install", "app"]);
    assert!(
        err.contains("`lib` has no version that satisfies ^2 (required by kit@3.0.0);"),
        "{err}"
    );

    // Held where it is (--no-dependencies), it cannot move: kit 2 does not
    // fit, and the error says why.
    let env = Env::new();
    let root = env.home().join("packages");
    pkg(&env, "kit", "1.0.0", json!({}));
    pkg(&env, "kit", "2.0.0", json!({}));
    pkg(&env, "tool", "1.0.0", json!({"kit": "^1"}));
    pkg(&env, "tool", "1.1.0", json!({"kit": "^2"}));
    env.ok(&["marketplace", "install", "tool@1.0.0", "--no-dependencies"]);
    let before = snapshot(&root);
    let err = env.fails(&["marketplace", "install", "kit@2", "--no-dependencies"]);
    assert!(
        err.contains("`kit` ^1 (required by tool@1.0.0, which is installed without it)"),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);
}

#[test]
fn a_package_installed_without_dependencies_binds_exactly_what_is_there() {
    // base 1 and 2; app needs base ^1 and goes in without it.
    let scene = || {
        let env = Env::new();
        pkg(&env, "base", "1.0.0", json!({}));
        pkg(&env, "base", "2.0.0", json!({}));
        pkg(&env, "app", "1.0.0", json!({"base": "^1"}));
        env
    };
    let app_deps = |env: &Env| {
        let locked = lock(&env.home().join("packages"));
        named(&locked["packages"], "app")["dependencies"].clone()
    };
    let versions = |env: &Env| locked_versions(&lock(&env.home().join("packages")));

    // A dependency that only app's requirement would bring in stays out:
    // lib 2 needs base ^2, which app forbids, so lib 1 goes in, alone (base
    // came in too, or was recorded as app's without being installed).
    let env = scene();
    pkg(&env, "lib", "1.0.0", json!({}));
    pkg(&env, "lib", "2.0.0", json!({"base": "^2"}));
    env.ok(&["marketplace", "install", "app", "--no-dependencies"]);
    env.ok(&["marketplace", "install", "lib"]);
    assert_eq!(versions(&env), pairs(&[("app", "1.0.0"), ("lib", "1.0.0")]));
    assert_eq!(app_deps(&env), json!({}));
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);

    // Two such packages that need different majors: update --all leaves
    // what would put either major in where it was, and moves the rest
    // (it failed outright).
    let env = scene();
    pkg(&env, "bapp", "1.0.0", json!({"base": "^2"}));
    pkg(&env, "other", "1.0.0", json!({}));
    pkg(&env, "solo", "1.0.0", json!({}));
    env.ok(&["marketplace", "install", "app", "bapp", "--no-dependencies"]);
    env.ok(&["marketplace", "install", "other", "solo"]);
    pkg(&env, "other", "2.0.0", json!({"base": "^2"}));
    pkg(&env, "solo", "1.1.0", json!({}));
    env.ok(&["marketplace", "update", "--all"]);
    assert_eq!(
        versions(&env),
        pairs(&[
            ("app", "1.0.0"),
            ("bapp", "1.0.0"),
            ("other", "1.0.0"),
            ("solo", "1.1.0")
        ])
    );

    // Asked for with --no-dependencies too, it must fit, and is recorded.
    let env = scene();
    env.ok(&["marketplace", "install", "app", "--no-dependencies"]);
    env.ok(&["marketplace", "install", "base", "--no-dependencies"]);
    assert_eq!(app_deps(&env), json!({"base": "1.0.0"}));
    assert!(
        env.fails(&["marketplace", "remove", "base"])
            .contains("app")
    );

    // Moved into app's range, it is recorded as well (install refused to
    // move it out again while remove let it go).
    let env = scene();
    env.ok(&["marketplace", "install", "base"]);
    env.ok(&["marketplace", "install", "app", "--no-dependencies"]);
    assert_eq!(app_deps(&env), json!({}));
    // Named, it resolves again: base 2 is not lowered, and the error says
    // so (it said "=2.0.0 (required by your request)").
    let err = env.fails(&["marketplace", "update", "app"]);
    assert!(
        err.contains("^1 (required by app@1.0.0) and >=2.0.0 (installed, and not lowered unless you ask for versions below it, as `install base@VERSION`)"),
        "{err}"
    );
    env.ok(&["marketplace", "install", "base@1.0.0"]);
    assert_eq!(app_deps(&env), json!({"base": "1.0.0"}));
    assert!(
        env.fails(&["marketplace", "remove", "base"])
            .contains("app")
    );

    // Named again beside its dependency, it records it (nothing moves).
    let env = scene();
    env.ok(&["marketplace", "install", "app", "--no-dependencies"]);
    env.ok(&["marketplace", "install", "app", "base", "--no-dependencies"]);
    assert_eq!(app_deps(&env), json!({"base": "1.0.0"}));
    assert!(
        env.fails(&["marketplace", "remove", "base"])
            .contains("app")
    );

    // Moving in the transaction that moves its dependency into range, it
    // records it too.
    let env = Env::new();
    pkg(&env, "base", "1.0.0", json!({}));
    pkg(&env, "app", "1.0.0", json!({"base": "^2"}));
    env.ok(&["marketplace", "install", "base"]);
    env.ok(&["marketplace", "install", "app", "--no-dependencies"]);
    pkg(&env, "base", "2.0.0", json!({}));
    pkg(&env, "app", "1.1.0", json!({"base": "^2"}));
    env.ok(&["marketplace", "update", "--all"]);
    assert_eq!(
        versions(&env),
        pairs(&[("app", "1.1.0"), ("base", "2.0.0")])
    );
    assert_eq!(app_deps(&env), json!({"base": "2.0.0"}));

    // No version fitting at all is a conflict, not a missing package: update
    // --all holds back what would need one (and moves the rest), and an
    // install says what held the versions back.
    let env = Env::new();
    pkg(&env, "base", "2.0.0", json!({}));
    pkg(&env, "app", "1.0.0", json!({"base": "^1"}));
    pkg(&env, "lib", "1.0.0", json!({"base": "^2"}));
    pkg(&env, "other", "1.0.0", json!({}));
    pkg(&env, "solo", "1.0.0", json!({}));
    env.ok(&["marketplace", "install", "app", "--no-dependencies"]);
    env.ok(&["marketplace", "install", "other", "solo"]);
    pkg(&env, "other", "2.0.0", json!({"base": "*"}));
    pkg(&env, "solo", "1.1.0", json!({}));
    env.ok(&["marketplace", "update", "--all"]);
    assert_eq!(
        versions(&env),
        pairs(&[("app", "1.0.0"), ("other", "1.0.0"), ("solo", "1.1.0")])
    );
    for request in ["lib", "base"] {
        let err = env.fails(&["marketplace", "install", request]);
        assert!(
            err.contains("`base` ^1 (required by app@1.0.0, which is installed without it)")
                && !err.contains("not in the registry"),
            "{err}"
        );
    }

    // What it records may not close a cycle: that was recorded, and then
    // every later install failed on it.
    let env = Env::new();
    pkg(&env, "a", "1.0.0", json!({"b": "^1"}));
    pkg(&env, "b", "1.0.0", json!({"a": "^1"}));
    env.ok(&["marketplace", "install", "a", "--no-dependencies"]);
    let err = env.fails(&["marketplace", "install", "b"]);
    assert!(err.contains("dependency cycle: a → b → a"), "{err}");
    assert_eq!(versions(&env), pairs(&[("a", "1.0.0")]));

    // Its version no longer listed, its own package.json still says it
    // went in without base: update --all moves it on without base (it was
    // taken for a complete install and base came in).
    let env = scene();
    env.ok(&["marketplace", "install", "app", "--no-dependencies"]);
    pkg(&env, "app", "1.1.0", json!({"base": "^1"}));
    unlist(&env, "app", "1.0.0");
    env.ok(&["marketplace", "update", "--all"]);
    assert_eq!(versions(&env), pairs(&[("app", "1.1.0")]));

    // Named in one command, each fits the other.
    let env = scene();
    env.ok(&["marketplace", "install", "app", "base", "--no-dependencies"]);
    assert_eq!(
        versions(&env),
        pairs(&[("app", "1.0.0"), ("base", "1.0.0")])
    );
    assert_eq!(app_deps(&env), json!({"base": "1.0.0"}));

    // Naming it records what it resolves, though nothing moves (a ggen.lock
    // from before such records were kept).
    let mut edited = lock(&env.home().join("packages"));
    for p in edited["packages"].as_array_mut().unwrap() {
        if p["name"] == "app" {
            p["dependencies"] = json!({});
        }
    }
    std::fs::write(env.home().join("packages/ggen.lock"), edited.to_string()).unwrap();
    let out = env.ok(&["marketplace", "install", "app"]);
    assert!(out.contains("unchanged"), "{out}");
    assert_eq!(app_deps(&env), json!({"base": "1.0.0"}));
}

#[test]
fn a_dependency_removed_with_force_stays_removed_and_recorded() {
    // Unrelated commands rewrote app's record to a version never installed
    // (install), or put base back (update).
    let env = Env::new();
    let root = env.home().join("packages");
    pkg(&env, "base", "1.0.0", json!({}));
    pkg(&env, "app", "1.0.0", json!({"base": "^1"}));
    pkg(&env, "lib", "1.0.0", json!({}));
    pkg(&env, "other", "1.0.0", json!({}));
    env.ok(&["marketplace", "install", "app", "lib"]);
    pkg(&env, "base", "1.1.0", json!({}));
    pkg(&env, "lib", "1.1.0", json!({}));
    env.ok(&["marketplace", "remove", "base", "--force"]);
    for args in [
        &["marketplace", "install", "other"][..],
        &["marketplace", "update", "lib"],
    ] {
        env.ok(args);
        let locked = lock(&root);
        assert!(!root.join("base").exists(), "{args:?}");
        assert_eq!(
            named(&locked["packages"], "app")["dependencies"],
            json!({"base": "1.0.0"}),
            "{args:?}"
        );
    }
    let out = env.run(&["marketplace", "verify", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        named(&report["packages"], "app")["missing_dependencies"],
        json!(["base@1.0.0"])
    );
    // So also when the registry no longer lists app's version, nor base's:
    // app's record held base at =1.0.0 and an unrelated install failed.
    unlist(&env, "app", "1.0.0");
    unlist(&env, "base", "1.0.0");
    pkg(&env, "more", "1.0.0", json!({}));
    env.ok(&["marketplace", "install", "more"]);
    assert!(!root.join("base").exists());
    pkg(&env, "app", "1.0.1", json!({"base": "^1"}));
    // Named, it gets its dependencies again.
    env.ok(&["marketplace", "install", "app"]);
    assert_eq!(
        named(&lock(&root)["packages"], "app")["dependencies"],
        json!({"base": "1.1.0"})
    );
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);
}

#[test]
fn a_target_through_a_name_that_does_not_exist_makes_only_the_target() {
    // `--target x/../t` made an empty x/ on the way (and kept it, even when
    // the install failed).
    let env = Env::new();
    pkg(&env, "dep", "1.0.0", json!({}));
    let work = env.work.path();
    let through = |a: &str, b: &str| work.join(a).join("..").join(b).display().to_string();
    env.ok(&[
        "marketplace",
        "install",
        "dep",
        "--target",
        &through("x", "t"),
    ]);
    assert!(work.join("t/dep/package.json").is_file());
    assert!(!work.join("x").exists());
    let listed = env.json(&[
        "marketplace",
        "list",
        "--target",
        &through("y", "t"),
        "--json",
    ]);
    assert_eq!(listed["packages"][0]["name"], "dep", "{listed}");
    env.fails(&[
        "marketplace",
        "install",
        "ghost",
        "--target",
        &through("z", "u"),
    ]);
    assert!(!work.join("z").exists() && !work.join("u").exists());
}

#[test]
fn unresolvable_requests_fail_cleanly() {
    let env = Env::new();
    pkg(&env, "a", "1.0.0", json!({"b": "^1"}));
    pkg(&env, "b", "1.0.0", json!({"c": "^1"}));
    pkg(&env, "c", "1.0.0", json!({"a": "^1"}));
    pkg(&env, "lonely", "1.0.0", json!({"ghost": "^1"}));
    pkg(&env, "x", "1.0.0", json!({"shared": "^1"}));
    pkg(&env, "y", "1.0.0", json!({"shared": "^2"}));
    pkg(&env, "shared", "1.0.0", json!({}));
    pkg(&env, "shared", "2.0.0", json!({}));
    pkg(&env, "fine", "1.0.0", json!({}));
    env.ok(&["marketplace", "install", "fine"]);
    let root = env.home().join("packages");
    let before = snapshot(&root);
    for (specs, expected) in [
        (vec!["a"], "dependency cycle: a → b → c → a"),
        (
            vec!["lonely"],
            "package `ghost` (required by lonely@1.0.0) is not in the registry",
        ),
        (
            vec!["x", "y"],
            "`shared` has no version that satisfies ^1 (required by x@1.0.0) \
             and ^2 (required by y@1.0.0); it has 2.0.0, 1.0.0",
        ),
    ] {
        let mut args = vec!["marketplace", "install"];
        args.extend(&specs);
        let err = env.fails(&args);
        assert!(err.contains(expected), "{specs:?}: {err}");
        assert_eq!(
            snapshot(&root),
            before,
            "{specs:?} changed the install root"
        );
    }
}

/// A `publish --force` of the very version an install is fetching (after it
/// read the checksum, before it opened the tarball) is not reported as
/// tampering: the install says what happened, and running it again installs
/// the new bytes.
#[test]
fn a_version_republished_while_it_is_fetched_asks_to_run_again() {
    let env = Env::new();
    let dir = env.publish(json!({"name": "moving", "version": "1.0.0"}));
    let root = env.home().join("packages");
    let go = env.work.path().join("go");
    let mut install = env.cmd(&["marketplace", "install", "moving"]);
    install
        .env("GGEN_PAUSE", format!("fetching={}", go.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let install = install.spawn().unwrap();
    let here = env.work.path().join("go.here");
    for _ in 0..6000 {
        if here.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(here.exists(), "the install never reached the fetch");
    std::fs::write(dir.join("README.md"), "# moved\n").unwrap();
    env.ok(&["marketplace", "publish", dir.to_str().unwrap(), "--force"]);
    std::fs::write(&go, "").unwrap();
    let out = install.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: moving@1.0.0 was republished while it was being fetched")
            && stderr.contains("run the command again")
            && !stderr.contains("security")
            && !stderr.contains("storage error"),
        "{stderr}"
    );
    assert!(!root.join("moving").exists());

    env.ok(&["marketplace", "install", "moving"]);
    assert_eq!(
        std::fs::read_to_string(root.join("moving/README.md")).unwrap(),
        "# moved\n"
    );
}

/// Replace a published tarball with `bytes`, fixing index.json so that the
/// registry vouches for them (as a compromised registry would).
#[test]
fn altered_and_hostile_tarballs_are_refused_and_everything_rolls_back() {
    let env = Env::new();
    pkg(&env, "good", "1.0.0", json!({}));
    pkg(&env, "good", "1.1.0", json!({}));
    pkg(&env, "tampered", "1.0.0", json!({"good": "^1"}));
    pkg(&env, "hostile", "1.0.0", json!({"good": "^1"}));
    env.ok(&["marketplace", "install", "good@1.0.0"]);
    let root = env.home().join("packages");
    let before = snapshot(&root);

    // Bytes changed behind the registry's back: the checksum catches it.
    let stored = env.registry().join("tampered/1.0.0/tampered-1.0.0.tar.gz");
    let mut bytes = std::fs::read(&stored).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&stored, bytes).unwrap();
    // `good` is upgraded to 1.1.0 first (dependencies first), then `tampered` fails:
    // the upgrade must be rolled back too.
    let err = env.fails(&["marketplace", "install", "tampered", "good@^1.1"]);
    assert!(
        err.contains("checksum mismatch for tampered@1.0.0"),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);

    // A tarball missing from the registry: the sandbox's error reads like the
    // host's, without wasi-libc's errno number.
    std::fs::remove_file(&stored).unwrap();
    let err = env.fails(&["marketplace", "install", "tampered", "good@^1.1"]);
    assert!(
        err.ends_with(
            "cannot open the tarball of tampered@1.0.0 \
             (tampered/1.0.0/tampered-1.0.0.tar.gz): No such file or directory"
        ),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);

    // A directory in its place is named as one (it failed as `Is a directory`
    // part-way through the copy, with "storage error" said twice).
    std::fs::create_dir(&stored).unwrap();
    let err = env.fails(&["marketplace", "install", "tampered", "good@^1.1"]);
    assert!(
        err.ends_with(
            "cannot open the tarball of tampered@1.0.0 \
             (tampered/1.0.0/tampered-1.0.0.tar.gz): it is a directory, not a file"
        ),
        "{err}"
    );
    assert_eq!(err.matches("storage error").count(), 1, "{err}");
    assert_eq!(snapshot(&root), before);
    std::fs::remove_dir(&stored).unwrap();

    // A FIFO in its place: opening it waited forever, holding the root's lock.
    support::mkfifo(&stored);
    let args = ["marketplace", "install", "tampered", "good@^1.1"];
    let err = env.fails_unless_hung(&args, std::time::Duration::from_secs(120));
    assert!(
        err.ends_with(
            "(tampered/1.0.0/tampered-1.0.0.tar.gz): it is not a regular file (a FIFO, socket or device); put the file itself there"
        ),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);
    std::fs::remove_file(&stored).unwrap();

    // A registry that vouches for a hostile archive: unpacking refuses it.
    let traversal = support::archives::gz(&[support::archives::entry(
        b"../../escape",
        tar::EntryType::Regular,
        b"evil",
    )]);
    plant_tarball(&env, "hostile", "1.0.0", &traversal);
    let err = env.fails(&["marketplace", "install", "hostile", "good@^1.1"]);
    assert!(
        err.contains("refusing hostile") && err.contains("`..`"),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);
    assert!(!env.home().join("escape").exists() && !root.parent().unwrap().join("escape").exists());
    assert!(!root.join(".ggen-staging").exists());
}

/// The install steps with debug fault/crash points, in order.
const STEPS: [&str; 7] = [
    "fetched",
    "staged",
    "hooks-ran",
    "moved",
    "before-lockfile",
    "writing-lockfile",
    "after-lockfile",
];

#[test]
fn a_failure_after_any_step_leaves_the_root_byte_identical() {
    let env = Env::new();
    let root = upgrade_scene(&env);
    let before = snapshot(&root);
    let lock_inode = |root: &std::path::Path| {
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(root.join("ggen.lock")).unwrap())
    };
    let inode_before = lock_inode(&root);
    for point in STEPS {
        let out = env
            .cmd(&["marketplace", "install", "top", "dep@^1.1", "--force"])
            .env("GGEN_FAULT", point)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(&format!("injected fault at `{point}`")),
            "{point}: {stderr}"
        );
        assert_eq!(
            snapshot(&root),
            before,
            "fault at {point} left changes behind"
        );
        assert!(
            !root.join(".ggen-staging").exists(),
            "fault at {point} left the staging directory"
        );
        // A ggen.lock the failed write never replaced is not rewritten: on
        // a full disk the rewrite failed too, and kept the transaction.
        if point == "writing-lockfile" {
            assert_eq!(lock_inode(&root), inode_before, "ggen.lock was rewritten");
        }
    }
    // Without --force the local edit is not thrown away: refused, untouched.
    let err = env.fails(&["marketplace", "install", "top", "dep@^1.1"]);
    assert!(
        err.contains("dep has local changes (added local-note.txt)")
            && err.contains("pass --force to discard them"),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);
    // And without a fault the same install goes through.
    env.ok(&["marketplace", "install", "top", "dep@^1.1", "--force"]);
    assert!(!root.join("dep/local-note.txt").exists());
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[("dep", "1.1.0"), ("other", "1.0.0"), ("top", "1.0.0")])
    );
}

#[test]
fn an_install_killed_at_any_step_is_recovered_by_the_next_run() {
    let env = Env::new();
    let root = upgrade_scene(&env);
    let before = snapshot(&root);
    for point in STEPS {
        let out = env
            .cmd(&["marketplace", "install", "top", "dep@^1.1", "--force"])
            .env("GGEN_CRASH", point)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{point}: the crash point was not reached"
        );
        assert!(
            root.join(".ggen-staging").exists(),
            "{point}: a crash should leave its transaction behind"
        );
        // Once it was moving packages, verify says so (not just "differs").
        let moving = std::fs::read_dir(root.join(".ggen-staging"))
            .unwrap()
            .flatten()
            .any(|t| {
                t.path().join("journal.json").is_file() && !t.path().join("committed").exists()
            });
        let err = env.fails(&["marketplace", "verify"]);
        assert_eq!(
            err.contains("holds an interrupted transaction"),
            moving,
            "{point}: {err}"
        );
        // So does list, which still reads ggen.lock.
        let listed = env.run(&["marketplace", "list", "--json"]);
        assert!(listed.status.success(), "{point}");
        let json: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        assert_eq!(json["interrupted"], u64::from(moving), "{point}");
        let stderr = String::from_utf8_lossy(&listed.stderr);
        assert_eq!(
            stderr.starts_with("warning: ") && stderr.contains("holds an interrupted transaction"),
            moving,
            "{point}: {stderr}"
        );
        // Any later run recovers first; this one changes nothing else.
        let out = env.run(&["marketplace", "install", "other"]);
        assert!(
            out.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            snapshot(&root),
            before,
            "{point}: recovery did not restore the root"
        );
        assert!(!root.join(".ggen-staging").exists());
    }
    env.ok(&["marketplace", "install", "top", "dep@^1.1", "--force"]);
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[("dep", "1.1.0"), ("other", "1.0.0"), ("top", "1.0.0")])
    );
}

#[cfg(unix)]
#[test]
fn sigkill_during_a_large_extraction_is_recovered() {
    let env = Env::new();
    let dir = env.package("big", &support::manifest("big", "1.0.0"), &[]);
    // Zeros: a small tarball that takes a while to write out.
    let f = std::fs::File::create(dir.join("zeros.bin")).unwrap();
    f.set_len(400 << 20).unwrap();
    drop(f);
    env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    pkg(&env, "small", "1.0.0", json!({}));
    env.ok(&["marketplace", "install", "small"]);
    let root = env.home().join("packages");
    let before = snapshot(&root);

    let mut child = env.cmd(&["marketplace", "install", "big"]).spawn().unwrap();
    let staging = root.join(".ggen-staging");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // Wait until the payload is being written, then kill.
    let killed = loop {
        let writing = std::fs::read_dir(&staging)
            .into_iter()
            .flatten()
            .flatten()
            .any(|t| {
                std::fs::metadata(t.path().join("new/big/zeros.bin")).is_ok_and(|m| m.len() > 0)
            });
        if writing {
            child.kill().unwrap();
            break true;
        }
        if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    child.wait().unwrap();
    assert!(killed, "the install finished before it could be killed");
    assert!(staging.exists());
    assert!(!root.join("big").exists());
    // The next run cleans up and leaves the root as it was.
    env.ok(&["marketplace", "install", "small"]);
    assert_eq!(snapshot(&root), before);
    assert!(!staging.exists());
    env.ok(&["marketplace", "install", "big"]);
    assert_eq!(
        std::fs::metadata(root.join("big/zeros.bin")).unwrap().len(),
        400 << 20
    );
}

#[test]
fn verify_reports_modified_missing_and_extra_files() {
    let env = Env::new();
    pkg(&env, "dep", "1.0.0", json!({}));
    pkg(&env, "top", "1.0.0", json!({"dep": "1"}));
    env.ok(&["marketplace", "install", "top"]);
    let clean = env.json(&["marketplace", "verify", "--json"]);
    assert_eq!(clean["ok"], true);
    assert!(
        env.ok(&["marketplace", "verify"])
            .contains("ok        top@1.0.0")
    );

    let root = env.home().join("packages");
    std::fs::write(root.join("top/README.md"), "tampered").unwrap();
    std::fs::remove_file(root.join("dep/templates/main.tmpl")).unwrap();
    std::fs::write(root.join("dep/planted.sh"), "rm -rf /").unwrap();
    // A file name cannot forge a line of the report.
    let forged = "notes\nok        forged@9.9.9";
    std::fs::write(root.join("top").join(forged), "").unwrap();
    let err = env.fails(&["marketplace", "verify"]);
    assert!(
        err.contains("error: 2 installed packages differ from ggen.lock (the files listed above); to restore them as published, run `ggen marketplace install dep@1.0.0 top@1.0.0 --force`"),
        "{err}"
    );
    let text = env.run(&["marketplace", "verify"]).stdout;
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("  extra    notes\u{fffd}ok        forged@9.9.9\n")
            && !text.lines().any(|l| l.starts_with("ok        forged")),
        "{text}"
    );
    std::fs::remove_file(root.join("top").join(forged)).unwrap();
    let out = env.run(&["marketplace", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let dep = &report["packages"][0];
    assert_eq!(
        (dep["name"].as_str(), &dep["missing"], &dep["extra"]),
        (
            Some("dep"),
            &json!(["templates/main.tmpl"]),
            &json!(["planted.sh"])
        )
    );
    assert_eq!(report["packages"][1]["modified"], json!(["README.md"]));
    // Reinstalling (dependencies too) repairs it, planted file included,
    // and says what it threw away.
    let plan = env.json(&[
        "marketplace",
        "install",
        "top",
        "--force",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(
        named(&plan["packages"], "dep")["discarded"],
        json!({"modified": [], "added": ["planted.sh"]})
    );
    // The command verify suggested.
    let out = env.ok(&[
        "marketplace",
        "install",
        "dep@1.0.0",
        "top@1.0.0",
        "--force",
    ]);
    assert!(
        out.contains(
            "Discarded local changes (--force): dep: added planted.sh | top: modified README.md"
        ),
        "{out}"
    );
    assert!(!root.join("dep/planted.sh").exists());
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);

    // A link in place of a package directory is not what ggen installed,
    // even to an identical copy.
    let copy = env.work.path().join("top-copy");
    assert!(
        std::process::Command::new("cp")
            .arg("-r")
            .arg(root.join("top"))
            .arg(&copy)
            .status()
            .unwrap()
            .success()
    );
    std::fs::remove_dir_all(root.join("top")).unwrap();
    std::os::unix::fs::symlink(&copy, root.join("top")).unwrap();
    let out = env.run(&["marketplace", "verify", "--json"]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let top = named(&report["packages"], "top");
    assert!(!top["modified"].as_array().unwrap().is_empty(), "{top}");
    env.ok(&["marketplace", "install", "top", "--force"]);
    assert!(root.join("top").symlink_metadata().unwrap().is_dir());
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);

    // Nor is a file: remove and install deleted it without --force.
    std::fs::remove_dir_all(root.join("top")).unwrap();
    std::fs::write(root.join("top"), "my notes").unwrap();
    for args in [
        &["marketplace", "remove", "top"][..],
        &["marketplace", "install", "top@1"],
    ] {
        let err = env.fails(args);
        assert!(err.contains("has local changes (modified"), "{err}");
        assert_eq!(std::fs::read(root.join("top")).unwrap(), b"my notes");
    }
    env.ok(&["marketplace", "install", "top", "--force"]);
    assert!(root.join("top").is_dir());
}

#[test]
fn remove_takes_along_the_dependencies_nothing_needs_any_more() {
    let env = Env::new();
    pkg(&env, "base", "1.0.0", json!({}));
    pkg(&env, "base", "1.1.0", json!({}));
    pkg(&env, "kit", "1.0.0", json!({"base": "^1"}));
    pkg(&env, "app", "1.0.0", json!({"kit": "^1"}));
    pkg(&env, "tool", "1.0.0", json!({"base": "^1"}));
    let root = env.home().join("packages");
    let names = || -> Vec<String> {
        locked_versions(&lock(&root))
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    env.ok(&["marketplace", "install", "app", "tool"]);
    // An update of a dependency leaves it one.
    env.ok(&["marketplace", "update", "base"]);
    let removed = env.json(&["marketplace", "remove", "app", "--json"]);
    assert_eq!(removed["also_removed"], json!(["kit@1.0.0"]), "{removed}");
    assert_eq!(names(), ["base", "tool"]);
    assert!(!root.join("kit").exists());
    let out = env.ok(&["marketplace", "remove", "tool"]);
    assert!(
        out.contains("Removed with it, as nothing else needs them: base@1.1.0"),
        "{out}"
    );
    assert!(names().is_empty());

    // Named in an install, a dependency is the user's own: it stays.
    env.ok(&["marketplace", "install", "app"]);
    env.ok(&["marketplace", "install", "base"]);
    let removed = env.json(&["marketplace", "remove", "app", "--json"]);
    assert_eq!(removed["also_removed"], json!(["kit@1.0.0"]));
    assert_eq!(names(), ["base"]);

    // Edited since, it stays too: a remove nobody asked for loses nothing.
    env.ok(&["marketplace", "install", "app"]);
    std::fs::write(root.join("kit/README.md"), "my notes").unwrap();
    let removed = env.json(&["marketplace", "remove", "app", "--json"]);
    assert_eq!(removed["also_removed"], json!([]));
    assert_eq!(names(), ["base", "kit"]);

    // A ggen.lock from before the mark counts everything as named.
    env.ok(&["marketplace", "install", "app", "--force"]);
    let path = root.join("ggen.lock");
    let old = std::fs::read_to_string(&path)
        .unwrap()
        .replace(",\n      \"requested\": false", "");
    assert!(!old.contains("requested"), "{old}");
    std::fs::write(&path, old).unwrap();
    let removed = env.json(&["marketplace", "remove", "app", "--json"]);
    assert_eq!(removed["also_removed"], json!([]));
    assert_eq!(names(), ["base", "kit"]);
}

#[test]
fn remove_refuses_while_depended_on() {
    let env = Env::new();
    pkg(&env, "dep", "1.0.0", json!({}));
    pkg(&env, "top", "1.0.0", json!({"dep": "1"}));
    pkg(&env, "other", "1.0.0", json!({"dep": "1"}));
    env.ok(&["marketplace", "install", "top", "other"]);
    let root = env.home().join("packages");
    let before = snapshot(&root);
    let err = env.fails(&["marketplace", "remove", "dep"]);
    assert!(
        err.contains("cannot remove dep: other@1.0.0, top@1.0.0 depend on it"),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);
    assert!(
        env.fails(&["marketplace", "remove", "absent"])
            .contains("`absent` is not installed")
    );

    // A crash half-way through a remove is undone by the next run.
    assert!(fails_at(
        &env,
        "GGEN_CRASH",
        "moved",
        &["marketplace", "remove", "top"]
    ));
    assert!(
        root.join(".ggen-staging").exists(),
        "the crash should leave its transaction"
    );
    env.ok(&["marketplace", "install", "other"]); // recovers under the lock
    assert_eq!(snapshot(&root), before);

    env.ok(&["marketplace", "remove", "top"]);
    assert!(!root.join("top").exists());
    let forced = env.json(&["marketplace", "remove", "dep", "--force", "--json"]);
    assert_eq!(forced["broken_dependents"], json!(["other@1.0.0"]));
    assert_eq!(locked_versions(&lock(&root)), pairs(&[("other", "1.0.0")]));
    // verify names what the forced remove broke, and how to mend it.
    let err = env.fails(&["marketplace", "verify"]);
    assert!(
        err.contains("other@1.0.0 needs dep@1.0.0, which is not installed")
            && err.contains("`ggen marketplace install other`"),
        "{err}"
    );
    // The suggested command pastes into a shell: a --target with a space
    // is quoted (it was not).
    let spaced = env.work.path().join("my root");
    let t = spaced.to_str().unwrap();
    env.ok(&["marketplace", "install", "other", "--target", t]);
    env.ok(&["marketplace", "remove", "dep", "--force", "--target", t]);
    let err = env.fails(&["marketplace", "verify", "--target", t]);
    assert!(
        err.contains(&format!("`ggen marketplace install other --target '{t}'`")),
        "{err}"
    );
    let out = env.cmd(&["marketplace", "verify"]).output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.contains("BROKEN    other@1.0.0") && out.contains("needs    dep@1.0.0"),
        "{out}"
    );
    let report = env
        .cmd(&["marketplace", "verify", "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(
        report["packages"][0]["missing_dependencies"],
        json!(["dep@1.0.0"])
    );
    env.ok(&["marketplace", "install", "other"]);
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);
}

#[test]
fn ggen_lock_follows_dependencies_that_moved() {
    let env = Env::new();
    pkg(&env, "dep", "1.0.0", json!({}));
    pkg(&env, "top", "1.0.0", json!({"dep": "^1"}));
    env.ok(&["marketplace", "install", "top"]);
    pkg(&env, "dep", "1.1.0", json!({}));
    env.ok(&["marketplace", "update", "dep"]);
    let root = env.home().join("packages");
    let lock = lock(&root);
    let top = named(&lock["packages"], "top");
    assert_eq!(top["dependencies"], json!({"dep": "1.1.0"}));
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);
}

#[test]
fn parallel_installers_on_one_root_are_serialised() {
    let env = Env::new();
    pkg(&env, "shared", "1.0.0", json!({}));
    for i in 0..8 {
        pkg(&env, &format!("p{i}"), "1.0.0", json!({"shared": "1"}));
    }
    env.ok(&["marketplace", "search", "p0"]); // compile the plugin once
    let children: Vec<_> = (0..8)
        .map(|i| {
            env.cmd(&["marketplace", "install", &format!("p{i}")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let root = env.home().join("packages");
    let locked = locked_versions(&lock(&root));
    assert_eq!(locked.len(), 9, "{locked:?}");
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);
    assert!(!root.join(".ggen-staging").exists());
}

#[test]
fn every_hostile_archive_planted_in_the_registry_is_refused() {
    let env = Env::new();
    env.write_config(
        "[marketplace.install]\nmax_entries = 10\nmax_unpacked_mib = 1\nmax_path = 200\n",
    );
    pkg(&env, "fine", "1.0.0", json!({}));
    pkg(&env, "victim", "1.0.0", json!({"fine": "1"}));
    env.ok(&["marketplace", "install", "fine"]);
    let root = env.home().join("packages");
    let before = snapshot(&root);
    let cases = support::archives::hostile_cases();
    assert!(cases.len() >= 15);
    for (what, bytes, expected) in cases {
        plant_tarball(&env, "victim", "1.0.0", &bytes);
        let err = env.fails(&["marketplace", "install", "victim"]);
        assert!(
            err.contains("refusing victim") && err.contains(expected),
            "{what}: expected `{expected}` in: {err}"
        );
        assert_eq!(snapshot(&root), before, "{what} changed the install root");
        assert!(
            !root.join(".ggen-staging").exists(),
            "{what} left the staging directory"
        );
        assert!(
            !env.home().join("escape").exists() && !std::path::Path::new("/tmp/evil").exists(),
            "{what} escaped"
        );
    }
}

#[test]
fn update_moves_only_what_is_named_within_the_requirements() {
    let env = Env::new();
    pkg(&env, "lib", "1.0.0", json!({}));
    pkg(&env, "tool", "1.0.0", json!({"lib": "^1"}));
    pkg(&env, "solo", "1.0.0", json!({}));
    env.ok(&["marketplace", "install", "tool", "solo"]);
    pkg(&env, "lib", "1.1.0", json!({}));
    pkg(&env, "lib", "2.0.0", json!({}));
    pkg(&env, "tool", "1.1.0", json!({"lib": "^1"}));
    pkg(&env, "solo", "3.0.0", json!({}));
    let root = env.home().join("packages");

    let before = snapshot(&root);
    let plan = env.json(&["marketplace", "update", "--all", "--dry-run", "--json"]);
    let planned: Vec<(String, String)> = plan["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["version"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(planned.iter().find(|p| p.0 == "lib").unwrap().1, "1.1.0");
    let lib = named(&plan["packages"], "lib");
    assert_eq!(lib["previous_version"], "1.0.0", "{plan}");
    assert_eq!(snapshot(&root), before, "--dry-run changed the root");

    // Only lib, and only as far as tool's ^1 allows; tool and solo stay.
    let out = env.ok(&["marketplace", "update", "lib"]);
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["update", "lib", "1.0.0", "->", "1.1.0"])
            && out.contains(": 1 updated"),
        "{out}"
    );
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[("lib", "1.1.0"), ("solo", "1.0.0"), ("tool", "1.0.0")])
    );
    // Everything: roots to their newest, lib still within ^1.
    env.ok(&["marketplace", "update", "--all"]);
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[("lib", "1.1.0"), ("solo", "3.0.0"), ("tool", "1.1.0")])
    );
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);
    let again = env.json(&["marketplace", "update", "--all", "--json"]);
    assert!(
        again["packages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["action"] == "unchanged")
    );
    assert!(
        env.fails(&["marketplace", "update", "ghost"])
            .contains("`ghost` is not installed")
    );
}

#[test]
fn update_says_why_a_named_package_stays_below_its_newest_version() {
    let env = Env::new();
    pkg(&env, "base", "1.0.0", json!({}));
    pkg(&env, "base", "2.0.0", json!({}));
    pkg(&env, "cli", "1.2.0", json!({"base": "^1"}));
    pkg(&env, "py", "2.0.0", json!({"base": "^1"}));
    env.ok(&["marketplace", "install", "cli", "py"]);
    pkg(&env, "cli", "1.3.0", json!({"base": "^2"}));
    // cli 1.3 needs base 2, which py does not accept.
    let out = env.ok(&["marketplace", "update", "cli"]);
    assert!(out.contains("Nothing to do"), "{out}");
    assert!(
        out.contains("note: cli stays at 1.2.0: its newest version cannot be installed: ")
            && out.contains("^2 (required by cli@1.3.0)")
            && out.contains("^1 (required by py@2.0.0)"),
        "{out}"
    );
    let report = env.json(&["marketplace", "update", "cli", "py", "--json"]);
    let held = report["held_back"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{report}");
    assert_eq!(
        (&held[0]["name"], &held[0]["version"]),
        (&json!("cli"), &json!("1.2.0"))
    );
    // --all explains the packages installed by name (base, a dependency,
    // stays below its newest too, but nobody asked for it).
    let report = env.json(&["marketplace", "update", "--all", "--json"]);
    let held = report["held_back"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{report}");
    assert_eq!(held[0]["name"], "cli", "{report}");
    let out = env.ok(&["marketplace", "update", "--all"]);
    assert!(out.contains("note: cli stays at 1.2.0: "), "{out}");
    // Once py lets go, the note goes and update moves cli.
    pkg(&env, "py", "2.1.0", json!({"base": ">=1"}));
    let report = env.json(&["marketplace", "update", "cli", "py", "--json"]);
    assert_eq!(report["held_back"], json!([]), "{report}");
    assert_eq!(
        named(&report["packages"], "cli")["version"],
        "1.3.0",
        "{report}"
    );
}

#[test]
fn update_moves_what_a_new_version_needs_though_it_was_not_a_dependency() {
    // zed 1.1 needs lib 2, installed beside zed 1.0 at 1.1 on its own:
    // `update zed` said nothing to do, while `install zed` and `update
    // --all` moved both. tool, which needs lib ^1, still holds it where
    // its dependents' requirements allow.
    let env = Env::new();
    let root = env.home().join("packages");
    pkg(&env, "lib", "1.1.0", json!({}));
    pkg(&env, "lib", "2.0.0", json!({}));
    pkg(&env, "zed", "1.0.0", json!({}));
    pkg(&env, "zed", "1.1.0", json!({"lib": "=2.0.0"}));
    env.ok(&["marketplace", "install", "zed@1.0.0", "lib@1.1.0"]);
    env.ok(&["marketplace", "update", "zed"]);
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[("lib", "2.0.0"), ("zed", "1.1.0")])
    );

    let env = Env::new();
    let root = env.home().join("packages");
    pkg(&env, "lib", "1.1.0", json!({}));
    pkg(&env, "lib", "2.0.0", json!({}));
    pkg(&env, "tool", "1.0.0", json!({"lib": "^1"}));
    pkg(&env, "tool", "2.0.0", json!({"lib": "^2"}));
    env.ok(&["marketplace", "install", "tool@1.0.0"]);
    env.ok(&["marketplace", "update", "lib"]);
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[("lib", "1.1.0"), ("tool", "1.0.0")])
    );
}

#[test]
fn update_does_not_move_a_package_beside_the_named_one_for_its_sake() {
    // base 3 needs lib 2, which core 1.2 (asked for as `>=1, <2`) does not
    // accept: `update base` moved core to 2.1 across a major version, though
    // base does not need core (found by scripts/fuzz-install.py, seed 18007).
    let env = Env::new();
    let root = env.home().join("packages");
    pkg(&env, "lib", "1.0.0", json!({}));
    pkg(&env, "lib", "2.0.0", json!({}));
    pkg(&env, "core", "1.2.0", json!({"lib": ">=1, <2"}));
    pkg(&env, "core", "2.1.0", json!({}));
    pkg(&env, "base", "2.1.0", json!({}));
    pkg(&env, "kit", "3.0.0", json!({"base": "*"}));
    env.ok(&["marketplace", "install", "kit", "core@>=1, <2"]);
    pkg(&env, "extra", "1.0.0", json!({}));
    pkg(&env, "base", "3.0.0", json!({"lib": ">=2", "extra": "^1"}));
    let before = locked_versions(&lock(&root));
    let out = env.ok(&["marketplace", "update", "base"]);
    assert_eq!(locked_versions(&lock(&root)), before, "{out}");
    assert!(
        out.contains("note: base stays at 2.1.0: base@3.0.0 would also move lib to 2.0.0, core to 2.1.0 and install extra@1.0.0; `install base@latest` does that"),
        "{out}"
    );
    // core, held aside, is not reported on; a name given twice is
    // explained once.
    let report = env.json(&["marketplace", "update", "base", "base", "--json"]);
    let rows: Vec<&str> = strings(&report["packages"], "name");
    assert!(
        rows.contains(&"base") && !rows.contains(&"core"),
        "{report}"
    );
    assert_eq!(report["held_back"].as_array().unwrap().len(), 1, "{report}");
    // Once core is updated itself (to 2.1, which needs no lib), base moves,
    // and lib with it.
    env.ok(&["marketplace", "update", "core"]);
    env.ok(&["marketplace", "update", "base"]);
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[
            ("base", "3.0.0"),
            ("core", "2.1.0"),
            ("extra", "1.0.0"),
            ("kit", "3.0.0"),
            ("lib", "2.0.0")
        ])
    );
}

#[test]
fn an_installed_dependency_moves_up_to_a_pre_release_a_new_version_names() {
    // s 1.0.0 is installed; a 1.1.0 needs s ^1.1.0-beta.1. Keeping s from
    // going lower (>=1.0.0) also left out every pre-release above it.
    let env = Env::new();
    let root = env.home().join("packages");
    pkg(&env, "s", "1.0.0", json!({}));
    pkg(&env, "a", "1.0.0", json!({"s": "^1"}));
    env.ok(&["marketplace", "install", "a"]);
    pkg(&env, "s", "1.1.0-beta.1", json!({}));
    pkg(&env, "s", "1.2.0-beta.1", json!({}));
    // Nothing names a pre-release yet: s stays.
    env.ok(&["marketplace", "update", "--all"]);
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[("a", "1.0.0"), ("s", "1.0.0")])
    );
    pkg(&env, "a", "1.1.0", json!({"s": "^1.1.0-beta.1"}));
    env.ok(&["marketplace", "update", "a"]);
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[("a", "1.1.0"), ("s", "1.1.0-beta.1")])
    );
}

#[test]
fn update_moves_what_the_named_package_needs_and_no_dependencies_breaks_nothing() {
    let env = Env::new();
    let root = env.home().join("packages");
    pkg(&env, "base", "1.0.0", json!({}));
    pkg(&env, "zapp", "1.0.0", json!({"base": "^1"}));
    pkg(&env, "solo", "1.0.0", json!({}));
    env.ok(&["marketplace", "install", "zapp", "solo"]);
    pkg(&env, "base", "1.2.0", json!({}));
    pkg(&env, "zapp", "1.1.0", json!({"base": "^1.2"}));
    pkg(&env, "solo", "2.0.0", json!({}));

    // zapp 1.1.0 needs base ^1.2: base moves as far as that (update said
    // "Nothing to do", and install kept zapp at 1.0.0 because `base` sorts
    // first); solo, not named, stays (and is not listed).
    let plan = env.json(&["marketplace", "install", "zapp", "--dry-run", "--json"]);
    assert_eq!(plan["packages"][1]["version"], "1.1.0", "{plan}");
    let report = env.json(&["marketplace", "update", "zapp", "--json"]);
    let actions: Vec<(&str, &str)> = (report["packages"].as_array().unwrap().iter())
        .map(|p| (p["name"].as_str().unwrap(), p["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [("base", "update"), ("zapp", "update")],
        "{report}"
    );
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[("base", "1.2.0"), ("solo", "1.0.0"), ("zapp", "1.1.0")])
    );

    // --no-dependencies installs only what is named, but never breaks an
    // installed dependent (base 2 went in, zapp's ^1.2 broken, verify ok).
    pkg(&env, "base", "2.0.0", json!({}));
    let before = snapshot(&root);
    let err = env.fails(&["marketplace", "install", "base@2", "--no-dependencies"]);
    assert!(err.contains("^1.2 (required by zapp@1.1.0)"), "{err}");
    assert_eq!(snapshot(&root), before);
    // What fits goes in, and the dependent's record follows it.
    pkg(&env, "base", "1.3.0", json!({}));
    env.ok(&["marketplace", "install", "base@1.3.0", "--no-dependencies"]);
    assert_eq!(
        named(&lock(&root)["packages"], "zapp")["dependencies"],
        json!({"base": "1.3.0"})
    );
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);

    // A record that disagrees with what is installed is reported.
    let mut edited = lock(&root);
    for p in edited["packages"].as_array_mut().unwrap() {
        if p["name"] == "zapp" {
            p["dependencies"]["base"] = json!("1.2.0");
        }
    }
    std::fs::write(root.join("ggen.lock"), edited.to_string()).unwrap();
    let out = env.run(&["marketplace", "verify", "--json"]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checked = named(&report["packages"], "zapp");
    assert_eq!(
        checked["missing_dependencies"],
        json!(["base@1.2.0"]),
        "{report}"
    );
}

#[test]
fn a_tarball_of_another_version_is_refused() {
    // A registry (or a peer's record) pointing 1.1.0 at 1.0.0's tarball: the
    // checksum matches the bytes, but they are not 1.1.0. It installed
    // "1.1.0" holding 1.0.0's files, and verify said ok.
    let env = Env::new();
    pkg(&env, "alpha", "1.0.0", json!({}));
    pkg(&env, "alpha", "1.1.0", json!({}));
    let old = std::fs::read(env.registry().join("alpha/1.0.0/alpha-1.0.0.tar.gz")).unwrap();
    plant_tarball(&env, "alpha", "1.1.0", &old);
    let err = env.fails(&["marketplace", "install", "alpha"]);
    assert!(
        err.contains("refusing alpha@1.1.0: its tarball's package.json says `alpha@1.0.0`"),
        "{err}"
    );
    assert!(!env.home().join("packages/alpha").exists());
    env.ok(&["marketplace", "install", "alpha@1.0.0"]);
}

#[test]
fn an_installed_package_that_moves_up_brings_its_new_dependencies() {
    // base 3 needs tool to move to 1.2, which needs app: app went into
    // ggen.lock as tool's dependency without being installed.
    let env = Env::new();
    let root = env.home().join("packages");
    pkg(&env, "base", "1.1.0", json!({}));
    pkg(&env, "base", "3.0.0", json!({}));
    pkg(&env, "tool", "1.1.0", json!({"base": "~1.1"}));
    pkg(&env, "tool", "1.2.0", json!({"app": "*"}));
    pkg(&env, "app", "3.0.0", json!({}));
    env.ok(&["marketplace", "install", "tool@1.1.0"]);
    env.ok(&["marketplace", "install", "base@>=1.1"]);
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[("app", "3.0.0"), ("base", "3.0.0"), ("tool", "1.2.0")])
    );
    assert!(root.join("app").is_dir());
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);
}

#[test]
fn a_newest_version_that_cannot_be_installed_is_left_out_with_a_warning() {
    // tool 2 needs a package that is nowhere: update --all and install
    // failed outright although tool 1 serves.
    let env = Env::new();
    let root = env.home().join("packages");
    pkg(&env, "tool", "1.1.0", json!({}));
    pkg(&env, "core", "1.0.0", json!({}));
    env.ok(&["marketplace", "install", "tool", "core"]);
    pkg(&env, "tool", "2.1.0", json!({"ghost": "*"}));
    pkg(&env, "core", "1.1.0", json!({}));
    let out = env.run(&["marketplace", "update", "--all"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("left out tool@2.1.0 (it requires `ghost`, which is not in the registry)"),
        "{stderr}"
    );
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[("core", "1.1.0"), ("tool", "1.1.0")])
    );
    let err = env.fails(&["marketplace", "install", "tool@2"]);
    assert!(
        err.contains("missing dependency: package `ghost` (required by tool@2.1.0)"),
        "{err}"
    );
}

#[test]
fn installing_never_breaks_what_is_installed_and_update_never_downgrades() {
    let env = Env::new();
    pkg(&env, "base", "1.0.0", json!({}));
    pkg(&env, "base", "1.1.0", json!({}));
    pkg(&env, "base", "2.0.0", json!({}));
    pkg(&env, "app", "1.0.0", json!({"base": "^1"}));
    pkg(&env, "tool", "1.0.0", json!({"base": "~1.0"}));
    let root = env.home().join("packages");
    env.ok(&["marketplace", "install", "app@1.0.0", "base@1.0.0"]);
    let before = snapshot(&root);

    // base 2 would break app (^1): refused, naming who holds it back.
    let err = env.fails(&["marketplace", "install", "base@2"]);
    assert!(
        err.contains("`base` has no version that satisfies")
            && err.contains("^1 (required by app@1.0.0)")
            && err.contains("^2 (required by your request)"),
        "{err}"
    );
    assert_eq!(snapshot(&root), before);
    // A plain `install base` goes as high as app allows.
    let plan = env.json(&["marketplace", "install", "base", "--json"]);
    assert_eq!(
        plan["packages"],
        json!([{"name": "base", "version": "1.1.0", "action": "update", "previous_version": "1.0.0", "dependencies": {}}])
    );
    let back = env.json(&["marketplace", "install", "base@1.0.0", "--json"]);
    assert_eq!(back["packages"][0]["action"], "downgrade", "{back}");
    // A new package sharing a dependency gets the installed version when it
    // fits, and installed packages it does not touch are not listed.
    let plan = env.json(&["marketplace", "install", "tool", "--json"]);
    assert_eq!(
        plan["packages"],
        json!([
            {"name": "base", "version": "1.0.0", "action": "unchanged", "previous_version": null, "dependencies": {}},
            {"name": "tool", "version": "1.0.0", "action": "install", "previous_version": null, "dependencies": {"base": "1.0.0"}}
        ])
    );
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[("app", "1.0.0"), ("base", "1.0.0"), ("tool", "1.0.0")])
    );
    let err = env.fails(&["marketplace", "install", "base@1.1"]);
    assert!(err.contains("~1.0 (required by tool@1.0.0)"), "{err}");
    // An installed package missing from the registry stays installed, its
    // dependencies held at the versions ggen.lock recorded.
    std::fs::remove_dir_all(env.registry().join("app")).unwrap();
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(env.registry().join("index.json")).unwrap()).unwrap();
    index["packages"].as_object_mut().unwrap().remove("app");
    std::fs::write(env.registry().join("index.json"), index.to_string()).unwrap();
    pkg(&env, "extra", "1.0.0", json!({}));
    env.ok(&["marketplace", "install", "extra"]);
    let err = env.fails(&["marketplace", "install", "base@1.1"]);
    assert!(err.contains("=1.0.0 (required by app@1.0.0)"), "{err}");

    // Asked for with a requirement it fits (its name alone, say), an
    // installed package is not lowered for another request either (it was,
    // silently); asked for below it, it is.
    pkg(&env, "lib", "1.0.0", json!({}));
    pkg(&env, "lib", "3.0.0", json!({}));
    pkg(&env, "old", "1.0.0", json!({"lib": "^1"}));
    env.ok(&["marketplace", "install", "lib"]);
    let before = snapshot(&root);
    for lib in ["lib", "lib@>=1"] {
        let err = env.fails(&["marketplace", "install", lib, "old"]);
        assert!(
            err.contains(
                ">=3.0.0 (installed, and not lowered unless you ask for versions below it, as `install lib@VERSION`)"
            ),
            "{err}"
        );
        assert_eq!(snapshot(&root), before);
    }
    env.ok(&["marketplace", "install", "lib@1", "old"]);
    assert_eq!(named(&lock(&root)["packages"], "lib")["version"], "1.0.0");

    // A pre-release is never "updated" down to an older stable version.
    pkg(&env, "edge", "1.0.0", json!({}));
    pkg(&env, "edge", "2.1.0-beta.1", json!({}));
    env.ok(&["marketplace", "install", "edge@=2.1.0-beta.1"]);
    let plan = env.json(&["marketplace", "update", "edge", "--dry-run", "--json"]);
    let edge = named(&plan["packages"], "edge");
    assert_eq!(
        (&edge["version"], &edge["action"]),
        (&json!("2.1.0-beta.1"), &json!("unchanged"))
    );
}

#[test]
fn progress_is_plain_lines_off_a_terminal_and_absent_under_json() {
    let env = Env::new();
    pkg(&env, "dep", "1.0.0", json!({}));
    pkg(&env, "top", "1.0.0", json!({"dep": "1"}));
    let target = env.work.path().join("a");
    let out = env.run(&[
        "marketplace",
        "install",
        "top",
        "--target",
        target.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in [
        "fetch  dep@1.0.0 (",
        "unpack dep@1.0.0 (",
        "fetch  top@1.0.0 (",
        "unpack top@1.0.0 (",
    ] {
        assert!(stderr.contains(line), "missing `{line}` in: {stderr}");
    }
    assert!(
        !stderr.contains('\u{1b}'),
        "no terminal escapes off a terminal: {stderr:?}"
    );
    let target = env.work.path().join("b");
    let out = env.run(&[
        "marketplace",
        "install",
        "top",
        "--target",
        target.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "--json must keep stderr quiet: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is nothing but JSON");
    assert_eq!(report["packages"].as_array().unwrap().len(), 2);
}

#[test]
fn installs_a_deep_chain_dependencies_first() {
    let env = Env::new();
    for i in (0..8).rev() {
        let deps = if i == 7 {
            json!({})
        } else {
            json!({format!("level{}", i + 1): "^1"})
        };
        pkg(&env, &format!("level{i}"), "1.0.0", deps);
    }
    let report = env.json(&["marketplace", "install", "level0", "--json"]);
    let order: Vec<&str> = strings(&report["packages"], "name");
    assert_eq!(
        order,
        [
            "level7", "level6", "level5", "level4", "level3", "level2", "level1", "level0"
        ]
    );
    assert_eq!(
        locked_versions(&lock(&env.home().join("packages"))).len(),
        8
    );
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);
}

#[test]
fn recovery_killed_half_way_can_run_again() {
    let env = Env::new();
    let root = upgrade_scene(&env);
    let before = snapshot(&root);
    // Die after moving dep into place, then die again inside recovery after it
    // restored the old copy but before it cleared the transaction.
    assert!(fails_at(
        &env,
        "GGEN_CRASH",
        "moved",
        &["marketplace", "install", "dep@1.1.0", "--force"]
    ));
    assert!(fails_at(
        &env,
        "GGEN_CRASH",
        "recovered",
        &["marketplace", "install", "other"]
    ));
    env.ok(&["marketplace", "install", "other"]);
    assert_eq!(
        snapshot(&root),
        before,
        "a second recovery must not undo the first"
    );
}

#[test]
fn a_kill_after_commit_keeps_the_new_state() {
    let env = Env::new();
    let root = upgrade_scene(&env);
    // Killed after the commit marker, while the transaction is being cleared.
    assert!(fails_at(
        &env,
        "GGEN_CRASH",
        "committed",
        &["marketplace", "install", "dep@1.1.0", "--force"]
    ));
    env.ok(&["marketplace", "install", "other"]);
    assert_eq!(
        locked_versions(&lock(&root)),
        pairs(&[("dep", "1.1.0"), ("other", "1.0.0")])
    );
    assert_eq!(
        std::fs::read_to_string(root.join("dep/README.md")).unwrap(),
        "# dep-1.1.0\n"
    );
    assert_eq!(env.json(&["marketplace", "verify", "--json"])["ok"], true);
}

/// A folder a user made read-only inside an installed package: updating
/// or removing the package takes the old copy away all the same (its
/// leftover used to stop every later command in the root), and a leftover
/// that really cannot go is warned about, not a reason to stop.
#[test]
fn read_only_folders_in_a_package_do_not_block_the_root() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::unprivileged();
    let target = env.work.path().join("t");
    let t = target.to_str().unwrap();
    pkg(&env, "ro", "1.0.0", json!({}));
    pkg(&env, "ro", "1.1.0", json!({}));
    env.ok(&["marketplace", "install", "ro@1.0.0", "--target", t]);
    let read_only = |dir: &std::path::Path| {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    };
    read_only(&target.join("ro/templates"));
    env.ok(&["marketplace", "update", "ro", "--target", t]);
    let staging = target.join(".ggen-staging");
    assert!(!staging.exists(), "the old copy was left behind");
    read_only(&target.join("ro/templates"));
    env.ok(&["marketplace", "remove", "ro", "--target", t]);
    assert!(!staging.exists() && !target.join("ro").exists());
    env.ok(&["marketplace", "install", "ro", "--target", t]);
    // The package's own folder read-only: it cannot be moved, which says
    // what to do.
    read_only(&target.join("ro"));
    let err = env.fails(&["marketplace", "remove", "ro", "--target", t]);
    assert!(err.contains("is not writable; nothing was changed; give yourself write permission on it (`chmod u+w "), "{err}");
    std::fs::set_permissions(target.join("ro"), std::fs::Permissions::from_mode(0o755)).unwrap();

    // A finished transaction's leftover this user cannot delete (a
    // folder of someone else's, when the tests run as root).
    let stuck = staging.join("txn-left/old/ro/theirs");
    std::fs::create_dir_all(&stuck).unwrap();
    std::fs::write(stuck.join("f"), "x").unwrap();
    std::fs::write(staging.join("txn-left/committed"), "").unwrap();
    for own in [
        "",
        "txn-left",
        "txn-left/old",
        "txn-left/old/ro",
        "txn-left/committed",
    ] {
        env.hand_over(&staging.join(own));
    }
    let out = env.run(&["marketplace", "install", "ro@1.0.0", "--target", t]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(locked_versions(&lock(&target)), pairs(&[("ro", "1.0.0")]));
}

#[test]
fn registry_names_cannot_reach_outside_the_root() {
    let env = Env::new();
    pkg(&env, "evil", "1.0.0", json!({}));
    // A registry (written by anyone) declaring a dependency that is a path.
    let index_path = env.registry().join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    index["packages"]["evil"]["versions"][0]["dependencies"] = json!({"../victim": "*"});
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let victim = env.home().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("precious.txt"), "keep me").unwrap();
    let err = env.fails(&["marketplace", "install", "evil"]);
    assert!(err.contains("evil"), "{err}");
    assert_eq!(
        std::fs::read_to_string(victim.join("precious.txt")).unwrap(),
        "keep me"
    );
    assert!(
        env.fails(&["marketplace", "install", "ggen.lock"])
            .contains("reserved")
    );
}

#[test]
fn requirements_ignore_build_metadata() {
    let env = Env::new();
    pkg(&env, "vt", "1.0.0+build.5", json!({}));
    pkg(&env, "vt", "1.0.1", json!({}));
    pkg(&env, "app", "1.0.0", json!({"vt": "=1.0.0"}));
    // `=1.0.0` and the version as published both take 1.0.0+build.5.
    env.ok(&["marketplace", "install", "vt@1.0.0+build.5"]);
    assert_eq!(
        locked_versions(&lock(&env.home().join("packages"))),
        pairs(&[("vt", "1.0.0+build.5")])
    );
    env.ok(&["marketplace", "remove", "vt"]);
    // `>1.0.0` is 1.0.1, not the build of 1.0.0.
    let plan = env.json(&["marketplace", "install", "vt@>1.0.0", "--dry-run", "--json"]);
    assert_eq!(plan["packages"][0]["version"], "1.0.1", "{plan}");
    env.ok(&["marketplace", "install", "app"]);
    assert_eq!(
        locked_versions(&lock(&env.home().join("packages"))),
        pairs(&[("app", "1.0.0"), ("vt", "1.0.0+build.5")])
    );
}

#[test]
fn verify_and_list_wait_for_a_running_install() {
    let env = Env::new();
    pkg(&env, "solo", "1.0.0", json!({}));
    env.ok(&["marketplace", "install", "solo"]);
    let root = env.home().join("packages");
    // What a live install holds: the root's lock, and a transaction that is
    // moving packages (its journal written, not yet committed).
    let lock = std::fs::File::options()
        .write(true)
        .open(root.join(".ggen-install.lock"))
        .unwrap();
    lock.lock().unwrap();
    let txn = root.join(".ggen-staging/txn-live");
    std::fs::create_dir_all(&txn).unwrap();
    std::fs::write(txn.join("journal.json"), "[]").unwrap();
    let mut readers = [
        env.cmd(&["marketplace", "verify", "--json"]),
        env.cmd(&["marketplace", "list", "--json"]),
    ]
    .map(|mut c| {
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    for r in &mut readers {
        assert!(
            r.try_wait().unwrap().is_none(),
            "a reader did not wait for the install"
        );
    }
    // The install finishes.
    std::fs::remove_dir_all(root.join(".ggen-staging")).unwrap();
    drop(lock);
    for r in readers {
        let out = r.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("waiting for another ggen process"),
            "{stderr}"
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["interrupted"], 0, "{report}");
    }
}

#[test]
fn hand_made_staging_files_never_reach_outside_the_root() {
    let env = Env::new();
    pkg(&env, "solo", "1.0.0", json!({}));
    env.ok(&["marketplace", "install", "solo"]);
    let root = env.home().join("packages");
    let outside = env.home().join("outside");
    std::fs::create_dir_all(outside.join("important")).unwrap();
    std::fs::write(outside.join("important/data"), "keep me").unwrap();
    let kept = snapshot(&outside);

    // A journal naming paths, not packages: recovery moved and deleted them.
    let txn = root.join(".ggen-staging/txn-forged");
    std::fs::create_dir_all(&txn).unwrap();
    for name in [
        outside.join("important").to_str().unwrap(),
        "../outside/important",
    ] {
        let journal = json!({"moves": [[name, false]], "lockfile_before": null});
        std::fs::write(txn.join("journal.json"), journal.to_string()).unwrap();
        let err = env.fails(&["marketplace", "remove", "nothing"]);
        assert!(
            err.contains("has a journal naming") && err.contains("which is not a package"),
            "{err}"
        );
        assert_eq!(snapshot(&outside), kept);
    }
    std::fs::remove_dir_all(root.join(".ggen-staging")).unwrap();

    // Staging through a symlink: installs staged outside the root, and
    // recovery deleted every directory there.
    std::os::unix::fs::symlink(&outside, root.join(".ggen-staging")).unwrap();
    for args in [
        &["marketplace", "install", "solo", "--force"][..],
        &["marketplace", "remove", "solo"],
    ] {
        let err = env.fails(args);
        assert!(
            err.contains(".ggen-staging is not a directory (a file or a symbolic link)"),
            "{err}"
        );
        assert_eq!(snapshot(&outside), kept);
    }
    std::fs::remove_file(root.join(".ggen-staging")).unwrap();

    // A symlinked lock file: the lock created a file where it pointed, and
    // then deleted the link.
    let lock = root.join(".ggen-install.lock");
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(outside.join("created"), &lock).unwrap();
    for args in [
        &["marketplace", "install", "solo", "--force"][..],
        &["marketplace", "verify"],
    ] {
        let err = env.fails(args);
        assert!(
            err.contains(
                ".ggen-install.lock is a symbolic link, not a lock file ggen made; remove it"
            ),
            "{err}"
        );
        assert_eq!(snapshot(&outside), kept);
        assert!(lock.is_symlink());
    }
    std::fs::remove_file(&lock).unwrap();

    // In a real staging directory, what no transaction made is left alone.
    std::fs::create_dir_all(root.join(".ggen-staging/mine")).unwrap();
    std::fs::write(root.join(".ggen-staging/mine/notes"), "mine").unwrap();
    env.ok(&["marketplace", "install", "solo", "--force"]);
    assert!(root.join(".ggen-staging/mine/notes").is_file());
    env.ok(&["marketplace", "verify"]);
}

#[test]
fn ggens_own_files_must_be_regular_files() {
    // A FIFO hung every command; /dev/zero read until memory ran out.
    let env = Env::new();
    let root = env.home().join("packages");
    std::fs::create_dir_all(&root).unwrap();
    let config = env.home().join("config.toml");
    std::os::unix::fs::symlink("/dev/zero", &config).unwrap();
    let err = env.fails(&["marketplace", "search", "x"]);
    assert!(
        err.ends_with("config.toml: it is not a regular file"),
        "{err}"
    );
    std::fs::remove_file(&config).unwrap();
    let lock = root.join("ggen.lock");
    rustix::fs::mkfifoat(rustix::fs::CWD, &lock, rustix::fs::Mode::RWXU).unwrap();
    for args in [
        &["marketplace", "list"][..],
        &["marketplace", "install", "x"],
    ] {
        let err = env.fails(args);
        assert!(
            err.ends_with("ggen.lock: it is not a regular file"),
            "{err}"
        );
    }
    assert!(lock.exists(), "left as it was");
}

#[test]
fn trees_past_path_max_under_a_long_target_verify_and_remove() {
    let env = Env::new();
    // Full paths over 4096 bytes: a 3.4 KB --target and an 800-byte path
    // in the package (publish allows 1024). verify said "File name too long".
    let deep: std::path::PathBuf = (0..4).map(|_| "d".repeat(200)).collect();
    let file = format!("{}/f.txt", deep.display());
    let dir = env.package(
        "deep",
        &json!({"name": "deep", "version": "1.0.0"}),
        &[(file.as_str(), "hi\n")],
    );
    env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
    let mut target = env.work.path().join("t");
    for _ in 0..17 {
        target.push("t".repeat(200));
    }
    std::fs::create_dir_all(&target).unwrap();
    let t = target.to_str().unwrap();
    env.ok(&["marketplace", "install", "deep", "--target", t]);
    let report = env.json(&["marketplace", "verify", "--target", t, "--json"]);
    assert_eq!(report["ok"], true, "{report}");
    env.ok(&["marketplace", "remove", "deep", "--target", t]);
    assert!(!target.join("deep").exists());
    let list = env.json(&["marketplace", "list", "--target", t, "--json"]);
    assert_eq!(list["packages"], json!([]), "{list}");
}
