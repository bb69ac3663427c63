//! Full walks through each simulator with the adapters' own calls: every seeded record once,
//! for each model, page after page, and with `modified_since` exactly the records changed
//! since then. The HTTP client here stands in for the proxy (which adds credentials, limits
//! and audit); the adapters only say what to call and read the answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gatehouse_adapters::unified::{Answer, CallTarget, ListAsk, Page, UnifiedError, WalkState};
use gatehouse_adapters::{builtin, models::Model};
use gatehouse_sim::{Provider as Sim, SimConfig, SimHandle, Simulator, DEMO_API_KEY};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

struct Walker {
    sim: SimHandle,
    provider: &'static str,
    client: reqwest::Client,
    auth: String,
}

async fn start(sim: Sim, provider: &'static str, records: usize) -> Walker {
    let config = SimConfig {
        record_count: Some(records),
        quota_limit: Some(1_000_000),
        ..SimConfig::default()
    };
    let handle = Simulator::start(sim, config).await.unwrap();
    let auth = match sim {
        Sim::Salesforce | Sim::HubSpot | Sim::GreenhouseV3 => {
            format!(
                "Bearer {}",
                handle.issue_access_token(gatehouse_sim::DEMO_CLIENT_ID, gatehouse_sim::DEMO_USER)
            )
        }
        _ => {
            use base64::Engine;
            let key = base64::engine::general_purpose::STANDARD.encode(format!("{DEMO_API_KEY}:"));
            format!("Basic {key}")
        }
    };
    Walker {
        sim: handle,
        provider,
        client: reqwest::Client::new(),
        auth,
    }
}

