//! Encryption at rest for tokens: AES-256-GCM with a random 96-bit nonce per value.
//!
//! Every stored record names the key that sealed it (`key_id`, a fingerprint of the key, not
//! the key), so a new key can be introduced while old records are still readable and
//! `gatehouse keys rotate` can re-seal them. The associated data binds each ciphertext to its
//! connection and field, so a ciphertext copied into another row or column fails to open.

use crate::{data_dir, Secret, StoreConfig};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const NONCE_LEN: usize = 12;

/// One AES-256 key and its public id.
#[derive(Clone)]
pub struct StoreKey {
    id: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreKey({})", self.id)
    }
}

impl StoreKey {
    /// A key from its base64 text (32 bytes once decoded).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| "store key is not valid base64".to_owned())?;
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != 32 {
            return Err(format!(
                "store key must be 32 bytes (AES-256), got {}",
                bytes.len()
            ));
        }
        let cipher = Aes256Gcm::new_from_slice(bytes)
            .map_err(|_| "store key has the wrong length".to_owned())?;
        // A fingerprint, not the key: identifies which key sealed a record.
        let digest = Sha256::new()
            .chain_update(b"gatehouse-store-key-id:")
            .chain_update(bytes)
            .finalize();
        Ok(Self {
            id: hex::encode(&digest[..8]),
            cipher,
        })
    }

    /// A fresh random key, as base64 (for `gatehouse keys rotate` and the dev key file).
    pub fn generate_base64() -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The key that seals new records plus older keys that may still open existing ones.
#[derive(Clone, Debug)]
pub struct KeyRing {
    current: StoreKey,
    previous: Vec<StoreKey>,
}

fn aad(connection: &str, field: &str) -> Vec<u8> {
    format!("gatehouse:v1:{connection}:{field}").into_bytes()
}

impl KeyRing {
    pub fn new(current: StoreKey, previous: Vec<StoreKey>) -> Self {
        Self { current, previous }
    }

    /// The id stored with records sealed now.
    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    /// A ring that seals with `new` and still opens everything this ring opens.
    pub fn rotated_to(&self, new: StoreKey) -> Self {
        let mut previous = vec![self.current.clone()];
        previous.extend(self.previous.iter().cloned());
        Self {
            current: new,
            previous,
        }
    }

    pub fn seal(&self, connection: &str, field: &str, value: &Secret) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = aad(connection, field);
        let sealed = self
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value.expose().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| "encryption failed".to_owned())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(
        &self,
        key_id: &str,
        connection: &str,
        field: &str,
        blob: &[u8],
    ) -> Result<Secret, String> {
        let key = std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| k.id == key_id)
            .ok_or_else(|| {
                format!(
                    "record for {connection} is sealed with key {key_id}, which is not configured"
                )
            })?;
        if blob.len() < NONCE_LEN {
            return Err(format!("stored {field} of {connection} is truncated"));
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let aad = aad(connection, field);
        let plain = key
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                format!(
                    "stored {field} of {connection} fails authentication (wrong key or tampered)"
                )
            })?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| format!("stored {field} of {connection} is not UTF-8"))
    }
}

/// Why the store keys could not be loaded. The text names the variable or file, never a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

/// Loads the store keys from `[store]`: the current key from `key_env` or `key_file`, previous
/// keys from `previous_key_env` / `previous_key_file`. With no key configured and
/// `allow_generate` (the embedded store), a key is generated into `data_dir/store.key` (0600).
pub fn load_key_ring(config: &StoreConfig, allow_generate: bool) -> Result<KeyRing, KeyError> {
    let bad = KeyError;
    let current = match (std::env::var(&config.key_env).ok().filter(|v| !v.trim().is_empty()), &config.key_file) {
        (Some(text), _) => StoreKey::from_base64(&text).map_err(|e| bad(format!("{}: {e}", config.key_env)))?,
        (None, Some(path)) => read_key_file(path).map_err(bad)?,
        (None, None) if allow_generate => generated_dev_key(&config.data_dir).map_err(bad)?,
        (None, None) => {
            return Err(bad(format!(
                "no store key: set {} (base64 of 32 random bytes) or [store] key_file; a fleet must share one key",
                config.key_env
            )))
        }
    };
    let mut previous = Vec::new();
    if let Some(name) = &config.previous_key_env {
        if let Some(text) = std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
            previous.push(StoreKey::from_base64(&text).map_err(|e| bad(format!("{name}: {e}")))?);
        }
    }
    if let Some(path) = &config.previous_key_file {
        previous.push(read_key_file(path).map_err(bad)?);
    }
    Ok(KeyRing::new(current, previous))
}

