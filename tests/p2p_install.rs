//! Installing from peers end to end, with real node processes on 127.0.0.1:
//! tarballs by content hash from providers, verified; lying, truncating and
//! silent providers detected, penalised (persistently) and skipped, crashing
//! ones only counted away; fallback
//! to the file registry. Faulty providers are debug builds of ggen started
//! with `GGEN_P2P_FAULT` (release builds ignore it).
#![cfg(feature = "p2p")]

mod support;

use serde_json::{Value, json};
use std::time::Duration;

use support::nodes::{Node, eventually, p2p_publish};
use support::{Env, named, snapshot};

fn lock(env: &Env) -> Value {
    serde_json::from_slice(&std::fs::read(env.home().join("packages/ggen.lock")).unwrap()).unwrap()
}

/// Change `name`'s record in ggen.lock by hand.
fn edit_locked(env: &Env, name: &str, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let mut lock = lock(env);
    let entry = (lock["packages"].as_array_mut().unwrap().iter_mut())
        .find(|p| p["name"] == name)
        .unwrap();
    edit(entry.as_object_mut().unwrap());
    std::fs::write(env.home().join("packages/ggen.lock"), lock.to_string()).unwrap();
}

/// `name`@1.0.0 with `size` incompressible bytes (the same bytes in every
/// env, so every publisher has the same tarball), published into `env`'s registry.
fn publish_payload(env: &Env, name: &str, size: usize) {
    let dir = env.work.path().join(format!("{name}-1.0.0"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("package.json"),
        json!({"name": name, "version": "1.0.0", "description": "several segments"}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("payload.bin"), support::noise(size, 7)).unwrap();
    env.ok(&["marketplace", "publish", dir.to_str().unwrap()]);
}

/// 2.5 MB: several segments, below the multi-provider threshold.
fn publish_big(env: &Env) {
    publish_payload(env, "big", 2_500_000);
}

fn install_p2p(env: &Env, name: &str, bootstrap: &[&str]) -> std::process::Output {
    install_p2p_with(env, &[], name, bootstrap)
}

/// `install --p2p` after the global arguments `global`.
fn install_p2p_with(
    env: &Env,
    global: &[&str],
    name: &str,
    bootstrap: &[&str],
) -> std::process::Output {
    let mut args = global.to_vec();
    args.extend(["marketplace", "install", name, "--p2p"]);
    for b in bootstrap {
        args.extend(["--bootstrap", b]);
    }
    env.run(&args)
}

/// The install succeeded; the lockfile's source for its (only) package.
fn installed_source(env: &Env, out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lock(env)["packages"][0]["source"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn three_nodes_install_through_the_network() {
    let node1 = Node::start(&[]);
    let node2 = Node::start(&[&node1.addr]);
    let node3 = Node::start(&[&node2.addr]);
    p2p_publish(&node1.env, "shared", "1.0.0", "shared through peers");
    let published = node1.env.json(&["marketplace", "info", "shared", "--json"]);

    // A dry run resolves against the network too (it ignored --p2p and
    // failed on the empty local registry), and writes nothing.
    let plan = node3.env.json(&[
        "marketplace",
        "install",
        "shared",
        "--p2p",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(plan["packages"][0]["version"], "1.0.0", "{plan}");
    assert!(!node3.home().join("packages").exists());

    // node3's home has no registry copy: everything comes through its running node.
    let out = node3
        .env
        .run(&["marketplace", "install", "shared", "--p2p"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("P2P failed"));
    let installed = node3.home().join("packages/shared");
    let source = node1.env.work.path().join("shared-1.0.0");
    assert_eq!(
        std::fs::read(installed.join("README.md")).unwrap(),
        std::fs::read(source.join("README.md")).unwrap()
    );
    let entry = &lock(&node3.env)["packages"][0];
    assert_eq!(entry["source"], format!("p2p+{}", node1.peer_id));
    assert_eq!(entry["integrity"], published["versions"][0]["checksum"]);
    assert_eq!(
        node3.env.json(&["marketplace", "verify", "--json"])["ok"],
        true
    );

    // A client with no node of its own, bootstrapped through node2, and a
    // multi-segment package served by node1 since its start.
    drop(node3);
    let client = Env::new();
    let out = install_p2p(&client, "shared", &[&node2.addr]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let big_home = Env::new();
    publish_big(&big_home);
    let big = Node::start_in(big_home, &[&node2.addr]);
    let out = install_p2p(&client, "big", &[&node2.addr]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(client.home().join("packages/big/payload.bin")).unwrap(),
        std::fs::read(big.env.work.path().join("big-1.0.0/payload.bin")).unwrap()
    );
}

/// A provider that crashes mid-transfer is away, not misbehaving: one such
/// crash used to put an honest provider under the minimum reputation for
/// good (only delivered tarballs earn successes). One that cuts its answer
/// short and stays connected is still penalised (see below).
#[test]
fn a_provider_that_crashes_mid_transfer_is_away_not_failing() {
    let client = Env::new();
    let mut env = Env::new();
    publish_big(&env);
    let node = start_faulty(&mut env, "die", &[]);
    let out = install_p2p(&client, "big", &[&node.addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("bytes at offset") && stderr.contains("its connection closed"),
        "{stderr}"
    );
    let info = client.json(&["marketplace", "p2p", "peer-info", &node.peer_id, "--json"]);
    assert_eq!(info["failures"], 0, "{info}");
    assert!(info["reputation"].as_f64().unwrap() >= 0.5, "{info}");
}

#[test]
fn bad_providers_are_detected_penalised_and_skipped() {
    let client = Env::new();
    // Short per-segment deadline, so the silent provider costs 2 s, not 10.
    client.write_config("[marketplace.p2p]\nquery_timeout_secs = 2\n");
    let mut bad = Vec::new();
    for (fault, expected) in [
        ("corrupt", "do not match the checksum"),
        ("truncate", "bytes at offset"),
        ("silent", "timed out after 2s"),
    ] {
        let env = Env::new();
        publish_big(&env);
        let mut cmd_env = env;
        let node = start_faulty(&mut cmd_env, fault, &[]);
        let root = client.home().join("packages");
        // The install lock file may appear (it is how installers queue); nothing else may.
        let files = |root: &std::path::Path| {
            let mut s = snapshot(root);
            s.retain(|(path, _)| path != ".ggen-install.lock");
            s
        };
        let before = files(&root);
        let out = install_p2p(&client, "big", &[&node.addr]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{fault}: {stderr}");
        assert!(
            stderr.contains("P2P failed, using local registry"),
            "{fault}: {stderr}"
        );
        assert!(stderr.contains(expected), "{fault}: {stderr}");
        assert!(
            stderr.contains("not installable from the P2P network"),
            "{fault}: {stderr}"
        );
        assert_eq!(files(&root), before, "{fault} left files behind");
        bad.push(node);
    }
    // The client remembers them (peers.json), below the default minimum.
    for node in &bad {
        let info = client.json(&["marketplace", "p2p", "peer-info", &node.peer_id, "--json"]);
        assert!(info["failures"].as_u64().unwrap() >= 1, "{info}");
        assert!(info["reputation"].as_f64().unwrap() < 0.5, "{info}");
    }
    // Asked again, none of them is used, and the error says why.
    let out = install_p2p(&client, "big", &[&bad[0].addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no usable peer provides big@1.0.0: every provider (1) is under the minimum reputation 0.5"),
        "{stderr}"
    );
    // With an honest provider among them, the install succeeds from it.
    let honest_env = Env::new();
    publish_big(&honest_env);
    let honest = Node::start_in(honest_env, &[]);
    let mut bootstrap: Vec<&str> = bad.iter().map(|n| n.addr.as_str()).collect();
    bootstrap.push(&honest.addr);
    let out = install_p2p(&client, "big", &bootstrap);
    assert_eq!(
        installed_source(&client, &out),
        format!("p2p+{}", honest.peer_id)
    );
}

#[test]
fn a_record_of_the_wrong_size_counts_against_no_provider() {
    // A record claiming one byte more than the tarball has (a buggy or
    // hostile publisher): the provider's own word and the checksum decide.
    // The honest provider used to get a failure per install.
    let mut env = Env::new();
    publish_big(&env);
    let node = start_faulty(&mut env, "record-size", &[]);
    let client = Env::new();
    let out = install_p2p(&client, "big", &[&node.addr]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        installed_source(&client, &out),
        format!("p2p+{}", node.peer_id)
    );
    assert!(stderr.contains("says big@1.0.0 is"), "{stderr}");
    // Its size unknown, the fetch line gives none (it said "0 bytes").
    assert!(stderr.contains("fetch  big@1.0.0\n"), "{stderr}");
    let info = client.json(&["marketplace", "p2p", "peer-info", &node.peer_id, "--json"]);
    assert_eq!(info["failures"], 0, "{info}");

    // A registry whose metadata disagrees with its tarball: its node
    // neither serves nor announces the package (it announced it, sending
    // peers after bytes of another size).
    let env = Env::new();
    publish_big(&env);
    let index = env.registry().join("index.json");
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
    meta["packages"]["big"]["versions"][0]["size"] = json!(9000);
    std::fs::write(&index, meta.to_string()).unwrap();
    let node = Node::start_in(env, &[]);
    let log = std::fs::read_to_string(node.env.work.path().join("node.stderr")).unwrap();
    assert!(log.contains("not serving or announcing big@1.0.0"), "{log}");
    let client = Env::new();
    let out = install_p2p(&client, "big", &[&node.addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("package `big` is not in the P2P network's records")
            && stderr.contains("`ggen marketplace p2p search WORDS` finds packages"),
        "{stderr}"
    );
    assert!(!stderr.contains("provides"), "{stderr}");
}

#[test]
fn a_command_waits_for_another_process_saving_peer_statistics() {
    // Another process holds peers.json.lock for 6 s (24 installs at once
    // queue like this). The install's last save waits for it (up to 10 s);
    // it was cut off after 3 s, silently, and the success was lost.
    let node = Node::start(&[]);
    p2p_publish(&node.env, "shared", "1.0.0", "shared through peers");
    let client = Env::new();
    let p2p = client.home().join("p2p");
    std::fs::create_dir_all(&p2p).unwrap();
    let held = std::fs::File::create(p2p.join("peers.json.lock")).unwrap();
    held.lock().unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(6));
        drop(held);
    });
    let out = install_p2p(&client, "shared", &[&node.addr]);
    assert_eq!(
        installed_source(&client, &out),
        format!("p2p+{}", node.peer_id)
    );
    release.join().unwrap();
    let info = client.json(&["marketplace", "p2p", "peer-info", &node.peer_id, "--json"]);
    assert_eq!(info["successes"], 1, "{info}");
}

#[test]
fn a_node_drops_the_download_of_an_install_that_was_killed() {
    // The node went on downloading for a killed install, and then charged
    // the provider for a wait nobody was waiting for.
    let (provider, node, mut install) = install_from_a_silent_provider(3);
    install.kill().unwrap();
    install.wait().unwrap();
    // Past the deadline the abandoned download would have run into.
    std::thread::sleep(Duration::from_secs(6));
    let info = peer_info(&node.env, &provider.peer_id);
    assert_eq!(info["failures"], 0, "{info}");
}

#[test]
fn stopping_the_node_mid_download_says_so_and_blames_no_provider() {
    // `p2p stop` while the node downloads for an install: the install said
    // every provider failed, quoting the streams the stop itself cut.
    let (provider, node, install) = install_from_a_silent_provider(60);
    node.env.ok(&["marketplace", "p2p", "stop"]);
    let out = install.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the P2P node was stopped before it finished"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&provider.peer_id) && !stderr.contains("every provider"),
        "{stderr}"
    );
    let info = peer_info(&node.env, &provider.peer_id);
    assert_eq!(info["failures"], 0, "{info}");
}

#[test]
fn a_provider_that_went_away_counts_as_unreachable_not_as_failed() {
    // Peers never stored the provider records others sent them, so a
    // provider was found only by asking itself. And once found, one that
    // went away was charged twice: its dial failing counted as
    // `unreachable`, the stream that could not open as a failure too.
    // gone announces itself as big's provider to the client's node, its
    // only peer, and then stops.
    let client = Node::start(&[]);
    let gone_env = Env::new();
    publish_big(&gone_env);
    let gone = Node::start_in(gone_env, &[&client.addr]);
    let gone_id = gone.peer_id.clone();
    let held = eventually(Duration::from_secs(30), || {
        let status = client.env.json(&["marketplace", "p2p", "status", "--json"]);
        let n = status["metrics"]["provider_records_received"]
            .as_u64()
            .unwrap();
        (n >= 1, n)
    });
    assert!(
        held >= 1,
        "gone's provider record never reached the client's node"
    );
    drop(gone);
    let out = client.env.run(&["marketplace", "install", "big", "--p2p"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    // The dial's own reason, not a guess ("offline?").
    assert!(
        stderr.contains(&format!("{gone_id}: cannot reach it: "))
            && stderr.contains("Connection refused"),
        "{stderr}"
    );
    let info = (client.env).json(&["marketplace", "p2p", "peer-info", &gone_id, "--json"]);
    assert_eq!(info["failures"], 0, "{info}\n{stderr}");
    assert!(info["unreachable"].as_u64().unwrap() >= 1, "{info}");
}

/// A provider that never answers, a node bootstrapped from it (DHT
/// queries and segments waited for `query_timeout_secs`), and an install
/// through that node, once its download has begun.
fn install_from_a_silent_provider(query_timeout_secs: u64) -> (Node, Node, std::process::Child) {
    let mut provider = Env::new();
    publish_big(&provider);
    let provider = start_faulty(&mut provider, "silent", &[]);
    let client = Env::new();
    client.write_config(format!(
        "[marketplace.p2p]\nquery_timeout_secs = {query_timeout_secs}\n"
    ));
    let node = Node::start_in(client, &[&provider.addr]);
    let install = (node.env.cmd(&["marketplace", "install", "big", "--p2p"]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The node writes the tarball into the install's download directory.
    let downloads = node.home().join("p2p/downloads");
    let started = eventually(Duration::from_secs(60), || {
        let found = walk_files(&downloads)
            .iter()
            .any(|f| f.to_string_lossy().ends_with(".tar.gz"));
        (found, found)
    });
    assert!(started, "the download never started");
    (provider, node, install)
}

/// What `env`'s node knows of `peer` (`p2p peer-info --json`).
fn peer_info(env: &Env, peer: &str) -> serde_json::Value {
    env.json(&["marketplace", "p2p", "peer-info", peer, "--json"])
}

/// Every file under `dir`, at any depth.
fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Two nodes that each `publish` the same package, the second bootstrapped
/// from the first.
fn two_providers(publish: impl Fn(&Env)) -> (Node, Node) {
    let a_env = Env::new();
    publish(&a_env);
    let a = Node::start_in(a_env, &[]);
    let b_env = Env::new();
    publish(&b_env);
    let b = Node::start_in(b_env, &[&a.addr]);
    (a, b)
}

/// A provider node whose serving misbehaves as `fault` says.
fn start_faulty(env: &mut Env, fault: &str, bootstrap: &[&str]) -> Node {
    // The node process inherits the variable through Env::cmd.
    env.extra_env.push(("GGEN_P2P_FAULT".into(), fault.into()));
    Node::start_in(std::mem::replace(env, Env::new()), bootstrap)
}

#[test]
fn what_the_network_cannot_resolve_comes_from_the_file_registry() {
    let node = Node::start(&[]);
    let client = Env::new();
    for (name, version, deps) in [
        ("base", "1.0.0", json!({})),
        ("base", "2.0.0", json!({})),
        ("app", "1.0.0", json!({"base": "^1"})),
    ] {
        let manifest = json!({"name": name, "version": version, "dependencies": deps});
        let dir = node.env.package(
            &format!("{name}-{version}"),
            &manifest,
            &[("README.md", name)],
        );
        node.env
            .ok(&["marketplace", "p2p", "publish", dir.to_str().unwrap()]);
        client.publish(manifest);
    }
    // The DHT holds each package's newest version only: base 1.x is not there.
    let out = install_p2p(&client, "app", &[&node.addr]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        stderr.contains("warning: P2P failed, using local registry")
            && stderr.contains("`base` has no version that satisfies ^1"),
        "{stderr}"
    );
    assert!(installed_source(&client, &out).starts_with("registry+file://"));

    // Only in the local registry: the warning says where it was not found
    // (it said "not in the registry", of the one it was then found in).
    client.publish(json!({"name": "solo", "version": "1.0.0"}));
    let out = install_p2p(&client, "solo", &[&node.addr]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("package `solo` is not in the P2P network's records; check the name"),
        "{stderr}"
    );
}

#[test]
fn without_reachable_peers_install_falls_back_to_the_file_registry() {
    let env = Env::new();
    env.publish(json!({"name": "local-pkg", "version": "1.0.0"}));
    let out = install_p2p(
        &env,
        "local-pkg",
        &["/ip4/127.0.0.1/tcp/9/p2p/12D3KooWEZyhS9abyqGT28vVv2wLdbJ432qHNQvKuyFwTDsVd8aR"],
    );
    assert!(installed_source(&env, &out).starts_with("registry+file://"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning: P2P failed, using local registry")
    );
    // P2P_ENABLED=1 turns it on too; found nowhere is a clear not-found.
    let out = env
        .cmd(&["marketplace", "install", "nowhere"])
        .env("P2P_ENABLED", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("P2P failed"), "{stderr}");
    assert!(
        stderr.contains("not installable from the P2P network")
            && stderr.contains("not in the local registry"),
        "{stderr}"
    );
}

#[test]
fn a_custom_p2p_policy_decides_the_provider_order() {
    // Two honest providers of the very same tarball (deterministic packing).
    let (a, b) = two_providers(publish_big);
    let last = if a.peer_id > b.peer_id { &a } else { &b };

    // The default policy (reputation, then measured latency, then peer id).
    let client = Env::new();
    let out = install_p2p(&client, "big", &[&a.addr, &b.addr]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A policy ordering by descending peer id, twice with fresh clients: always that peer.
    let policy = support::fixture("reverse-policy");
    for client in [Env::new(), Env::new()] {
        let out = install_p2p_with(
            &client,
            &["--p2p-policy-plugin", policy.to_str().unwrap()],
            "big",
            &[&a.addr, &b.addr],
        );
        assert_eq!(
            installed_source(&client, &out),
            format!("p2p+{}", last.peer_id)
        );
    }

    // A policy plugin that is not one is refused with a clear line.
    let registry_plugin = support::fixture("memory-registry");
    let err = client.fails(&[
        "--p2p-policy-plugin",
        registry_plugin.to_str().unwrap(),
        "marketplace",
        "p2p",
        "peer-list",
    ]);
    assert!(
        err.contains("is built for the registry-plugin world, not p2p-policy-plugin"),
        "{err}"
    );
}

#[test]
fn large_tarballs_come_from_several_providers_at_once() {
    // 12 MB: over the 8 MiB threshold for several providers at once.
    let publish_12mb = |env: &Env| publish_payload(env, "large", 12_000_000);
    let (a, b) = two_providers(publish_12mb);
    let client = Env::new();
    let out = install_p2p(&client, "large", &[&a.addr, &b.addr]);
    let source = installed_source(&client, &out);
    assert!(
        source.contains(&a.peer_id) && source.contains(&b.peer_id),
        "{source}"
    );
    assert_eq!(
        client.json(&["marketplace", "verify", "--json"])["ok"],
        true
    );
    for node in [&a, &b] {
        let info = client.json(&["marketplace", "p2p", "peer-info", &node.peer_id, "--json"]);
        assert!(info["successes"].as_u64().unwrap() >= 1, "{info}");
    }

    // A liar among them spoils the shared download; one provider at a time
    // then finds the honest copy, and the parts are compared with it.
    // Providers: a, b and the liar, ordered by reverse-policy (descending
    // peer id; the default policy weighs measured latency first). The liar
    // must not come first, so the one-at-a-time pass never asks it: only
    // the comparison can catch it (it used to go unpunished). Its identity
    // is drawn until it fits; a node not bootstrapped touches no one.
    let policy = support::fixture("reverse-policy");
    let global: &[&str] = &["--p2p-policy-plugin", policy.to_str().unwrap()];
    let liar = loop {
        let mut liar_env = Env::new();
        publish_12mb(&liar_env);
        let liar = start_faulty(&mut liar_env, "corrupt", &[]);
        if liar.peer_id < a.peer_id.clone().max(b.peer_id.clone()) {
            break liar;
        }
    };
    let client = Env::new();
    let out = install_p2p_with(&client, global, "large", &[&liar.addr, &a.addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("P2P failed"), "{stderr}");
    assert!(
        stderr.contains(&format!("peer {} sent wrong parts", liar.peer_id)),
        "{stderr}"
    );
    let source = installed_source(&client, &out);
    assert!(
        [&a, &b]
            .iter()
            .any(|n| source == format!("p2p+{}", n.peer_id)),
        "{source}"
    );
    assert_eq!(
        client.json(&["marketplace", "verify", "--json"])["ok"],
        true
    );
    let info =
        |node: &Node| client.json(&["marketplace", "p2p", "peer-info", &node.peer_id, "--json"]);
    let liar_info = info(&liar);
    assert!(liar_info["failures"].as_u64().unwrap() >= 1, "{liar_info}");
    for honest in [&a, &b] {
        let honest_info = info(honest);
        assert_eq!(honest_info["failures"], 0, "{honest_info}");
    }
}

#[test]
fn damaged_serve_copies_are_replaced_when_the_node_starts() {
    let node = Node::start(&[]);
    p2p_publish(&node.env, "mended", "1.0.0", "served intact again");
    p2p_publish(&node.env, "mended", "1.1.0", "the newest, intact again");
    let serve = node.home().join("p2p/serve");
    let served: Vec<_> = std::fs::read_dir(&serve)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(served.len(), 2, "{served:?}");
    for copy in &served {
        let mut bytes = std::fs::read(copy).unwrap();
        bytes[50] ^= 0xff;
        std::fs::write(copy, bytes).unwrap();
    }
    // Restarted, the node checks its copies (it served damaged ones
    // forever) and exports both afresh from its registry: the newest it
    // announces, the older one a lockfile may pin (it used to be deleted).
    let node = Node::start_in(node.stop(), &[]);
    let count = eventually(Duration::from_secs(30), || {
        let status = node.env.json(&["marketplace", "p2p", "status", "--json"]);
        let n = status["tarballs_served"].as_u64().unwrap();
        (n == 2, n)
    });
    assert_eq!(count, 2);
    for copy in &served {
        let name = copy.file_name().unwrap().to_str().unwrap();
        let hex = support::sha256_hex(&std::fs::read(copy).unwrap());
        assert_eq!(name, format!("{hex}.tar.gz"));
    }
    let client = Env::new();
    let out = install_p2p(&client, "mended", &[&node.addr]);
    assert!(installed_source(&client, &out).starts_with("p2p+"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("P2P failed"));
}

/// `web`@`version` with a templating post-install hook, p2p-published on `node`.
fn p2p_publish_template(node: &Node, version: &str) {
    let dir = node.env.package(
        &format!("web-{version}"),
        &json!({
            "name": "web",
            "version": version,
            "variables": {"project_name": "demo"},
            "hooks": {"post-install": ["builtin:render-templates"]}
        }),
        &[("main.rs.tmpl", "// {{ project_name }} {{version}}\n")],
    );
    node.env
        .ok(&["marketplace", "p2p", "publish", dir.to_str().unwrap()]);
}

#[test]
fn hooks_and_updates_of_packages_from_peers_come_from_peers() {
    let node = Node::start(&[]);
    p2p_publish_template(&node, "1.0.0");
    // The client's own registry never has `web`.
    let client = Env::new();
    let installed = installed_source(&client, &install_p2p(&client, "web", &[&node.addr]));
    assert_eq!(installed, format!("p2p+{}", node.peer_id));
    assert_eq!(
        lock(&client)["packages"][0]["hooks"][0]["outcome"],
        "skipped"
    );

    // approve-hooks fetches it again from where it came from: the peer (the
    // client's registry would answer "not in this registry"). A size edited
    // into the lock by hand does not matter: the provider says it, the
    // checksum decides (the honest peer used to get a failure each time).
    edit_locked(&client, "web", |web| {
        web.insert("size".into(), json!(5));
    });
    let out = client.ok(&[
        "marketplace",
        "approve-hooks",
        "--yes",
        "--var",
        "project_name=approved",
        "--bootstrap",
        &node.addr,
    ]);
    assert!(out.contains("web"), "{out}");
    let main = client.home().join("packages/web/main.rs");
    assert_eq!(
        std::fs::read_to_string(&main).unwrap(),
        "// approved 1.0.0\n"
    );
    let entry = &lock(&client)["packages"][0];
    assert_eq!(entry["hooks"][0]["outcome"], "ran");
    assert_eq!(entry["source"], installed);
    let info = client.json(&["marketplace", "p2p", "peer-info", &node.peer_id, "--json"]);
    assert_eq!(info["failures"], 0, "{info}");

    // Without --p2p, update asks only the registry, and says so.
    p2p_publish_template(&node, "1.1.0");
    let out = client.run(&["marketplace", "update", "web"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("web came from peers") && err.contains("--p2p"),
        "{err}"
    );
    assert_eq!(lock(&client)["packages"][0]["version"], "1.0.0");
    // With --p2p it finds 1.1.0 on the network.
    let report = client.json(&[
        "marketplace",
        "update",
        "web",
        "--p2p",
        "--bootstrap",
        &node.addr,
        "--json",
    ]);
    assert_eq!(report["packages"][0]["version"], "1.1.0", "{report}");
    assert_eq!(
        std::fs::read_to_string(&main).unwrap(),
        "// approved 1.1.0\n",
        "approved hooks run on update, with the values they last ran with"
    );
    assert_eq!(lock(&client)["packages"][0]["source"], installed);
    // --bootstrap means nothing without --p2p.
    let err = client.fails(&["marketplace", "update", "web", "--bootstrap", &node.addr]);
    assert!(err.contains("add --p2p"), "{err}");
    // Reinstalling it from the registry: not there, and the error says where.
    let err = client.fails(&["marketplace", "install", "web", "--force"]);
    assert!(
        err.contains("not in this registry")
            && err.contains("web came from peers (ggen.lock): add --p2p"),
        "{err}"
    );
}

/// `loc`@`version`, with a post-install hook, published into `env`'s own registry.
fn publish_local_with_hook(env: &Env, version: &str) {
    env.publish(json!({
        "name": "loc",
        "version": version,
        "hooks": {"post-install": ["builtin:file-manifest"]}
    }));
}

#[test]
fn mixed_origins_update_and_approve_each_from_where_they_came() {
    let node = Node::start(&[]);
    p2p_publish_template(&node, "1.0.0");
    let client = Env::new();
    installed_source(&client, &install_p2p(&client, "web", &[&node.addr]));
    publish_local_with_hook(&client, "1.0.0");
    client.ok(&["marketplace", "install", "loc"]);
    let sources = |env: &Env| -> Vec<(String, String, String)> {
        (lock(env)["packages"].as_array().unwrap().iter())
            .map(|p| {
                let s = |f: &str| p[f].as_str().unwrap().to_owned();
                (s("name"), s("version"), s("source")[..4].to_owned())
            })
            .collect()
    };

    // Newer versions on both sides: update --p2p moves each from its origin
    // (loc used to stay put: only the network was asked).
    p2p_publish_template(&node, "1.1.0");
    publish_local_with_hook(&client, "1.1.0");
    let report = client.json(&[
        "marketplace",
        "update",
        "--all",
        "--p2p",
        "--bootstrap",
        &node.addr,
        "--json",
    ]);
    let actions: Vec<(&str, &str)> = (report["packages"].as_array().unwrap().iter())
        .map(|p| (p["name"].as_str().unwrap(), p["action"].as_str().unwrap()))
        .collect();
    assert_eq!(actions, [("loc", "update"), ("web", "update")], "{report}");
    let mut got = sources(&client);
    got.sort();
    let own = |n: &str, v: &str, s: &str| (n.to_owned(), v.to_owned(), s.to_owned());
    assert_eq!(
        got,
        [own("loc", "1.1.0", "regi"), own("web", "1.1.0", "p2p+")]
    );

    // The peer moves on to 1.2.0 and goes away: approving fails for web,
    // while loc's approval, whose reinstall committed first, is recorded (it
    // used to be lost).
    p2p_publish_template(&node, "1.2.0");
    let (gone, publisher) = (node.addr.clone(), node.peer_id.clone());
    let node_home = node.stop();
    // update cannot see 1.2.0 now, and says so rather than "newest".
    let update = [
        "marketplace",
        "update",
        "web",
        "--p2p",
        "--bootstrap",
        &gone,
    ];
    let out = client.ok(&update);
    assert!(out.contains("the P2P network could not be asked"), "{out}");
    let report = client.json(&[&update[..], &["--json"]].concat());
    assert!(
        report["p2p_fallback"]
            .as_str()
            .unwrap()
            .contains("bootstrap"),
        "{report}"
    );
    assert_eq!(report["packages"][0]["action"], "unchanged");
    let err = client.fails(&[
        "marketplace",
        "approve-hooks",
        "--yes",
        "--bootstrap",
        &gone,
    ]);
    assert!(err.contains("`web` version 1.1.0"), "{err}");
    let config = std::fs::read_to_string(client.home().join("config.toml")).unwrap();
    assert!(
        config.contains("\"loc\"") && !config.contains("\"web\""),
        "{config}"
    );
    let web = || named(&lock(&client)["packages"], "web").clone();
    assert_eq!(web()["hooks"][0]["outcome"], "skipped");

    // Back, restarted: its DHT record says 1.2.0, but it still serves the
    // 1.1.0 tarball, found by the sha256 ggen.lock pinned, so web's hooks
    // run on the bytes that were installed (it used to answer "not on the
    // P2P network": peers announce only the newest version).
    let node = Node::start_in(node_home, &[]);
    let served = eventually(Duration::from_secs(30), || {
        let status = node.env.json(&["marketplace", "p2p", "status", "--json"]);
        let n = status["tarballs_served"].as_u64().unwrap();
        (n == 3, n)
    });
    assert_eq!(served, 3, "1.0.0, 1.1.0 and 1.2.0");
    // As a lockfile written before ggen recorded sizes: the sha256 is enough.
    edit_locked(&client, "web", |web| {
        web.remove("size").unwrap();
    });
    client.ok(&[
        "marketplace",
        "approve-hooks",
        "--yes",
        "--bootstrap",
        &node.addr,
    ]);
    let entry = web();
    assert_eq!(
        (&entry["version"], &entry["hooks"][0]["outcome"]),
        (&json!("1.1.0"), &json!("ran")),
        "{entry}"
    );
    assert_eq!(entry["source"], format!("p2p+{publisher}"));
    assert_eq!(
        std::fs::read_to_string(client.home().join("packages/web/main.rs")).unwrap(),
        "// demo 1.1.0\n"
    );
}
