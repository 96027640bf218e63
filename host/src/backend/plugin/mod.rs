//! The WebAssembly plugin runtime (wasmtime, WASI 0.2): one engine per
//! process, a compiled-component cache, the capability policy, and the
//! adapters that expose plugins as backends.

mod bindings;
mod bounded_sleep;
mod cache;
pub mod contract;
mod engine;
#[cfg(unix)]
mod file_read;
mod hook_plugin;
mod host_api;
pub mod inspect;
#[cfg(unix)]
mod open_guard;
pub mod policy;
mod policy_plugin;
mod registry_plugin;
mod sandbox;
mod source;
mod write_quota;

pub use cache::data_dir;
pub use engine::PluginEngine;
pub use hook_plugin::{WasmHookRunner, builtin_names as builtin_hook_names};
pub use policy::{Limits, Policy};
pub use policy_plugin::WasmP2pPolicy;
pub use registry_plugin::WasmRegistry;
pub use source::{EmbeddedPlugin, WasmSource, embedded};
