//! What a package name and a template variable's name may be: one rule for
//! the host, its registry backends and its hooks.

/// Longest package name and variable name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Package names become directory names everywhere (and arrive from
/// registries and peers): lowercase ASCII letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit, at most 64 bytes, and none of the names
/// of ggen's own files. The error says what is wrong, for the user.
pub fn check_package_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("package name is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        // Quoted in part: a huge argument must not flood the terminal.
        let cut: String = name.chars().take(MAX_NAME_LEN).collect();
        return Err(format!(
            "package name `{cut}…` is longer than {MAX_NAME_LEN} characters"
        ));
    }
    if name.contains(|c: char| c.is_ascii_uppercase()) {
        let lower = name.to_ascii_lowercase();
        let hint = match check_package_name(&lower) {
            Ok(()) => format!(": `{lower}`"),
            Err(_) => String::new(),
        };
        return Err(format!(
            "package name `{}` has uppercase letters; names are lowercase{hint}",
            name.escape_debug()
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err(format!(
            "package name `{}` must start with a lowercase letter or a digit",
            name.escape_debug()
        ));
    }
    // The lockfile shares the install root, and the file registry's index
    // (and its backups, `index.json.corrupt-*`) the registry root, with
    // package directories.
    if name == "ggen.lock" || name == "index.json" || name.starts_with("index.json.") {
        return Err(format!(
            "package name `{name}` is reserved for ggen's own files; choose another name"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')))
    {
        // Escaped: a newline or tab shown as itself reads as a space.
        return Err(format!(
            "package name `{}` contains `{}`; use lowercase letters, digits, `-`, `_` and `.`",
            name.escape_debug(),
            c.escape_debug()
        ));
    }
    Ok(())
}

/// Whether `name` is a package name (see [`check_package_name`]).
pub fn is_package_name(name: &str) -> bool {
    check_package_name(name).is_ok()
}

/// The template variables that name the installed package itself
/// (`{{ package }}`, `{{ version }}`), filled from the install context.
pub const PACKAGE_VARIABLES: [&str; 2] = ["package", "version"];

/// A template variable's name, what `{{ name }}` refers to: 1-64 ASCII
/// letters, digits, `_`, `-` and `.`.
pub fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names() {
        for good in ["a", "rust-web", "0x_1.2", &"a".repeat(64)] {
            assert!(is_package_name(good), "{good}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "A",
            "a/b",
            "a b",
            "a\n",
            "ggen.lock",
            "index.json",
            "index.json.corrupt-1",
            &"a".repeat(65),
        ] {
            assert!(!is_package_name(bad), "{bad}");
        }
        let long = check_package_name(&"é".repeat(100)).unwrap_err();
        assert!(
            long.contains("longer than 64") && long.chars().count() < 120,
            "{long}"
        );
    }

    #[test]
    fn variable_names() {
        assert!(is_variable_name("Project_name-2.x"));
        for bad in ["", "a b", "a{", &"v".repeat(65)] {
            assert!(!is_variable_name(bad), "{bad}");
        }
    }
}
