//! Why a path cannot serve as a directory ggen creates or uses, in words:
//! the OS says "File exists" for a dangling link and "Not a directory" far
//! from the path at fault.

use std::path::Path;

/// None when `path` is a directory (through links) or nothing at all (it
/// can be created); else what it is instead.
pub fn not_a_directory(path: &Path) -> Option<String> {
    let link = std::fs::symlink_metadata(path).ok()?;
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => None,
        Ok(_) => Some(format!("{} is not a directory", path.display())),
        Err(_) if link.file_type().is_symlink() => {
            let to = std::fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            Some(format!(
                "{} is a symbolic link to {to}, which does not exist",
                path.display()
            ))
        }
        Err(e) => Some(format!("{} cannot be read ({e})", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_stands_in_the_way() {
        let tmp = tempfile::tempdir().unwrap();
        let p = |n: &str| tmp.path().join(n);
        assert_eq!(not_a_directory(tmp.path()), None);
        assert_eq!(not_a_directory(&p("new")), None);
        std::fs::write(p("file"), "").unwrap();
        assert!(
            not_a_directory(&p("file"))
                .unwrap()
                .ends_with("is not a directory")
        );
        std::os::unix::fs::symlink(p("gone"), p("dangling")).unwrap();
        let why = not_a_directory(&p("dangling")).unwrap();
        assert!(why.ends_with("gone, which does not exist"), "{why}");
        std::os::unix::fs::symlink(tmp.path(), p("linked")).unwrap();
        assert_eq!(not_a_directory(&p("linked")), None);
    }
}
