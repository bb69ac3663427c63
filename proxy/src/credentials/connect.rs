//! The authorization-code connect flow on the admin port, with `state` and PKCE S256:
//!
//! - `GET /connect/<connection>` → 302 to the provider's authorize URL;
//! - `GET /connect/<connection>/callback?code=&state=` → the code is exchanged and the tokens
//!   stored; the connection leaves `reauth_required` at once (other processes of a fleet
//!   notice within seconds, from the store).
//!
//! `state` values are single-use, expire after ten minutes and live in the credential store
//! (only their hash; the PKCE verifier sealed like every other secret), so the callback may
//! reach any Gatehouse sharing the store, not only the one that started the flow.

use super::manager::TokenManager;
use super::store::now_ms;
use crate::body::{full, ProxyBody};
use crate::secret::Secret;
use base64::Engine;
use gatehouse_adapters::oauth::{AuthorizeParams, FailureKind};
use http::{header, HeaderValue, Method, Response, StatusCode, Uri};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// How long a started flow may take to come back. Shared by every process (wall clock).
pub(crate) const STATE_LIFETIME_MS: i64 = 600_000;
/// Bounds the table if someone keeps opening the start URL.
const MAX_PENDING: i64 = 1024;

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// PKCE S256: BASE64URL(SHA256(verifier)).
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn store_unavailable() -> Response<ProxyBody> {
    let mut response = text(
        StatusCode::SERVICE_UNAVAILABLE,
        "the credential store is unavailable; try again shortly\n".to_owned(),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
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
        let location = connection.provider.authorize_url(&AuthorizeParams {
            authorize_url: authorize,
            client_id: &connection.spec.client_id,
            redirect_uri,
            scopes: &connection.spec.scopes,
            state: &state,
            code_challenge: &pkce_challenge(&verifier),
            audience: connection.spec.audience.as_deref(),
        });
        let location = match location.ok().and_then(|l| HeaderValue::from_str(&l).ok()) {
            Some(location) => location,
            None => {
                return Some(text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("authorize_url of {id} is unusable\n"),
                ))
            }
        };
        let now = now_ms();
        match manager
            .store
            .put_connect_state(
                &state,
                id,
                &Secret::new(verifier),
                now,
                now - STATE_LIFETIME_MS,
                MAX_PENDING,
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return Some(text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many connect flows in progress\n".to_owned(),
                ))
            }
            Err(e) => {
                tracing::error!(connection = %id, error = %e, "could not record a connect flow");
                return Some(store_unavailable());
            }
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
    // Taken (deleted) whether or not it turns out valid here: a state is tried once.
    let taken = match manager.store.take_connect_state(state).await {
        Ok(taken) => taken,
        Err(e) => {
            tracing::error!(connection = %id, error = %e, "could not read a connect flow");
            return Some(store_unavailable());
        }
    };
    let Some(verifier) = taken
        .filter(|t| t.connection == id && now_ms() - t.created_at_ms < STATE_LIFETIME_MS)
        .map(|t| t.verifier)
    else {
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
    use crate::credentials::http_client::post_form;
    use gatehouse_adapters::oauth::{Grant, TokenGrant, TokenParams};
    use gatehouse_sim::{
        Provider, SimConfig, Simulator, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN,
    };
    use http_body_util::BodyExt;

    /// A refresh against `provider`'s simulator, read by the connection's `Provider` (what
    /// the connect flow gets back), plus the client and provider for follow-up calls.
    async fn refreshed(
        provider: Provider,
        name: &str,
    ) -> (
        gatehouse_sim::SimHandle,
        crate::forward::upstream::UpstreamClient,
        std::sync::Arc<dyn gatehouse_adapters::Provider>,
        TokenGrant,
    ) {
        let sim = Simulator::start(provider, SimConfig::default())
            .await
            .unwrap();
        let config = crate::config::Config::from_str(
            std::path::Path::new("test.toml"),
            &format!(
                "[[connections]]\nid = \"c\"\nprovider = \"{name}\"\nbase_url = \"{}\"\n",
                sim.http_base_url()
            ),
        )
        .unwrap();
        let connection = &config.connections[0];
        let adapter = connection.resolve_provider().unwrap();
        let client = crate::forward::upstream::build_client(&config.server, connection).unwrap();
        let request = adapter.token_request(&TokenParams {
            grant: Grant::RefreshToken {
                refresh_token: DEMO_REFRESH_TOKEN,
            },
            client_id: DEMO_CLIENT_ID,
            client_secret: Some(DEMO_CLIENT_SECRET),
            scopes: &[],
            audience: None,
            client_auth: None,
        });
        let (status, body) = post_form(
            &client,
            &sim.token_url(),
            &request,
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
        let grant = adapter
            .parse_token_response(None, status, &body)
            .unwrap_or_else(|e| panic!("{name} token call: {e:?}"));
        (sim, client, adapter, grant)
    }

    #[tokio::test]
    async fn a_salesforce_grant_names_its_org_from_the_token_response() {
        let (_sim, _, _, grant) = refreshed(Provider::Salesforce, "salesforce").await;
        let account = grant.account.expect("the identity URL names the org");
        assert_eq!(account.account_id, "00D5g000004SIMUEAU");
        assert!(account.user.is_some_and(|u| u.starts_with("005")));
    }

    #[tokio::test]
    async fn a_hubspot_grant_names_its_portal_through_the_token_info_call() {
        let (sim, client, adapter, grant) = refreshed(Provider::HubSpot, "hubspot").await;
        assert!(
            grant.account.is_none(),
            "HubSpot's token response names no hub"
        );
        let path = adapter
            .account_lookup_path(&grant.access_token)
            .expect("HubSpot has a token-info call");
        let uri: http::Uri = format!("{}{path}", sim.http_base_url()).parse().unwrap();
        let request = http::Request::get(uri)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", grant.access_token),
            )
            .body(crate::body::empty())
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let account = adapter.account_from_lookup(&answer).expect("hub id");
        assert_eq!(account.account_id, "12345678");
        assert!(account.locator.is_some());
    }

    #[test]
    fn pkce_matches_rfc7636_example() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
