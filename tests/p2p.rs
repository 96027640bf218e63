//! The P2P node end to end: real `ggen` node processes on 127.0.0.1 (no
//! mock of libp2p), the commands through a running node's control socket and
//! through short-lived client nodes, and a hostile peer built with libp2p in
//! this test sending malformed records, announcements and a flood.
#![cfg(feature = "p2p")]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::many::plant_registry;
use support::nodes::{Node, START_LOCAL, eventually, p2p_publish};
use support::{Env, strings};

fn search(env: &Env, args: &[&str]) -> Value {
    let mut full = vec!["marketplace", "p2p", "search"];
    full.extend(args);
    full.push("--json");
    env.json(&full)
}

fn hit<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
}

fn strings_of(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

fn status(env: &Env) -> Value {
    env.json(&["marketplace", "p2p", "status", "--json"])
}

#[test]
fn three_nodes_publish_on_one_and_find_on_another() {
    let node1 = Node::start(&[]);
    let node2 = Node::start(&[&node1.addr]);
    let node3 = Node::start(&[&node2.addr]);

    let report = p2p_publish(
        &node1.env,
        "fresh-tool",
        "2.0.0",
        "a freshly announced tool",
    );
    assert_eq!(report["name"], "fresh-tool");
    assert!(
        report["announced"]["gossip_peers"].as_u64().unwrap() >= 1,
        "{report}"
    );
    // Two other peers exist: the count once added the peer lookup's answers.
    let stored = report["announced"]["dht_peers"].as_u64().unwrap();
    assert!((1..=2).contains(&stored), "{report}");

    // node3 (bootstrapped only through node2) heard the announcement.
    let found = eventually(Duration::from_secs(10), || {
        let r = search(&node3.env, &["freshly"]);
        (hit(&r, "fresh-tool").is_some(), r)
    });
    let h = hit(&found, "fresh-tool").unwrap_or_else(|| panic!("not found: {found}"));
    assert_eq!(h["source"], node1.peer_id);
    assert_eq!(h["via"], "gossip");
    assert_eq!(h["version"], "2.0.0");
    assert!(found["offline"].is_null());

    // A client with no node of its own, bootstrapped from node2, finds it in the DHT.
    let client = Env::new();
    let r = search(&client, &["fresh-tool", "--bootstrap", &node2.addr]);
    let h = hit(&r, "fresh-tool").unwrap_or_else(|| panic!("not in the DHT: {r}"));
    assert_eq!(h["via"], "dht");
    assert_eq!(h["source"], node1.peer_id);
    assert_eq!(r["dht_lookups"], serde_json::json!(["fresh-tool"]));

    // A backport (an older line's release) is published, but the network
    // keeps showing the newest version: the record put is 2.0.0, not 1.5.0
    // (a lookup found whichever record it met first, half the time 1.5.0).
    let report = p2p_publish(&node1.env, "fresh-tool", "1.5.0", "a backport");
    assert_eq!(report["version"], "1.5.0");
    assert_eq!(report["announced"]["version"], "2.0.0", "{report}");
    for _ in 0..4 {
        let client = Env::new();
        let r = search(&client, &["fresh-tool", "--bootstrap", &node2.addr]);
        let h = hit(&r, "fresh-tool").unwrap_or_else(|| panic!("not in the DHT: {r}"));
        assert_eq!(h["version"], "2.0.0", "{r}");
    }

    // The largest package publish accepts travels through the DHT whole: a
    // record over kad's default 16 KiB packets was neither stored nor found.
    let words =
        |n: usize, len: usize| -> Vec<String> { (0..n).map(|i| format!("{i:0>len$}")).collect() };
    let dir = node1.env.package(
        "big-record",
        &serde_json::json!({"name": "big-record", "version": "1.0.0",
            "description": "d".repeat(8192), "tags": words(64, 64), "authors": words(64, 128)}),
        &[],
    );
    node1
        .env
        .ok(&["marketplace", "p2p", "publish", dir.to_str().unwrap()]);
    let r = search(&Env::new(), &["big-record", "--bootstrap", &node2.addr]);
    let h = hit(&r, "big-record").unwrap_or_else(|| panic!("not in the DHT: {r}"));
    assert_eq!(h["description"].as_str().unwrap().len(), 8192);

    // A client node (no node running in its home) publishes through node2.
    let dir = client.package(
        "client-pkg",
        &serde_json::json!({"name": "client-pkg", "version": "0.1.0", "description": "from a client node"}),
        &[],
    );
    let r = client.json(&[
        "marketplace",
        "p2p",
        "publish",
        dir.to_str().unwrap(),
        "--bootstrap",
        &node2.addr,
        "--json",
    ]);
    assert!(r["announced"]["gossip_peers"].as_u64().unwrap() >= 1, "{r}");
    let found = eventually(Duration::from_secs(10), || {
        let r = search(&node3.env, &["client"]);
        (hit(&r, "client-pkg").is_some(), r)
    });
    assert!(hit(&found, "client-pkg").is_some(), "{found}");

    // Local packages and network results merge by name: node1 sees its own as local.
    let r = search(&node1.env, &["fresh"]);
    assert_eq!(hit(&r, "fresh-tool").unwrap()["source"], "local");
    assert_eq!(r["total"], 1);

    // Status through the control socket and from a client node.
    let s = status(&node3.env);
    assert_eq!(s["mode"], "running node");
    assert_eq!(s["peer_id"], node3.peer_id);
    assert!(
        s["metrics"]["announcements_received"].as_u64().unwrap() >= 1,
        "{s}"
    );
    assert!(!s["connected_peers"].as_array().unwrap().is_empty());
    let s = client.json(&[
        "marketplace",
        "p2p",
        "status",
        "--bootstrap",
        &node2.addr,
        "--json",
    ]);
    assert_eq!(s["mode"], "client node");

    // Peers through the control socket.
    let peers = node3
        .env
        .json(&["marketplace", "p2p", "peer-list", "--json"]);
    let ids: Vec<&str> = strings(&peers["peers"], "peer_id");
    assert!(ids.contains(&node2.peer_id.as_str()), "{peers}");
    let info = node3
        .env
        .json(&["marketplace", "p2p", "peer-info", &node2.peer_id, "--json"]);
    assert_eq!(info["connected"], true);
    assert!(
        info["agent"].as_str().unwrap().starts_with("ggen/"),
        "{info}"
    );
    let err = node3
        .env
        .fails(&["marketplace", "p2p", "peer-info", "not-a-peer"]);
    assert!(err.contains("is not a peer id"), "{err}");
}

#[test]
fn records_of_the_local_registry_are_put_at_start() {
    let env = Env::new();
    env.publish(serde_json::json!({"name": "old-pkg", "version": "1.0.0", "description": "published before the node"}));
    let node1 = Node::start_in(env, &[]);
    let node2 = Node::start(&[&node1.addr]);
    let client = Env::new();
    // The record reaches node2 in the background after node1 starts.
    let r = eventually(Duration::from_secs(10), || {
        let r = search(&client, &["old-pkg", "--bootstrap", &node2.addr]);
        (hit(&r, "old-pkg").is_some(), r)
    });
    assert_eq!(hit(&r, "old-pkg").unwrap()["via"], "dht", "{r}");
    // node1 put its record nowhere at start (it had no peer): node2, which
    // joined later, was handed it, so the package outlives node1 there
    // (kad sends stored records on only hourly).
    let held = eventually(Duration::from_secs(10), || {
        let s = status(&node2.env);
        (s["records_held"] == 1, s)
    });
    assert_eq!(held["records_held"], 1, "{held}");
    drop(node1);
    let r = search(&Env::new(), &["old-pkg", "--bootstrap", &node2.addr]);
    assert_eq!(
        hit(&r, "old-pkg").map(|h| h["via"].clone()),
        Some("dht".into()),
        "{r}"
    );
}

/// Nodes that learned a package from an announcement answer lookups with
/// the newest version the DHT holds, not the one they cached: its
/// publisher, restarted with a newer version, was never seen. The peer it
/// puts the record on, and a DHT client that only asks.
#[test]
fn lookups_find_the_version_a_restarted_publisher_put() {
    let peer = Node::start(&[]);
    let client = Node::start_as(Env::new(), "--dht-client", &[&peer.addr]);
    let publisher = Node::start(&[&peer.addr]);
    p2p_publish(&publisher.env, "moving", "1.0.0", "first");
    for node in [&peer, &client] {
        let r = eventually(Duration::from_secs(10), || {
            let r = search(&node.env, &["moving"]);
            (hit(&r, "moving").is_some(), r)
        });
        assert_eq!(hit(&r, "moving").unwrap()["version"], "1.0.0", "{r}");
    }
    let env = publisher.stop();
    env.publish(json!({"name": "moving", "version": "1.1.0", "description": "second"}));
    let _publisher = Node::start_in(env, &[&peer.addr]);
    for node in [&peer, &client] {
        let r = eventually(Duration::from_secs(10), || {
            let r = search(&node.env, &["moving"]);
            let newer = hit(&r, "moving").is_some_and(|h| h["version"] == "1.1.0");
            (newer, r)
        });
        assert_eq!(hit(&r, "moving").unwrap()["version"], "1.1.0", "{r}");
    }
    // Installs through the peer's node find it too.
    let target = peer.env.work.path().join("t");
    let target = target.to_str().unwrap();
    peer.env.ok(&[
        "marketplace",
        "install",
        "moving@1.1.0",
        "--p2p",
        "--target",
        target,
    ]);
}

/// A registry larger than the room a node keeps for its own records (8,192
/// of each kind: the rest of kad's store is for other peers'): all of it is
/// served, the room is filled and no more, and what did not fit is one
/// warning per reason, not one per package.
#[test]
fn a_registry_past_the_nodes_room_is_served_whole_and_warned_about_once() {
    const ROOM: usize = 8_192;
    let env = Env::new();
    plant_registry(&env.registry(), "pkg", ROOM + 8);
    let node = Node::start_in(env, &[]);
    let started = status(&node.env);
    assert_eq!(started["records_held"], ROOM, "{started}");
    assert_eq!(started["tarballs_served"], ROOM + 8, "{started}");
    let stderr = std::fs::read_to_string(node.env.work.path().join("node.stderr")).unwrap();
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    let [records, provided] = [
        "8 packages without a DHT record (pkg-08192@1.0.0, pkg-08193@1.0.0, pkg-08194@1.0.0, ...): this node announces 8192 packages already",
        "8 packages not announced as served here (pkg-08192@1.0.0, pkg-08193@1.0.0, pkg-08194@1.0.0, ...): P2P: this node provides 8192 tarballs already",
    ];
    assert!(warnings.iter().any(|w| w.contains(records)), "{stderr}");
    assert!(warnings.iter().any(|w| w.contains(provided)), "{stderr}");
    // Published through the node, a new version and a new package take the
    // room of packages it announced at start (the last it announced give
    // way): what its user asked for goes out whole. The version a publish
    // supersedes gives way first, even when the node's record of the
    // package is a peer's version in between.
    let peer = Node::start(&[&node.addr]);
    let r = p2p_publish(&peer.env, "pkg-00000", "1.5.0", "the peer's own");
    assert_eq!(r["announced"]["dht_peers"], 1, "{r}");
    let r = p2p_publish(&node.env, "pkg-00000", "2.0.0", "a newer one");
    let announced = &r["announced"];
    assert_eq!(announced["version"], "2.0.0", "{r}");
    assert_eq!(announced["not_provided"], Value::Null, "{r}");
    let r = p2p_publish(&node.env, "zesty", "1.0.0", "published past the room");
    assert_eq!(r["announced"]["not_provided"], Value::Null, "{r}");
    assert_eq!(status(&node.env)["records_held"], ROOM, "{r}");
    // The first publish took the room of pkg-00000 1.0.0's tarball (now an
    // older copy), the second that of the package announced last: the one
    // before it is still installable from the node.
    let out = Env::new().run(&[
        "marketplace",
        "install",
        "pkg-08190",
        "--p2p",
        "--bootstrap",
        &node.addr,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let client = Env::new();
    let r = search(&client, &["zesty", "--bootstrap", &peer.addr]);
    assert_eq!(
        hit(&r, "zesty").map(|h| h["via"].clone()),
        Some("dht".into()),
        "{r}"
    );
    drop(peer);
    // Restarted, the node announces its latest publications first: what
    // was published through it keeps its room, the planted rest fill it.
    let node = Node::start_in(node.stop(), &[]);
    let stderr = std::fs::read_to_string(node.env.work.path().join("node.stderr")).unwrap();
    let left_out =
        "9 packages without a DHT record (pkg-08191@1.0.0, pkg-08192@1.0.0, pkg-08193@1.0.0, ...)";
    assert!(stderr.contains(left_out), "{stderr}");
}

/// A peer holds at most 512 records that one node sent (so no peer can
/// fill its store), and of those the most recently published: a node that
/// announces more still gets what is published through it onto the peer,
/// which answers for it while the node is away.
#[test]
fn a_peer_keeps_a_nodes_newest_publications_past_its_share() {
    let peer = Node::start(&[]);
    let env = Env::new();
    plant_registry(&env.registry(), "pkg", 520);
    let node = Node::start_in(env, &[&peer.addr]);
    let r = p2p_publish(
        &node.env,
        "fresh-past-share",
        "1.0.0",
        "published past the share",
    );
    assert_eq!(r["announced"]["dht_peers"], 1, "{r}");
    drop(node);
    // Acknowledged as it arrives: stored by the peer's event loop after.
    let r = eventually(Duration::from_secs(10), || {
        let r = search(
            &Env::new(),
            &["fresh-past-share", "--bootstrap", &peer.addr],
        );
        (hit(&r, "fresh-past-share").is_some(), r)
    });
    assert_eq!(
        hit(&r, "fresh-past-share").map(|h| h["via"].clone()),
        Some("dht".into()),
        "{r}"
    );
}

/// The DHT holds each package's newest version: a node does not put an
/// older one over the record it holds (a peer's), and says why.
#[test]
fn an_older_version_is_not_put_over_a_newer_record() {
    let node = Node::start(&[]);
    let peer = Node::start(&[&node.addr]);
    let r = p2p_publish(&peer.env, "shared-name", "3.0.0", "the peer's");
    assert_eq!(r["announced"]["dht_peers"], 1, "{r}");
    let dir = node.env.package(
        "shared-name-2.0.0",
        &serde_json::json!({"name": "shared-name", "version": "2.0.0"}),
        &[("README.md", "ours")],
    );
    // Published locally all the same (the network's absence or refusal does
    // not fail a publish), with the reason it was not announced.
    let dir = dir.to_str().unwrap();
    let r = (node.env).json(&["marketplace", "p2p", "publish", dir, "--json"]);
    assert_eq!(r["version"], "2.0.0", "{r}");
    assert_eq!(r["announced"], Value::Null, "{r}");
    let why = r["offline"].as_str().unwrap_or_default();
    let newer = "the network's record of shared-name holds a newer version (3.0.0) than 2.0.0";
    assert!(why.contains(newer), "{r}");
    let r = search(&Env::new(), &["shared-name", "--bootstrap", &node.addr]);
    assert_eq!(hit(&r, "shared-name").unwrap()["version"], "3.0.0", "{r}");
}

/// Older copies a node serves (lockfiles pin them) fill the room for
/// provider records last, and give it up to a newly published version.
#[test]
fn older_copies_give_their_provider_room_to_a_new_version() {
    const ROOM: usize = 8_192;
    let env = Env::new();
    plant_registry(&env.registry(), "pkg", 8_000);
    let serve = env.home().join("p2p/serve");
    std::fs::create_dir_all(&serve).unwrap();
    for i in 0..300 {
        let bytes = format!("an older version {i}");
        let hex = support::sha256_hex(bytes.as_bytes());
        std::fs::write(serve.join(format!("{hex}.tar.gz")), bytes).unwrap();
    }
    let node = Node::start_in(env, &[]);
    // The older copies come after the `announced` line: wait for their
    // warning (the 108 that found no room).
    let log = node.env.work.path().join("node.stderr");
    let stderr = eventually(Duration::from_secs(30), || {
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        (stderr.contains("older tarballs not announced"), stderr)
    });
    let older = format!(
        "{} older tarballs not announced as served here",
        300 - (ROOM - 8_000)
    );
    assert!(stderr.contains(&older), "{stderr}");
    assert_eq!(status(&node.env)["tarballs_served"], 8_300);
    let r = p2p_publish(&node.env, "pkg-00000", "2.0.0", "a newer one");
    assert_eq!(r["announced"]["version"], "2.0.0", "{r}");
    assert_eq!(r["announced"]["not_provided"], Value::Null, "{r}");
}

/// Tarballs lost from the registry (a directory deleted, a disk gone): the
/// node serves and announces the rest, names the first few it cannot, and
/// counts the others.
#[test]
fn lost_tarballs_are_named_a_few_at_most_and_the_rest_counted() {
    let env = Env::new();
    plant_registry(&env.registry(), "pkg", 10);
    for i in 0..8 {
        std::fs::remove_dir_all(env.registry().join(format!("pkg-{i:05}"))).unwrap();
    }
    let node = Node::start_in(env, &[]);
    assert_eq!(status(&node.env)["records_held"], 2);
    let stderr = std::fs::read_to_string(node.env.work.path().join("node.stderr")).unwrap();
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 4, "{stderr}");
    for (warning, i) in warnings.iter().zip(0..3) {
        let named = format!("not serving or announcing pkg-{i:05}@1.0.0: ");
        assert!(warning.contains(&named), "{stderr}");
    }
    assert!(
        warnings[3].contains("not serving or announcing 5 more packages either (their tarballs could not be exported)"),
        "{stderr}"
    );
}

#[test]
fn a_node_stopped_while_putting_records_stops_quietly() {
    let env = Env::new();
    for i in 0..30 {
        env.publish(serde_json::json!({"name": format!("pkg-{i}"), "version": "1.0.0"}));
    }
    // Stopping at once races the records still being put: those are dropped,
    // not reported one warning each. The race is rare (about 1 in 75 runs
    // hit it before the fix), so many short runs.
    for _ in 0..100 {
        let out = env.run(&[
            "marketplace",
            "p2p",
            "start",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--exit-after",
            "1ms",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("has stopped"), "{stderr}");
    }
}

#[test]
fn a_restarted_node_keeps_its_peer_id() {
    let node = Node::start(&[]);
    let first = node.peer_id.clone();
    let key = node.home().join("p2p/keypair");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key is private");
    }
    // What it learned about peers survives kill -9 (peers.json was written
    // only on a clean shutdown): a peer it met, then could not reach.
    let other = Node::start(&[]);
    let (other_id, other_addr) = (other.peer_id.clone(), other.addr.clone());
    node.env
        .ok(&["marketplace", "p2p", "bootstrap", &other_addr]);
    drop(other);
    let peers_file = node.home().join("p2p/peers.json");
    let unreachable = || {
        let text = std::fs::read_to_string(&peers_file).unwrap_or_default();
        let saved: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let entry = saved.as_array().and_then(|a| {
            a.iter()
                .find(|p| p["peer_id"] == other_id.as_str())
                .cloned()
        });
        entry.and_then(|p| p["unreachable"].as_u64()).unwrap_or(0)
    };
    let saved = eventually(Duration::from_secs(20), || {
        let _ = node
            .env
            .run(&["marketplace", "p2p", "bootstrap", &other_addr]);
        let n = unreachable();
        (n >= 1, n)
    });
    assert!(saved >= 1, "{other_id} was not found away, says peers.json");
    let env = node.stop();
    let node = Node::start_in(env, &[]);
    assert_eq!(node.peer_id, first);
    let peer = node
        .env
        .json(&["marketplace", "p2p", "peer-info", &other_id, "--json"]);
    assert!(peer["unreachable"].as_u64().unwrap() >= 1, "{peer}");
    // Away is not misbehaving: it costs no reputation.
    assert_eq!(peer["failures"], 0, "{peer}");
    assert!(peer["successes"].as_u64().is_some(), "{peer}");
}

/// A GGEN_HOME this user cannot write (no node key yet): a command's
/// short-lived node asks under a passing identity and answers (every p2p
/// command failed on the key it could not write).
#[test]
fn a_read_only_home_without_a_key_still_answers() {
    let env = Env::unprivileged();
    env.publish(json!({"name": "kept-ro", "version": "1.0.0"}));
    env.ok(&["marketplace", "search", "kept-ro"]);
    let home = env.home().to_str().unwrap();
    let chmod = std::process::Command::new("chmod")
        .args(["-R", "a-w", home])
        .status();
    assert!(chmod.unwrap().success());
    let (out, stderr) = env.ok_warned(&["marketplace", "p2p", "search", "kept-ro", "--json"]);
    assert!(
        stderr.contains("this command uses a temporary P2P identity"),
        "{stderr}"
    );
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(hit(&r, "kept-ro").unwrap()["source"], "local", "{r}");
    assert!(!env.home().join("p2p/keypair").exists());
}

#[test]
fn offline_mode_answers_from_local_data() {
    let env = Env::new();
    env.publish(
        serde_json::json!({"name": "local-only", "version": "1.0.0", "description": "offline"}),
    );
    for extra in [
        vec![],
        vec![
            "--bootstrap",
            "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWEZyhS9abyqGT28vVv2wLdbJ432qHNQvKuyFwTDsVd8aR",
        ],
    ] {
        let mut args = vec!["marketplace", "p2p", "search", "local", "--json"];
        args.extend(&extra);
        let out = env.run(&args);
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("Operating in offline mode"), "{stderr}");
        if !extra.is_empty() {
            // Refused at once: the message says so, and claims no wait.
            assert!(
                stderr.contains(&format!(
                    "could not reach any of the 1 bootstrap node(s) ({}: Connection refused",
                    extra[1]
                )) && !stderr.contains("no answer within"),
                "{stderr}"
            );
        }
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(hit(&r, "local-only").unwrap()["source"], "local");
        assert!(r["offline"].is_string());
        // Offline, no DHT lookup is made (they were listed as made).
        assert_eq!(r["dht_lookups"], serde_json::json!([]), "{r}");
    }
    // A peer that takes the connection and says nothing is waited for as
    // long as the configuration says, and the warning says so.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_addr = format!("/ip4/127.0.0.1/tcp/{}", mute.local_addr().unwrap().port());
    env.write_config("[marketplace.p2p]\nbootstrap_timeout_secs = 1\n");
    let search_via = |addr: &str| {
        let out = env.run(&["marketplace", "p2p", "search", "local", "--bootstrap", addr]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stderr) = search_via(&mute_addr);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(&format!("({mute_addr}: no answer within 1s)")),
        "{stderr}"
    );
    std::fs::remove_file(env.home().join("config.toml")).unwrap();
    drop(mute);
    // Its own peer id in the list (one list shared by every node, this one
    // too) is a failed address like another: it failed every command.
    let own = env.json(&["marketplace", "p2p", "status", "--json"])["peer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let own_addr = format!("/ip4/127.0.0.1/tcp/9/p2p/{own}");
    let (ok, stderr) = search_via(&own_addr);
    assert!(
        ok && stderr.contains(&format!("({own_addr}: that is this node's own address)")),
        "{stderr}"
    );
    // Publishing offline still publishes locally, and says it was not announced.
    let dir = env.package(
        "p",
        &serde_json::json!({"name": "later", "version": "1.0.0"}),
        &[],
    );
    let out = env.ok(&["marketplace", "p2p", "publish", dir.to_str().unwrap()]);
    assert!(
        out.contains("Not announced: no bootstrap nodes are configured"),
        "{out}"
    );
    let err = env.fails(&["marketplace", "p2p", "stop"]);
    assert!(err.contains("no P2P node is running"), "{err}");

    // Refused input writes nothing and waits for no network (it left the
    // registry and a node identity, after the bootstrap wait); a registry
    // is made as `publish` makes one (it was refused as missing).
    let fresh = Env::new();
    let bad = fresh.package(
        "bad",
        &serde_json::json!({"name": "Bad", "version": "1"}),
        &[],
    );
    let good = fresh.package(
        "good",
        &serde_json::json!({"name": "good", "version": "1.0.0"}),
        &[],
    );
    let silent = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWEZyhS9abyqGT28vVv2wLdbJ432qHNQvKuyFwTDsVd8aR";
    let (bad, good) = (bad.to_str().unwrap(), good.to_str().unwrap());
    let err = fresh.fails(&["marketplace", "p2p", "publish", bad, "--bootstrap", silent]);
    assert!(err.contains("\"name\""), "{err}");
    let err = fresh.fails(&[
        "marketplace",
        "p2p",
        "publish",
        good,
        "--bootstrap",
        "nonsense",
    ]);
    assert!(err.contains("is not a multiaddr"), "{err}");
    for left in ["p2p", "registry"] {
        assert!(!fresh.home().join(left).exists(), "{left} was left behind");
    }
    let registry = fresh.work.path().join("new-registry");
    let registry = registry.to_str().unwrap();
    let out = fresh.ok(&[
        "marketplace",
        "p2p",
        "publish",
        good,
        "--registry",
        registry,
    ]);
    assert!(out.contains("Published good@1.0.0"), "{out}");
    assert!(std::path::Path::new(registry).join("index.json").is_file());

    let peer = "12D3KooWEZyhS9abyqGT28vVv2wLdbJ432qHNQvKuyFwTDsVd8aR";
    let tcp_only = "ggen speaks TCP over IPv4 or IPv6 only";
    let one_peer = "only one /p2p/<peer id> may follow the port";
    for (bad, why) in [
        ("nonsense", "is not a multiaddr"),
        ("", tcp_only),
        ("/dns4/example.com/tcp/4001", tcp_only),
        ("/ip4/127.0.0.1/udp/4001/quic-v1", tcp_only),
        ("/ip4/127.0.0.1", "has no port"),
        (
            &format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}/p2p/{peer}"),
            one_peer,
        ),
        (
            &format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}/tcp/9"),
            one_peer,
        ),
    ] {
        let err = env.fails(&["marketplace", "p2p", "search", "x", "--bootstrap", bad]);
        assert!(err.contains(why), "{bad:?}: {err}");
    }
    // A node listens under its own id: another's in --listen was ignored.
    let named = format!("/ip4/127.0.0.1/tcp/0/p2p/{peer}");
    let err = env.fails(&["marketplace", "p2p", "start", "--listen", &named]);
    assert!(err.contains("a listen address names no peer"), "{err}");
    // --bootstrap means nothing without --hybrid or --p2p: refused, not ignored.
    let addr = "/ip4/127.0.0.1/tcp/9";
    let err = env.fails(&["marketplace", "search", "x", "--bootstrap", addr]);
    assert!(err.contains("add --hybrid, or drop --bootstrap"), "{err}");
    let err = env.fails(&["marketplace", "install", "later", "--bootstrap", addr]);
    assert!(err.contains("add --p2p, or drop --bootstrap"), "{err}");
    // Commands that go online only for what peers delivered check the
    // addresses first too (they took anything without a word).
    for args in [
        &["update", "--all", "--p2p"][..],
        &["approve-hooks", "--yes"],
    ] {
        let args = [&["marketplace"][..], args, &["--bootstrap", "nonsense"]].concat();
        let err = env.fails(&args);
        assert!(
            err.contains("`nonsense` is not a multiaddr"),
            "{args:?}: {err}"
        );
    }
    // start --json has the shape of status --json (connected_peers a list).
    // An unreachable bootstrap is warned about with --json too (it was
    // silent), and records no peer holds are not reported as announced.
    let dead = format!("/ip4/127.0.0.1/tcp/9/p2p/{DEAD_PEER}");
    let run = env.run(&[
        "marketplace",
        "p2p",
        "start",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--bootstrap",
        &dead,
        "--exit-after",
        "3s",
        "--json",
    ]);
    assert!(run.status.success());
    let (out, err) = (
        String::from_utf8(run.stdout).unwrap(),
        String::from_utf8(run.stderr).unwrap(),
    );
    assert!(err.contains("no bootstrap node answered"), "{err}");
    let lines: Vec<Value> = serde_json::Deserializer::from_str(&out)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let started = &lines[0];
    assert_eq!(started["connected_peers"], serde_json::json!([]), "{out}");
    assert_eq!(
        started["bootstrap"]["reached"],
        serde_json::json!([]),
        "{out}"
    );
    let put = &lines[1];
    assert!(put["records_put"].as_u64().unwrap() >= 1, "{out}");
    assert_eq!(put["on_peers"], 0, "{out}");
    assert!(
        started["listen_addresses"][0]
            .as_str()
            .unwrap()
            .starts_with("/ip4/127.0.0.1/tcp/")
    );
    // A listen address in use says why; so does another node's port (libp2p
    // listens with SO_REUSEPORT, and a second node shared it: dials reached
    // either node at random).
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let node = Node::start(&[]);
    for addr in [
        format!("/ip4/127.0.0.1/tcp/{}", busy.local_addr().unwrap().port()),
        node.addr.split("/p2p/").next().unwrap().to_owned(),
    ] {
        let err = Env::new().fails(&[
            "marketplace",
            "p2p",
            "start",
            "--listen",
            &addr,
            "--exit-after",
            "1s",
        ]);
        assert!(
            err.ends_with(&format!(
                "cannot listen on {addr}: Address already in use (os error 98)"
            )),
            "{err}"
        );
    }
    // In the background too: the error quotes the node's log (it used to
    // say only "see node.log").
    let addr = format!("/ip4/127.0.0.1/tcp/{}", busy.local_addr().unwrap().port());
    let err = Env::new().fails(&["marketplace", "p2p", "start", "--daemon", "--listen", &addr]);
    assert!(
        err.contains(&format!(
            "the background P2P node exited: configuration error: cannot listen on {addr}: Address already in use"
        )) && err.contains("node.log"),
        "{err}"
    );
}

