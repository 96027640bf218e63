//! Dispatch of `ggen marketplace p2p ...`.

use ggen::domain::{self, MarketplaceError, Query};
use ggen::session::{P2pOverrides, Session};

use super::args::{NetArgs, P2pCommand};
use super::p2p_output as output;

pub(super) fn overrides(net: &NetArgs) -> P2pOverrides {
    P2pOverrides {
        bootstrap: net.bootstrap.clone(),
        ..P2pOverrides::default()
    }
}

/// Say so when the network is unreachable; the command goes on with local data.
fn warn_offline(network: &dyn ggen::backend::network::Network) {
    if let Some(why) = network.offline() {
        tracing::warn!("Operating in offline mode: {why}; answering from local data");
    }
}

pub fn run(session: &Session, command: P2pCommand) -> Result<(), MarketplaceError> {
    match command {
        P2pCommand::Start(a) => start(session, a),
        P2pCommand::Stop => stop(session),
        P2pCommand::Publish(a) => {
            // As `publish`: bad input writes nothing, a new registry is made.
            let net = overrides(&a.net);
            session.check_network(&net)?;
            let package = domain::publish::prepare(&a.dir)?;
            let (mut registry, _created) = session.open_registry_to_publish()?;
            let options = domain::publish::PublishOptions {
                dry_run: false,
                force: a.force,
            };
            let report = domain::p2p::publish(
                registry.as_mut(),
                || session.open_network(&net),
                package,
                &session.serve_dir(),
                &options,
                || session.lock_registry(),
            )?;
            output::publish(&report, a.json);
            Ok(())
        }
        P2pCommand::Search(a) => {
            let query = a.query.into_query();
            let min = a
                .min_reputation
                .unwrap_or(session.config.marketplace.p2p.reputation.min_reputation);
            check_reputation(min)?;
            let mut registry = session.open_registry()?;
            let mut network = session.open_network(&overrides(&a.net))?;
            warn_offline(network.as_ref());
            let mut policy = session.open_policy()?;
            let report = domain::p2p::search(
                registry.as_mut(),
                network.as_mut(),
                policy.as_mut(),
                &query,
                min,
            )?;
            output::search(&report, a.json);
            Ok(())
        }
        P2pCommand::PeerList(a) => {
            let min = a.min_reputation.unwrap_or(0.0);
            check_reputation(min)?;
            let mut network = session.open_network(&overrides(&a.net))?;
            let mut policy = session.open_policy()?;
            let peers = domain::p2p::peers(network.as_mut(), policy.as_mut(), min)?;
            warn_offline(network.as_ref());
            output::peers(&peers, a.json);
            Ok(())
        }
        P2pCommand::PeerInfo(a) => {
            let mut network = session.open_network(&overrides(&a.net))?;
            let mut policy = session.open_policy()?;
            let peer = domain::p2p::peer(network.as_mut(), policy.as_mut(), &a.peer_id)?;
            output::peer(&peer, a.json);
            Ok(())
        }
        P2pCommand::Bootstrap(a) => {
            let mut network = session.open_network(&P2pOverrides::default())?;
            let report = network.bootstrap(&a.addresses)?;
            if report.reached.is_empty() {
                // Scripts read why each address failed from the report; the
                // error line says it too, for people.
                if a.json {
                    output::bootstrap(&report, true);
                }
                return Err(MarketplaceError::Unsupported(format!(
                    "none of {} answered{}; check the addresses and that the peers are running",
                    a.addresses.join(", "),
                    report.failures()
                )));
            }
            output::bootstrap(&report, a.json);
            Ok(())
        }
        P2pCommand::Status(a) => {
            let mut network = session.open_network(&overrides(&a.net))?;
            let status = network.status()?;
            warn_offline(network.as_ref());
            output::status(&status, a.json);
            Ok(())
        }
    }
}

/// `search --hybrid` (seeds §3.2): the file registry and the network in
/// parallel, merged by package, with each result's source.
pub fn hybrid_search(
    session: &Session,
    registry: &mut dyn ggen::domain::Registry,
    query: &Query,
    net: &NetArgs,
    json: bool,
) -> Result<(), MarketplaceError> {
    let min = session.config.marketplace.p2p.reputation.min_reputation;
    let mut network = session.open_network(&overrides(net))?;
    warn_offline(network.as_ref());
    let mut policy = session.open_policy()?;
    let report = domain::p2p::search(registry, network.as_mut(), policy.as_mut(), query, min)?;
    output::search(&report, json);
    Ok(())
}

fn check_reputation(r: f64) -> Result<(), MarketplaceError> {
    if (0.0..=1.0).contains(&r) {
        Ok(())
    } else {
        Err(MarketplaceError::Validation(format!(
            "--min-reputation {r} is outside 0.0-1.0"
        )))
    }
}

#[cfg(feature = "p2p")]
fn start(session: &Session, a: super::args::P2pStartArgs) -> Result<(), MarketplaceError> {
    if a.exit_after.is_some_and(|d| d.is_zero()) {
        return Err(MarketplaceError::Validation(
            "--exit-after 0s would stop the node before it starts; give a positive duration, e.g. 10m".into(),
        ));
    }
    let overrides = P2pOverrides {
        listen: a.listen.clone(),
        bootstrap: a.net.bootstrap.clone(),
        dht_server: match (a.dht_server, a.dht_client) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
    };
    if a.daemon {
        let args: Vec<std::ffi::OsString> = std::env::args_os()
            .skip(1)
            .filter(|arg| arg != "--daemon")
            .collect();
        let started = session.spawn_node_daemon(args)?;
        output::started(&started, true, a.json);
        return Ok(());
    }
    let json = a.json;
    session.run_node(
        &overrides,
        a.exit_after,
        |started| output::started(started, false, json),
        move |put| output::announced(&put, json),
    )
}

#[cfg(not(feature = "p2p"))]
fn start(_: &Session, _: super::args::P2pStartArgs) -> Result<(), MarketplaceError> {
    Err(ggen::session::p2p_not_compiled())
}

#[cfg(feature = "p2p")]
fn stop(session: &Session) -> Result<(), MarketplaceError> {
    if session.stop_node()? {
        out!("Stopped the P2P node.");
        Ok(())
    } else {
        Err(MarketplaceError::NotFound(
            "no P2P node is running for this GGEN_HOME".into(),
        ))
    }
}

#[cfg(not(feature = "p2p"))]
fn stop(_: &Session) -> Result<(), MarketplaceError> {
    Err(ggen::session::p2p_not_compiled())
}
