//! Starting nodes: the swarm and its event loop on a tokio runtime, either
//! long-running (`p2p start`, serving the control socket) or short-lived
//! (a client node for one command when no node is running).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::{noise, tcp, yamux};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, mpsc};

use super::behaviour::Behaviour;
use super::client::{Client, parse_listen_multiaddr};
use super::control;
use super::event_loop::EventLoop;
use super::identity;
use super::serve::{Served, serve_all};
use super::tls::Tls;
use crate::backend::network::{
    AnnounceReport, BootstrapReport, Network, NetworkSearch, NodeStatus, PeerView, RecordsPut,
    Started,
};
use crate::backend::{MarketplaceError, PackageVersion, Query, Result};

#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// `$GGEN_HOME/p2p/keypair`.
    pub keypair: PathBuf,
    pub listen: Vec<String>,
    pub bootstrap: Vec<String>,
    pub dht_server: bool,
    pub bootstrap_timeout: Duration,
    pub query_timeout: Duration,
    /// Discovered packages kept in memory.
    pub cache_capacity: usize,
    /// Verified tarballs this node serves (`$GGEN_HOME/p2p/serve`).
    pub serve_dir: PathBuf,
    /// Peer statistics kept across runs (`$GGEN_HOME/p2p/peers.json`).
    pub peers_file: PathBuf,
    pub prune: super::peers::Prune,
}

fn runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| MarketplaceError::storage("cannot start the P2P runtime", e))
}

/// The mode of a node that lives for one command.
const CLIENT_NODE: &str = "client node";