/// `args` running in `env`, its stderr kept for `wait_with_output`.
fn spawn_for_stderr(env: &Env, args: &[&str]) -> std::process::Child {
    env.cmd(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A valid peer id nobody runs.
const DEAD_PEER: &str = "12D3KooWEZyhS9abyqGT28vVv2wLdbJ432qHNQvKuyFwTDsVd8aR";

#[test]
fn a_ggen_home_too_long_for_a_socket_path_is_refused_before_the_node_starts() {
    let env = Env::new();
    let long = env.work.path().join("e".repeat(120));
    std::fs::create_dir_all(&long).unwrap();
    let mut args = START_LOCAL.to_vec();
    args.extend(["--exit-after", "30s"]);
    // In the background too: it made the lock and the log, and started a
    // node only to hear it refuse.
    for daemon in [false, true] {
        let mut args = args.clone();
        if daemon {
            args.push("--daemon");
        }
        let out = env.cmd(&args).env("GGEN_HOME", &long).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("over the 107 a Unix socket path may have; use a shorter GGEN_HOME")
                && !stderr.contains("exited"),
            "{stderr}"
        );
        // Nothing made: no identity, no lock.
        assert!(!long.join("p2p").exists());
    }
}

#[test]
fn a_background_node_stopped_before_it_reported_is_not_called_a_crash() {
    let env = Env::new();
    let mut args = START_LOCAL.to_vec();
    args.extend(["--daemon", "--exit-after", "30s"]);
    let start = spawn_for_stderr(&env, &args);
    // A stop as soon as there is a node to stop (asked again without a
    // pause): usually before `start` has asked it how its start went.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !env.run(&["marketplace", "p2p", "stop"]).status.success() {
        assert!(
            std::time::Instant::now() < deadline,
            "the background node never answered a stop"
        );
    }
    let out = start.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // It said "exited: exit status: 0".
    assert!(
        out.status.success()
            || stderr.contains("the background P2P node stopped right after it started"),
        "{stderr}"
    );
    assert!(!stderr.contains("exited"), "{stderr}");
}

