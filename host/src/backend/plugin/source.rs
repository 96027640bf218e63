//! Where a plugin's bytes come from: built into the binary or a user's file.

use std::borrow::Cow;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::backend::MarketplaceError;

/// Largest plugin file read (the shipped plugins are well under 1 MiB).
pub const MAX_PLUGIN_BYTES: u64 = 256 << 20;

/// A plugin compiled from ../plugins by build.rs and embedded in the binary.
pub struct EmbeddedPlugin {
    pub name: &'static str,
    pub wasm: &'static [u8],
    /// Hex sha256 of `wasm`, computed at build time.
    pub sha256: &'static str,
}

/// The default plugins.
pub mod embedded {
    use super::EmbeddedPlugin;
    include!(concat!(env!("OUT_DIR"), "/embedded_plugins.rs"));
}

#[derive(Clone)]
pub struct WasmSource {
    /// Short name used in messages and cache paths.
    pub name: String,
    /// How users know it: `file-registry (built in)` or the file path.
    pub label: String,
    pub bytes: Cow<'static, [u8]>,
    pub sha256: String,
}

impl WasmSource {
    pub fn embedded(plugin: &EmbeddedPlugin) -> Self {
        Self {
            name: plugin.name.to_owned(),
            label: format!("plugin {} (built in)", plugin.name),
            bytes: Cow::Borrowed(plugin.wasm),
            sha256: plugin.sha256.to_owned(),
        }
    }

    /// A plugin file: a regular file (not a FIFO or device that never ends
    /// or blocks) of at most [`MAX_PLUGIN_BYTES`].
    pub fn from_file(path: &Path) -> Result<Self, MarketplaceError> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let fail = |e: std::io::Error| {
            MarketplaceError::Plugin(match e.kind() {
                std::io::ErrorKind::NotFound => {
                    format!("plugin file {} does not exist", path.display())
                }
                _ => format!("cannot read plugin file {}: {e}", path.display()),
            })
        };
        // Non-blocking, so that opening a FIFO returns at once.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(path)
            .map_err(fail)?;
        let meta = file.metadata().map_err(fail)?;
        if let Some(why) = crate::backend::small_file::unfit(&meta, MAX_PLUGIN_BYTES) {
            return Err(MarketplaceError::Plugin(format!(
                "plugin file {} cannot be loaded: {why}; give a component (.wasm) file",
                path.display()
            )));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(MAX_PLUGIN_BYTES)
            .read_to_end(&mut bytes)
            .map_err(fail)?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        // The hash keeps a user's `file-registry.wasm` apart from the built-in one.
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("plugin");
        let name = format!("{stem}-{}", &sha256[..8]);
        Ok(Self {
            label: format!("plugin {}", path.display()),
            sha256,
            name,
            bytes: Cow::Owned(bytes),
        })
    }
}
