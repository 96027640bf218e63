//! Post-install hooks as the domain sees them: a program (component bytes)
//! run against a staged package directory. The WebAssembly runtime in
//! `plugin/` implements [`HookRunner`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use super::unpack::UnpackLimits;

/// A hook component and how the user knows it.
pub struct HookProgram {
    /// As declared in package.json: `builtin:<name>` or a path in the package.
    pub name: String,
    pub bytes: Cow<'static, [u8]>,
    /// Hex sha256 of `bytes`.
    pub sha256: String,
}

/// What a hook learns about the install (the WIT `install-context`).
pub struct HookContext {
    pub package: String,
    pub version: String,
    /// Resolved dependency versions.
    pub dependencies: BTreeMap<String, String>,
    /// `--var key=value` pairs, in the order given.
    pub variables: Vec<(String, String)>,
}

/// Bytes written into files (each rewrite again, growing a file included)
/// and entries created (files, directories, links). As a quota, what a run
/// may write: a hook is stopped there rather than when it is done (a few
/// KB of templates rendered to gigabytes before the check after the hook).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Writes {
    pub bytes: u64,
    pub entries: u64,
}

/// What a package's hooks may write: what the package may hold.
impl From<&UnpackLimits> for Writes {
    fn from(limits: &UnpackLimits) -> Self {
        Writes {
            bytes: limits.max_bytes,
            entries: limits.max_entries,
        }
    }
}

/// What one hook run may write: what the package's earlier hooks left of
/// their allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteQuota {
    pub left: Writes,
    /// The whole allowance (the install limits), for messages.
    pub limit: Writes,
}

impl Writes {
    /// What is left of `self` after `used`.
    pub fn minus(self, used: Writes) -> Writes {
        Writes {
            bytes: self.bytes.saturating_sub(used.bytes),
            entries: self.entries.saturating_sub(used.entries),
        }
    }
}

/// How a hook run ended, with what it printed.
pub struct HookRun {
    /// `Ok(summary)`, or `Err(one line saying why it failed)`: an error the
    /// hook returned, a trap, its deadline, its memory cap, a link error.
    pub result: Result<String, String>,
    /// Its log calls and output lines, bounded (see [`MAX_OUTPUT_LINES`], [`MAX_OUTPUT_BYTES`]).
    pub output: Vec<String>,
    /// What it wrote.
    pub wrote: Writes,
}

/// Lines and bytes of hook output kept for the user; the rest is counted,
/// not shown. Each line is cut at [`MAX_OUTPUT_LINE`] bytes.
pub const MAX_OUTPUT_LINES: usize = 100;
pub const MAX_OUTPUT_BYTES: usize = 16 << 10;
pub const MAX_OUTPUT_LINE: usize = 400;

pub trait HookRunner {
    /// A hook shipped with ggen, by the name after `builtin:`.
    fn builtin(&self, name: &str) -> Option<HookProgram>;
    /// The names of the hooks shipped with ggen.
    fn builtins(&self) -> Vec<&'static str>;
    /// Run `program` with `package_dir` as its only visible directory,
    /// stopping it once it writes more than `quota.left`.
    fn run(
        &mut self,
        program: &HookProgram,
        package_dir: &Path,
        context: &HookContext,
        quota: WriteQuota,
    ) -> HookRun;
}
