//! Hostile archives, each built byte by byte (the tar crate refuses to write
//! most of them), must be refused with nothing written outside the staging dir.

use std::io::Write;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use flate2::Compression;
use flate2::write::GzEncoder;
use tar::{EntryType, Header};

use super::{UnpackError, UnpackLimits, Unpacked, unpack};

const SMALL: UnpackLimits = UnpackLimits { max_entries: 10, max_bytes: 1 << 20, max_path: 200 };

/// One raw entry: a v7 header with `name` written verbatim.
fn entry(name: &[u8], kind: EntryType, data: &[u8]) -> Vec<u8> {
    entry_sized(name, kind, data, data.len() as u64)
}

fn entry_sized(name: &[u8], kind: EntryType, data: &[u8], claimed: u64) -> Vec<u8> {
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

fn gz(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    for p in parts {
        enc.write_all(p).unwrap();
    }
    enc.write_all(&[0u8; 1024]).unwrap();
    enc.finish().unwrap()
}

struct Stage {
    root: tempfile::TempDir,
}

impl Stage {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("stage")).unwrap();
        Self { root }
    }

    fn unpack(&self, bytes: &[u8], limits: &UnpackLimits) -> Result<Unpacked, UnpackError> {
        let dir = Dir::open_ambient_dir(self.root.path().join("stage"), ambient_authority()).unwrap();
        unpack(bytes, &dir, limits)
    }

    /// Nothing but the staging directory exists beside it.
    fn assert_contained(&self) {
        let names: Vec<_> = std::fs::read_dir(self.root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["stage"], "something was written outside the staging directory");
        assert!(!std::path::Path::new("/tmp/evil").exists());
    }
}

fn refused(bytes: &[u8], limits: &UnpackLimits) -> String {
    let stage = Stage::new();
    let err = stage.unpack(bytes, limits).expect_err("hostile archive was accepted");
    stage.assert_contained();
    err.to_string()
}

#[test]
fn hostile_archives_are_refused() {
    let file = |name: &[u8]| entry(name, EntryType::Regular, b"x");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("traversal", gz(&[file(b"../evil")]), "`..` path component"),
        ("nested traversal", gz(&[file(b"a/../../evil")]), "`..` path component"),
        ("absolute path", gz(&[file(b"/tmp/evil")]), "absolute path"),
        ("backslashes", gz(&[file(b"..\\..\\evil")]), "`\\`"),
        ("symlink", gz(&[entry(b"link", EntryType::Symlink, b"")]), "symbolic link"),
        ("hard link", gz(&[entry(b"hard", EntryType::Link, b"")]), "hard link"),
        ("char device", gz(&[entry(b"dev", EntryType::Char, b"")]), "device file"),
        ("block device", gz(&[entry(b"blk", EntryType::Block, b"")]), "device file"),
        ("fifo", gz(&[entry(b"pipe", EntryType::Fifo, b"")]), "FIFO"),
        ("sparse file", gz(&[entry(b"sparse", EntryType::GNUSparse, b"")]), "sparse file"),
        ("duplicate entry", gz(&[file(b"a.txt"), file(b"a.txt")]), "appears twice"),
        ("duplicate via ./", gz(&[file(b"a.txt"), file(b"./a.txt")]), "appears twice"),
        ("file under a file", gz(&[file(b"a"), file(b"a/b")]), "which is a file"),
        ("dir over a file", gz(&[file(b"d"), entry(b"d/", EntryType::Directory, b"")]), "both a file and a directory"),
        ("non-UTF-8 name", gz(&[file(b"caf\xe9.txt")]), "not UTF-8"),
        ("control characters", gz(&[file(b"bell\x07.txt")]), "control characters"),
        ("long component", gz(&[file(&[b'a'; 99])]), "longer than"),
        ("too many entries", gz(&(0..11).map(|i| file(format!("f{i}").as_bytes())).collect::<Vec<_>>()), "limit of 10 entries"),
        ("content bomb", gz(&[entry(b"zeros", EntryType::Regular, &vec![0u8; 4 << 20])]), "limit of 1048576 bytes"),
        ("pax header bomb", gz(&[entry(b"pax", EntryType::XHeader, &vec![b'a'; 8 << 20])]), "decompressed bytes"),
        ("truncated entry", gz(&[entry_sized(b"short", EntryType::Regular, &[1u8; 1000], 10_000)]), "corrupt or truncated"),
        ("not gzip", b"this is not a gzip stream at all".to_vec(), "corrupt"),
    ];
    let limits = UnpackLimits { max_path: 90, ..SMALL };
    for (what, bytes, expected) in cases {
        let err = refused(&bytes, &limits);
        assert!(err.contains(expected), "{what}: expected `{expected}` in: {err}");
    }
}

