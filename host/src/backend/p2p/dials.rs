//! The dials `bootstrap` asked for, by connection, and how each ended: a
//! peer counts as reached when the connection that was dialled opened, not
//! because it was connected already (through another address).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::core::transport::TransportError;
use libp2p::core::transport::timeout::TransportTimeoutError;
use libp2p::swarm::{ConnectionId, DialError};
use libp2p::{Multiaddr, PeerId};

use crate::backend::error_chain;

/// Finished dials nobody asked about (the command gave up) are dropped
/// after this long.
const KEPT_FOR: Duration = Duration::from_secs(600);

#[derive(Default)]
pub struct Dials {
    map: HashMap<ConnectionId, Dial>,
}

struct Dial {
    started: Instant,
    address: Multiaddr,
    /// None while in flight; then the peer that answered, or why none did.
    ended: Option<Result<PeerId, String>>,
}

/// An address no peer answered at, and why.
pub type Failed = (Multiaddr, String);

/// How a set of dials went so far.
#[derive(Debug, Default)]
pub struct DialOutcome {
    /// The addresses still being dialled.
    pub in_flight: Vec<Multiaddr>,
    pub reached: Vec<PeerId>,
    pub failed: Vec<Failed>,
}

impl Dials {
    pub fn started(&mut self, id: ConnectionId, address: Multiaddr) {
        // Only finished ones: a dial is reported until it ends.
        self.map
            .retain(|_, d| d.ended.is_none() || d.started.elapsed() < KEPT_FOR);
        self.map.insert(
            id,
            Dial {
                started: Instant::now(),
                address,
                ended: None,
            },
        );
    }

    /// A connection opened (to this peer) or failed (for this reason);
    /// ignored unless `started` was told. Whether it was one of these dials.
    pub fn ended(&mut self, id: ConnectionId, result: Result<PeerId, String>) -> bool {
        match self.map.get_mut(&id) {
            Some(dial) => {
                dial.ended = Some(result);
                true
            }
            None => false,
        }
    }

    pub fn in_flight(&self) -> usize {
        self.map.values().filter(|d| d.ended.is_none()).count()
    }

    pub fn outcome(&self, ids: &[ConnectionId]) -> DialOutcome {
        let mut out = DialOutcome::default();
        for dial in ids.iter().filter_map(|id| self.map.get(id)) {
            match &dial.ended {
                None => out.in_flight.push(dial.address.clone()),
                Some(Ok(peer)) if !out.reached.contains(peer) => out.reached.push(*peer),
                Some(Ok(_)) => {}
                Some(Err(why)) => out.failed.push((dial.address.clone(), why.clone())),
            }
        }
        out
    }
}

/// Why a dial failed, in a few words a user can act on.
pub fn why_failed(error: &DialError) -> String {
    match error {
        // The swarm leaves out the addresses it listens on, and a bootstrap
        // dial has one address: none is left.
        DialError::LocalPeerId { .. } | DialError::NoAddresses => {
            "that is this node's own address".into()
        }
        DialError::WrongPeerId { obtained, .. } => {
            format!("another peer answered there ({obtained})")
        }
        // What each address did: "Connection refused", a failed handshake.
        DialError::Transport(tried) => (tried.iter())
            .map(|(_, e)| match e {
                TransportError::Other(e) if timed_out(e) => {
                    format!("no answer within {}s", CONNECTION_TIMEOUT.as_secs())
                }
                e => error_chain(e),
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => error_chain(other),
    }
}

/// The swarm's limit on setting up a connection (libp2p's default, set
/// where the swarm is built).
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// A dial the swarm gave up at [`CONNECTION_TIMEOUT`] ("Timeout has been
/// reached", said libp2p).
fn timed_out(mut e: &std::io::Error) -> bool {
    // The timeout error's type names the whole transport stack, so it
    // cannot be downcast to; its text is the same whatever the stack. Each
    // boxing of the transport wraps it in another io::Error.
    let timeout = TransportTimeoutError::<std::io::Error>::Timeout.to_string();
    while let Some(inner) = e.get_ref() {
        match inner.downcast_ref::<std::io::Error>() {
            Some(wrapped) => e = wrapped,
            None => return inner.to_string() == timeout,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_dialled_connections_count() {
        let mut dials = Dials::default();
        let (a, b, other) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
        );
        let (at_a, at_b): (Multiaddr, Multiaddr) = (
            "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
            "/ip4/127.0.0.1/tcp/2".parse().unwrap(),
        );
        dials.started(a, at_a.clone());
        dials.started(b, at_b);
        let peer = PeerId::random();
        dials.ended(other, Ok(peer));
        assert_eq!(dials.outcome(&[a, b]).in_flight.len(), 2);
        dials.ended(a, Err("refused".into()));
        dials.ended(b, Ok(peer));
        let outcome = dials.outcome(&[a, b]);
        assert!(outcome.in_flight.is_empty());
        assert_eq!(outcome.reached, vec![peer]);
        assert_eq!(outcome.failed, vec![(at_a, "refused".to_owned())]);
        assert_eq!(dials.in_flight(), 0);
    }

    #[test]
    fn a_dial_that_timed_out_says_how_long_it_waited() {
        let timeout = TransportTimeoutError::<std::io::Error>::Timeout;
        let error = DialError::Transport(vec![(
            "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
            TransportError::Other(std::io::Error::other(timeout)),
        )]);
        assert_eq!(why_failed(&error), "no answer within 10s");
        let timeout = TransportTimeoutError::<std::io::Error>::Timeout;
        let twice = std::io::Error::other(std::io::Error::other(timeout));
        let error = DialError::Transport(vec![(
            "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
            TransportError::Other(twice),
        )]);
        assert_eq!(why_failed(&error), "no answer within 10s");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let error = DialError::Transport(vec![(
            "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
            TransportError::Other(refused),
        )]);
        assert_eq!(why_failed(&error), "connection refused");
    }
}