#[test]
fn a_node_that_is_starting_is_not_taken_for_none() {
    use std::process::Stdio;
    let env = Env::new();
    env.write_config("[marketplace.p2p]\nbootstrap_timeout_secs = 60\n");
    // A peer that takes the connection and says nothing keeps the node in
    // its start-up bootstrap (for the 10 s connection limit), before it
    // opens its control socket.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_addr = format!("/ip4/127.0.0.1/tcp/{}", mute.local_addr().unwrap().port());
    let mut args = START_LOCAL.to_vec();
    args.extend(["--bootstrap", &mute_addr, "--exit-after", "60s"]);
    let log = env.work.path().join("node.stderr");
    let mut node = env
        .cmd(&args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let (held, _) = mute.accept().unwrap();
    // It said "no P2P node is running", and a search started a second node
    // with the same identity beside it.
    let err = env.fails(&["marketplace", "p2p", "stop"]);
    assert!(
        err.contains("a P2P node for this GGEN_HOME is starting or stopping"),
        "{err}"
    );
    let out = env.run(&["marketplace", "p2p", "search", "anything"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success()
            && stderr
                .contains("Operating in offline mode: a P2P node for this GGEN_HOME is starting"),
        "{stderr}"
    );
    // The connection limit ends the wait, and the warning says so (it
    // said "Timeout has been reached").
    let socket = env.home().join("p2p/control.sock");
    let up = eventually(Duration::from_secs(30), || {
        (socket.exists(), socket.exists())
    });
    assert!(up, "the node never finished starting");
    drop(held);
    env.ok(&["marketplace", "p2p", "stop"]);
    assert!(node.wait().unwrap().success());
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        stderr.contains(&format!("({mute_addr}: no answer within 10s)")),
        "{stderr}"
    );
}

#[test]
fn a_zero_exit_after_is_refused() {
    let env = Env::new();
    let mut args = START_LOCAL.to_vec();
    args.extend(["--exit-after", "0s"]);
    let err = env.fails(&args);
    assert!(
        err.contains("--exit-after 0s would stop the node before it starts"),
        "{err}"
    );
    assert!(!env.home().join("p2p").exists());
}

#[test]
fn the_control_socket_outlives_a_burst_that_uses_up_the_nodes_descriptors() {
    let node = Node::start(&[]);
    // Few descriptors left, so that a burst of idle clients takes them all.
    let limited = std::process::Command::new("prlimit")
        .args(["--pid", &node.pid().to_string(), "--nofile=64:64"])
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(limited.success());
    let socket = node.home().join("p2p/control.sock");
    let burst: Vec<_> = (0..100)
        .map(|_| std::os::unix::net::UnixStream::connect(&socket).unwrap())
        .collect();
    let log = || std::fs::read_to_string(node.env.work.path().join("node.stderr")).unwrap();
    eventually(Duration::from_secs(10), || {
        let log = log();
        (log.contains("cannot accept a connection"), log)
    });
    drop(burst);
    // The accept loop ended at the first failure: the node ran on, and
    // every command, `p2p stop` too, found it not answering.
    let status = eventually(Duration::from_secs(10), || {
        let out = node.env.run(&["marketplace", "p2p", "status", "--json"]);
        (out.status.success(), out)
    });
    assert!(status.status.success(), "{status:?}");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["peer_id"], node.peer_id.as_str(), "{status}");
}

