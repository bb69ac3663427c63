//! Salesforce REST: query paging, SOQL subset, explain, sObjects, composite, limits (§1.2–1.5).

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use gatehouse_sim::{Provider, SimConfig, SimHandle, DEMO_CLIENT_ID, DEMO_RUN_AS_USER};
use serde_json::{json, Value};

struct Sf {
    sim: SimHandle,
    c: reqwest::Client,
    at: String,
}

async fn sf(records: usize) -> Sf {
    let cfg = SimConfig {
        record_count: Some(records),
        ..SimConfig::default()
    };
    let sim = common::start(Provider::Salesforce, cfg).await;
    let c = common::client(&sim);
    let at = sim.issue_access_token(DEMO_CLIENT_ID, DEMO_RUN_AS_USER);
    Sf { sim, c, at }
}

impl Sf {
    async fn get(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut rb = self
            .c
            .get(format!("{}{}", self.sim.http_base_url(), path_and_query))
            .bearer_auth(&self.at);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.unwrap();
        let s = r.status().as_u16();
        let h = r.headers().clone();
        (s, h, r.json().await.unwrap_or(Value::Null))
    }

    async fn query(&self, soql: &str) -> (u16, Value) {
        let (s, _, v) = self
            .get(
                &format!("/services/data/v66.0/query?q={}", urlencode(soql)),
                &[],
            )
            .await;
        (s, v)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .c
            .post(format!("{}{}", self.sim.http_base_url(), path))
            .bearer_auth(&self.at)
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn query_pages_with_next_records_url_until_done() {
    let sf = sf(1000).await;
    let (s, h, v) = sf
        .get(
            &format!(
                "/services/data/v66.0/query?q={}",
                urlencode("SELECT Id, Name FROM Account")
            ),
            &[("Sforce-Query-Options", "batchSize=300")],
        )
        .await;
    assert_eq!(s, 200);
    assert!(h.contains_key("sforce-limit-info"));
    let total = v["totalSize"].as_u64().unwrap();
    assert!(total > 900 && total < 1000, "deleted rows hidden: {total}");
    assert_eq!(v["done"], false);
    let mut seen = v["records"].as_array().unwrap().len();
    assert_eq!(seen, 300);
    let rec = &v["records"][0];
    assert_eq!(rec["attributes"]["type"], "Account");
    assert_eq!(rec["Id"].as_str().unwrap().len(), 18);
    let mut next = v["nextRecordsUrl"].as_str().unwrap().to_owned();
    assert!(next.starts_with("/services/data/v66.0/query/01g"), "{next}");
    loop {
        let (s, _, v) = sf.get(&next, &[]).await;
        assert_eq!(s, 200);
        seen += v["records"].as_array().unwrap().len();
        if v["done"] == true {
            assert!(v.get("nextRecordsUrl").is_none());
            break;
        }
        next = v["nextRecordsUrl"].as_str().unwrap().to_owned();
    }
    assert_eq!(seen as u64, total);
    // queryAll also returns deleted rows.
    let (_, _, all) = sf
        .get(
            &format!(
                "/services/data/v66.0/queryAll?q={}",
                urlencode("SELECT Id FROM Account")
            ),
            &[],
        )
        .await;
    assert_eq!(all["totalSize"], 1000);
    // batchSize below 200 is raised to 200; the default is 2000.
    let (_, _, v) = sf
        .get(
            &format!(
                "/services/data/v66.0/query?q={}",
                urlencode("SELECT Id FROM Account")
            ),
            &[("Sforce-Query-Options", "batchSize=10")],
        )
        .await;
    assert_eq!(v["records"].as_array().unwrap().len(), 200);
    let (_, _, v) = sf
        .get(
            &format!(
                "/services/data/v66.0/query?q={}",
                urlencode("SELECT Id FROM Account")
            ),
            &[],
        )
        .await;
    assert_eq!(v["done"], true);
    // Bad locator.
    let (s, _, v) = sf.get("/services/data/v66.0/query/01gNOPE-2000", &[]).await;
    assert_eq!(
        (s, v[0]["errorCode"].as_str()),
        (400, Some("INVALID_QUERY_LOCATOR"))
    );
}

#[tokio::test]
async fn soql_where_order_limit_and_errors() {
    let sf = sf(300).await;
    let (s, v) = sf
        .query("SELECT Name, StageName, Amount FROM Opportunity WHERE StageName = 'Closed Won' AND Amount >= 100000 ORDER BY Amount DESC LIMIT 5")
        .await;
    assert_eq!(s, 200, "{v}");
    let recs = v["records"].as_array().unwrap();
    assert!(!recs.is_empty() && recs.len() <= 5);
    let amounts: Vec<f64> = recs.iter().map(|r| r["Amount"].as_f64().unwrap()).collect();
    assert!(amounts.windows(2).all(|w| w[0] >= w[1]));
    assert!(recs
        .iter()
        .all(|r| r["StageName"] == "Closed Won" && r["Amount"].as_f64().unwrap() >= 100000.0));
    assert!(recs[0].get("Id").is_none(), "only selected fields");

    let (s, v) = sf.query("SELECT Id FROM Contact WHERE (Title = 'CEO' OR Title = 'CTO') AND Email LIKE '%example.com'").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = sf
        .query("SELECT COUNT() FROM Account WHERE SystemModstamp > 2025-06-01T00:00:00Z")
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["totalSize"].as_u64().unwrap() > 0 && v["records"].as_array().unwrap().is_empty());

    for bad in [
        "SELECT Id FRM Account",
        "SELECT Id FROM Account WHERE Name = 'a' AND Industry = 'b' OR Name = 'c'",
        "SELECT Id FROM Account LIMIT",
        "DELETE FROM Account",
    ] {
        let (s, v) = sf.query(bad).await;
        assert_eq!(
            (s, v[0]["errorCode"].as_str()),
            (400, Some("MALFORMED_QUERY")),
            "{bad}: {v}"
        );
    }
    let (s, v) = sf.query("SELECT Bogus FROM Account").await;
    assert_eq!(
        (s, v[0]["errorCode"].as_str()),
        (400, Some("INVALID_FIELD"))
    );
    let (s, v) = sf.query("SELECT Id FROM Widget__c").await;
    assert_eq!((s, v[0]["errorCode"].as_str()), (400, Some("INVALID_TYPE")));
}

#[tokio::test]
async fn explain_costs_unindexed_filters_above_one() {
    let sf = sf(2500).await;
    let explain = |q: &str| format!("/services/data/v66.0/query?explain={}", urlencode(q));
    let (s, _, v) = sf
        .get(
            &explain("SELECT Id FROM Account WHERE Industry = 'Finance'"),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let best = &v["plans"][0];
    assert_eq!(best["leadingOperationType"], "TableScan");
    assert!(best["relativeCost"].as_f64().unwrap() > 1.0);
    assert_eq!(best["sobjectType"], "Account");
    assert!(best["sobjectCardinality"].as_u64().unwrap() > 2000);
    for k in ["cardinality", "fields", "notes"] {
        assert!(best.get(k).is_some(), "{k}");
    }
    let (_, _, v) = sf
        .get(
            &explain("SELECT Id FROM Account WHERE Id = '0015g0000000001AAA'"),
            &[],
        )
        .await;
    assert_eq!(v["plans"][0]["leadingOperationType"], "Index");
    assert_eq!(v["plans"][0]["fields"], json!(["Id"]));
    assert!(v["plans"][0]["relativeCost"].as_f64().unwrap() < 1.0);
    let (_, _, v) = sf.get(&explain("SELECT Id FROM Account"), &[]).await;
    assert!(
        v["plans"][0]["relativeCost"].as_f64().unwrap() > 1.0,
        "no filter over a large object"
    );
}

#[tokio::test]
async fn sobject_rows_composite_and_batch() {
    let sf = sf(50).await;
    let (_, v) = sf.query("SELECT Id FROM Account LIMIT 1").await;
    let id = v["records"][0]["Id"].as_str().unwrap().to_owned();
    let (s, _, v) = sf
        .get(&format!("/services/data/v66.0/sobjects/Account/{id}"), &[])
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["Id"], id.as_str());
    for f in [
        "Name",
        "Website",
        "Industry",
        "OwnerId",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "IsDeleted",
    ] {
        assert!(v.get(f).is_some(), "{f}");
    }
    let (s, _, v) = sf
        .get(
            "/services/data/v66.0/sobjects/Account/001000000000000AAA",
            &[],
        )
        .await;
    assert_eq!((s, v[0]["errorCode"].as_str()), (404, Some("NOT_FOUND")));

    let (s, v) = sf
        .post(
            "/services/data/v66.0/composite",
            json!({"allOrNone": false, "compositeRequest": [
                {"method": "POST", "url": "/services/data/v66.0/sobjects/Account", "referenceId": "newAcct", "body": {"Name": "Composite Co"}},
                {"method": "GET", "url": "/services/data/v66.0/sobjects/Account/@{newAcct.id}", "referenceId": "readBack"},
                {"method": "GET", "url": "/services/data/v66.0/sobjects/Account/001000000000000AAA", "referenceId": "missing"},
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let resp = v["compositeResponse"].as_array().unwrap();
    assert_eq!(resp[0]["httpStatusCode"], 201);
    assert_eq!(resp[1]["httpStatusCode"], 200);
    assert_eq!(resp[1]["body"]["Name"], "Composite Co");
    assert_eq!(resp[2]["httpStatusCode"], 404);
    let used_after_composite = sf.sim.quota_usage().0;

    let (s, v) = sf
        .post(
            "/services/data/v66.0/composite/batch",
            json!({"batchRequests": [
                {"method": "GET", "url": "v66.0/sobjects/Account/001000000000000AAA"},
                {"method": "GET", "url": format!("v66.0/sobjects/Account/{id}")},
            ]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["hasErrors"], true);
    assert_eq!(v["results"][0]["statusCode"], 404);
    assert_eq!(v["results"][1]["statusCode"], 200);
    assert_eq!(
        sf.sim.quota_usage().0,
        used_after_composite + 2,
        "batch counts each subrequest"
    );

    let too_many: Vec<Value> = (0..26).map(|i| json!({"method": "GET", "url": "/services/data/v66.0/limits", "referenceId": format!("r{i}")})).collect();
    let (s, _) = sf
        .post(
            "/services/data/v66.0/composite",
            json!({"compositeRequest": too_many}),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn request_limit_exceeded_is_403_and_versions_uri_has_no_usage_header() {
    let cfg = SimConfig {
        quota_limit: Some(3),
        ..SimConfig::default()
    };
    let sim = common::start(Provider::Salesforce, cfg).await;
    let c = common::client(&sim);
    let at = sim.issue_access_token(DEMO_CLIENT_ID, DEMO_RUN_AS_USER);
    let url = format!("{}/services/data/v66.0/limits", sim.http_base_url());
    for i in 1..=3 {
        let r = c.get(&url).bearer_auth(&at).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["sforce-limit-info"],
            format!("api-usage={i}/3").as_str()
        );
        if i == 3 {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["DailyApiRequests"], json!({"Max": 3, "Remaining": 0}));
        }
    }
    let r = c.get(&url).bearer_auth(&at).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("retry-after").is_none());
    assert!(r.headers().get("x-ratelimit-limit").is_none());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v[0]["errorCode"], "REQUEST_LIMIT_EXCEEDED");
    let r = c
        .get(format!("{}/services/data/", sim.http_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("sforce-limit-info").is_none());
    sim.faults().reset_quota();
    assert_eq!(
        c.get(&url).bearer_auth(&at).send().await.unwrap().status(),
        200
    );
    sim.faults().exhaust_quota();
    assert_eq!(
        c.get(&url).bearer_auth(&at).send().await.unwrap().status(),
        403
    );
}
