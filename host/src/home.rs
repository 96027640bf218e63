//! `$GGEN_HOME` (default `~/.ggen`): where everything lives; reading its
//! config.toml (the settings are in `config`) and adding hook approvals to it.

use std::path::{Path, PathBuf};

use crate::backend::small_file::read_to_string;
use crate::backend::{MarketplaceError, Result};
use crate::config::{Config, expand_tilde};

/// config.toml is settings, not data.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone)]
pub struct GgenHome {
    root: PathBuf,
    /// Set with GGEN_HOME rather than the default.
    explicit: bool,
}

impl GgenHome {
    /// `GGEN_HOME`, else `~/.ggen`.
    pub fn from_env() -> Result<Self> {
        let home = match std::env::var_os("GGEN_HOME").filter(|v| !v.is_empty()) {
            // `GGEN_HOME='~/x'` (quoted, so the shell left it) means home too.
            Some(dir) => Self {
                explicit: true,
                ..Self::at(expand_tilde(Path::new(&dir)))
            },
            None => std::env::home_dir()
                .map(|h| Self::at(h.join(".ggen")))
                .ok_or_else(|| {
                    MarketplaceError::Config("cannot find a home directory; set GGEN_HOME".into())
                })?,
        };
        if let Some(why) = crate::backend::dir_check::not_a_directory(&home.root) {
            return Err(MarketplaceError::Config(format!(
                "{why} (GGEN_HOME, default ~/.ggen); point GGEN_HOME at a directory"
            )));
        }
        Ok(home)
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            explicit: false,
        }
    }

    /// GGEN_HOME names a directory that does not exist (yet, or ever: a
    /// typo).
    pub fn is_missing_explicit(&self) -> bool {
        self.explicit && !self.root.exists()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn registry(&self) -> PathBuf {
        self.root.join("registry")
    }
    pub fn packages(&self) -> PathBuf {
        self.root.join("packages")
    }
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn p2p(&self) -> PathBuf {
        self.root.join("p2p")
    }

    /// config.toml, or the defaults when there is none.
    pub fn config(&self) -> Result<Config> {
        let path = self.config_file();
        match read_to_string(&path, MAX_CONFIG_BYTES) {
            Ok(text) => {
                // Keys this ggen does not know (a typo, or a newer ggen's) are
                // ignored, as cargo does, but not silently.
                let mut unknown = Vec::new();
                let config = toml::de::Deserializer::parse(&text)
                    .and_then(|d| {
                        serde_ignored::deserialize(d, |key| unknown.push(key.to_string()))
                    })
                    .map_err(|e| {
                        // The message names what was expected; the line, where.
                        let line = e
                            .span()
                            .map(|span| {
                                format!(" line {}", text[..span.start].matches('\n').count() + 1)
                            })
                            .unwrap_or_default();
                        MarketplaceError::Config(format!(
                            "{}{line}: {}",
                            path.display(),
                            e.message().trim_end()
                        ))
                    })?;
                for key in unknown {
                    tracing::warn!("{}: unknown key `{key}` is ignored", path.display());
                }
                Ok(config)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(MarketplaceError::storage(
                format!("cannot read {}", path.display()),
                e,
            )),
        }
    }
}

impl GgenHome {
    /// Add `names` to `[hooks] allow` in config.toml, keeping everything else
    /// in the file (comments included) as it was. Written atomically; returns
    /// the names that were not there yet.
    pub fn approve_hooks(&self, names: &[String]) -> Result<Vec<String>> {
        let mut added = Vec::new();
        self.edit_allowed_hooks(|allow| {
            for name in names {
                if !allow.iter().any(|v| v.as_str() == Some(name)) {
                    allow.push(name.as_str());
                    added.push(name.clone());
                }
            }
            !added.is_empty()
        })?;
        Ok(added)
    }

    /// Take back approvals [`Self::approve_hooks`] added, when the reinstall
    /// that was to run their hooks failed.
    pub fn withdraw_hooks(&self, names: &[String]) -> Result<()> {
        self.edit_allowed_hooks(|allow| {
            let before = allow.len();
            allow.retain(|v| !v.as_str().is_some_and(|v| names.iter().any(|n| n == v)));
            allow.len() != before
        })
    }

    /// Change `[hooks] allow` in config.toml, under its lock; written only
    /// when `change` says it changed something.
    fn edit_allowed_hooks(&self, change: impl FnOnce(&mut toml_edit::Array) -> bool) -> Result<()> {
        let path = self.config_file();
        // A config.toml linked from elsewhere (a dotfiles repository) is
        // written where the link points; replacing the link lost that. The
        // lock sits beside that file too: its directory is the one that must
        // be writable, and GGEN_HOME need not be.
        let target = std::fs::canonicalize(&path).unwrap_or_else(|_| {
            // A link to a file not made yet makes it there.
            match std::fs::read_link(&path) {
                Ok(to) => self.root.join(to),
                Err(_) => path.clone(),
            }
        });
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        let file_name = target
            .file_name()
            .map_or_else(|| "config.toml".into(), |n| n.to_string_lossy());
        let shown = target.display().to_string();
        // Read, change and write under a lock: two commands approving at
        // once each kept only their own names.
        let _lock = crate::backend::lock::lock_exclusive(
            &dir,
            &format!("{file_name}.lock"),
            Some(&file_name),
            || tracing::warn!("waiting for another ggen process to finish writing {shown}"),
        )
        .map_err(|e| MarketplaceError::storage(format!("cannot lock {shown}"), e))?;
        let text = match read_to_string(&path, MAX_CONFIG_BYTES) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(MarketplaceError::storage(
                    format!("cannot read {}", path.display()),
                    e,
                ));
            }
        };
        let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            let first = e.to_string().lines().next().unwrap_or_default().to_owned();
            MarketplaceError::Config(format!("{}: {first}", path.display()))
        })?;
        let bad = || {
            MarketplaceError::Config(format!(
                "{}: `hooks.allow` must be an array of package names",
                path.display()
            ))
        };
        let hooks = doc
            .entry("hooks")
            .or_insert_with(toml_edit::table)
            .as_table_like_mut()
            .ok_or_else(bad)?;
        let allow = hooks
            .entry("allow")
            .or_insert_with(|| toml_edit::value(toml_edit::Array::new()))
            .as_array_mut()
            .ok_or_else(bad)?;
        if !change(allow) {
            return Ok(());
        }
        // Replaced by a rename, a file its owner made read-only was
        // rewritten all the same.
        if std::fs::metadata(&target).is_ok_and(|m| m.permissions().readonly()) {
            return Err(MarketplaceError::Config(format!(
                "{} is read-only, so the approval cannot be recorded; make it writable (`chmod u+w`), or approve with --allow-hooks on each install",
                target.display()
            )));
        }
        // Back to what approving made of no file at all (a withdrawal after
        // a failed approve-hooks): no file, as before.
        if doc.to_string().trim() == "[hooks]\nallow = []" {
            return match std::fs::remove_file(&target) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(
                    MarketplaceError::storage(format!("cannot remove {}", target.display()), e),
                ),
                _ => Ok(()),
            };
        }
        crate::backend::atomic::write_file(&target, doc.to_string().as_bytes(), &dir)
            .map_err(|e| MarketplaceError::storage(format!("cannot write {}", target.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_toml_linked_to_a_file_not_made_yet_is_made_there() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("dotfiles/ggen.toml");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::os::unix::fs::symlink("../dotfiles/ggen.toml", home.join("config.toml")).unwrap();
        GgenHome::at(&home).approve_hooks(&["web".into()]).unwrap();
        assert!(
            home.join("config.toml")
                .symlink_metadata()
                .unwrap()
                .is_symlink()
        );
        let text = std::fs::read_to_string(&kept).unwrap();
        assert!(text.contains("allow = [\"web\"]"), "{text}");
    }

    #[test]
    fn withdrawn_approvals_leave_config_toml_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let home = GgenHome::at(dir.path());
        let config = dir.path().join("config.toml");
        let added = home.approve_hooks(&["web".into()]).unwrap();
        assert!(config.is_file());
        home.withdraw_hooks(&added).unwrap();
        assert!(
            !config.exists(),
            "approving made it; withdrawing takes it away"
        );
        std::fs::write(&config, "# mine\n").unwrap();
        let added = home.approve_hooks(&["web".into()]).unwrap();
        home.withdraw_hooks(&added).unwrap();
        // Kept, with what was in it (toml_edit keeps the comment, after
        // the table it added).
        let text = std::fs::read_to_string(&config).unwrap();
        assert!(text.contains("# mine\n"), "{text}");
    }

    #[test]
    fn approvals_made_at_once_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), "# mine\n").unwrap();
        let names: Vec<String> = (0..8).map(|i| format!("pkg{i}")).collect();
        std::thread::scope(|s| {
            for name in &names {
                let home = GgenHome::at(dir.path());
                s.spawn(move || home.approve_hooks(std::slice::from_ref(name)).unwrap());
            }
        });
        let text = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
        assert!(text.contains("# mine"), "{text}");
        for name in &names {
            assert!(text.contains(&format!("\"{name}\"")), "{name} lost: {text}");
        }
    }
}
