//! Everything the CLI prints: aligned text for people, stable JSON for tools
//! (the JSON shapes are documented in the README).

use std::path::Path;

use ggen::domain::approve::PendingHooks;
use ggen::domain::install::{Action, InstallReport};
use ggen::domain::installed::HookOutcome;
use ggen::domain::installed::LockedPackage;
use ggen::domain::publish::PublishReport;
use ggen::domain::remove::RemoveReport;
use ggen::domain::unpublish::UnpublishReport;
use ggen::domain::verify::VerifyReport;
use ggen::domain::{MarketplaceError, Package, PackageVersion, Query, SearchResults};
use ggen::session::Inspection;
use serde_json::json;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// One line of output for people (what `out!` prints). Registry text and
/// file names are untrusted (a hostile registry, plugin, peer or package),
/// so control characters (escape sequences, bells, carriage returns, and
/// newlines, which could forge a line of the report) and bidirectional
/// overrides that reorder what the terminal shows are replaced by U+FFFD.
pub fn write_line(line: std::fmt::Arguments) {
    write_raw(&terminal_safe(&line.to_string()));
}

/// `text` with control characters (but tabs) and bidirectional overrides
/// replaced by U+FFFD.
fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\t')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if text.contains(unsafe_char) {
        text.chars()
            .map(|c| if unsafe_char(c) { '\u{FFFD}' } else { c })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// An error as one line people can read: whatever the user typed or a
