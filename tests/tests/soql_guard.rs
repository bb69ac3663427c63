//! End-to-end: the SOQL guard in front of the Salesforce simulator. Blocked queries never
//! reach the provider; allowed, rewritten, composite, follow-up and explain-checked ones do.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use gatehouse_e2e::{configs, token_hash, Gatehouse};
use gatehouse_sim::{Provider, SimConfig, SimHandle, Simulator, DEMO_CLIENT_ID, DEMO_USER};

const TOKEN: &str = "soql-caller";
const LIMITED: &str = "soql-limited-caller";

fn config(sim: &SimHandle, connection_extra: &str) -> String {
    let access = sim.issue_access_token(DEMO_CLIENT_ID, DEMO_USER);
    format!(
        r#"{server}
[[connections]]
id = "sf"
provider = "salesforce"
base_url = "{base}"
credentials = {{ type = "bearer", token = "{access}" }}
{connection_extra}

[[callers]]
id = "app"
token_sha256 = "{app}"
[[callers.grants]]
connections = ["sf"]
methods = ["GET", "POST"]
paths = ["/services/data/*/query", "/services/data/*/queryAll", "/services/data/*/query/*", "/services/data/*/composite", "/services/data/*/composite/batch"]

[[callers]]
id = "limited"
token_sha256 = "{limited}"
[[callers.grants]]
connections = ["sf"]
methods = ["GET"]
paths = ["/services/data/*/query"]
[callers.soql]
objects = ["Account"]
[callers.soql.fields]
Account = ["Id", "Name"]
"#,
        base = sim.http_base_url(),
        server = configs::server(""),
        app = token_hash(TOKEN),
        limited = token_hash(LIMITED),
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

async fn query(
    gh: &Gatehouse,
    token: &str,
    endpoint: &str,
    soql: &str,
) -> (u16, serde_json::Value) {
    let response = client()
        .get(format!(
            "{}/sf/services/data/v60.0/{endpoint}",
            gh.data_url()
        ))
        .query(&[("q", soql)])
        .header("sforce-query-options", "batchSize=200")
        .header("proxy-authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

fn queries_received(sim: &SimHandle) -> Vec<String> {
    sim.received()
        .into_iter()
        .filter(|r| r.path_and_query.contains("/query"))
        .map(|r| r.path_and_query)
        .collect()
}

fn rules(body: &serde_json::Value) -> Vec<String> {
    let mut rules: Vec<String> = body["error"]["details"]["violations"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|x| x["rule"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    rules.sort();
    rules
}

#[tokio::test(flavor = "multi_thread")]
async fn blocked_queries_never_reach_the_provider_and_explain_themselves() {
    let sim = Simulator::start(Provider::Salesforce, SimConfig::default())
        .await
        .expect("sim");
    let gh = Gatehouse::start(&config(&sim, ""));

    let (status, body) = query(&gh, TOKEN, "query", "SELECT Id, Name FROM Account").await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["category"], "guard_blocked");
    assert_eq!(rules(&body), vec!["missing-limit", "missing-where"]);
    let v = &body["error"]["details"]["violations"][0];
    assert!(v["span"].as_array().is_some_and(|s| s.len() == 2));
    assert!(v["hint"].as_str().is_some_and(|h| !h.is_empty()));

    let (status, body) = query(
        &gh,
        TOKEN,
        "query",
        "SELECT Id FROM Account WHERE Name LIKE '%acme' LIMIT 10",
    )
    .await;
    assert_eq!(
        (status, rules(&body)),
        (403, vec!["leading-wildcard".to_owned()])
    );
    let (status, body) = query(
        &gh,
        TOKEN,
        "query",
        "SELECT Id FROM Account WHERE Name = 'a' AND OR x = 1",
    )
    .await;
    assert_eq!((status, rules(&body)), (403, vec!["syntax".to_owned()]));
    let (status, body) = query(
        &gh,
        TOKEN,
        "queryAll",
        "SELECT Id FROM Account WHERE Id = '001000000000001AAA' LIMIT 1",
    )
    .await;
    assert_eq!(
        (status, rules(&body)),
        (403, vec!["all-rows-not-allowed".to_owned()])
    );
    // Allow-lists: an object and a field outside the caller's lists.
    let (status, body) = query(
        &gh,
        LIMITED,
        "query",
        "SELECT Id FROM Contact WHERE Id = '003000000000001AAA' LIMIT 1",
    )
    .await;
    assert_eq!(
        (status, rules(&body)),
        (403, vec!["object-not-allowed".to_owned()])
    );
    let (status, body) = query(
        &gh,
        LIMITED,
        "query",
        "SELECT Id, Industry FROM Account WHERE Id = '001000000000001AAA' LIMIT 1",
    )
    .await;
    assert_eq!(
        (status, rules(&body)),
        (403, vec!["field-not-allowed".to_owned()])
    );
    assert!(
        queries_received(&sim).is_empty(),
        "no blocked query reached Salesforce: {:?}",
        queries_received(&sim)
    );

    // Two q= parameters could smuggle a second query past the check.
    let response = client()
        .get(format!("{}/sf/services/data/v60.0/query?q=SELECT+Id+FROM+Account+LIMIT+1&q=SELECT+Id+FROM+Contact", gh.data_url()))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);

    let (status, body) = query(
        &gh,
        TOKEN,
        "query",
        "SELECT Id, Name FROM Account WHERE CreatedDate = LAST_N_DAYS:30 LIMIT 5",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["records"].is_array());
    assert_eq!(queries_received(&sim).len(), 1);

    let metrics = gh.metrics().await;
    assert!(metrics.contains(r#"gatehouse_soql_verdicts_total{connection="sf",caller="app",verdict="block",rule="missing-where"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"gatehouse_soql_verdicts_total{connection="sf",caller="app",verdict="allow",rule="none"} 1"#));
    assert!(metrics.contains(r#"gatehouse_soql_verdicts_total{connection="sf",caller="limited",verdict="block",rule="object-not-allowed"} 1"#));
}

#[tokio::test(flavor = "multi_thread")]
async fn rewrite_composite_and_follow_up_pages() {
    let sim = Simulator::start(Provider::Salesforce, SimConfig::default())
        .await
        .expect("sim");
    let gh = Gatehouse::start(&config(&sim, "[connections.soql]\ndefault_limit = 300\ndate_window_days = 100000\n[connections.soql.rules]\nmissing-limit = \"rewrite\"\n"));

    // Rewrite: the provider receives the query with the default LIMIT added.
    let (status, body) = query(
        &gh,
        TOKEN,
        "query",
        "SELECT Id, Name FROM Account WHERE CreatedDate > 2000-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(status, 200, "{}", body["error"]);
    let sent = queries_received(&sim);
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].contains("LIMIT+300") || sent[0].contains("LIMIT%20300"),
        "{sent:?}"
    );
    let metrics = gh.metrics().await;
    assert!(
        metrics.contains(r#"verdict="rewrite",rule="missing-limit""#),
        "{metrics}"
    );

    // A large result pages: the follow-up URL (rewritten through the connection's prefix, so
    // that following it stays in Gatehouse) carries no SOQL and passes.
    if let Some(next) = body["nextRecordsUrl"].as_str() {
        assert!(next.starts_with("/sf/services/data/"), "{next}");
        let response = client()
            .get(format!("{}{next}", gh.data_url()))
            .header("proxy-authorization", format!("Bearer {TOKEN}"))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
    } else {
        panic!(
            "300 accounts in batches of 200 must page; got totalSize {} done {}",
            body["totalSize"], body["done"]
        );
    }

    // Composite: one bad subquery blocks the whole call.
    let composite = serde_json::json!({"allOrNone": false, "compositeRequest": [
        {"method": "GET", "url": "/services/data/v60.0/query?q=SELECT+Id+FROM+Account+WHERE+Id+%3D+'001000000000001AAA'+LIMIT+1", "referenceId": "good"},
        {"method": "GET", "url": "/services/data/v60.0/query?q=SELECT+Id+FROM+Contact+WHERE+LastName+!%3D+'x'+LIMIT+5", "referenceId": "bad"}
    ]});
    let before = sim.received().len();
    let response = client()
        .post(format!(
            "{}/sf/services/data/v60.0/composite",
            gh.data_url()
        ))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .json(&composite)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 403);
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    assert_eq!(rules(&body), vec!["negative-only"]);
    assert_eq!(
        sim.received().len(),
        before,
        "the composite call never left"
    );

    // A composite whose subquery lacks LIMIT is rewritten inside the body.
    let composite = serde_json::json!({"compositeRequest": [
        {"method": "GET", "url": "/services/data/v60.0/query?q=SELECT+Id+FROM+Account+WHERE+Name+%3D+'Acme'", "referenceId": "a"}
    ]});
    let response = client()
        .post(format!(
            "{}/sf/services/data/v60.0/composite",
            gh.data_url()
        ))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .json(&composite)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let last = sim
        .received()
        .pop()
        .expect("composite reached the provider");
    let sent: serde_json::Value = serde_json::from_slice(&last.body).unwrap_or_default();
    let url = sent["compositeRequest"][0]["url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(url.contains("LIMIT+300"), "{url}");
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_blocks_table_scans_caches_by_shape_and_falls_back_on_timeout() {
    let sim = Simulator::start(Provider::Salesforce, SimConfig::default())
        .await
        .expect("sim");
    // The static rule is only observed here, so the planner is what decides.
    let gh = Gatehouse::start(&config(
        &sim,
        "[connections.soql.rules]\nunindexed-filter = \"observe\"\n[connections.soql_explain]\ntimeout = \"300ms\"\n",
    ));
    let (status, body) = query(
        &gh,
        TOKEN,
        "query",
        "SELECT Id FROM Account WHERE Industry = 'Energy' LIMIT 10",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "soql_plan_blocked");
    // Same shape, other literal: answered from the cache, no second explain call.
    let (status, _) = query(
        &gh,
        TOKEN,
        "query",
        "SELECT Id FROM Account WHERE Industry = 'Retail' LIMIT 10",
    )
    .await;
    assert_eq!(status, 403);
    let explains = sim
        .received()
        .iter()
        .filter(|r| r.path_and_query.contains("explain="))
        .count();
    assert_eq!(explains, 1, "plans are cached by query shape");
    assert!(
        queries_received(&sim)
            .iter()
            .all(|q| q.contains("explain=")),
        "blocked queries never ran"
    );

    // A selective query passes the planner.
    let (status, body) = query(
        &gh,
        TOKEN,
        "query",
        "SELECT Id FROM Account WHERE Id = '001000000000001AAA' LIMIT 1",
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The planner too slow: the static verdict stands (observe → allowed).
    sim.faults()
        .set_latency(std::time::Duration::from_millis(800));
    let (status, body) = query(
        &gh,
        TOKEN,
        "query",
        "SELECT Id FROM Account WHERE Website = 'x' LIMIT 10",
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
