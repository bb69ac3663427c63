//! A provider that refuses the credential while the token endpoint is happy (or down), against
//! the simulators' real token endpoints, on tokio's paused clock: the refresh pause grows and a
//! success ends it, no token call is made during it, and the state gauge follows.

use super::tests::{config_text, refresh_credentials, sim, start_with, Harness};
use crate::credentials::{Applied, AuthSignal, CredentialError};
use gatehouse_sim::{Provider, SimHandle, DEMO_CLIENT_ID, DEMO_USER};
use std::time::Duration;

async fn connected(provider: Provider, name: &str) -> (SimHandle, Harness) {
    let sim = sim(provider, Duration::from_secs(3600), true).await;
    let seed = sim.issue_refresh_token(DEMO_CLIENT_ID, DEMO_USER);
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        dir.path(),
        name,
        &sim.http_base_url(),
        &refresh_credentials(&sim, &seed, 3600, 60),
    );
    let h = start_with(dir, &text).await;
    h.apply().await.unwrap();
    (sim, h)
}

/// The gauge's sample for `state` of connection `sf`.
fn gauge(h: &Harness, state: &str) -> Option<String> {
    let prefix = format!(r#"gatehouse_credential_state{{connection="sf",state="{state}"}} "#);
    h.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
}

/// One 401 as the exchange sees it: the refusal, then the refresh-and-replay decision.
async fn refused(h: &Harness, applied: &Applied) -> Result<bool, CredentialError> {
    h.creds
        .observe("sf", "salesforce", AuthSignal::Rejected, applied);
    h.creds.on_unauthorized("sf", applied).await
}

fn paused_for(result: Result<(), CredentialError>) -> Duration {
    match result {
        Err(CredentialError::ProviderAuthRejected { retry_after, .. }) => retry_after,
        other => panic!("expected ProviderAuthRejected, got {other:?}"),
    }
}

/// A 401 worth one refresh, and the replay with the new token refused as well: the pause that
/// starts, and the refused token.
async fn refresh_then_refused_again(h: &Harness) -> (Duration, Applied) {
    let (_, applied) = h.apply().await.unwrap();
    assert!(refused(h, &applied).await.unwrap(), "worth one replay");
    let (_, fresh) = h.apply().await.unwrap();
    let replay = h
        .creds
        .observe_replay("sf", "salesforce", AuthSignal::Rejected, &fresh);
    (paused_for(replay), fresh)
}

/// The connection's state on the status page, and the gauge at 1 for `gauge_state` only (of
/// `ok` and `degraded`).
fn shows(h: &Harness, state: &str, gauge_state: &str) {
    assert_eq!(h.state(), state);
    for other in ["ok", "degraded"] {
        let want = if other == gauge_state { "1" } else { "0" };
        assert_eq!(gauge(h, other).as_deref(), Some(want), "gauge for {other}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_fresh_token_pauses_refresh_on_401_growing_and_a_success_resets_it() {
    let (sim, h) = connected(Provider::Salesforce, "salesforce").await;
    sim.faults().set_reject_credentials(true);
    let calls = sim.token_calls().total;

    // The first 401: one refresh, and the replay with the new token is refused too.
    let (pause, _) = refresh_then_refused_again(&h).await;
    assert_eq!(sim.token_calls().total, calls + 1);
    assert_eq!(pause, Duration::from_secs(5));
    shows(&h, "degraded", "degraded");
    let status = h.creds.status().into_iter().next().unwrap();
    assert_eq!(
        (status.reason, status.auth_rejections),
        (Some("provider_auth"), 2)
    );

    // During the pause every 401 is answered at once, without a token call.
    for _ in 0..30 {
        let (_, applied) = h.apply().await.unwrap();
        let err = refused(&h, &applied).await.unwrap_err();
        assert!(paused_for(Err(err)) <= pause);
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    assert_eq!(
        sim.token_calls().total,
        calls + 1,
        "no token call in the pause"
    );

    // After it: one more refresh; its token refused as well doubles the pause.
    tokio::time::advance(Duration::from_secs(2)).await;
    let (pause, fresh) = refresh_then_refused_again(&h).await;
    assert_eq!(sim.token_calls().total, calls + 2);
    assert_eq!(pause, Duration::from_secs(10));

    // The provider takes tokens again: the next 2xx ends the pause and the degraded state.
    sim.faults().set_reject_credentials(false);
    h.creds
        .observe("sf", "salesforce", AuthSignal::Accepted, &fresh);
    shows(&h, "ok", "ok");
    sim.faults().set_reject_credentials(true);
    let (pause, _) = refresh_then_refused_again(&h).await;
    assert_eq!(
        sim.token_calls().total,
        calls + 3,
        "refreshing again at once"
    );
    assert_eq!(pause, Duration::from_secs(5), "the doubling starts over");
}

#[tokio::test(start_paused = true)]
async fn a_401_while_the_token_endpoint_is_down_is_the_outage_not_a_passed_through_401() {
    let (sim, h) = connected(Provider::Salesforce, "salesforce").await;
    sim.faults()
        .set_token_endpoint_down(Some(gatehouse_sim::TokenEndpointDown::Unavailable));
    let (_, applied) = h.apply().await.unwrap();
    match h.creds.on_unauthorized("sf", &applied).await {
        Err(CredentialError::TokenEndpointUnavailable {
            retry_after,
            reason,
            ..
        }) => {
            assert!(retry_after >= Duration::from_secs(1), "{retry_after:?}");
            assert_eq!(reason, "http_503");
        }
        other => panic!("expected TokenEndpointUnavailable, got {other:?}"),
    }
    assert_eq!(h.state(), "token_endpoint_down");
    // Within the backoff a second 401 gets the same answer without another token call.
    let calls = sim.token_calls().total;
    let again = h.creds.on_unauthorized("sf", &applied).await;
    assert!(
        matches!(again, Err(CredentialError::TokenEndpointUnavailable { .. })),
        "{again:?}"
    );
    assert_eq!(sim.token_calls().total, calls);
}

#[tokio::test(start_paused = true)]
async fn refusals_in_a_row_degrade_an_oauth_connection_and_try_one_refresh() {
    // HubSpot's profile never refreshes on a 401: without this, a revoked install stayed `ok`.
    let (sim, h) = connected(Provider::HubSpot, "hubspot").await;
    let (_, applied) = h.apply().await.unwrap();
    let calls = sim.token_calls().total;
    for _ in 0..2 {
        h.creds
            .observe("sf", "hubspot", AuthSignal::Rejected, &applied);
    }
    assert_eq!(h.state(), "ok", "two refusals are not yet a pattern");
    h.creds
        .observe("sf", "hubspot", AuthSignal::Rejected, &applied);
    shows(&h, "degraded", "degraded");
    // The refresh runs in the background; let it finish.
    for _ in 0..50 {
        if sim.token_calls().total > calls {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        sim.token_calls().total,
        calls + 1,
        "one refresh on entering degraded"
    );
    for _ in 0..20 {
        h.creds
            .observe("sf", "hubspot", AuthSignal::Rejected, &applied);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        sim.token_calls().total,
        calls + 1,
        "and no more while it stays degraded"
    );
    assert_eq!(
        h.state(),
        "degraded",
        "the refresh succeeding is not the provider accepting"
    );
    h.creds
        .observe("sf", "hubspot", AuthSignal::Accepted, &applied);
    shows(&h, "ok", "ok");
}

#[tokio::test]
async fn a_static_credential_the_provider_keeps_refusing_is_degraded_until_a_2xx() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        dir.path(),
        "ashby",
        "http://127.0.0.1:9",
        "type = \"basic\"\nusername = \"key\"\npassword = \"\"",
    );
    let h = start_with(dir, &text).await;
    let (_, applied) = h.apply().await.unwrap();
    shows(&h, "static", "ok");
    for _ in 0..3 {
        h.creds
            .observe("sf", "ashby", AuthSignal::Rejected, &applied);
    }
    shows(&h, "degraded", "degraded");
    let status = h.creds.status().into_iter().next().unwrap();
    assert_eq!(
        (status.reason, status.auth_rejections),
        (Some("provider_auth"), 3)
    );
    assert!(
        !h.creds.on_unauthorized("sf", &applied).await.unwrap(),
        "no refresh for a static key"
    );
    h.creds
        .observe("sf", "ashby", AuthSignal::Accepted, &applied);
    shows(&h, "static", "ok");
}