#[test]
fn bootstrap_and_stop_through_the_control_socket() {
    let node1 = Node::start(&[]);
    let lonely = Node::start(&[]);
    let r = lonely
        .env
        .json(&["marketplace", "p2p", "bootstrap", &node1.addr, "--json"]);
    assert!(r["connected_peers"].as_u64().unwrap() >= 1, "{r}");
    let peers = lonely
        .env
        .json(&["marketplace", "p2p", "peer-list", "--json"]);
    assert!(peers.to_string().contains(&node1.peer_id), "{peers}");
    let peer = lonely
        .env
        .json(&["marketplace", "p2p", "peer-info", &node1.peer_id, "--json"]);
    assert!(peer["last_seen"].as_u64().unwrap() > 0, "{peer}");
    // An address that cannot be reached may be a typo: a peer never met
    // there is not listed (nor handed on to other peers by the DHT).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = format!(
        "/ip4/127.0.0.1/tcp/{}/p2p/{DEAD_PEER}",
        closed.local_addr().unwrap().port()
    );
    drop(closed);
    // It said "Connected to 1 peer(s)": node1, connected before.
    let err = lonely
        .env
        .fails(&["marketplace", "p2p", "bootstrap", &dead_addr]);
    assert!(
        err.contains(&format!(
            "none of {dead_addr} answered ({dead_addr}: Connection refused"
        )),
        "{err}"
    );
    // With --json the report is printed all the same, for scripts.
    let out = lonely
        .env
        .run(&["marketplace", "p2p", "bootstrap", &dead_addr, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["reached"], json!([]), "{report}");
    assert_eq!(
        report["failed"][0]["address"],
        dead_addr.as_str(),
        "{report}"
    );
    let why = report["failed"][0]["error"].as_str().unwrap();
    assert!(why.contains("Connection refused"), "{report}");
    // Nor does a dead address of a peer connected at another one count, nor
    // make it "unreachable" while it is up.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stale = format!(
        "/ip4/127.0.0.1/tcp/{}/p2p/{}",
        closed.local_addr().unwrap().port(),
        node1.peer_id
    );
    drop(closed);
    let err = lonely
        .env
        .fails(&["marketplace", "p2p", "bootstrap", &stale]);
    assert!(err.contains("none of"), "{err}");
    let err = lonely
        .env
        .fails(&["marketplace", "p2p", "peer-info", DEAD_PEER]);
    assert!(err.contains("has not met peer"), "{err}");
    let list = lonely
        .env
        .json(&["marketplace", "p2p", "peer-list", "--json"]);
    assert!(!list.to_string().contains(DEAD_PEER), "{list}");
    let known = lonely
        .env
        .json(&["marketplace", "p2p", "peer-info", &node1.peer_id, "--json"]);
    assert_eq!(known["unreachable"], 0, "{known}");
    let addresses = strings_of(&known["addresses"]);
    assert!(
        addresses.iter().any(|a| node1.addr.starts_with(a))
            && !addresses.iter().any(|a| stale.starts_with(a)),
        "{known}"
    );
    let list = lonely.env.ok(&["marketplace", "p2p", "peer-list"]);
    assert!(list.contains("LAST SEEN"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.contains(&node1.peer_id) && l.contains("just now")),
        "{list}"
    );
    // --bootstrap given to a command is dialled through the running node
    // (it was ignored), and a malformed one is refused.
    let other = Node::start(&[]);
    let status = lonely.env.json(&[
        "marketplace",
        "p2p",
        "status",
        "--bootstrap",
        &other.addr,
        "--json",
    ]);
    assert!(
        strings_of(&status["connected_peers"]).contains(&other.peer_id.as_str()),
        "{status}"
    );
    let err = lonely
        .env
        .fails(&["marketplace", "p2p", "status", "--bootstrap", "/dns4/x"]);
    assert!(err.contains("TCP over IPv4 or IPv6"), "{err}");
    // A second node for the same home is refused while one runs.
    let err = lonely.env.fails(&[
        "marketplace",
        "p2p",
        "start",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ]);
    assert!(err.contains("already running"), "{err}");
    lonely.env.ok(&["marketplace", "p2p", "stop"]);
    let gone = eventually(Duration::from_secs(5), || {
        let out = lonely.env.run(&["marketplace", "p2p", "stop"]);
        let gone = !out.status.success();
        (gone, gone)
    });
    assert!(gone, "the node is still answering after p2p stop");
    assert!(!lonely.home().join("p2p/control.sock").exists());
}

