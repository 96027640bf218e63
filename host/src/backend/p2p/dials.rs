//! The dials `bootstrap` asked for, by connection, and how each ended: a
//! peer counts as reached when the connection that was dialled opened, not
//! because it was connected already (through another address).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;

/// Finished dials nobody asked about (the command gave up) are dropped
/// after this long.
const KEPT_FOR: Duration = Duration::from_secs(600);

#[derive(Default)]
pub struct Dials {
    map: HashMap<ConnectionId, Dial>,
}

struct Dial {
    started: Instant,
    /// None while in flight; then the peer that answered, if one did.
    ended: Option<Option<PeerId>>,
}

/// How a set of dials went so far.
#[derive(Debug, Default)]
pub struct DialOutcome {
    pub in_flight: usize,
    pub reached: Vec<PeerId>,
}

impl Dials {
    pub fn started(&mut self, id: ConnectionId) {
        self.map.retain(|_, d| d.started.elapsed() < KEPT_FOR);
        self.map.insert(
            id,
            Dial {
                started: Instant::now(),
                ended: None,
            },
        );
    }

    /// A connection opened or failed; ignored unless `started` was told.
    /// Whether it was one of these dials.
    pub fn ended(&mut self, id: ConnectionId, peer: Option<PeerId>) -> bool {
        match self.map.get_mut(&id) {
            Some(dial) => {
                dial.ended = Some(peer);
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
            match dial.ended {
                None => out.in_flight += 1,
                Some(Some(peer)) if !out.reached.contains(&peer) => out.reached.push(peer),
                Some(_) => {}
            }
        }
        out
    }
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
        dials.started(a);
        dials.started(b);
        let peer = PeerId::random();
        dials.ended(other, Some(peer));
        assert_eq!(dials.outcome(&[a, b]).in_flight, 2);
        dials.ended(a, None);
        dials.ended(b, Some(peer));
        let outcome = dials.outcome(&[a, b]);
        assert_eq!((outcome.in_flight, outcome.reached), (0, vec![peer]));
        assert_eq!(dials.in_flight(), 0);
    }
}
