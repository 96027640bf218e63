//! The control socket (`$GGEN_HOME/p2p/control.sock`): other ggen processes
//! use a running node through it. One JSON request per connection, one JSON
//! answer back; only the owner of GGEN_HOME can open it (mode 0600).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::{Notify, mpsc, watch};

use super::client::Client;
use crate::backend::network::{
    AnnounceReport, BootstrapReport, Network, NetworkSearch, NodeStatus, PeerView, Started,
};
use crate::backend::{MarketplaceError, PackageVersion, Query, Result};

/// Longest request accepted.
const MAX_REQUEST: u64 = 1 << 20;
/// Longest socket path the kernel takes (`sun_path` holds 108 bytes, NUL included).
const MAX_SOCKET_PATH: usize = 107;

/// A control socket path the kernel can bind: checked before a node starts,
/// since it is bound only once the node is up.
pub fn check_socket_path(socket: &Path) -> Result<()> {
    let len = socket.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(MarketplaceError::Config(format!(
            "the node's control socket {} would be {len} bytes, over the {MAX_SOCKET_PATH} a Unix socket path may have; use a shorter GGEN_HOME",
            socket.display()
        )));
    }
    Ok(())
}

/// How long a stopping node waits for the answers to requests it cut short.
const ANSWERED_WITHIN: Duration = Duration::from_secs(2);
/// How long a node asked to stop may take to shut down.
const STOPPED_WITHIN: Duration = Duration::from_secs(30);
/// Pause after a failed accept (no descriptor free) before the next one.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// How often a request's work checks that its command still waits.
const HANG_UP_CHECK: Duration = Duration::from_millis(200);
/// How long a node has to answer `status` (its event loop answers at once).
const STATUS_WITHIN: Duration = Duration::from_secs(5);
/// A download through the node: it stops stalled providers itself, so this
/// only bounds a node that stopped answering altogether.
const FETCH_WITHIN: Duration = Duration::from_secs(3600);

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
enum Request {
    Status,
    /// The status and what the start-up bootstrap did (`start --daemon`).
    Started,
    Peers,
    Peer {
        peer_id: String,
    },
    Bootstrap {
        addresses: Vec<String>,
    },
    Announce {
        package: PackageVersion,
    },
    Search {
        query: Query,
        names: Vec<String>,
    },
    Providers {
        package: PackageVersion,
    },
    Fetch {
        package: PackageVersion,
        order: Vec<String>,
        dest: std::path::PathBuf,
    },
    Stop,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Response {
    Ok(Value),
    Error(WireError),
}

/// A node's error: with its kind, or as the text a node of an earlier ggen
/// sends (still running after an upgrade).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum WireError {
    Kind(MarketplaceError),
    Text(String),
}

impl From<WireError> for MarketplaceError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Kind(e) => e,
            // Its network failures keep their kind (install falls back on them).
            WireError::Text(t) => match t.strip_prefix("P2P: ") {
                Some(why) => MarketplaceError::Network(why.to_owned()),
                None => MarketplaceError::Unsupported(t),
            },
        }
    }
}

/// The control socket being served; [`Server::close`] ends it.
pub struct Server {
    socket: std::path::PathBuf,
    accepting: tokio::task::JoinHandle<()>,
    stopping: watch::Sender<bool>,
    /// Each request being answered holds a sender: all dropped, all answered.
    answering: mpsc::Receiver<()>,
}

impl Server {
    /// Stop taking requests (the socket file goes at once: a command that
    /// finds it would take the node for a stuck one), and answer the ones
    /// still being worked on (a download, say) with "stopped" rather than
    /// with whatever the node's shutdown would make of them: its cut
    /// streams looked like failing providers. Waits at most
    /// [`ANSWERED_WITHIN`] for the answers to be written.
    pub async fn close(mut self) {
        self.accepting.abort();
        let _ = std::fs::remove_file(&self.socket);
        let _ = self.stopping.send(true);
        let _ = tokio::time::timeout(ANSWERED_WITHIN, self.answering.recv()).await;
    }
}

