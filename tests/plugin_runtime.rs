//! The plugin runtime as a library: tarball streaming, the compiled-component
//! cache, and a host that survives a plugin's crash.

mod support;

use std::io::Read;
use std::time::Duration;

use ggen::backend::plugin::{Limits, PluginEngine, Policy, WasmRegistry, WasmSource, embedded};
use ggen::backend::{MarketplaceError, Query, Registry};
use ggen::domain::publish::{PublishOptions, prepare, publish};

const LIMITS: Limits = Limits {
    deadline: Duration::from_secs(5),
    memory_bytes: 256 << 20,
};

fn file_registry(home: &std::path::Path) -> WasmRegistry {
    let engine = PluginEngine::new(home.join("cache")).unwrap();
    let policy = Policy::registry(home.join("registry"), home.join("cache/data/file"), LIMITS);
    WasmRegistry::load(
        &engine,
        &WasmSource::embedded(&embedded::FILE_REGISTRY),
        &policy,
    )
    .unwrap()
}

fn query(text: &str) -> Query {
    Query {
        text: text.into(),
        categories: vec![],
        tags: vec![],
        limit: 10,
        offset: 0,
    }
}

#[test]
fn tarballs_stream_back_byte_for_byte() {
    let home = tempfile::tempdir().unwrap();
    let pkg = tempfile::tempdir().unwrap();
    std::fs::write(
        pkg.path().join("package.json"),
        r#"{"name":"big","version":"1.0.0"}"#,
    )
    .unwrap();
    // Incompressible content well over one chunk.
    let noise = support::noise(3_000_000, 0x1234_5678);
    std::fs::write(pkg.path().join("noise.bin"), &noise).unwrap();
    let mut registry = file_registry(home.path());
    let report = publish(
        &mut registry,
        &prepare(pkg.path()).unwrap(),
        &PublishOptions {
            dry_run: false,
            force: false,
        },
        || Ok(()),
    )
    .unwrap();
    assert!(report.size > 2_000_000);

    let mut streamed = Vec::new();
    registry
        .open_tarball("big", "1.0.0")
        .unwrap()
        .read_to_end(&mut streamed)
        .unwrap();
    let stored = std::fs::read(home.path().join("registry/big/1.0.0/big-1.0.0.tar.gz")).unwrap();
    assert_eq!(streamed.len(), stored.len());
    assert!(streamed == stored);
    assert!(matches!(
        registry.open_tarball("big", "9.9.9"),
        Err(MarketplaceError::NotFound(_))
    ));
    assert!(registry.exists("big").unwrap());
    assert!(!registry.exists("small").unwrap());
    let meta = registry.metadata().unwrap();
    assert_eq!(
        (meta.package_count, meta.version_count, meta.writable),
        (1, 1, true)
    );
    registry.delete("big", "1.0.0").unwrap();
    assert!(!registry.exists("big").unwrap());
    assert!(!home.path().join("registry/big").exists());
}

#[test]
fn compiled_components_are_cached_and_damage_is_survived() {
    let home = tempfile::tempdir().unwrap();
    file_registry(home.path());
    let plugins = home.path().join("cache/plugins");
    let entries: Vec<_> = std::fs::read_dir(&plugins)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1);
    let cached = &entries[0];
    let stamp = std::fs::metadata(cached).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    file_registry(home.path()).search(&query("x")).unwrap();
    assert_eq!(
        std::fs::metadata(cached).unwrap().modified().unwrap(),
        stamp,
        "a warm load must not recompile"
    );
    // A damaged cache entry is recompiled, not trusted.
    std::fs::write(cached, b"garbage").unwrap();
    file_registry(home.path()).search(&query("x")).unwrap();
    assert!(std::fs::metadata(cached).unwrap().len() > 1000);
    // Damage that leaves the file's layout whole (its code overwritten
    // with trap instructions) crashed the process natively: it is found
    // by the seal and recompiled.
    let sound = std::fs::read(cached).unwrap();
    let mut damaged = sound.clone();
    let middle = damaged.len() / 2;
    damaged[middle..middle + 4096].fill(0xcc);
    std::fs::write(cached, &damaged).unwrap();
    file_registry(home.path()).search(&query("x")).unwrap();
    assert_eq!(std::fs::read(cached).unwrap(), sound);
    // Without its seal, an entry is compiled again too.
    let seal = plugins.join(format!(
        "{}.seal",
        cached.file_name().unwrap().to_str().unwrap()
    ));
    std::fs::remove_file(&seal).unwrap();
    file_registry(home.path()).search(&query("x")).unwrap();
    assert!(std::fs::metadata(cached).unwrap().modified().unwrap() > stamp);
    // A FIFO in the seal's place is not waited on.
    std::fs::remove_file(&seal).unwrap();
    support::mkfifo(&seal);
    file_registry(home.path()).search(&query("x")).unwrap();
    assert!(std::fs::metadata(&seal).unwrap().is_file());
}

