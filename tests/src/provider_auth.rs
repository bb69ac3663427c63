//! Helpers for the provider-auth e2e tests: read a connection's credential state where an SRE
//! reads it (the admin port's `/status` and the state gauge on `/metrics`).

use crate::Gatehouse;

/// The `credential` object of `connection` in the admin port's `/status` JSON.
pub async fn credential_status(gatehouse: &Gatehouse, connection: &str) -> serde_json::Value {
    let status: serde_json::Value = reqwest::get(format!("{}/status", gatehouse.admin_url()))
        .await
        .expect("status reachable")
        .json()
        .await
        .expect("status is JSON");
    status["connections"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["id"] == connection))
        .map(|c| c["credential"].clone())
        .unwrap_or_else(|| panic!("{connection} not in /status: {status}"))
}

/// The admin dashboard's HTML.
pub async fn dashboard(gatehouse: &Gatehouse) -> String {
    reqwest::get(format!("{}/dashboard", gatehouse.admin_url()))
        .await
        .expect("dashboard reachable")
        .text()
        .await
        .unwrap_or_default()
}

/// The value of `gatehouse_credential_state{connection, state}` in a `/metrics` scrape.
pub fn credential_gauge(metrics: &str, connection: &str, state: &str) -> Option<i64> {
    let prefix =
        format!(r#"gatehouse_credential_state{{connection="{connection}",state="{state}"}} "#);
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}