/// Serve `socket` until [`Server::close`].
pub fn serve(
    socket: &Path,
    client: Client,
    stop: Arc<Notify>,
    bootstrap: Option<BootstrapReport>,
) -> Result<Server> {
    let bootstrap = Arc::new(bootstrap);
    let fail = |e| {
        MarketplaceError::storage(
            format!("cannot open the control socket {}", socket.display()),
            e,
        )
    };
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    // A socket file left by a node that died: nobody answers on it (checked
    // by the caller). Anything else there is not ours to delete.
    match std::fs::symlink_metadata(socket) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            let _ = std::fs::remove_file(socket);
        }
        Ok(_) => {
            return Err(MarketplaceError::Storage(format!(
                "{} is in the way of the control socket (it is not a socket); move it away",
                socket.display()
            )));
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(socket).map_err(fail)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    }
    let (stopping, stopped) = watch::channel(false);
    let (answering, answered) = mpsc::channel::<()>(1);
    let accepting = tokio::spawn(async move {
        let mut failing = false;
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors (a burst of clients) passes as
                    // they close; ending the loop left the node running and
                    // unreachable for good, `stop` included.
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!("control socket: cannot accept a connection: {e}");
                    }
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            };
            failing = false;
            let client = client.clone();
            let stop = stop.clone();
            let bootstrap = bootstrap.clone();
            let (mut stopped, answering) = (stopped.clone(), answering.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                let mut reader = tokio::io::BufReader::new(read.take(MAX_REQUEST));
                let read =
                    tokio::time::timeout(Duration::from_secs(30), reader.read_line(&mut line));
                // A stopping node does not wait for requests still to come.
                let read = tokio::select! {
                    read = read => read,
                    _ = stopped.wait_for(|stopped| *stopped) => return,
                };
                if !matches!(read, Ok(Ok(_))) {
                    return;
                }
                if hung_up(reader.get_ref().get_ref()) {
                    // The command gave up waiting (and said so): a request
                    // queued while the node was busy or paused must not act
                    // later, least of all a `stop`.
                    return;
                }
                let response = match serde_json::from_str::<Request>(&line) {
                    Ok(Request::Stop) => {
                        stop.notify_one();
                        Response::Ok(Value::Null)
                    }
                    Ok(request) => {
                        // A command killed mid-request (Ctrl-C during a
                        // download) leaves nobody to answer: dropping the
                        // work stops it, and blames no peer for the wait.
                        let abandoned = async {
                            while !hung_up(reader.get_ref().get_ref()) {
                                tokio::time::sleep(HANG_UP_CHECK).await;
                            }
                        };
                        tokio::select! {
                            answer = answer(&client, &bootstrap, request) => match answer {
                                Ok(v) => Response::Ok(v),
                                Err(e) => Response::Error(WireError::Kind(e)),
                            },
                            () = abandoned => return,
                            _ = stopped.wait_for(|stopped| *stopped) => Response::Error(WireError::Kind(
                                MarketplaceError::Network(
                                    "the P2P node was stopped before it finished this command".into(),
                                ),
                            )),
                        }
                    }
                    Err(e) => Response::Error(WireError::Kind(MarketplaceError::Validation(
                        format!("bad control request: {e}"),
                    ))),
                };
                let mut text = serde_json::to_string(&response).expect("responses serialise");
                text.push('\n');
                let _ = write.write_all(text.as_bytes()).await;
                drop(answering);
            });
        }
    });
    Ok(Server {
        socket: socket.to_owned(),
        accepting,
        stopping,
        answering: answered,
    })
}

/// The client closed the connection after sending its request: nobody
/// waits for the answer. (Only a full close hangs up: a client that shuts
/// its write side after the request still reads the answer.)
fn hung_up(stream: &tokio::net::unix::OwnedReadHalf) -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    let socket: &tokio::net::UnixStream = stream.as_ref();
    let mut fds = [PollFd::new(socket, PollFlags::empty())];
    matches!(poll(&mut fds, Some(&rustix::event::Timespec::default())), Ok(n) if n > 0)
        && fds[0].revents().contains(PollFlags::HUP)
}

fn json<T: Serialize>(v: Result<T>) -> Result<Value> {
    v.map(|v| serde_json::to_value(v).expect("answers serialise"))
}

