//! The post-install hook trait and its export glue.

use std::marker::PhantomData;

use crate::bindings::hook::exports::ggen::marketplace::post_install as wit;

pub use wit::InstallContext;

/// Where the host mounts the staged package directory (read-write).
pub const PACKAGE_DIR: &str = "/package";

/// A post-install hook: runs once per install of a package that declares it,
/// inside a sandbox that sees only [`PACKAGE_DIR`].
pub trait PostInstallHook: 'static {
    /// Do the work; `Ok` is a one-line summary for the user, `Err` fails the
    /// install (the host rolls everything back).
    fn run(context: InstallContext) -> Result<String, String>;
}

impl InstallContext {
    /// The value of a `--var key=value` variable.
    pub fn variable(&self, key: &str) -> Option<&str> {
        self.variables
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Adapts a [`PostInstallHook`] to the generated bindings; used by [`crate::export_hook!`].
#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: PostInstallHook> wit::Guest for Export<T> {
    fn run(context: InstallContext) -> Result<String, String> {
        T::run(context)
    }
}

/// Export a [`PostInstallHook`] implementation and stamp the contract version.
///
/// ```ignore
/// struct Greet;
/// impl ggen_plugin_sdk::PostInstallHook for Greet {
///     fn run(ctx: ggen_plugin_sdk::InstallContext) -> Result<String, String> {
///         std::fs::write("/package/HELLO", format!("{}\n", ctx.package)).map_err(|e| e.to_string())?;
///         Ok("greeted".into())
///     }
/// }
/// ggen_plugin_sdk::export_hook!(Greet);
/// ```
#[macro_export]
macro_rules! export_hook {
    ($hook:ty) => {
        type __GgenHookExport = $crate::hook::Export<$hook>;
        $crate::bindings::hook::__export_hook_world!(__GgenHookExport with_types_in $crate::bindings::hook);

        const __GGEN_STAMP_LEN: usize = $crate::HOOK_STAMP.len();
        #[used]
        #[unsafe(link_section = "ggen:contract")]
        static __GGEN_CONTRACT_STAMP: [u8; __GGEN_STAMP_LEN] = $crate::HOOK_STAMP;
    };
}
