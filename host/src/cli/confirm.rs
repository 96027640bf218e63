//! Yes/no questions, asked only on a terminal.

use std::io::{BufRead, IsTerminal, Write};

use ggen::domain::MarketplaceError;

/// Ask on the terminal; without one, refuse (scripts pass --yes).
pub fn ask(question: &str) -> Result<bool, MarketplaceError> {
    if !std::io::stdin().is_terminal() {
        return Err(MarketplaceError::Validation(
            "not approving without a terminal to ask on; pass --yes to approve".into(),
        ));
    }
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{question} [y/N] ").and_then(|()| stderr.flush());
    drop(stderr);
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| MarketplaceError::storage("cannot read the answer", e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}
