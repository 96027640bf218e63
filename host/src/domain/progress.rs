//! Progress of long steps (fetching, unpacking, hooks), reported to whoever shows it.
//! The CLI draws bars on a terminal and plain lines elsewhere.

use std::io::Read;

pub trait Progress {
    /// A step begins; `total` bytes are expected (0 if unknown).
    fn start(&self, label: &str, total: u64);
    fn advance(&self, bytes: u64);
    fn finish(&self);
    /// A line for the user between steps (what a post-install hook printed).
    fn note(&self, line: &str);
}

/// Shows nothing (for --json and library callers).
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
    fn note(&self, _: &str) {}
}

/// Reports every read to a [`Progress`].
pub struct Reading<'a, R> {
    pub inner: R,
    pub progress: &'a dyn Progress,
}

impl<R: Read> Read for Reading<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
