//! Hostile tar.gz archives, written byte by byte (the tar crate refuses to
//! create most of them). Shared by the unpack and install suites.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use tar::{EntryType, Header};

/// One raw entry: `name` written verbatim into the header.
pub fn entry(name: &[u8], kind: EntryType, data: &[u8]) -> Vec<u8> {
    entry_sized(name, kind, data, data.len() as u64)
}

/// Like [`entry`], with a size field that may lie about the data.
pub fn entry_sized(name: &[u8], kind: EntryType, data: &[u8], claimed: u64) -> Vec<u8> {
    // The tar crate reads sparse entries only from GNU headers and PAX
    // extensions only from GNU or ustar ones.
    let mut h = match kind {
        EntryType::GNUSparse => Header::new_gnu(),
        EntryType::XHeader => Header::new_ustar(),
        _ => Header::new_old(),
    };
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    if let Some(gnu) = h.as_gnu_mut() {
        gnu.set_real_size(claimed);
    }
    h.set_size(claimed);
    h.set_mode(0o644);
    h.set_mtime(0);
    if matches!(kind, EntryType::Symlink | EntryType::Link) {
        h.as_old_mut().linkname[..11].copy_from_slice(b"/etc/passwd");
    }
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// Entries followed by the end-of-archive blocks, gzipped.
pub fn gz(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    for p in parts {
        enc.write_all(p).unwrap();
    }
    enc.write_all(&[0u8; 1024]).unwrap();
    enc.finish().unwrap()
}

/// A tar whose one entry has a path longer than `len` bytes (GNU long name).
pub fn long_path(len: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let half = len / 2;
    let long = format!("{}/{}", "d".repeat(half), "f".repeat(len - half));
    let mut h = Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    builder.append_data(&mut h, &long, &b"x"[..]).unwrap();
    gz(&[builder.into_inner().unwrap()])
}

/// Every kind of hostile archive, with what the refusal must say. Limits
/// assumed: at most 10 entries, 1 MiB of content, 200-byte paths.
pub fn hostile_cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let file = |name: &[u8]| entry(name, EntryType::Regular, b"x");
    let good = gz(&[
        entry(b"a.txt", EntryType::Regular, &[7u8; 50_000]),
        file(b"b.txt"),
    ]);
    // A byte of the CRC trailer: always detected, unlike a flip that may land
    // on bits the decoder ignores.
    let mut flipped = good.clone();
    let crc = flipped.len() - 6;
    flipped[crc] ^= 0x55;
    vec![
        ("traversal", gz(&[file(b"../evil")]), "`..` path component"),
        (
            "nested traversal",
            gz(&[file(b"a/../../evil")]),
            "`..` path component",
        ),
        ("absolute path", gz(&[file(b"/tmp/evil")]), "absolute path"),
        ("backslashes", gz(&[file(b"..\\..\\evil")]), "`\\`"),
        (
            "symlink",
            gz(&[entry(b"link", EntryType::Symlink, b"")]),
            "symbolic link",
        ),
        (
            "hard link",
            gz(&[entry(b"hard", EntryType::Link, b"")]),
            "hard link",
        ),
        (
            "char device",
            gz(&[entry(b"dev", EntryType::Char, b"")]),
            "device file",
        ),
        (
            "block device",
            gz(&[entry(b"blk", EntryType::Block, b"")]),
            "device file",
        ),
        ("fifo", gz(&[entry(b"pipe", EntryType::Fifo, b"")]), "FIFO"),
        (
            "sparse file",
            gz(&[entry(b"sparse", EntryType::GNUSparse, b"")]),
            "sparse file",
        ),
        (
            "duplicate entry",
            gz(&[file(b"a.txt"), file(b"a.txt")]),
            "appears twice",
        ),
        (
            "duplicate via ./",
            gz(&[file(b"a.txt"), file(b"./a.txt")]),
            "appears twice",
        ),
        (
            "file under a file",
            gz(&[file(b"a"), file(b"a/b")]),
            "which is a file",
        ),
        (
            "dir over a file",
            gz(&[file(b"d"), entry(b"d/", EntryType::Directory, b"")]),
            "both a file and a directory",
        ),
        ("non-UTF-8 name", gz(&[file(b"caf\xe9.txt")]), "not UTF-8"),
        (
            "control characters",
            gz(&[file(b"bell\x07.txt")]),
            "control characters",
        ),
        ("long path", long_path(300), "longer than 200 bytes"),
        (
            "too many entries",
            gz(&(0..11)
                .map(|i| file(format!("f{i}").as_bytes()))
                .collect::<Vec<_>>()),
            "limit of 10 entries",
        ),
        (
            "content bomb",
            gz(&[entry(b"zeros", EntryType::Regular, &vec![0u8; 4 << 20])]),
            "limit of 1048576 bytes",
        ),
        // unpack alone stops it at its decompression budget; install refuses it
        // earlier, in the raw metadata pass: both say "exceeds the limit of".
        (
            "pax header bomb",
            gz(&[entry(b"pax", EntryType::XHeader, &vec![b'a'; 8 << 20])]),
            "exceeds the limit of",
        ),
        (
            "truncated entry",
            gz(&[entry_sized(
                b"short",
                EntryType::Regular,
                &[1u8; 1000],
                10_000,
            )]),
            "corrupt or truncated",
        ),
        (
            "truncated gzip",
            good[..good.len() / 3].to_vec(),
            "corrupt or truncated",
        ),
        ("corrupt gzip", flipped, "corrupt"),
        (
            "not gzip",
            b"this is not a gzip stream at all".to_vec(),
            "corrupt",
        ),
    ]
}
