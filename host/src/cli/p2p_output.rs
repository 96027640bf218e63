//! What the p2p commands print: aligned text, or JSON (formats in the README).

use ggen::backend::network::{BootstrapReport, NodeStatus, PeerView, unix_now};
use ggen::domain::p2p::{P2pPublishReport, P2pSearchReport};

use super::output::{no_results, page_footer, print_json, table};

fn json<T: serde::Serialize>(value: &T) {
    print_json(&serde_json::to_value(value).expect("reports serialise"));
}

pub fn publish(r: &P2pPublishReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    let p = &r.published;
    if r.already_published {
        out!(
            "{}@{} is in the local registry with these exact bytes already ({})",
            p.name,
            p.version,
            p.checksum
        );
    } else {
        out!(
            "Published {}@{} to the local registry ({})",
            p.name,
            p.version,
            p.checksum
        );
    }
    match &r.announced {
        Some(a) => {
            if a.version != p.version {
                out!(
                    "The network shows {}@{}, the newest version, so that is what was announced",
                    p.name,
                    a.version
                );
            }
            let (gossip, dht) = (a.report.gossip_peers, a.report.dht_peers);
            out!(
                "Announced to {gossip} peer{} on /ggen/packages/v1; DHT record acknowledged by {dht} peer{}",
                if gossip == 1 { "" } else { "s" },
                if dht == 1 { "" } else { "s" }
            );
            if let Some(why) = &a.report.not_provided {
                out!("No provider record was put for its tarball: {why}");
            }
        }
        None => out!(
            "Not announced: {} (it is in the local registry only; the next `ggen marketplace p2p start` announces it again)",
            r.offline.as_deref().unwrap_or("offline")
        ),
    }
}

pub fn search(r: &P2pSearchReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    if r.results.is_empty() {
        no_results(&r.query, r.total);
    } else {
        results(r);
    }
    if r.hidden_by_reputation > 0 {
        out!(
            "{} more match{} offered only by peers under reputation {} (lower --min-reputation to see {})",
            r.hidden_by_reputation,
            if r.hidden_by_reputation == 1 {
                ""
            } else {
                "es"
            },
            r.min_reputation,
            if r.hidden_by_reputation == 1 {
                "it"
            } else {
                "them"
            }
        );
    }
}

fn results(r: &P2pSearchReport) {
    let rows: Vec<[String; 5]> = r
        .results
        .iter()
        .map(|h| {
            let source = if h.source == "local" {
                "local".to_owned()
            } else {
                format!("{} {}", h.via, short(&h.source))
            };
            [
                h.package.name.clone(),
                h.package.version.clone(),
                source,
                format!("{:.2}", h.reputation),
                super::output::summary(&h.package),
            ]
        })
        .collect();
    table(["NAME", "VERSION", "SOURCE", "REP", "DESCRIPTION"], &rows);
    page_footer(&r.query, r.results.len(), r.total);
}

