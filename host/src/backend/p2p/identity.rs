//! The node's persistent Ed25519 identity at `$GGEN_HOME/p2p/keypair`: the
//! same PeerId across restarts. Written atomically, readable by the owner only.

use std::path::Path;

use libp2p::identity::Keypair;

use crate::backend::{MarketplaceError, Result, atomic};

pub fn load_or_create(path: &Path) -> Result<Keypair> {
    let dir = path.parent().expect("the key lives in a directory");
    match std::fs::read(path) {
        // Copies of the key that a first start killed mid-write left
        // behind go once they are an hour old (atomic::temp_for).
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes)
            .inspect(|_| atomic::remove_abandoned_temps(path, dir))
            .map_err(|e| {
                MarketplaceError::Config(format!(
                    "{} is not a valid node key ({e}); move it away to create a new identity",
                    path.display()
                ))
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keypair = Keypair::generate_ed25519();
            let bytes = keypair.to_protobuf_encoding().expect("ed25519 keys encode");
            let fail = |e| MarketplaceError::storage(format!("cannot write {}", path.display()), e);
            std::fs::create_dir_all(dir).map_err(fail)?;
            let mut tmp = atomic::temp_for(path, dir, 0o600).map_err(fail)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_of_the_key_left_by_a_killed_first_start_go_once_an_hour_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keypair");
        let first = load_or_create(&path).unwrap();
        let old = dir.path().join(".keypair.AbC123.tmp");
        let young = dir.path().join(".keypair.XyZ789.tmp");
        for leftover in [&old, &young] {
            std::fs::write(leftover, b"a copy of the key").unwrap();
        }
        atomic::abandon(&old);
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.public(), again.public());
        assert!(!old.exists(), "an abandoned copy of the key stayed");
        // A younger one may be a first start still writing.
        assert!(young.exists());
    }
}
