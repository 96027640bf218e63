//! Showing progress: indicatif bars on a terminal, one plain line per step
//! otherwise, nothing at all under --json (stdout must stay pure JSON, and
//! stderr quiet for scripts).

use std::cell::RefCell;
use std::io::IsTerminal;

use ggen::domain::progress::{Progress, Silent};
use indicatif::{ProgressBar, ProgressStyle};

pub fn for_output(json: bool) -> Box<dyn Progress> {
    if json {
        Box::new(Silent)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars {
            bar: RefCell::new(None),
        })
    } else {
        Box::new(Lines)
    }
}

struct Bars {
    bar: RefCell<Option<ProgressBar>>,
}

impl Progress for Bars {
    fn start(&self, label: &str, total: u64) {
        // 0: the size is not known beforehand (a peer's record, unverified).
        let (bar, template) = match total {
            0 => (ProgressBar::no_length(), "{msg:40} {bytes} {bytes_per_sec}"),
            _ => (
                ProgressBar::new(total),
                "{msg:40} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            ),
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar.set_message(label.to_owned());
        *self.bar.borrow_mut() = Some(bar);
    }
    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.inc(bytes);
        }
    }
    fn finish(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
    fn note(&self, line: &str) {
        match self.bar.borrow().as_ref() {
            Some(bar) => bar.println(line),
            None => note!("{line}"),
        }
    }
}

struct Lines;

impl Progress for Lines {
    fn start(&self, label: &str, total: u64) {
        match total {
            0 => note!("{label}"),
            _ => note!("{label} ({total} bytes)"),
        }
    }
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
    fn note(&self, line: &str) {
        note!("{line}");
    }
}
