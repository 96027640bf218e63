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
/// backend can match straight out of a binary index).
///
/// Name, title, tags (joined with [`LIST_SEP`]) and description lie back to
/// back in `text`, in ranking order: a term's first occurrence that stays
/// inside one field is its best tier, so one substring search per term
/// scores a package.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    pub text: &'a [u8],
    /// Where name, title and tags end in `text` (the description runs to its end).
    pub ends: [usize; 3],
    /// Joined with [`LIST_SEP`]; filtered on, not searched.
    pub categories: &'a [u8],
}

impl<'a> Fields<'a> {
    /// `None` when `ends` do not fit `text` (a damaged index).
    pub fn new(text: &'a [u8], ends: [usize; 3], categories: &'a [u8]) -> Option<Self> {
        (ends[0] <= ends[1] && ends[1] <= ends[2] && ends[2] <= text.len()).then_some(Self {
            text,
            ends,
            categories,
        })
    }

    pub fn name(&self) -> &'a [u8] {
        &self.text[..self.ends[0]]
    }

    pub fn tags(&self) -> &'a [u8] {
        &self.text[self.ends[1]..self.ends[2]]
    }

    /// The end of the field holding byte `at`, and that field's tier.
    fn field_at(&self, at: usize) -> (usize, u32) {
        match self.ends.iter().position(|&end| at < end) {
            Some(0) => (self.ends[0], NAME_CONTAINS),
            Some(1) => (self.ends[1], IN_TITLE),
            Some(_) => (self.ends[2], IN_TAGS),
            None => (self.text.len(), IN_DESCRIPTION),
        }
    }
}

/// [`Fields`] built from a package's strings.
#[derive(Debug, Clone, Default)]
pub struct OwnedFields {
    pub text: Vec<u8>,
    pub ends: [usize; 3],
    pub categories: Vec<u8>,
}

impl OwnedFields {
    pub fn new(
        name: &str,
        title: &str,
        tags: &[String],
        description: &str,
        categories: &[String],
    ) -> Self {
        let mut text = fold(name).into_bytes();
        let name_end = text.len();
        text.extend_from_slice(fold(title).as_bytes());
        let title_end = text.len();
        text.extend_from_slice(join_lower(tags).as_bytes());
        let tags_end = text.len();
        text.extend_from_slice(fold(description).as_bytes());
        Self {
            text,
            ends: [name_end, title_end, tags_end],
            categories: join_lower(categories).into_bytes(),
        }
    }

    pub fn fields(&self) -> Fields<'_> {
        Fields {
            text: &self.text,
            ends: self.ends,
            categories: &self.categories,
        }
    }
}

impl Matcher {
    pub fn new(query: &Query) -> Self {
        let whole = fold(query.text.trim());
        let terms: Vec<Finder<'static>> = whole
            .split_whitespace()
            .map(|t| Finder::new(t.as_bytes()).into_owned())
            .collect();
        let lower = |v: &[String]| v.iter().map(|s| fold(s.trim()).into_bytes()).collect();
        Self {
            terms,
            whole: whole.into_bytes(),
            categories: lower(&query.categories),
            tags: lower(&query.tags),
        }
    }

    /// The lowercase search terms: a package matches only if its fields
    /// contain every one (a backend may use them to rule packages out early).
    pub fn terms(&self) -> impl Iterator<Item = &[u8]> {
        self.terms.iter().map(|t| t.needle())
    }

    /// `None` when the package does not match; otherwise its relevance.
    pub fn score(&self, f: Fields<'_>) -> Option<u32> {
        if !self.categories.iter().all(|c| in_list(f.categories, c))
            || !self.tags.iter().all(|t| in_list(f.tags(), t))
        {
            return None;
        }
        let name = f.name();
        let mut score = if !self.whole.is_empty() && name == self.whole.as_slice() {
            EXACT_NAME
        } else {
            0
        };
        for term in &self.terms {
            score += if name.starts_with(term.needle()) {
                NAME_PREFIX
            } else {
                best_tier(term, f)?
            };
        }
        Some(score)
    }
}

/// The tier of `term`'s first occurrence inside a single field of `f`.
fn best_tier(term: &Finder<'_>, f: Fields<'_>) -> Option<u32> {
    let len = term.needle().len();
    let mut from = 0;
    loop {
        let at = from + term.find(f.text.get(from..)?)?;
        let (end, tier) = f.field_at(at);
        if at + len <= end {
            return Some(tier);
        }
        // It runs into the next field: not a match in either.
        from = at + 1;
    }
}

fn in_list(joined: &[u8], wanted: &[u8]) -> bool {
    !joined.is_empty() && joined.split(|&b| b == LIST_SEP as u8).any(|x| x == wanted)
}

