//! Reading the small files ggen keeps for itself (config.toml, ggen.lock,
//! journals, peers.json): a regular file only, of bounded size. A FIFO in
//! their place would block forever and `/dev/zero` would fill memory.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The text of `path` (symlinks followed), at most `max` bytes.
pub fn read_to_string(path: &Path, max: u64) -> io::Result<String> {
    let not_regular = || io::Error::new(io::ErrorKind::InvalidInput, "it is not a regular file");
    // Non-blocking, so that opening a FIFO returns at once.
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
    {
        Ok(file) => file,
        // A socket cannot be opened at all.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {
            return Err(not_regular());
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if let Some(why) = unfit(&meta, max) {
        let kind = match meta.is_file() {
            true => io::ErrorKind::InvalidData,
            false => io::ErrorKind::InvalidInput,
        };
        return Err(io::Error::new(kind, why));
    }
    let too_big = |len: u64| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it is {len} bytes; the limit is {max}"),
        )
    };
    let mut text = String::new();
    file.take(max + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(too_big(text.len() as u64));
    }
    Ok(text)
}

/// Why a file with `meta` is not read: it is no regular file (a FIFO that
/// never ends, a device, a directory), or over `max` bytes.
pub fn unfit(meta: &std::fs::Metadata, max: u64) -> Option<String> {
    if meta.is_dir() {
        Some("it is a directory".into())
    } else if !meta.is_file() {
        Some("it is not a regular file".into())
    } else {
        (meta.len() > max).then(|| format!("it is {} bytes; the limit is {max}", meta.len()))
    }
}

/// [`read_to_string`], or `None` if there is no file. A symlink to nothing
/// is an error, not a missing file: writing one in its place would cut the
/// link (and leave what it stood for, such as an installed tree, unlisted).
pub fn read_if_present(path: &Path, max: u64) -> io::Result<Option<String>> {
    match read_to_string(path, max) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match path.symlink_metadata() {
            Ok(_) => Err(io::Error::other(
                "it is a symbolic link to a file that does not exist",
            )),
            Err(_) => Ok(None),
        },
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bounded_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "hello").unwrap();
        assert_eq!(read_to_string(&file, 5).unwrap(), "hello");
        assert!(
            read_to_string(&file, 4)
                .unwrap_err()
                .to_string()
                .contains("limit is 4")
        );
        let err = read_to_string(Path::new("/dev/zero"), 100).unwrap_err();
        assert_eq!(err.to_string(), "it is not a regular file");
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::RWXU).unwrap();
        assert!(read_to_string(&fifo, 100).is_err());
        // A socket refuses to be opened ("No such device or address").
        let socket = dir.path().join("socket");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let err = read_to_string(&socket, 100).unwrap_err();
        assert_eq!(err.to_string(), "it is not a regular file");
        assert_eq!(
            read_to_string(&dir.path().join("none"), 1)
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
    }
}
