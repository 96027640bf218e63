//! The default registry backend. Layout (seeds-compatible), relative to the registry root:
//!
//! ```text
//! index.json                                  the index (format: index.rs)
//! <name>/<version>/package.json               the manifest as published
//! <name>/<version>/<name>-<version>.tar.gz    the tarball
//! ```
//!
//! Search reads a derived index in the cache directory (search_index.rs) that
//! is rebuilt whenever index.json changes, so a search never parses the whole
//! JSON index, and neither does a call about one package while that index is
//! fresh (package_table.rs). The code works on plain paths: as a plugin those are the
//! preopened `/registry` and `/cache`; natively (benchmarks) any directories.

mod fsutil;
mod index;
mod integrity;
mod package_table;
mod recover;
mod registry;
mod search_index;
mod search_scan;
mod signature;

pub use registry::FileRegistry;

#[cfg(target_arch = "wasm32")]
mod plugin;

/// Send a warning to the user (through the host when running as a plugin).
pub(crate) fn warn(message: &str) {
    #[cfg(target_arch = "wasm32")]
    ggen_plugin_sdk::log(ggen_plugin_sdk::Level::Warn, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("warning: {message}");
}