/// Compiled entries and plugins' data directories unused for 30 days go
/// when a compile adds an entry; what is in use is marked so (at most once
/// a day), and nothing else in the cache is touched.
#[test]
fn a_compile_clears_out_what_went_unused_for_30_days() {
    use std::path::{Path, PathBuf};
    use std::time::SystemTime;
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("cache");
    let days_ago = |n: u64| SystemTime::now() - Duration::from_secs(n * 86_400);
    let age = |path: &Path, days: u64| {
        let file = std::fs::File::open(path).unwrap();
        file.set_modified(days_ago(days)).unwrap();
    };
    let plant = |rel: &str, days: u64, dir: bool| -> PathBuf {
        let path = cache.join(rel);
        if dir {
            std::fs::create_dir_all(path.join("inside")).unwrap();
            std::fs::write(path.join("inside/search-index.bin"), b"old").unwrap();
        } else {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"old").unwrap();
        }
        age(&path, days);
        path
    };
    let sha = |c: &str| c.repeat(32);
    let old_entry = plant(
        &format!("plugins/{}-0000000000000001.cwasm", sha("0")),
        31,
        false,
    );
    let recent_entry = plant(
        &format!("plugins/{}-0000000000000001.cwasm", sha("1")),
        29,
        false,
    );
    let old_data = plant("data/file-registry-0000000000000000", 31, true);
    let recent_data = plant("data/file-registry-1111111111111111", 29, true);
    // Only what ggen names so: the rest is not its to remove.
    let not_ours = [
        plant("plugins/notes.txt", 90, false),
        plant("plugins/mine.cwasm", 90, false),
        plant("data/notes", 90, true),
    ];
    file_registry(home.path()).search(&query("x")).unwrap();
    assert!(!old_entry.exists() && !old_data.exists());
    assert!(recent_entry.exists() && recent_data.exists());
    assert!(not_ours.iter().all(|p| p.exists()));

    // In use: the compiled entry and the data directory are marked so
    // (the entry, not its seal: which of the two a directory listing gave
    // first made this test fail now and then).
    let compiled = (std::fs::read_dir(cache.join("plugins")).unwrap().flatten())
        .map(|e| e.path())
        .find(|p| {
            *p != recent_entry
                && !not_ours.contains(p)
                && p.extension().is_some_and(|e| e == "cwasm")
        })
        .unwrap();
    let data = cache.join("data/file");
    for path in [&compiled, &data] {
        age(path, 2);
    }
    file_registry(home.path()).search(&query("x")).unwrap();
    for path in [&compiled, &data] {
        let modified = std::fs::metadata(path).unwrap().modified().unwrap();
        let age = modified.elapsed().unwrap_or_default();
        assert!(
            age < Duration::from_secs(3600),
            "{} not marked as used",
            path.display()
        );
    }
    // A mark less than a day old is left as it is: no write per use.
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for path in [&compiled, &data] {
        std::fs::File::open(path)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    }
    file_registry(home.path()).search(&query("x")).unwrap();
    for path in [&compiled, &data] {
        let modified = std::fs::metadata(path).unwrap().modified().unwrap();
        assert_eq!(modified, hour_ago, "{} marked again", path.display());
    }
    // Only a compile clears out: a warm load leaves the unused entry.
    age(&recent_entry, 40);
    file_registry(home.path());
    assert!(recent_entry.exists());
}

