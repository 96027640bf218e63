//! The marketplace's search semantics, shared by every backend (and by the
//! host's native baseline) so that ranking is one piece of code.
//!
//! Matching is case-insensitive. Every whitespace-separated term must occur in
//! the name, title, description or tags. Ranking: the whole query equal to the
//! name first, then per term name prefix > name contains > title > tags >
//! description; ties by name.

use memchr::memmem::Finder;

use crate::{Package, PackageVersion, Query, SearchResults};

/// Separator used when a list of lowercase tags or categories is stored as one string.
pub const LIST_SEP: char = '\u{1f}';

const EXACT_NAME: u32 = 1000;
const NAME_PREFIX: u32 = 50;
const NAME_CONTAINS: u32 = 40;
const IN_TITLE: u32 = 30;
const IN_TAGS: u32 = 20;
const IN_DESCRIPTION: u32 = 10;

/// A compiled query.
#[derive(Debug, Clone)]
pub struct Matcher {
    whole: Vec<u8>,
    terms: Vec<Finder<'static>>,
    categories: Vec<Vec<u8>>,
    tags: Vec<Vec<u8>>,
}

/// The searchable fields of one package as lowercase UTF-8 bytes (bytes, so a
/// backend can match straight out of a binary index). Tags and categories are
/// joined with [`LIST_SEP`].
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    pub name: &'a [u8],
    pub title: &'a [u8],
    pub description: &'a [u8],
    pub tags: &'a [u8],
    pub categories: &'a [u8],
}

impl Matcher {
    pub fn new(query: &Query) -> Self {
        let whole = query.text.trim().to_lowercase();
        let terms = whole
            .split_whitespace()
            .map(|t| Finder::new(t.as_bytes()).into_owned())
            .collect();
        let lower = |v: &[String]| {
            v.iter()
                .map(|s| s.trim().to_lowercase().into_bytes())
                .collect()
        };
        Self {
            terms,
            whole: whole.into_bytes(),
            categories: lower(&query.categories),
            tags: lower(&query.tags),
        }
    }

    /// The longest search term: a package can only match if its fields contain
    /// it, so a backend may scan its whole data for this one needle first.
    pub fn prefilter(&self) -> Option<&Finder<'static>> {
        self.terms.iter().max_by_key(|t| t.needle().len())
    }

    /// `None` when the package does not match; otherwise its relevance.
    pub fn score(&self, f: Fields<'_>) -> Option<u32> {
        if !self.categories.iter().all(|c| in_list(f.categories, c))
            || !self.tags.iter().all(|t| in_list(f.tags, t))
        {
            return None;
        }
        let mut score = if !self.whole.is_empty() && f.name == self.whole {
            EXACT_NAME
        } else {
            0
        };
        for term in &self.terms {
            score += if f.name.starts_with(term.needle()) {
                NAME_PREFIX
            } else if term.find(f.name).is_some() {
                NAME_CONTAINS
            } else if term.find(f.title).is_some() {
                IN_TITLE
            } else if term.find(f.tags).is_some() {
                IN_TAGS
            } else if term.find(f.description).is_some() {
                IN_DESCRIPTION
            } else {
                return None;
            };
        }
        Some(score)
    }
}

fn in_list(joined: &[u8], wanted: &[u8]) -> bool {
    !joined.is_empty() && joined.split(|&b| b == LIST_SEP as u8).any(|x| x == wanted)
}

/// Lowercase a list and join it with [`LIST_SEP`].
pub fn join_lower(items: &[String]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(LIST_SEP);
        }
        out.push_str(&item.to_lowercase());
    }
    out
}

/// Order scored candidates (best first, ties by name) and cut the requested page.
/// Returns the total number of candidates and the page's items.
pub fn rank_page<T, K: Ord + ?Sized>(
    mut scored: Vec<(u32, T)>,
    name: impl Fn(&T) -> &K,
    offset: u32,
    limit: u32,
) -> (u64, Vec<T>) {
    let total = scored.len() as u64;
    let cmp = |a: &(u32, T), b: &(u32, T)| b.0.cmp(&a.0).then_with(|| name(&a.1).cmp(name(&b.1)));
    let end = (offset as usize)
        .saturating_add(limit as usize)
        .min(scored.len());
    if end < scored.len() && end > 0 {
        // Only the page and what precedes it need a full sort.
        scored.select_nth_unstable_by(end - 1, cmp);
        scored.truncate(end);
    }
    scored.sort_unstable_by(cmp);
    let page = scored
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|(_, t)| t)
        .collect();
    (total, page)
}

