use crate::bindings::host::ByteSource;

/// Reads a host [`ByteSource`] (such as a tarball being published) as `std::io::Read`.
pub struct ByteSourceReader<'a> {
    source: &'a ByteSource,
    buf: Vec<u8>,
    pos: usize,
}

/// Bytes asked of the host per call: large enough to amortise the call, small
/// enough to keep plugin memory flat.
const CHUNK: u32 = 256 * 1024;

impl<'a> ByteSourceReader<'a> {
    pub fn new(source: &'a ByteSource) -> Self {
        Self {
            source,
            buf: Vec::new(),
            pos: 0,
        }
    }

    /// Total size announced by the host.
    pub fn size(&self) -> u64 {
        self.source.size()
    }
}

impl std::io::Read for ByteSourceReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf = self.source.read(CHUNK);
            self.pos = 0;
            if self.buf.is_empty() {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
