//! Explaining a failed resolution in the words of package.json.
//!
//! PubGrub's own report is a proof ("Because x depends on base >=1.0.0,
//! <2.0.0 and ... your request is forbidden"): exact, but it speaks in
//! ranges and puts the package at fault in the middle of a paragraph. Users
//! need the package no version fits, the requirements as they wrote them,
//! who asked for each, and which versions exist. The proof is still logged
//! (`-v`) for the cases this summary cannot name.

use std::collections::{BTreeMap, HashSet};

use pubgrub::{DerivationTree, External, Ranges};
use semver::Version;

use super::{Pkg, Provider};

type Tree = DerivationTree<Pkg, Ranges<Version>, String>;

/// "Package `from` (versions `from_range`) requires `dep` in `dep_range`".
struct Edge<'t> {
    from: &'t Pkg,
    from_range: &'t Ranges<Version>,
    dep: &'t str,
    dep_range: &'t Ranges<Version>,
}

/// How many versions an "it has ..." list shows.
const SHOWN_VERSIONS: usize = 8;

/// One line naming each package no version fits, or `None` when the tree
/// holds no such package (the caller then shows PubGrub's proof).
pub(super) fn explain(tree: &Tree, provider: &Provider) -> Option<String> {
    let mut edges = Vec::new();
    collect(tree, &mut edges);
    let mut deps: Vec<&str> = Vec::new();
    for e in &edges {
        if !deps.contains(&e.dep) {
            deps.push(e.dep);
        }
    }
    let parts: Vec<String> = deps
        .into_iter()
        .filter_map(|dep| conflict(dep, &edges, provider))
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn collect<'t>(tree: &'t Tree, edges: &mut Vec<Edge<'t>>) {
    match tree {
        DerivationTree::External(External::FromDependencyOf(from, from_range, dep, dep_range)) => {
            if let Pkg::Named(dep) = dep {
                edges.push(Edge {
                    from,
                    from_range,
                    dep,
                    dep_range,
                });
            }
        }
        DerivationTree::External(_) => {}
        DerivationTree::Derived(d) => {
            collect(&d.cause1, edges);
            collect(&d.cause2, edges);
        }
    }
}

/// Why an installed package's lower versions are out, and how to have them.
fn not_lowered(name: &str) -> String {
    format!(
        "installed, and not lowered unless you ask for versions below it, as `install {name}@VERSION`"
    )
}

/// The sentence for `dep` if no version of it satisfies its dependents:
/// the versions each dependent accepts (a union over that dependent's
/// versions, which are alternatives) are intersected across dependents.
fn conflict(dep: &str, edges: &[Edge], provider: &Provider) -> Option<String> {
    let on_dep: Vec<&Edge> = edges.iter().filter(|e| e.dep == dep).collect();
    let mut per_dependent: BTreeMap<String, Ranges<Version>> = BTreeMap::new();
    for e in &on_dep {
        let accepted = per_dependent
            .entry(e.from.to_string())
            .or_insert_with(Ranges::empty);
        *accepted = accepted.union(e.dep_range);
    }
    let wanted = per_dependent
        .values()
        .fold(Ranges::full(), |acc, r| acc.intersection(r));
    let versions: Vec<Version> = provider
        .cache
        .borrow()
        .get(dep)
        .map(|c| c.iter().map(|c| c.version.clone()).collect())
        .unwrap_or_default();
    if versions
        .iter()
        .any(|v| wanted.contains(v) && provider.allowed(dep, v))
    {
        return None;
    }

    // One entry per dependent package; its versions' requirements are alternatives.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for e in &on_dep {
        let who = match e.from {
            Pkg::Root if provider.installed.contains_key(e.dep) => {
                if provider.with_dependencies {
                    not_lowered(e.dep)
                } else {
                    "installed, and --no-dependencies leaves it as it is".into()
                }
            }
            Pkg::Root if provider.not_lowered.contains(e.dep) => not_lowered(e.dep),
            Pkg::Root if !provider.source.borrow().asked_for(e.dep) => {
                let held = (provider.requests.get(e.dep))
                    .is_some_and(|r| r.comparators.iter().all(|c| c.op == semver::Op::Exact));
                if held {
                    "installed, and update leaves it as it is".into()
                } else {
                    not_lowered(e.dep)
                }
            }
            Pkg::Named(from) if binds(from, e, provider) => format!(
                "the versions that accept {}",
                label(e.from, e.from_range, provider)
            ),
            _ => format!(
                "required by {}",
                chain(e.from, e.from_range, edges, provider)
            ),
        };
        let want = format!("{} ({who})", requirement(e, provider));
        let key = e.from.to_string();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, alts)) if alts.contains(&want) => {}
            Some((_, alts)) => alts.push(want),
            None => groups.push((key, vec![want])),
        }
    }
    // Plain requirements first, so that "either ... or ..." ends the list.
    groups.sort_by_key(|(_, alts)| alts.len() > 1);
    let wants: Vec<String> = groups
        .into_iter()
        .map(|(_, alts)| match alts.len() {
            1 => list(&alts, "or"),
            _ => format!("either {}", list(&alts, "or")),
        })
        .collect();
    let mut line = format!(
        "`{dep}` has no version that satisfies {}; ",
        list(&wants, "and")
    );
    // `versions` is newest first (the provider sorts its cache).
    match versions.len() {
        0 => line.push_str("it has no versions"),
        n => {
            let shown: Vec<String> = versions
                .iter()
                .take(SHOWN_VERSIONS)
                .map(Version::to_string)
                .collect();
            line.push_str(&format!("it has {}", shown.join(", ")));
            if n > SHOWN_VERSIONS {
                line.push_str(&format!(" and {} older", n - SHOWN_VERSIONS));
            }
        }
    }
    // `^3` does not match 3.0.0-rc.1: say how to ask for a pre-release it would.
    let release = |v: &Version| Version::new(v.major, v.minor, v.patch);
    if let Some(pre) = versions
        .iter()
        .find(|v| !provider.allowed(dep, v) && (wanted.contains(v) || wanted.contains(&release(v))))
    {
        line.push_str(&format!(
            " (a pre-release is chosen only when a requirement names one, as ={pre})"
        ));
    }
    Some(line)
}