#[test]
fn truncated_and_corrupt_gzip_are_refused() {
    let good = gz(&[entry(b"a.txt", EntryType::Regular, &[7u8; 50_000]), entry(b"b.txt", EntryType::Regular, b"b")]);
    assert!(Stage::new().unpack(&good, &SMALL).is_ok());
    // Cut anywhere: the stream ends early.
    for cut in [good.len() / 3, good.len() - 4] {
        assert!(refused(&good[..cut], &SMALL).contains("corrupt or truncated"), "cut at {cut}");
    }
    // A flipped byte in the compressed data or the CRC trailer.
    for at in [good.len() / 2, good.len() - 6] {
        let mut bad = good.clone();
        bad[at] ^= 0x55;
        assert!(refused(&bad, &SMALL).contains("corrupt"), "flip at {at}");
    }
}

#[test]
fn long_paths_over_the_limit_are_refused() {
    // GNU long-name entries carry paths longer than the header's 100 bytes.
    let mut builder = tar::Builder::new(Vec::new());
    let long = format!("{}/{}", "d".repeat(150), "f".repeat(150));
    let mut h = Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    builder.append_data(&mut h, &long, &b"x"[..]).unwrap();
    let err = refused(&gz(&[builder.into_inner().unwrap()]), &SMALL);
    assert!(err.contains("longer than 200 bytes"), "{err}");
}

#[test]
fn packed_packages_round_trip() {
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("templates/deep")).unwrap();
    std::fs::write(src.path().join("package.json"), r#"{"name":"rt","version":"1.0.0"}"#).unwrap();
    std::fs::write(src.path().join("templates/deep/x.tmpl"), "{{x}}").unwrap();
    std::fs::write(src.path().join("run.sh"), "#!/bin/sh\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(src.path().join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut tarball = tempfile::tempfile().unwrap();
    crate::backend::archive::pack(src.path(), &mut tarball).unwrap();
    use std::io::Seek;
    tarball.rewind().unwrap();

    let stage = Stage::new();
    let dir = Dir::open_ambient_dir(stage.root.path().join("stage"), ambient_authority()).unwrap();
    let done = unpack(&tarball, &dir, &UnpackLimits::default()).unwrap();
    assert_eq!(done.files, 3);
    let out = stage.root.path().join("stage");
    assert_eq!(std::fs::read_to_string(out.join("templates/deep/x.tmpl")).unwrap(), "{{x}}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(out.join("run.sh")).unwrap().permissions().mode() & 0o777, 0o755);
        assert_eq!(std::fs::metadata(out.join("package.json")).unwrap().permissions().mode() & 0o777, 0o644);
    }
}

#[test]
fn archives_from_other_tools_are_accepted() {
    // `tar czf x.tgz .` style: a `./` root entry and `./`-prefixed paths.
    let bytes = gz(&[
        entry(b"./", EntryType::Directory, b""),
        entry(b"./src/", EntryType::Directory, b""),
        entry(b"./src/lib.rs", EntryType::Regular, b"fn main() {}"),
        entry(b"top//file", EntryType::Regular, b"t"),
    ]);
    let stage = Stage::new();
    let done = stage.unpack(&bytes, &SMALL).unwrap();
    assert_eq!((done.files, done.bytes), (2, 13));
    assert_eq!(done.digests.keys().collect::<Vec<_>>(), ["src/lib.rs", "top/file"]);
    assert_eq!(done.digests["top/file"], "sha256-e3b98a4da31a127d4bde6e43033f66ba274cab0eb7eb1c70ec41402bf6273dd8");
    assert!(stage.root.path().join("stage/src/lib.rs").is_file());
    assert!(stage.root.path().join("stage/top/file").is_file());
}

#[cfg(unix)]
#[test]
fn a_planted_symlink_in_the_stage_cannot_be_followed_out() {
    // Even if something left a symlink inside the staging directory, writing
    // through it is refused by the capability handle.
    let stage = Stage::new();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), stage.root.path().join("stage/escape")).unwrap();
    let bytes = gz(&[entry(b"escape/owned.txt", EntryType::Regular, b"x")]);
    let err = stage.unpack(&bytes, &SMALL).unwrap_err();
    assert!(matches!(err, UnpackError::Write { .. }), "{err}");
    assert!(!outside.path().join("owned.txt").exists());
}