#[test]
fn what_is_in_the_way_of_the_control_socket_is_named_and_kept() {
    // A directory there said "Address already in use"; a file there was
    // deleted as if it were a dead node's socket.
    let env = Env::new();
    let socket = env.home().join("p2p/control.sock");
    std::fs::create_dir_all(&socket).unwrap();
    let mut args = START_LOCAL.to_vec();
    args.extend(["--exit-after", "10s"]);
    let err = env.fails(&args);
    assert!(
        err.contains(&format!(
            "{} is in the way of the control socket (it is not a socket); move it away",
            socket.display()
        )),
        "{err}"
    );
    std::fs::remove_dir(&socket).unwrap();
    std::fs::write(&socket, "mine").unwrap();
    let err = env.fails(&args);
    assert!(err.contains("is in the way of the control socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "mine");
    // A background node's log that cannot be opened is named too.
    std::fs::remove_file(&socket).unwrap();
    let log = env.home().join("p2p/node.log");
    std::fs::create_dir_all(&log).unwrap();
    args.push("--daemon");
    let err = env.fails(&args);
    let named = format!("cannot open the background node's log {}", log.display());
    assert!(err.contains(&named), "{err}");
}

#[test]
fn one_node_per_home_even_when_two_start_at_once() {
    let env = Env::new();
    const START: [&str; 7] = [
        "marketplace",
        "p2p",
        "start",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--exit-after",
        "60s",
    ];
    let spawn = || spawn_for_stderr(&env, &START);
    let mut nodes = [spawn(), spawn()];
    // One of the two is refused; the other runs, reachable.
    let loser = eventually(Duration::from_secs(30), || {
        let done = nodes
            .iter_mut()
            .position(|c| c.try_wait().unwrap().is_some());
        (done.is_some(), done)
    })
    .expect("one of two nodes started at once for one home must give way");
    let [a, b] = nodes;
    let (loser, mut winner) = if loser == 0 { (a, b) } else { (b, a) };
    let out = loser.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("already running"),
        "{err}"
    );
    let socket = env.home().join("p2p/control.sock");
    let ready = eventually(Duration::from_secs(10), || {
        (socket.exists(), socket.exists())
    });
    assert!(ready, "the winner never opened its control socket");

    // --daemon refuses too, rather than reporting the running node as its own.
    let args = [&START[..], &["--daemon"]].concat();
    let err = env.fails(&args);
    assert!(err.contains("already running"), "{err}");
    env.ok(&["marketplace", "p2p", "stop"]);
    let stopped = eventually(Duration::from_secs(10), || {
        let exited = winner.try_wait().unwrap();
        (exited.is_some(), exited)
    });
    assert!(stopped.is_some_and(|s| s.success()), "{stopped:?}");

    // Once it is gone, --daemon starts one in the background and returns,
    // reporting what a foreground start does, its bootstrap too (it used
    // to print the status shape, without it).
    let peer = Node::start(&[]);
    let status = env.json(&[&args[..], &["--bootstrap", &peer.addr, "--json"]].concat());
    assert!(status["peer_id"].is_string(), "{status}");
    assert_eq!(
        status["bootstrap"]["reached"],
        json!([peer.peer_id]),
        "{status}"
    );
    let err = env.fails(&args);
    assert!(err.contains("already running"), "{err}");
    // Stop returns once the node has let go of its home: a start right
    // after it found the node still running, some of the time.
    for _ in 0..3 {
        env.ok(&["marketplace", "p2p", "stop"]);
        assert!(!socket.exists(), "the background node did not stop");
        env.ok(&args);
    }
    env.ok(&["marketplace", "p2p", "stop"]);
    assert!(
        env.fails(&["marketplace", "p2p", "stop"])
            .contains("no P2P node is running")
    );
}

#[test]
fn two_background_starts_at_once_start_one_node_and_keep_its_log_clean() {
    let env = Env::new();
    let args = [
        "marketplace",
        "p2p",
        "start",
        "--daemon",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--exit-after",
        "60s",
    ];
    let log = env.home().join("p2p/node.log");
    for round in 0..8 {
        let spawn = || spawn_for_stderr(&env, &args);
        let starts = [spawn(), spawn()];
        let outs: Vec<_> = starts
            .into_iter()
            .map(|start| start.wait_with_output().unwrap())
            .collect();
        let won = outs.iter().filter(|out| out.status.success()).count();
        assert_eq!(won, 1, "round {round}: {outs:?}");
        // The loser says so itself: it used to start a second node whose
        // refusal went into the winner's log, and point the user there.
        let lost = outs.iter().find(|out| !out.status.success()).unwrap();
        let err = String::from_utf8_lossy(&lost.stderr);
        assert!(
            err.contains("already running") && !err.contains("node.log"),
            "round {round}: {err}"
        );
        let written = std::fs::read_to_string(&log).unwrap();
        assert!(
            !written.contains("already running"),
            "round {round}: {written}"
        );
        env.ok(&["marketplace", "p2p", "stop"]);
    }
}

#[test]
fn bad_addresses_in_config_toml_name_the_file_and_key() {
    let env = Env::new();
    let config = env.home().join("config.toml");
    std::fs::write(
        &config,
        "[marketplace.p2p]\nbootstrap_nodes = [\"/dns4/example.com/tcp/4001\"]\nlisten_address = \"nonsense\"\n",
    )
    .unwrap();
    let err = env.fails(&["marketplace", "p2p", "search", "x"]);
    assert!(
        err.contains(&format!(
            "{} [marketplace.p2p] bootstrap_nodes: `/dns4/example.com/tcp/4001`: ggen speaks TCP",
            config.display()
        )),
        "{err}"
    );
    let err = env.fails(&[
        "marketplace",
        "p2p",
        "start",
        "--bootstrap",
        "/ip4/127.0.0.1/tcp/9",
    ]);
    assert!(
        err.contains("[marketplace.p2p] listen_address: `nonsense` is not a multiaddr"),
        "{err}"
    );
    // A flag replaces the configured value, and its error quotes the flag.
    let err = env.fails(&[
        "marketplace",
        "p2p",
        "search",
        "x",
        "--bootstrap",
        "/ip4/1.2.3.4/udp/1",
    ]);
    assert!(
        err.contains("`/ip4/1.2.3.4/udp/1`: ggen speaks TCP") && !err.contains("config.toml"),
        "{err}"
    );
}

#[test]
fn twenty_nodes_all_learn_of_an_announcement() {
    let hub = Node::start(&[]);
    let others: Vec<Node> = (0..19).map(|_| Node::start(&[&hub.addr])).collect();
    p2p_publish(&hub.env, "crowd-pkg", "1.0.0", "heard by everyone");
    for (i, node) in others.iter().enumerate() {
        let r = eventually(Duration::from_secs(15), || {
            let r = search(&node.env, &["everyone"]);
            (hit(&r, "crowd-pkg").is_some(), r)
        });
        let h = hit(&r, "crowd-pkg").unwrap_or_else(|| panic!("node {i} never heard: {r}"));
        assert_eq!(h["via"], "gossip");
    }
}

/// A peer built here with libp2p (the same protocols as ggen) that sends a
/// malformed announcement, a malformed DHT record and then a flood.
mod hostile {
    use std::time::{Duration, Instant};

    use libp2p::futures::StreamExt;
    use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
    use libp2p::{Multiaddr, PeerId, StreamProtocol, gossipsub, identify, kad, noise, tcp, yamux};

    #[derive(NetworkBehaviour)]
    struct Behaviour {
        kad: kad::Behaviour<kad::store::MemoryStore>,
        gossipsub: gossipsub::Behaviour,
        identify: identify::Behaviour,
    }

    pub struct Attack {
        pub peer_id: String,
    }

    /// A hostile peer dialling `target`: its runtime, its swarm and the
    /// target's id.
    fn connect(target: &str) -> (tokio::runtime::Runtime, libp2p::Swarm<Behaviour>, PeerId) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut swarm = rt.block_on(async {
            libp2p::SwarmBuilder::with_new_identity()
                .with_tokio()
                .with_tcp(
                    tcp::Config::default(),
                    noise::Config::new,
                    yamux::Config::default,
                )
                .unwrap()
                .with_behaviour(|key| {
                    let id = key.public().to_peer_id();
                    let mut kad = kad::Behaviour::with_config(
                        id,
                        kad::store::MemoryStore::new(id),
                        kad::Config::new(StreamProtocol::new("/ggen/kad/1.0.0")),
                    );
                    kad.set_mode(Some(kad::Mode::Server));
                    let gossipsub = gossipsub::Behaviour::new(
                        gossipsub::MessageAuthenticity::Signed(key.clone()),
                        gossipsub::ConfigBuilder::default()
                            .heartbeat_interval(Duration::from_millis(200))
                            .build()
                            .unwrap(),
                    )
                    .unwrap();
                    let identify = identify::Behaviour::new(identify::Config::new(
                        "/ggen/id/1.0.0".into(),
                        key.public(),
                    ));
                    Behaviour {
                        kad,
                        gossipsub,
                        identify,
                    }
                })
                .unwrap()
                .build()
        });
        let target: Multiaddr = target.parse().unwrap();
        let Some(libp2p::multiaddr::Protocol::P2p(target_id)) = target.iter().last() else {
            panic!("target address has no /p2p/");
        };
        swarm
            .behaviour_mut()
            .kad
            .add_address(&target_id, target.clone());
        rt.block_on(async { swarm.dial(target) }).unwrap();
        (rt, swarm, target_id)
    }

    /// A well-formed record for the made-up package `name`.
    fn well_formed(name: &str) -> String {
        format!(
            r#"{{"package":{{"name":"{name}","version":"1.0.0","title":"f","description":"","categories":[],"tags":[],"authors":[],"license":null,"dependencies":{{}},"checksum":"sha256-{}","published_at":"","size":0}}}}"#,
            "a".repeat(64)
        )
    }

    pub fn run(target: &str, flood: usize) -> Attack {
        let (rt, mut swarm, target_id) = connect(target);
        rt.block_on(async {
            let me = swarm.local_peer_id().to_string();
            let topic = gossipsub::IdentTopic::new("/ggen/packages/v1");
            swarm.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
            // Wait until the target has subscribed us to the topic.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !subscribed(&swarm, &target_id, &topic) {
                assert!(Instant::now() < deadline, "the target never subscribed");
                drive(&mut swarm, Duration::from_millis(50)).await;
            }
            let gs = &mut swarm.behaviour_mut().gossipsub;
            gs.publish(topic.clone(), b"{this is not an announcement".to_vec()).unwrap();
            let bad_name = br#"{"package":{"name":"../etc","version":"1.0.0","title":"","description":"","categories":[],"tags":[],"authors":[],"license":null,"dependencies":{},"checksum":"sha256-00","published_at":"","size":0}}"#;
            gs.publish(topic.clone(), bad_name.to_vec()).unwrap();
            let record = kad::Record::new(
                kad::RecordKey::new(&"/ggen/packages/v1/evil"),
                b"garbage".to_vec(),
            );
            swarm
                .behaviour_mut()
                .kad
                .put_record_to(record, std::iter::once(target_id), kad::Quorum::One);
            drive(&mut swarm, Duration::from_millis(500)).await;
            for i in 0..flood {
                let text = well_formed(&format!("flood-{i}"));
                let _ = swarm.behaviour_mut().gossipsub.publish(topic.clone(), text.into_bytes());
            }
            drive(&mut swarm, Duration::from_secs(2)).await;
            Attack { peer_id: me }
        })
    }

    /// Put `count` well-formed records of made-up packages on the target
    /// (each acknowledged, whether or not it kept it), then hang up.
    pub fn put_records(target: &str, count: usize) {
        let (rt, mut swarm, target_id) = connect(target);
        rt.block_on(async {
            let mut pending = std::collections::HashSet::new();
            for i in 0..count {
                let name = format!("made-up-{i}");
                let record = kad::Record::new(
                    kad::RecordKey::new(&format!("/ggen/packages/v1/{name}")),
                    well_formed(&name).into_bytes(),
                );
                let kad = &mut swarm.behaviour_mut().kad;
                pending.insert(kad.put_record_to(
                    record,
                    std::iter::once(target_id),
                    kad::Quorum::One,
                ));
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            while !pending.is_empty() {
                assert!(
                    Instant::now() < deadline,
                    "{} puts unanswered",
                    pending.len()
                );
                let next = tokio::time::timeout(Duration::from_secs(1), swarm.select_next_some());
                if let Ok(SwarmEvent::Behaviour(BehaviourEvent::Kad(
                    kad::Event::OutboundQueryProgressed {
                        id,
                        result: kad::QueryResult::PutRecord(r),
                        ..
                    },
                ))) = next.await
                {
                    r.expect("the target answers every put");
                    pending.remove(&id);
                }
            }
        })
    }

    fn subscribed(
        swarm: &libp2p::Swarm<Behaviour>,
        peer: &PeerId,
        topic: &gossipsub::IdentTopic,
    ) -> bool {
        let hash = topic.hash();
        swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .any(|(p, topics)| p == peer && topics.contains(&&hash))
    }

    async fn drive(swarm: &mut libp2p::Swarm<Behaviour>, time: Duration) {
        let _ = tokio::time::timeout(time, async {
            loop {
                if let SwarmEvent::ConnectionClosed { .. } = swarm.select_next_some().await {}
            }
        })
        .await;
    }
}

