//! The node's persistent Ed25519 identity at `$GGEN_HOME/p2p/keypair`: the
//! same PeerId across restarts. Written atomically, readable by the owner only.

use std::path::Path;

use libp2p::identity::Keypair;

use crate::backend::{MarketplaceError, Result};

pub fn load_or_create(path: &Path) -> Result<Keypair> {
    match std::fs::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| {
            MarketplaceError::Config(format!(
                "{} is not a valid node key ({e}); move it away to create a new identity",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keypair = Keypair::generate_ed25519();
            let bytes = keypair.to_protobuf_encoding().expect("ed25519 keys encode");
            let dir = path.parent().expect("the key lives in a directory");
            let fail = |e| MarketplaceError::storage(format!("cannot write {}", path.display()), e);
            std::fs::create_dir_all(dir).map_err(fail)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                tmp.as_file()
                    .set_permissions(std::fs::Permissions::from_mode(0o600))
                    .map_err(fail)?;
            }
            std::io::Write::write_all(&mut tmp, &bytes).map_err(fail)?;
            tmp.as_file().sync_all().map_err(fail)?;
            // Two first starts racing: the first key written wins, both use it.
            match tmp.persist_noclobber(path) {
                Ok(_) => Ok(keypair),
                Err(_) => load_or_create(path),
            }
        }
        Err(e) => Err(MarketplaceError::storage(
            format!("cannot read {}", path.display()),
            e,
        )),
    }
}
