//! The node's identity: an Ed25519 key kept in a file, so the node stays the same node (its
//! URL, reputation and history) across restarts. The aggregator binds the node to this key.

use std::path::Path;

use anyhow::Context;
use hero_protocol::signing::VoteSigner;

/// Loads the key from `path`, or creates it there (owner read/write only) when missing.
pub fn load_or_create(path: &Path) -> anyhow::Result<VoteSigner> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let pkcs8 = hex::decode(text.trim())
                .with_context(|| format!("{} is not a hero-node key file", path.display()))?;
            VoteSigner::from_pkcs8(&pkcs8)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("{} is not a hero-node key file", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (signer, pkcs8) = VoteSigner::generate_pkcs8().map_err(anyhow::Error::msg)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            write_private(path, hex::encode(pkcs8).as_bytes())
                .with_context(|| format!("cannot write the key file {}", path.display()))?;
            tracing::info!(key_file = %path.display(), public_key = %signer.public_key_hex(), "created a new node identity key");
            Ok(signer)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the key file {}", path.display())),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_survives_a_restart_and_junk_is_refused() {
        let dir = std::env::temp_dir().join(format!("hero-node-key-{}", rand::random::<u64>()));
        let path = dir.join("sub").join("node.key");
        let first = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.public_key_hex(), again.public_key_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        assert!(load_or_create(&path).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
