//! The unified API's one cursor: a walk's state sealed with AES-256-GCM, so the caller holds
//! one opaque string whatever the provider's pagination style, and can neither read it (a
//! provider cursor or page URL stays Gatehouse's business) nor forge, edit or hand it to
//! another caller. The associated data binds each cursor to its caller, connection and model:
//! a cursor opened under any other triple fails authentication.
//!
//! The key is derived from the store's current key (SHA-256 with a label of its own, so the
//! cursor key is never the key that seals tokens), so every process of a fleet that shares the
//! store accepts the cursors the others hand out. A cursor expires [`CURSOR_TTL_SECS`] after its
//! walk started.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gatehouse_adapters::unified::WalkState;
use gatehouse_models::Model;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a walk's cursors stay good, counted from the walk's first page. A day outlives
/// any pause a sync job takes between pages, while the providers' own cursors behind it expire
/// anyway (Salesforce query locators, Ashby's `next_cursor_expired`); and a cursor that leaked
/// into a log is worthless by the next day.
pub(crate) const CURSOR_TTL_SECS: u64 = 24 * 60 * 60;

/// The longest cursor accepted: far above any real one (a provider page URL and a few
/// numbers), so that a caller cannot make Gatehouse decode megabytes.
const MAX_CURSOR_CHARS: usize = 8 * 1024;

const NONCE_LEN: usize = 12;
const VERSION: u8 = 1;

/// What a cursor carries: where the walk stands and what the walk is (its parameters and its
/// progress so far, for the sync state when the walk completes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CursorState {
    pub v: u8,
    /// The adapter's position.
    pub walk: WalkState,
    pub page_size: u32,
    /// RFC 3339, as the first page read it.
    pub modified_since: Option<String>,
    pub include_raw: bool,
    /// Records served by the walk before the page this cursor asks for.
    pub seen: u64,
    /// The highest `remote_modified_at` served so far (RFC 3339, UTC).
    pub high_water: Option<String>,
    /// When the walk's first page was asked (Unix seconds).
    pub started_at: u64,
}

/// Why a cursor is refused. The caller learns only that it is not good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CursorError {
    #[error("the cursor is not one Gatehouse handed to this caller for this connection and model")]
    Invalid,
    #[error("the cursor expired: its walk started more than 24 hours ago; start the walk again")]
    Expired,
}

/// The key cursors are sealed with.
#[derive(Clone)]
pub(crate) struct CursorKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// The cursor key derived from `secret` (the store key's bytes).
    pub fn derive(secret: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"gatehouse-unified-cursor-key:v1:")
            .chain_update(secret)
            .finalize();
        // A SHA-256 digest is always 32 bytes, the AES-256 key length.
        let cipher = Aes256Gcm::new(&digest);
        CursorKey { cipher }
    }

    /// A key of this process only (no store key to derive from): cursors it hands out are
    /// refused by every other process.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::derive(&bytes)
    }

    pub fn seal(&self, bound: &Binding<'_>, state: &CursorState) -> Option<String> {
        let plain = serde_json::to_vec(state).ok()?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = bound.aad();
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens `cursor` for `bound` at `now` (Unix seconds).
    pub fn open(
        &self,
        bound: &Binding<'_>,
        cursor: &str,
        now: u64,
    ) -> Result<CursorState, CursorError> {
        if cursor.len() > MAX_CURSOR_CHARS {
            return Err(CursorError::Invalid);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor.trim())
            .map_err(|_| CursorError::Invalid)?;
        if bytes.len() < NONCE_LEN {
            return Err(CursorError::Invalid);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let aad = bound.aad();
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| CursorError::Invalid)?;
        let state: CursorState =
            serde_json::from_slice(&plain).map_err(|_| CursorError::Invalid)?;
        if state.v != VERSION {
            return Err(CursorError::Invalid);
        }
        if now.saturating_sub(state.started_at) > CURSOR_TTL_SECS {
            return Err(CursorError::Expired);
        }
        Ok(state)
    }
}

impl CursorState {
    pub fn new(walk: WalkState, page_size: u32, started_at: u64) -> Self {
        CursorState {
            v: VERSION,
            walk,
            page_size,
            modified_since: None,
            include_raw: false,
            seen: 0,
            high_water: None,
            started_at,
        }
    }
}

