//! A starting node's announcement of what it serves: a provider record and
//! a DHT record for each local package, several packages at a time, and one
//! warning per reason something was not announced (a registry past the
//! node's room for its own records used to warn once for each of thousands).

use std::collections::BTreeMap;

use libp2p::futures::StreamExt;
use libp2p::futures::stream::FuturesOrdered;

use super::client::Client;
use super::held_keys::Standing;
use super::transfer::digest_bytes;
use crate::backend::network::RecordsPut;
use crate::backend::{PackageVersion, Result};

/// Packages announced at once (their provide and put commands sent, the
/// answers awaited): each put asks for the closest peers first, a round
/// trip or more when peers are connected (a provider record is stored here
/// at once; kad sends it on in a query nobody waits for).
const AT_ONCE: usize = 16;

/// Names shown in a warning; the rest are counted.
const NAMED: usize = 3;

/// Provide and put a record for each of `packages` (the local registry's
/// newest versions, exported to the serve directory), the latest published
/// first: when the node has room for only some, the ones left out are the
/// oldest, and a restarted node keeps announcing what was published
/// through it.
pub async fn packages(client: &Client, packages: &[PackageVersion]) -> RecordsPut {
    let mut put = RecordsPut {
        records_put: 0,
        local_packages: packages.len(),
        on_peers: 0,
    };
    let mut unprovided = Reasons::new("package", "not announced as served here");
    let mut unrecorded = Reasons::new("package", "without a DHT record");
    let mut latest_first: Vec<_> = (packages.iter())
        .map(|p| (p.published(), p.clone()))
        .collect();
    // Stable: packages published at the same time (or at none) keep their order.
    latest_first.sort_by(|(a, _), (b, _)| b.cmp(a));
    // Sent one after another, so the node's room fills in this order (each
    // future sending its own reached the event loop out of order under
    // load); answered AT_ONCE at a time.
    let mut tally = |(package, provided, stored): Announced| {
        let who = || format!("{}@{}", package.name, package.version);
        if let Err(e) = provided {
            unprovided.add(e.to_string(), who());
        }
        match stored {
            Ok(peers) => {
                put.records_put += 1;
                put.on_peers += usize::from(peers > 0);
            }
            Err(e) => unrecorded.add(e.to_string(), who()),
        }
    };
    let mut answers = FuturesOrdered::new();
    for (_, package) in latest_first {
        if answers.len() == AT_ONCE
            && let Some(done) = answers.next().await
        {
            tally(done);
        }
        let provided = client.send_provide(&package, Standing::Local).await;
        let stored = client.send_put(&package, Standing::Local).await;
        answers.push_back(async move { (package, answer(provided).await, answer(stored).await) });
    }
    while let Some(done) = answers.next().await {
        tally(done);
    }
    put
}

/// A package, and whether it was provided and its record stored.
type Announced = (PackageVersion, Result<bool>, Result<usize>);

/// The answer to a command, or why it could not be sent.
async fn answer<T>(sent: Result<impl Future<Output = Result<T>>>) -> Result<T> {
    sent?.await
}

/// Provide the older tarballs still served (by checksum; they have no
/// record: the DHT holds each package's newest).
pub async fn earlier_copies(client: &Client, checksums: Vec<String>) {
    let mut unprovided = Reasons::new("older tarball", "not announced as served here");
    for checksum in checksums {
        if let Some(sha) = digest_bytes(&checksum)
            && let Err(e) = client.provide_digest(sha, Standing::Earlier).await
        {
            unprovided.add(e.to_string(), checksum);
        }
    }
}

/// What failed, grouped by why; warned about when dropped, so that a node
/// stopped midway still says what failed before.
struct Reasons {
    noun: &'static str,
    what: &'static str,
    /// Per reason: how many, and the first few names.
    seen: BTreeMap<String, (usize, Vec<String>)>,
}

impl Reasons {
    fn new(noun: &'static str, what: &'static str) -> Self {
        Self {
            noun,
            what,
            seen: BTreeMap::new(),
        }
    }

    fn add(&mut self, why: String, who: String) {
        let (count, named) = self.seen.entry(why).or_default();
        *count += 1;
        if named.len() < NAMED {
            named.push(who);
        }
    }
}

impl Drop for Reasons {
    /// One warning per reason: "3 packages not announced as served here
    /// (a@1.0.0, b@1.0.0, c@1.0.0): why".
    fn drop(&mut self) {
        for (why, (count, named)) in &self.seen {
            let more = if *count > named.len() { ", ..." } else { "" };
            let plural = if *count == 1 { "" } else { "s" };
            tracing::warn!(
                "{count} {}{plural} {} ({}{more}): {why}",
                self.noun,
                self.what,
                named.join(", ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::*;
    use crate::backend::p2p::event_loop::Command;

    fn package(i: usize, published_at: &str) -> PackageVersion {
        PackageVersion {
            name: format!("pkg-{i:03}"),
            version: "1.0.0".into(),
            checksum: format!("sha256-{i:064x}"),
            published_at: published_at.into(),
            size: 1,
            ..Default::default()
        }
    }

    /// The node's room fills in the order packages are announced in, so
    /// the commands must reach the event loop in it, whenever (and in
    /// whatever order) their answers come: here a stand-in loop answers
    /// each batch it has received last first.
    #[tokio::test]
    async fn commands_reach_the_event_loop_latest_published_first() {
        let mut packages: Vec<_> = (0..100).map(|i| package(i, "not a date")).collect();
        packages[40].published_at = "2026-11-20T10:00:00Z".into();
        packages[7].published_at = "2026-11-20T12:00:00+02:00".into();
        packages[90].published_at = "2026-11-20T10:30:00Z".into();
        let (tx, mut rx) = mpsc::channel(256);
        let streams = libp2p_stream::Behaviour::new().new_control();
        let client = Client::new(tx, streams, Duration::from_secs(5), Duration::from_secs(5));
        let announcing = tokio::spawn({
            let list = packages.clone();
            async move { super::packages(&client, &list).await }
        });
        let (mut provided, mut put) = (vec![], vec![]);
        while put.len() < packages.len() {
            let mut batch = vec![rx.recv().await.expect("the announcement stopped early")];
            tokio::task::yield_now().await;
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            // Names in the order received, answers last first.
            let mut answers: Vec<Box<dyn FnOnce()>> = vec![];
            for command in batch {
                match command {
                    Command::Provide(_, Standing::Local, Some(p), reply) => {
                        provided.push(p.name);
                        answers.push(Box::new(move || drop(reply.send(Ok(true)))));
                    }
                    Command::Put(p, Standing::Local, reply) => {
                        put.push(p.name);
                        answers.push(Box::new(move || drop(reply.send(Ok(1)))));
                    }
                    _ => panic!("a command other than Provide or Put"),
                }
            }
            answers.into_iter().rev().for_each(|answer| answer());
        }
        let report = announcing.await.unwrap();
        assert_eq!((report.records_put, report.on_peers), (100, 100));
        // Dated first, the latest first (+02:00 is 10:00Z); the undated in
        // their order.
        let mut expected = vec!["pkg-090", "pkg-007", "pkg-040"];
        let undated = (0..100).filter(|i| ![7, 40, 90].contains(i));
        let undated: Vec<String> = undated.map(|i| format!("pkg-{i:03}")).collect();
        expected.extend(undated.iter().map(String::as_str));
        assert_eq!(provided, expected);
        assert_eq!(put, expected);
    }
}
