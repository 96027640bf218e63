//! Downloading one tarball over `/ggen/tarball/1.0.0`: 512 KiB segments
//! requested over a few long-lived streams (segments in flight on parallel
//! streams hide each request's round trip; small segments let hashing start
//! early and keep the tail short), put back in order, then hashed and
//! written on a blocking thread while the next segments arrive. At most
//! [`AHEAD`] + [`QUEUED`] segments are in memory, whatever the file's size.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use libp2p::futures::stream::FuturesUnordered;
use libp2p::futures::{AsyncReadExt, FutureExt, StreamExt};
use libp2p::{PeerId, Stream};
use sha2::Digest;
use tokio::sync::mpsc;

use super::transfer::{PROTOCOL, Request, read_header};
use crate::backend::MAX_TARBALL;

const SEGMENT: u64 = 512 << 10;
/// Streams per download (spread over the providers, at least one each).
/// Measured on loopback: 2 x 512 KiB beat 4 x 256 KiB, 4 x 512 KiB and
/// 4 x 1 MiB by 3-6%; fewer new streams also means fewer refused ones.
const STREAMS: usize = 2;
/// Segments requested or waiting for an earlier one, at most.
const AHEAD: usize = 8;
/// Segments queued for the hashing writer, at most.
const QUEUED: usize = 4;
/// New streams closed before answering that are retried, per segment.
const OPEN_RETRIES: u32 = 3;

/// Why a download failed.
#[derive(Debug)]
pub enum Failure {
    /// This peer failed to deliver (silence, short or refused answers,
    /// wrong bytes when it was the only sender).
    Peer(PeerId, String),
    /// Several peers' segments add up to bytes that do not match the
    /// checksum; `senders[i]` sent segment `i`. [`culprits`] finds out who
    /// once a verified copy is at hand.
    Mixed(Vec<PeerId>),
    /// This peer says the tarball has another size than expected: the
    /// record may be wrong as well as the peer, so the checksum decides
    /// (ask it again with the size unknown).
    Size { peer: PeerId, claimed: u64 },
    /// Writing here failed; no peer is to blame.
    Local(String),
    /// This peer could not be reached (gone offline since it was found):
    /// the swarm counts that as `unreachable`, so it is no failure too.
    Unreachable(PeerId, String),
    /// This peer's answer ended early: a failure if its connection is still
    /// open (it closed the stream short), none if the connection went too
    /// (it crashed or went offline mid-transfer). The caller asks the swarm.
    Cut(PeerId, String),
}

/// Why a segment did not come.
enum Refusal {
    Failed(String),
    /// The answer announced a file of this size.
    OtherSize(u64),
    Unreachable(String),
    /// The answer ended early (end of file, reset).
    Cut(String),
}

impl Refusal {
    fn blame(self, peer: PeerId) -> Failure {
        match self {
            Refusal::Failed(why) => Failure::Peer(peer, why),
            Refusal::OtherSize(claimed) => Failure::Size { peer, claimed },
            Refusal::Unreachable(why) => Failure::Unreachable(peer, why),
            Refusal::Cut(why) => Failure::Cut(peer, why),
        }
    }
}

/// A read of the answer that failed: cut short, or another error.
fn read_failed(e: std::io::Error, what: String) -> Refusal {
    use std::io::ErrorKind::*;
    match e.kind() {
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => Refusal::Cut(what),
        _ => Refusal::Failed(format!("{what} ({e})")),
    }
}

impl From<String> for Refusal {
    fn from(why: String) -> Self {
        Refusal::Failed(why)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Peer(_, why)
            | Failure::Local(why)
            | Failure::Unreachable(_, why)
            | Failure::Cut(_, why) => f.write_str(why),
            Failure::Mixed(senders) => write!(
                f,
                "the parts {} peers sent do not match the checksum",
                distinct(senders).len()
            ),
            Failure::Size { claimed, .. } => write!(f, "claims {claimed} bytes"),
        }
    }
}

fn distinct(peers: &[PeerId]) -> HashSet<PeerId> {
    peers.iter().copied().collect()
}

