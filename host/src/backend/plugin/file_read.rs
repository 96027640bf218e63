//! `wasi:filesystem` `descriptor.read` for plugins, without the memset:
//! wasmtime-wasi zeroes a fresh buffer before the kernel fills it, which on a
//! search of a large registry (tens of MB through the search index) was a
//! sandbox-only cost of ~5% of the call. Here the kernel fills an unzeroed
//! buffer. Everything else is as wasmtime-wasi does it: files only, opened
//! for reading, at most 64 KiB a call (small enough that the plugin scans
//! each piece while it is still in cache; larger pieces measured slower).

use std::fs::File;

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, OpenMode};
use wasmtime_wasi::p2::bindings::sync::filesystem::types::ErrorCode;

use super::sandbox::PluginState;

const MAX_READ: u64 = 64 << 10;

use super::sandbox::WASI_FILESYSTEM as INTERFACE;
const READ: &str = "[method]descriptor.read";

/// Replace the `descriptor.read` that WASI linked.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = linker.instance(INTERFACE)?.func_wrap(
        READ,
        |mut store, (fd, len, offset): (Resource<Descriptor>, u64, u64)| {
            let file = match store.data_mut().table.get(&fd)? {
                Descriptor::File(f) if f.open_mode.contains(OpenMode::READ) => f.file.clone(),
                _ => return Ok((Err(ErrorCode::BadDescriptor),)),
            };
            // An empty read is the end of the file, as in wasmtime-wasi.
            let read = read_at(&file, len.min(MAX_READ), offset).map(|b| {
                let end = b.is_empty();
                (b, end)
            });
            Ok((read,))
        },
    );
    linker.allow_shadowing(false);
    linked
}

/// Up to `len` bytes at `offset`, in a buffer the kernel fills directly.
fn read_at(file: &File, len: u64, offset: u64) -> Result<Vec<u8>, ErrorCode> {
    let mut buf = Vec::with_capacity(usize::try_from(len).map_err(|_| ErrorCode::Overflow)?);
    loop {
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), offset) {
            Ok(_) => return Ok(buf),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(error_code(e)),
        }
    }
}

fn error_code(e: rustix::io::Errno) -> ErrorCode {
    use rustix::io::Errno;
    match e {
        Errno::BADF => ErrorCode::BadDescriptor,
        Errno::ISDIR => ErrorCode::IsDirectory,
        Errno::INVAL => ErrorCode::Invalid,
        Errno::OVERFLOW => ErrorCode::Overflow,
        Errno::NOMEM => ErrorCode::InsufficientMemory,
        _ => ErrorCode::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn replaces_a_function_wasi_links() {
        super::super::sandbox::assert_replaces_wasi(INTERFACE, &[READ], add_to_linker);
    }

    #[test]
    fn reads_ranges_and_reports_the_end() {
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        file.write_all(&data).unwrap();
        let got = read_at(&file, MAX_READ, 1000).unwrap();
        assert_eq!(got, data[1000..1000 + MAX_READ as usize]);
        assert_eq!(read_at(&file, 10, 199_995).unwrap(), data[199_995..]);
        assert!(read_at(&file, 10, 200_000).unwrap().is_empty());
    }
}
