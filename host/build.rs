//! Builds the default plugins (../plugins, a workspace of its own) for
//! wasm32-wasip2 with a nested cargo, the way substrate's wasm-builder does,
//! and embeds them so the `ggen` binary is self-contained.

use std::env;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use sha2::{Digest, Sha256};

/// (plugin name, crate artifact name)
const PLUGINS: &[(&str, &str)] = &[
    ("file-registry", "ggen_file_registry"),
    ("p2p-policy", "ggen_p2p_policy"),
    ("render-templates", "ggen_hook_render_templates"),
    ("file-manifest", "ggen_hook_file_manifest"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    for dir in [
        "plugins",
        "plugins/.cargo/config.toml",
        "sdk/src",
        "sdk/Cargo.toml",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    // A separate target dir: the outer cargo holds the lock on its own.
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());

    let mut cmd = Command::new(cargo);
    // Run inside plugins/ so its .cargo/config.toml (target features) applies.
    cmd.current_dir(root.join("plugins"));
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(root.join("plugins/Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir);
    // The host's flags (coverage, sanitizers, target-cpu) must not leak into the guests.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("failed to run cargo for the plugins");
    if !status.success() {
        panic!(
            "building the default plugins (plugins/) for wasm32-wasip2 failed: cargo's errors are above; \
             if they say the target is missing, run `rustup target add wasm32-wasip2`"
        );
    }

    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let mut code = String::new();
    for (name, artifact) in PLUGINS {
        let built = target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{artifact}.wasm"));
        let bytes =
            std::fs::read(&built).unwrap_or_else(|e| panic!("reading {}: {e}", built.display()));
        let embedded = out_dir.join(format!("{name}.wasm"));
        std::fs::write(&embedded, &bytes).unwrap();
        let sha = hex::encode(Sha256::digest(&bytes));
        let ident = name.to_uppercase().replace('-', "_");
        writeln!(
            code,
            "pub const {ident}: EmbeddedPlugin = EmbeddedPlugin {{ name: {name:?}, wasm: include_bytes!({:?}), sha256: {sha:?} }};",
            embedded.display()
        )
        .unwrap();
    }
    std::fs::write(out_dir.join("embedded_plugins.rs"), code).unwrap();
}
