//! What the host gives plugins: `ggen:marketplace/host` (log, byte-source).

use std::io::Read;

use wasmtime::component::Resource;

use super::bindings::ggen::marketplace::{host, types};
use super::sandbox::PluginState;

/// Longest log line kept from a plugin.
const MAX_LOG_LINE: usize = 4096;
/// Largest chunk handed to a plugin per `read`.
const MAX_CHUNK: u32 = 1 << 20;

/// Bytes streamed into a plugin (e.g. the tarball being published).
pub struct ByteSource {
    pub reader: Box<dyn Read + Send>,
    pub size: u64,
}

impl types::Host for PluginState {}

impl host::Host for PluginState {
    fn log(&mut self, level: host::Level, message: String) -> wasmtime::Result<()> {
        let message = super::sandbox::sanitize(&message, MAX_LOG_LINE);
        if let Some(transcript) = &mut self.transcript {
            let line = match level {
                host::Level::Error => Some(format!("error: {message}")),
                host::Level::Warn => Some(format!("warning: {message}")),
                host::Level::Info => Some(message.clone()),
                host::Level::Debug | host::Level::Trace => None,
            };
            if let Some(line) = line {
                transcript.push(line);
                return Ok(());
            }
        }
        let label = &self.label;
        let shown =
            !matches!(level, host::Level::Error | host::Level::Warn) || self.warnings.show_next();
        match level {
            _ if !shown => tracing::info!("{label}: {message}"),
            host::Level::Error => tracing::error!("{label}: {message}"),
            host::Level::Warn => tracing::warn!("{label}: {message}"),
            host::Level::Info => tracing::info!("{label}: {message}"),
            host::Level::Debug => tracing::debug!("{label}: {message}"),
            host::Level::Trace => tracing::trace!("{label}: {message}"),
        }
        Ok(())
    }
}

impl host::HostByteSource for PluginState {
    fn read(&mut self, source: Resource<ByteSource>, max: u32) -> wasmtime::Result<Vec<u8>> {
        let source = self.table.get_mut(&source)?;
        let mut buf = vec![0u8; max.clamp(1, MAX_CHUNK) as usize];
        // An empty answer means end of stream, so retry short reads of zero.
        loop {
            match source.reader.read(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(wasmtime::Error::msg(format!(
                        "host failed to read the stream: {e}"
                    )));
                }
            }
        }
    }

    fn size(&mut self, source: Resource<ByteSource>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&source)?.size)
    }

    fn drop(&mut self, source: Resource<ByteSource>) -> wasmtime::Result<()> {
        self.table.delete(source)?;
        Ok(())
    }
}