/// Build the swarm, listen, and spawn its event loop on the current runtime.
async fn spawn(config: &NodeConfig, mode: &'static str) -> Result<Client> {
    let key = match identity::load_or_create(&config.keypair) {
        Ok(key) => key,
        // A node that lives for one command may ask peers under a passing
        // identity (a read-only GGEN_HOME failed every p2p command); a
        // running node is known by its own.
        Err(MarketplaceError::Storage(why)) if mode == CLIENT_NODE => {
            tracing::warn!("{why}; this command uses a temporary P2P identity");
            libp2p::identity::Keypair::generate_ed25519()
        }
        Err(e) => return Err(e),
    };
    let fail = |e: String| MarketplaceError::Config(format!("cannot start the P2P node: {e}"));
    let behaviour = Behaviour::new(&key, config.dht_server, config.query_timeout).map_err(fail)?;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            // TLS with the cheapest cipher first; Noise for peers without it.
            (Tls::new, noise::Config::new),
            yamux::Config::default,
        )
        .map_err(|e| fail(e.to_string()))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| fail(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .with_connection_timeout(super::dials::CONNECTION_TIMEOUT)
        .build();
    for addr in &config.listen {
        let multiaddr = parse_listen_multiaddr(addr)?;
        port_is_free(&multiaddr)
            .map_err(|e| MarketplaceError::Config(format!("cannot listen on {addr}: {e}")))?;
        swarm.listen_on(multiaddr).map_err(|e| {
            // libp2p's transport error says nothing itself; its source does
            // ("Address already in use").
            let why = crate::backend::error_chain(&e);
            MarketplaceError::Config(format!("cannot listen on {addr}: {why}"))
        })?;
    }
    let served = Served::default();
    let streams = swarm.behaviour().streams.new_control();
    tokio::spawn(serve_all(streams.clone(), served.clone()));
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(
        EventLoop::new(
            swarm,
            rx,
            config.serve_dir.clone(),
            served,
            config.cache_capacity,
            config.dht_server,
            mode,
        )
        .with_peers(
            super::peers::Peers::load(&config.peers_file, config.prune),
            config.peers_file.clone(),
        )
        .run(),
    );
    let client = Client::new(tx, streams, config.bootstrap_timeout, config.query_timeout);
    // Listening is asynchronous: wait until the addresses are known.
    if !config.listen.is_empty() {
        let deadline = Instant::now() + Duration::from_secs(5);
        while client.status().await?.listen_addresses.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(client)
}

/// A node living for one command (seeds §13.1 tier 3).
pub struct LocalNode {
    runtime: Option<Runtime>,
    client: Client,
    offline: Option<String>,
}

impl LocalNode {
    pub fn start(config: &NodeConfig) -> Result<Self> {
        let runtime = runtime()?;
        let client = runtime.block_on(spawn(config, CLIENT_NODE))?;
        let offline = if config.bootstrap.is_empty() {
            Some("no bootstrap nodes are configured ([marketplace.p2p] bootstrap_nodes in config.toml, or --bootstrap)".to_owned())
        } else {
            let report = runtime.block_on(client.bootstrap(&config.bootstrap))?;
            report.reached.is_empty().then(|| {
                format!(
                    "could not reach any of the {} bootstrap node(s){}",
                    config.bootstrap.len(),
                    report.failures()
                )
            })
        };
        Ok(Self {
            runtime: Some(runtime),
            client,
            offline,
        })
    }

    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.runtime
            .as_ref()
            .expect("present until dropped")
            .block_on(f)
    }
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.block_on(async {
                self.client.shutdown().await;
                // The loop saves peer statistics as it stops; wait for it.
                self.client.closed().await;
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Network for LocalNode {
    fn offline(&self) -> Option<String> {
        self.offline.clone()
    }
    fn status(&mut self) -> Result<NodeStatus> {
        self.block_on(self.client.status())
    }
    fn peers(&mut self) -> Result<Vec<PeerView>> {
        self.block_on(self.client.peers())
    }
    fn peer(&mut self, peer_id: &str) -> Result<PeerView> {
        self.block_on(self.client.peer(peer_id))
    }
    fn bootstrap(&mut self, addresses: &[String]) -> Result<BootstrapReport> {
        let report = self.block_on(self.client.bootstrap(addresses))?;
        if report.connected_peers > 0 {
            self.offline = None;
        }
        Ok(report)
    }
    fn announce(&mut self, package: &PackageVersion) -> Result<AnnounceReport> {
        let report = self.block_on(self.client.announce(package))?;
        // This node stops with the command: give the announcement time to
        // leave before the connections close.
        self.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
        Ok(report)
    }
    fn search(&mut self, query: &Query, names: &[String]) -> Result<NetworkSearch> {
        self.block_on(self.client.search(query, names))
    }
    fn providers(&mut self, package: &PackageVersion) -> Result<Vec<PeerView>> {
        self.block_on(self.client.providers(package))
    }
    fn fetch(
        &mut self,
        package: &PackageVersion,
        order: &[String],
        dest: &std::path::Path,
    ) -> Result<String> {
        self.block_on(self.client.fetch(package, order, dest))
    }
}

/// What a long-running node serves from this machine, read once it is up.
pub struct LocalTarballs<P, E> {
    /// The local registry's newest versions (verified copies exported to
    /// the serve directory): one DHT record each.
    pub packages: P,
    /// Given the newest checksums, the other verified copies in the serve
    /// directory (older versions lockfiles pin).
    pub earlier_copies: E,
}

/// Run a node until Ctrl-C, SIGTERM, `p2p stop` or `exit_after`: listen,
/// bootstrap, serve `socket`, call `ready`; then read `local.packages` (the
/// registry plugin may need compiling: the node does not wait for it), put
/// a DHT record for each, call `announced` with how that went, and serve
/// the `local.earlier_copies` too.
pub fn run(
    config: &NodeConfig,
    socket: PathBuf,
    local: LocalTarballs<
        impl FnOnce() -> Result<Vec<PackageVersion>> + Send + 'static,
        impl FnOnce(HashSet<String>) -> Vec<String> + Send + 'static,
    >,
    exit_after: Option<Duration>,
    ready: impl FnOnce(&Started),
    announced: impl FnOnce(RecordsPut) + Send + 'static,
) -> Result<()> {
    super::control::check_socket_path(&socket)?;
    // Held until the node has stopped and removed its socket.
    let _running = super::running::claim_for_node(socket.parent().unwrap_or(Path::new(".")))?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let client = spawn(config, "running node").await?;
        let bootstrap = if config.bootstrap.is_empty() {
            None
        } else {
            Some(client.bootstrap(&config.bootstrap).await?)
        };
        let stop = Arc::new(Notify::new());
        let server = control::serve(&socket, client.clone(), stop.clone(), bootstrap.clone())?;
        ready(&Started {
            status: client.status().await?,
            bootstrap,
        });
        let publisher = client.clone();
        let LocalTarballs {
            packages: local_packages,
            earlier_copies,
        } = local;
        let publishing = tokio::spawn(async move {
            let packages = match tokio::task::spawn_blocking(local_packages).await {
                Ok(Ok(packages)) => packages,
                Ok(Err(e)) => {
                    tracing::warn!(
                        "cannot list the local registry, so no DHT records were put: {e}"
                    );
                    return;
                }
                Err(_) => return,
            };
            announced(super::announce_local::packages(&publisher, &packages).await);
            // Older versions have no record (the DHT holds each package's
            // newest), but lockfiles pin them by sha256: keep serving them.
            let newest = packages.iter().map(|p| p.checksum.clone()).collect();
            let earlier = tokio::task::spawn_blocking(move || earlier_copies(newest)).await;
            super::announce_local::earlier_copies(&publisher, earlier.unwrap_or_default()).await;
        });
        let expire = async {
            match exit_after {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated() => {}
            _ = stop.notified() => {}
            _ = expire => {}
        }
        server.close().await;
        // Records not yet put when the node stops are simply not put: no
        // warning per package that the node it was stopping has stopped.
        // abort() only asks: a task running on another worker would go on
        // and meet the stopped node unless awaited first.
        publishing.abort();
        let _ = publishing.await;
        client.shutdown().await;
        client.closed().await;
        Ok::<_, MarketplaceError>(())
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

#[cfg(unix)]
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminated() {
    std::future::pending().await
}

/// libp2p listens with SO_REUSEPORT, so a second node on a fixed port
/// shared it with the first (dials reached either at random). A plain bind
/// refuses a port someone listens on.
fn port_is_free(addr: &libp2p::Multiaddr) -> std::io::Result<()> {
    use libp2p::multiaddr::Protocol;
    let mut parts = addr.iter();
    let ip: std::net::IpAddr = match parts.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    match parts.next() {
        Some(Protocol::Tcp(port)) if port != 0 => std::net::TcpListener::bind((ip, port)).map(drop),
        _ => Ok(()),
    }
}
