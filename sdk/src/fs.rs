//! Fast whole-file and range reads for plugins.
//!
//! In a component, `std::fs` reads go through wasi-libc's non-blocking
//! streams, which wasmtime serves in 64 KiB chunks with a thread hop each; on
//! a multi-megabyte file that is ~10x slower than the host. These helpers call
//! `wasi:filesystem` `descriptor.read` directly (served inline). Outside
//! WebAssembly they are plain `std::fs`.

use std::io;
use std::path::Path;
use std::time::SystemTime;

/// The whole file.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let file = RangeFile::open(path)?;
    let len = usize::try_from(file.len()).map_err(io::Error::other)?;
    file.read_at(0, len)
}

/// A file opened once for any number of positioned reads.
pub struct RangeFile {
    inner: imp::File,
    len: u64,
    modified: Option<SystemTime>,
}

impl RangeFile {
    pub fn open(path: &Path) -> io::Result<Self> {
        let (inner, len, modified) = imp::open(path)?;
        Ok(Self {
            inner,
            len,
            modified,
        })
    }

    /// Size when opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Modification time when opened (of this file, whatever has its name
    /// since), if the system keeps one.
    pub fn modified(&self) -> Option<SystemTime> {
        self.modified
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `len` bytes from `offset`; `UnexpectedEof` if the file is shorter.
    pub fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        // Sized by what the file can give: a length read from a damaged file
        // must not reserve gigabytes.
        let room = usize::try_from(self.len.saturating_sub(offset)).unwrap_or(usize::MAX);
        let mut out = Vec::with_capacity(len.min(room));
        self.read_chunks(offset, len as u64, |piece| {
            out.extend_from_slice(piece);
            Ok(())
        })?;
        Ok(out)
    }

    /// `len` bytes from `offset`, handed to `each` piece by piece in the
    /// sizes the platform reads best (in a component, what one host call
    /// returns), without gathering them: a large range scanned in flat memory
    /// and with no copy beyond the read itself.
    pub fn read_chunks(
        &self,
        offset: u64,
        len: u64,
        mut each: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let (mut at, end) = (offset, offset.saturating_add(len));
        let mut buf = Vec::new();
        while at < end {
            let piece = imp::read_piece(&self.inner, at, end - at, &mut buf)?;
            if piece.is_empty() {
                return Err(short_file());
            }
            at += piece.len() as u64;
            each(piece)?;
        }
        Ok(())
    }
}

fn short_file() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "file is shorter than expected",
    )
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::io::{self, Read, Seek, SeekFrom};
    use std::path::Path;
    use std::time::SystemTime;

    pub type File = std::cell::RefCell<std::fs::File>;

    pub fn open(path: &Path) -> io::Result<(File, u64, Option<SystemTime>)> {
        let file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        Ok((
            std::cell::RefCell::new(file),
            meta.len(),
            meta.modified().ok(),
        ))
    }

    /// Up to `max` bytes at `at` (at most 256 KiB: small enough to stay in
    /// cache between the read and the scan), read into `buf`.
    pub fn read_piece<'b>(
        file: &File,
        at: u64,
        max: u64,
        buf: &'b mut Vec<u8>,
    ) -> io::Result<&'b [u8]> {
        const PIECE: u64 = 256 << 10;
        let mut file = file.borrow_mut();
        file.seek(SeekFrom::Start(at))?;
        buf.resize(PIECE.min(max) as usize, 0);
        let n = file.read(buf)?;
        Ok(&buf[..n])
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use std::io;
    use std::path::{Component, Path};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use wasip2::filesystem::preopens::get_directories;
    use wasip2::filesystem::types::{Descriptor, DescriptorFlags, ErrorCode, OpenFlags, PathFlags};

    pub type File = Descriptor;

    pub fn open(path: &Path) -> io::Result<(File, u64, Option<SystemTime>)> {
        let file = open_descriptor(path)?;
        let stat = file.stat().map_err(error)?;
        // As std's metadata reads it: seconds and nanoseconds since 1970.
        let modified = stat.data_modification_timestamp.and_then(|t| {
            (UNIX_EPOCH.checked_add(Duration::from_secs(t.seconds))?)
                .checked_add(Duration::from_nanos(t.nanoseconds.into()))
        });
        Ok((file, stat.size, modified))
    }

    /// Up to `max` bytes at `at`: what one host call returns (ggen serves at
    /// most 64 KiB), kept in `buf` without a copy.
    pub fn read_piece<'b>(
        file: &File,
        at: u64,
        max: u64,
        buf: &'b mut Vec<u8>,
    ) -> io::Result<&'b [u8]> {
        *buf = file.read(max, at).map_err(error)?.0;
        Ok(buf)
    }

    thread_local! {
        /// The preopened directories never change while an instance lives:
        /// asked for once, not on every open.
        static PREOPENS: Vec<(Descriptor, String)> = get_directories();
    }

    /// Open `path` (absolute, under one of the preopened directories) for reading.
    fn open_descriptor(path: &Path) -> io::Result<Descriptor> {
        PREOPENS.with(|preopens| {
            let (dir, rel) = preopens
                .iter()
                .filter_map(|(dir, guest)| Some((dir, guest.len(), path.strip_prefix(guest).ok()?)))
                .max_by_key(|&(_, prefix_len, _)| prefix_len)
                .map(|(dir, _, rel)| (dir, rel))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{} is not under a preopened directory", path.display()),
                    )
                })?;
            // `..` goes to the sandbox as is: it resolves inside the
            // directory and is refused where it would leave it.
            let rel = rel
                .components()
                .filter_map(|c| match c {
                    Component::CurDir => None,
                    other => Some(other.as_os_str().to_str()),
                })
                .collect::<Option<Vec<&str>>>()
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{} is not valid UTF-8", path.display()),
                    )
                })?;
            dir.open_at(
                PathFlags::SYMLINK_FOLLOW,
                &rel.join("/"),
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
            .map_err(error)
        })
    }

    /// As `std::fs` would report it ("permission denied"), not the
    /// binding's debug dump.
    fn error(code: ErrorCode) -> io::Error {
        match code {
            ErrorCode::NoEntry => io::ErrorKind::NotFound.into(),
            ErrorCode::Access | ErrorCode::NotPermitted => io::ErrorKind::PermissionDenied.into(),
            other => io::Error::other(other.name()),
        }
    }
}
