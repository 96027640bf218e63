//! The serving side of `/ggen/tarball/1.0.0`: one task per inbound stream,
//! off the swarm's event loop, reading the verified copies this node
//! provides in bounded pieces.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use libp2p::futures::{AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream};
use tokio::sync::Semaphore;

use super::transfer::{BAD_RANGE, MISSING, PROTOCOL, Request, write_found};

/// Tarballs this node serves: sha256 → its verified copy. Filled by the
/// event loop (`Provide`), read by the stream tasks.
#[derive(Clone, Default)]
pub struct Served(Arc<RwLock<HashMap<[u8; 32], PathBuf>>>);

impl Served {
    pub fn insert(&self, sha256: [u8; 32], path: PathBuf) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sha256, path);
    }

    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn get(&self, sha256: &[u8; 32]) -> Option<PathBuf> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(sha256)
            .cloned()
    }
}

/// Streams served at once; more are closed at once (the peer retries or
/// asks another provider). Each holds one [`PIECE`] buffer.
const MAX_STREAMS: usize = 32;
/// Streams one peer may hold at once (a download uses two, or one per provider).
const MAX_PER_PEER: usize = 8;
/// File bytes read and written per step (one trip to the blocking pool).
const PIECE: usize = 1 << 20;
/// A stream with no next request, or whose reader takes no piece, for this
/// long is closed.
const IDLE: Duration = Duration::from_secs(30);
/// How long a (test-only) silent node holds a request unanswered.
const SILENCE: Duration = Duration::from_secs(600);

/// Debug builds only: `GGEN_P2P_FAULT=corrupt|truncate|silent` makes this
/// node serve wrong bytes, short answers, or nothing, and `record-size`
/// put records claiming one byte more than the tarball has, so tests can
/// check what downloaders make of it. Release builds never misbehave.
pub(super) fn fault() -> Option<String> {
    if cfg!(debug_assertions) {
        std::env::var("GGEN_P2P_FAULT").ok()
    } else {
        None
    }
}

/// Accept tarball streams until the node stops.
pub async fn serve_all(mut control: libp2p_stream::Control, served: Served) {
    let mut incoming = match control.accept(PROTOCOL) {
        Ok(incoming) => incoming,
        Err(e) => {
            tracing::warn!("cannot serve tarballs: {e}");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_STREAMS));
    let per_peer = Arc::new(Mutex::new(HashMap::<PeerId, usize>::new()));
    let fault = fault();
    while let Some((peer, stream)) = incoming.next().await {
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("refusing a tarball stream from {peer}: {MAX_STREAMS} already open");
            continue;
        };
        let Some(share) = PeerShare::take(&per_peer, peer) else {
            tracing::debug!("refusing a tarball stream from {peer}: {MAX_PER_PEER} already open");
            continue;
        };
        let (served, fault) = (served.clone(), fault.clone());
        tokio::spawn(async move {
            if let Err(e) = serve_stream(stream, &served, fault.as_deref()).await {
                tracing::debug!("tarball stream from {peer} ended: {e}");
            }
            drop((slot, share));
        });
    }
}

/// One of a peer's [`MAX_PER_PEER`] streams, given back on drop, so one
/// peer cannot hold every slot.
struct PeerShare {
    counts: Arc<Mutex<HashMap<PeerId, usize>>>,
    peer: PeerId,
}

impl PeerShare {
    fn take(counts: &Arc<Mutex<HashMap<PeerId, usize>>>, peer: PeerId) -> Option<Self> {
        let mut map = counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(peer).or_default();
        if *n >= MAX_PER_PEER {
            return None;
        }
        *n += 1;
        Some(Self {
            counts: counts.clone(),
            peer,
        })
    }
}

impl Drop for PeerShare {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.peer);
            }
        }
    }
}

async fn serve_stream(
    mut stream: Stream,
    served: &Served,
    fault: Option<&str>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; PIECE];
    // The file of the previous request: a download asks for the same one
    // segment after segment, so it is opened once per stream.
    let mut open: Option<([u8; 32], Arc<std::fs::File>, u64)> = None;
    loop {
        let request = match tokio::time::timeout(IDLE, Request::read(&mut stream)).await {
            Ok(Ok(Some(request))) => request,
            Ok(Ok(None)) | Err(_) => return stream.close().await,
            Ok(Err(e)) => return Err(e),
        };
        if fault == Some("silent") {
            tokio::time::sleep(SILENCE).await;
            return Ok(());
        }
        let (file, total) = match &open {
            Some((sha, file, total)) if *sha == request.sha256 => (file.clone(), *total),
            _ => {
                let Some(path) = served.get(&request.sha256) else {
                    stream.write_all(&[MISSING]).await?;
                    return stream.close().await;
                };
                let file = Arc::new(std::fs::File::open(&path)?);
                let total = file.metadata()?.len();
                open = Some((request.sha256, file.clone(), total));
                (file, total)
            }
        };
        let end = request.offset.checked_add(request.len);
        if request.len == 0 || end.is_none_or(|end| end > total) {
            stream.write_all(&[BAD_RANGE]).await?;
            return stream.close().await;
        }
        write_found(&mut stream, total).await?;
        let mut offset = request.offset;
        let mut left = match fault {
            Some("truncate") => request.len / 2,
            _ => request.len,
        };
        while left > 0 {
            let n = left.min(PIECE as u64) as usize;
            // Reads go to the blocking pool: a cold disk must not stall
            // the runtime the swarm shares.
            let reader = file.clone();
            buf = tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                reader.read_exact_at(&mut buf[..n], offset).map(|()| buf)
            })
            .await
            .map_err(std::io::Error::other)??;
            if fault == Some("corrupt") {
                buf[..n].iter_mut().for_each(|b| *b ^= 0x5a);
            }
            tokio::time::timeout(IDLE, stream.write_all(&buf[..n]))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
            offset += n as u64;
            left -= n as u64;
            if fault == Some("die") {
                // A crash mid-transfer (the connection goes with it).
                std::process::abort();
            }
        }
        stream.flush().await?;
        if fault == Some("truncate") {
            return stream.close().await;
        }
    }
}
