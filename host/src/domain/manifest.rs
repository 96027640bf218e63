//! package.json: reading and validating a package's manifest.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{MarketplaceError, Result, excerpt};

const MAX_VERSION_LEN: usize = 128;

pub const MANIFEST_FILE: &str = "package.json";
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// A validated manifest, plus the original JSON object (unknown fields such as
/// `hooks` are kept when it is published).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    pub version: semver::Version,
    pub title: String,
    pub description: String,
    pub categories: Vec<String>,
    pub tags: Vec<String>,
    pub authors: Vec<String>,
    pub license: Option<String>,
    pub dependencies: BTreeMap<String, semver::VersionReq>,
    /// Post-install hooks, as declared (`builtin:<name>` or a path in the package).
    pub hooks: Vec<String>,
    pub raw: Map<String, Value>,
}

#[derive(Deserialize)]
struct Fields {
    name: Option<String>,
    version: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    authors: Vec<String>,
    #[serde(default)]
    license: Option<String>,
    #[serde(default)]
    dependencies: BTreeMap<String, String>,
}

/// The package.json an install staged, as a JSON object; None when the
/// tarball has none. Not validated as a manifest (the registry's metadata
/// is what installs), only read: the error says what is wrong with it.
pub fn read_staged(
    dir: &Path,
) -> std::result::Result<Option<serde_json::Map<String, serde_json::Value>>, String> {
    let path = dir.join(MANIFEST_FILE);
    let text = match crate::backend::small_file::read_to_string(&path, MAX_MANIFEST_BYTES) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot be read ({e})")),
    };
    match serde_json::from_str(without_bom(&text)) {
        Ok(serde_json::Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err("is not a JSON object".into()),
        Err(e) => Err(format!("is not valid JSON ({e})")),
    }
}

/// Read `<dir>/package.json` and validate it.
pub fn load(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let invalid =
        |what: String| MarketplaceError::Validation(format!("{}: {what}", path.display()));
    let meta = std::fs::metadata(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => MarketplaceError::Validation(format!(
            "no {MANIFEST_FILE} in {}; create one with at least \"name\" and \"version\"",
            dir.display()
        )),
        _ => MarketplaceError::storage(format!("cannot read {}", path.display()), e),
    })?;
    if !meta.is_file() {
        return Err(invalid(
            "is not a file; package.json must be a JSON file".into(),
        ));
    }
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(invalid(format!(
            "is {} bytes; the limit is 1 MiB",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| invalid(format!("cannot be read as UTF-8 text ({e})")))?;
    parse(&text).map_err(invalid)
}

/// Editors on Windows may start the file with a byte-order mark: publish
/// takes it, so install must too.
fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Parse and validate manifest text; the error names the offending field.
pub fn parse(text: &str) -> std::result::Result<Manifest, String> {
    let value = super::strict_json::from_str(without_bom(text))
        .map_err(|e| format!("not valid JSON ({e})"))?;
    let Value::Object(raw) = value else {
        return Err("must be a JSON object".into());
    };
    let fields: Fields = serde_json::from_value(Value::Object(raw.clone())).map_err(|e| {
        // serde does not say which field had the wrong type: find it.
        let field = raw.iter().find(|&(key, value)| {
            let one = Map::from_iter([(key.clone(), value.clone())]);
            serde_json::from_value::<Fields>(Value::Object(one)).is_err()
        });
        match field {
            Some((key, _)) => format!("\"{key}\": {e}"),
            None => e.to_string(),
        }
    })?;
    let name = fields.name.ok_or("missing \"name\"")?;
    validate_name(&name).map_err(|e| format!("\"name\": {e}"))?;
    let version_text = fields.version.ok_or("missing \"version\"")?;
    // It names a directory and a file in registries: keep it well within
    // what filesystems accept.
    if version_text.len() > MAX_VERSION_LEN {
        return Err(format!(
            "\"version\": `{}` is longer than {MAX_VERSION_LEN} characters",
            excerpt(&version_text, 64)
        ));
    }
    let version = semver::Version::parse(&version_text).map_err(|e| {
        format!(
            "\"version\": `{}` is not a semver version like 1.2.3 ({e})",
            excerpt(&version_text, 64)
        )
    })?;
    check_texts(
        fields.title.as_deref().unwrap_or_default(),
        fields.description.as_deref().unwrap_or_default(),
        fields.license.as_deref().unwrap_or_default(),
        &fields.tags,
        &fields.categories,
        &fields.authors,
        fields.dependencies.len(),
    )?;
    let mut dependencies = BTreeMap::new();
    for (dep, req) in fields.dependencies {
        validate_name(&dep).map_err(|e| format!("\"dependencies\": {e}"))?;
        if dep == name {
            return Err(format!("\"dependencies\": `{name}` depends on itself"));
        }
        let parsed = semver::VersionReq::parse(&req).map_err(|e| {
            format!(
                "\"dependencies\".{dep}: `{}` is not a semver requirement such as ^1.2 ({e})",
                excerpt(&req, 64)
            )
        })?;
        dependencies.insert(dep, parsed);
    }
    let hooks = super::hooks::declared(&raw)?;
    super::hooks::check_variables(&raw)?;
    Ok(Manifest {
        hooks,
        title: fields
            .title
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| name.clone()),
        name,
        version,
        description: fields.description.unwrap_or_default(),
        categories: fields.categories,
        tags: fields.tags,
        authors: fields.authors,
        license: fields.license,
        dependencies,
        raw,
    })
}