/// `bootstrap`: what the node's start-up bootstrap did.
async fn answer(
    client: &Client,
    bootstrap: &Option<BootstrapReport>,
    request: Request,
) -> Result<Value> {
    match request {
        Request::Status => json(client.status().await),
        Request::Started => json(client.status().await.map(|status| Started {
            status,
            bootstrap: bootstrap.clone(),
        })),
        Request::Peers => json(client.peers().await),
        Request::Peer { peer_id } => json(client.peer(&peer_id).await),
        Request::Bootstrap { addresses } => json(client.bootstrap(&addresses).await),
        Request::Announce { package } => json(client.announce(&package).await),
        Request::Search { query, names } => json(client.search(&query, &names).await),
        Request::Providers { package } => json(client.providers(&package).await),
        Request::Fetch {
            package,
            order,
            dest,
        } => json(client.fetch(&package, &order, &dest).await),
        Request::Stop => Ok(Value::Null),
    }
}

/// A running node, reached through its control socket.
pub struct ControlClient {
    socket: std::path::PathBuf,
    timeout: Duration,
}

impl ControlClient {
    /// Some when a node answers on `socket` within `timeout`, which then
    /// bounds the wait for every answer but a download's.
    pub fn connect(socket: &Path, timeout: Duration) -> Option<Self> {
        let client = Self {
            socket: socket.to_path_buf(),
            timeout,
        };
        // A running node without peers still stores and serves what is
        // published through it, so it is never "offline" to its commands.
        let _: NodeStatus = client.call(&Request::Status).ok()?;
        Some(client)
    }

    /// The node running for this GGEN_HOME, None if there is none; an error
    /// if one holds the home (`node.lock`) but does not answer, rather than
    /// a second node with the same identity, or a long silent wait.
    pub fn running(socket: &Path, timeout: Duration) -> Result<Option<Self>> {
        if let Some(mut node) = Self::connect(socket, STATUS_WITHIN.min(timeout)) {
            node.timeout = timeout;
            return Ok(Some(node));
        }
        let dir = socket.parent().unwrap_or(Path::new("."));
        if !super::running::held(dir)? {
            return Ok(None);
        }
        let lock = dir.join(super::running::LOCK_FILE);
        // No socket: a node starting (it opens it once its start-up
        // bootstrap is done) or stopping. Taken for none, a second node
        // with the same identity started beside it.
        Err(MarketplaceError::Network(if socket.exists() {
            format!(
                "a P2P node runs for this GGEN_HOME (it holds {}) but does not answer on {} within {}s; {}",
                lock.display(),
                socket.display(),
                STATUS_WITHIN.as_secs(),
                super::running::how_to_end(dir)
            )
        } else {
            format!(
                "a P2P node for this GGEN_HOME is starting or stopping (it holds {} and has no control socket yet); try again in a moment",
                lock.display()
            )
        }))
    }

    fn call<T: serde::de::DeserializeOwned>(&self, request: &Request) -> Result<T> {
        // A node that stopped between finding it and asking it is a network
        // that went away: install falls back on it.
        let fail = |e: std::io::Error| {
            MarketplaceError::Network(format!(
                "the running P2P node (control socket {}) did not answer: {e}; it may have stopped",
                self.socket.display()
            ))
        };
        let timeout = match request {
            Request::Fetch { .. } => FETCH_WITHIN,
            _ => self.timeout,
        };
        let mut stream = UnixStream::connect(&self.socket).map_err(fail)?;
        stream.set_read_timeout(Some(timeout)).map_err(fail)?;
        let mut text = serde_json::to_string(request).expect("requests serialise");
        text.push('\n');
        if text.len() as u64 > MAX_REQUEST {
            return Err(MarketplaceError::Validation(format!(
                "this request is {} bytes, more than the running node accepts ({} KiB); shorten the query",
                text.len(),
                MAX_REQUEST >> 10
            )));
        }
        stream.write_all(text.as_bytes()).map_err(fail)?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .map_err(|e| match e.kind() {
                // A network that is away (install falls back on it), said plainly.
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    MarketplaceError::Network(format!(
                        "the running P2P node (control socket {}) did not answer within {}s",
                        self.socket.display(),
                        timeout.as_secs()
                    ))
                }
                _ => fail(e),
            })?;
        if line.is_empty() {
            // The node stopped (or was killed) while answering: a network
            // that went away, which install falls back on.
            return Err(MarketplaceError::Network(format!(
                "the running P2P node (control socket {}) hung up without answering; it may have stopped",
                self.socket.display()
            )));
        }
        let bad = |e: serde_json::Error| {
            MarketplaceError::Unsupported(format!("the running P2P node sent a bad answer: {e}"))
        };
        match serde_json::from_str::<Response>(&line).map_err(bad)? {
            Response::Ok(v) => serde_json::from_value(v).map_err(bad),
            Response::Error(e) => Err(e.into()),
        }
    }

    /// The node's status and what its start-up bootstrap did.
    pub fn started(&self) -> Result<Started> {
        self.call(&Request::Started)
    }

    /// Stop the node, returning once it has let go of its home.
    pub fn stop(&self) -> Result<()> {
        self.call::<Value>(&Request::Stop)?;
        let dir = self.socket.parent().unwrap_or(Path::new("."));
        super::running::wait_until_free(dir, STOPPED_WITHIN)
    }
}

