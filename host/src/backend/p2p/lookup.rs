//! A DHT lookup of one package's record, answered with the newest version
//! among the first few records found. The first record is this node's own
//! copy when it holds one, and the cache holds what announcements said: a
//! node that answered with either kept showing a version the publisher had
//! long replaced.

use std::time::Instant;

use tokio::sync::oneshot;

use crate::backend::network::NetworkPackage;

/// Records compared before answering (the query stops there): the local
/// copy, if any, and peers' beside it.
const ENOUGH: usize = 3;

pub type Answer = Result<Option<NetworkPackage>, String>;

pub struct Lookup {
    pub name: String,
    pub asked: Instant,
    best: Option<NetworkPackage>,
    found: usize,
    reply: oneshot::Sender<Answer>,
}

impl Lookup {
    pub fn new(name: String, reply: oneshot::Sender<Answer>) -> Self {
        Self {
            name,
            asked: Instant::now(),
            best: None,
            found: 0,
            reply,
        }
    }

    /// A record was found: kept if it is the newest so far. True once
    /// enough are in to answer.
    pub fn found(&mut self, hit: NetworkPackage) -> bool {
        self.found += 1;
        if (self.best.as_ref()).is_none_or(|b| hit.package.preference() > b.package.preference()) {
            self.best = Some(hit);
        }
        self.found >= ENOUGH
    }

    /// The lookup is over: the newest record found, else what the cache
    /// knows (an announced package whose record is nowhere), else `failed`
    /// (a timeout) or nothing.
    pub fn answer(self, cached: Option<NetworkPackage>, failed: Option<String>) {
        let answer = match (self.best.or(cached), failed) {
            (Some(hit), _) => Ok(Some(hit)),
            (None, Some(why)) => Err(why),
            (None, None) => Ok(None),
        };
        let _ = self.reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::PackageVersion;

    fn hit(version: &str) -> NetworkPackage {
        NetworkPackage {
            package: PackageVersion {
                name: "p".into(),
                version: version.into(),
                ..Default::default()
            },
            publisher: String::new(),
            via: "dht".into(),
        }
    }

    #[test]
    fn the_newest_record_found_wins_over_the_first_and_the_cache() {
        let (tx, rx) = oneshot::channel();
        let mut l = Lookup::new("p".into(), tx);
        assert!(!l.found(hit("1.0.0")));
        assert!(!l.found(hit("1.2.0")));
        assert!(l.found(hit("1.1.0")));
        l.answer(Some(hit("0.9.0")), None);
        let got = rx.blocking_recv().unwrap().unwrap().unwrap();
        assert_eq!(got.package.version, "1.2.0");

        // Nothing found: the cache, else the failure, else nothing.
        let (tx, rx) = oneshot::channel();
        Lookup::new("p".into(), tx).answer(Some(hit("0.9.0")), Some("timed out".into()));
        assert_eq!(
            rx.blocking_recv()
                .unwrap()
                .unwrap()
                .unwrap()
                .package
                .version,
            "0.9.0"
        );
        let (tx, rx) = oneshot::channel();
        Lookup::new("p".into(), tx).answer(None, Some("timed out".into()));
        assert_eq!(rx.blocking_recv().unwrap().unwrap_err(), "timed out");
        let (tx, rx) = oneshot::channel();
        Lookup::new("p".into(), tx).answer(None, None);
        assert!(rx.blocking_recv().unwrap().unwrap().is_none());
    }
}
