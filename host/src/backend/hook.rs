//! Post-install hooks as the domain sees them: a program (component bytes)
//! run against a staged package directory. The WebAssembly runtime in
//! `plugin/` implements [`HookRunner`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

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

/// How a hook run ended, with what it printed.
pub struct HookRun {
    /// `Ok(summary)`, or `Err(one line saying why it failed)`: an error the
    /// hook returned, a trap, its deadline, its memory cap, a link error.
    pub result: Result<String, String>,
    /// Its log calls and output lines, bounded (see [`MAX_OUTPUT_LINES`], [`MAX_OUTPUT_BYTES`]).
    pub output: Vec<String>,
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
    /// Run `program` with `package_dir` as its only visible directory.
    fn run(&mut self, program: &HookProgram, package_dir: &Path, context: &HookContext) -> HookRun;
}
