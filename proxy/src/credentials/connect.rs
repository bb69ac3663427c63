//! The authorization-code connect flow on the admin port, with `state` and PKCE S256:
//!
//! - `GET /connect/<connection>` → 302 to the provider's authorize URL;
//! - `GET /connect/<connection>/callback?code=&state=` → the code is exchanged and the tokens
//!   stored; the connection leaves `reauth_required` at once (other processes of a fleet
//!   notice within seconds, from the store).
//!
//! `state` values are single-use, expire after ten minutes and live in this process's memory:
//! the callback must reach the same Gatehouse that started the flow (it is one admin URL).

use super::manager::TokenManager;
use crate::body::{full, ProxyBody};
use crate::secret::Secret;
use base64::Engine;
use gatehouse_adapters::oauth::{authorize_url, AuthorizeParams, FailureKind};
use http::{header, HeaderValue, Method, Response, StatusCode, Uri};
use parking_lot::Mutex;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const STATE_LIFETIME: Duration = Duration::from_secs(600);
/// Bounds memory if someone keeps opening the start URL.
const MAX_PENDING: usize = 1024;

struct Pending {
    connection: String,
    verifier: Secret,
    created: Instant,
}

#[derive(Default)]
pub(crate) struct PendingStates {
    pending: Mutex<HashMap<String, Pending>>,
}

impl PendingStates {
    fn insert(&self, state: String, pending: Pending) -> bool {
        let mut map = self.pending.lock();
        map.retain(|_, p| p.created.elapsed() < STATE_LIFETIME);
        if map.len() >= MAX_PENDING {
            return false;
        }
        map.insert(state, pending);
        true
    }

    /// Single use: a state is removed whether or not it is still valid.
    fn take(&self, state: &str, connection: &str) -> Option<Secret> {
        let pending = self.pending.lock().remove(state)?;
        (pending.connection == connection && pending.created.elapsed() < STATE_LIFETIME)
            .then_some(pending.verifier)
    }
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// PKCE S256: BASE64URL(SHA256(verifier)).
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn text(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) async fn handle(
    manager: &TokenManager,
    method: &Method,
    uri: &Uri,
) -> Option<Response<ProxyBody>> {
    let rest = uri.path().strip_prefix("/connect/")?;
    let (id, callback) = match rest.split_once('/') {
        Some((id, "callback")) => (id, true),
        None => (rest, false),
        Some(_) => return None,
    };
    if method != Method::GET {
        return Some(text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".to_owned(),
        ));
    }
    let Some(connection) = manager.connections.get(id) else {
        return Some(text(
            StatusCode::NOT_FOUND,
            format!("no OAuth connection {id:?}\n"),
        ));
    };
    let (Some(authorize), Some(redirect_uri)) = (
        &connection.spec.authorize_url,
        &connection.spec.redirect_uri,
    ) else {
        return Some(text(
            StatusCode::NOT_FOUND,
            format!(
                "connection {id} has no connect flow: configure authorize_url and redirect_uri\n"
            ),
        ));
    };
    if !callback {
        let state = random_b64(32);
        let verifier = random_b64(48);
        let location = authorize_url(
            &connection.profile.name,
            &AuthorizeParams {
                authorize_url: authorize,
                client_id: &connection.spec.client_id,
                redirect_uri,
                scopes: &connection.spec.scopes,
                state: &state,
                code_challenge: &pkce_challenge(&verifier),
                audience: connection.spec.audience.as_deref(),
            },
        );
        let location = match location.ok().and_then(|l| HeaderValue::from_str(&l).ok()) {
            Some(location) => location,
            None => {
                return Some(text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("authorize_url of {id} is unusable\n"),
                ))
            }
        };
        if !manager.connect.insert(
            state,
            Pending {
                connection: id.to_owned(),
                verifier: Secret::new(verifier),
                created: Instant::now(),
            },
        ) {
            return Some(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many connect flows in progress\n".to_owned(),
            ));
        }
        let mut response = text(
            StatusCode::FOUND,
            format!("continue at the provider to connect {id}\n"),
        );
        response.headers_mut().insert(header::LOCATION, location);
        return Some(response);
    }
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    if let Some(error) = query.get("error") {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Some(text(
            StatusCode::BAD_REQUEST,
            format!("the provider refused to connect {id}: {code}\n"),
        ));
    }
    let (Some(code), Some(state)) = (query.get("code"), query.get("state")) else {
        return Some(text(
            StatusCode::BAD_REQUEST,
            "callback needs code and state\n".to_owned(),
        ));
    };
    let Some(verifier) = manager.connect.take(state, id) else {
        return Some(text(
            StatusCode::BAD_REQUEST,
            "unknown, used or expired state: start again at /connect/<connection>\n".to_owned(),
        ));
    };
    let grant = match connection.exchange_code(code, verifier.expose()).await {
        Ok(grant) => grant,
        Err(failure) => {
            let status = match failure.kind {
                FailureKind::Transient => StatusCode::BAD_GATEWAY,
                _ => StatusCode::BAD_REQUEST,
            };
            return Some(text(
                status,
                format!("code exchange for {id} failed: {}\n", failure.code),
            ));
        }
    };
    let scopes = grant.scopes.join(" ");
    match connection.complete_connect(grant).await {
        Ok(()) => Some(text(
            StatusCode::OK,
            format!("connection {id} connected; granted scopes: {scopes}\n"),
        )),
        Err(e) => Some(text(StatusCode::BAD_GATEWAY, format!("{e}\n"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_example() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn states_are_single_use_and_bound_to_their_connection() {
        let states = PendingStates::default();
        let pending = |c: &str| Pending {
            connection: c.to_owned(),
            verifier: Secret::new("v"),
            created: Instant::now(),
        };
        assert!(states.insert("s1".into(), pending("sf")));
        assert!(states.take("s1", "sf").is_some());
        assert!(states.take("s1", "sf").is_none());
        assert!(states.insert("s2".into(), pending("sf")));
        assert!(states.take("s2", "hubspot").is_none());
        assert!(
            states.take("s2", "sf").is_none(),
            "a state tried against the wrong connection is burnt"
        );
    }
}