/// Fetch the tarball with sha256 `sha` into `dest` from `peers` (stream
/// `i` asks `peers[i % n]`). Its size is `size`, or when that is unknown
/// what `peers[0]` says (at most [`MAX_TARBALL`]; the checksum still
/// decides). A segment a peer fails to deliver within `deadline` names
/// that peer.
pub async fn download(
    control: &libp2p_stream::Control,
    peers: &[PeerId],
    sha: &[u8; 32],
    size: Option<u64>,
    dest: &Path,
    deadline: Duration,
) -> Result<(), Failure> {
    let first = peers[0];
    let blame_first = |why: String| Failure::Peer(first, why);
    let (size, probed) = match size {
        Some(size) => (size, None),
        None => {
            let (stream, total) = tokio::time::timeout(deadline, probe(control, first, sha))
                .await
                .map_err(|_| blame_first(format!("timed out after {}s", deadline.as_secs())))?
                .map_err(|refusal| refusal.blame(first))?;
            (total, Some(stream))
        }
    };
    let file = std::fs::File::create(dest)
        .map_err(|e| Failure::Local(format!("cannot write {}: {e}", dest.display())))?;
    let (to_writer, mut queue) = mpsc::channel::<Vec<u8>>(QUEUED);
    let (recycle, mut spare) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::task::spawn_blocking(move || {
        let mut file = file;
        let mut hasher = sha2::Sha256::new();
        while let Some(segment) = queue.blocking_recv() {
            hasher.update(&segment);
            file.write_all(&segment)?;
            let _ = recycle.send(segment);
        }
        // No fsync: the download is a temporary file the install copies
        // (and verifies again) before anything is committed.
        file.flush()?;
        Ok::<[u8; 32], std::io::Error>(hasher.finalize().into())
    });

    let segments = size.div_ceil(SEGMENT);
    let slots = STREAMS
        .max(peers.len())
        .min(usize::try_from(segments).unwrap_or(usize::MAX))
        .max(1);
    let mut streams: Vec<Option<Stream>> = (0..slots).map(|_| None).collect();
    // Slot 0 asks peers[0], which the probe's stream already reaches.
    streams[0] = probed;
    let mut idle: Vec<usize> = (0..slots).rev().collect();
    let (mut next, mut wanted) = (0u64, 0u64);
    let mut ready = BTreeMap::new();
    let mut in_flight = FuturesUnordered::new();
    let peer_of = |slot: usize| peers[slot % peers.len()];
    let mut senders = Vec::with_capacity(usize::try_from(segments).unwrap_or(0));
    'fetch: loop {
        while next < segments && in_flight.len() + ready.len() < AHEAD {
            let Some(slot) = idle.pop() else { break };
            let offset = next * SEGMENT;
            let request = Request {
                sha256: *sha,
                offset,
                len: SEGMENT.min(size - offset),
            };
            let buf = spare.try_recv().unwrap_or_default();
            let stream = streams[slot].take();
            let fetch = segment(control, peer_of(slot), stream, request, size, buf);
            let index = next;
            in_flight.push(tokio::time::timeout(deadline, fetch).map(move |r| (slot, index, r)));
            senders.push(peer_of(slot));
            next += 1;
        }
        let Some((slot, index, result)) = in_flight.next().await else {
            break;
        };
        let peer = peer_of(slot);
        let (stream, bytes) = result
            .map_err(|_| Failure::Peer(peer, format!("timed out after {}s", deadline.as_secs())))?
            .map_err(|refusal| refusal.blame(peer))?;
        streams[slot] = Some(stream);
        idle.push(slot);
        ready.insert(index, bytes);
        while let Some(bytes) = ready.remove(&wanted) {
            if to_writer.send(bytes).await.is_err() {
                break 'fetch; // the writer failed; its error is below
            }
            wanted += 1;
        }
    }
    drop(to_writer);
    let digest = writer
        .await
        .map_err(|e| Failure::Local(e.to_string()))?
        .map_err(|e| Failure::Local(format!("cannot write {}: {e}", dest.display())))?;
    // Only a failed writer stops the loop early, and its error returned above.
    debug_assert_eq!(wanted, segments);
    if &digest == sha {
        Ok(())
    } else if distinct(&senders).len() > 1 {
        Err(Failure::Mixed(senders))
    } else {
        Err(blame_first(
            "sent bytes that do not match the checksum".into(),
        ))
    }
}

/// The peers among `senders` whose segments of `mixed` (a download that
/// failed its checksum) differ from the verified file `good`.
pub fn culprits(mixed: &Path, good: &Path, senders: &[PeerId]) -> std::io::Result<HashSet<PeerId>> {
    use std::io::Read;
    let (mut mixed, mut good) = (std::fs::File::open(mixed)?, std::fs::File::open(good)?);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut found = HashSet::new();
    for sender in senders {
        // Segment by segment, the last one short (or missing if cut).
        a.clear();
        b.clear();
        (&mut mixed).take(SEGMENT).read_to_end(&mut a)?;
        (&mut good).take(SEGMENT).read_to_end(&mut b)?;
        if a != b {
            found.insert(*sender);
        }
    }
    Ok(found)
}

