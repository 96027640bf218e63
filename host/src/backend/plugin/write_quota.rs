//! The write quota ([`WriteQuota`]) enforced inside WASI: the functions
//! that put bytes into files or create entries are replaced by ones that
//! count first and stop the plugin (a trap) at the quota, then do what
//! wasmtime-wasi does. Bytes are counted on streams opened on files
//! (`write-via-stream`, `append-via-stream`), not on stdout and stderr,
//! which have their own cap. Writing past a file's end counts the gap too
//! (a byte written a terabyte in makes a terabyte file to read). A plugin
//! without a quota is not counted.
//!
//! With a quota, a non-blocking write to a file finishes before the call
//! returns: wasmtime-wasi runs it on a thread the store's end does not
//! stop, so it could go on after the files were checked and moved.

use std::collections::HashSet;

use wasmtime::StoreContextMut;
use wasmtime::component::{ComponentType, Lift, Linker, Resource, ResourceTable};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::StreamResult;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{ErrorCode, HostDescriptor, PathFlags};
use wasmtime_wasi::p2::bindings::sync::io::streams::{
    self, HostOutputStream, InputStream, OutputStream, StreamError,
};

use super::policy::{WriteQuota, Writes};
use super::sandbox::{
    PluginState, WASI_FILESYSTEM as FILESYSTEM, WASI_STREAMS as STREAMS,
    wasi_fs_result as fs_result,
};

/// What a plugin with a quota has written so far.
#[derive(Debug)]
pub(super) struct WriteBudget {
    pub quota: WriteQuota,
    bytes: u64,
    entries: u64,
    /// Output streams opened on files (by resource index). An index reused
    /// for stdout after the file's stream is dropped counts that output
    /// too: more, never less.
    file_streams: HashSet<u32>,
    /// Which quota stopped the plugin.
    pub hit: Option<Exceeded>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exceeded {
    Bytes,
    Entries,
}

impl WriteBudget {
    pub fn new(quota: WriteQuota) -> Self {
        Self {
            quota,
            bytes: 0,
            entries: 0,
            file_streams: HashSet::new(),
            hit: None,
        }
    }

    fn charge_bytes(&mut self, n: u64) -> wasmtime::Result<()> {
        self.bytes = self.bytes.saturating_add(n);
        self.stop_past(self.bytes > self.quota.left.bytes, Exceeded::Bytes)
    }

    fn charge_entry(&mut self) -> wasmtime::Result<()> {
        self.entries += 1;
        self.stop_past(self.entries > self.quota.left.entries, Exceeded::Entries)
    }

    fn stop_past(&mut self, over: bool, which: Exceeded) -> wasmtime::Result<()> {
        if over {
            self.hit = Some(which);
            return Err(wasmtime::Error::msg("plugin write quota reached"));
        }
        Ok(())
    }

    fn bytes_left(&self) -> u64 {
        self.quota.left.bytes.saturating_sub(self.bytes)
    }

    /// What has been charged so far.
    pub fn used(&self) -> Writes {
        Writes {
            bytes: self.bytes.min(self.quota.left.bytes),
            entries: self.entries.min(self.quota.left.entries),
        }
    }
}

/// Charge `n` bytes written to `stream`, if it is a file's.
fn charge_stream(state: &mut PluginState, stream: u32, n: u64) -> wasmtime::Result<()> {
    match &mut state.writes {
        Some(b) if b.file_streams.contains(&stream) => b.charge_bytes(n),
        _ => Ok(()),
    }
}

fn charge_bytes(state: &mut PluginState, n: u64) -> wasmtime::Result<()> {
    state.writes.as_mut().map_or(Ok(()), |b| b.charge_bytes(n))
}

/// Charge one created entry (open-at with `create` of a path that is not
/// there yet uses this too).
pub(super) fn charge_entry(state: &mut PluginState) -> wasmtime::Result<()> {
    state
        .writes
        .as_mut()
        .map_or(Ok(()), WriteBudget::charge_entry)
}

/// Replace the WASI functions that write or create.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = add_streams(linker).and_then(|()| add_filesystem(linker));
    linker.allow_shadowing(false);
    linked
}

type Store<'a> = StoreContextMut<'a, PluginState>;
type Written = (Result<(), StreamError>,);
type Spliced = (Result<u64, StreamError>,);

fn add_streams(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    let mut streams = linker.instance(STREAMS)?;
    let bytes = |b: &Vec<u8>| b.len() as u64;
    let zeroes = |n: &u64| *n;
    wrap_write(&mut streams, "write", bytes, HostOutputStream::write)?;
    wrap_write(
        &mut streams,
        "blocking-write-and-flush",
        bytes,
        HostOutputStream::blocking_write_and_flush,
    )?;
    wrap_write(
        &mut streams,
        "write-zeroes",
        zeroes,
        HostOutputStream::write_zeroes,
    )?;
    wrap_write(
        &mut streams,
        "blocking-write-zeroes-and-flush",
        zeroes,
        HostOutputStream::blocking_write_zeroes_and_flush,
    )?;
    wrap_splice(&mut streams, "splice", HostOutputStream::splice)?;
    wrap_splice(
        &mut streams,
        "blocking-splice",
        HostOutputStream::blocking_splice,
    )
}