/// The newest version of a package by semver (unparseable versions sort last).
pub fn newest(package: &Package) -> Option<&PackageVersion> {
    package.versions.iter().max_by(|a, b| {
        let pa = semver::Version::parse(&a.version).ok();
        let pb = semver::Version::parse(&b.version).ok();
        pa.cmp(&pb)
    })
}

/// Search a list of packages in memory: what [`crate::Registry::search`] does
/// by default for backends that can list their packages.
pub fn search_packages(query: &Query, packages: &[Package]) -> SearchResults {
    let matcher = Matcher::new(query);
    let mut scored = Vec::new();
    for package in packages {
        let Some(latest) = newest(package) else {
            continue;
        };
        let (name, title, description) = (
            latest.name.to_lowercase(),
            latest.title.to_lowercase(),
            latest.description.to_lowercase(),
        );
        let (tags, categories) = (join_lower(&latest.tags), join_lower(&latest.categories));
        let fields = Fields {
            name: name.as_bytes(),
            title: title.as_bytes(),
            description: description.as_bytes(),
            tags: tags.as_bytes(),
            categories: categories.as_bytes(),
        };
        if let Some(score) = matcher.score(fields) {
            scored.push((score, latest));
        }
    }
    let (total, page) = rank_page(scored, |v| v.name.as_str(), query.offset, query.limit);
    SearchResults {
        total,
        hits: page.into_iter().cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(name: &'a str, title: &'a str, desc: &'a str, tags: &'a str) -> Fields<'a> {
        Fields {
            name: name.as_bytes(),
            title: title.as_bytes(),
            description: desc.as_bytes(),
            tags: tags.as_bytes(),
            categories: "web\u{1f}cli".as_bytes(),
        }
    }

    fn q(text: &str) -> Query {
        Query {
            text: text.into(),
            categories: vec![],
            tags: vec![],
            limit: 10,
            offset: 0,
        }
    }

    #[test]
    fn tiers_follow_the_documented_order() {
        let m = Matcher::new(&q("Rust"));
        let exact = m.score(fields("rust", "", "", "")).unwrap();
        let prefix = m.score(fields("rust-web", "", "", "")).unwrap();
        let contains = m.score(fields("my-rust", "", "", "")).unwrap();
        let title = m.score(fields("x", "a rust thing", "", "")).unwrap();
        let tags = m.score(fields("x", "", "", "web\u{1f}rust")).unwrap();
        let desc = m.score(fields("x", "", "written in rust", "")).unwrap();
        assert!(
            exact > prefix && prefix > contains && contains > title && title > tags && tags > desc
        );
        assert_eq!(m.score(fields("python", "", "", "")), None);
    }

    #[test]
    fn every_term_must_match_and_filters_are_exact() {
        let m = Matcher::new(&q("web rust"));
        assert!(m.score(fields("rust-web", "", "", "")).is_some());
        assert!(m.score(fields("rust", "", "", "")).is_none());
        let mut query = q("");
        query.categories = vec!["CLI".into()];
        assert!(
            Matcher::new(&query)
                .score(fields("a", "", "", ""))
                .is_some()
        );
        query.categories = vec!["cl".into()];
        assert!(
            Matcher::new(&query)
                .score(fields("a", "", "", ""))
                .is_none()
        );
    }

    #[test]
    fn rank_page_sorts_and_pages() {
        let scored = vec![(1, "d"), (5, "b"), (5, "a"), (3, "c"), (0, "e")];
        let (total, page) = rank_page(scored.clone(), |s| *s, 1, 2);
        assert_eq!(total, 5);
        assert_eq!(page, vec!["b", "c"]);
        let (_, all) = rank_page(scored, |s| *s, 0, 100);
        assert_eq!(all, vec!["a", "b", "c", "d", "e"]);
    }
}
