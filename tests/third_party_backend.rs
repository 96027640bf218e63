//! Backends written by third parties with the SDK, loaded with --registry-plugin.

mod support;

use support::{Env, check_catalog, fixture, publish_catalog};

#[test]
fn differently_laid_out_backend_passes_the_same_checks() {
    let env = Env::new();
    let plugin = fixture("flat-registry");
    let root = env.work.path().join("flat");
    let args = [
        "--registry-plugin",
        plugin.to_str().unwrap(),
        "--registry",
        root.to_str().unwrap(),
    ];
    publish_catalog(&env, &args);
    check_catalog(&env, &args);
    // Its own layout, not the file registry's.
    assert!(root.join("rust-web@1.1.0.json").is_file());
    assert!(root.join("rust-web@1.1.0.tgz").is_file());
    assert!(!root.join("index.json").exists());
    // And the built-in backend never saw any of it.
    assert_eq!(env.json(&["marketplace", "search", "--json"])["total"], 0);
    // Its errors reach the user in one line, naming what it named.
    std::fs::write(root.join("broken@1.0.0.json"), "{").unwrap();
    let mut search = args.to_vec();
    search.extend(["marketplace", "search", "web"]);
    let err = env.fails(&search);
    assert!(
        err.contains("/broken@1.0.0.json: EOF") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn ten_line_readme_backend_works() {
    let env = Env::new();
    let plugin = fixture("memory-registry");
    let p = plugin.to_str().unwrap();
    let r = env.json(&[
        "--registry-plugin",
        p,
        "marketplace",
        "search",
        "hello",
        "--json",
    ]);
    assert_eq!(r["total"], 1);
    assert_eq!(r["results"][0]["version"], "1.1.0");
    let r = env.json(&[
        "--registry-plugin",
        p,
        "marketplace",
        "search",
        "--tag",
        "memory",
        "--json",
    ]);
    assert_eq!(r["total"], 2);
    let info = env.json(&[
        "--registry-plugin",
        p,
        "marketplace",
        "info",
        "hello",
        "--json",
    ]);
    assert_eq!(info["versions"][0]["version"], "1.1.0");
    assert_eq!(info["versions"][1]["version"], "1.0.0");
    let err = env.fails(&["--registry-plugin", p, "marketplace", "info", "nope"]);
    assert!(
        err.contains("package `nope` is not in this registry"),
        "{err}"
    );
    // Read-only by default: publish is refused with the SDK's message.
    let dir = env.package("p", &support::manifest("x", "1.0.0"), &[("a", "b")]);
    let err = env.fails(&[
        "--registry-plugin",
        p,
        "marketplace",
        "publish",
        dir.to_str().unwrap(),
    ]);
    assert!(err.contains("read-only"), "{err}");
    // So is unpublish.
    let err = env.fails(&[
        "--registry-plugin",
        p,
        "marketplace",
        "unpublish",
        "hello@1.0.0",
    ]);
    assert!(err.contains("read-only: delete is not supported"), "{err}");
}
