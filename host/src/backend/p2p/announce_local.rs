//! A starting node's announcement of what it serves: a provider record and
//! a DHT record for each local package, several packages at a time, and one
//! warning per reason something was not announced (a registry past the
//! node's room for its own records used to warn once for each of thousands).

use std::collections::BTreeMap;

use libp2p::futures::{StreamExt, stream};

use super::client::Client;
use super::held_keys::Standing;
use super::transfer::digest_bytes;
use crate::backend::PackageVersion;
use crate::backend::network::RecordsPut;

/// Records put at once: each put asks for the closest peers first, a
/// round trip or more when peers are connected (a provider record is
/// stored here at once; kad sends it on in a query nobody waits for).
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
        .map(|p| (published(p), p.clone()))
        .collect();
    // Stable: packages published at the same time (or at none) keep their order.
    latest_first.sort_by(|(a, _), (b, _)| b.cmp(a));
    // Owned by each future: a future borrowing across the stream would not
    // be Send for every lifetime, as the node's task needs.
    let mut each = stream::iter(latest_first.into_iter().map(|(_, p)| p))
        .map(|p| {
            let client = client.clone();
            async move {
                let provided = client.provide(&p, Standing::Local).await;
                let stored = client.put_record(&p, Standing::Local).await;
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
    put
}

/// When `package` was published (None, which comes last, where its
/// registry's date is no RFC 3339 time).
fn published(package: &PackageVersion) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(
        &package.published_at,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()
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
