//! A registry-plugin component exposed as a `Registry` backend.

use std::io::Read;

use wasmtime::Store;
use wasmtime::component::{HasSelf, ResourceAny};

use super::bindings::exports::ggen::marketplace::registry::Guest;
use super::bindings::ggen::marketplace::types as wit;
use super::bindings::{RegistryPlugin, RegistryPluginPre};
use super::contract::World;
use super::host_api::ByteSource;
use super::sandbox::{self, PluginState};
use super::{PluginEngine, Policy, WasmSource};
use crate::backend::{
    MarketplaceError, Package, PackageVersion, Query, Registry, RegistryMetadata, Result,
    SearchResults,
};

/// Bytes asked of the plugin per tarball read.
const TARBALL_CHUNK: u32 = 256 * 1024;

pub struct WasmRegistry {
    store: Store<PluginState>,
    plugin: RegistryPlugin,
    calls: sandbox::Calls,
}

impl WasmRegistry {
    /// Compile (or load from cache), link and instantiate `source` in a sandbox built from `policy`.
    pub fn load(engine: &PluginEngine, source: &WasmSource, policy: &Policy) -> Result<Self> {
        let pre = sandbox::prepare(
            engine,
            source,
            World::Registry,
            |l| RegistryPlugin::add_to_linker::<_, HasSelf<PluginState>>(l, |s| s),
            RegistryPluginPre::new,
        )?;
        let (store, plugin) =
            sandbox::instantiate(engine, policy, &source.label, |s| pre.instantiate(s))?;
        Ok(Self {
            store,
            plugin,
            calls: sandbox::Calls::new(&source.label, policy.limits),
        })
    }

    /// Run one export call under the deadline; traps become one clear error.
    fn call<T>(
        &mut self,
        func: &str,
        f: impl FnOnce(
            &Guest,
            &mut Store<PluginState>,
        ) -> wasmtime::Result<Result<T, wit::RegistryError>>,
    ) -> Result<T> {
        let plugin = &self.plugin;
        self.calls
            .run(&mut self.store, func, |store| {
                f(plugin.ggen_marketplace_registry(), store)
            })?
            .map_err(|e| from_wit_error(&self.calls.label, e))
    }
}

impl Registry for WasmRegistry {
    fn describe(&self) -> String {
        // Whichever plugin: to the user it is the registry (`--registry`).
        "the registry".into()
    }

    fn search(&mut self, query: &Query) -> Result<SearchResults> {
        let q = wit::Query {
            text: query.text.clone(),
            categories: query.categories.clone(),
            tags: query.tags.clone(),
            limit: query.limit,
            offset: query.offset,
        };
        let r = self.call("search", |g, s| g.call_search(s, &q))?;
        Ok(SearchResults {
            total: r.total,
            hits: r.hits.into_iter().map(from_wit_version).collect(),
        })
    }

    fn get_package(&mut self, name: &str) -> Result<Package> {
        let p = self.call("get-package", |g, s| g.call_get_package(s, name))?;
        Ok(Package {
            name: p.name,
            versions: p.versions.into_iter().map(from_wit_version).collect(),
        })
    }

    fn get_package_version(&mut self, name: &str, version: &str) -> Result<PackageVersion> {
        self.call("get-package-version", |g, s| {
            g.call_get_package_version(s, name, version)
        })
        .map(from_wit_version)
    }

    fn list_versions(&mut self, name: &str) -> Result<Vec<PackageVersion>> {
        let v = self.call("list-versions", |g, s| g.call_list_versions(s, name))?;
        Ok(v.into_iter().map(from_wit_version).collect())
    }

    fn publish(
        &mut self,
        meta: &PackageVersion,
        manifest: &str,
        tarball: Box<dyn Read + Send>,
        force: bool,
    ) -> Result<()> {
        let source = ByteSource {
            reader: tarball,
            size: meta.size,
        };
        let handle = self.store.data_mut().table.push(source).map_err(|e| {
            MarketplaceError::Plugin(format!(
                "cannot hand the tarball to {}: {e}",
                self.calls.label
            ))
        })?;
        let rep = handle.rep();
        let meta = to_wit_version(meta);
        let result = self.call("publish", |g, s| {
            g.call_publish(s, &meta, manifest, handle, force)
        });
        let _ = self
            .store
            .data_mut()
            .table
            .delete(wasmtime::component::Resource::<ByteSource>::new_own(rep));
        result
    }

