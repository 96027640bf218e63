//! `/ggen/tarball/1.0.0`: tarballs between peers by content hash, over
//! plain libp2p streams (libp2p-stream). A stream carries one request at a
//! time and stays open for the next, so a download keeps a few warm streams
//! instead of negotiating one per piece; neither side ever holds more than a
//! bounded piece of a file.
//!
//! Request: 32-byte sha256, u64 offset, u64 length.
//! Response: [`MISSING`]; [`BAD_RANGE`]; or [`FOUND`], u64 total size, then
//! exactly `length` bytes of the file from `offset`.

use std::io;

use libp2p::StreamProtocol;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/ggen/tarball/1.0.0");

pub const MISSING: u8 = 0;
pub const FOUND: u8 = 1;
pub const BAD_RANGE: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub sha256: [u8; 32],
    pub offset: u64,
    pub len: u64,
}

impl Request {
    pub async fn write<T: AsyncWrite + Unpin>(&self, io: &mut T) -> io::Result<()> {
        let mut buf = [0u8; 48];
        buf[..32].copy_from_slice(&self.sha256);
        buf[32..40].copy_from_slice(&self.offset.to_be_bytes());
        buf[40..].copy_from_slice(&self.len.to_be_bytes());
        io.write_all(&buf).await?;
        io.flush().await
    }

    /// The next request, or None when the peer closed the stream.
    pub async fn read<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<Option<Self>> {
        let mut buf = [0u8; 48];
        match io.read_exact(&mut buf).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        Ok(Some(Self {
            sha256: buf[..32].try_into().expect("32 bytes"),
            offset: u64::from_be_bytes(buf[32..40].try_into().expect("8 bytes")),
            len: u64::from_be_bytes(buf[40..].try_into().expect("8 bytes")),
        }))
    }
}

/// The response's header: `Some(total size)` when the bytes follow.
pub async fn read_header<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<Result<u64, String>> {
    let mut tag = [0u8; 1];
    io.read_exact(&mut tag).await?;
    Ok(match tag[0] {
        FOUND => {
            let mut total = [0u8; 8];
            io.read_exact(&mut total).await?;
            Ok(u64::from_be_bytes(total))
        }
        MISSING => Err("does not have it".into()),
        BAD_RANGE => Err("refused the byte range the record allows".into()),
        other => Err(format!("answered with unknown tag {other}")),
    })
}

pub async fn write_found<T: AsyncWrite + Unpin>(io: &mut T, total: u64) -> io::Result<()> {
    let mut head = [0u8; 9];
    head[0] = FOUND;
    head[1..].copy_from_slice(&total.to_be_bytes());
    io.write_all(&head).await
}

/// `sha256-<hex>` → the 32 raw bytes.
pub fn digest_bytes(checksum: &str) -> Option<[u8; 32]> {
    let hex = checksum.strip_prefix("sha256-")?;
    let bytes = hex::decode(hex).ok()?;
    bytes.try_into().ok()
}

/// The DHT provider key of a tarball.
pub fn provider_key(sha256: &[u8; 32]) -> libp2p::kad::RecordKey {
    let mut key = b"/ggen/tarball/".to_vec();
    key.extend_from_slice(sha256);
    libp2p::kad::RecordKey::new(&key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::futures::executor::block_on;
    use libp2p::futures::io::Cursor;

    #[test]
    fn request_round_trip_and_clean_end() {
        let req = Request {
            sha256: [7; 32],
            offset: 1 << 40,
            len: 12345,
        };
        let mut wire = Cursor::new(Vec::new());
        block_on(req.write(&mut wire)).unwrap();
        let mut wire = Cursor::new(wire.into_inner());
        assert_eq!(block_on(Request::read(&mut wire)).unwrap(), Some(req));
        assert_eq!(block_on(Request::read(&mut wire)).unwrap(), None);
    }

    #[test]
    fn headers() {
        let mut wire = Cursor::new(Vec::new());
        block_on(write_found(&mut wire, 99)).unwrap();
        let mut wire = Cursor::new(wire.into_inner());
        assert_eq!(block_on(read_header(&mut wire)).unwrap(), Ok(99));
        let mut wire = Cursor::new(vec![MISSING]);
        assert!(block_on(read_header(&mut wire)).unwrap().is_err());
        let mut wire = Cursor::new(vec![9]);
        let err = block_on(read_header(&mut wire)).unwrap().unwrap_err();
        assert!(err.contains("unknown tag 9"), "{err}");
    }
}
