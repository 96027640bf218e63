//! A starting node's announcement of what it serves: a provider record and
//! a DHT record for each local package, several packages at a time, and one
//! warning per reason something was not announced (a registry past the
//! node's room for its own records used to warn once for each of thousands).

use std::collections::BTreeMap;

use libp2p::futures::{StreamExt, stream};

use super::client::Client;
use super::transfer::digest_bytes;
use crate::backend::PackageVersion;
use crate::backend::network::RecordsPut;

/// Packages announced at once: each put asks for the closest peers first,
/// a round trip or more when peers are connected.
const AT_ONCE: usize = 16;

/// Names shown in a warning; the rest are counted.
const NAMED: usize = 3;

/// Provide and put a record for each of `packages` (the local registry's
/// newest versions, exported to the serve directory).
pub async fn packages(client: &Client, packages: &[PackageVersion]) -> RecordsPut {
    let mut put = RecordsPut {
        records_put: 0,
        local_packages: packages.len(),
        on_peers: 0,
    };
    let (mut unprovided, mut unrecorded) = (Reasons::default(), Reasons::default());
    // Owned by each future: a future borrowing across the stream would not
    // be Send for every lifetime, as the node's task needs.
    let mut each = stream::iter(packages.iter().cloned())
        .map(|p| {
            let client = client.clone();
            async move {
                let provided = client.provide(&p).await;
                let stored = client.put_record(&p).await;
                (p, provided, stored)
            }
        })
        .buffered(AT_ONCE);
    while let Some((package, provided, stored)) = each.next().await {
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
    }
    unprovided.warn("package", "not announced as served here");
    unrecorded.warn("package", "without a DHT record");
    put
}

/// Provide the older tarballs still served (by checksum; they have no
/// record: the DHT holds each package's newest).
pub async fn earlier_copies(client: &Client, checksums: Vec<String>) {
    let mut unprovided = Reasons::default();
    let digests = checksums
        .into_iter()
        .filter_map(|c| digest_bytes(&c).map(|sha| (c, sha)));
    let mut each = stream::iter(digests)
        .map(|(checksum, sha)| {
            let client = client.clone();
            async move { (checksum, client.provide_digest(sha).await) }
        })
        .buffered(AT_ONCE);
    while let Some((checksum, provided)) = each.next().await {
        if let Err(e) = provided {
            unprovided.add(e.to_string(), checksum);
        }
    }
    unprovided.warn("older tarball", "not announced as served here");
}

/// What failed, grouped by why.
#[derive(Default)]
struct Reasons(BTreeMap<String, (usize, Vec<String>)>);

impl Reasons {
    fn add(&mut self, why: String, who: String) {
        let (count, named) = self.0.entry(why).or_default();
        *count += 1;
        if named.len() < NAMED {
            named.push(who);
        }
    }

    /// One warning per reason: "3 packages not announced as served here
    /// (a@1.0.0, b@1.0.0, c@1.0.0): why".
    fn warn(&self, noun: &str, what: &str) {
        for (why, (count, named)) in &self.0 {
            let more = if count > &named.len() { ", ..." } else { "" };
            let plural = if *count == 1 { "" } else { "s" };
            tracing::warn!(
                "{count} {noun}{plural} {what} ({}{more}): {why}",
                named.join(", ")
            );
        }
    }
}
