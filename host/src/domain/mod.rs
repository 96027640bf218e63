//! Marketplace logic (search, publish, info, installed packages), independent
//! of the CLI and of how backends are built: it talks to a `dyn Registry`.

pub mod approve;
pub mod fetch;
pub mod hooks;
pub mod info;
pub mod install;
pub mod installed;
pub mod manifest;
pub mod p2p;
pub mod p2p_install;
pub mod progress;
pub mod publish;
mod registry_source;
pub mod remove;
pub mod resolve;
pub mod search;
pub mod serving;
mod strict_json;
pub mod transaction;
pub mod unpublish;
pub mod update;
pub mod verify;

pub use crate::backend::hook::HookRunner;
pub use crate::backend::{
    MarketplaceError, Package, PackageVersion, Query, Registry, RegistryMetadata, Result,
    SearchResults, excerpt,
};
