use std::collections::BTreeMap;

use semver::{Version, VersionReq};

use super::{Candidate, Resolution, VersionSource, to_ranges};

/// [`super::resolve`] holding every installed package.
fn resolve(
    source: &mut dyn VersionSource,
    requests: &BTreeMap<String, VersionReq>,
    installed: &BTreeMap<String, Version>,
    with_dependencies: bool,
) -> Result<Resolution> {
    super::resolve(source, requests, installed, with_dependencies, |_| true)
}
use crate::domain::{MarketplaceError, Result};

/// One version: name, version, dependencies (name, requirement).
type Entry<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// An in-memory registry: `("a", "1.0.0", &[("b", "^1")])`.
struct Mem(BTreeMap<String, Vec<Candidate>>);

impl Mem {
    fn new(entries: &[Entry<'_>]) -> Self {
        let mut map: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
        for (name, version, deps) in entries {
            map.entry(name.to_string())
                .or_default()
                .push(Candidate::new(
                    Version::parse(version).unwrap(),
                    deps.iter()
                        .map(|(d, r)| (d.to_string(), VersionReq::parse(r).unwrap()))
                        .collect(),
                ));
        }
        Self(map)
    }
}

impl VersionSource for Mem {
    fn versions(&mut self, name: &str) -> Result<Vec<Candidate>> {
        Ok(self.0.get(name).cloned().unwrap_or_default())
    }
}

fn req(pairs: &[(&str, &str)]) -> BTreeMap<String, VersionReq> {
    pairs
        .iter()
        .map(|(n, r)| (n.to_string(), VersionReq::parse(r).unwrap()))
        .collect()
}

fn versions(r: &super::Resolution) -> Vec<(String, String)> {
    r.packages
        .iter()
        .map(|(n, p)| (n.clone(), p.version.to_string()))
        .collect()
}

#[test]
fn picks_the_highest_versions_satisfying_everything() {
    // Diamond: app needs left and right, which need different but overlapping base ranges.
    let mut reg = Mem::new(&[
        ("app", "1.0.0", &[("left", "^1"), ("right", "^2")]),
        ("left", "1.0.0", &[("base", ">=1.1, <1.4")]),
        ("left", "1.2.0", &[("base", ">=1.2, <1.4")]),
        ("right", "2.0.0", &[("base", "~1.2")]),
        ("right", "3.0.0", &[("base", "^2")]),
        ("base", "1.1.0", &[]),
        ("base", "1.2.5", &[]),
        ("base", "1.3.0", &[]),
        ("base", "2.0.0", &[]),
    ]);
    let r = resolve(&mut reg, &req(&[("app", "*")]), &BTreeMap::new(), true).unwrap();
    assert_eq!(
        versions(&r),
        [
            ("app", "1.0.0"),
            ("base", "1.2.5"),
            ("left", "1.2.0"),
            ("right", "2.0.0")
        ]
        .map(|(a, b)| (a.into(), b.into()))
    );
    assert_eq!(r.order.last().unwrap(), "app");
    assert_eq!(r.order[0], "base");
    assert_eq!(r.packages["app"].dependencies["right"].to_string(), "2.0.0");
}

#[test]
fn deep_chains_install_dependencies_first() {
    let names: Vec<String> = (0..30).map(|i| format!("p{i:02}")).collect();
    let deps: Vec<[(&str, &str); 1]> = names.iter().skip(1).map(|n| [(n.as_str(), "^1")]).collect();
    let mut entries: Vec<Entry<'_>> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        entries.push((
            name,
            "1.0.0",
            if i + 1 < names.len() { &deps[i] } else { &[] },
        ));
    }
    let r = resolve(
        &mut Mem::new(&entries),
        &req(&[("p00", "^1")]),
        &BTreeMap::new(),
        true,
    )
    .unwrap();
    let mut expected = names.clone();
    expected.reverse();
    assert_eq!(r.order, expected);
}

#[test]
fn no_dependencies_resolves_only_the_request() {
    let mut reg = Mem::new(&[
        ("a", "1.0.0", &[("b", "^1")]),
        ("b", "1.0.0", &[]),
        ("b", "2.0.0", &[]),
    ]);
    let r = resolve(&mut reg, &req(&[("a", "*")]), &BTreeMap::new(), false).unwrap();
    assert_eq!(r.order, ["a"]);
    assert!(r.packages["a"].dependencies.is_empty());
    // A dependency installed already is recorded (when it fits), not resolved.
    let installed = |v: &str| BTreeMap::from([("b".to_owned(), Version::parse(v).unwrap())]);
    let r = resolve(&mut reg, &req(&[("a", "*")]), &installed("1.0.0"), false).unwrap();
    assert_eq!(r.order, ["a"]);
    let b = &r.packages["a"].dependencies["b"];
    assert_eq!(b.to_string(), "1.0.0");
    let r = resolve(&mut reg, &req(&[("a", "*")]), &installed("2.0.0"), false).unwrap();
    assert!(r.packages["a"].dependencies.is_empty());
}

