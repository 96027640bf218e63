//! A directory made for some work and taken away again if the work leaves
//! it empty, so that a refused first publish or install leaves no trace.

use std::path::{Path, PathBuf};

pub struct CreatedDir {
    dir: PathBuf,
    /// The outermost directory that `create` made; `None` if `dir` existed.
    outermost: Option<PathBuf>,
}

impl CreatedDir {
    /// `create_dir_all(dir)`, remembering which directories it made.
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        let outermost = dir
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
            .last()
            .map(Path::to_path_buf);
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            outermost,
        })
    }
}

impl Drop for CreatedDir {
    fn drop(&mut self) {
        let Some(outermost) = &self.outermost else {
            return;
        };
        // `remove_dir` refuses a directory that is not empty: what the work
        // wrote (or another process put there meanwhile) stays.
        for d in self.dir.ancestors() {
            if std::fs::remove_dir(d).is_err() || d == outermost {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_it_made_and_only_when_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/c");
        drop(CreatedDir::create(&dir).unwrap());
        assert!(!tmp.path().join("a").exists());

        let kept = CreatedDir::create(&dir).unwrap();
        std::fs::write(dir.join("data"), "x").unwrap();
        drop(kept);
        assert!(dir.join("data").is_file());

        // Existing directories are never removed, even when empty.
        std::fs::remove_file(dir.join("data")).unwrap();
        drop(CreatedDir::create(&dir).unwrap());
        assert!(dir.is_dir());
    }
}