type Streams<'a> = wasmtime::component::LinkerInstance<'a, PluginState>;

/// Replace `output-stream.<method>`, which writes what `arg` says
/// (`size` bytes): charged first, then done, and finished.
fn wrap_write<A>(
    streams: &mut Streams,
    method: &str,
    size: fn(&A) -> u64,
    write: fn(&mut ResourceTable, Resource<OutputStream>, A) -> StreamResult<()>,
) -> wasmtime::Result<()>
where
    A: ComponentType + Lift + Send + Sync + 'static,
{
    streams.func_wrap(
        &format!("[method]output-stream.{method}"),
        move |mut store: Store,
              (out, arg): (Resource<OutputStream>, A)|
              -> wasmtime::Result<Written> {
            let state = store.data_mut();
            let rep = out.rep();
            charge_stream(state, rep, size(&arg))?;
            let written = write(&mut state.table, out, arg).and_then(|()| finish(state, rep));
            Ok((stream_result(state, written)?,))
        },
    )
}

/// Replace `output-stream.<method>`, a splice: it writes what it read, at
/// most what is left, then charged.
fn wrap_splice(
    streams: &mut Streams,
    method: &str,
    splice: fn(
        &mut ResourceTable,
        Resource<OutputStream>,
        Resource<InputStream>,
        u64,
    ) -> StreamResult<u64>,
) -> wasmtime::Result<()> {
    streams.func_wrap(
        &format!("[method]output-stream.{method}"),
        move |mut store: Store,
              (out, src, len): (Resource<OutputStream>, Resource<InputStream>, u64)|
              -> wasmtime::Result<Spliced> {
            let state = store.data_mut();
            let len = splice_len(state, &out, len)?;
            let rep = out.rep();
            let spliced = splice(&mut state.table, out, src, len);
            charge_stream(state, rep, *spliced.as_ref().unwrap_or(&0))?;
            let spliced = spliced.and_then(|n| finish(state, rep).map(|()| n));
            Ok((stream_result(state, spliced)?,))
        },
    )
}

/// Wait for a write just started on a file's stream (a plugin with a quota;
/// the blocking calls have finished already, and this returns at once).
fn finish(state: &mut PluginState, stream: u32) -> StreamResult<()> {
    match &state.writes {
        Some(b) if b.file_streams.contains(&stream) => {
            HostOutputStream::blocking_flush(&mut state.table, Resource::new_borrow(stream))
        }
        _ => Ok(()),
    }
}

/// A splice into a file's stream asks for no more than the quota has left;
/// with nothing left, asking at all is past it.
fn splice_len(
    state: &mut PluginState,
    out: &Resource<OutputStream>,
    len: u64,
) -> wasmtime::Result<u64> {
    match &mut state.writes {
        Some(b) if len > 0 && b.file_streams.contains(&out.rep()) => match b.bytes_left() {
            0 => b.charge_bytes(len).map(|()| len),
            left => Ok(len.min(left)),
        },
        _ => Ok(len),
    }
}

/// A stream call's answer as WASI returns it (its error a resource).
fn stream_result<T>(
    state: &mut PluginState,
    result: StreamResult<T>,
) -> wasmtime::Result<Result<T, StreamError>> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(e) => Ok(Err(streams::Host::convert_stream_error(
            &mut state.table,
            e,
        )?)),
    }
}

type Created = (Result<(), ErrorCode>,);
type Opened = (Result<Resource<OutputStream>, ErrorCode>,);

