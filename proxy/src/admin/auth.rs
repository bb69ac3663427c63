//! Who is asking the admin port, decided before any routing so that the port does not reveal
//! its routes to someone without a token: a path that does not exist answers 401 like one that
//! does, and 403 for a `read` token wherever an `admin` one is needed.
//!
//! - Public paths (`admin.public_paths`, exact match) answer anyone.
//! - The connect flow's callback (`/connect/<id>/callback`) is reached by the provider's
//!   browser redirect, which cannot carry a token: its single-use `state` authorises it (see
//!   `credentials::connect`).
//! - Everything else needs `Authorization: Bearer <token>`, or HTTP Basic with the token id as
//!   the user name and the token as the password (what a browser can send for the dashboard
//!   and the connect flow). GETs and HEADs that only show need `read`; the connect flow and
//!   every other method need `admin`.
//!
//! The presented token is hashed (SHA-256, like caller tokens) and compared with every
//! configured digest in constant time, all of them every time.

use crate::body::ProxyBody;
use crate::config::{
    AdminConfig, AdminConfigError, AdminRole, AdminToken, ConfigError, ConfigErrors,
};
use base64::Engine;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The realm both challenges name.
const REALM: &str = "gatehouse admin";

/// An authenticated admin token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminIdentity {
    pub id: Arc<str>,
    pub role: AdminRole,
}

/// What a request may go on to.
#[derive(Debug)]
pub enum Access {
    /// A public path: no identity asked for.
    Public,
    /// The connect flow's callback: authorised by its `state`, not by a token.
    Callback,
    /// A token with the role the request needs.
    Granted(AdminIdentity),
}

/// Why a request was refused; each becomes 401 or 403 in [`Refusal::response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header.
    Missing,
    /// A header that is neither `Bearer <token>` nor `Basic <base64 id:token>`.
    Malformed,
    /// A token (or id and token) that is not configured.
    Unknown,
    /// A valid token whose role is below what the request needs.
    Forbidden(AdminRole),
}

impl Refusal {
    pub fn response(self) -> Response<ProxyBody> {
        let (status, text) = match self {
            Refusal::Missing => (
                StatusCode::UNAUTHORIZED,
                "the admin port needs a token: send Authorization: Bearer <token>\n".to_owned(),
            ),
            Refusal::Malformed => (
                StatusCode::UNAUTHORIZED,
                "Authorization must be 'Bearer <token>' or Basic with the token id and token\n"
                    .to_owned(),
            ),
            Refusal::Unknown => (
                StatusCode::UNAUTHORIZED,
                "the admin token is not known\n".to_owned(),
            ),
            Refusal::Forbidden(role) => (
                StatusCode::FORBIDDEN,
                format!(
                    "this needs a token with role admin; this token has role {}\n",
                    role.name()
                ),
            ),
        };
        let mut response = super::text(status, &text);
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            for scheme in ["Bearer", "Basic"] {
                if let Ok(value) = HeaderValue::from_str(&format!("{scheme} realm=\"{REALM}\"")) {
                    headers.append(header::WWW_AUTHENTICATE, value);
                }
            }
        }
        response
    }
}

/// The admin port's tokens and public paths, checked once at start.
#[derive(Debug, Clone, Default)]
pub struct AdminAuth {
    tokens: Vec<AdminToken>,
    public_paths: Vec<String>,
}

impl AdminAuth {
    /// Builds from `[admin]` (already checked by the config, so an error here is the same one
    /// `gatehouse check` reports) and warns when no token is configured: the port is locked.
    pub fn start(config: &AdminConfig) -> Result<Self, ConfigErrors> {
        let auth = Self::from_config(config)?;
        for warning in config.warnings() {
            tracing::warn!("{warning}");
        }
        Ok(auth)
    }

    pub fn from_config(config: &AdminConfig) -> Result<Self, ConfigErrors> {
        let tokens = config.tokens().map_err(|errors| {
            ConfigErrors(
                errors
                    .into_iter()
                    .map(|(key, error): (String, AdminConfigError)| ConfigError {
                        location: key,
                        message: error.to_string(),
                    })
                    .collect(),
            )
        })?;
        Ok(Self {
            tokens,
            public_paths: config.public_paths.clone(),
        })
    }

    /// Decides on a request from its method, path and headers alone.
    pub fn authorize(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Access, Refusal> {
        if self.public_paths.iter().any(|p| p == path) {
            return Ok(Access::Public);
        }
        if is_callback(path) {
            return Ok(Access::Callback);
        }
        let needed = if path == "/connect" || path.starts_with("/connect/") {
            AdminRole::Admin
        } else if method == Method::GET || method == Method::HEAD {
            AdminRole::Read
        } else {
            AdminRole::Admin
        };
        let identity = self.identify(headers)?;
        if identity.role < needed {
            return Err(Refusal::Forbidden(identity.role));
        }
        Ok(Access::Granted(identity))
    }

    fn identify(&self, headers: &HeaderMap) -> Result<AdminIdentity, Refusal> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or(Refusal::Missing)?
            .to_str()
            .map_err(|_| Refusal::Malformed)?;
        let (scheme, rest) = value.split_once(' ').ok_or(Refusal::Malformed)?;
        let rest = rest.trim();
        let (user, token) = if scheme.eq_ignore_ascii_case("bearer") {
            (None, rest.to_owned())
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .ok_or(Refusal::Malformed)?;
            let (user, password) = decoded.split_once(':').ok_or(Refusal::Malformed)?;
            (Some(user.to_owned()), password.to_owned())
        } else {
            return Err(Refusal::Malformed);
        };
        // As `gatehouse hash-token` hashes it.
        let token = token.trim();
        if token.is_empty() {
            return Err(Refusal::Malformed);
        }
        let token = self.matching(token).ok_or(Refusal::Unknown)?;
        // The Basic user name must be the token's own id: a browser prompt asks for both.
        if user.is_some_and(|user| user != token.id) {
            return Err(Refusal::Unknown);
        }
        Ok(AdminIdentity {
            id: Arc::from(token.id.as_str()),
            role: token.role,
        })
    }

    /// The configured token `token` hashes to. Every digest is compared, in constant time, so
    /// the time taken says nothing about which token (if any) matched or where it is listed.
    fn matching(&self, token: &str) -> Option<&AdminToken> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for candidate in &self.tokens {
            if digests_equal(&digest, &candidate.sha256) {
                found = Some(candidate);
            }
        }
        found
    }
}

/// Constant-time comparison of two digests.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    #[cfg(test)]
    tests::COMPARISONS.with(|c| c.set(c.get() + 1));
    a.ct_eq(b).into()
}

/// `/connect/<id>/callback`, as the connect flow routes it.
fn is_callback(path: &str) -> bool {
    path.strip_prefix("/connect/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, tail)| tail == "callback")
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