/// The end of a PeerId (the start is the same for every Ed25519 key).
fn short(peer: &str) -> String {
    let tail: String = peer
        .chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

pub fn peers(peers: &[PeerView], as_json: bool) {
    if as_json {
        return print_json(&serde_json::json!({ "peers": peers }));
    }
    if peers.is_empty() {
        out!("No known peers.");
        return;
    }
    let now = unix_now();
    let rows: Vec<[String; 6]> = peers
        .iter()
        .map(|p| {
            [
                p.peer_id.clone(),
                format!("{:.2}", p.reputation),
                format!("{}/{}", p.successes, p.failures),
                if p.connected { "yes" } else { "no" }.to_owned(),
                ago(p.last_seen, now),
                p.addresses.first().cloned().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        [
            "PEER",
            "REP",
            "OK/FAIL",
            "CONNECTED",
            "LAST SEEN",
            "ADDRESS",
        ],
        &rows,
    );
}

/// `last_seen` (Unix seconds, 0 for never) as people read it: "5m ago".
fn ago(last_seen: u64, now: u64) -> String {
    if last_seen == 0 {
        return "never".into();
    }
    let secs = now.saturating_sub(last_seen);
    match secs {
        0..60 => "just now".into(),
        60..3_600 => format!("{}m ago", secs / 60),
        3_600..86_400 => format!("{}h ago", secs / 3_600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// `last_seen` with its date, for one peer: "2026-11-22 14:03:05 UTC (5m ago)".
fn seen_at(last_seen: u64, now: u64) -> String {
    let date = i64::try_from(last_seen)
        .ok()
        .filter(|&t| t > 0)
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok());
    match date {
        Some(d) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC ({})",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second(),
            ago(last_seen, now)
        ),
        None => "never".into(),
    }
}

pub fn peer(p: &PeerView, as_json: bool) {
    if as_json {
        return json(p);
    }
    out!("peer         {}", p.peer_id);
    out!("reputation   {:.2}", p.reputation);
    out!("successes    {}", p.successes);
    out!("failures     {}", p.failures);
    out!("unreachable  {}", p.unreachable);
    out!("rate limited {}", p.rate_limited);
    out!("latency      {} ms", p.avg_latency_ms);
    out!("connected    {}", if p.connected { "yes" } else { "no" });
    out!("last seen    {}", seen_at(p.last_seen, unix_now()));
    if let Some(agent) = &p.agent {
        out!("agent        {agent}");
    }
    for a in &p.addresses {
        out!("address      {a}");
    }
}

pub fn bootstrap(r: &BootstrapReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    out!(
        "Reached {} dialled peer(s); connected to {} peer(s) in all.",
        r.reached.len(),
        r.connected_peers
    );
    could_not_reach(r);
}

fn could_not_reach(r: &BootstrapReport) {
    for f in &r.failed {
        out!("could not reach {}: {}", f.address, f.error);
    }
}

pub fn status(s: &NodeStatus, as_json: bool) {
    if as_json {
        return json(s);
    }
    let m = &s.metrics;
    out!("peer id          {}", s.peer_id);
    out!(
        "node             {}{}",
        s.mode,
        if s.dht_server { " (DHT server)" } else { "" }
    );
    for a in &s.listen_addresses {
        out!("listening on     {a}");
    }
    out!("connected peers  {}", s.connected_peers.len());
    out!("known peers      {}", s.known_peers);
    out!("records held     {}", s.records_held);
    out!("tarballs served  {}", s.tarballs_served);
    out!("uptime           {}s", s.uptime_secs);
    out!(
        "dht queries      {} ({} failed)",
        m.dht_queries,
        m.dht_query_failures
    );
    out!("reputation avg   {:.2}", m.peer_reputation_avg);
    out!(
        "cache            {}/{} packages, hit rate {:.2}",
        m.cache_size,
        m.cache_capacity,
        m.cache_hit_rate
    );
    out!(
        "announcements    {} received, {} sent, {} rejected, {} rate-limited",
        m.announcements_received,
        m.announcements_sent,
        m.messages_rejected,
        m.messages_rate_limited
    );
    out!("records rejected {}", m.records_rejected);
    out!("provider records {} received", m.provider_records_received);
}

/// A node that started (in the foreground, or `--daemon` in the
/// background): the same warning and JSON either way.
#[cfg(feature = "p2p")]
pub fn started(s: &ggen::backend::network::Started, in_background: bool, as_json: bool) {
    // On stderr whatever the format (--json said nothing).
    if let Some(b) = s.bootstrap.as_ref().filter(|b| b.reached.is_empty()) {
        tracing::warn!(
            "Operating in offline mode: no bootstrap node answered{}; waiting for peers",
            b.failures()
        );
    }
    if as_json {
        print_json(&serde_json::json!({
            "peer_id": s.status.peer_id,
            "listen_addresses": s.status.listen_addresses,
            "connected_peers": s.status.connected_peers,
            "dht_server": s.status.dht_server,
            "bootstrap": s.bootstrap,
        }));
    } else {
        if in_background {
            out!("P2P node running in the background");
        }
        out!("PeerId: {}", s.status.peer_id);
        for a in &s.status.listen_addresses {
            out!("listening on {a}");
        }
        match &s.bootstrap {
            Some(b) if b.reached.is_empty() => {}
            Some(b) => {
                out!("bootstrapped: connected to {} peer(s)", b.reached.len());
                could_not_reach(b);
            }
            None => out!("no bootstrap nodes: waiting for peers to connect"),
        }
        if !in_background {
            out!("putting DHT records for the local registry's packages");
            out!("ready (Ctrl-C or `ggen marketplace p2p stop` to stop)");
        }
    }
    // Tests and scripts read these lines while the node runs.
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

/// The local registry's packages are on the network (the node's last
/// start-up line; scripts may wait for it before asking peers for them).
#[cfg(feature = "p2p")]
pub fn announced(put: &ggen::backend::network::RecordsPut, as_json: bool) {
    if as_json {
        json(put);
    } else if put.on_peers == put.records_put {
        out!(
            "announced: DHT records for {} of {} local packages",
            put.records_put,
            put.local_packages
        );
    } else {
        // It said the same with no peer to hold them.
        out!(
            "announced: DHT records for {} of {} local packages, {} of them held by peers (the rest only here until a peer connects and the records are put again)",
            put.records_put,
            put.local_packages,
            put.on_peers
        );
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_seen_reads_as_a_time_not_a_number() {
        let now = 1_795_000_000;
        assert_eq!(ago(0, now), "never");
        assert_eq!(ago(now - 5, now), "just now");
        assert_eq!(ago(now - 300, now), "5m ago");
        assert_eq!(ago(now - 7_200, now), "2h ago");
        assert_eq!(ago(now - 3 * 86_400, now), "3d ago");
        // A clock that went backwards is not "in the future".
        assert_eq!(ago(now + 60, now), "just now");
        assert_eq!(seen_at(0, now), "never");
        assert_eq!(
            seen_at(1_795_000_000, now + 120),
            "2026-11-18 11:06:40 UTC (2m ago)"
        );
    }
}