    fn delete(&mut self, name: &str, version: &str) -> Result<()> {
        self.call("delete", |g, s| g.call_delete(s, name, version))
    }

    fn exists(&mut self, name: &str) -> Result<bool> {
        self.call("exists", |g, s| g.call_exists(s, name))
    }

    fn metadata(&mut self) -> Result<RegistryMetadata> {
        let m = self.call("metadata", |g, s| g.call_metadata(s))?;
        Ok(RegistryMetadata {
            name: m.name,
            description: m.description,
            package_count: m.package_count,
            version_count: m.version_count,
            writable: m.writable,
        })
    }

    fn open_tarball<'a>(&'a mut self, name: &str, version: &str) -> Result<Box<dyn Read + 'a>> {
        let handle = self.call("open-tarball", |g, s| g.call_open_tarball(s, name, version))?;
        Ok(Box::new(TarballStream {
            registry: self,
            handle: Some(handle),
            buf: Vec::new(),
            pos: 0,
        }))
    }
}

/// Reads a plugin's `tarball-reader` resource in bounded chunks.
struct TarballStream<'a> {
    registry: &'a mut WasmRegistry,
    handle: Option<ResourceAny>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for TarballStream<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            let Some(handle) = self.handle else {
                return Ok(0);
            };
            let chunk = self
                .registry
                .call("tarball-reader.read", |g, s| {
                    g.tarball_reader().call_read(s, handle, TARBALL_CHUNK)
                })
                .map_err(std::io::Error::other)?;
            if chunk.len() > TARBALL_CHUNK as usize {
                return Err(std::io::Error::other(format!(
                    "{} returned an oversized chunk",
                    self.registry.calls.label
                )));
            }
            if chunk.is_empty() {
                self.close();
                return Ok(0);
            }
            self.buf = chunk;
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl TarballStream<'_> {
    fn close(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = handle.resource_drop(&mut self.registry.store);
        }
    }
}

impl Drop for TarballStream<'_> {
    fn drop(&mut self) {
        self.close();
    }
}

fn from_wit_error(label: &str, e: wit::RegistryError) -> MarketplaceError {
    use wit::RegistryError as E;
    let clean = |m: String| sandbox::sanitize(&m, 1000);
    match e {
        E::NotFound(m) => MarketplaceError::NotFound(clean(m)),
        E::AlreadyExists(m) => MarketplaceError::AlreadyExists(clean(m)),
        E::Invalid(m) => MarketplaceError::Validation(clean(m)),
        E::Io(m) => MarketplaceError::Storage(format!("{label}: {}", clean(m))),
        E::Security(m) => MarketplaceError::Security(format!("{label}: {}", clean(m))),
        E::Unsupported(m) => MarketplaceError::Unsupported(format!("{label}: {}", clean(m))),
        E::Internal(m) => MarketplaceError::Plugin(format!("{label} failed: {}", clean(m))),
    }
}

pub(super) fn from_wit_version(v: wit::PackageVersion) -> PackageVersion {
    PackageVersion {
        name: v.name,
        version: v.version,
        title: v.title,
        description: v.description,
        categories: v.categories,
        tags: v.tags,
        authors: v.authors,
        license: v.license,
        dependencies: v
            .dependencies
            .into_iter()
            .map(|d| (d.name, d.requirement))
            .collect(),
        checksum: v.checksum,
        published_at: v.published_at,
        size: v.size,
    }
}

pub(super) fn to_wit_version(v: &PackageVersion) -> wit::PackageVersion {
    wit::PackageVersion {
        name: v.name.clone(),
        version: v.version.clone(),
        title: v.title.clone(),
        description: v.description.clone(),
        categories: v.categories.clone(),
        tags: v.tags.clone(),
        authors: v.authors.clone(),
        license: v.license.clone(),
        dependencies: v
            .dependencies
            .iter()
            .map(|(name, requirement)| wit::Dependency {
                name: name.clone(),
                requirement: requirement.clone(),
            })
            .collect(),
        checksum: v.checksum.clone(),
        published_at: v.published_at.clone(),
        size: v.size,
    }
}
