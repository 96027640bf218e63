//! Post-install hooks (seeds §3.3 install step 5): which hooks a package
//! declares, whether the user approved them (as pnpm 10 asks), running them
//! on the staged copy before the transaction commits, and recording what
//! they changed so `verify` can tell hook edits from later tampering.
//!
//! package.json declares them as
//! `"hooks": {"post-install": "hooks/x.wasm"}` or a list of such entries,
//! each a component path inside the package or `builtin:<name>` for a hook
//! shipped with ggen.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::installed::{FileChange, HookOutcome, HookRecord};
use super::progress::Progress;
use super::{MarketplaceError, Result};
use crate::backend::digest;
use crate::backend::hook::{HookContext, HookProgram, HookRunner, WriteQuota, Writes};
use crate::backend::plugin::contract;
use crate::backend::unpack::UnpackLimits;

pub const BUILTIN_PREFIX: &str = "builtin:";
/// Largest hook component read from a package.
const MAX_HOOK_BYTES: u64 = 64 << 20;
const MAX_HOOKS: usize = 16;

/// What the user allowed for this command.
#[derive(Debug, Clone, Default)]
pub struct HookOptions {
    /// `--allow-all-hooks`.
    pub allow_all: bool,
    /// `--allow-hooks` names plus `[hooks] allow` from config.toml.
    pub allowed: BTreeSet<String>,
    /// `--var key=value`, in order.
    pub variables: Vec<(String, String)>,
}

impl HookOptions {
    pub fn approves(&self, package: &str) -> bool {
        self.allow_all || self.allowed.contains(package)
    }
}

/// One hook of one package in a command's report.
#[derive(Debug, Clone, Serialize)]
pub struct HookReport {
    pub package: String,
    pub version: String,
    pub hook: String,
    pub outcome: HookOutcome,
    /// The hook's one-line summary (when it ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What it printed (bounded), without the package prefix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<String>,
}

/// The hooks' effect on one staged package.
pub struct HookResult {
    pub records: Vec<HookRecord>,
    /// The package's files after its hooks (the tarball's when none ran).
    pub files: BTreeMap<String, String>,
    pub changes: BTreeMap<String, FileChange>,
    pub reports: Vec<HookReport>,
}

/// The values a package's hooks get: those they last ran with (`kept`, from
/// ggen.lock) under this command's `--var` (of a name given twice, the last).
pub fn variables_for(
    kept: &BTreeMap<String, String>,
    given: &[(String, String)],
) -> BTreeMap<String, String> {
    let mut variables = kept.clone();
    variables.extend(given.iter().cloned());
    variables
}

/// What of `variables` ggen.lock keeps for the next run: not those that
/// name the installed package itself (a value given for them holds for that
/// run only, or an update would go on rendering the old version).
pub fn variables_to_keep(mut variables: BTreeMap<String, String>) -> BTreeMap<String, String> {
    use ggen_plugin_sdk::names::PACKAGE_VARIABLES;
    variables.retain(|name, _| !PACKAGE_VARIABLES.contains(&name.as_str()));
    variables
}

/// `KEY=VALUE` from `--var`.
pub fn parse_var(text: &str) -> std::result::Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    let key = key.trim();
    validate_var_name(key)?;
    Ok((key.to_owned(), value.to_owned()))
}

/// A template variable's name: what `{{ name }}` can refer to.
pub fn validate_var_name(key: &str) -> std::result::Result<(), String> {
    if !ggen_plugin_sdk::names::is_variable_name(key) {
        return Err(format!(
            "`{}` is not a variable name (1-64 letters, digits, `_`, `-`, `.`)",
            super::excerpt(&key.escape_debug().to_string(), 65)
        ));
    }
    Ok(())
}

/// Most `variables` a package.json may declare, and the longest default.
const MAX_VARIABLES: usize = 128;
const MAX_VARIABLE_BYTES: usize = 8192;

