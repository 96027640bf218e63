//! Writes `ggen-manifest.json` into the installed package: every regular file
//! with its size and sha256, sorted by path, so tools can check an install
//! without ggen.

use std::io::Read;
use std::path::Path;

use ggen_plugin_sdk::{InstallContext, PostInstallHook, hook::PACKAGE_DIR};
use serde::Serialize;
use sha2::{Digest, Sha256};

const MANIFEST: &str = "ggen-manifest.json";

struct FileManifest;

#[derive(Serialize)]
struct Manifest {
    package: String,
    version: String,
    files: Vec<Entry>,
}

#[derive(Serialize)]
struct Entry {
    path: String,
    size: u64,
    sha256: String,
}

impl PostInstallHook for FileManifest {
    fn run(context: InstallContext) -> Result<String, String> {
        let root = Path::new(PACKAGE_DIR);
        let mut files = Vec::new();
        walk(root, "", &mut files)?;
        files.retain(|f| f.path != MANIFEST);
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let count = files.len();
        let manifest = Manifest {
            package: context.package,
            version: context.version,
            files,
        };
        let mut text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
        text.push('\n');
        std::fs::write(root.join(MANIFEST), text)
            .map_err(|e| format!("cannot write {MANIFEST}: {e}"))?;
        Ok(format!("listed {count} files in {MANIFEST}"))
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<Entry>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry
            .file_type()
            .map_err(|e| format!("cannot stat {rel}: {e}"))?;
        if kind.is_dir() {
            walk(&entry.path(), &rel, out)?;
        } else if kind.is_file() {
            let mut file =
                std::fs::File::open(entry.path()).map_err(|e| format!("cannot read {rel}: {e}"))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut size = 0u64;
            loop {
                let n = file
                    .read(&mut buf)
                    .map_err(|e| format!("cannot read {rel}: {e}"))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            out.push(Entry {
                path: rel,
                size,
                sha256: hex(&hasher.finalize()),
            });
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

ggen_plugin_sdk::export_hook!(FileManifest);
