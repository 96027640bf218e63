//! The swarm's protocols: Kademlia (package records), Gossipsub
//! (announcements on `/ggen/packages/v1`), identify (addresses, agents),
//! plain streams (tarballs, see transfer.rs).

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::kad::store::MemoryStore;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, gossipsub, identify, kad};

use super::record::MAX_RECORD_BYTES;

pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ggen/kad/1.0.0");
const IDENTIFY_PROTOCOL: &str = "/ggen/id/1.0.0";

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub kademlia: kad::Behaviour<MemoryStore>,
    pub gossipsub: gossipsub::Behaviour,
    pub identify: identify::Behaviour,
    pub streams: libp2p_stream::Behaviour,
}

impl Behaviour {
    pub fn new(key: &Keypair, dht_server: bool, query_timeout: Duration) -> Result<Self, String> {
        let peer_id = key.public().to_peer_id();
        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        kad_config.set_query_timeout(query_timeout);
        // kad's default (16 KiB) is below our largest record: such records
        // failed to be stored or fetched. Room for the closer peers besides.
        kad_config.set_max_packet_size(MAX_RECORD_BYTES + (16 << 10));
        // Inbound records are validated by the event loop before they are
        // stored; it stores provider records as they come.
        kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
        let store = super::held_keys::bounded_store(peer_id, MAX_RECORD_BYTES);
        let mut kademlia = kad::Behaviour::with_config(peer_id, store, kad_config);
        // Client nodes (short-lived) query the DHT but do not serve it.
        kademlia.set_mode(Some(if dht_server {
            kad::Mode::Server
        } else {
            kad::Mode::Client
        }));

        let gossip_config = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(Duration::from_millis(250))
            .validation_mode(gossipsub::ValidationMode::Strict)
            // Messages are forwarded only after the event loop accepted them.
            .validate_messages()
            .max_transmit_size(MAX_RECORD_BYTES + 4096)
            .build()
            .map_err(|e| format!("gossipsub configuration: {e}"))?;
        let gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config,
        )
        .map_err(|e| format!("gossipsub: {e}"))?;

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                .with_agent_version(format!("ggen/{}", env!("CARGO_PKG_VERSION"))),
        );
        Ok(Self {
            kademlia,
            gossipsub,
            identify,
            streams: libp2p_stream::Behaviour::new(),
        })
    }
}
