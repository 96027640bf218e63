//! Peer statistics on disk, `$GGEN_HOME/p2p/peers.json`: read when a node
//! starts, written by every node and short-lived command that learned
//! something. Writers take `peers.json.lock` and add what they learned to
//! what the file holds then, so two commands at once both count (the last
//! one's copy used to replace the other's: a penalty was lost).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use super::peers::{MAX_ADDRESSES, MAX_PEERS, Peer, Peers, Prune};
use crate::backend::network::unix_now as now;

/// What peers.json keeps of a peer across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    peer_id: String,
    addresses: Vec<String>,
    successes: u32,
    failures: u32,
    #[serde(default)]
    unreachable: u32,
    #[serde(default)]
    unreachable_counted: u64,
    rate_limited: u32,
    latency_total_ms: u64,
    latency_samples: u32,
    last_seen: u64,
    agent: Option<String>,
}

impl Saved {
    pub(super) fn of(id: &PeerId, p: &Peer) -> Self {
        Self {
            peer_id: id.to_string(),
            addresses: p.addresses.iter().map(|a| a.to_string()).collect(),
            successes: p.successes,
            failures: p.failures,
            unreachable: p.unreachable,
            unreachable_counted: p.unreachable_counted,
            rate_limited: p.rate_limited,
            latency_total_ms: p.latency_total_ms,
            latency_samples: p.latency_samples,
            last_seen: p.last_seen,
            agent: p.agent.clone(),
        }
    }

    /// Its statistics onto `p` (connection state and flood bucket stay).
    fn apply(&self, p: &mut Peer) {
        p.addresses = (self.addresses.iter())
            .filter_map(|a| a.parse().ok())
            .take(MAX_ADDRESSES)
            .collect();
        p.successes = self.successes;
        p.failures = self.failures;
        p.unreachable = self.unreachable;
        p.unreachable_counted = self.unreachable_counted;
        p.rate_limited = self.rate_limited;
        p.latency_total_ms = self.latency_total_ms;
        p.latency_samples = self.latency_samples;
        p.last_seen = self.last_seen;
        p.agent = self.agent.clone();
    }

    /// `self` (this process's view) onto `disk` (the file's now), where
    /// `base` is what the file held when this process last read it: counts
    /// add what this process added since; times take the latest.
    fn merged(&self, base: Option<&Saved>, disk: &Saved) -> Saved {
        // No base: the peer is new to this process, all its counts are news.
        // Counts only grow; a base above ours (never expected) adds nothing.
        // Saturating: the file is not to be trusted with overflows.
        fn add64(disk: u64, mine: u64, base: Option<u64>) -> u64 {
            disk.saturating_add(mine.saturating_sub(base.unwrap_or(0)))
        }
        fn add(disk: u32, mine: u32, base: Option<u32>) -> u32 {
            disk.saturating_add(mine.saturating_sub(base.unwrap_or(0)))
        }
        let last_seen = self.last_seen.max(disk.last_seen);
        let counted = self.unreachable_counted.max(disk.unreachable_counted);
        let mut addresses = self.addresses.clone();
        for a in &disk.addresses {
            if !addresses.contains(a) && addresses.len() < MAX_ADDRESSES {
                addresses.push(a.clone());
            }
        }
        Saved {
            peer_id: self.peer_id.clone(),
            addresses,
            successes: add(disk.successes, self.successes, base.map(|b| b.successes)),
            failures: add(disk.failures, self.failures, base.map(|b| b.failures)),
            unreachable: add(
                disk.unreachable,
                self.unreachable,
                base.map(|b| b.unreachable),
            ),
            // Seen since it was last found away: the throttle starts over.
            unreachable_counted: if last_seen > counted { 0 } else { counted },
            rate_limited: add(
                disk.rate_limited,
                self.rate_limited,
                base.map(|b| b.rate_limited),
            ),
            latency_total_ms: add64(
                disk.latency_total_ms,
                self.latency_total_ms,
                base.map(|b| b.latency_total_ms),
            ),
            latency_samples: add(
                disk.latency_samples,
                self.latency_samples,
                base.map(|b| b.latency_samples),
            ),
            last_seen,
            agent: self.agent.clone().or_else(|| disk.agent.clone()),
        }
    }
}

/// What [`read`] found in peers.json.
struct Entries {
    /// The entries that parse (at most [`MAX_PEERS`]).
    saved: Vec<(PeerId, Saved)>,
    /// Of `read` entries, those that did not.
    damaged: usize,
    read: usize,
}

