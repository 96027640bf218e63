//! `wasi:clocks/monotonic-clock` `subscribe-duration` and `subscribe-instant`
//! for plugins, cut at the call's deadline. A plugin waiting on a clock
//! (`std::thread::sleep`, `poll`) is blocked in the host, where the epoch
//! deadline cannot interrupt it: an hour-long sleep held `ggen` for an hour.
//! Here the wait ends by the deadline; the plugin traps on its next epoch
//! check or wait, and a call whose wait was cut fails when it returns
//! (`sandbox::within_deadline`). Everything else is as wasmtime-wasi does it.

use std::time::{Duration, Instant};

use wasmtime::Trap;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::clocks::WasiClocksView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host;

use super::engine::EPOCH_TICK;
use super::sandbox::PluginState;

/// The interface `wasmtime_wasi::p2::add_to_linker_sync` links (imports of
/// any 0.2.x resolve to it).
const INTERFACE: &str = "wasi:clocks/monotonic-clock@0.2.12";
const SUBSCRIBE_DURATION: &str = "subscribe-duration";
const SUBSCRIBE_INSTANT: &str = "subscribe-instant";

/// Replace the clock subscriptions that WASI linked.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = (|| {
        let mut clock = linker.instance(INTERFACE)?;
        clock.func_wrap(SUBSCRIBE_DURATION, |mut store, (nanos,): (u64,)| {
            subscribe(store.data_mut(), Duration::from_nanos(nanos))
        })?;
        clock.func_wrap(SUBSCRIBE_INSTANT, |mut store, (when,): (u64,)| {
            let state = store.data_mut();
            let now = state.clocks().now()?;
            subscribe(state, Duration::from_nanos(when.saturating_sub(now)))
        })
    })();
    linker.allow_shadowing(false);
    linked
}

fn subscribe(
    state: &mut PluginState,
    asked: Duration,
) -> wasmtime::Result<(Resource<DynPollable>,)> {
    // Past the deadline, waiting again is where it stops.
    if state.deadline_at.is_some_and(|at| Instant::now() > at) {
        return Err(Trap::Interrupt.into());
    }
    let wait = bounded(asked, state.deadline_at);
    state.wait_cut |= wait < asked;
    let nanos = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
    Ok((state.clocks().subscribe_duration(nanos)?,))
}

/// `wait`, but ending at most two epoch ticks past `deadline_at`: by then
/// the epoch has normally passed the deadline and the plugin traps as it
/// resumes; if the ticker runs late, its next wait or its return does.
fn bounded(wait: Duration, deadline_at: Option<Instant>) -> Duration {
    match deadline_at {
        Some(at) => wait.min(at.saturating_duration_since(Instant::now()) + 2 * EPOCH_TICK),
        None => wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_functions_wasi_links() {
        super::super::sandbox::assert_replaces_wasi(
            INTERFACE,
            &[SUBSCRIBE_DURATION, SUBSCRIBE_INSTANT],
            add_to_linker,
        );
    }

    #[test]
    fn waits_end_by_the_deadline() {
        let hour = Duration::from_secs(3600);
        assert_eq!(bounded(hour, None), hour);
        let soon = Instant::now() + Duration::from_millis(100);
        let cut = bounded(hour, Some(soon));
        assert!(
            cut <= Duration::from_millis(100) + 2 * EPOCH_TICK,
            "{cut:?}"
        );
        // A deadline already past leaves the ticks it takes to be noticed.
        let past = Instant::now() - Duration::from_secs(1);
        assert_eq!(bounded(hour, Some(past)), 2 * EPOCH_TICK);
        // Short waits are untouched.
        let ms = Duration::from_millis(1);
        assert_eq!(bounded(ms, Some(Instant::now() + hour)), ms);
    }
}