/// Whom a cursor belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binding<'a> {
    pub caller: &'a str,
    pub connection: &'a str,
    pub model: Model,
}

impl Binding<'_> {
    fn aad(&self) -> Vec<u8> {
        // NUL separates the parts: neither a caller id nor a connection id can hold one, so
        // ("a", "bc") and ("ab", "c") bind differently.
        format!(
            "gatehouse-cursor:v{VERSION}\0{}\0{}\0{}",
            self.caller,
            self.connection,
            self.model.label()
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn bound(caller: &str) -> Binding<'_> {
        Binding {
            caller,
            connection: "crm",
            model: Model::Account,
        }
    }

    fn state() -> CursorState {
        let mut state =
            CursorState::new(WalkState(serde_json::json!({"after": "abc"})), 50, NOW - 10);
        state.modified_since = Some("2025-01-01T00:00:00Z".into());
        state.seen = 150;
        state.high_water = Some("2025-06-01T00:00:00Z".into());
        state
    }

    #[test]
    fn a_cursor_opens_for_its_owner_and_hides_the_provider_cursor() {
        let key = CursorKey::derive(b"store key bytes");
        let cursor = key.seal(&bound("svc"), &state()).unwrap();
        assert!(!cursor.contains("abc") && !cursor.contains("after"));
        assert!(cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(key.open(&bound("svc"), &cursor, NOW), Ok(state()));
        // Another process deriving from the same store key opens it too.
        let sibling = CursorKey::derive(b"store key bytes");
        assert_eq!(sibling.open(&bound("svc"), &cursor, NOW), Ok(state()));
    }

    #[test]
    fn another_caller_connection_model_or_key_cannot_open_it() {
        let key = CursorKey::derive(b"k");
        let cursor = key.seal(&bound("svc"), &state()).unwrap();
        let invalid = Err(CursorError::Invalid);
        assert_eq!(key.open(&bound("other"), &cursor, NOW), invalid);
        let elsewhere = Binding {
            connection: "crm2",
            ..bound("svc")
        };
        assert_eq!(key.open(&elsewhere, &cursor, NOW), invalid);
        let contacts = Binding {
            model: Model::Contact,
            ..bound("svc")
        };
        assert_eq!(key.open(&contacts, &cursor, NOW), invalid);
        assert_eq!(
            CursorKey::derive(b"other key").open(&bound("svc"), &cursor, NOW),
            invalid
        );
    }

    #[test]
    fn an_edited_truncated_or_made_up_cursor_is_invalid() {
        let key = CursorKey::derive(b"k");
        let cursor = key.seal(&bound("svc"), &state()).unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        for i in [0, NONCE_LEN, bytes.len() / 2, bytes.len() - 1] {
            bytes[i] ^= 1;
            let edited = URL_SAFE_NO_PAD.encode(&bytes);
            assert_eq!(
                key.open(&bound("svc"), &edited, NOW),
                Err(CursorError::Invalid)
            );
            bytes[i] ^= 1;
        }
        for made_up in [
            "",
            "abc",
            &cursor[..cursor.len() - 2],
            "not base64 !!",
            &"A".repeat(MAX_CURSOR_CHARS + 1),
        ] {
            assert_eq!(
                key.open(&bound("svc"), made_up, NOW),
                Err(CursorError::Invalid),
                "{made_up:.20}"
            );
        }
    }

    #[test]
    fn a_cursor_expires_a_day_after_its_walk_started() {
        let key = CursorKey::derive(b"k");
        let cursor = key.seal(&bound("svc"), &state()).unwrap();
        let started = state().started_at;
        assert!(key
            .open(&bound("svc"), &cursor, started + CURSOR_TTL_SECS)
            .is_ok());
        assert_eq!(
            key.open(&bound("svc"), &cursor, started + CURSOR_TTL_SECS + 1),
            Err(CursorError::Expired)
        );
    }

    #[test]
    fn random_keys_differ_per_process() {
        let cursor = CursorKey::random().seal(&bound("svc"), &state()).unwrap();
        assert_eq!(
            CursorKey::random().open(&bound("svc"), &cursor, NOW),
            Err(CursorError::Invalid)
        );
    }
}
