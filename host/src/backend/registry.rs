//! The backend interface the domain works against (the seeds' `Registry`
//! trait). The plugin runtime implements it for any registry-plugin component.

use std::io::Read;

use super::error::Result;
use super::model::{Package, PackageVersion, Query, RegistryMetadata, SearchResults};

/// What finds a registry's packages by words, for "check the name" hints.
pub const SEARCH_COMMAND: &str = "ggen marketplace search WORDS";

pub trait Registry {
    /// Where its packages are, as a message names it (`the registry`, `the
    /// P2P network's records`): "package `x` is not in the registry".
    fn describe(&self) -> String;
    /// The command that finds its packages by words, for "check the name".
    fn search_command(&self) -> &'static str {
        SEARCH_COMMAND
    }
    fn search(&mut self, query: &Query) -> Result<SearchResults>;
    fn get_package(&mut self, name: &str) -> Result<Package>;
    fn get_package_version(&mut self, name: &str, version: &str) -> Result<PackageVersion>;
    fn list_versions(&mut self, name: &str) -> Result<Vec<PackageVersion>>;
    /// `manifest` is the package.json as published; `tarball` streams the archive.
    fn publish(
        &mut self,
        meta: &PackageVersion,
        manifest: &str,
        tarball: Box<dyn Read + Send>,
        force: bool,
    ) -> Result<()>;
    fn delete(&mut self, name: &str, version: &str) -> Result<()>;
    fn exists(&mut self, name: &str) -> Result<bool>;
    fn metadata(&mut self) -> Result<RegistryMetadata>;
    /// The tarball of a version, streamed in bounded chunks.
    fn open_tarball<'a>(&'a mut self, name: &str, version: &str) -> Result<Box<dyn Read + 'a>>;
    /// Where a package fetched through this backend really came from, when
    /// that differs per package (the P2P network: the peer); recorded in ggen.lock.
    fn resolved_source(&self, name: &str) -> Option<String> {
        let _ = name;
        None
    }
}