/// The file's entries; an error when it cannot be read or is not a list
/// (a missing file is an empty one).
fn read(path: &Path) -> Result<Entries, String> {
    let text = match crate::backend::small_file::read_if_present(path, 64 << 20) {
        Ok(text) => text.unwrap_or_else(|| "[]".to_owned()),
        Err(e) => return Err(e.to_string()),
    };
    let entries: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let total = entries.len().min(MAX_PEERS);
    let mut damaged = 0;
    let mut saved = Vec::new();
    for entry in entries.into_iter().take(MAX_PEERS) {
        match serde_json::from_value::<Saved>(entry)
            .ok()
            .and_then(|s| Some((s.peer_id.parse::<PeerId>().ok()?, s)))
        {
            Some(pair) => saved.push(pair),
            None => damaged += 1,
        }
    }
    Ok(Entries {
        saved,
        damaged,
        read: total,
    })
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The bytes of what `map` holds, as peers.json would: nothing to save
/// while they are those last loaded or saved.
pub(super) fn view(map: &HashMap<PeerId, Peer>) -> Vec<u8> {
    let mut mine: Vec<Saved> = map.iter().map(|(id, p)| Saved::of(id, p)).collect();
    mine.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
    serde_json::to_vec(&mine).expect("peer statistics serialise")
}

/// Which version of the file is on disk: every write replaces it (a new
/// inode), so this changes with each save even within one clock tick.
pub(super) type Stamp = (u64, SystemTime);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.modified().ok()?))
}