impl Network for ControlClient {
    fn offline(&self) -> Option<String> {
        None
    }
    fn status(&mut self) -> Result<NodeStatus> {
        self.call(&Request::Status)
    }
    fn peers(&mut self) -> Result<Vec<PeerView>> {
        self.call(&Request::Peers)
    }
    fn peer(&mut self, peer_id: &str) -> Result<PeerView> {
        self.call(&Request::Peer {
            peer_id: peer_id.to_owned(),
        })
    }
    fn bootstrap(&mut self, addresses: &[String]) -> Result<BootstrapReport> {
        self.call(&Request::Bootstrap {
            addresses: addresses.to_vec(),
        })
    }
    fn announce(&mut self, package: &PackageVersion) -> Result<AnnounceReport> {
        self.call(&Request::Announce {
            package: package.clone(),
        })
    }
    fn search(&mut self, query: &Query, names: &[String]) -> Result<NetworkSearch> {
        self.call(&Request::Search {
            query: query.clone(),
            names: names.to_vec(),
        })
    }
    fn providers(&mut self, package: &PackageVersion) -> Result<Vec<PeerView>> {
        self.call(&Request::Providers {
            package: package.clone(),
        })
    }
    fn fetch(
        &mut self,
        package: &PackageVersion,
        order: &[String],
        dest: &std::path::Path,
    ) -> Result<String> {
        self.call(&Request::Fetch {
            package: package.clone(),
            order: order.to_vec(),
            dest: dest.to_path_buf(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_gone_between_finding_and_asking_it_is_a_network_failure() {
        // Install falls back to the registry on network failures only: a
        // node stopped mid-command failed the install instead.
        let dir = tempfile::tempdir().unwrap();
        let node = ControlClient {
            socket: dir.path().join("gone.sock"),
            timeout: Duration::from_secs(1),
        };
        match node.stop() {
            Err(MarketplaceError::Network(why)) => {
                assert!(why.contains("may have stopped"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_nodes_failures_keep_their_kind() {
        // Install falls back on a node's network failures and on its not
        // finding a package, and on nothing else: the kind must survive the socket.
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("node.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let kinds = [
            MarketplaceError::Network("no provider answered".into()),
            MarketplaceError::NotFound("this node has not met peer x".into()),
            MarketplaceError::Security("checksum mismatch".into()),
        ];
        let mut expected: Vec<String> = kinds.iter().map(|e| format!("{e:?}")).collect();
        let mut answers: Vec<String> = (kinds.into_iter())
            .map(|e| serde_json::to_string(&Response::Error(WireError::Kind(e))).unwrap())
            .collect();
        // A node of an earlier ggen (still running after an upgrade) sends text.
        answers.push(r#"{"error":"P2P: no provider answered"}"#.into());
        expected.push(format!(
            "{:?}",
            MarketplaceError::Network("no provider answered".into())
        ));
        answers.push(r#"{"error":"storage error: disk full"}"#.into());
        expected.push(format!(
            "{:?}",
            MarketplaceError::Unsupported("storage error: disk full".into())
        ));
        let server = std::thread::spawn(move || {
            for mut text in answers {
                let (stream, _) = listener.accept().unwrap();
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line).unwrap();
                text.push('\n');
                (&stream).write_all(text.as_bytes()).unwrap();
            }
        });
        let node = ControlClient {
            socket,
            timeout: Duration::from_secs(10),
        };
        for want in expected {
            let got = node.call::<Value>(&Request::Status).unwrap_err();
            assert_eq!(format!("{got:?}"), want);
        }
        server.join().unwrap();
    }
}
