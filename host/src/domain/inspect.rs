//! `plugin inspect`: describe a component file.

use std::path::Path;

use super::{MarketplaceError, Result};
pub use crate::backend::plugin::inspect::Inspection;

pub fn inspect(path: &Path) -> Result<Inspection> {
    let source = crate::backend::plugin::WasmSource::from_file(path)?;
    crate::backend::plugin::inspect::inspect(&source.bytes, &path.display().to_string())
        .map_err(MarketplaceError::Plugin)
}
