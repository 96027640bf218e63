//! The marketplace's search semantics (`ggen_plugin_sdk::search`, shared with
//! every registry plugin) applied to the host's own package type, for what
//! the host ranks itself: packages learned from peers and merged results.

use ggen_plugin_sdk::search::{Fields, Matcher, join_lower};

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
        let (name, title, description) = (
            p.name.to_lowercase(),
            p.title.to_lowercase(),
            p.description.to_lowercase(),
        );
        let (tags, categories) = (join_lower(&p.tags), join_lower(&p.categories));
        self.0.score(Fields {
            name: name.as_bytes(),
            title: title.as_bytes(),
            description: description.as_bytes(),
            tags: tags.as_bytes(),
            categories: categories.as_bytes(),
        })
    }
}
