//! `plugin inspect`: describe a component file.

use std::path::Path;

use super::{MarketplaceError, Result};
use crate::backend::plugin::Limits;
pub use crate::backend::plugin::inspect::Inspection;

/// `plugins` and `hooks`: the limits registry and policy plugins, and
/// post-install hooks, run under.
pub fn inspect(path: &Path, plugins: Limits, hooks: Limits) -> Result<Inspection> {
    let source = crate::backend::plugin::WasmSource::from_file(path)?;
    let label = path.display().to_string();
    crate::backend::plugin::inspect::inspect(&source.bytes, &label, plugins, hooks)
        .map_err(MarketplaceError::Plugin)
}
