//! Guest-side SDK for ggen marketplace plugins.
//!
//! A registry backend is one type implementing [`Registry`] and one line,
//! `ggen_plugin_sdk::export_registry!(MyBackend);`; a post-install hook is one
//! type implementing [`PostInstallHook`] and `ggen_plugin_sdk::export_hook!(MyHook);`.
//! Both are built with `cargo build --target wasm32-wasip2 --release`.
//!
//! The WIT contract (`ggen:marketplace@0.1.0`) ships inside this crate (`wit/`);
//! the export macro stamps the contract version into the component so a host
//! built for another contract refuses it with a message naming both versions.

pub mod bindings;
mod error;
pub mod fs;
pub mod hook;
mod io;
pub mod names;
pub mod policy;
pub mod registry;
pub mod search;

pub use bindings::host::Level;
pub use bindings::types::{
    Dependency, Package, PackageVersion, Query, RegistryMetadata, SearchResults,
};
pub use error::Error;
pub use hook::{InstallContext, PostInstallHook};
pub use io::ByteSourceReader;
pub use policy::{P2pPolicy, PeerStats};
pub use registry::Registry;

/// The contract this SDK implements: the WIT package and its version.
pub const CONTRACT_PACKAGE: &str = "ggen:marketplace";
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Name of the custom section the export macros write; the host reads it before
/// compiling a plugin.
pub const CONTRACT_SECTION: &str = "ggen:contract";

/// Stamp of the registry-plugin world: `<package>@<version> <world>`.
pub const REGISTRY_STAMP: [u8; 38] = *b"ggen:marketplace@0.1.0 registry-plugin";

/// Stamp of the p2p-policy-plugin world.
pub const POLICY_STAMP: [u8; 40] = *b"ggen:marketplace@0.1.0 p2p-policy-plugin";

/// Stamp of the post-install-hook world.
pub const HOOK_STAMP: [u8; 40] = *b"ggen:marketplace@0.1.0 post-install-hook";

/// Send a log line to the host (warn and error are shown to the user).
pub fn log(level: Level, message: &str) {
    bindings::host::log(level, message);
}