/// `text` case-folded for matching: lowercase, except that every sigma
/// becomes `σ` (`str::to_lowercase` writes a word-final one as `ς`, so the
/// query "ΟΔΟΣ" missed "ΟΔΟΣΤΡΩΜΑ", and a tag written `οδοσ` missed `ΟΔΟΣ`).
pub fn fold(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            'ς' => out.push('σ'),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Fold a list (see [`fold`]) and join it with [`LIST_SEP`].
pub fn join_lower(items: &[String]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(LIST_SEP);
        }
        out.push_str(&fold(item));
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

/// The version search shows for a package: the newest stable one, as an
/// install without a version picks it; the newest pre-release only when
/// there is no stable version.
pub fn newest(package: &Package) -> Option<&PackageVersion> {
    package
        .versions
        .iter()
        .max_by_key(|v| preference(&v.version))
}

/// Orders versions as [`newest`] prefers them: stable above pre-release,
/// then by semver; unparseable versions lowest.
pub fn preference(version: &str) -> Option<(bool, semver::Version)> {
    semver::Version::parse(version)
        .ok()
        .map(|v| (v.pre.is_empty(), v))
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
        let fields = OwnedFields::new(
            &latest.name,
            &latest.title,
            &latest.tags,
            &latest.description,
            &latest.categories,
        );
        if let Some(score) = matcher.score(fields.fields()) {
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

    fn fields(name: &str, title: &str, desc: &str, tags: &str) -> OwnedFields {
        let tags: Vec<String> = tags.split(LIST_SEP).map(String::from).collect();
        let categories = ["web".to_owned(), "cli".to_owned()];
        OwnedFields::new(name, title, &tags, desc, &categories)
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
    fn case_folds_the_same_in_queries_and_packages() {
        // A word-final capital sigma lowercases to ς; inside a word to σ.
        let road = fields("road", "", "ΟΔΟΣΤΡΩΜΑ", "");
        assert!(Matcher::new(&q("ΟΔΟΣ")).score(road.fields()).is_some());
        assert!(
            Matcher::new(&q("ÄPFEL"))
                .score(fields("äpfel", "", "", "").fields())
                .is_some()
        );
        let mut tagged = q("");
        tagged.tags = vec!["ΟΔΟΣ".into()];
        for tag in ["οδοσ", "οδος", "ΟΔΟΣ"] {
            let f = fields("t", "", "", tag);
            assert!(Matcher::new(&tagged).score(f.fields()).is_some(), "{tag}");
        }
        assert_eq!(fold("Rust-CLI"), "rust-cli");
    }

    #[test]
    fn tiers_follow_the_documented_order() {
        let m = Matcher::new(&q("Rust"));
        let exact = m.score(fields("rust", "", "", "").fields()).unwrap();
        let prefix = m.score(fields("rust-web", "", "", "").fields()).unwrap();
        let contains = m.score(fields("my-rust", "", "", "").fields()).unwrap();
        let title = m
            .score(fields("x", "a rust thing", "", "").fields())
            .unwrap();
        let tags = m
            .score(fields("x", "", "", "web\u{1f}rust").fields())
            .unwrap();
        let desc = m
            .score(fields("x", "", "written in rust", "").fields())
            .unwrap();
        assert!(
            exact > prefix && prefix > contains && contains > title && title > tags && tags > desc
        );
        assert_eq!(m.score(fields("python", "", "", "").fields()), None);
    }

    #[test]
    fn every_term_must_match_and_filters_are_exact() {
        let m = Matcher::new(&q("web rust"));
        assert!(m.score(fields("rust-web", "", "", "").fields()).is_some());
        assert!(m.score(fields("rust", "", "", "").fields()).is_none());
        let mut query = q("");
        query.categories = vec!["CLI".into()];
        assert!(
            Matcher::new(&query)
                .score(fields("a", "", "", "").fields())
                .is_some()
        );
        query.categories = vec!["cl".into()];
        assert!(
            Matcher::new(&query)
                .score(fields("a", "", "", "").fields())
                .is_none()
        );
    }

    #[test]
    fn the_best_field_wins_and_no_match_spans_two_fields() {
        let m = Matcher::new(&q("rust"));
        let in_title = m.score(fields("x", "rust", "rust", "rust").fields());
        assert_eq!(in_title, m.score(fields("x", "rust", "", "").fields()));
        let in_tags = m.score(fields("x", "", "rust", "rust").fields());
        assert_eq!(in_tags, m.score(fields("x", "", "", "rust").fields()));
        assert!(in_title > in_tags);
        // "ru" ending the name and "st" starting the title is not "rust".
        assert_eq!(m.score(fields("xru", "st", "", "").fields()), None);
        let desc = m.score(fields("xru", "st", "about rust", "").fields());
        assert_eq!(desc, m.score(fields("x", "", "rust", "").fields()));
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

    #[test]
    fn the_shown_version_is_the_newest_stable_one() {
        fn newest_of<'a>(versions: &[&'a str]) -> Option<&'a str> {
            versions.iter().copied().max_by_key(|v| preference(v))
        }
        assert_eq!(
            newest_of(&["1.0.0", "2.0.0-beta.1", "1.1.0"]),
            Some("1.1.0")
        );
        assert_eq!(
            newest_of(&["0.1.0-alpha", "0.1.0-beta"]),
            Some("0.1.0-beta")
        );
        assert_eq!(newest_of(&["not semver", "0.0.1-rc.1"]), Some("0.0.1-rc.1"));
        assert_eq!(newest_of(&["10.0.0", "9.9.9"]), Some("10.0.0"));
    }
}
