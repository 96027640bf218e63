//! The per-instance sandbox: a WASI context that inherits nothing and preopens
//! only what the policy grants, a memory cap, an epoch deadline that traps,
//! captured output, and turning a plugin's failure into one clear line.

use std::time::Duration;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::engine::{EPOCH_TICK, PluginEngine};
use super::policy::{Access, LimitSettings, Limits, OUTPUT_CAP, Policy, WRITE_SETTINGS};
use super::write_quota::{Exceeded, WriteBudget};
use crate::backend::MarketplaceError;
use crate::backend::hook::{MAX_OUTPUT_BYTES, MAX_OUTPUT_LINE, MAX_OUTPUT_LINES};

pub struct PluginState {
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
    memory: MemoryCap,
    pub(super) label: String,
    /// Where users raise the limits, for messages about hitting them.
    raise_hint: LimitSettings,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    /// Bytes of stdout/stderr already forwarded to the log.
    forwarded: (usize, usize),
    /// For plugins the user watches (hooks): their log calls and output,
    /// kept for the user instead of going to the log.
    pub(super) transcript: Option<Transcript>,
    /// When the current call's deadline passes: waits in the host end by
    /// then (bounded_sleep.rs).
    pub(super) deadline_at: Option<std::time::Instant>,
    /// A wait of the current call was cut at its deadline.
    pub(super) wait_cut: bool,
    /// Warnings and errors the current call logged, shown or held back.
    pub(super) warnings: Warnings,
    /// What the plugin may still write, if the policy bounds it.
    pub(super) writes: Option<WriteBudget>,
}

/// Warnings and errors one call may show; the rest go to the info log
/// (`-v`) and are counted in one line after the call: neither a hostile
/// plugin nor a registry with thousands of damaged entries floods the
/// terminal.
const WARNINGS_SHOWN: usize = 20;

#[derive(Debug, Default)]
pub(super) struct Warnings {
    shown: usize,
    held_back: usize,
}

impl Warnings {
    /// Whether the next warning is shown (else it is counted).
    pub(super) fn show_next(&mut self) -> bool {
        let show = self.shown < WARNINGS_SHOWN;
        if show {
            self.shown += 1;
        } else {
            self.held_back += 1;
        }
        show
    }
}

/// What a plugin said, in order, bounded to [`MAX_OUTPUT_LINES`] lines and
/// [`MAX_OUTPUT_BYTES`] bytes.
#[derive(Debug, Default)]
pub struct Transcript {
    pub lines: Vec<String>,
    bytes: usize,
    /// Lines past the bound, counted but not kept.
    pub dropped: usize,
}

impl Transcript {
    pub fn push(&mut self, line: String) {
        let line = sanitize(&line, MAX_OUTPUT_LINE);
        if self.lines.len() < MAX_OUTPUT_LINES && self.bytes + line.len() <= MAX_OUTPUT_BYTES {
            self.bytes += line.len();
            self.lines.push(line);
        } else {
            self.dropped += 1;
        }
    }

