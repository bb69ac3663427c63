//! `[admin]`: who may use the admin port. Tokens are hashed like caller tokens (`gatehouse
//! hash-token`) and carry a role; a few read-only paths answer without one.
//!
//! ```toml
//! [admin]
//! public_paths = ["/healthz", "/readyz", "/metrics"]   # the default; [] locks them too
//!
//! [[admin.tokens]]
//! id = "sre-oncall"
//! token_sha256 = "..."        # gatehouse hash-token
//! role = "admin"              # admin | read
//! ```

use serde::Deserialize;
use std::collections::HashMap;

/// The `[admin]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Who may call the admin port (`[[admin.tokens]]`). None: only `public_paths` answer.
    pub tokens: Vec<AdminTokenConfig>,
    /// Paths that answer without a token, matched exactly (`/healthz`, not `/healthz/`).
    pub public_paths: Vec<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            public_paths: DEFAULT_PUBLIC_PATHS
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
        }
    }
}

/// What probes and scrapers need, and nothing that names a connection's state in detail
/// beyond `/metrics`.
pub const DEFAULT_PUBLIC_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// One `[[admin.tokens]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenConfig {
    /// Names the token in logs and in the connect flow's records; also the user name of the
    /// HTTP Basic form. `[A-Za-z0-9._-]`, at most 64 characters.
    pub id: String,
    /// Hex SHA-256 of the token (`gatehouse hash-token`); the token itself is never configured.
    pub token_sha256: String,
    /// `admin` or `read`.
    pub role: String,
}

/// What a token may do on the admin port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AdminRole {
    /// Pages that only show: the dashboard, `/status`, any other GET.
    Read,
    /// Everything, including the connect flow and anything that changes state.
    Admin,
}

impl AdminRole {
    pub fn name(self) -> &'static str {
        match self {
            AdminRole::Read => "read",
            AdminRole::Admin => "admin",
        }
    }
}

/// A checked `[[admin.tokens]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminToken {
    pub id: String,
    pub sha256: [u8; 32],
    pub role: AdminRole,
}

/// A problem in `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminConfigError {
    #[error("admin token id {0:?} must be 1 to 64 characters of [A-Za-z0-9._-]")]
    InvalidId(String),
    #[error("duplicate admin token id {0:?}")]
    DuplicateId(String),
    #[error("unknown role {0:?}: use \"admin\" or \"read\"")]
    UnknownRole(String),
    #[error("token_sha256 must be 64 hex characters, the output of `gatehouse hash-token`")]
    MalformedHash,
    #[error("the same token as admin.tokens[{0}]: each admin token must be distinct")]
    SharedToken(usize),
    #[error("public path {0:?} must start with / and have no query or fragment")]
    InvalidPublicPath(String),
    #[error("the connect flow ({0:?}) needs an admin token and cannot be public")]
    PublicConnectPath(String),
}

impl AdminConfig {
    /// The checked tokens, or every problem with its key (`admin.tokens[1].role`).
    pub fn tokens(&self) -> Result<Vec<AdminToken>, Vec<(String, AdminConfigError)>> {
        let mut errors = Vec::new();
        let mut tokens = Vec::new();
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut hashes: HashMap<[u8; 32], usize> = HashMap::new();
        for (i, token) in self.tokens.iter().enumerate() {
            let at = |field: &str| format!("admin.tokens[{i}].{field}");
            let id_ok = !token.id.is_empty()
                && token.id.len() <= 64
                && token
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !id_ok {
                errors.push((at("id"), AdminConfigError::InvalidId(token.id.clone())));
            } else if ids.insert(&token.id, i).is_some() {
                errors.push((at("id"), AdminConfigError::DuplicateId(token.id.clone())));
            }
            let role = match token.role.as_str() {
                "admin" => Some(AdminRole::Admin),
                "read" => Some(AdminRole::Read),
                other => {
                    errors.push((at("role"), AdminConfigError::UnknownRole(other.to_owned())));
                    None
                }
            };
            let sha256 = parse_sha256(&token.token_sha256);
            match sha256 {
                None => errors.push((at("token_sha256"), AdminConfigError::MalformedHash)),
                Some(digest) => {
                    if let Some(first) = hashes.insert(digest, i) {
                        errors.push((at("token_sha256"), AdminConfigError::SharedToken(first)));
                    }
                }
            }
            if let (true, Some(role), Some(sha256)) = (id_ok, role, sha256) {
                tokens.push(AdminToken {
                    id: token.id.clone(),
                    sha256,
                    role,
                });
            }
        }
        for (i, path) in self.public_paths.iter().enumerate() {
            let at = format!("admin.public_paths[{i}]");
            if !path.starts_with('/') || path.contains(['?', '#']) {
                errors.push((at, AdminConfigError::InvalidPublicPath(path.clone())));
            } else if path == "/connect" || path.starts_with("/connect/") {
                errors.push((at, AdminConfigError::PublicConnectPath(path.clone())));
            }
        }
        if errors.is_empty() {
            Ok(tokens)
        } else {
            Err(errors)
        }
    }

    /// What `gatehouse check` and start-up warn about.
    pub fn warnings(&self) -> Vec<String> {
        if self.tokens.is_empty() {
            vec![format!(
                "the admin port is locked: no [[admin.tokens]] are configured, so only its public paths ({}) answer and everything else (dashboard, /status, the connect flow) is refused with 401",
                if self.public_paths.is_empty() {
                    "none".to_owned()
                } else {
                    self.public_paths.join(", ")
                }
            )]
        } else {
            Vec::new()
        }
    }
}

/// 64 hex characters (either case) to 32 bytes.
fn parse_sha256(hex_text: &str) -> Option<[u8; 32]> {
    if hex_text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}