impl Peers {
    /// Peers saved by an earlier run, minus those to prune: not seen for
    /// `after_days`, or below the threshold and not seen for a day (a bad
    /// peer is remembered long enough to be avoided, not forever). A missing
    /// or unreadable file starts afresh (it only holds statistics); one
    /// damaged entry costs that peer's statistics, not everyone's.
    pub fn load(path: &Path, prune: Prune) -> Self {
        let mut peers = Self::default();
        let entries = match read(path) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(
                    "ignoring {} ({e}); peer statistics start afresh",
                    path.display()
                );
                return peers;
            }
        };
        if entries.damaged > 0 {
            tracing::warn!(
                "ignoring {} of {} entries in {}: not valid peer statistics",
                entries.damaged,
                entries.read,
                path.display()
            );
        }
        peers.file_stamp = stamp(path);
        let cutoff = now().saturating_sub(prune.after_days.saturating_mul(86_400));
        let bad_cutoff = now().saturating_sub(86_400);
        for (id, s) in entries.saved {
            let mut peer = Peer::new();
            s.apply(&mut peer);
            if peer.last_seen < cutoff
                || (peer.reputation() < prune.threshold && peer.last_seen < bad_cutoff)
            {
                peers.forgotten.insert(id, s);
                continue;
            }
            peers.map.insert(id, peer);
            peers.base.insert(id, s);
        }
        peers.saved_view = view(&peers.map);
        peers.touched = false;
        peers
    }

    /// Add what this process learned since it last read the file to what
    /// the file holds now, under `peers.json.lock` (waiting for it at most
    /// `wait`), and write the result atomically; this process then knows
    /// what the others added too, peers it has not met included. Nothing is
    /// done while nothing changed, here or in the file; with no news of its
    /// own, this process only takes in what the file holds (a node rewrote
    /// it after every command's save). Until a write succeeds, what this
    /// process learned stays news.
    pub fn save(&mut self, path: &Path, wait: Duration) -> std::io::Result<()> {
        // A process that never loaded a file starts from an empty view.
        let unchanged = !self.touched || {
            let mine = view(&self.map);
            mine == self.saved_view || (self.saved_view.is_empty() && self.map.is_empty())
        };
        if unchanged {
            self.touched = false;
            let now = stamp(path);
            if now == self.file_stamp {
                return Ok(());
            }
            // Renames make every read whole: no lock needed. A file that
            // cannot be read is replaced below.
            if let Ok(file) = read(path) {
                self.adopt(file.saved);
                self.file_stamp = now;
                return Ok(());
            }
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let lock = crate::backend::lock::lock_within(&lock_path(path), wait)?;
        // A file that cannot be read is replaced (it only holds statistics).
        let mut on_disk: HashMap<PeerId, Saved> = (read(path).map(|e| e.saved))
            .unwrap_or_default()
            .into_iter()
            // What this process forgot goes, unless someone changed it since.
            .filter(|(id, disk)| self.forgotten.get(id) != Some(disk))
            .collect();
        for (id, peer) in &self.map {
            let saved = Saved::of(id, peer);
            let new = match on_disk.get(id) {
                Some(disk) => saved.merged(self.base.get(id), disk),
                None => saved,
            };
            on_disk.insert(*id, new);
        }
        let mut all: Vec<(PeerId, Saved)> = on_disk.into_iter().collect();
        // Past the cap, those seen longest ago go.
        all.sort_by(|(_, a), (_, b)| {
            b.last_seen
                .cmp(&a.last_seen)
                .then(a.peer_id.cmp(&b.peer_id))
        });
        all.truncate(MAX_PEERS);
        let out: Vec<&Saved> = all.iter().map(|(_, s)| s).collect();
        let out = serde_json::to_vec(&out).expect("peer statistics serialise");
        crate::backend::atomic::write_file(path, &out, dir)?;
        self.file_stamp = stamp(path);
        drop(lock);
        self.adopt(all);
        Ok(())
    }

    /// Take `saved` (what the file holds now) as this process's view and
    /// base: nothing it holds is news any more.
    fn adopt(&mut self, saved: Vec<(PeerId, Saved)>) {
        for (id, new) in saved {
            if self.map.len() >= MAX_PEERS && !self.map.contains_key(&id) {
                continue;
            }
            new.apply(self.map.entry(id).or_insert_with(Peer::new));
            self.base.insert(id, new);
        }
        self.forgotten.clear();
        self.saved_view = view(&self.map);
        self.touched = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(1);

    /// A scratch directory and the peers.json path in it.
    fn scratch() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.json");
        (dir, path)
    }

    const PRUNE: Prune = Prune {
        threshold: 0.1,
        after_days: 30,
    };

    #[test]
    fn a_damaged_entry_in_peers_json_costs_only_that_peer() {
        let (_dir, path) = scratch();
        let good = PeerId::random();
        let entry = |id: String, failures: serde_json::Value| {
            serde_json::json!({
                "peer_id": id, "addresses": ["/ip4/127.0.0.1/tcp/9"], "successes": 3,
                "failures": failures, "rate_limited": 0, "latency_total_ms": 0,
                "latency_samples": 0, "last_seen": now(), "agent": null,
            })
        };
        let saved = serde_json::json!([
            entry(good.to_string(), 1.into()),
            entry(PeerId::random().to_string(), 5_000_000_000u64.into()),
            entry("not a peer id".into(), 0.into()),
        ]);
        std::fs::write(&path, saved.to_string()).unwrap();
        let peers = Peers::load(&path, PRUNE);
        assert_eq!(peers.len(), 1);
        let peer = peers.get(&good).unwrap();
        assert_eq!((peer.successes, peer.failures, peer.unreachable), (3, 1, 0));
    }

    #[test]
    fn two_processes_saving_at_once_both_count() {
        let (_dir, path) = scratch();
        let (liar, honest, other) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut first = Peers::default();
        first.success(honest);
        first.save(&path, WAIT).unwrap();

        // Two commands read the same file, each learns something, each saves.
        let mut a = Peers::load(&path, PRUNE);
        let mut b = Peers::load(&path, PRUNE);
        // Connected (a sign of life), then sent wrong bytes.
        a.seen(liar);
        a.failure(liar);
        a.success(honest);
        b.seen(liar);
        b.failure(liar);
        b.success(honest);
        b.success(other);
        a.save(&path, WAIT).unwrap();
        b.save(&path, WAIT).unwrap();

        let after = Peers::load(&path, PRUNE);
        let count = |id| {
            let p = after.get(&id).unwrap();
            (p.successes, p.failures)
        };
        assert_eq!(
            count(liar),
            (0, 2),
            "the second save kept the first's penalty"
        );
        assert_eq!(count(honest), (3, 0));
        assert_eq!(count(other), (1, 0));
        // The later saver now knows what the other added.
        assert_eq!(b.get(&liar).unwrap().failures, 2);
        // Saving again without news changes nothing.
        let before = std::fs::read(&path).unwrap();
        b.save(&path, WAIT).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_peer_forgotten_here_but_updated_elsewhere_keeps_its_counts() {
        let (_dir, path) = scratch();
        let p = PeerId::random();
        // Written by a command that was only given its address (never seen):
        // the next loader prunes it.
        let mut given = Peers::default();
        given.add_address(p, "/ip4/127.0.0.1/tcp/9".parse().unwrap());
        given.save(&path, WAIT).unwrap();
        let mut x = Peers::load(&path, PRUNE);
        assert!(x.get(&p).is_none());
        // Meanwhile another command got a tarball from it.
        let mut y = Peers::load(&path, PRUNE);
        y.success(p);
        y.save(&path, WAIT).unwrap();
        // x gets one too: both count (x used to drop y's as "forgotten").
        x.success(p);
        x.save(&path, WAIT).unwrap();
        assert_eq!(Peers::load(&path, PRUNE).get(&p).unwrap().successes, 2);
    }

    #[test]
    fn a_failed_save_keeps_what_was_learned_for_the_next() {
        let (_dir, path) = scratch();
        let p = PeerId::random();
        let mut peers = Peers::default();
        peers.success(p);
        peers.save(&path, WAIT).unwrap();
        let mut node = Peers::load(&path, PRUNE);
        node.success(p);
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(node.save(&path, WAIT).is_err());
        std::fs::remove_dir(&path).unwrap();
        peers.save(&path, WAIT).unwrap(); // the file back, 1 success
        node.save(&path, WAIT).unwrap();
        assert_eq!(Peers::load(&path, PRUNE).get(&p).unwrap().successes, 2);
    }

    #[test]
    fn a_held_lock_costs_one_save_not_a_hang() {
        let (_dir, path) = scratch();
        let holder = std::fs::File::create(lock_path(&path)).unwrap();
        holder.lock().unwrap();
        let mut peers = Peers::default();
        peers.success(PeerId::random());
        let err = peers.save(&path, WAIT).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        // A periodic save does not wait: it fails at once, and the next retries.
        assert!(peers.save(&path, Duration::ZERO).is_err());
        drop(holder);
        peers.save(&path, WAIT).unwrap();
        assert_eq!(Peers::load(&path, PRUNE).len(), 1);
    }

    #[test]
    fn counts_at_their_limit_stay_there() {
        let (_dir, path) = scratch();
        let p = PeerId::random();
        let entry = serde_json::json!([{
            "peer_id": p.to_string(), "addresses": [], "successes": u32::MAX,
            "failures": 0, "rate_limited": 0, "latency_total_ms": u64::MAX,
            "latency_samples": u32::MAX, "last_seen": now(), "agent": null,
        }]);
        std::fs::write(&path, entry.to_string()).unwrap();
        let mut peers = Peers::load(&path, PRUNE);
        peers.success(p);
        peers.latency(p, 5);
        let view = peers.view(&p).unwrap();
        assert_eq!(view.successes, u32::MAX);
        assert_eq!(view.avg_latency_ms, u32::MAX);
        peers.save(&path, WAIT).unwrap();
    }

    #[test]
    fn a_running_node_learns_what_others_wrote() {
        let (_dir, path) = scratch();
        let (known, stranger) = (PeerId::random(), PeerId::random());
        let mut node = Peers::default();
        node.success(known);
        node.save(&path, WAIT).unwrap();
        let mut command = Peers::load(&path, PRUNE);
        command.failure(known);
        // A peer the node has not met counts too.
        command.seen(stranger);
        command.failure(stranger);
        command.save(&path, WAIT).unwrap();
        // Nothing new on the node's side, but the file changed: the node
        // takes it in, and writes nothing (it rewrote the file each time).
        let inode = || std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
        let before = inode();
        node.save(&path, WAIT).unwrap();
        assert_eq!(node.get(&known).unwrap().failures, 1);
        assert_eq!(node.get(&stranger).unwrap().failures, 1);
        assert_eq!(inode(), before);
        // Its own news after that is added to the others'.
        node.success(known);
        node.save(&path, WAIT).unwrap();
        let again = Peers::load(&path, PRUNE);
        let known_saved = again.get(&known).unwrap();
        assert_eq!((known_saved.successes, known_saved.failures), (2, 1));
    }

    #[test]
    fn only_news_is_written() {
        let (_dir, path) = scratch();
        // Nothing learned, no file: none is made.
        Peers::default().save(&path, WAIT).unwrap();
        assert!(!path.exists());
        let p = PeerId::random();
        let mut peers = Peers::default();
        peers.success(p);
        peers.save(&path, WAIT).unwrap();
        // A command that only reads leaves the file as it was (it rewrote it).
        // Every write replaces the file: the same inode means no write.
        let inode = || std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
        let before = inode();
        Peers::load(&path, PRUNE).save(&path, WAIT).unwrap();
        assert_eq!(inode(), before);
    }

    #[test]
    fn pruned_peers_are_not_written_back() {
        let (_dir, path) = scratch();
        let (bad, good) = (PeerId::random(), PeerId::random());
        let mut peers = Peers::default();
        peers.success(good);
        for _ in 0..20 {
            peers.failure(bad);
        }
        peers.entry(bad).last_seen = now() - 2 * 86_400;
        peers.save(&path, WAIT).unwrap();
        let mut next = Peers::load(&path, PRUNE);
        assert!(next.get(&bad).is_none());
        next.success(good);
        next.save(&path, WAIT).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&bad.to_string()), "{text}");
    }
}