#[test]
fn malformed_records_and_announcements_count_against_the_sender_and_floods_are_limited() {
    let node = Node::start(&[]);
    let attack = hostile::run(&node.addr, 600);
    let s = eventually(Duration::from_secs(10), || {
        let s = status(&node.env);
        let m = &s["metrics"];
        let done = m["messages_rejected"].as_u64().unwrap() >= 2
            && m["records_rejected"].as_u64().unwrap() >= 1
            && m["messages_rate_limited"].as_u64().unwrap() >= 1;
        (done, s)
    });
    let m = &s["metrics"];
    assert!(m["messages_rejected"].as_u64().unwrap() >= 2, "{s}");
    assert!(m["records_rejected"].as_u64().unwrap() >= 1, "{s}");
    assert!(m["messages_rate_limited"].as_u64().unwrap() >= 1, "{s}");
    let info = node
        .env
        .json(&["marketplace", "p2p", "peer-info", &attack.peer_id, "--json"]);
    assert!(info["failures"].as_u64().unwrap() >= 3, "{info}");
    assert!(info["rate_limited"].as_u64().unwrap() >= 1, "{info}");
    assert!(info["reputation"].as_f64().unwrap() < 0.5, "{info}");
    // Below the default minimum reputation, so its packages are left out.
    let r = search(&node.env, &["flood"]);
    assert!(r["results"].as_array().unwrap().is_empty(), "{r}");
    // ...and it says so (it said only "No packages match").
    assert!(r["hidden_by_reputation"].as_u64().unwrap() >= 1, "{r}");
    let text = node.env.ok(&["marketplace", "p2p", "search", "flood"]);
    assert!(
        text.contains("offered only by peers under reputation 0.5 (lower --min-reputation"),
        "{text}"
    );
    let r = search(&node.env, &["flood", "--min-reputation", "0"]);
    assert_eq!(r["hidden_by_reputation"], 0, "{r}");
    assert!(!r["results"].as_array().unwrap().is_empty(), "{r}");
}

