//! The connect flow across processes: started on one `Credentials`, completed on another that
//! shares the store (SQLite file; PostgreSQL at 127.0.0.1:5432 db `test`, which must be up).

use super::store_outage_tests::pg_admin;
use super::tests::{follow_once, start_with, Harness};
use gatehouse_sim::{
    Provider, SimConfig, SimHandle, Simulator, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET,
};
use gatehouse_store::testing::pg_url;
use http_body_util::BodyExt;
use std::path::Path;

const REDIRECT: &str = "http://127.0.0.1:9/connect/sf/callback";

fn config(store: &str, dir: &Path, sim: &SimHandle) -> String {
    let key = dir.join("store.key");
    if !key.exists() {
        std::fs::write(&key, crate::credentials::StoreKey::generate_base64()).unwrap();
    }
    format!(
        r#"
[store]
{store}
key_env = "GATEHOUSE_TEST_UNSET_KEY_ENV"
key_file = "{key}"

[[connections]]
id = "sf"
provider = "salesforce"
base_url = "{base}"

[connections.credentials]
type = "oauth_refresh_token"
token_url = "{token_url}"
client_id = "{DEMO_CLIENT_ID}"
client_secret = "{DEMO_CLIENT_SECRET}"
scopes = ["api", "refresh_token"]
authorize_url = "{authorize}"
redirect_uri = "{REDIRECT}"
"#,
        key = key.display(),
        base = sim.http_base_url(),
        token_url = sim.token_url(),
        authorize = sim.authorize_url(),
    )
}

/// The admin id the tests' flows are started by.
const ADMIN: &str = "sre-oncall";

async fn admin(h: &Harness, uri: &str) -> (http::StatusCode, String, Option<String>) {
    answer(h, uri, Some(ADMIN)).await
}

/// `uri` on the connect flow, as the admin port hands it over (`admin`: the token id it
/// authenticated; `None` on a callback, which carries no token).
async fn answer(
    h: &Harness,
    uri: &str,
    admin: Option<&str>,
) -> (http::StatusCode, String, Option<String>) {
    let response = h
        .creds
        .handle_admin(&http::Method::GET, &uri.parse().unwrap(), admin)
        .await
        .unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        String::from_utf8_lossy(&body).into_owned(),
        location,
    )
}

/// A directory with the embedded store in `data/`, and the config for it.
fn sqlite_setup(sim: &SimHandle) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let text = config(
        &format!("data_dir = \"{}\"", data.display()),
        dir.path(),
        sim,
    );
    (dir, data, text)
}

/// Starts the flow on `h` (replacing a working grant) and lets the provider approve it: the
/// callback path and query.
async fn start_flow(h: &Harness) -> String {
    let (status, _, location) = admin(h, "/connect/sf?replace=true").await;
    assert_eq!(status, http::StatusCode::FOUND);
    let redirect = follow_once(&location.unwrap()).await;
    redirect.trim_start_matches("http://127.0.0.1:9").to_owned()
}

/// The callback of an expired flow is refused, and its code never reaches the provider (the
/// provider has seen `calls` code exchanges, and still has).
async fn assert_expired_unsent(h: &Harness, callback: &str, sim: &SimHandle, calls: u64) {
    let (status, body, _) = admin(h, callback).await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("expired"), "{body}");
    assert_eq!(
        code_calls(sim),
        calls,
        "an expired state reached the provider"
    );
}

fn code_calls(sim: &SimHandle) -> u64 {
    sim.token_calls()
        .by_grant_type
        .get("authorization_code")
        .copied()
        .unwrap_or(0)
}