fn add_filesystem(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    let mut fs = linker.instance(FILESYSTEM)?;
    fs.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store: Store, (fd, offset): (Resource<Descriptor>, u64)| -> wasmtime::Result<Opened> {
            let state = store.data_mut();
            let gap = past_end(state, &fd, offset);
            charge_bytes(state, gap)?;
            let opened = HostDescriptor::write_via_stream(&mut state.filesystem(), fd, offset);
            Ok((fs_result(opened.inspect(|s| note_file_stream(state, s)))?,))
        },
    )?;
    fs.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store: Store, (fd,): (Resource<Descriptor>,)| -> wasmtime::Result<Opened> {
            let state = store.data_mut();
            let opened = HostDescriptor::append_via_stream(&mut state.filesystem(), fd);
            Ok((fs_result(opened.inspect(|s| note_file_stream(state, s)))?,))
        },
    )?;
    fs.func_wrap(
        "[method]descriptor.write",
        |mut store: Store,
         (fd, bytes, offset): (Resource<Descriptor>, Vec<u8>, u64)|
         -> wasmtime::Result<(Result<u64, ErrorCode>,)> {
            let state = store.data_mut();
            let gap = past_end(state, &fd, offset);
            charge_bytes(state, gap.saturating_add(bytes.len() as u64))?;
            Ok((fs_result(HostDescriptor::write(
                &mut state.filesystem(),
                fd,
                bytes,
                offset,
            ))?,))
        },
    )?;
    // Growing a file adds bytes (zeroes) as writing them would.
    fs.func_wrap(
        "[method]descriptor.set-size",
        |mut store: Store, (fd, size): (Resource<Descriptor>, u64)| -> wasmtime::Result<Created> {
            let state = store.data_mut();
            let grown = past_end(state, &fd, size);
            charge_bytes(state, grown)?;
            Ok((fs_result(HostDescriptor::set_size(
                &mut state.filesystem(),
                fd,
                size,
            ))?,))
        },
    )?;
    fs.func_wrap(
        "[method]descriptor.create-directory-at",
        |mut store: Store,
         (fd, path): (Resource<Descriptor>, String)|
         -> wasmtime::Result<Created> {
            let state = store.data_mut();
            charge_entry(state)?;
            Ok((fs_result(HostDescriptor::create_directory_at(
                &mut state.filesystem(),
                fd,
                path,
            ))?,))
        },
    )?;
    fs.func_wrap(
        "[method]descriptor.symlink-at",
        |mut store: Store,
         (fd, old, new): (Resource<Descriptor>, String, String)|
         -> wasmtime::Result<Created> {
            let state = store.data_mut();
            charge_entry(state)?;
            Ok((fs_result(HostDescriptor::symlink_at(
                &mut state.filesystem(),
                fd,
                old,
                new,
            ))?,))
        },
    )?;
    fs.func_wrap(
        "[method]descriptor.link-at",
        |mut store: Store,
         (fd, flags, old, new_dir, new): (
            Resource<Descriptor>,
            PathFlags,
            String,
            Resource<Descriptor>,
            String,
        )|
         -> wasmtime::Result<Created> {
            let state = store.data_mut();
            charge_entry(state)?;
            let linked =
                HostDescriptor::link_at(&mut state.filesystem(), fd, flags, old, new_dir, new);
            Ok((fs_result(linked)?,))
        },
    )?;
    Ok(())
}

/// How far `offset` lies past the end of the file `fd` (0 without a
/// quota, or when it is not a file: the call then fails as WASI does).
fn past_end(state: &PluginState, fd: &Resource<Descriptor>, offset: u64) -> u64 {
    if state.writes.is_none() {
        return 0;
    }
    match state.table.get(fd) {
        Ok(Descriptor::File(f)) => offset.saturating_sub(f.file.metadata().map_or(0, |m| m.len())),
        _ => 0,
    }
}

fn note_file_stream(state: &mut PluginState, stream: &Resource<OutputStream>) {
    if let Some(b) = &mut state.writes {
        b.file_streams.insert(stream.rep());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_functions_wasi_links() {
        super::super::sandbox::assert_replaces_wasi(
            STREAMS,
            &[
                "[method]output-stream.write",
                "[method]output-stream.blocking-write-and-flush",
                "[method]output-stream.write-zeroes",
                "[method]output-stream.blocking-write-zeroes-and-flush",
                "[method]output-stream.splice",
                "[method]output-stream.blocking-splice",
            ],
            add_streams_only,
        );
        super::super::sandbox::assert_replaces_wasi(
            FILESYSTEM,
            &[
                "[method]descriptor.write-via-stream",
                "[method]descriptor.append-via-stream",
                "[method]descriptor.write",
                "[method]descriptor.set-size",
                "[method]descriptor.create-directory-at",
                "[method]descriptor.symlink-at",
                "[method]descriptor.link-at",
            ],
            add_to_linker,
        );
    }

    fn add_streams_only(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        linker.allow_shadowing(true);
        add_streams(linker)
    }

    #[test]
    fn the_budget_stops_past_the_quota_and_says_which() {
        let left = Writes {
            bytes: 10,
            entries: 1,
        };
        let mut b = WriteBudget::new(WriteQuota { left, limit: left });
        b.charge_bytes(10).unwrap();
        assert_eq!(b.bytes_left(), 0);
        assert!(b.hit.is_none());
        assert!(b.charge_bytes(1).is_err());
        assert_eq!(b.hit, Some(Exceeded::Bytes));
        b.charge_entry().unwrap();
        assert!(b.charge_entry().is_err());
        assert_eq!(b.hit, Some(Exceeded::Entries));
    }
}
