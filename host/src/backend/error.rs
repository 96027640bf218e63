//! The seeds' MarketplaceError: every failure the user can see, one line each.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Serialisable so that a running node's answer keeps its kind on the
/// control socket (a command falls back on network failures, not others).
#[derive(Debug, Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "kebab-case")]
pub enum MarketplaceError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Validation(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("security error: {0}")]
    Security(String),
    #[error("{0}")]
    Unsupported(String),
    /// A plugin could not be loaded or misbehaved (trap, deadline, memory cap, wrong contract).
    #[error("{0}")]
    Plugin(String),
    #[error("dependency error: {0}")]
    Dependency(String),
    #[error("configuration error: {0}")]
    Config(String),
    /// The registry changed under the command (a version republished while
    /// it was fetched): running it again sees the new state.
    #[error("{0}")]
    Changed(String),
    /// The P2P network could not deliver (no providers, every provider failed, timeouts).
    #[error("P2P: {0}")]
    Network(String),
}

pub type Result<T, E = MarketplaceError> = std::result::Result<T, E>;

impl MarketplaceError {
    pub fn storage(context: impl std::fmt::Display, e: impl std::fmt::Display) -> Self {
        Self::Storage(format!("{context}: {e}"))
    }
}

/// `e` and its sources, each said once: libp2p's errors keep the useful
/// part ("Connection refused") a level or two down, and some say nothing
/// themselves.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut why = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !why.contains(&text) {
            why = format!("{why}: {text}");
        }
        source = inner.source();
    }
    why.trim_start_matches(": ").to_owned()
}

/// `text` cut to at most `max` characters (the last one `…`): user input
/// quoted in a message, so that a huge argument cannot flood the terminal.
pub fn excerpt(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::excerpt;

    #[test]
    fn excerpts_cut_long_text_by_characters() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("abcdefghij", 10), "abcdefghij");
        assert_eq!(excerpt("abcdefghijk", 10), "abcdefghi…");
        assert_eq!(excerpt("ééééé", 3), "éé…");
    }
}
