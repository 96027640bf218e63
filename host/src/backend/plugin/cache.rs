//! Compiled-component cache: `<cache>/plugins/<wasm sha256>-<engine hash>.cwasm`.
//! A warm load maps the file (`deserialize_file`) instead of compiling.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Where the compiled form of `sha256` for this engine lives. The engine's
/// compatibility hash covers the wasmtime version and every codegen setting.
pub fn entry(cache_dir: &Path, engine: &Engine, sha256: &str) -> PathBuf {
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    cache_dir.join("plugins").join(format!(
        "{}-{:016x}.cwasm",
        &sha256[..32.min(sha256.len())],
        h.finish()
    ))
}

/// Load a cached compilation, if present and loadable.
pub fn load(engine: &Engine, path: &Path) -> Option<Component> {
    if !path.is_file() {
        return None;
    }
    // SAFETY: the file is one this process family wrote with `Component::serialize`
    // for this exact engine configuration (the name carries its hash), renamed into
    // place atomically, under the user's own GGEN_HOME; wasmtime also checks its header.
    match unsafe { Component::deserialize_file(engine, path) } {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::debug!("ignoring unusable cached plugin {}: {e}", path.display());
            None
        }
    }
}

/// Store a compilation; failures only cost the next run a recompile.
pub fn store(path: &Path, component: &Component) {
    let result = (|| -> std::io::Result<()> {
        let dir = path.parent().expect("cache entries live in a directory");
        std::fs::create_dir_all(dir)?;
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        crate::backend::atomic::write_file(path, &bytes, dir)
    })();
    if let Err(e) = result {
        tracing::debug!("could not cache compiled plugin at {}: {e}", path.display());
    }
}