/// A `cache/data` or `cache/plugins` that links elsewhere is not followed:
/// what lies there is not the cache's to remove.
#[test]
fn the_cache_clears_out_nothing_through_a_link() {
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let cache = home.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let month_ago = std::time::SystemTime::now() - Duration::from_secs(40 * 86_400);
    let mut kept = Vec::new();
    for (dir, name) in [("data", "file-registry-0000000000000000"), ("plugins", "")] {
        let target = elsewhere.path().join(dir);
        std::fs::create_dir_all(&target).unwrap();
        let path = match name {
            "" => target.join(format!("{}-0000000000000001.cwasm", "0".repeat(32))),
            name => target.join(name),
        };
        match name {
            "" => std::fs::write(&path, b"precious").unwrap(),
            _ => std::fs::create_dir(&path).unwrap(),
        }
        std::fs::File::open(&path)
            .unwrap()
            .set_modified(month_ago)
            .unwrap();
        std::os::unix::fs::symlink(&target, cache.join(dir)).unwrap();
        kept.push(path);
    }
    file_registry(home.path()).search(&query("x")).unwrap();
    for path in &kept {
        assert!(
            path.exists(),
            "{} was removed through a link",
            path.display()
        );
    }
}

#[test]
fn host_outlives_a_crashing_plugin() {
    let home = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new(home.path().join("cache")).unwrap();
    let hostile = WasmSource::from_file(&support::fixture("hostile")).unwrap();
    let policy = Policy::registry(home.path().join("r"), home.path().join("c"), LIMITS);
    let mut plugin = WasmRegistry::load(&engine, &hostile, &policy).unwrap();
    let err = plugin.search(&query("trap")).unwrap_err();
    assert!(err.to_string().contains("hostile plugin gave up"), "{err}");
    // The trapped instance is not entered again...
    let again = plugin.search(&query("env")).unwrap_err();
    assert!(again.to_string().contains("was stopped earlier"), "{again}");
    // ...but the process and engine carry on with fresh instances.
    let mut fresh = WasmRegistry::load(&engine, &hostile, &policy).unwrap();
    assert!(
        fresh
            .search(&query("env"))
            .unwrap_err()
            .to_string()
            .contains("no environment")
    );
    assert_eq!(
        file_registry(home.path())
            .search(&query("x"))
            .unwrap()
            .total,
        0
    );
}

#[test]
fn fetched_tarballs_are_verified_against_the_registry_checksum() {
    use ggen::domain::fetch::fetch_verified;
    use ggen::domain::progress::Silent;
    let home = tempfile::tempdir().unwrap();
    let pkg = tempfile::tempdir().unwrap();
    std::fs::write(
        pkg.path().join("package.json"),
        r#"{"name":"checked","version":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(pkg.path().join("data.txt"), "payload ".repeat(10_000)).unwrap();
    let mut registry = file_registry(home.path());
    publish(
        &mut registry,
        &prepare(pkg.path()).unwrap(),
        &PublishOptions {
            dry_run: false,
            force: false,
        },
        || Ok(()),
    )
    .unwrap();
    let meta = registry.get_package_version("checked", "1.0.0").unwrap();
    let tmp = home.path().join("tmp");

    let mut ok = fetch_verified(&mut registry, &meta, &tmp, 1 << 30, &Silent).unwrap();
    let mut bytes = Vec::new();
    ok.file.read_to_end(&mut bytes).unwrap();
    let stored = home
        .path()
        .join("registry/checked/1.0.0/checked-1.0.0.tar.gz");
    assert_eq!(bytes, std::fs::read(&stored).unwrap());

    // Too big for the limit.
    let err = fetch_verified(&mut registry, &meta, &tmp, 100, &Silent)
        .unwrap_err()
        .to_string();
    assert!(err.contains("larger than the 100-byte limit"), "{err}");

    // A tarball altered inside the registry is refused, naming both digests.
    let mut altered = std::fs::read(&stored).unwrap();
    let mid = altered.len() / 2;
    altered[mid] ^= 0xff;
    std::fs::write(&stored, &altered).unwrap();
    let err = fetch_verified(&mut registry, &meta, &tmp, 1 << 30, &Silent).unwrap_err();
    assert!(matches!(err, MarketplaceError::Security(_)));
    let text = err.to_string();
    assert!(
        text.contains("checksum mismatch for checked@1.0.0")
            && text.contains(&meta.checksum)
            && text.matches("sha256-").count() == 2,
        "{text}"
    );

    // Metadata without a usable checksum is not trusted either.
    let mut unverifiable = meta.clone();
    unverifiable.checksum = "sha256-deadbeef".into();
    assert!(
        fetch_verified(&mut registry, &unverifiable, &tmp, 1 << 30, &Silent)
            .unwrap_err()
            .to_string()
            .contains("malformed")
    );
    // Temporary files never outlive a fetch.
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}
