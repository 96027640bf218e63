//! The component export: every call runs against the sandbox's preopens.

use ggen_plugin_sdk::{Error, Package, PackageVersion, Query, RegistryMetadata, SearchResults};
use std::io::Read;

use crate::FileRegistry;

struct Plugin;

fn registry() -> FileRegistry {
    FileRegistry::new("/registry", "/cache")
}

impl ggen_plugin_sdk::Registry for Plugin {
    fn list_packages() -> Result<Vec<Package>, Error> {
        registry().list_packages()
    }
    fn search(query: Query) -> Result<SearchResults, Error> {
        registry().search(&query)
    }
    fn get_package(name: String) -> Result<Package, Error> {
        registry().get_package(&name)
    }
    fn metadata() -> Result<RegistryMetadata, Error> {
        registry().metadata()
    }
    fn get_package_version(name: String, version: String) -> Result<PackageVersion, Error> {
        registry().get_package_version(&name, &version)
    }
    fn publish(
        meta: PackageVersion,
        manifest: String,
        tarball: &mut dyn Read,
        force: bool,
    ) -> Result<(), Error> {
        registry().publish(&meta, &manifest, tarball, force)
    }
    fn delete(name: String, version: String) -> Result<(), Error> {
        registry().delete(&name, &version)
    }
    fn open_tarball(name: String, version: String) -> Result<Box<dyn Read>, Error> {
        registry().open_tarball(&name, &version)
    }
}

ggen_plugin_sdk::export_registry!(Plugin);