#[test]
fn a_request_goes_highest_whatever_the_names_of_installed_packages() {
    // The newer top needs a newer base than the installed one. Installed
    // packages were decided first when their names sorted first, so `zapp`
    // stayed at 1.0.0 where `app` moved.
    for top in ["app", "zapp"] {
        let mut reg = Mem::new(&[
            ("base", "1.0.0", &[]),
            ("base", "1.2.0", &[]),
            (top, "1.0.0", &[("base", "^1")]),
            (top, "1.1.0", &[("base", "^1.2")]),
        ]);
        let installed = BTreeMap::from([
            ("base".to_owned(), Version::new(1, 0, 0)),
            (top.to_owned(), Version::new(1, 0, 0)),
        ]);
        let r = resolve(&mut reg, &req(&[(top, "*")]), &installed, true).unwrap();
        let got: BTreeMap<String, String> = versions(&r).into_iter().collect();
        assert_eq!(
            (got["base"].as_str(), got[top].as_str()),
            ("1.2.0", "1.1.0"),
            "{top}"
        );
    }
}

#[test]
fn no_dependencies_never_breaks_an_installed_dependent() {
    let mut reg = Mem::new(&[
        ("lib", "1.0.0", &[]),
        ("lib", "2.0.0", &[]),
        ("lib", "2.1.0", &[]),
        ("app", "1.0.0", &[("lib", "^2")]),
    ]);
    let installed = BTreeMap::from([
        ("app".to_owned(), Version::new(1, 0, 0)),
        ("lib".to_owned(), Version::new(2, 0, 0)),
    ]);
    let err = resolve(&mut reg, &req(&[("lib", "=1.0.0")]), &installed, false).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("^2 (required by app@1.0.0)") && text.contains("=1.0.0"),
        "{text}"
    );
    // What the dependent allows goes through, and only the request moves.
    let r = resolve(&mut reg, &req(&[("lib", "*")]), &installed, false).unwrap();
    assert_eq!(versions(&r), [("lib".to_owned(), "2.1.0".to_owned())]);
}

#[test]
fn cycles_are_reported_with_the_whole_chain() {
    let mut reg = Mem::new(&[
        ("a", "1.0.0", &[("b", "^1")]),
        ("b", "1.0.0", &[("c", "^1")]),
        ("c", "1.0.0", &[("a", "^1")]),
    ]);
    let err = resolve(&mut reg, &req(&[("a", "*")]), &BTreeMap::new(), true).unwrap_err();
    assert!(matches!(err, MarketplaceError::Dependency(_)));
    assert_eq!(
        err.to_string(),
        "dependency error: dependency cycle: a → b → c → a"
    );
}

#[test]
fn missing_dependencies_name_who_needs_them() {
    let mut reg = Mem::new(&[("a", "1.0.0", &[("ghost", "^1")])]);
    let err = resolve(&mut reg, &req(&[("a", "*")]), &BTreeMap::new(), true)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "missing dependency: package `ghost` (required by a@1.0.0) is not in the registry"
    );
    let err = resolve(&mut reg, &req(&[("nope", "*")]), &BTreeMap::new(), true)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("package `nope` is not in the registry; check the name"),
        "{err}"
    );
}

#[test]
fn a_version_with_a_missing_dependency_is_left_out_for_an_older_one() {
    // The newest a cannot be installed: the one before it is (it stopped
    // `install a` and `update --all` cold).
    let mut reg = Mem::new(&[
        ("a", "1.0.0", &[]),
        ("a", "2.0.0", &[("ghost", "^1")]),
        ("b", "1.0.0", &[("a", "^2")]),
        ("a", "1.6.0", &[("z", "^2")]),
        ("z", "1.0.0", &[]),
        ("c", "1.0.0", &[("a", ">=1.5")]),
    ]);
    let r = resolve(&mut reg, &req(&[("a", "*")]), &BTreeMap::new(), true).unwrap();
    assert_eq!(r.packages["a"].version, Version::new(1, 0, 0));
    // Nothing else fits: the missing dependency is the reason.
    let err = resolve(&mut reg, &req(&[("b", "*")]), &BTreeMap::new(), true)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "missing dependency: package `ghost` (required by a@2.0.0) is not in the registry"
    );
    // A conflict besides: both are named.
    let err = resolve(&mut reg, &req(&[("c", "*")]), &BTreeMap::new(), true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`z` has no version that satisfies ^2 (required by c@1.0.0 → a@1.6.0)")
            && err
                .ends_with("left out: a@2.0.0 (it requires `ghost`, which is not in the registry)"),
        "{err}"
    );
}

