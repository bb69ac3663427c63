//! Helpers for the provider-auth e2e tests: read a connection's credential state where an SRE
//! reads it (the admin port's `/status` and the state gauge on `/metrics`).

use crate::Gatehouse;

/// The `credential` object of `connection` in the admin port's `/status` JSON.
pub async fn credential_status(gatehouse: &Gatehouse, connection: &str) -> serde_json::Value {
    let status: serde_json::Value = gatehouse
        .admin_get("/status")
        .await
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
    gatehouse
        .admin_get("/dashboard")
        .await
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

/// The first log line that `matches`, waiting up to 10 s for it: data-plane workers write their
/// lines when their event loop goes idle, and the harness reads stderr on its own thread.
pub async fn log_line(gatehouse: &Gatehouse, matches: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(line) = gatehouse.logs().into_iter().find(|l| matches(l)) {
            return line;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no such log line; log:\n{}",
            gatehouse.logs().join("\n")
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
