//! End-to-end: the unified API through the real binary against the simulators. A paginated
//! walk of every model each simulator serves returns every seeded record exactly once, again
//! with `modified_since`, and goes on across a token refresh in the middle; cursors are sealed
//! to their caller; policy, unknown models and providers without a unified API are refused
//! with the envelope; a malformed provider body is `provider_unavailable`; the reserved id is
//! refused at load; and what is served matches the committed OpenAPI document.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use gatehouse_e2e::raw_provider::{write, RawProvider};
use gatehouse_e2e::unified::{self, encode, schema_errors, strings, Caller};
use gatehouse_e2e::{configs, run_cli, Gatehouse};
use gatehouse_sim::{Provider, SimConfig, SimHandle, Simulator};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const TOKEN: &str = "unified-sync-token";
const OTHER: &str = "unified-other-token";
const NO_GRANT: &str = "unified-nogrant-token";
/// Seeded records per object: three pages of three, the last one short.
const RECORDS: usize = 7;
const STORE_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

async fn simulator(provider: Provider) -> SimHandle {
    let config = SimConfig {
        record_count: Some(RECORDS),
        ..SimConfig::default()
    };
    Simulator::start(provider, config).await.expect("simulator")
}

/// Gatehouse with `connections`, and the callers: `TOKEN` and `OTHER` granted the unified API
/// on `ids`, `NO_GRANT` only a provider path.
fn start(connections: &str, ids: &[&str]) -> Gatehouse {
    let config = format!(
        "{}[store]\ndata_dir = \"data\"\n{connections}{}{}{}",
        configs::server("request_timeout = \"10s\""),
        configs::caller("sync", TOKEN, ids, &["GET"], &["/unified/**"]),
        configs::caller("other", OTHER, ids, &["GET"], &["/unified/**"]),
        configs::caller("nogrant", NO_GRANT, ids, &["GET"], &["/v1/**"]),
    );
    Gatehouse::start_with(&config, &[], &[("GATEHOUSE_STORE_KEY", STORE_KEY)])
}