impl Walker {
    async fn send(
        &self,
        call: gatehouse_adapters::unified::ProviderCall,
    ) -> (u16, http::HeaderMap, Vec<u8>) {
        let base = self.sim.http_base_url();
        let url = match call.target {
            CallTarget::Relative { path, query } => match query {
                Some(q) => format!("{base}{path}?{q}"),
                None => format!("{base}{path}"),
            },
            CallTarget::HostRelative(path) => format!("{base}{path}"),
            CallTarget::Absolute(url) => {
                assert!(url.starts_with(&base), "{url} leaves the connection's host");
                url
            }
        };
        let method = reqwest::Method::from_bytes(call.method.as_str().as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, url)
            .header("authorization", &self.auth);
        for (name, value) in &call.headers {
            request = request.header(name.as_str(), value.as_bytes());
        }
        if let Some(body) = call.body {
            request = request.body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let mut headers = http::HeaderMap::new();
        for (name, value) in response.headers() {
            headers.insert(
                http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
        let body = response.bytes().await.unwrap().to_vec();
        (status, headers, body)
    }

    async fn page(
        &self,
        model: Model,
        page_size: u32,
        since: Option<SystemTime>,
        resume: Option<&WalkState>,
        sync_token: Option<&str>,
    ) -> Result<Page, UnifiedError> {
        let provider = builtin(self.provider).unwrap();
        let api = provider.unified().unwrap();
        let ask = ListAsk {
            page_size,
            modified_since: since,
            resume,
            sync_token,
        };
        let call = api.list_call(model, &ask)?;
        let (mut status, mut headers, mut body) = self.send(call.clone()).await;
        // HubSpot's search allows 4 calls a second per token; the proxy's limits pace that.
        for _ in 0..40 {
            if status != 429 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            (status, headers, body) = self.send(call.clone()).await;
        }
        assert!(
            (200..300).contains(&status),
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        api.read_page(
            model,
            &ask,
            &Answer {
                status,
                headers: &headers,
                body: &body,
            },
        )
    }

    /// Walks `model` to its end; the remote ids (each once) and the pages it took.
    async fn walk(&self, model: Model, page_size: u32, since: Option<SystemTime>) -> Walk {
        let mut walk = Walk::default();
        let mut resume: Option<WalkState> = None;
        loop {
            let page = self
                .page(model, page_size, since, resume.as_ref(), None)
                .await
                .unwrap();
            walk.pages += 1;
            assert!(page.records.len() <= page_size as usize);
            for record in &page.records {
                assert!(
                    walk.ids.insert(record.remote_id.clone()),
                    "{} {model:?}: {} served twice",
                    self.provider,
                    record.remote_id
                );
                walk.modified.push(record.remote_modified_at.clone());
            }
            walk.sync_token = page.sync_token.clone();
            match page.next {
                Some(next) => resume = Some(next),
                None => return walk,
            }
            assert!(walk.pages < 10_000, "the walk does not end");
        }
    }
}

#[derive(Default)]
struct Walk {
    ids: BTreeSet<String>,
    modified: Vec<Option<String>>,
    pages: usize,
    sync_token: Option<String>,
}

fn at(rfc3339: &str) -> SystemTime {
    let parsed =
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
            .unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_secs(parsed.unix_timestamp() as u64)
}

/// The median modification time of a full walk: about half the records are at or after it.
fn median(walk: &Walk) -> String {
    let mut times: Vec<&String> = walk.modified.iter().flatten().collect();
    times.sort();
    times[times.len() / 2].clone()
}

async fn full_and_incremental(walker: &Walker, model: Model, seeded: usize, page_size: u32) {
    let full = walker.walk(model, page_size, None).await;
    assert_eq!(full.ids.len(), seeded, "{} {model:?}", walker.provider);
    assert!(
        full.pages > 1,
        "{} {model:?}: one page only",
        walker.provider
    );
    let since = median(&full);
    let changed: BTreeSet<&String> = full.ids.iter().collect();
    let expected = full
        .modified
        .iter()
        .filter(|m| m.as_deref().is_some_and(|m| m >= since.as_str()))
        .count();
    let incremental = walker.walk(model, page_size, Some(at(&since))).await;
    assert!(incremental.ids.iter().all(|id| changed.contains(id)));
    assert!(
        incremental
            .modified
            .iter()
            .all(|m| m.as_deref().is_some_and(|m| m >= since.as_str())),
        "{} {model:?}: a record older than modified_since",
        walker.provider
    );
    assert!(
        incremental.ids.len() >= expected,
        "{} {model:?}: {} of {expected} changed records",
        walker.provider,
        incremental.ids.len()
    );
}

#[tokio::test]
async fn salesforce_walks_every_live_record_once_and_changes_with_deletions() {
    let walker = start(Sim::Salesforce, "salesforce", 450).await;
    for model in [Model::Account, Model::Contact, Model::Opportunity] {
        let full = walker.walk(model, 50, None).await;
        // About 2% of seeded rows are deleted: a full walk lists live ones only.
        assert!(
            full.ids.len() < 450 && full.ids.len() > 400,
            "{model:?} {}",
            full.ids.len()
        );
        assert!(full.pages >= 8);
        let since = median(&full);
        let incremental = walker.walk(model, 200, Some(at(&since))).await;
        let live_changed = full
            .modified
            .iter()
            .filter(|m| m.as_deref().is_some_and(|m| m >= since.as_str()))
            .count();
        // queryAll: deleted rows changed since then come too.
        assert!(incremental.ids.len() > live_changed, "{model:?}");
        assert!(incremental
            .modified
            .iter()
            .all(|m| m.as_deref() >= Some(since.as_str())));
    }
    walker.sim.shutdown().await;
}

#[tokio::test]
async fn hubspot_lists_and_searches_every_record_once() {
    let walker = start(Sim::HubSpot, "hubspot", 300).await;
    for model in [Model::Account, Model::Contact, Model::Opportunity] {
        let full = walker.walk(model, 40, None).await;
        // About 3% are archived, which the list leaves out.
        assert!(full.ids.len() < 300 && full.ids.len() > 270, "{model:?}");
        let since = median(&full);
        let expected = full
            .modified
            .iter()
            .filter(|m| m.as_deref().is_some_and(|m| m >= since.as_str()))
            .count();
        let incremental = walker.walk(model, 25, Some(at(&since))).await;
        assert_eq!(incremental.ids.len(), expected, "{model:?}");
        assert!(incremental.ids.is_subset(&full.ids));
    }
    walker.sim.shutdown().await;
}

#[tokio::test]
async fn greenhouse_v1_follows_links_and_v3_cursors() {
    for (sim, name) in [
        (Sim::GreenhouseV1, "greenhouse"),
        (Sim::GreenhouseV3, "greenhouse-v3"),
    ] {
        let walker = start(sim, name, 240).await;
        full_and_incremental(&walker, Model::Candidate, 240, 35).await;
        full_and_incremental(&walker, Model::Application, 240, 50).await;
        // One job per ten candidates, at least five.
        full_and_incremental(&walker, Model::Job, 24, 5).await;
        walker.sim.shutdown().await;
    }
}

#[tokio::test]
async fn lever_walks_opportunities_and_postings_by_offset() {
    let walker = start(Sim::Lever, "lever", 230).await;
    full_and_incremental(&walker, Model::Candidate, 230, 40).await;
    full_and_incremental(&walker, Model::Job, 23, 4).await;
    let full = walker.walk(Model::Candidate, 100, None).await;
    assert_eq!(full.ids.len(), 230);
    walker.sim.shutdown().await;
}

#[tokio::test]
async fn ashby_walks_by_cursor_and_hands_back_a_sync_token() {
    let walker = start(Sim::Ashby, "ashby", 210).await;
    full_and_incremental(&walker, Model::Candidate, 210, 40).await;
    full_and_incremental(&walker, Model::Application, 210, 100).await;
    full_and_incremental(&walker, Model::Job, 21, 4).await;
    let full = walker.walk(Model::Job, 10, None).await;
    let token = full.sync_token.expect("the last page carries a sync token");
    // Nothing changed since: a walk from the token is one empty page.
    let page = walker
        .page(Model::Job, 10, None, None, Some(&token))
        .await
        .unwrap();
    assert!(page.records.is_empty() && page.next.is_none());
    assert!(page.sync_token.is_some());
    let dead = walker
        .page(Model::Job, 10, None, None, Some("not-a-token"))
        .await;
    assert_eq!(dead, Err(UnifiedError::ResyncNeeded));
    walker.sim.shutdown().await;
}

#[tokio::test]
async fn salesforce_records_changed_mid_walk_come_once_now_or_in_the_next_walk() {
    let walker = start(Sim::Salesforce, "salesforce", 300).await;
    let order: Vec<String> = {
        let full = walker.walk(Model::Account, 2000, None).await;
        assert_eq!(walker.walk(Model::Account, 2000, None).await.pages, 1);
        full.ids.into_iter().collect()
    };
    let first = walker
        .page(Model::Account, 50, None, None, None)
        .await
        .unwrap();
    let served = first.records[0].remote_id.clone();
    let mut seen: BTreeSet<String> = first.records.iter().map(|r| r.remote_id.clone()).collect();
    let mut highest: Vec<String> = first
        .records
        .iter()
        .filter_map(|r| r.remote_modified_at.clone())
        .collect();
    let ahead = order.iter().find(|id| !seen.contains(*id)).unwrap().clone();
    // Both change after the walk began: one already served, one not yet reached.
    for id in [&served, &ahead] {
        let base = walker.sim.http_base_url();
        let response = walker
            .client
            .patch(format!("{base}/services/data/v66.0/sobjects/Account/{id}"))
            .header("authorization", &walker.auth)
            .header("content-type", "application/json")
            .body(r#"{"Name": "Changed mid-walk"}"#)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
    let mut resume = first.next;
    while let Some(state) = resume {
        let page = walker
            .page(Model::Account, 50, None, Some(&state), None)
            .await
            .unwrap();
        for record in &page.records {
            assert!(
                seen.insert(record.remote_id.clone()),
                "{} twice",
                record.remote_id
            );
            highest.extend(record.remote_modified_at.clone());
        }
        resume = page.next;
    }
    assert!(
        !seen.contains(&ahead),
        "a record changed mid-walk waits for the next walk"
    );
    assert_eq!(seen.len(), order.len() - 1);
    // The next walk, from the highest modification time served, brings both changes.
    let mark = highest.into_iter().max().unwrap();
    let next = walker.walk(Model::Account, 50, Some(at(&mark))).await;
    assert!(next.ids.contains(&served) && next.ids.contains(&ahead));
    walker.sim.shutdown().await;
}
