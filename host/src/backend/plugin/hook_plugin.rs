//! Post-install hook components, run through the sandbox with the hook
//! policy: the staged package at `/package` and nothing else.

use std::borrow::Cow;
use std::path::Path;

use wasmtime::component::HasSelf;

use super::bindings::ggen::marketplace::types::Dependency;
use super::bindings::hook::exports::ggen::marketplace::post_install::InstallContext;
use super::bindings::hook::{PostInstallHook, PostInstallHookPre};
use super::contract::World;
use super::policy::{WriteQuota, Writes};
use super::sandbox::{self, PluginState, Transcript};
use super::{Limits, PluginEngine, Policy, WasmSource, embedded};
use crate::backend::hook::{HookContext, HookProgram, HookRun, HookRunner};

/// The hooks shipped with ggen (plugins/hooks), by their `builtin:` name.
const BUILTINS: &[&super::EmbeddedPlugin] =
    &[&embedded::RENDER_TEMPLATES, &embedded::FILE_MANIFEST];

/// The names of the hooks shipped with ggen (after `builtin:`).
pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|p| p.name).collect()
}

pub struct WasmHookRunner {
    engine: PluginEngine,
    limits: Limits,
}

impl WasmHookRunner {
    pub fn new(engine: PluginEngine, limits: Limits) -> Self {
        Self { engine, limits }
    }
}

impl HookRunner for WasmHookRunner {
    fn builtin(&self, name: &str) -> Option<HookProgram> {
        BUILTINS
            .iter()
            .find(|p| p.name == name)
            .map(|p| HookProgram {
                name: format!("builtin:{}", p.name),
                bytes: Cow::Borrowed(p.wasm),
                sha256: p.sha256.to_owned(),
            })
    }

    fn builtins(&self) -> Vec<&'static str> {
        builtin_names()
    }

    fn run(
        &mut self,
        program: &HookProgram,
        package_dir: &Path,
        context: &HookContext,
        quota: WriteQuota,
    ) -> HookRun {
        let mut transcript = Transcript::default();
        let mut wrote = Writes::default();
        let policy = Policy::hook(package_dir.to_path_buf(), self.limits, quota);
        let result = run(
            &self.engine,
            &policy,
            program,
            context,
            &mut transcript,
            &mut wrote,
        );
        HookRun {
            result,
            output: transcript.into_lines(),
            wrote,
        }
    }
}

fn run(
    engine: &PluginEngine,
    policy: &Policy,
    program: &HookProgram,
    context: &HookContext,
    transcript: &mut Transcript,
    wrote: &mut Writes,
) -> Result<String, String> {
    let label = format!("hook {}", program.name);
    let source = WasmSource {
        name: format!("hook-{}", &program.sha256[..16]),
        label: label.clone(),
        bytes: program.bytes.clone(),
        sha256: program.sha256.clone(),
    };
    let pre = sandbox::prepare(
        engine,
        &source,
        World::PostInstallHook,
        |l| PostInstallHook::add_to_linker::<_, HasSelf<PluginState>>(l, |s| s),
        PostInstallHookPre::new,
    )
    .map_err(|e| e.to_string())?;
    let mut store =
        sandbox::new_store(engine.engine(), policy, &label).map_err(|e| e.to_string())?;
    store.data_mut().transcript = Some(Transcript::default());
    let context = InstallContext {
        package: context.package.clone(),
        version: context.version.clone(),
        dependencies: context
            .dependencies
            .iter()
            .map(|(name, version)| Dependency {
                name: name.clone(),
                requirement: version.clone(),
            })
            .collect(),
        variables: context.variables.clone(),
    };
    sandbox::arm_deadline(&mut store, &policy.limits);
    let result = pre
        .instantiate(&mut store)
        .map_err(|e| ("instantiate", e))
        .and_then(|hook| {
            hook.ggen_marketplace_post_install()
                .call_run(&mut store, &context)
                .and_then(|v| sandbox::within_deadline(&store).map(|()| v))
                .map_err(|e| ("run", e))
        });
    sandbox::forward_output(&mut store);
    let outcome = match result {
        Ok(Ok(summary)) => Ok(sandbox::sanitize(&summary, 300)),
        Ok(Err(message)) => Err(format!(
            "{label} failed: {}",
            sandbox::sanitize(&message, 500)
        )),
        Err((func, trap)) => Err(sandbox::describe_failure(
            &store,
            &trap,
            func,
            &policy.limits,
        )),
    };
    *transcript = store.data_mut().transcript.take().unwrap_or_default();
    *wrote = store
        .data()
        .writes
        .as_ref()
        .map(|b| b.used())
        .unwrap_or_default();
    outcome
}
