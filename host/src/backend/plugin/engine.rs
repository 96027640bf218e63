//! One wasmtime engine per process, with the epoch ticker that enforces
//! deadlines and the compiled-component cache.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

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
            std::thread::Builder::new()
                .name("ggen-epoch".into())
                .spawn(move || {
                    while let Some(engine) = ticker.upgrade() {
                        drop(engine);
                        std::thread::sleep(EPOCH_TICK);
                        if let Some(engine) = ticker.upgrade() {
                            engine.increment_epoch();
                        }
                    }
                })
                .map_err(|e| format!("cannot start the deadline timer: {e}"))?;
            Ok(engine)
        })
        .as_ref()
        .map_err(|e| MarketplaceError::Plugin(e.clone()))
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