    /// The kept lines, plus one saying how many were left out.
    pub fn into_lines(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.lines
                .push(format!("… {} more lines not shown", self.dropped));
        }
        self.lines
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// StoreLimits, remembering whether the cap was what stopped the plugin.
struct MemoryCap {
    limits: StoreLimits,
    hit: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.hit = true;
            return Err(wasmtime::Error::msg("plugin memory cap reached"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }
}

/// A store for one plugin instance under `policy`.
pub fn new_store(
    engine: &Engine,
    policy: &Policy,
    label: &str,
) -> Result<Store<PluginState>, MarketplaceError> {
    let stdout = MemoryOutputPipe::new(OUTPUT_CAP);
    let stderr = MemoryOutputPipe::new(OUTPUT_CAP);
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    // Plugins are called synchronously: do file I/O on this thread instead of
    // hopping to a blocking pool per read (an order of magnitude on big reads).
    wasi.allow_blocking_current_thread(true);
    for p in &policy.preopens {
        match std::fs::create_dir_all(&p.host) {
            Ok(()) if p.access == Access::Cache => super::cache::mark_used(&p.host),
            Ok(()) => {}
            Err(e) if p.access == Access::Cache => {
                tracing::debug!(
                    "no cache for the plugin: cannot create {}: {e}",
                    p.host.display()
                );
                continue;
            }
            Err(e) => {
                return Err(match crate::backend::dir_check::not_a_directory(&p.host) {
                    Some(why) => MarketplaceError::Storage(format!(
                        "{why}; the plugin needs a directory there: move it away"
                    )),
                    None => {
                        MarketplaceError::storage(format!("cannot create {}", p.host.display()), e)
                    }
                });
            }
        }
        let perms = match p.access {
            Access::ReadOnly => FsPerms::ReadOnly,
            Access::ReadWrite | Access::Cache => FsPerms::ReadWrite,
        };
        wasi.preopened_dir(&p.host, p.guest, perms).map_err(|e| {
            MarketplaceError::storage(format!("cannot open {}", p.host.display()), e)
        })?;
    }
    let memory = MemoryCap {
        limits: StoreLimitsBuilder::new()
            .memory_size(policy.limits.memory_bytes)
            .instances(16)
            .build(),
        hit: false,
    };
    let state = PluginState {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        memory,
        label: label.to_owned(),
        raise_hint: policy.configured_in,
        stdout,
        stderr,
        forwarded: (0, 0),
        transcript: None,
        deadline_at: None,
        wait_cut: false,
        warnings: Warnings::default(),
        writes: policy.writes.map(WriteBudget::new),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.memory);
    store.epoch_deadline_trap();
    Ok(store)
}

/// A linker with WASI (as the policy restricts it through the context) and
/// whatever `add` links for the plugin's world.
pub fn linker(
    engine: &PluginEngine,
    add: impl FnOnce(&mut Linker<PluginState>) -> wasmtime::Result<()>,
) -> Result<Linker<PluginState>, MarketplaceError> {
    let mut linker: Linker<PluginState> = Linker::new(engine.engine());
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .and_then(|()| super::bounded_sleep::add_to_linker(&mut linker))
        .and_then(|()| super::write_quota::add_to_linker(&mut linker))
        .and_then(|()| unix_overrides(&mut linker))
        .and_then(|()| add(&mut linker))
        .map_err(|e| MarketplaceError::Plugin(format!("cannot prepare the plugin linker: {e}")))?;
    Ok(linker)
}

/// WASI functions ggen replaces on unix: reads without zeroing, and opens
/// that refuse FIFOs and devices.
#[cfg(unix)]
fn unix_overrides(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    super::file_read::add_to_linker(linker)?;
    super::open_guard::add_to_linker(linker)
}

#[cfg(not(unix))]
fn unix_overrides(_: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    Ok(())
}

/// `source` compiled (or loaded from the cache) as `world` and linked:
/// ready to instantiate (`pre`: the world's typed `...Pre::new`), once per
/// plugin, whatever its kind.
pub fn prepare<P>(
    engine: &PluginEngine,
    source: &super::WasmSource,
    world: super::contract::World,
    add: impl FnOnce(&mut Linker<PluginState>) -> wasmtime::Result<()>,
    pre: impl FnOnce(wasmtime::component::InstancePre<PluginState>) -> wasmtime::Result<P>,
) -> Result<P, MarketplaceError> {
    let component = engine.load(source, world)?;
    linker(engine, add)?
        .instantiate_pre(&component)
        .and_then(pre)
        .map_err(|e| MarketplaceError::Plugin(link_error(&source.label, &e)))
}

/// A new sandboxed store for `policy` with `instantiate` run in it under
/// the deadline: the store and the instance, or the failure in one line.
pub fn instantiate<T>(
    engine: &PluginEngine,
    policy: &Policy,
    label: &str,
    instantiate: impl FnOnce(&mut Store<PluginState>) -> wasmtime::Result<T>,
) -> Result<(Store<PluginState>, T), MarketplaceError> {
    let mut store = new_store(engine.engine(), policy, label)?;
    arm_deadline(&mut store, &policy.limits);
    match instantiate(&mut store) {
        Ok(instance) => Ok((store, instance)),
        Err(e) => Err(MarketplaceError::Plugin(describe_failure(
            &store,
            &e,
            "instantiate",
            &policy.limits,
        ))),
    }
}

/// One line for a component the linker refused, naming the missing import.
pub fn link_error(label: &str, e: &wasmtime::Error) -> String {
    let text = format!("{e:#}");
    if let Some(import) = text.split('`').nth(1).filter(|_| text.contains("import")) {
        format!("{label} imports `{import}`, which ggen does not provide to plugins")
    } else {
        format!("{label} cannot be linked: {}", sanitize(&text, 300))
    }
}

/// The calls into one long-lived instance: each under the deadline with its
/// output forwarded; after a trap no further call is made (the instance may
/// be inconsistent).
pub struct Calls {
    pub label: String,
    pub limits: Limits,
    stopped: Option<String>,
}

impl Calls {
    pub fn new(label: &str, limits: Limits) -> Self {
        Self {
            label: label.to_owned(),
            limits,
            stopped: None,
        }
    }

