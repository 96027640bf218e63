//! sha256 checksums in the marketplace's `sha256-<64 lowercase hex>` form.

use std::io::{self, Write};

use sha2::{Digest, Sha256};

pub const PREFIX: &str = "sha256-";

/// Whether `text` is a well-formed checksum.
pub fn is_checksum(text: &str) -> bool {
    text.strip_prefix(PREFIX).is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Passes writes through while hashing and counting them.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The inner writer, the checksum and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            format!("{PREFIX}{}", hex::encode(self.hasher.finalize())),
            self.written,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_recognised() {
        let (_, sum, n) = {
            let mut w = HashingWriter::new(Vec::new());
            w.write_all(b"abc").unwrap();
            w.finish()
        };
        assert_eq!(
            sum,
            "sha256-ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(n, 3);
        assert!(is_checksum(&sum));
        assert!(!is_checksum(
            "sha256-BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
        ));
        assert!(!is_checksum("sha256-abc"));
        assert!(!is_checksum(
            "md5-ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        ));
    }
}
