//! Renders a package's templates at install time: every `*.tmpl` file under
//! the package becomes the same path without `.tmpl`, with each `{{ name }}`
//! replaced by its value. Values come from, lowest precedence first: the
//! built-ins `package` and `version`, the package.json `"variables"` object
//! (defaults), and `--var name=value`. `\{{` writes a literal `{{`. A
//! placeholder without a value fails the install, naming file, line and
//! variable, so nothing half-rendered is ever installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ggen_plugin_sdk::{InstallContext, PostInstallHook, hook::PACKAGE_DIR};

struct RenderTemplates;

const SUFFIX: &str = ".tmpl";

impl PostInstallHook for RenderTemplates {
    fn run(context: InstallContext) -> Result<String, String> {
        let root = Path::new(PACKAGE_DIR);
        let vars = variables(root, &context)?;
        let mut templates = Vec::new();
        find_templates(root, &mut templates)?;
        templates.sort();
        let shown = |path: &Path| {
            path.strip_prefix(root)
                .unwrap_or(path)
                .display()
                .to_string()
        };
        // Every output is checked before anything is written.
        let mut jobs = Vec::with_capacity(templates.len());
        for path in &templates {
            let out = output_path(path).map_err(|e| format!("{}: {e}", shown(path)))?;
            if out.symlink_metadata().is_ok() {
                return Err(format!(
                    "{} renders to {}, which the package already has; rename one of them",
                    shown(path),
                    shown(&out)
                ));
            }
            jobs.push((path, out));
        }
        for (path, out) in jobs {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read template {}: {e}", shown(path)))?;
            let rendered = render(&text, &vars).map_err(|e| format!("{}:{e}", shown(path)))?;
            std::fs::write(&out, rendered)
                .map_err(|e| format!("cannot write {}: {e}", shown(&out)))?;
            std::fs::remove_file(path)
                .map_err(|e| format!("cannot remove {}: {e}", shown(path)))?;
        }
        Ok(match templates.len() {
            1 => "rendered 1 template".into(),
            n => format!("rendered {n} templates"),
        })
    }
}

/// `main.rs.tmpl` renders to `main.rs`.
fn output_path(template: &Path) -> Result<PathBuf, String> {
    let name = template
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("file name is not UTF-8")?;
    match name.strip_suffix(SUFFIX) {
        Some(stem) if !stem.is_empty() => Ok(template.with_file_name(stem)),
        _ => Err(format!(
            "a template needs a name before `{SUFFIX}`, such as main.rs{SUFFIX}"
        )),
    }
}

fn variables(root: &Path, context: &InstallContext) -> Result<BTreeMap<String, String>, String> {
    let [package, version] = ggen_plugin_sdk::names::PACKAGE_VARIABLES;
    let mut vars = BTreeMap::from([
        (package.to_owned(), context.package.clone()),
        (version.to_owned(), context.version.clone()),
    ]);
    let manifest = std::fs::read_to_string(root.join("package.json"))
        .map_err(|e| format!("cannot read package.json: {e}"))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&manifest).map_err(|e| format!("package.json: {e}"))?;
    if let Some(defaults) = manifest.get("variables") {
        let defaults = defaults
            .as_object()
            .ok_or("package.json: \"variables\" must be an object of strings")?;
        for (name, value) in defaults {
            let value = value
                .as_str()
                .ok_or_else(|| format!("package.json: \"variables\".{name} must be a string"))?;
            vars.insert(name.clone(), value.to_owned());
        }
    }
    for (name, value) in &context.variables {
        vars.insert(name.clone(), value.clone());
    }
    Ok(vars)
}

fn find_templates(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        let path = entry.path();
        if kind.is_dir() {
            find_templates(&path, out)?;
        } else if kind.is_file() && path.to_str().is_some_and(|p| p.ends_with(SUFFIX)) {
            out.push(path);
        }
    }
    Ok(())
}

/// Fill `{{ name }}` placeholders; the error starts with the line number.
fn render(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let line_of = |rest: &str| text[..text.len() - rest.len()].matches('\n').count() + 1;
    while let Some(at) = rest.find("{{") {
        if rest[..at].ends_with('\\') {
            out.push_str(&rest[..at - 1]);
            out.push_str("{{");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after.find("}}").ok_or_else(|| {
            format!(
                "{}: `{{{{` is never closed with `}}}}`",
                line_of(&rest[at..])
            )
        })?;
        let name = after[..end].trim();
        if !ggen_plugin_sdk::names::is_variable_name(name) {
            return Err(format!(
                "{}: `{{{{{}}}}}` is not a placeholder (1-64 letters, digits, `_`, `-`, `.`; write `\\{{{{` for a literal)",
                line_of(&rest[at..]),
                &after[..end]
            ));
        }
        let value = vars.get(name).ok_or_else(|| {
            format!(
                "{}: no value for `{name}`; pass --var {name}=VALUE or give a default in package.json \"variables\"",
                line_of(&rest[at..])
            )
        })?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

ggen_plugin_sdk::export_hook!(RenderTemplates);
