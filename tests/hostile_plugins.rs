//! Plugins that misbehave: each is stopped with one clear error line and a
//! non-zero exit, and nothing escapes the sandbox.

mod support;

use std::time::Duration;

use support::{Env, fixture, snapshot};

/// `ggen --registry-plugin hostile.wasm <extra> marketplace search <what>`.
fn attack_args(extra: &[&str], what: &str) -> Vec<String> {
    let plugin = fixture("hostile").to_str().unwrap().to_owned();
    let mut args = vec!["--registry-plugin".to_owned(), plugin];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["marketplace", "search", what].map(String::from));
    args
}

fn attack(env: &Env, extra: &[&str], what: &str) -> String {
    let args = attack_args(extra, what);
    env.fails(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn filesystem_escapes_are_refused() {
    let env = Env::new();
    let outside = env.home().join("escaped.txt");
    for what in [
        "read-dotdot",
        "read-absolute",
        "read-relative",
        "sdk-read-dotdot",
        "write-outside",
    ] {
        let err = attack(&env, &[], what);
        assert!(err.contains("cannot"), "{what}: {err}");
        assert!(!err.contains("root:"), "{what} read /etc/passwd: {err}");
    }
    let err = attack(&env, &[], "sdk-read-dotdot");
    assert!(
        err.contains("cannot read /registry/../../../../etc/passwd: permission denied"),
        "{err}"
    );
    assert!(
        !outside.exists(),
        "a plugin wrote outside its registry root"
    );
    assert!(!env.home().parent().unwrap().join("escaped.txt").exists());

    // `..` that stays inside the root resolves there (the SDK neither drops
    // it nor lets it out).
    std::fs::create_dir_all(env.registry().join("sub")).unwrap();
    std::fs::write(env.registry().join("note.txt"), "inside the root\n").unwrap();
    let args = attack_args(&[], "sdk-read-within");
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("--json");
    let out = env.json(&args);
    assert_eq!(
        out["results"][0]["description"],
        "read /registry/sub/../note.txt: inside the root"
    );
}

#[test]
fn no_environment_is_inherited() {
    let env = Env::new();
    let err = attack(&env, &[], "env");
    assert!(err.contains("no environment"), "{err}");
}

#[test]
fn endless_loop_hits_the_deadline() {
    let env = Env::new();
    let err = attack(&env, &["--plugin-timeout", "1s"], "loop");
    assert!(
        err.contains("ran past its 1s deadline in `search`"),
        "{err}"
    );
    // The hint names what raises a deadline, and only that.
    assert!(
        err.contains(
            "raise it with --plugin-timeout, or [marketplace.plugins] timeout_ms in config.toml"
        ),
        "{err}"
    );
    assert!(!err.contains("memory"), "{err}");
    // The deadline also comes from config.toml.
    env.write_config("[marketplace.plugins]\ntimeout_ms = 700\n");
    let err = attack(&env, &[], "loop");
    assert!(err.contains("ran past its 700ms deadline"), "{err}");
    // Deadlines are counted in 10 ms ticks: the message names the one applied.
    let err = attack(&env, &["--plugin-timeout", "1ns"], "loop");
    assert!(err.contains("ran past its 10ms deadline"), "{err}");
    // A deadline too long to count in ticks is capped, not wrapped to nothing.
    let out = env.ok(&[
        "--plugin-timeout",
        "100000000000years",
        "marketplace",
        "search",
        "x",
    ]);
    assert!(out.contains("No packages match"), "{out}");
}

#[test]
fn sleeping_in_the_host_hits_the_deadline() {
    // A plugin waiting on a WASI clock is blocked in the host, where the
    // epoch deadline cannot interrupt it: its hour-long sleep ran out.
    let env = Env::new();
    // 2 s: with a ticker that ran late, waits past 1.5 s outlived the deadline.
    let args = attack_args(&["--plugin-timeout", "2s"], "sleep");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = env.fails_unless_hung(&args, Duration::from_secs(120));
    assert!(
        err.contains("ran past its 2s deadline in `search`"),
        "{err}"
    );
}

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    let env = Env::new();
    let err = attack(&env, &["--plugin-memory", "64"], "alloc");
    assert!(err.contains("exceeded its memory cap of 64 MiB"), "{err}");
    assert!(
        err.contains(
            "raise it with --plugin-memory, or [marketplace.plugins] memory_mib in config.toml"
        ),
        "{err}"
    );
    assert!(!err.contains("timeout"), "{err}");
    env.write_config("[marketplace.plugins]\nmemory_mib = 96\n");
    let err = attack(&env, &[], "alloc");
    assert!(err.contains("memory cap of 96 MiB"), "{err}");
    // A cap past what a 32-bit plugin can address was taken, and reported
    // as if it held.
    for (flag, config) in [("100000", ""), ("", "[hooks]\nmemory_mib = 99999999999\n")] {
        env.write_config(config);
        // Hook limits are read by the commands that may run hooks.
        let mut args = vec!["marketplace", "install", "x"];
        if !flag.is_empty() {
            args = vec!["--plugin-memory", flag, "marketplace", "search", "x"];
        }
        let err = env.fails(&args);
        assert!(err.contains("is at most 4096"), "{args:?} {config}: {err}");
    }
}

#[test]
fn panics_and_stack_overflows_are_reported() {
    let env = Env::new();
    let err = attack(&env, &[], "trap");
    assert!(
        err.contains("crashed in `search`: hostile plugin gave up"),
        "{err}"
    );
    let err = attack(&env, &["--plugin-timeout", "20s"], "stack");
    assert!(
        err.contains("crashed in `search`") || err.contains("overflowed its stack"),
        "{err}"
    );
}

#[test]
fn output_floods_are_stopped() {
    let env = Env::new();
    let err = attack(&env, &[], "print");
    assert!(err.contains("wrote more than 1024 KiB of output"), "{err}");
}

#[test]
fn plugin_text_cannot_inject_terminal_escapes() {
    let env = Env::new();
    let out = env.run(&[
        "--registry-plugin",
        fixture("hostile").to_str().unwrap(),
        "marketplace",
        "search",
        "escape-sequence",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.stderr.contains(&0x1b) && !out.stderr.contains(&0x07),
        "{stderr:?}"
    );
    // Shown as the README says (they were blanked, as if never there).
    assert!(stderr.contains("\u{FFFD}[31m"), "{stderr:?}");
}

#[test]
fn other_contract_versions_are_refused_naming_both() {
    let env = Env::new();
    let plugin = fixture("future-contract");
    let err = env.fails(&[
        "--registry-plugin",
        plugin.to_str().unwrap(),
        "marketplace",
        "search",
        "x",
    ]);
    assert!(
        err.contains("ggen:marketplace@0.2.0") && err.contains("ggen:marketplace@0.1.x"),
        "{err}"
    );
}

#[test]
fn files_that_are_not_components_are_refused() {
    let env = Env::new();
    let core = env.work.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let text = env.work.path().join("text.wasm");
    std::fs::write(&text, b"not wasm at all").unwrap();
    let truncated = env.work.path().join("truncated.wasm");
    let real = std::fs::read(fixture("memory-registry")).unwrap();
    std::fs::write(&truncated, &real[..real.len() / 2]).unwrap();
    let before = snapshot(env.home());
    for (file, expected) in [
        (&core, "core WebAssembly module, not a component"),
        (&text, "not a WebAssembly component"),
        (&truncated, "not a valid"),
        (&env.work.path().join("absent.wasm"), "does not exist"),
    ] {
        let err = env.fails(&[
            "--registry-plugin",
            file.to_str().unwrap(),
            "marketplace",
            "search",
            "x",
        ]);
        assert!(err.contains(expected), "{}: {err}", file.display());
    }
    // Nothing but (possibly) empty directories was created.
    assert_eq!(snapshot(env.home()), before);
}
