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
//!
//! Starting needs an admin token (the admin port checks it); the state records the token's
//! id, since the callback comes from the provider's browser redirect and carries no token of
//! its own. A connection with a working grant is only reconnected on `?replace=true`. On
//! completion the page and the log name the provider account the new grant belongs to, where
//! the provider says (in its token response or through the adapter's lookup call), and the
//! store keeps it with the admin id on the connection's row.

use super::manager::{OAuthConnection, TokenManager};
use super::store::{now_ms, ConnectRecord, NewConnectState, RecordState, StoreError};
use crate::body::{full, ProxyBody};
use crate::secret::Secret;
use base64::Engine;
use gatehouse_adapters::oauth::{AuthorizeParams, FailureKind};
use gatehouse_adapters::ProviderAccount;
use http::{header, HeaderValue, Method, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
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
    admin: Option<&str>,
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
    // The admin port checks the token before routing; this keeps the flow's own rule with it.
    // A callback's admin is the one its stored state names, whoever brings it.
    let starting_admin = match (callback, admin) {
        (false, None) => {
            return Some(text(
                StatusCode::UNAUTHORIZED,
                "starting a connect flow needs an admin token\n".to_owned(),
            ))
        }
        (false, Some(admin)) => Some(admin),
        (true, _) => None,
    };
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
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    Some(match starting_admin {
        Some(admin) => {
            let start = Start {
                authorize,
                redirect_uri,
                admin,
                replace: query.get("replace").is_some_and(|v| v == "true"),
            };
            start_flow(manager, connection, &start).await
        }
        None => finish_flow(manager, connection, &query).await,
    })
}

/// What a start request asks for.
struct Start<'a> {
    authorize: &'a str,
    redirect_uri: &'a str,
    /// The admin token id starting the flow.
    admin: &'a str,
    /// `?replace=true`: go ahead even though the connection has a working grant.
    replace: bool,
}

/// `GET /connect/<id>`: records the flow (with who started it) and redirects to the provider.
async fn start_flow(
    manager: &TokenManager,
    connection: &OAuthConnection,
    start: &Start<'_>,
) -> Response<ProxyBody> {
    let id = connection.id.as_str();
    if !start.replace {
        match has_working_grant(manager, connection).await {
            Ok(false) => {}
            Ok(true) => {
                return text(
                    StatusCode::CONFLICT,
                    format!(
                        "connection {id} already has a working grant; connecting again replaces it with whichever provider account approves next. To replace it, open /connect/{id}?replace=true\n"
                    ),
                )
            }
            Err(e) => {
                tracing::error!(connection = %id, error = %e, "could not read the connection's grant");
                return store_unavailable();
            }
        }
    }
    let state = random_b64(32);
    let verifier = random_b64(48);
    let location = connection.provider.authorize_url(&AuthorizeParams {
        authorize_url: start.authorize,
        client_id: &connection.spec.client_id,
        redirect_uri: start.redirect_uri,
        scopes: &connection.spec.scopes,
        state: &state,
        code_challenge: &pkce_challenge(&verifier),
        audience: connection.spec.audience.as_deref(),
    });
    let Some(location) = location.ok().and_then(|l| HeaderValue::from_str(&l).ok()) else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("authorize_url of {id} is unusable\n"),
        );
    };
    let now = now_ms();
    let verifier = Secret::new(verifier);
    let pending = NewConnectState {
        state: &state,
        connection: id,
        verifier: &verifier,
        started_by: start.admin,
        created_at_ms: now,
    };
    match manager
        .store
        .put_connect_state(pending, now - STATE_LIFETIME_MS, MAX_PENDING)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many connect flows in progress\n".to_owned(),
            )
        }
        Err(e) => {
            tracing::error!(connection = %id, error = %e, "could not record a connect flow");
            return store_unavailable();
        }
    }
    tracing::info!(connection = %id, admin = %start.admin, replace = start.replace, "connect flow started");
    let mut response = text(
        StatusCode::FOUND,
        format!("continue at the provider to connect {id}\n"),
    );
    response.headers_mut().insert(header::LOCATION, location);
    response
}

/// A grant that works today: the connection is `ok` (or refreshing) and the store holds its
/// refresh token. Replacing it needs `?replace=true`.
async fn has_working_grant(
    manager: &TokenManager,
    connection: &OAuthConnection,
) -> Result<bool, StoreError> {
    let state = manager
        .status()
        .into_iter()
        .find(|s| s.connection == connection.id)
        .map(|s| s.state);
    if !matches!(state, Some("ok" | "refreshing")) {
        return Ok(false);
    }
    let record = manager.store.load(&connection.id).await?;
    Ok(record.is_some_and(|r| r.state == RecordState::Ok && r.refresh_token.is_some()))
}