    /// Run `f` (one export call); a trap becomes one clear error.
    pub fn run<T>(
        &mut self,
        store: &mut Store<PluginState>,
        func: &str,
        f: impl FnOnce(&mut Store<PluginState>) -> wasmtime::Result<T>,
    ) -> Result<T, MarketplaceError> {
        if let Some(why) = &self.stopped {
            return Err(MarketplaceError::Plugin(format!(
                "{} was stopped earlier: {why}",
                self.label
            )));
        }
        arm_deadline(store, &self.limits);
        store.data_mut().warnings = Warnings::default();
        let result = f(store).and_then(|v| within_deadline(store).map(|()| v));
        forward_output(store);
        let held_back = store.data().warnings.held_back;
        if held_back > 0 {
            tracing::warn!(
                "{}: {held_back} more warning{} from `{func}` not shown (-v shows them)",
                self.label,
                if held_back == 1 { "" } else { "s" }
            );
        }
        result.map_err(|trap| {
            let message = describe_failure(store, &trap, func, &self.limits);
            self.stopped = Some(message.clone());
            MarketplaceError::Plugin(message)
        })
    }
}

/// A call whose wait was cut at its deadline (it meant to wait longer, so
/// it cannot have done what it meant to) fails as a trap at the deadline
/// would, even when it returns before an epoch check catches it. A call
/// that returns late only because work in the host (a large write) ended
/// just after the deadline keeps its result: that work is done, and a
/// publish whose files were all written is published.
pub fn within_deadline(store: &Store<PluginState>) -> wasmtime::Result<()> {
    let state = store.data();
    match state.deadline_at {
        Some(at) if state.wait_cut && std::time::Instant::now() > at => Err(Trap::Interrupt.into()),
        _ => Ok(()),
    }
}

/// Give the next call `limits.deadline` of wall-clock time.
pub fn arm_deadline(store: &mut Store<PluginState>, limits: &Limits) {
    let ticks = deadline_ticks(limits.deadline);
    store.data_mut().deadline_at =
        std::time::Instant::now().checked_add(effective_deadline(limits.deadline));
    store.data_mut().wait_cut = false;
    store.set_epoch_deadline(ticks);
    super::engine::tick_for(ticks);
}

/// Epoch ticks for `deadline`: rounded up, at least one, and capped far
/// below where wasmtime's `epoch + ticks` would wrap to an instant deadline.
fn deadline_ticks(deadline: Duration) -> u64 {
    const MAX_TICKS: u64 = 1 << 52;
    let ticks = deadline.as_nanos().div_ceil(EPOCH_TICK.as_nanos()).max(1);
    u64::try_from(ticks).map_or(MAX_TICKS, |t| t.min(MAX_TICKS))
}

/// The deadline a call really gets (a whole number of ticks), for messages.
fn effective_deadline(deadline: Duration) -> Duration {
    u32::try_from(deadline_ticks(deadline)).map_or(deadline, |t| EPOCH_TICK * t)
}

/// Forward what the plugin printed since the last call to the log.
pub fn forward_output(store: &mut Store<PluginState>) {
    let state = store.data_mut();
    for (pipe, seen, stream) in [
        (&state.stdout, &mut state.forwarded.0, "stdout"),
        (&state.stderr, &mut state.forwarded.1, "stderr"),
    ] {
        let bytes = pipe.contents();
        if bytes.len() > *seen {
            for line in String::from_utf8_lossy(&bytes[*seen..])
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                let line = sanitize(line, 4096);
                match &mut state.transcript {
                    Some(t) => t.push(line),
                    None => tracing::info!("{} {stream}: {line}", state.label),
                }
            }
            *seen = bytes.len();
        }
    }
}

/// One line describing why a call into the plugin failed.
pub fn describe_failure(
    store: &Store<PluginState>,
    error: &wasmtime::Error,
    func: &str,
    limits: &Limits,
) -> String {
    let state = store.data();
    let label = &state.label;
    if state.memory.hit {
        return format!(
            "{label} exceeded its memory cap of {} MiB in `{func}` and was stopped (raise it with {})",
            limits.memory_bytes >> 20,
            state.raise_hint.memory
        );
    }
    if let Some(budget) = &state.writes {
        let (left, limit) = (budget.quota.left, budget.quota.limit);
        let earlier = |left: String, limit: String| {
            if left == limit {
                format!("the install limit ({limit})")
            } else {
                format!(
                    "the {left} its package's earlier hooks left of the install limit ({limit})"
                )
            }
        };
        match budget.hit {
            Some(Exceeded::Bytes) => {
                return format!(
                    "{label} wrote more than {} in `{func}` and was stopped (raise it with {})",
                    earlier(human_bytes(left.bytes), human_bytes(limit.bytes)),
                    WRITE_SETTINGS.bytes
                );
            }
            Some(Exceeded::Entries) => {
                return format!(
                    "{label} created more than {} in `{func}` and was stopped (raise it with {})",
                    earlier(
                        format!("{} files, directories and links", left.entries),
                        format!("{} files, directories and links", limit.entries)
                    ),
                    WRITE_SETTINGS.entries
                );
            }
            None => {}
        }
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => {
            return format!(
                "{label} ran past its {} deadline in `{func}` and was stopped (raise it with {})",
                human(effective_deadline(limits.deadline)),
                state.raise_hint.deadline
            );
        }
        Some(Trap::StackOverflow) => {
            return format!("{label} overflowed its stack in `{func}` and was stopped");
        }
        // How a Rust guest's stack overflow shows: its shadow stack runs off
        // the start of linear memory.
        Some(Trap::MemoryOutOfBounds) => {
            return format!(
                "{label} crashed in `{func}`: out of bounds memory access (a stack overflow or memory bug in the plugin)"
            );
        }
        _ => {}
    }
    let chain = format!("{error:#}");
    // The pipe refuses writes past the cap; the guest then fails or panics.
    let flooded = state
        .stdout
        .contents()
        .len()
        .max(state.stderr.contents().len())
        + (64 << 10)
        > OUTPUT_CAP;
    if flooded || chain.contains("write beyond capacity") {
        return format!(
            "{label} wrote more than {} KiB of output in `{func}` and was stopped",
            OUTPUT_CAP >> 10
        );
    }
    let stderr = state.stderr.contents();
    let panic = panic_message(&String::from_utf8_lossy(&stderr));
    let cause = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    };
    match panic {
        Some(p) => format!("{label} crashed in `{func}`: {}", sanitize(&p, 300)),
        None => format!("{label} crashed in `{func}`: {}", sanitize(&cause, 300)),
    }
}

