//! `approve-hooks`: which installed packages had post-install hooks skipped
//! for want of approval, and running them once approved (a reinstall of the
//! locked version, so the hooks see exactly what a first install would).

use std::path::Path;

use serde::Serialize;

use super::install::{InstallOptions, InstallReport, Spec};
use super::installed::{self, HookOutcome, Origin};
use super::transaction::recover;
use super::{MarketplaceError, Result};

#[derive(Debug, Clone, Serialize)]
pub struct PendingHooks {
    pub name: String,
    pub version: String,
    pub hooks: Vec<String>,
    /// The installed tarball's checksum (ggen.lock `integrity`).
    #[serde(skip)]
    pub integrity: String,
    /// Where it came from (ggen.lock `source`).
    #[serde(skip)]
    pub source: String,
}

impl PendingHooks {
    pub fn origin(&self) -> Origin {
        Origin::of(&self.source)
    }
}

/// Installed packages with skipped hooks, once an interrupted install or
/// remove in `root` is rolled back (under the root's lock, taken by `lock`):
/// a package whose install was killed before it committed is not installed.
/// Nothing waits in a root that does not exist.
pub fn pending_now<L>(root: &Path, lock: impl FnOnce() -> Result<L>) -> Result<Vec<PendingHooks>> {
    if !root.exists() {
        return Ok(Vec::new());
    }
    let _guard = lock()?;
    recover(root)?;
    pending(root)
}

/// Installed packages with skipped hooks, by name.
pub fn pending(root: &Path) -> Result<Vec<PendingHooks>> {
    Ok(installed::list(root)?
        .into_iter()
        .filter_map(|p| {
            let hooks: Vec<String> = p
                .hooks
                .iter()
                .filter(|h| h.outcome == HookOutcome::Skipped)
                .map(|h| h.hook.clone())
                .collect();
            (!hooks.is_empty()).then_some(PendingHooks {
                name: p.name,
                version: p.version,
                integrity: p.integrity,
                source: p.source,
                hooks,
            })
        })
        .collect())
}

/// Reinstall the `approved` packages at their locked versions with their
/// hooks allowed, each from where it was installed from (`reinstall` runs
/// one install per origin). Everything else stays as it is.
pub fn run_approved(
    approved: &[PendingHooks],
    options: &InstallOptions,
    mut reinstall: impl FnMut(Origin, &[Spec], &InstallOptions) -> Result<InstallReport>,
) -> Result<InstallReport> {
    let mut options = options.clone();
    options.force = true;
    options.with_dependencies = false;
    options.pinned = approved
        .iter()
        .map(|p| (p.name.clone(), p.integrity.clone()))
        .collect();
    options
        .hooks
        .allowed
        .extend(approved.iter().map(|p| p.name.clone()));
    let report = InstallReport::per_origin(|origin| {
        let specs = (approved.iter())
            .filter(|p| p.origin() == origin)
            .map(|p| {
                Ok(Spec {
                    name: p.name.clone(),
                    req: installed::requirement("=", &p.name, &p.version)?,
                    latest: false,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if specs.is_empty() {
            return Ok(None);
        }
        reinstall(origin, &specs, &options).map(Some)
    })?;
    report.ok_or_else(|| MarketplaceError::NotFound("no hooks wait for approval".into()))
}