/// `GET /connect/<id>/callback?code=&state=`: the provider's redirect, authorised by `state`.
async fn finish_flow(
    manager: &TokenManager,
    connection: &OAuthConnection,
    query: &HashMap<String, String>,
) -> Response<ProxyBody> {
    let id = connection.id.as_str();
    if let Some(error) = query.get("error") {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return text(
            StatusCode::BAD_REQUEST,
            format!("the provider refused to connect {id}: {code}\n"),
        );
    }
    let (Some(code), Some(state)) = (query.get("code"), query.get("state")) else {
        return text(
            StatusCode::BAD_REQUEST,
            "callback needs code and state\n".to_owned(),
        );
    };
    // Taken (deleted) whether or not it turns out valid here: a state is tried once.
    let taken = match manager.store.take_connect_state(state).await {
        Ok(taken) => taken,
        Err(e) => {
            tracing::error!(connection = %id, error = %e, "could not read a connect flow");
            return store_unavailable();
        }
    };
    let Some(taken) =
        taken.filter(|t| t.connection == id && now_ms() - t.created_at_ms < STATE_LIFETIME_MS)
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "unknown, used or expired state: start again at /connect/<connection>\n".to_owned(),
        );
    };
    // A flow stored before the store recorded its admin was started without a token.
    let Some(admin) = taken.started_by else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("this flow was started before the admin port asked for a token: start again at /connect/{id}\n"),
        );
    };
    let mut grant = match connection
        .exchange_code(code, taken.verifier.expose())
        .await
    {
        Ok(grant) => grant,
        Err(failure) => {
            let status = match failure.kind {
                FailureKind::Transient => StatusCode::BAD_GATEWAY,
                _ => StatusCode::BAD_REQUEST,
            };
            return text(
                status,
                format!("code exchange for {id} failed: {}\n", failure.code),
            );
        }
    };
    if grant.account.is_none() {
        grant.account = match lookup_account(connection, &grant.access_token).await {
            Ok(account) => account,
            Err(reason) => {
                tracing::warn!(connection = %id, reason, "could not ask the provider which account the new grant belongs to");
                None
            }
        };
    }
    let account = grant.account.clone();
    let scopes = grant.scopes.join(" ");
    if let Err(e) = connection.complete_connect(grant).await {
        return text(StatusCode::BAD_GATEWAY, format!("{e}\n"));
    }
    let record = ConnectRecord {
        account: account.as_ref().and_then(|a| serde_json::to_string(a).ok()),
        by: admin.clone(),
        at_ms: now_ms(),
    };
    if let Err(e) = manager.store.record_connect(id, &record).await {
        // The grant is stored and in use; only the record of who connected it is missing.
        tracing::warn!(connection = %id, admin = %admin, error = %e, "could not record who completed the connect flow");
    }
    let account_id = account.as_ref().map(|a| a.account_id.as_str());
    let account_user = account.as_ref().and_then(|a| a.user.as_deref());
    tracing::info!(
        connection = %id,
        admin = %admin,
        account = account_id.unwrap_or("unknown"),
        account_user = account_user.unwrap_or(""),
        "connect flow completed"
    );
    text(
        StatusCode::OK,
        format!(
            "connection {id} connected (flow started by {admin}); {}; granted scopes: {scopes}\n",
            describe(account.as_ref())
        ),
    )
}

/// The account line of the callback's page.
fn describe(account: Option<&ProviderAccount>) -> String {
    let Some(account) = account else {
        return "the provider did not say which account the grant belongs to".to_owned();
    };
    let mut line = format!("provider account {}", account.account_id);
    if let Some(user) = &account.user {
        line.push_str(&format!(", user {user}"));
    }
    if let Some(locator) = &account.locator {
        line.push_str(&format!(" ({locator})"));
    }
    line
}

/// A token answer larger than this is not an account description.
const MAX_LOOKUP_BYTES: usize = 64 * 1024;

/// For providers whose token response does not name the account: the adapter's lookup call,
/// sent with the new access token. The path may contain the token, so it is never logged;
/// the error is a short reason code.
async fn lookup_account(
    connection: &OAuthConnection,
    access_token: &str,
) -> Result<Option<ProviderAccount>, &'static str> {
    let Some(path) = connection.provider.account_lookup_path(access_token) else {
        return Ok(None);
    };
    let url = format!("{}{path}", connection.api_base.trim_end_matches('/'));
    let mut authorization = HeaderValue::from_str(&format!("Bearer {access_token}"))
        .map_err(|_| "token_not_a_header_value")?;
    authorization.set_sensitive(true);
    let request = http::Request::get(url)
        .header(header::AUTHORIZATION, authorization)
        .header(header::ACCEPT, "application/json")
        .body(crate::body::empty())
        .map_err(|_| "invalid_lookup_url")?;
    let exchange = async {
        let response = connection
            .client()
            .request(request)
            .await
            .map_err(|_| "transport_error")?;
        if !response.status().is_success() {
            return Err("lookup_refused");
        }
        let body = Limited::new(response.into_body(), MAX_LOOKUP_BYTES)
            .collect()
            .await
            .map_err(|_| "transport_error")?
            .to_bytes();
        serde_json::from_slice::<serde_json::Value>(&body).map_err(|_| "lookup_not_json")
    };
    let answer = tokio::time::timeout(connection.spec.timeout, exchange)
        .await
        .map_err(|_| "timeout")??;
    Ok(connection.provider.account_from_lookup(&answer))
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