/// registry sent may be in it, so it is made terminal-safe, and any word
/// longer than [`LONGEST_WORD`] (a 30,000-level path, a pasted blob) keeps
/// only its start and end.
pub fn error_line(text: &str) -> String {
    const LONGEST_WORD: usize = 240;
    let flat = text.replace(['\n', '\r'], " ");
    let safe = terminal_safe(&flat);
    safe.split(' ')
        .map(|word| {
            let chars: Vec<char> = word.chars().collect();
            if chars.len() <= LONGEST_WORD {
                return word.to_owned();
            }
            let keep = LONGEST_WORD / 2;
            let head: String = chars[..keep].iter().collect();
            let tail: String = chars[chars.len() - keep..].iter().collect();
            format!("{head}…{tail}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One line to stderr (what `note!` prints); dropped if stderr is closed.
pub fn write_note(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Quietly ends the process when the reader has gone (`ggen ... | head`),
/// and with one error line when stdout cannot be written (a full disk).
fn write_raw(text: &str) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{text}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        // Reports come after the work: a publish or install whose report
        // was lost is not to be taken for a failed one and retried.
        note!(
            "error: cannot write the output: {e}; the command itself ran to the end, only its report is lost"
        );
        std::process::exit(1);
    }
}

pub fn error(e: &MarketplaceError) {
    note!("error: {}", error_line(&e.to_string()));
}

/// JSON as it is: serde escapes control characters, and tools get the text
/// unchanged.
pub(super) fn print_json(value: &serde_json::Value) {
    write_raw(&serde_json::to_string_pretty(value).expect("JSON values serialise"));
}

/// A package version as JSON (the `version object` of the README).
fn version_json(v: &PackageVersion) -> serde_json::Value {
    serde_json::to_value(v).expect("versions serialise")
}

pub fn search(query: &Query, results: &SearchResults, as_json: bool) {
    if as_json {
        print_json(&json!({
            "query": query,
            "total": results.total,
            "offset": query.offset,
            "limit": query.limit,
            "results": results.hits.iter().map(version_json).collect::<Vec<_>>(),
        }));
        return;
    }
    if results.hits.is_empty() {
        return no_results(query, results.total);
    }
    let rows: Vec<[String; 3]> = results
        .hits
        .iter()
        .map(|v| [v.name.clone(), v.version.clone(), summary(v)])
        .collect();
    table(["NAME", "VERSION", "DESCRIPTION"], &rows);
    page_footer(query, results.hits.len(), results.total);
}

/// A search hit's DESCRIPTION column: its description (else its title) on
/// one line of at most 70 columns.
pub(super) fn summary(v: &PackageVersion) -> String {
    let text = match v.description.is_empty() {
        true => &v.title,
        false => &v.description,
    };
    one_line(text, 70)
}

/// A search that shows no rows: nothing matched, or the page is past the end.
pub fn no_results(query: &Query, total: u64) {
    if total > 0 {
        out!("No results on this page ({total} matches in all; lower --offset).");
    } else if query.text.is_empty() {
        out!("No packages match the filters.");
    } else {
        out!("No packages match \"{}\".", one_line(&query.text, 60));
    }
}

/// `1-20 of 57 matches` under a page of search results.
pub fn page_footer(query: &Query, shown: usize, total: u64) {
    let first = query.offset as u64 + 1;
    let last = query.offset as u64 + shown as u64;
    out!();
    out!(
        "{first}-{last} of {total} match{}",
        if total == 1 { "" } else { "es" }
    );
}

pub fn publish(r: &PublishReport, as_json: bool) {
    if as_json {
        print_json(&serde_json::to_value(r).expect("reports serialise"));
        return;
    }
    let verb = match (r.dry_run, r.replaced) {
        (true, _) => "Would publish",
        (false, true) => "Republished",
        (false, false) => "Published",
    };
    out!(
        "{verb} {}@{} ({} file{}, {} bytes)",
        r.name,
        r.version,
        r.files,
        if r.files == 1 { "" } else { "s" },
        r.size
    );
    if r.dry_run {
        for file in &r.contents {
            out!("  {file}");
        }
    }
    out!("checksum {}", r.checksum);
}

pub fn unpublish(r: &UnpublishReport, as_json: bool) {
    if as_json {
        print_json(&serde_json::to_value(r).expect("reports serialise"));
        return;
    }
    out!(
        "Unpublished {}@{} (checksum {})",
        r.name,
        r.version,
        r.checksum
    );
    match r.remaining.as_slice() {
        [] => out!("{} has no published version left", r.name),
        left => out!("{} still has {}", r.name, left.join(", ")),
    }
    if !r.broken_dependents.is_empty() {
        out!(
            "left without a version they require: {}",
            r.broken_dependents.join(", ")
        );
    }
}

pub fn info(p: &Package, as_json: bool) {
    if as_json {
        print_json(
            &json!({ "name": p.name, "versions": p.versions.iter().map(version_json).collect::<Vec<_>>() }),
        );
        return;
    }
    // The version an install without one picks: the newest stable.
    if let Some(latest) = p.versions.iter().max_by_key(|v| v.preference()) {
        out!(
            "{} {} - {}",
            latest.name,
            latest.version,
            one_line(&latest.title, 100)
        );
        if !latest.description.is_empty() {
            out!("{}", one_line(&latest.description, 200));
        }
        let mut facts = Vec::new();
        if let Some(l) = &latest.license {
            facts.push(format!("license: {l}"));
        }
        for (label, list) in [
            ("authors", &latest.authors),
            ("categories", &latest.categories),
            ("tags", &latest.tags),
        ] {
            if !list.is_empty() {
                facts.push(format!("{label}: {}", list.join(", ")));
            }
        }
        if !facts.is_empty() {
            out!("{}", facts.join(" | "));
        }
        out!();
    }
    let rows: Vec<[String; 4]> = p
        .versions
        .iter()
        .map(|v| {
            let deps = if v.dependencies.is_empty() {
                "-".to_owned()
            } else {
                v.dependencies
                    .iter()
                    .map(|(n, r)| format!("{n} {r}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            [
                v.version.clone(),
                v.published_at.clone(),
                v.checksum.clone(),
                deps,
            ]
        })
        .collect();
    table(["VERSION", "PUBLISHED", "CHECKSUM", "DEPENDENCIES"], &rows);
}

/// `target` is the command's ` --target DIR`, if any, for the hints.
pub fn install(r: &InstallReport, as_json: bool, target: &str) {
    changes(
        r,
        as_json,
        "Nothing to do: everything requested is installed (use --force to reinstall).",
        target,
    );
}

pub fn update(r: &InstallReport, as_json: bool, target: &str) {
    let nothing_to_do = match (&r.p2p_fallback, r.held_back.is_empty()) {
        // Peers were never asked: "newest" would claim what nobody checked.
        (Some(_), _) => {
            "Nothing newer in the local registry; the P2P network could not be asked (see the warning), so what peers offer was not checked."
        }
        (None, true) => {
            "Nothing to do: everything is at the newest version its requirements allow."
        }
        (None, false) => "Nothing to do: what is held back cannot move (see the notes).",
    };
    changes(r, as_json, nothing_to_do, target);
    if !as_json {
        for h in &r.held_back {
            out!("note: {} stays at {}: {}", h.name, h.version, h.why);
        }
    }
}

/// The report of a transaction that installs: what it did (or would do).
fn changes(r: &InstallReport, as_json: bool, nothing_to_do: &str, target: &str) {
    if as_json {
        print_json(&serde_json::to_value(r).expect("reports serialise"));
        return;
    }
    let done: Vec<String> = [
        (Action::Install, "installed"),
        (Action::Update, "updated"),
        (Action::Downgrade, "downgraded"),
        (Action::Reinstall, "reinstalled"),
    ]
    .iter()
    .filter_map(|(action, past)| {
        let n = r.packages.iter().filter(|p| p.action == *action).count();
        (n > 0).then(|| format!("{n} {past}"))
    })
    .collect();
    if r.dry_run {
        out!("Would install into {}:", r.root.display());
    }
    let rows: Vec<[String; 3]> = r
        .packages
        .iter()
        .map(|p| {
            let version = match &p.previous_version {
                Some(old) => format!("{old} -> {}", p.version),
                None => p.version.clone(),
            };
            [p.action.as_str().to_owned(), p.name.clone(), version]
        })
        .collect();
    table(["ACTION", "NAME", "VERSION"], &rows);
    let discarded: Vec<String> = (r.packages.iter())
        .filter_map(|p| Some(format!("{}: {}", p.name, p.discarded.as_ref()?.summary())))
        .collect();
    if !discarded.is_empty() {
        let verb = if r.dry_run {
            "Would discard"
        } else {
            "Discarded"
        };
        out!();
        out!("{verb} local changes (--force): {}", discarded.join(" | "));
    }
    if !r.dry_run {
        if done.is_empty() {
            out!();
            out!("{nothing_to_do}");
        } else {
            out!();
            out!("Done in {}: {}", r.root.display(), done.join(", "));
        }
    }
    // Skipped hooks, grouped by package in install order.
    let mut skipped: Vec<(&str, String, Vec<&str>)> = Vec::new();
    for h in r.hooks.iter().filter(|h| h.outcome == HookOutcome::Skipped) {
        match skipped.iter_mut().find(|(name, ..)| *name == h.package) {
            Some((_, _, hooks)) => hooks.push(&h.hook),
            None => skipped.push((&h.package, h.version.clone(), vec![&h.hook])),
        }
    }
    if !skipped.is_empty() {
        out!();
        out!("Skipped post-install hooks (not approved):");
        for (name, version, hooks) in &skipped {
            out!("  {name}@{version}: {}", hooks.join(", "));
        }
        let names: Vec<&str> = skipped.iter().map(|(n, ..)| *n).collect();
        out!(
            "Run them with `ggen marketplace approve-hooks{target}`; to run them on later installs and updates, pass --allow-hooks {} (or list them in [hooks] allow in config.toml).",
            names.join(",")
        );
    }
}

pub fn remove(r: &RemoveReport, as_json: bool) {
    if as_json {
        print_json(&serde_json::to_value(r).expect("reports serialise"));
        return;
    }
    out!("Removed {}@{}", r.name, r.version);
    if !r.also_removed.is_empty() {
        out!(
            "Removed with it, as nothing else needs them: {}",
            r.also_removed.join(", ")
        );
    }
    if !r.broken_dependents.is_empty() {
        out!("still depending on it: {}", r.broken_dependents.join(", "));
    }
}

pub fn verify(r: &VerifyReport, as_json: bool) {
    if as_json {
        print_json(&serde_json::to_value(r).expect("reports serialise"));
        return;
    }
    if r.interrupted > 0 {
        out!(
            "INTERRUPTED  an install, update or remove was killed while moving packages; the next one rolls it back"
        );
    }
    if r.packages.is_empty() {
        out!("No packages installed.");
    }
    for p in &r.packages {
        if p.ok() {
            match p.changed_by_hooks.len() {
                0 => out!("ok        {}@{}", p.name, p.version),
                n => out!(
                    "ok        {}@{} ({n} file{} as its approved post-install hooks left them)",
                    p.name,
                    p.version,
                    if n == 1 { "" } else { "s" }
                ),
            }
            continue;
        }
        let status = if p.files_ok() { "BROKEN" } else { "DIFFERS" };
        out!("{status:<10}{}@{}", p.name, p.version);
        for f in &p.changed_by_hooks {
            out!("  {:<9}{f}", "by hook");
        }
        for (label, files) in [
            ("modified", &p.modified),
            ("missing", &p.missing),
            ("extra", &p.extra),
        ] {
            for f in files {
                out!("  {label:<9}{f}");
            }
        }
        for d in &p.missing_dependencies {
            out!("  {:<9}{d}, which is not installed", "needs");
        }
    }
}

pub fn list(packages: &[LockedPackage], interrupted: usize, as_json: bool) {
    if as_json {
        print_json(&json!({ "packages": packages, "interrupted": interrupted }));
        return;
    }
    if packages.is_empty() {
        out!("No packages installed.");
        return;
    }
    let rows: Vec<[String; 4]> = packages
        .iter()
        .map(|p| {
            [
                p.name.clone(),
                p.version.clone(),
                p.source.clone(),
                p.integrity.clone(),
            ]
        })
        .collect();
    table(["NAME", "VERSION", "SOURCE", "INTEGRITY"], &rows);
}

/// Left-aligned columns two spaces apart; the last column is not padded.
/// Widths are terminal columns: CJK characters take two.
pub(super) fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    for line in table_lines(header, rows) {
        out!("{line}");
    }
}

/// The lines of a [`table`].
fn table_lines<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> Vec<String> {
    let mut widths = header.map(UnicodeWidthStr::width);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.width());
        }
    }
    let line = |cells: [&str; N]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < N {
                out.extend(std::iter::repeat_n(' ', widths[i] - cell.width() + 2));
            }
        }
        out.trim_end().to_owned()
    };
    let mut lines = vec![line(header)];
    for row in rows {
        lines.push(line(std::array::from_fn(|i| row[i].as_str())));
    }
    lines
}

