//! The registry backend trait (the seeds' `Registry`) and its export glue.

use std::cell::RefCell;
use std::io::Read;
use std::marker::PhantomData;

use crate::bindings::exports::ggen::marketplace::registry as wit;
use crate::bindings::host::ByteSource;
use crate::{
    ByteSourceReader, Error, Package, PackageVersion, Query, RegistryMetadata, SearchResults,
};

/// A registry backend. Only [`Registry::list_packages`] is required: every
/// other method has a default built on it (reads) or refuses politely
/// (writes), so a read-only backend is a few lines.
///
/// Functions are associated (no `self`): a plugin instance serves one host
/// process, so state lives in statics or on the filesystem the host grants
/// (`/registry`, `/cache`).
pub trait Registry: 'static {
    /// Every package the backend knows, each with all its versions.
    fn list_packages() -> Result<Vec<Package>, Error>;

    fn search(query: Query) -> Result<SearchResults, Error> {
        Ok(crate::search::search_packages(
            &query,
            &Self::list_packages()?,
        ))
    }

    fn get_package(name: String) -> Result<Package, Error> {
        let mut package = Self::list_packages()?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::not_found(format!("package `{name}` is not in this registry")))?;
        sort_newest_first(&mut package.versions);
        Ok(package)
    }

    fn get_package_version(name: String, version: String) -> Result<PackageVersion, Error> {
        Self::get_package(name.clone())?
            .versions
            .into_iter()
            .find(|v| v.version == version)
            .ok_or_else(|| {
                Error::not_found(format!(
                    "package `{name}` version {version} is not in this registry"
                ))
            })
    }

    fn list_versions(name: String) -> Result<Vec<PackageVersion>, Error> {
        Ok(Self::get_package(name)?.versions)
    }

    fn exists(name: String) -> Result<bool, Error> {
        match Self::get_package(name) {
            Ok(_) => Ok(true),
            Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn metadata() -> Result<RegistryMetadata, Error> {
        let packages = Self::list_packages()?;
        Ok(RegistryMetadata {
            name: "custom registry".into(),
            description: String::new(),
            package_count: packages.len() as u64,
            version_count: packages.iter().map(|p| p.versions.len() as u64).sum(),
            writable: false,
        })
    }

    /// Store a version; `tarball` streams the archive whose digest is `meta.checksum`.
    fn publish(
        meta: PackageVersion,
        manifest: String,
        tarball: &mut dyn Read,
        force: bool,
    ) -> Result<(), Error> {
        let _ = (meta, manifest, tarball, force);
        Err(Error::Unsupported(
            "this registry is read-only: publish is not supported".into(),
        ))
    }

    fn delete(name: String, version: String) -> Result<(), Error> {
        let _ = (name, version);
        Err(Error::Unsupported(
            "this registry is read-only: delete is not supported".into(),
        ))
    }

    /// The tarball of one version, read in chunks by the host.
    fn open_tarball(name: String, version: String) -> Result<Box<dyn Read>, Error> {
        let _ = (name, version);
        Err(Error::Unsupported(
            "this registry does not serve tarballs".into(),
        ))
    }
}

/// Sort versions newest first by semver (unparseable ones last).
pub fn sort_newest_first(versions: &mut [PackageVersion]) {
    versions.sort_by(|a, b| {
        let pa = semver::Version::parse(&a.version).ok();
        let pb = semver::Version::parse(&b.version).ok();
        pb.cmp(&pa)
    });
}

/// Adapts a [`Registry`] to the generated WIT bindings; used by [`crate::export_registry!`].
#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

#[doc(hidden)]
pub struct Reader(RefCell<Box<dyn Read>>);

impl wit::GuestTarballReader for Reader {
    fn read(&self, max: u32) -> Result<Vec<u8>, Error> {
        let mut buf = vec![0u8; max.min(1 << 20) as usize];
        let n = self.0.borrow_mut().read(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
}

impl<T: Registry> wit::Guest for Export<T> {
    type TarballReader = Reader;

    fn search(query: Query) -> Result<SearchResults, Error> {
        T::search(query)
    }
    fn get_package(name: String) -> Result<Package, Error> {
        T::get_package(name)
    }
    fn get_package_version(name: String, version: String) -> Result<PackageVersion, Error> {
        T::get_package_version(name, version)
    }
    fn list_versions(name: String) -> Result<Vec<PackageVersion>, Error> {
        T::list_versions(name)
    }
    fn publish(
        meta: PackageVersion,
        manifest: String,
        tarball: &ByteSource,
        force: bool,
    ) -> Result<(), Error> {
        T::publish(meta, manifest, &mut ByteSourceReader::new(tarball), force)
    }
    fn delete(name: String, version: String) -> Result<(), Error> {
        T::delete(name, version)
    }
    fn exists(name: String) -> Result<bool, Error> {
        T::exists(name)
    }
    fn metadata() -> Result<RegistryMetadata, Error> {
        T::metadata()
    }
    fn open_tarball(name: String, version: String) -> Result<wit::TarballReader, Error> {
        Ok(wit::TarballReader::new(Reader(RefCell::new(
            T::open_tarball(name, version)?,
        ))))
    }
}

/// Export a [`Registry`] implementation as this component's registry backend
/// and stamp the contract version into it.
///
/// ```ignore
/// struct Mine;
/// impl ggen_plugin_sdk::Registry for Mine { /* ... */ }
/// ggen_plugin_sdk::export_registry!(Mine);
/// ```
#[macro_export]
macro_rules! export_registry {
    ($backend:ty) => {
        $crate::export_registry!($backend, stamp = $crate::REGISTRY_STAMP);
    };
    // Hidden form: lets the host's tests build a plugin stamped for another contract.
    ($backend:ty, stamp = $stamp:expr) => {
        type __GgenRegistryExport = $crate::registry::Export<$backend>;
        $crate::bindings::__export_registry_world!(__GgenRegistryExport with_types_in $crate::bindings);

        const __GGEN_STAMP_LEN: usize = $stamp.len();
        #[used]
        #[unsafe(link_section = "ggen:contract")]
        static __GGEN_CONTRACT_STAMP: [u8; __GGEN_STAMP_LEN] = $stamp;
    };
}
