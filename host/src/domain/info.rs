//! Everything the registry knows about one package.

use super::{Package, Registry, Result};

pub fn info(registry: &mut dyn Registry, name: &str) -> Result<Package> {
    super::manifest::validate_name(name).map_err(super::MarketplaceError::Validation)?;
    registry.get_package(name)
}
