//! Searching a registry (seeds §4.1).

use super::{Query, Registry, Result, SearchResults};

pub const DEFAULT_LIMIT: u32 = 20;

pub fn search(registry: &mut dyn Registry, query: &Query) -> Result<SearchResults> {
    registry.search(query)
}