/// `age_states` makes every pending state of the shared store older than its lifetime.
async fn flow_across_instances<F, Fut>(store: &str, age_states: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let sim = Simulator::start(Provider::Salesforce, SimConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = config(store, dir.path(), &sim);
    let a = start_with(dir, &text).await;
    let b = start_with(tempfile::tempdir().unwrap(), &text).await;

    let callback = start_flow(&a).await;
    let (status, body, _) = admin(&b, &callback).await;
    assert_eq!(status, http::StatusCode::OK, "{body}");
    let (token_b, _) = b.apply().await.unwrap();
    assert_eq!(b.state(), "ok");
    // The instance that started the flow uses the stored grant too.
    let (token_a, _) = a.apply().await.unwrap();
    assert_eq!(token_a, token_b);

    // Single use, in every process.
    let calls = code_calls(&sim);
    for h in [&a, &b] {
        let (status, body, _) = admin(h, &callback).await;
        assert_eq!(status, http::StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("unknown, used or expired state"), "{body}");
    }
    assert_eq!(
        code_calls(&sim),
        calls,
        "a used state never reaches the provider"
    );

    // Expired: a real state with a real code, only too old.
    let callback = start_flow(&a).await;
    age_states().await;
    assert_expired_unsent(&b, &callback, &sim, calls).await;
}

/// The embedded store serves one process (issue 13: two processes on one SQLite file reuse a
/// rotated refresh token): a second instance on the data directory is refused, and a flow
/// started before a restart completes after it, once; an expired one never reaches the provider.
#[tokio::test]
async fn sqlite_connect_flow_survives_a_restart_and_a_second_instance_is_refused() {
    let sim = Simulator::start(Provider::Salesforce, SimConfig::default())
        .await
        .unwrap();
    let (dir, data, text) = sqlite_setup(&sim);
    let a = start_with(dir, &text).await;

    let parsed = crate::config::Config::from_str(Path::new("test.toml"), &text).unwrap();
    let refused = crate::credentials::Credentials::start(
        &parsed,
        &mut prometheus_client::registry::Registry::default(),
    )
    .await;
    let message = match refused {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a second instance on one SQLite data directory must be refused"),
    };
    assert!(
        message.contains(&data.display().to_string()) && message.contains("PostgreSQL"),
        "{message}"
    );

    let callback = start_flow(&a).await;
    let Harness { dir, creds, .. } = a;
    drop(creds);

    let b = start_with(dir, &text).await;
    let (status, body, _) = admin(&b, &callback).await;
    assert_eq!(status, http::StatusCode::OK, "{body}");
    b.apply().await.unwrap();
    assert_eq!(b.state(), "ok");

    let calls = code_calls(&sim);
    let (status, body, _) = admin(&b, &callback).await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("unknown, used or expired state"), "{body}");

    // Expired: a real state with a real code, only too old (aged in the file directly: the
    // directory lock is advisory and keeps out Gatehouse processes, not sqlite clients).
    let callback = start_flow(&b).await;
    let conn = rusqlite::Connection::open(data.join("credentials.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    let aged = conn
        .execute(
            "UPDATE credential_connect_states SET created_at = created_at - 660000",
            [],
        )
        .unwrap();
    assert!(aged >= 1);
    assert_expired_unsent(&b, &callback, &sim, calls).await;
}

#[tokio::test]
async fn postgres_connect_flow_completes_on_another_instance_once() {
    let admin_client = pg_admin().await;
    let schema = format!("gh_test_{}", uuid::Uuid::new_v4().simple());
    let store = format!("url = \"{}\"\nschema = \"{schema}\"", pg_url());
    let client = &admin_client;
    let schema_ref = &schema;
    flow_across_instances(&store, || async move {
        let aged = client
            .execute(
                &format!(
                    "UPDATE {schema_ref}.credential_connect_states SET created_at = created_at - 660000"
                ),
                &[],
            )
            .await
            .unwrap();
        assert!(aged >= 1);
    })
    .await;
    admin_client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

/// The flow records who started it (in the state, so the tokenless callback knows) and which
/// provider account the grant belongs to, and a working grant is replaced only when asked.
#[tokio::test]
async fn the_flow_records_its_admin_and_account_and_replaces_a_working_grant_only_when_asked() {
    let sim = Simulator::start(Provider::Salesforce, SimConfig::default())
        .await
        .unwrap();
    let (dir, data, text) = sqlite_setup(&sim);
    let h = start_with(dir, &text).await;
    let (status, body, _) = answer(&h, "/connect/sf", None).await;
    assert_eq!(status, http::StatusCode::UNAUTHORIZED, "{body}");

    let (status, body, location) = admin(&h, "/connect/sf").await;
    assert_eq!(status, http::StatusCode::FOUND, "no grant yet: {body}");
    let redirect = follow_once(&location.unwrap()).await;
    let callback = redirect.trim_start_matches("http://127.0.0.1:9");
    let (status, body, _) = answer(&h, callback, None).await;
    assert_eq!(status, http::StatusCode::OK, "{body}");
    assert!(
        body.contains("started by sre-oncall")
            && body.contains("provider account 00D5g000004SIMUEAU"),
        "{body}"
    );
    assert_eq!(h.state(), "ok");
    let db = rusqlite::Connection::open(data.join("credentials.db")).unwrap();
    let (by, account): (String, String) = db
        .query_row(
            "SELECT connected_by, connected_account FROM credential_tokens WHERE connection = 'sf'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(by, ADMIN);
    assert!(account.contains("00D5g000004SIMUEAU"), "{account}");

    let (status, body, _) = admin(&h, "/connect/sf").await;
    assert_eq!(status, http::StatusCode::CONFLICT, "{body}");
    assert!(body.contains("/connect/sf?replace=true"), "{body}");
    let callback = start_flow(&h).await;
    let started_by: Option<String> = db
        .query_row(
            "SELECT started_by FROM credential_connect_states",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(started_by.as_deref(), Some(ADMIN));

    // A state from before admins were recorded does not complete.
    db.execute("UPDATE credential_connect_states SET started_by = NULL", [])
        .unwrap();
    let calls = code_calls(&sim);
    let (status, body, _) = answer(&h, &callback, None).await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("start again at /connect/sf"), "{body}");
    assert_eq!(code_calls(&sim), calls, "it never reaches the provider");
}

/// A provider whose token response does not name the account: the flow asks the adapter's
/// lookup call (HubSpot's token info), with the new access token, and shows the portal.
#[tokio::test]
async fn the_flow_looks_up_the_account_where_the_token_response_does_not_name_it() {
    let sim = Simulator::start(Provider::HubSpot, SimConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let credentials = format!(
        "type = \"oauth_refresh_token\"\ntoken_url = \"{}\"\nclient_id = \"{DEMO_CLIENT_ID}\"\nclient_secret = \"{DEMO_CLIENT_SECRET}\"\nscopes = [\"crm.objects.contacts.read\", \"oauth\"]\nauthorize_url = \"{}\"\nredirect_uri = \"{REDIRECT}\"\n",
        sim.token_url(),
        sim.authorize_url()
    );
    let text = super::tests::config_text(dir.path(), "hubspot", &sim.http_base_url(), &credentials);
    let h = start_with(dir, &text).await;
    let callback = start_flow(&h).await;
    let (status, body, _) = answer(&h, &callback, None).await;
    assert_eq!(status, http::StatusCode::OK, "{body}");
    assert!(
        body.contains("started by sre-oncall") && body.contains("provider account 12345678"),
        "{body}"
    );
}