/// Ask `peer` for the first byte of the tarball, to learn its size from
/// the answer's header; the stream comes back for the download.
async fn probe(
    control: &libp2p_stream::Control,
    peer: PeerId,
    sha: &[u8; 32],
) -> Result<(Stream, u64), Refusal> {
    let request = Request {
        sha256: *sha,
        offset: 0,
        len: 1,
    };
    let (mut stream, header) = open_and_ask(control, peer, &request).await?;
    let total = header?;
    if total > MAX_TARBALL {
        return Err(Refusal::Failed(format!(
            "claims {total} bytes, more than the {} MiB ggen accepts",
            MAX_TARBALL >> 20
        )));
    }
    let mut byte = [0u8; 1];
    stream
        .read_exact(&mut byte)
        .await
        .map_err(|e| read_failed(e, "sent no byte of the file".into()))?;
    Ok((stream, total))
}

/// One segment over `stream` (opened first when there is none yet); the
/// stream comes back for the next one.
async fn segment(
    control: &libp2p_stream::Control,
    peer: PeerId,
    stream: Option<Stream>,
    request: Request,
    size: u64,
    mut buf: Vec<u8>,
) -> Result<(Stream, Vec<u8>), Refusal> {
    let (mut stream, header) = match stream {
        Some(mut stream) => {
            let header = ask(&mut stream, &request)
                .await
                .map_err(|e| read_failed(e, "stopped answering".into()))?;
            (stream, header)
        }
        None => open_and_ask(control, peer, &request).await?,
    };
    let total = header?;
    if total != size {
        return Err(Refusal::OtherSize(total));
    }
    if buf.capacity() == 0 {
        // calloc: fresh pages come zeroed from the kernel, no memset.
        buf = vec![0u8; request.len as usize];
    } else {
        buf.resize(request.len as usize, 0);
    }
    stream.read_exact(&mut buf).await.map_err(|e| {
        let what = format!(
            "sent fewer than {} bytes at offset {}",
            request.len, request.offset
        );
        read_failed(e, what)
    })?;
    Ok((stream, buf))
}

/// A new stream with the request sent and the answer's header read. A node
/// drops new streams that arrive faster than it takes them (libp2p-stream
/// queues one at a time), so a stream closed before any answer is retried
/// a few times before the peer is blamed.
async fn open_and_ask(
    control: &libp2p_stream::Control,
    peer: PeerId,
    request: &Request,
) -> Result<(Stream, Result<u64, String>), Refusal> {
    let mut attempt = 0;
    loop {
        let mut stream = (control.clone().open_stream(peer, PROTOCOL).await).map_err(|e| {
            match e {
                // The dial failed (libp2p-stream's word for it).
                libp2p_stream::OpenStreamError::Io(e)
                    if e.kind() == std::io::ErrorKind::NotConnected =>
                {
                    // The dial's own error: no known address, refused, ...
                    let why = crate::backend::excerpt(&e.to_string(), 200);
                    Refusal::Unreachable(format!("cannot reach it: {why}"))
                }
                e => Refusal::Failed(format!("cannot open a stream: {e}")),
            }
        })?;
        match ask(&mut stream, request).await {
            Ok(header) => return Ok((stream, header)),
            Err(e) if attempt == OPEN_RETRIES => return Err(e.to_string().into()),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
            }
        }
    }
}

async fn ask(stream: &mut Stream, request: &Request) -> std::io::Result<Result<u64, String>> {
    request.write(stream).await?;
    read_header(stream).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn culprits_are_the_senders_of_the_segments_that_differ() {
        let dir = tempfile::tempdir().unwrap();
        let seg = SEGMENT as usize;
        let good: Vec<u8> = (0..2 * seg + 10).map(|i| (i % 251) as u8).collect();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let senders = [a, b, c];
        let (good_path, mixed_path) = (dir.path().join("good"), dir.path().join("mixed"));
        std::fs::write(&good_path, &good).unwrap();

        // One wrong byte in the short last segment: only its sender.
        let mut mixed = good.clone();
        mixed[2 * seg + 3] ^= 1;
        std::fs::write(&mixed_path, &mixed).unwrap();
        let found = culprits(&mixed_path, &good_path, &senders).unwrap();
        assert_eq!(found, HashSet::from([c]));

        // A wrong first segment, and a file one byte short: both senders.
        let mut mixed = good.clone();
        mixed[0] ^= 1;
        mixed.pop();
        std::fs::write(&mixed_path, &mixed).unwrap();
        let found = culprits(&mixed_path, &good_path, &senders).unwrap();
        assert_eq!(found, HashSet::from([a, c]));

        // Identical: nobody.
        std::fs::write(&mixed_path, &good).unwrap();
        assert!(
            culprits(&mixed_path, &good_path, &senders)
                .unwrap()
                .is_empty()
        );
    }
}
