//! Issue 5, fleet: four Gatehouse processes share one Salesforce connection through
//! PostgreSQL while the provider rotates refresh tokens on every use. Across many expiries
//! exactly one process refreshes each time, the provider never sees a rotated (dead) refresh
//! token, and the stored refresh token is always the live one.
//!
//! Needs the PostgreSQL at 127.0.0.1:5432 (db `test`, user postgres): fails loudly without it.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use gatehouse_e2e::{configs, Gatehouse};
use gatehouse_sim::{Provider, SimConfig, Simulator, DEMO_CLIENT_ID, DEMO_USER};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALLER: &str = "fleet-caller-token";
/// base64 of 32 bytes of 0x01: a test-only store key shared by the fleet.
const STORE_KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

pub fn pg_url() -> String {
    std::env::var("GATEHOUSE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn config(sim_base: &str, token_url: &str, seed: &str, schema: &str) -> String {
    let store = format!("[store]\nurl = \"{}\"\nschema = \"{schema}\"\n", pg_url());
    let extra = "token_lifetime_secs = 4\nrefresh_margin_secs = 2";
    let sf =
        configs::oauth_refresh_connection("sf", "salesforce", sim_base, token_url, seed, extra);
    let svc = configs::caller("svc", CALLER, &["sf"], &["GET"], &["/services/data/**"]);
    format!("{}{store}{sf}{svc}", configs::server(""))
}

async fn get(client: &reqwest::Client, gh: &str) -> (u16, String) {
    match client
        .get(format!("{gh}/sf/services/data/v60.0/limits"))
        .header("proxy-authorization", format!("Bearer {CALLER}"))
        .send()
        .await
    {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_processes_refresh_once_per_expiry_under_rotation() {
    // Fail loudly, never skip, when PostgreSQL is down.
    std::net::TcpStream::connect("127.0.0.1:5432")
        .expect("PostgreSQL must be running at 127.0.0.1:5432 for this test");
    let sim = Simulator::start(
        Provider::Salesforce,
        SimConfig {
            access_token_lifetime: Some(Duration::from_secs(4)),
            rotate_refresh_tokens: Some(true),
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let seed = sim.issue_refresh_token(DEMO_CLIENT_ID, DEMO_USER);
    let schema = format!("gh_fleet_{}", std::process::id());
    let text = config(&sim.http_base_url(), &sim.token_url(), &seed, &schema);
    let first = Gatehouse::start_with(&text, &[], &[("GATEHOUSE_STORE_KEY", STORE_KEY)]);
    let mut fleet = vec![first];
    for _ in 0..3 {
        let sibling = fleet[0].spawn_sibling();
        fleet.push(sibling);
    }
    let urls: Vec<String> = fleet.iter().map(|g| g.data_url().to_owned()).collect();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(24);
    let mut loops = Vec::new();
    for worker in 0..16 {
        let (client, url, ok, failed) = (
            client.clone(),
            urls[worker % 4].clone(),
            ok.clone(),
            failed.clone(),
        );
        loops.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let (status, body) = get(&client, &url).await;
                if status == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.lock().push((status, body));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    for l in loops {
        l.await.unwrap();
    }
    let failed = failed.lock().clone();
    assert!(
        failed.is_empty(),
        "{} failed requests, first: {:?}",
        failed.len(),
        failed.first()
    );
    let refreshes: Vec<u64> = sim
        .received()
        .into_iter()
        .filter(|r| r.body_text().contains("grant_type=refresh_token"))
        .map(|r| r.received_at_ms)
        .collect();
    let calls = sim.token_calls();
    eprintln!(
        "fleet: {} requests ok, {} refreshes, token calls {:?}",
        ok.load(Ordering::Relaxed),
        refreshes.len(),
        calls
    );
    assert_eq!(
        calls.failures, 0,
        "the provider never saw a dead (rotated) refresh token"
    );
    // 24 s of 4 s tokens refreshed 2 s (minus ≤0.5 s jitter) early: one refresh every ~1.5–2 s.
    assert!(
        refreshes.len() >= 10,
        "expected many expiries, saw {}",
        refreshes.len()
    );
    let mut sorted = refreshes.clone();
    sorted.sort_unstable();
    let min_gap = sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .min()
        .unwrap_or(u64::MAX);
    // Two processes refreshing for the same expiry would be milliseconds apart.
    assert!(
        min_gap >= 1000,
        "two refreshes {min_gap} ms apart: one expiry was refreshed twice"
    );
    assert!(
        refreshes.len() <= 17,
        "more refreshes ({}) than expiries",
        refreshes.len()
    );

    // The stored refresh token is the live one: a brand-new process, with every access token
    // expired at the provider, refreshes from the store and succeeds.
    let fresh = fleet[0].spawn_sibling();
    for mut g in fleet.drain(..) {
        g.kill();
    }
    sim.faults().expire_access_tokens();
    let (status, body) = get(&client, fresh.data_url()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sim.token_calls().failures, 0);
    let logs = fresh.logs().join("\n");
    assert!(!logs.contains(&seed), "seed refresh token in logs");
}