/// The message of the last Rust panic in a plugin's stderr.
fn panic_message(stderr: &str) -> Option<String> {
    let mut lines = stderr.lines();
    let mut found = None;
    while let Some(line) = lines.next() {
        if line.contains("panicked at") {
            found = lines.next().map(str::to_owned);
        }
    }
    found.filter(|m| !m.trim().is_empty())
}

/// `4 MiB`, `512 KiB`, `10 bytes`: whole units, rounded down.
fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        1 => "1 byte".into(),
        n => format!("{n} bytes"),
    }
}

fn human(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Text from a plugin made safe for one terminal line: no control characters
/// (no escape sequences), bounded length. Errno numbers that std appends in
/// the guest (`(os error 44)`) are dropped: they are wasi-libc's numbering,
/// which means something else on this system.
pub fn sanitize(text: &str, max: usize) -> String {
    let mut out: String = without_errno(text)
        .chars()
        .map(|c| match c {
            // Line breaks and tabs read as spaces in a one-line message;
            // anything else (escape sequences) shows as the README says.
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect();
    if out.len() > max {
        let mut end = max;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

fn without_errno(text: &str) -> String {
    const MARK: &str = " (os error ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(')') {
            out.push_str(&rest[..at]);
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..at + MARK.len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The WASI interfaces whose functions ggen replaces, as
/// `wasmtime_wasi::p2::add_to_linker_sync` links them (imports of any 0.2.x
/// resolve to them).
pub(super) const WASI_FILESYSTEM: &str = "wasi:filesystem/types@0.2.12";
pub(super) const WASI_STREAMS: &str = "wasi:io/streams@0.2.12";

/// A replaced filesystem function's answer as wasmtime-wasi's would be: its
/// error code, or a trap for what traps there (a bad resource).
pub(super) fn wasi_fs_result<T>(
    result: wasmtime_wasi::p2::FsResult<T>,
) -> wasmtime::Result<Result<T, wasmtime_wasi::p2::bindings::sync::filesystem::types::ErrorCode>> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(e) => Ok(Err(e.downcast()?.into())),
    }
}

/// For the modules that replace WASI functions: `names` in `interface` are
/// linked by wasmtime-wasi (a second definition is refused without
/// shadowing, so this fails once it links another version of the
/// interface), and `add` replaces them.
#[cfg(test)]
pub(super) fn assert_replaces_wasi(
    interface: &str,
    names: &[&str],
    add: fn(&mut Linker<PluginState>) -> wasmtime::Result<()>,
) {
    let mut linker = Linker::<PluginState>::new(&Engine::default());
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    for name in names {
        let again = (linker.instance(interface).unwrap()).func_new(name, |_, _, _, _| Ok(()));
        assert!(again.is_err(), "{interface} {name} is not linked by WASI");
    }
    add(&mut linker).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_whole_ticks_and_messages_say_so() {
        assert_eq!(deadline_ticks(Duration::from_nanos(1)), 1);
        assert_eq!(effective_deadline(Duration::from_nanos(1)), EPOCH_TICK);
        assert_eq!(human(effective_deadline(Duration::from_millis(15))), "20ms");
        assert_eq!(human(effective_deadline(Duration::from_secs(5))), "5s");
        let long = Duration::from_secs(u64::MAX / 4);
        assert_eq!(effective_deadline(long), long);
        assert_eq!(deadline_ticks(Duration::MAX), 1 << 52);
    }

    #[test]
    fn sizes_read_in_whole_units() {
        assert_eq!(human_bytes(4 << 20), "4 MiB");
        assert_eq!(human_bytes((4 << 20) + 5), "4 MiB");
        assert_eq!(human_bytes(1536), "1 KiB");
        assert_eq!(human_bytes(1), "1 byte");
        assert_eq!(human_bytes(0), "0 bytes");
    }

    #[test]
    fn a_late_return_fails_only_after_a_wait_cut_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            deadline: Duration::from_millis(10),
            memory_bytes: 1 << 20,
        };
        let policy = Policy::hook(
            dir.path().to_path_buf(),
            limits,
            super::super::policy::WriteQuota {
                left: Default::default(),
                limit: Default::default(),
            },
        );
        let mut store = new_store(&Engine::default(), &policy, "test").unwrap();
        arm_deadline(&mut store, &limits);
        assert!(within_deadline(&store).is_ok());
        std::thread::sleep(Duration::from_millis(30));
        // Host work (a large write) that ended late: the call's result stands.
        assert!(within_deadline(&store).is_ok());
        store.data_mut().wait_cut = true;
        let err = within_deadline(&store).unwrap_err();
        assert_eq!(err.downcast_ref::<Trap>(), Some(&Trap::Interrupt));
        // The next call starts afresh.
        arm_deadline(&mut store, &limits);
        assert!(!store.data().wait_cut);
    }

    #[test]
    fn plugin_text_loses_control_characters_and_guest_errno_numbers() {
        assert_eq!(
            sanitize(
                "cannot open a.tgz: No such file or directory (os error 44)\x1b[2J",
                100
            ),
            "cannot open a.tgz: No such file or directory\u{FFFD}[2J"
        );
        assert_eq!(
            sanitize("x (os error 2) and y (os error 63); z", 100),
            "x and y; z"
        );
        // Only the exact form is removed.
        assert_eq!(
            sanitize("(os error x) (os error 1", 100),
            "(os error x) (os error 1"
        );
        assert_eq!(sanitize("ééé", 3), "é…");
    }
}
