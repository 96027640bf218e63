//! One wasmtime engine per process, with the epoch ticker that enforces
//! deadlines and the compiled-component cache.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use super::contract::{self, World};
use super::{cache, source::WasmSource};
use crate::backend::MarketplaceError;

/// Granularity of deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

pub struct PluginEngine {
    engine: Engine,
    cache_dir: PathBuf,
}

fn process_engine() -> Result<&'static Engine, MarketplaceError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.wasm_component_model(true);
            config.epoch_interruption(true);
            let engine = Engine::new(&config)
                .map_err(|e| format!("cannot start the WebAssembly engine: {e}"))?;
            let ticker = engine.weak();
            let thread = std::thread::Builder::new()
                .name("ggen-epoch".into())
                .spawn(move || {
                    // Ticks fall due on a fixed schedule: a sleep per tick
                    // overruns, and the epoch fell behind the clock (44 ms in
                    // 3 s), giving plugins more than their deadline.
                    let mut due = Instant::now() + EPOCH_TICK;
                    while let Some(engine) = ticker.upgrade() {
                        drop(engine);
                        if EPOCH.load(Ordering::Acquire) >= TICK_UNTIL.load(Ordering::Acquire) {
                            // Every armed deadline has passed: sleep until the next
                            // is armed, so an idle node does not wake 100 times a second.
                            std::thread::park();
                            due = Instant::now() + EPOCH_TICK;
                            continue;
                        }
                        std::thread::sleep(due.saturating_duration_since(Instant::now()));
                        let Some(engine) = ticker.upgrade() else {
                            break;
                        };
                        while due <= Instant::now() {
                            // Counted before the engine's epoch moves, so an armed
                            // target is never below the store's deadline.
                            EPOCH.fetch_add(1, Ordering::AcqRel);
                            engine.increment_epoch();
                            due += EPOCH_TICK;
                        }
                    }
                })
                .map_err(|e| format!("cannot start the deadline timer: {e}"))?;
            let _ = TICKER.set(thread.thread().clone());
            Ok(engine)
        })
        .as_ref()
        .map_err(|e| MarketplaceError::Plugin(e.clone()))
}

static TICKER: OnceLock<std::thread::Thread> = OnceLock::new();
/// Epochs the ticker has counted (it is the only one to move the epoch).
static EPOCH: AtomicU64 = AtomicU64::new(0);
/// The ticker runs until [`EPOCH`] reaches this.
static TICK_UNTIL: AtomicU64 = AtomicU64::new(0);

/// Keep the epoch moving until a deadline of `ticks` armed now has passed.
pub fn tick_for(ticks: u64) {
    let until = EPOCH.load(Ordering::Acquire).saturating_add(ticks + 1);
    TICK_UNTIL.fetch_max(until, Ordering::AcqRel);
    if let Some(ticker) = TICKER.get() {
        ticker.unpark();
    }
}

impl PluginEngine {
    /// `cache_dir` holds compiled components (`$GGEN_HOME/cache`).
    pub fn new(cache_dir: PathBuf) -> Result<Self, MarketplaceError> {
        Ok(Self {
            engine: process_engine()?.clone(),
            cache_dir,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn cache_dir(&self) -> &std::path::Path {
        &self.cache_dir
    }

    /// The compiled component for `source`, from the cache when possible.
    /// Incompatible or foreign components are refused before compiling.
    pub fn load(&self, source: &WasmSource, world: World) -> Result<Component, MarketplaceError> {
        let entry = cache::entry(&self.cache_dir, &self.engine, &source.sha256);
        let component = match cache::load(&self.engine, &entry) {
            Some(c) => c,
            None => {
                contract::check(&source.bytes, world, &source.label)
                    .map_err(MarketplaceError::Plugin)?;
                let started = std::time::Instant::now();
                let c = Component::from_binary(&self.engine, &source.bytes).map_err(|e| {
                    MarketplaceError::Plugin(format!(
                        "{} is not a valid component: {}",
                        source.label,
                        e.root_cause()
                    ))
                })?;
                tracing::debug!("compiled {} in {:?}", source.label, started.elapsed());
                cache::store(&entry, &c);
                // A compile is rare (a new ggen or plugin): the time to clear
                // out what is no longer used.
                cache::collect(&self.cache_dir);
                c
            }
        };
        let ty = component.component_type();
        contract::check_exports(
            ty.exports(&self.engine).map(|(name, _)| name),
            world,
            &source.label,
        )
        .map_err(MarketplaceError::Plugin)?;
        Ok(component)
    }
}