/// Collapse whitespace and cut to `max` terminal columns, `…` included.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.width() <= max {
        return flat;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in flat.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

pub fn no_pending_hooks(as_json: bool) {
    if as_json {
        print_json(&json!({ "pending": [], "packages": [] }));
    } else {
        out!("No post-install hooks are waiting for approval.");
    }
}

/// The hooks about to be approved: on stdout, or on stderr beside the
/// question when stdout carries `--json`.
pub fn pending_hooks(pending: &[PendingHooks], as_json: bool) {
    let rows: Vec<[String; 3]> = pending
        .iter()
        .map(|p| [p.name.clone(), p.version.clone(), p.hooks.join(", ")])
        .collect();
    let mut lines = vec!["Post-install hooks waiting for approval:".to_owned()];
    lines.extend(table_lines(["NAME", "VERSION", "HOOKS"], &rows));
    lines.push(String::new());
    for line in lines {
        match as_json {
            true => note!("{}", terminal_safe(&line)),
            false => out!("{line}"),
        }
    }
}

pub fn inspect(file: &Path, i: &Inspection, as_json: bool) {
    if as_json {
        print_json(&serde_json::to_value(i).expect("inspections serialise"));
        return;
    }
    let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    out!("file       {}", file.display());
    out!("size       {} bytes", i.size);
    out!("sha256     {}", i.sha256);
    out!("world      {}", or_unknown(&i.world));
    out!(
        "contract   {}{}",
        or_unknown(&i.contract),
        if i.stamped { "" } else { " (no SDK stamp)" }
    );
    match i.loadable {
        true => out!("loadable   yes"),
        false => out!("loadable   no: {}", i.not_loadable.join("; ")),
    }
    out!("imports");
    for import in &i.imports {
        let note = if import.provided {
            ""
        } else {
            "   NOT PROVIDED by ggen"
        };
        out!("  {}{note}", import.name);
    }
    out!("exports");
    for export in &i.exports {
        out!("  {export}");
    }
    if let Some(c) = &i.capabilities {
        out!("sandbox");
        if c.preopens.is_empty() {
            out!("  files    none");
        }
        for p in &c.preopens {
            out!(
                "  files    {} = {} ({})",
                p.guest,
                p.what,
                if p.writable {
                    "read-write"
                } else {
                    "read-only"
                }
            );
        }
        out!(
            "  limits   {} ms per call, {} MiB memory ({})",
            c.deadline_ms,
            c.memory_mib,
            c.configured_in
        );
        if let Some(w) = &c.writes {
            out!(
                "  writes   at most {} MiB written, {} files, directories and links created ({})",
                w.max_mib,
                w.max_entries,
                w.configured_in
            );
        }
        for (prefix, what) in &c.imports {
            out!("  {prefix:<28}{what}");
        }
    }
}