#[test]
fn conflicts_name_the_package_the_requirements_and_the_versions() {
    let mut reg = Mem::new(&[
        ("a", "1.0.0", &[("base", "^1")]),
        ("a", "1.1.0", &[("base", "~1.1")]),
        ("b", "1.0.0", &[("base", "^2")]),
        ("top", "1.0.0", &[("a", "^1"), ("b", "^1")]),
        ("base", "1.0.0", &[]),
        ("base", "1.1.0", &[]),
        ("base", "2.0.0", &[]),
        ("base", "3.0.0-rc.1", &[]),
    ]);
    let mut fails = |request: &[(&str, &str)]| {
        resolve(&mut reg, &req(request), &BTreeMap::new(), true)
            .unwrap_err()
            .to_string()
    };
    let prefix = "dependency error: no versions satisfy the requirements: ";
    let versions = "it has 3.0.0-rc.1, 2.0.0, 1.1.0, 1.0.0";
    assert_eq!(
        fails(&[("a", "=1.0.0"), ("b", "*")]),
        format!(
            "{prefix}`base` has no version that satisfies ^1 (required by a@1.0.0) \
             and ^2 (required by b@1.0.0); {versions}"
        )
    );
    // Alternatives of one dependent, and the path from the request to each.
    assert_eq!(
        fails(&[("top", "*")]),
        format!(
            "{prefix}`base` has no version that satisfies ^2 (required by top@1.0.0 → b@1.0.0) \
             and either ^1 (required by top@1.0.0 → a@1.0.0) \
             or ~1.1 (required by top@1.0.0 → a@1.1.0); {versions}"
        )
    );
    assert_eq!(
        fails(&[("base", "^4")]),
        format!(
            "{prefix}`base` has no version that satisfies ^4 (required by your request); {versions}"
        )
    );
    assert_eq!(
        fails(&[("base", "^3")]),
        format!(
            "{prefix}`base` has no version that satisfies ^3 (required by your request); \
             {versions} (a pre-release is chosen only when a requirement names one, as =3.0.0-rc.1)"
        )
    );
}

#[test]
fn long_version_lists_are_cut() {
    let names: Vec<String> = (0..12).map(|i| format!("1.{i}.0")).collect();
    let entries: Vec<Entry<'_>> = names
        .iter()
        .map(|v| ("many", v.as_str(), &[][..]))
        .collect();
    let mut reg = Mem::new(&entries);
    let err = resolve(&mut reg, &req(&[("many", "^2")]), &BTreeMap::new(), true)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with(
            "it has 1.11.0, 1.10.0, 1.9.0, 1.8.0, 1.7.0, 1.6.0, 1.5.0, 1.4.0 and 4 older"
        ),
        "{err}"
    );
}

#[test]
fn prereleases_only_when_asked_for() {
    let mut reg = Mem::new(&[
        ("a", "1.0.0", &[]),
        ("a", "1.1.0-beta.1", &[]),
        ("a", "2.0.0-rc.1", &[]),
    ]);
    assert_eq!(
        resolve(&mut reg, &req(&[("a", "^1")]), &BTreeMap::new(), true)
            .unwrap()
            .packages["a"]
            .version
            .to_string(),
        "1.0.0"
    );
    assert_eq!(
        resolve(&mut reg, &req(&[("a", "*")]), &BTreeMap::new(), true)
            .unwrap()
            .packages["a"]
            .version
            .to_string(),
        "1.0.0"
    );
    let r = resolve(
        &mut reg,
        &req(&[("a", "=2.0.0-rc.1")]),
        &BTreeMap::new(),
        true,
    )
    .unwrap();
    assert_eq!(r.packages["a"].version.to_string(), "2.0.0-rc.1");
    // Asked for by one, a pre-release still does not fit another's range
    // it sorts into (`^1` held 2.0.0-rc.1 once it had been named).
    let mut reg = Mem::new(&[
        ("a", "1.0.0", &[]),
        ("a", "2.0.0-rc.1", &[]),
        ("mid", "1.0.0", &[("a", "^1")]),
    ]);
    let both = req(&[("a", "=2.0.0-rc.1"), ("mid", "*")]);
    assert!(resolve(&mut reg, &both, &BTreeMap::new(), true).is_err());

    // Named alone, a package with only pre-releases gets the newest (as
    // search shows it); as a dependency, or under a range, it does not.
    let mut reg = Mem::new(&[
        ("pre", "0.1.0-alpha.1", &[]),
        ("pre", "0.2.0-alpha.1", &[]),
        ("user", "1.0.0", &[("pre", "*")]),
    ]);
    let picked = |reg: &mut Mem, r: &str| {
        resolve(reg, &req(&[("pre", r)]), &BTreeMap::new(), true)
            .map(|r| r.packages["pre"].version.to_string())
    };
    assert_eq!(picked(&mut reg, "*").unwrap(), "0.2.0-alpha.1");
    assert!(picked(&mut reg, "^0.2").is_err());
    assert!(resolve(&mut reg, &req(&[("user", "*")]), &BTreeMap::new(), true).is_err());
}