/// Every model `provider` serves, walked whole (three records a page), then from the middle
/// of its modification times; with `refresh` the provider forgets its access tokens after the
/// first page of each walk.
async fn walk_every_model(provider: Provider, refresh: bool) {
    let sim = simulator(provider).await;
    let gh = start(&unified::connection("conn", &sim), &["conn"]);
    let caller = Caller {
        gatehouse: &gh,
        token: TOKEN,
    };
    let (_, collections) = unified::provider_of(provider);
    let expire = |page: usize| {
        if refresh && page == 1 {
            sim.faults().expire_access_tokens();
        }
    };
    for &collection in collections {
        let seeded = seeded(&sim, collection).await;
        let refreshes = sim.token_calls().total;
        let records = caller
            .walk(collection, "conn", "&page_size=3", expire)
            .await
            .unwrap_or_else(|e| panic!("{collection}: {e:?}"));
        let remote: BTreeSet<&str> = strings(&records, "remote_id").into_iter().collect();
        let ids: BTreeSet<&str> = strings(&records, "id").into_iter().collect();
        assert_eq!(records.len(), seeded, "{collection}: every seeded record");
        assert_eq!(remote.len(), seeded, "{collection}: each exactly once");
        assert_eq!(ids.len(), seeded, "{collection}: distinct ids");
        if refresh {
            assert!(
                sim.token_calls().total > refreshes,
                "{collection}: the walk went on across a refresh"
            );
        }
        for record in &records {
            assert_eq!(record["connection"], "conn");
            assert!(record.get("remote_data").is_none());
        }

        // Incremental: from the middle of the times the simulator holds, what it holds since.
        let mut times: Vec<&str> = strings(&records, "remote_modified_at");
        assert_eq!(times.len(), seeded, "{collection}: every record has a time");
        times.sort_unstable();
        let since = times[seeded / 2];
        let modified = |keep: &dyn Fn(&str) -> bool| -> BTreeSet<&str> {
            records
                .iter()
                .filter(|r| r["remote_modified_at"].as_str().is_some_and(keep))
                .filter_map(|r| r["remote_id"].as_str())
                .collect()
        };
        // A record modified in the very second of `since` may fall either side (times are
        // served to the second, some providers filter to the millisecond): it may be left out,
        // every record after it may not, and none before it may come.
        let later = modified(&|t| t > since);
        let expected = modified(&|t| t >= since);
        let query = format!("&page_size=3&modified_since={}", encode(since));
        let changed = caller
            .walk(collection, "conn", &query, expire)
            .await
            .unwrap_or_else(|e| panic!("{collection} since {since}: {e:?}"));
        let got: BTreeSet<&str> = strings(&changed, "remote_id").into_iter().collect();
        assert_eq!(got.len(), changed.len(), "{collection}: each once");
        // An incremental walk may also report what was deleted since (a full walk does not
        // list deleted records): every other record is exactly what the simulator holds.
        let live: BTreeSet<&str> = changed
            .iter()
            .filter(|r| r["remote_was_deleted"] != true)
            .filter_map(|r| r["remote_id"].as_str())
            .collect();
        assert!(
            live.is_superset(&later) && live.is_subset(&expected),
            "{collection} modified since {since}: {live:?} is not between {later:?} and {expected:?}"
        );
        assert!(
            !later.is_empty(),
            "{collection}: the incremental walk is not empty"
        );
        assert!(got.is_superset(&later));

        // The sync state: two completed walks; the mark is the newest time either saw (the
        // full walk's), the count the last walk's.
        let model = collection.replace('/', ".");
        let state: Value = gh
            .admin_get(&format!(
                "/api/sync-state?caller=sync&connection=conn&model={model}"
            ))
            .await
            .json()
            .await
            .unwrap();
        let row = &state["sync_state"][0];
        assert_eq!(row["walks_completed"], 2, "{collection}: {state}");
        assert_eq!(row["records_seen"], changed.len(), "{collection}: {state}");
        let newest = times[seeded - 1];
        let mark = row["high_water"].as_str().unwrap_or_default();
        assert_eq!(mark.get(..19), newest.get(..19), "{collection}: {state}");
        assert!(row["lag_seconds"].as_f64().is_some_and(|lag| lag < 600.0));
    }
    let metrics = gh.metrics().await;
    for family in [
        "gatehouse_sync_records_total{connection=\"conn\"",
        "gatehouse_sync_lag_seconds{connection=\"conn\"",
        "gatehouse_connection_onboarding_seconds{connection=\"conn\"}",
    ] {
        assert!(metrics.contains(family), "{family} missing:\n{metrics}");
    }
}

