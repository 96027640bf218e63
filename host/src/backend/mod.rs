//! Backends: the `Registry` interface and its data (seeds §2.2: the backend
//! layer owns the trait), the WebAssembly plugin runtime that implements it,
//! archives and locks. Nothing here knows the CLI or the domain.

pub mod archive;
pub mod atomic;
pub mod created_dir;
pub mod digest;
pub mod dir_check;
pub mod download_dir;
pub mod error;
pub mod hook;
pub mod lock;
pub mod model;
pub mod network;
#[cfg(feature = "p2p")]
pub mod p2p;
pub mod p2p_policy;
pub mod plugin;
pub mod ranking;
pub mod registry;
pub mod remove_tree;
pub mod small_file;
pub mod unpack;

pub use error::{MarketplaceError, Result, error_chain, excerpt};
pub use model::{MAX_TARBALL, Package, PackageVersion, Query, RegistryMetadata, SearchResults};
pub use registry::Registry;