#[test]
fn ranges_agree_with_the_semver_crate() {
    let reqs = [
        "^1.2.3",
        "^1.2",
        "^1",
        "^0.2.3",
        "^0.2",
        "^0.0.3",
        "^0.0",
        "^0",
        "~1.2.3",
        "~1.2",
        "~1",
        "=1.2.3",
        "=1.2",
        "=1",
        ">1.2.3",
        ">1.2",
        ">1",
        ">=1.2.3",
        ">=1.2",
        "<1.2.3",
        "<1.2",
        "<=1.2.3",
        "<=1.2",
        "<=1",
        "*",
        "1.*",
        "1.2.*",
        ">=1.1, <1.4",
        "1.2.3",
        "0.2",
        "=1.2.3+other",
        ">1.2.3+other",
        "<=1.2.3+other",
    ];
    let mut probes = Vec::new();
    for major in 0..3 {
        for minor in 0..4 {
            for patch in 0..5 {
                probes.push(Version::new(major, minor, patch));
                // Requirements ignore build metadata.
                probes.push(Version::parse(&format!("{major}.{minor}.{patch}+build.7")).unwrap());
            }
        }
    }
    for text in reqs {
        let req = VersionReq::parse(text).unwrap();
        let ranges = to_ranges(&req);
        for v in &probes {
            assert_eq!(ranges.contains(v), req.matches(v), "{text} vs {v}");
        }
    }
}

#[test]
fn ranges_at_the_largest_versions_agree_too() {
    // Bumping a component of u64::MAX overflowed (a panic in debug builds,
    // an empty range in release ones).
    const M: u64 = u64::MAX;
    let reqs = [
        format!("{M}"),
        format!("^{M}.0.0-rc.1"),
        format!("~1.{M}"),
        format!("=1.{M}"),
        format!("^0.{M}"),
        format!("^0.0.{M}"),
        format!("<=1.0.{M}"),
        format!(">1.0.{M}"),
        format!(">{M}.{M}.{M}"),
        format!("<={M}.{M}.{M}"),
        format!("={M}.{M}.{M}"),
        format!("~{M}.{M}"),
    ];
    let mut probes = vec![Version::new(1, 0, 0), Version::new(2, 0, 0)];
    for (a, b, c) in [
        (M, 0, 0),
        (1, M, 0),
        (1, M, M),
        (0, M, 5),
        (0, 0, M),
        (1, 0, M),
        (M, M, M),
    ] {
        probes.push(Version::new(a, b, c));
        probes.push(Version::parse(&format!("{a}.{b}.{c}+b")).unwrap());
    }
    probes.push(Version::new(1, 1, 0));
    // (Pre-releases are kept out by the resolver, not by the ranges: as in
    // the test above, only releases are probed.)
    for text in &reqs {
        let req = VersionReq::parse(text).unwrap();
        let ranges = to_ranges(&req);
        for v in &probes {
            assert_eq!(ranges.contains(v), req.matches(v), "{text} vs {v}");
        }
    }
}

#[test]
fn a_bound_version_goes_in_only_beside_the_versions_it_binds() {
    // p (installed at 1.0.0) accepts d 2 only from 1.1.0 on: d 2 binds p
    // there, so p moves up for it; held at 1.0.0, the request cannot take d 2.
    let mut reg = Mem::new(&[
        ("p", "1.0.0", &[]),
        ("p", "1.1.0", &[]),
        ("d", "1.0.0", &[]),
        ("d", "2.0.0", &[]),
    ]);
    let d2 = (reg.0.get_mut("d").unwrap().iter_mut())
        .find(|c| c.version == Version::new(2, 0, 0))
        .unwrap();
    d2.binds.insert("p".into(), vec![Version::new(1, 1, 0)]);
    let installed = BTreeMap::from([("p".to_string(), Version::new(1, 0, 0))]);
    let r = resolve(&mut reg, &req(&[("d", "^2")]), &installed, true).unwrap();
    assert_eq!(r.packages["p"].version, Version::new(1, 1, 0));
    // Binding is not depending: nothing records d as needing p.
    assert!(r.packages["d"].dependencies.is_empty());
    let r = resolve(&mut reg, &req(&[("d", "*")]), &installed, false).unwrap();
    assert_eq!(r.packages["d"].version, Version::new(1, 0, 0));
    assert!(resolve(&mut reg, &req(&[("d", "^2")]), &installed, false).is_err());
}