use crate::backend::model::check_texts;
pub use crate::backend::model::validate_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_full_manifest_and_keeps_unknown_fields() {
        let m = parse(r#"{"name":"rust-web","version":"1.2.0","dependencies":{"base":"^1.0"},"hooks":{"post-install":"h.wasm"}}"#)
            .unwrap();
        assert_eq!(m.name, "rust-web");
        assert_eq!(m.title, "rust-web");
        assert_eq!(m.dependencies["base"].to_string(), "^1.0");
        assert!(m.raw.contains_key("hooks"));
    }

    #[test]
    fn rejects_bad_names_versions_and_requirements() {
        for (text, needle) in [
            (r#"{"version":"1.0.0"}"#, "missing \"name\""),
            (
                r#"{"name":"Bad","version":"1.0.0"}"#,
                "has uppercase letters",
            ),
            (r#"{"name":"a/b","version":"1.0.0"}"#, "contains `/`"),
            // Escaped: shown as itself, a newline read as a space.
            (
                r#"{"name":"a\nb","version":"1.0.0"}"#,
                "`a\\nb` contains `\\n`",
            ),
            (r#"{"name":"..","version":"1.0.0"}"#, "must start with"),
            (r#"{"name":"ok","version":"1.0"}"#, "not a semver version"),
            (
                r#"{"name":"ok","version":"1.0.0","dependencies":{"x":"not a req"}}"#,
                "not a semver requirement",
            ),
            // Published, then refused by the render hook on every install.
            (
                r#"{"name":"ok","version":"1.0.0","variables":["a"]}"#,
                "\"variables\" must be an object of strings",
            ),
            (
                r#"{"name":"ok","version":"1.0.0","variables":{"port":8080}}"#,
                "\"variables\".port must be a string",
            ),
            (
                r#"{"name":"ok","version":"1.0.0","variables":{"a b":"x"}}"#,
                "`a b` is not a variable name",
            ),
            (
                r#"{"name":"ok","version":"1.0.0","tags":"web"}"#,
                "invalid type",
            ),
            ("[1]", "JSON object"),
            (
                r#"{"name":"ok","version":"1.0.0","version":"9.0.0"}"#,
                "duplicate key \"version\"",
            ),
            ("{", "not valid JSON"),
            // What peers would drop is refused here (it published, and every
            // peer then rejected the record and penalised the publisher).
            (
                r#"{"name":"ok","version":"1.0.0","title":"a\u001b[31m"}"#,
                "\"title\" must be at most 256 bytes of printable text",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn texts_past_the_limits_peers_enforce_are_refused() {
        let big = |field: &str, value: Value| {
            let mut m = serde_json::json!({"name": "ok", "version": "1.0.0"});
            m[field] = value;
            parse(&m.to_string()).map(|_| ()).unwrap_err()
        };
        let many = |n: usize| Value::from((0..n).map(|i| format!("t{i}")).collect::<Vec<_>>());
        assert!(
            big("description", "x".repeat(8193).into())
                .contains("\"description\" is 8193 bytes; the limit is 8192")
        );
        assert!(big("title", "x".repeat(257).into()).contains("\"title\""));
        assert!(big("tags", many(65)).contains("\"tags\" has 65 entries; the limit is 64"));
        assert!(big("authors", Value::from(vec!["a".repeat(129)])).contains("\"authors\""));
        for tag in ["", "  ", &"t".repeat(65)] {
            let err = big("tags", Value::from(vec![tag]));
            assert!(
                err.contains("\"tags\": `") && err.contains("must be 1-64 bytes"),
                "{err}"
            );
            assert_eq!(err.contains("is blank"), tag.trim().is_empty(), "{err}");
        }
        assert!(big("categories", Value::from(vec![""])).contains("\"categories\""));
        for license in ["MIT\u{1b}[31m".to_owned(), "x".repeat(129)] {
            assert!(big("license", license.into()).contains("\"license\" must be at most 128"));
        }
        assert!(
            parse(r#"{"name": "ok", "version": "1.0.0", "license": "MIT OR Apache-2.0"}"#).is_ok()
        );
        let deps: Map<String, Value> = (0..129)
            .map(|i| (format!("d{i}"), Value::from("^1")))
            .collect();
        assert!(big("dependencies", deps.into()).contains("the limit is 128"));
    }
}
