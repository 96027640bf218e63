//! A registry of many packages as another tool would write it: index.json
//! and one small tarball each (a README that differs), with checksums that
//! match (no manifests).
//! The P2P suite and benchmark include this file.

use std::path::Path;

use sha2::Digest;

/// `count` packages `<prefix>-00000@1.0.0`, ... in the registry at `root`.
pub fn plant_registry(root: &Path, prefix: &str, count: usize) {
    let mut packages = serde_json::Map::new();
    for i in 0..count {
        let name = format!("{prefix}-{i:05}");
        let tarball = format!("{name}/1.0.0/{name}-1.0.0.tar.gz");
        let bytes = archive(&format!("package {i}"));
        let path = root.join(&tarball);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let sha = hex::encode(sha2::Sha256::digest(&bytes));
        packages.insert(
            name.clone(),
            serde_json::json!({"name": name, "versions": [{"version": "1.0.0",
                "tarball": tarball, "checksum": format!("sha256-{sha}"), "size": bytes.len()}]}),
        );
    }
    let index = serde_json::json!({"version": "1", "packages": packages});
    std::fs::write(root.join("index.json"), index.to_string()).unwrap();
}

/// A tar.gz holding one README.md with `text`.
fn archive(text: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "README.md", text.as_bytes())
        .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}
