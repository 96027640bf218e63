//! The marketplace's search semantics (`ggen_plugin_sdk::search`, shared with
//! every registry plugin) applied to the host's own package type, for what
//! the host ranks itself: packages learned from peers and merged results.

use ggen_plugin_sdk::search::{Matcher, OwnedFields};

use super::{PackageVersion, Query};

pub struct QueryMatcher(Matcher);

impl QueryMatcher {
    pub fn new(query: &Query) -> Self {
        Self(Matcher::new(&ggen_plugin_sdk::Query {
            text: query.text.clone(),
            categories: query.categories.clone(),
            tags: query.tags.clone(),
            limit: query.limit,
            offset: query.offset,
        }))
    }

    /// `None` when the package does not match; otherwise its relevance.
    pub fn score(&self, p: &PackageVersion) -> Option<u32> {
        let fields = OwnedFields::new(&p.name, &p.title, &p.tags, &p.description, &p.categories);
        self.0.score(fields.fields())
    }
}