#[test]
fn one_peer_cannot_fill_the_record_store() {
    let node = Node::start(&[]);
    // More records than one peer may have held (512): the rest are
    // acknowledged but not kept, so the store keeps room for others and for
    // the node's own.
    hostile::put_records(&node.addr, 600);
    assert_eq!(status(&node.env)["records_held"], 512);
    p2p_publish(&node.env, "own-pkg", "1.0.0", "still announced");
    assert_eq!(status(&node.env)["records_held"], 513);
}

#[test]
fn hybrid_search_merges_local_and_network_preferring_newer_versions() {
    let node = Node::start(&[]);
    p2p_publish(&node.env, "merge-me", "2.0.0", "hybrid merge newer");
    p2p_publish(&node.env, "only-remote", "1.0.0", "hybrid merge remote");
    let client = Env::new();
    client.publish(serde_json::json!({"name": "merge-me", "version": "1.0.0", "description": "hybrid merge older"}));
    client.publish(serde_json::json!({"name": "only-local", "version": "3.0.0", "description": "hybrid merge local"}));
    // Plain search stays local.
    let local = client.json(&["marketplace", "search", "merge-me", "--json"]);
    assert_eq!(local["results"][0]["version"], "1.0.0");
    let r = client.json(&[
        "marketplace",
        "search",
        "merge-me",
        "only-remote",
        "--hybrid",
        "--bootstrap",
        &node.addr,
        "--json",
    ]);
    // Every word must match: nothing matches both names.
    assert_eq!(r["total"], 0, "{r}");
    let r = client.json(&[
        "marketplace",
        "search",
        "merge-me",
        "--hybrid",
        "--bootstrap",
        &node.addr,
        "--json",
    ]);
    let h = hit(&r, "merge-me").unwrap_or_else(|| panic!("{r}"));
    assert_eq!(
        h["version"], "2.0.0",
        "the network's newer version wins: {r}"
    );
    assert_eq!(h["source"], node.peer_id);
    assert_eq!(r["total"], 1);
    let r = client.json(&[
        "marketplace",
        "search",
        "hybrid",
        "--hybrid",
        "--bootstrap",
        &node.addr,
        "--json",
    ]);
    // "hybrid" is not a package name, so only what this client knows: its own packages.
    assert_eq!(hit(&r, "only-local").unwrap()["source"], "local");
    assert_eq!(hit(&r, "merge-me").unwrap()["version"], "1.0.0");
    let human = client.ok(&[
        "marketplace",
        "search",
        "merge-me",
        "--hybrid",
        "--bootstrap",
        &node.addr,
    ]);
    assert!(human.contains("SOURCE") && human.contains("dht"), "{human}");
    assert!(human.ends_with("1-1 of 1 match\n"), "{human}");
    // Paging reads as in a plain search.
    let past = client.ok(&[
        "marketplace",
        "search",
        "hybrid",
        "--hybrid",
        "--offset",
        "5",
        "--bootstrap",
        &node.addr,
    ]);
    assert_eq!(
        past, "No results on this page (2 matches in all; lower --offset).\n",
        "{past}"
    );
    // Rows read as in a plain search: no description shows the title.
    client.publish(json!({"name": "untold", "version": "1.0.0", "title": "Told by its title"}));
    for hybrid in [&["--hybrid", "--bootstrap", &node.addr][..], &[]] {
        let args = [&["marketplace", "search", "untold"][..], hybrid].concat();
        let human = client.ok(&args);
        assert!(human.contains("Told by its title"), "{args:?}: {human}");
    }
}

