//! `/ggen/tarball/1.0.0`: tarballs between peers by content hash, one
//! bounded chunk per request (the stock codecs' size limits are far below a
//! package, and a chunked protocol never holds a whole file on either side).
//!
//! Request: 32-byte sha256, u64 offset, u32 length (≤ [`MAX_CHUNK`]).
//! Response: `0` = not here; `1`, u64 total size, u32 length, the bytes.

use std::io;

use async_trait::async_trait;
use libp2p::StreamProtocol;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response::Codec;

pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/ggen/tarball/1.0.0");
pub const MAX_CHUNK: u32 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRequest {
    pub sha256: [u8; 32],
    pub offset: u64,
    pub len: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkResponse {
    Missing,
    Chunk { total: u64, bytes: Vec<u8> },
}

#[derive(Debug, Clone, Default)]
pub struct TarballCodec;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

#[async_trait]
impl Codec for TarballCodec {
    type Protocol = StreamProtocol;
    type Request = ChunkRequest;
    type Response = ChunkResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<ChunkRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut buf = [0u8; 44];
        io.read_exact(&mut buf).await?;
        let len = u32::from_be_bytes(buf[40..44].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_CHUNK {
            return Err(bad("chunk length out of range"));
        }
        Ok(ChunkRequest {
            sha256: buf[..32].try_into().expect("32 bytes"),
            offset: u64::from_be_bytes(buf[32..40].try_into().expect("8 bytes")),
            len,
        })
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<ChunkResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut tag = [0u8; 1];
        io.read_exact(&mut tag).await?;
        match tag[0] {
            0 => Ok(ChunkResponse::Missing),
            1 => {
                let mut head = [0u8; 12];
                io.read_exact(&mut head).await?;
                let total = u64::from_be_bytes(head[..8].try_into().expect("8 bytes"));
                let len = u32::from_be_bytes(head[8..].try_into().expect("4 bytes"));
                if len > MAX_CHUNK {
                    return Err(bad("chunk larger than the protocol allows"));
                }
                let mut bytes = vec![0u8; len as usize];
                io.read_exact(&mut bytes).await?;
                Ok(ChunkResponse::Chunk { total, bytes })
            }
            _ => Err(bad("unknown response tag")),
        }
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        r: ChunkRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let mut buf = Vec::with_capacity(44);
        buf.extend_from_slice(&r.sha256);
        buf.extend_from_slice(&r.offset.to_be_bytes());
        buf.extend_from_slice(&r.len.to_be_bytes());
        io.write_all(&buf).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        r: ChunkResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match r {
            ChunkResponse::Missing => io.write_all(&[0]).await?,
            ChunkResponse::Chunk { total, bytes } => {
                io.write_all(&[1]).await?;
                io.write_all(&total.to_be_bytes()).await?;
                io.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
                io.write_all(&bytes).await?;
            }
        }
        io.close().await
    }
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