/// Whether the edge is a binding (see `Candidate::binds`): `from` does not
/// require `e.dep`, which, installed, must accept it.
fn binds(from: &str, e: &Edge, provider: &Provider) -> bool {
    let cache = provider.cache.borrow();
    (cache.get(from).into_iter().flatten())
        .any(|c| e.from_range.contains(&c.version) && c.binds.contains_key(e.dep))
}

/// The requirement as the dependent wrote it, when its versions in the
/// edge agree on one; the solver's range otherwise.
fn requirement(e: &Edge, provider: &Provider) -> String {
    let written = match e.from {
        Pkg::Root => provider.requests.get(e.dep).map(ToString::to_string),
        Pkg::Named(from) => {
            let cache = provider.cache.borrow();
            let reqs: HashSet<String> = cache
                .get(from)
                .into_iter()
                .flatten()
                .filter(|c| e.from_range.contains(&c.version))
                .filter_map(|c| c.dependencies.get(e.dep).map(ToString::to_string))
                .collect();
            if reqs.len() == 1 {
                reqs.into_iter().next()
            } else {
                None
            }
        }
    };
    written.unwrap_or_else(|| e.dep_range.to_string())
}

/// `w@1.0.0 → x@1.0.0`: how the dependent was reached from the request.
fn chain(from: &Pkg, range: &Ranges<Version>, edges: &[Edge], provider: &Provider) -> String {
    let mut links = vec![label(from, range, provider)];
    let mut visited = HashSet::new();
    let mut at = from;
    while let Pkg::Named(name) = at {
        if !visited.insert(name.as_str()) {
            break;
        }
        let Some(parent) = edges.iter().find(|e| e.dep == name) else {
            break;
        };
        // A binding is no requirement: the chain of requirements ends here.
        if parent.from == &Pkg::Root
            || matches!(parent.from, Pkg::Named(from) if binds(from, parent, provider))
        {
            break;
        }
        links.push(label(parent.from, parent.from_range, provider));
        at = parent.from;
    }
    links.reverse();
    links.join(" → ")
}

/// `x@1.0.0` for one version, `x 1.0.0 to 1.4.0` for several.
fn label(pkg: &Pkg, range: &Ranges<Version>, provider: &Provider) -> String {
    let Pkg::Named(name) = pkg else {
        return pkg.to_string();
    };
    let cache = provider.cache.borrow();
    let inside: Vec<&Version> = cache
        .get(name)
        .map(|c| {
            c.iter()
                .map(|c| &c.version)
                .filter(|v| range.contains(v))
                .collect()
        })
        .unwrap_or_default();
    match inside.as_slice() {
        [] => format!("{name} {range}"),
        [one] => format!("{name}@{one}"),
        [newest, .., oldest] => format!("{name} {oldest} to {newest}"),
    }
}

/// "a", "a and b", "a, b and c" (or "or").
fn list(items: &[String], word: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {word} {last}", init.join(", ")),
    }
}