#[test]
fn a_node_that_stopped_answering_is_named_not_replaced() {
    let node = Node::start(&[]);
    // It holds the home but answers nothing: commands waited a minute, then
    // started a second node with its identity and said they were offline.
    node.signal("STOP");
    for args in [
        &["marketplace", "p2p", "status"][..],
        &["marketplace", "p2p", "stop"],
    ] {
        let err = node.env.fails(args);
        assert!(
            err.contains("a P2P node runs for this GGEN_HOME")
                && err.contains("but does not answer"),
            "{err}"
        );
    }
    // Searches and installs go on offline from the local registry (they
    // failed, though the registry had the package).
    node.env
        .publish(json!({"name": "kept", "version": "1.0.0", "description": "local only"}));
    let out = node
        .env
        .run(&["marketplace", "search", "local", "--hybrid"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Operating in offline mode") && stderr.contains("but does not answer"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept"));
    let target = node.env.work.path().join("installed");
    let target_arg = target.to_str().unwrap();
    let out = node.env.run(&[
        "marketplace",
        "install",
        "kept",
        "--p2p",
        "--target",
        target_arg,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("P2P failed, using local registry"),
        "{stderr}"
    );
    assert!(target.join("kept/package.json").is_file());
    // A command that gave up waiting (and said so) leaves its request
    // queued: it must not act once the node runs again, least of all `stop`.
    {
        use std::io::Write;
        let socket = node.env.home().join("p2p/control.sock");
        let mut gone = std::os::unix::net::UnixStream::connect(socket).unwrap();
        gone.write_all(b"{\"op\":\"stop\"}\n").unwrap();
    }
    node.signal("CONT");
    assert_eq!(status(&node.env)["peer_id"], node.peer_id);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(status(&node.env)["peer_id"], node.peer_id);

    // A request the node would cut off (over 1 MiB) is refused plainly.
    let word = "w".repeat(100_000);
    let mut args = vec!["marketplace", "p2p", "search"];
    args.extend(std::iter::repeat_n(word.as_str(), 12));
    let err = node.env.fails(&args);
    assert!(
        err.contains("more than the running node accepts (1024 KiB); shorten the query"),
        "{err}"
    );
}

/// A stand-in for a node that dies mid-request: it answers `status` like a
/// running node and hangs up on anything else (its thread ends with the test).
fn node_that_dies_on_requests(env: &Env) {
    use std::io::{BufRead, BufReader, Write};
    let dir = env.home().join("p2p");
    std::fs::create_dir_all(&dir).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(dir.join("control.sock")).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            if line.contains(r#""op":"status""#) {
                let metrics: serde_json::Map<String, Value> = [
                    "peer_count",
                    "dht_queries",
                    "dht_query_failures",
                    "peer_reputation_avg",
                    "cache_size",
                    "cache_capacity",
                    "cache_hits",
                    "cache_misses",
                    "cache_hit_rate",
                    "announcements_received",
                    "announcements_sent",
                    "messages_rejected",
                    "messages_rate_limited",
                    "records_rejected",
                ]
                .iter()
                .map(|k| (k.to_string(), Value::from(0)))
                .collect();
                let status = serde_json::json!({"ok": {
                    "peer_id": "12D3KooWDies", "listen_addresses": [], "connected_peers": [],
                    "known_peers": 0, "records_held": 0, "dht_server": true, "uptime_secs": 1,
                    "mode": "running node", "metrics": metrics,
                }});
                writeln!(stream, "{status}").unwrap();
            }
        }
    });
}

#[test]
fn a_node_that_dies_mid_publish_leaves_the_package_published() {
    let env = Env::new();
    node_that_dies_on_requests(&env);
    // It used to fail although the package was in the registry; the retry
    // then said "already published".
    let report = p2p_publish(&env, "orphan", "1.0.0", "published, never announced");
    assert_eq!(report["announced"], Value::Null, "{report}");
    let why = report["offline"].as_str().unwrap();
    assert!(
        why.starts_with("announcing failed: ") && why.contains("hung up without answering"),
        "{why}"
    );
    let dir = env.package(
        "orphan-1.1.0",
        &serde_json::json!({"name": "orphan", "version": "1.1.0"}),
        &[],
    );
    let out = env.ok(&["marketplace", "p2p", "publish", dir.to_str().unwrap()]);
    assert!(
        out.contains("Published orphan@1.1.0 to the local registry")
            && out.contains("Not announced: announcing failed: ")
            && out.contains("`ggen marketplace p2p start` announces it"),
        "{out}"
    );
    // The retry announces what is there (it said "already published");
    // other bytes under the same version are still refused.
    let out = env.ok(&["marketplace", "p2p", "publish", dir.to_str().unwrap()]);
    assert!(
        out.contains("orphan@1.1.0 is in the local registry with these exact bytes already")
            && out.contains("Not announced: announcing failed: "),
        "{out}"
    );
    std::fs::write(dir.join("extra.txt"), "changed").unwrap();
    let err = env.fails(&["marketplace", "p2p", "publish", dir.to_str().unwrap()]);
    assert!(err.contains("orphan@1.1.0 is already published"), "{err}");
    let info = env.json(&["marketplace", "info", "orphan", "--json"]);
    assert_eq!(strings(&info["versions"], "version"), ["1.1.0", "1.0.0"]);
}

#[test]
fn bootstrap_counts_only_what_it_dialled_and_never_the_node_itself() {
    let a = Node::start(&[]);
    let b = Node::start(&[&a.addr]);
    let c = Node::start(&[]);
    // Its own address: refused, and it does not become a known peer.
    let err = c.env.fails(&["marketplace", "p2p", "bootstrap", &c.addr]);
    assert!(
        err.contains(&format!("({}: that is this node's own address)", c.addr)),
        "{err}"
    );
    // Beside another peer's, it is not dialled, and the other is (the whole
    // list was refused: one list shared by every node failed on each).
    let report = c.env.json(&[
        "marketplace",
        "p2p",
        "bootstrap",
        &c.addr,
        &b.addr,
        "--json",
    ]);
    assert_eq!(
        report["reached"],
        serde_json::json!([b.peer_id]),
        "{report}"
    );
    assert_eq!(
        report["failed"],
        serde_json::json!([{"address": c.addr, "error": "that is this node's own address"}]),
        "{report}"
    );
    // Without its peer id too: it said only "none of ... answered".
    // Where it listens with another peer id: a failed handshake, it said.
    let (own, _) = c.addr.split_once("/p2p/").unwrap();
    let own_elsewhere = format!("{own}/p2p/{DEAD_PEER}");
    for addr in [own, own_elsewhere.as_str()] {
        let err = c.env.fails(&["marketplace", "p2p", "bootstrap", addr]);
        assert!(
            err.contains(&format!("({addr}: that is this node's own address)")),
            "{err}"
        );
    }
    // A live port with another peer id than the one given names who answered.
    let (b_at, _) = b.addr.split_once("/p2p/").unwrap();
    let wrong = format!("{b_at}/p2p/{DEAD_PEER}");
    let err = c.env.fails(&["marketplace", "p2p", "bootstrap", &wrong]);
    assert!(
        err.contains(&format!(
            "({wrong}: another peer answered there ({}))",
            b.peer_id
        )),
        "{err}"
    );
    // c dials b only; a, which c may meet through b meanwhile, was not dialled.
    // Given twice, it is dialled (and reported) once.
    let report = c.env.json(&[
        "marketplace",
        "p2p",
        "bootstrap",
        &b.addr,
        &b.addr,
        "--json",
    ]);
    assert_eq!(
        (&report["reached"], &report["dialed"], &report["failed"]),
        (
            &serde_json::json!([b.peer_id]),
            &serde_json::json!([b.addr]),
            &serde_json::json!([])
        ),
        "{report}"
    );
    let peers = c.env.json(&["marketplace", "p2p", "peer-list", "--json"]);
    assert!(!peers.to_string().contains(&c.peer_id), "{peers}");
    let err = c
        .env
        .fails(&["marketplace", "p2p", "peer-info", &c.peer_id]);
    assert!(err.contains("this node's own peer id"), "{err}");
}

#[test]
fn dht_server_mode_is_chosen_per_run() {
    let env = Env::new();
    let started = |extra: &[&str]| -> Value {
        let mut args = START_LOCAL.to_vec();
        args.extend(["--exit-after", "1s", "--json"]);
        args.extend(extra);
        let out = env.ok(&args);
        let first = serde_json::Deserializer::from_str(&out).into_iter().next();
        first.unwrap().unwrap()
    };
    assert_eq!(started(&[])["dht_server"], true);
    // No flag turned server mode off for one run.
    assert_eq!(started(&["--dht-client"])["dht_server"], false);
    env.write_config("[marketplace.p2p]\ndht_server_mode = false\n");
    assert_eq!(started(&[])["dht_server"], false);
    assert_eq!(started(&["--dht-server"])["dht_server"], true);
    let both = env.run(&[
        "marketplace",
        "p2p",
        "start",
        "--dht-server",
        "--dht-client",
    ]);
    assert_eq!(both.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used with"));
}

/// A node whose bootstrap peer was away when it started (or that lost every
/// peer) dials its bootstrap addresses again by itself: it joins once the
/// peer is back, without another `p2p bootstrap`.
#[test]
fn a_node_joins_a_bootstrap_peer_that_was_away_when_it_started() {
    let away = Node::start(&[]);
    away.signal("STOP");
    let node = Node::start(&[&away.addr]);
    assert!(
        status(&node.env)["connected_peers"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    away.signal("CONT");
    let joined = eventually(Duration::from_secs(120), || {
        let s = status(&node.env);
        (
            strings_of(&s["connected_peers"]).contains(&away.peer_id.as_str()),
            s,
        )
    });
    assert!(
        strings_of(&joined["connected_peers"]).contains(&away.peer_id.as_str()),
        "never joined {}: {joined}",
        away.peer_id
    );
}
