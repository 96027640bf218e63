//! `wasi:filesystem` `descriptor.open-at` for plugins, refusing FIFOs,
//! sockets and devices. Opening a FIFO waits for its other end in the host,
//! where no deadline reaches: a FIFO in place of a registry's tarball or
//! index.json held `ggen` (and the install root's lock) forever. A plugin
//! only ever needs files and directories; anything else is refused before
//! the open, and the open itself is wasmtime-wasi's.
//!
//! An open that creates a file is charged to the plugin's write quota
//! (write_quota.rs) here, where the path is looked at anyway.
//!
//! The check looks at the path, then wasmtime-wasi opens it: someone who can
//! swap entries in a granted directory between the two could still make one
//! open wait, which needs write access to that directory while ggen runs.

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    DescriptorFlags, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};

use super::sandbox::{PluginState, WASI_FILESYSTEM as INTERFACE};
const OPEN_AT: &str = "[method]descriptor.open-at";

type Opened = Result<Resource<Descriptor>, ErrorCode>;

/// Replace the `descriptor.open-at` that WASI linked.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = linker.instance(INTERFACE)?.func_wrap(
        OPEN_AT,
        |mut store,
         (fd, path_flags, path, oflags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            let state = store.data_mut();
            if let Descriptor::Dir(dir) = state.table.get(&fd)? {
                match look(
                    &dir.dir,
                    &path,
                    path_flags.contains(PathFlags::SYMLINK_FOLLOW),
                ) {
                    Found::Special => return Ok((Err(ErrorCode::Unsupported),)),
                    Found::Absent if oflags.contains(OpenFlags::CREATE) => {
                        super::write_quota::charge_entry(state)?;
                    }
                    Found::Usual | Found::Absent => {}
                }
            }
            let opened: Opened = super::sandbox::wasi_fs_result(HostDescriptor::open_at(
                &mut state.filesystem(),
                fd,
                path_flags,
                path,
                oflags,
                flags,
            ))?;
            Ok((opened,))
        },
    );
    linker.allow_shadowing(false);
    linked
}

#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// A file, a directory or a symbolic link.
    Usual,
    /// Anything else (a FIFO, a socket, a device).
    Special,
    /// Nothing there yet, or it cannot be looked at (outside the directory,
    /// out of descriptors): left to the open, which reports it as WASI does
    /// (an open that creates counts as creating: it may well succeed).
    Absent,
}

/// What `path` under `dir` is.
fn look(dir: &std::fs::File, path: &str, follow: bool) -> Found {
    let Ok(dup) = dir.try_clone() else {
        return Found::Absent;
    };
    let dir = cap_std::fs::Dir::from_std_file(dup);
    let meta = if follow {
        dir.metadata(path)
    } else {
        dir.symlink_metadata(path)
    };
    match meta {
        Ok(m) => {
            let kind = m.file_type();
            if kind.is_file() || kind.is_dir() || kind.is_symlink() {
                Found::Usual
            } else {
                Found::Special
            }
        }
        Err(_) => Found::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_a_function_wasi_links() {
        super::super::sandbox::assert_replaces_wasi(INTERFACE, &[OPEN_AT], add_to_linker);
    }

    #[test]
    fn fifos_are_special_files_and_directories_are_not() {
        let is_special = |dir: &std::fs::File, path: &str, follow: bool| {
            look(dir, path, follow) == Found::Special
        };
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("file"), "x").unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("fifo", tmp.path().join("link")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(tmp.path().join("fifo"))
            .status()
            .unwrap();
        assert!(made.success());
        let dir = std::fs::File::open(tmp.path()).unwrap();
        assert!(is_special(&dir, "fifo", false));
        assert!(is_special(&dir, "link", true), "followed to the FIFO");
        assert!(!is_special(&dir, "link", false));
        for ok in ["file", "sub", ".", "missing", "../outside", "/etc/passwd"] {
            assert!(!is_special(&dir, ok, true), "{ok}");
        }
        assert_eq!(look(&dir, "missing", true), Found::Absent);
        assert_eq!(look(&dir, "sub/missing", false), Found::Absent);
        assert_eq!(look(&dir, "../outside", true), Found::Absent);
        assert_eq!(look(&dir, "file", true), Found::Usual);
    }
}
