//! The unpacker against every kind of hostile archive (tests/support/archives.rs):
//! each refused, nothing written outside the staging directory.

mod support;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ggen::backend::unpack::{UnpackError, UnpackLimits, Unpacked, unpack};
use support::archives::{entry, gz, hostile_cases};
use tar::EntryType;

const SMALL: UnpackLimits = UnpackLimits {
    max_entries: 10,
    max_bytes: 1 << 20,
    max_path: 200,
};

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
        let dir =
            Dir::open_ambient_dir(self.root.path().join("stage"), ambient_authority()).unwrap();
        unpack(bytes, &dir, limits)
    }

    /// Nothing but the staging directory exists beside it.
    fn assert_contained(&self) {
        let names: Vec<_> = std::fs::read_dir(self.root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            ["stage"],
            "something was written outside the staging directory"
        );
        assert!(!std::path::Path::new("/tmp/evil").exists());
    }
}

#[test]
fn hostile_archives_are_refused() {
    let cases = hostile_cases();
    assert!(cases.len() >= 20);
    for (what, bytes, expected) in cases {
        let stage = Stage::new();
        let err = stage.unpack(&bytes, &SMALL).expect_err(what).to_string();
        stage.assert_contained();
        assert!(
            err.contains(expected),
            "{what}: expected `{expected}` in: {err}"
        );
    }
}

#[test]
fn a_long_component_is_refused_even_under_a_generous_path_limit() {
    let stage = Stage::new();
    let err = stage
        .unpack(
            &support::archives::long_path(600),
            &UnpackLimits {
                max_path: 4096,
                ..SMALL
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("component longer than 255"),
        "{err}"
    );
}

#[test]
fn packed_packages_round_trip() {
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("templates/deep")).unwrap();
    std::fs::write(
        src.path().join("package.json"),
        r#"{"name":"rt","version":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(src.path().join("templates/deep/x.tmpl"), "{{x}}").unwrap();
    std::fs::write(src.path().join("run.sh"), "#!/bin/sh\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            src.path().join("run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    let mut tarball = tempfile::tempfile().unwrap();
    ggen::backend::archive::pack(
        &ggen::backend::archive::files(src.path()).unwrap(),
        &mut tarball,
    )
    .unwrap();
    use std::io::Seek;
    tarball.rewind().unwrap();

    let stage = Stage::new();
    let dir = Dir::open_ambient_dir(stage.root.path().join("stage"), ambient_authority()).unwrap();
    let done = unpack(&tarball, &dir, &UnpackLimits::default()).unwrap();
    assert_eq!(done.files, 3);
    let out = stage.root.path().join("stage");
    assert_eq!(
        std::fs::read_to_string(out.join("templates/deep/x.tmpl")).unwrap(),
        "{{x}}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(out.join("run.sh"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
        assert_eq!(
            std::fs::metadata(out.join("package.json"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o644
        );
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
    assert_eq!(
        done.digests.keys().collect::<Vec<_>>(),
        ["src/lib.rs", "top/file"]
    );
    assert_eq!(
        done.digests["top/file"],
        "sha256-e3b98a4da31a127d4bde6e43033f66ba274cab0eb7eb1c70ec41402bf6273dd8"
    );
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

#[test]
fn oversized_metadata_entries_are_refused_before_they_are_buffered() {
    use ggen::backend::unpack::{MAX_METADATA_ENTRY, check_metadata};
    let big = gz(&[entry(
        b"pax",
        EntryType::XHeader,
        &vec![b'a'; (MAX_METADATA_ENTRY + 1) as usize],
    )]);
    let err = check_metadata(&big[..]).unwrap_err().to_string();
    assert!(err.contains("PAX or long-name entry"), "{err}");
    // A normal archive, and a long name well under the limit, pass.
    assert!(check_metadata(&gz(&[entry(b"a.txt", EntryType::Regular, b"x")])[..]).is_ok());
    assert!(check_metadata(&support::archives::long_path(300)[..]).is_ok());
}
