//! The libp2p node (seeds §3.1, §4.3; DESIGN.md "P2P node"): Kademlia
//! records for package metadata, Gossipsub announcements on
//! `/ggen/packages/v1`, identify, a persistent Ed25519 identity. A
//! [`client::Client`] handle talks to one event-loop task that owns the
//! swarm, as in rust-libp2p's file-sharing example; other processes reach a
//! running node through its control socket. The domain sees only
//! [`crate::backend::network::Network`].

mod announce_local;
mod behaviour;
mod client;
mod control;
pub mod daemon;
mod dials;
mod download;
mod event_loop;
mod held_keys;
mod identity;
mod lookup;
mod node;
mod own_share;
mod peers;
mod peers_file;
mod record;
mod remote_keys;
mod running;
mod serve;
mod tls;
mod transfer;

pub use client::{parse_listen_multiaddr, parse_multiaddr};
pub use control::ControlClient;
pub use node::{LocalNode, LocalTarballs, NodeConfig, run};
pub use peers::Prune;