fn read_key_file(path: &Path) -> Result<StoreKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
    StoreKey::from_base64(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Dev/demo convenience: a per-machine key next to the database. Anyone who can read the data
/// directory can read this key, hence the warning.
fn generated_dev_key(data_dir: &Path) -> Result<StoreKey, String> {
    let path: PathBuf = data_dir.join("store.key");
    if path.exists() {
        // A key file written before key files were created private is narrowed now.
        data_dir::make_private(&path);
        return read_key_file(&path);
    }
    data_dir::create_private_dir(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let text = StoreKey::generate_base64();
    write_private_file(&path, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::warn!(
        key_file = %path.display(),
        "no store key configured: generated one for this machine; set GATEHOUSE_STORE_KEY or [store] key_file in production"
    );
    StoreKey::from_base64(&text)
}

fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = data_dir::private_options()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StoreKey {
        StoreKey::from_base64(&StoreKey::generate_base64()).unwrap()
    }

    #[test]
    fn seal_and_open_round_trip_without_plaintext_in_the_blob() {
        let ring = KeyRing::new(key(), vec![]);
        let secret = Secret::new("refresh-token-abcdef");
        let blob = ring.seal("sf", "refresh_token", &secret).unwrap();
        assert!(!blob.windows(7).any(|w| w == b"refresh"));
        let opened = ring
            .open(ring.current_id(), "sf", "refresh_token", &blob)
            .unwrap();
        assert_eq!(opened.expose(), "refresh-token-abcdef");
    }

    #[test]
    fn ciphertext_is_bound_to_connection_and_field() {
        let ring = KeyRing::new(key(), vec![]);
        let blob = ring.seal("sf", "refresh_token", &Secret::new("x")).unwrap();
        assert!(ring
            .open(ring.current_id(), "other", "refresh_token", &blob)
            .is_err());
        assert!(ring
            .open(ring.current_id(), "sf", "access_token", &blob)
            .is_err());
        let mut tampered = blob.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(ring
            .open(ring.current_id(), "sf", "refresh_token", &tampered)
            .is_err());
        assert!(ring
            .open(ring.current_id(), "sf", "refresh_token", &blob[..5])
            .is_err());
    }

    #[test]
    fn rotated_ring_opens_old_records_and_seals_with_the_new_key() {
        let old = KeyRing::new(key(), vec![]);
        let blob = old.seal("sf", "access_token", &Secret::new("tok")).unwrap();
        let new = old.rotated_to(key());
        assert_ne!(new.current_id(), old.current_id());
        assert_eq!(
            new.open(old.current_id(), "sf", "access_token", &blob)
                .unwrap()
                .expose(),
            "tok"
        );
        let resealed = new.seal("sf", "access_token", &Secret::new("tok")).unwrap();
        let err = old
            .open(new.current_id(), "sf", "access_token", &resealed)
            .unwrap_err();
        assert!(err.contains("not configured"), "{err}");
    }

    #[test]
    fn wrong_length_keys_are_refused() {
        let short = base64::engine::general_purpose::STANDARD.encode([0u8; 16]);
        assert!(StoreKey::from_base64(&short).is_err());
        assert!(StoreKey::from_base64("not base64!!").is_err());
    }

    #[test]
    fn dev_key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let first = generated_dev_key(dir.path()).unwrap();
        let second = generated_dev_key(dir.path()).unwrap();
        assert_eq!(first.id(), second.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("store.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