/// How many records of `collection` the simulator holds. The ATS simulators seed a tenth as
/// many jobs as other records, and at least five; Salesforce is asked itself (`COUNT()`, which
/// leaves out its deleted rows as a query does).
async fn seeded(sim: &SimHandle, collection: &str) -> usize {
    if sim.provider() == Provider::Salesforce {
        let object = match collection {
            "crm/accounts" => "Account",
            "crm/contacts" => "Contact",
            _ => "Opportunity",
        };
        let token = sim.issue_access_token(gatehouse_sim::DEMO_CLIENT_ID, gatehouse_sim::DEMO_USER);
        let answer: Value = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!(
                "{}/services/data/v60.0/query?q=SELECT+COUNT()+FROM+{object}",
                sim.http_base_url()
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        return answer["totalSize"].as_u64().unwrap() as usize;
    }
    if collection.ends_with("jobs") {
        jobs_for(RECORDS)
    } else {
        RECORDS
    }
}

/// The jobs an ATS simulator seeds beside `records` of every other object.
fn jobs_for(records: usize) -> usize {
    (records / 10).max(5)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_salesforce_walk_serves_every_record_once_across_a_refresh() {
    walk_every_model(Provider::Salesforce, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hubspot_walk_serves_every_record_once() {
    // HubSpot's profile refreshes on the token's lifetime, not on a 401: no refresh mid-walk.
    walk_every_model(Provider::HubSpot, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_greenhouse_walk_serves_every_record_once() {
    walk_every_model(Provider::GreenhouseV1, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_greenhouse_v3_walk_serves_every_record_once_across_a_refresh() {
    walk_every_model(Provider::GreenhouseV3, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lever_walk_serves_every_record_once() {
    walk_every_model(Provider::Lever, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ashby_walk_serves_every_record_once() {
    walk_every_model(Provider::Ashby, false).await;
}

fn code(body: &Value) -> (&str, &str) {
    (
        body["error"]["category"].as_str().unwrap_or("-"),
        body["error"]["code"].as_str().unwrap_or("-"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn cursors_are_sealed_and_refusals_come_as_the_envelope() {
    let hs = simulator(Provider::HubSpot).await;
    let plain = configs::testapi_connection(
        "plain",
        "http://127.0.0.1:9/api",
        "credentials = { type = \"bearer\", token = \"t\" }",
    );
    let gh = start(
        &format!("{}{plain}", unified::connection("hs", &hs)),
        &["hs", "plain"],
    );
    let caller = Caller {
        gatehouse: &gh,
        token: TOKEN,
    };
    let (status, first) = caller
        .get("/unified/crm/accounts?connection=hs&page_size=3")
        .await;
    assert_eq!(status, 200, "{first}");
    let cursor = first["next_cursor"].as_str().unwrap();
    let next = format!(
        "/unified/crm/accounts?connection=hs&cursor={}",
        encode(cursor)
    );

    // Another caller with the same grant cannot use it; an edited one is nobody's.
    let other = Caller {
        gatehouse: &gh,
        token: OTHER,
    };
    let (status, body) = other.get(&next).await;
    assert_eq!(
        (status, code(&body)),
        (400, ("bad_request", "invalid_cursor"))
    );
    let mut edited = cursor.as_bytes().to_vec();
    let at = edited.len() / 2;
    edited[at] = if edited[at] == b'A' { b'B' } else { b'A' };
    let edited = format!(
        "/unified/crm/accounts?connection=hs&cursor={}",
        encode(std::str::from_utf8(&edited).unwrap())
    );
    let (status, body) = caller.get(&edited).await;
    assert_eq!(
        (status, code(&body)),
        (400, ("bad_request", "invalid_cursor"))
    );
    assert_eq!(body["error"]["connection"], "hs");
    // The owner's cursor still works, and says where it stopped.
    let (status, second) = caller.get(&next).await;
    assert_eq!(status, 200, "{second}");
    let first_ids = strings(first["data"].as_array().unwrap(), "id");
    let second_ids = strings(second["data"].as_array().unwrap(), "id");
    assert!(first_ids.iter().all(|id| !second_ids.contains(id)));

    let no_grant = Caller {
        gatehouse: &gh,
        token: NO_GRANT,
    };
    let (status, body) = no_grant.get("/unified/crm/accounts?connection=hs").await;
    assert_eq!(
        (status, code(&body)),
        (403, ("forbidden", "path_not_granted"))
    );
    for (path, expected) in [
        ("/unified/ats/jobs?connection=hs", "model_not_served"),
        (
            "/unified/crm/accounts?connection=plain",
            "unified_not_served",
        ),
        (
            "/unified/crm/accounts?connection=nope",
            "unknown_connection",
        ),
        ("/unified/crm/leads?connection=hs", "unknown_unified_path"),
    ] {
        let (status, body) = caller.get(path).await;
        assert_eq!(
            (status, code(&body)),
            (404, ("not_found", expected)),
            "{path}"
        );
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // Requests are recorded like passthrough ones: the access line names the caller.
    let logs = gh.logs().join("\n");
    assert!(
        logs.contains("/unified/crm/accounts") && logs.contains("\"caller\":\"sync\""),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_provider_body_is_provider_unavailable_with_the_envelope() {
    let answers = Arc::new(AtomicUsize::new(0));
    let count = answers.clone();
    let raw = RawProvider::start(move |_path| {
        let body = match count.fetch_add(1, Ordering::SeqCst) % 2 {
            0 => r#"{"data": [{"id": "a1", "na"#,
            _ => "<html><body>Service Unavailable</body></html>",
        };
        vec![write(format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ))]
    })
    .await;
    let connection = format!(
        "[[connections]]\nid = \"lv\"\nprovider = \"lever\"\nbase_url = \"{}/v1\"\ncredentials = {{ type = \"basic\", username = \"key\" }}\n",
        raw.url()
    );
    let gh = start(&connection, &["lv"]);
    let caller = Caller {
        gatehouse: &gh,
        token: TOKEN,
    };
    for shape in ["truncated JSON", "an HTML page"] {
        let (status, body) = caller.get("/unified/ats/candidates?connection=lv").await;
        assert_eq!(status, 502, "{shape}: {body}");
        assert_eq!(
            code(&body),
            ("provider_unavailable", "malformed_provider_answer"),
            "{shape}"
        );
        assert_eq!(body["error"]["retryable"], true);
        assert_eq!(body["error"]["provider"], "lever");
        let text = body.to_string();
        assert!(
            !text.contains("Service Unavailable") && !text.contains("\"na"),
            "{text}"
        );
    }
    assert_eq!(answers.load(Ordering::SeqCst), 2);
}

#[test]
fn the_reserved_connection_id_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}{}",
        configs::server(""),
        configs::testapi_connection("unified", "https://api.example.com", "")
    );
    std::fs::write(dir.path().join("gatehouse.toml"), config).unwrap();
    let (code, out, err) = run_cli(&["check", "--config", "gatehouse.toml"], dir.path());
    assert_ne!(code, 0, "{out}{err}");
    let text = format!("{out}{err}");
    assert!(
        text.contains("connections[0].id") && text.contains("reserved"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn served_answers_match_the_committed_openapi_document() {
    let lever = simulator(Provider::Lever).await;
    let gh = start(&unified::connection("lv", &lever), &["lv"]);
    // The document needs no caller identity: it holds no data.
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/unified/openapi.json", gh.data_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let served: Value = response.json().await.unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/unified-openapi.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        served, committed,
        "the served document is the committed one"
    );
    assert_eq!(served["openapi"], "3.1.0");

    let caller = Caller {
        gatehouse: &gh,
        token: TOKEN,
    };
    let (status, page) = caller
        .get("/unified/ats/candidates?connection=lv&page_size=2&include_raw=true")
        .await;
    assert_eq!(status, 200, "{page}");
    let errors = schema_errors(&served, "/components/schemas/CandidateList", &page);
    assert!(errors.is_empty(), "{errors:?}\n{page}");
    let id = page["data"][0]["id"].as_str().unwrap();
    let (status, record) = caller
        .get(&format!("/unified/ats/candidates/{id}?connection=lv"))
        .await;
    assert_eq!(status, 200, "{record}");
    let errors = schema_errors(&served, "/components/schemas/CandidateRecord", &record);
    assert!(errors.is_empty(), "{errors:?}\n{record}");
    let (status, error) = caller
        .get("/unified/ats/candidates?connection=lv&cursor=forged")
        .await;
    assert_eq!(status, 400);
    let errors = schema_errors(&served, "/components/schemas/Error", &error);
    assert!(errors.is_empty(), "{errors:?}\n{error}");
    // The check can fail: a list without its cursor is not a list.
    let broken = serde_json::json!({"data": page["data"]});
    assert!(!schema_errors(&served, "/components/schemas/CandidateList", &broken).is_empty());
}

/// Records per second of a 10,000-record walk through a simulator, end to end (the binary,
/// the adapter's calls, the simulator, the mapping, the sealed cursors), at the provider's
/// largest page. Run: `cargo test -p gatehouse-e2e --test unified -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, not a check: run it by hand"]
async fn measure_a_ten_thousand_record_walk() {
    for (provider, collection, page_size) in [
        (Provider::Salesforce, "crm/accounts", 2000),
        (Provider::GreenhouseV1, "ats/candidates", 500),
    ] {
        let config = SimConfig {
            record_count: Some(10_000),
            quota_limit: Some(1_000_000),
            ..SimConfig::default()
        };
        let sim = Simulator::start(provider, config).await.unwrap();
        let gh = start(&unified::connection("conn", &sim), &["conn"]);
        let caller = Caller {
            gatehouse: &gh,
            token: TOKEN,
        };
        let started = std::time::Instant::now();
        let records = caller
            .walk(
                collection,
                "conn",
                &format!("&page_size={page_size}"),
                |_| {},
            )
            .await
            .unwrap();
        let elapsed = started.elapsed();
        let held = match provider {
            // Salesforce's query leaves its deleted rows (about 2%) out.
            Provider::Salesforce => seeded(&sim, collection).await,
            _ => 10_000,
        };
        assert_eq!(records.len(), held);
        println!(
            "{provider:?} {collection}: {} records in {:.2} s = {:.0} records/s (page_size {page_size})",
            records.len(),
            elapsed.as_secs_f64(),
            records.len() as f64 / elapsed.as_secs_f64()
        );
    }
}