/// The package.json `variables` defaults, checked when publishing: the
/// render hook refused malformed ones only at install time, on every user's
/// machine.
pub fn check_variables(manifest: &Map<String, Value>) -> std::result::Result<(), String> {
    let Some(vars) = manifest.get("variables") else {
        return Ok(());
    };
    let vars = vars.as_object().ok_or(
        "\"variables\" must be an object of strings such as {\"project_name\": \"my-app\"}",
    )?;
    if vars.len() > MAX_VARIABLES {
        return Err(format!(
            "\"variables\" has {} entries; at most {MAX_VARIABLES} are allowed",
            vars.len()
        ));
    }
    for (name, value) in vars {
        validate_var_name(name).map_err(|e| format!("\"variables\": {e}"))?;
        let value = value
            .as_str()
            .ok_or_else(|| format!("\"variables\".{name} must be a string"))?;
        if value.len() > MAX_VARIABLE_BYTES {
            return Err(format!(
                "\"variables\".{name} is {} bytes; at most {MAX_VARIABLE_BYTES} are allowed",
                value.len()
            ));
        }
    }
    Ok(())
}

/// The post-install hooks a package.json object declares, validated.
pub fn declared(manifest: &Map<String, Value>) -> std::result::Result<Vec<String>, String> {
    let Some(hooks) = manifest.get("hooks") else {
        return Ok(Vec::new());
    };
    let hooks = hooks
        .as_object()
        .ok_or("\"hooks\" must be an object such as {\"post-install\": \"hooks/setup.wasm\"}")?;
    if let Some(other) = hooks.keys().find(|k| *k != "post-install") {
        return Err(format!(
            "\"hooks\": unknown hook kind `{other}` (ggen runs \"post-install\")"
        ));
    }
    let entries: Vec<&Value> = match hooks.get("post-install") {
        None => return Ok(Vec::new()),
        Some(Value::Array(list)) => list.iter().collect(),
        Some(single) => vec![single],
    };
    if entries.len() > MAX_HOOKS {
        return Err(format!(
            "\"hooks\": at most {MAX_HOOKS} post-install hooks per package"
        ));
    }
    entries
        .into_iter()
        .map(|v| {
            let entry = v
                .as_str()
                .ok_or("\"hooks\".post-install: each entry must be a string")?;
            validate_entry(entry).map(|()| entry.to_owned())
        })
        .collect()
}

fn validate_entry(entry: &str) -> std::result::Result<(), String> {
    if let Some(name) = entry.strip_prefix(BUILTIN_PREFIX) {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            return Err(format!("\"hooks\": `{entry}` is not a builtin hook name"));
        }
        return Ok(());
    }
    let relative = !entry.is_empty()
        && entry.len() <= 256
        && !entry.starts_with('/')
        && !entry.contains('\\')
        && entry
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if !relative {
        return Err(format!(
            "\"hooks\": `{entry}` must be a path inside the package (like hooks/setup.wasm) or builtin:<name>"
        ));
    }
    Ok(())
}

/// Run (or skip, if not approved) the hooks `dir/package.json` declares.
/// `files` are the digests the tarball unpacked to. An error means the
/// install must not commit.
#[allow(clippy::too_many_arguments)]
pub fn run_for_package(
    runner: &mut dyn HookRunner,
    dir: &Path,
    context: &HookContext,
    files: BTreeMap<String, String>,
    options: &HookOptions,
    limits: &UnpackLimits,
    progress: &dyn Progress,
) -> Result<HookResult> {
    let who = format!("{}@{}", context.package, context.version);
    let hooks = staged_hooks(dir)
        .map_err(|e| MarketplaceError::Security(format!("refusing {who}: package.json {e}")))?;
    let mut result = HookResult {
        records: Vec::new(),
        files,
        changes: BTreeMap::new(),
        reports: Vec::new(),
    };
    if hooks.is_empty() {
        return Ok(result);
    }
    // Load every hook before running the first, so the digests recorded are
    // those of the package as published.
    let programs = hooks
        .iter()
        .map(|h| load(runner, dir, h).map_err(|e| MarketplaceError::Plugin(format!("{who}: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let approved = options.approves(&context.package);
    // The package's hooks write within one allowance, together.
    let limit = Writes::from(limits);
    let mut left = limit;
    for program in &programs {
        let mut report = HookReport {
            package: context.package.clone(),
            version: context.version.clone(),
            hook: program.name.clone(),
            outcome: if approved {
                HookOutcome::Ran
            } else {
                HookOutcome::Skipped
            },
            summary: None,
            output: Vec::new(),
        };
        if approved {
            progress.note(&format!(
                "{who}: running post-install hook {}",
                program.name
            ));
            let run = runner.run(program, dir, context, WriteQuota { left, limit });
            left = left.minus(run.wrote);
            for line in &run.output {
                progress.note(&format!("[{}] {line}", context.package));
            }
            report.output = run.output;
            match run.result {
                Ok(summary) => {
                    progress.note(&format!(
                        "[{}] {}: {summary}",
                        context.package, program.name
                    ));
                    report.summary = Some(summary);
                }
                Err(why) => {
                    return Err(MarketplaceError::Plugin(format!(
                        "{who}: post-install {why}; nothing was installed"
                    )));
                }
            }
        }
        result.records.push(HookRecord {
            hook: program.name.clone(),
            digest: format!("{}{}", digest::PREFIX, program.sha256),
            outcome: report.outcome,
        });
        result.reports.push(report);
    }
    if approved {
        let after = digest::tree_within(dir, limits.max_bytes, limits.max_entries)
            .map_err(|e| MarketplaceError::storage(format!("cannot read {}", dir.display()), e))?
            .map_err(|passed| over_limits(&who, limits, passed))?;
        check_after_hooks(&who, &after)?;
        result.changes = diff(&result.files, &after.files);
        result.files = after.files;
    }
    Ok(result)
}

/// Hooks left more than an archive could hold.
fn over_limits(who: &str, limits: &UnpackLimits, passed: digest::Passed) -> MarketplaceError {
    let what = match passed {
        digest::Passed::Bytes => format!("{} MiB", limits.max_bytes >> 20),
        digest::Passed::Entries => format!("{} files and links", limits.max_entries),
    };
    MarketplaceError::Security(format!(
        "the post-install hooks of {who} left the package with more than the install limit of {what}; nothing was installed"
    ))
}

/// What hooks leave behind must be what an archive could hold: regular files
/// (a symlink to /etc planted for later tools is refused here; the limits
/// are checked as the files are read, by [`over_limits`]).
fn check_after_hooks(who: &str, after: &digest::Tree) -> Result<()> {
    if let Some((path, _)) = after
        .files
        .iter()
        .find(|(_, d)| d.as_str() == digest::NOT_A_REGULAR_FILE)
    {
        return Err(MarketplaceError::Security(format!(
            "the post-install hooks of {who} left a symlink or special file at `{path}`; hooks may only write regular files; nothing was installed"
        )));
    }
    Ok(())
}

fn diff(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> BTreeMap<String, FileChange> {
    let mut changes = BTreeMap::new();
    for (path, digest) in after {
        match before.get(path) {
            None => {
                changes.insert(path.clone(), FileChange::Created);
            }
            Some(old) if old != digest => {
                changes.insert(path.clone(), FileChange::Modified);
            }
            Some(_) => {}
        }
    }
    for path in before.keys().filter(|p| !after.contains_key(*p)) {
        changes.insert(path.clone(), FileChange::Removed);
    }
    changes
}

/// The hooks the staged package.json declares (none without a package.json).
fn staged_hooks(dir: &Path) -> std::result::Result<Vec<String>, String> {
    match super::manifest::read_staged(dir)? {
        Some(map) => declared(&map),
        None => Ok(Vec::new()),
    }
}

/// A builtin, or a component file inside the package (opened beneath `dir`
/// only: no symlink or `..` can lead elsewhere).
fn load(
    runner: &dyn HookRunner,
    dir: &Path,
    hook: &str,
) -> std::result::Result<HookProgram, String> {
    if let Some(name) = hook.strip_prefix(BUILTIN_PREFIX) {
        return runner
            .builtin(name)
            .ok_or_else(|| unknown_builtin(hook, &runner.builtins()));
    }
    read_component(dir, hook)
}

fn unknown_builtin(hook: &str, builtins: &[&str]) -> String {
    format!(
        "unknown post-install hook `{hook}`; this ggen ships {}",
        builtins
            .iter()
            .map(|b| format!("{BUILTIN_PREFIX}{b}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The hooks a package declares, checked at publish as an install will load
/// them: builtins this ggen ships (`builtins`), or post-install-hook
/// components inside `dir` among the files it packs (`packed`). A package
/// that fails here fails every install.
pub fn check_declared(
    dir: &Path,
    hooks: &[String],
    packed: &[&str],
    builtins: &[&str],
) -> std::result::Result<(), String> {
    for hook in hooks {
        match hook.strip_prefix(BUILTIN_PREFIX) {
            Some(name) if builtins.contains(&name) => {}
            Some(_) => return Err(unknown_builtin(hook, builtins)),
            None if !dir.join(hook).is_file() => {
                return Err(format!(
                    "post-install hook `{hook}` is not a file in the package; build it (cargo build --target wasm32-wasip2 --release) and copy it there"
                ));
            }
            // The manifest's check made it a `/`-separated relative path.
            None if !packed.contains(&hook.as_str()) => {
                return Err(format!(
                    "post-install hook `{hook}` is left out of the package (by `.git`, `.gitignore` or `{}`); keep it in, or move it",
                    crate::backend::archive::IGNORE_FILE
                ));
            }
            None => {
                let program = read_component(dir, hook)?;
                let label = format!("post-install hook `{hook}`");
                contract::check(&program.bytes, contract::World::PostInstallHook, &label)?;
            }
        }
    }
    Ok(())
}

/// A component file inside the package (opened beneath `dir` only: no
/// symlink or `..` can lead elsewhere).
fn read_component(dir: &Path, hook: &str) -> std::result::Result<HookProgram, String> {
    let fail = |e: std::io::Error| format!("cannot read post-install hook `{hook}`: {e}");
    let root =
        cap_std::fs::Dir::open_ambient_dir(dir, cap_std::ambient_authority()).map_err(fail)?;
    let file = root.open(hook).map_err(fail)?.into_std();
    let meta = file.metadata().map_err(fail)?;
    if let Some(why) = crate::backend::small_file::unfit(&meta, MAX_HOOK_BYTES) {
        return Err(format!(
            "post-install hook `{hook}` cannot be run: {why}; a hook is a component (.wasm) file"
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_HOOK_BYTES)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(HookProgram {
        name: hook.to_owned(),
        bytes: bytes.into(),
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(json: &str) -> std::result::Result<Vec<String>, String> {
        let Value::Object(map) = serde_json::from_str(json).unwrap() else {
            panic!()
        };
        declared(&map)
    }

    #[test]
    fn declarations_parse_and_bad_ones_are_named() {
        assert!(hooks("{}").unwrap().is_empty());
        assert_eq!(
            hooks(r#"{"hooks":{"post-install":"hooks/a.wasm"}}"#).unwrap(),
            ["hooks/a.wasm"]
        );
        assert_eq!(
            hooks(r#"{"hooks":{"post-install":["builtin:render-templates","b.wasm"]}}"#).unwrap(),
            ["builtin:render-templates", "b.wasm"]
        );
        for (json, needle) in [
            (r#"{"hooks":"x"}"#, "must be an object"),
            (r#"{"hooks":{"pre-install":"a.wasm"}}"#, "unknown hook kind"),
            (
                r#"{"hooks":{"post-install":"../a.wasm"}}"#,
                "inside the package",
            ),
            (
                r#"{"hooks":{"post-install":"/etc/a.wasm"}}"#,
                "inside the package",
            ),
            (
                r#"{"hooks":{"post-install":"a\\b.wasm"}}"#,
                "inside the package",
            ),
            (r#"{"hooks":{"post-install":[1]}}"#, "must be a string"),
            (
                r#"{"hooks":{"post-install":"builtin:Bad"}}"#,
                "not a builtin",
            ),
        ] {
            let err = hooks(json).unwrap_err();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }

    #[test]
    fn variables_parse() {
        assert_eq!(parse_var("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_var("name=").unwrap(), ("name".into(), "".into()));
        assert!(parse_var("novalue").is_err());
        assert!(parse_var("bad key=1").is_err());
    }

    #[test]
    fn changes_are_classified() {
        let before = BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
            ("c".to_string(), "3".to_string()),
        ]);
        let after = BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "9".to_string()),
            ("d".to_string(), "4".to_string()),
        ]);
        let changes = diff(&before, &after);
        assert_eq!(changes["b"], FileChange::Modified);
        assert_eq!(changes["c"], FileChange::Removed);
        assert_eq!(changes["d"], FileChange::Created);
        assert!(!changes.contains_key("a"));
    }
}
