//! The admin port's own health page (`/dashboard`, HTML, refreshes itself) and its JSON twin
//! (`/status`): per connection, the provider, the host, the credential state and what the
//! requests through it came to, and how long ago each model's last unified walk completed. No
//! secrets: ids, states, counts.

use crate::body::{full, ProxyBody};
use crate::state::AppState;
use http::{header, HeaderValue, Response};
use serde::Serialize;

pub use crate::telemetry::request_stats::ConnectionTally;

#[derive(Serialize)]
struct ConnectionView {
    id: String,
    provider: String,
    host: String,
    credential: Option<crate::credentials::ConnectionStatus>,
    traffic: ConnectionTally,
    /// The unified API's walks: per model, seconds since the last completed one.
    sync: Vec<crate::unified::sync_state::ModelLag>,
}

fn views(state: &AppState) -> Vec<ConnectionView> {
    let tallies = state.metrics.requests.by_connection();
    let statuses = state.credentials.status();
    let mut out: Vec<ConnectionView> = state
        .connections
        .values()
        .map(|c| ConnectionView {
            id: c.id.clone(),
            provider: c.provider.name().to_owned(),
            host: c.base.authority.to_string(),
            credential: statuses.iter().find(|s| s.connection == c.id).cloned(),
            traffic: tallies.get(&c.id).cloned().unwrap_or_default(),
            sync: state.sync.lags(&c.id),
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

pub fn status_json(state: &AppState) -> Response<ProxyBody> {
    let body = serde_json::json!({ "connections": views(state), "callers": state.policy.load().caller_count() });
    let mut response = Response::new(full(body.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub fn page(state: &AppState) -> Response<ProxyBody> {
    let mut rows = String::new();
    for v in views(state) {
        let cred = v.credential.as_ref();
        let cred_state = cred.map_or("unknown", |c| c.state);
        let class = state_class(cred_state);
        // `degraded (provider_auth, 3 refused in a row)`: what an SRE needs before the runbook.
        let shown = match cred.and_then(|c| c.reason.map(|r| (r, c.auth_rejections))) {
            Some((reason, rejections)) => {
                format!("{cred_state} ({reason}, {rejections} refused in a row)")
            }
            None => cred_state.to_owned(),
        };
        let count = |k: &str| v.traffic.status_classes.get(k).copied().unwrap_or(0);
        let errors: Vec<String> = v
            .traffic
            .errors
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        let sync: Vec<String> = v
            .sync
            .iter()
            .map(|s| format!("{}: {:.0} s ago", s.model, s.lag_seconds))
            .collect();
        rows.push_str(&format!(
            "<tr><td>{id}</td><td>{provider}</td><td>{host}</td><td class=\"{class}\">{shown}</td><td>{grant}</td><td>{expires}</td><td>{req}</td><td>{ok}</td><td>{c4}</td><td>{c5}</td><td>{errors}</td><td>{sync}</td></tr>\n",
            sync = escape(&sync.join(", ")),
            shown = escape(&shown),
            id = escape(&v.id),
            provider = escape(&v.provider),
            host = escape(&v.host),
            grant = cred.map_or("", |c| c.grant),
            expires = escape(cred.and_then(|c| c.expires_at.as_deref()).unwrap_or("")),
            req = v.traffic.requests,
            ok = count("2xx"),
            c4 = count("4xx"),
            c5 = count("5xx"),
            errors = escape(&errors.join(", ")),
        ));
    }
    let html = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>Gatehouse</title><style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}} th{{background:#f4f4f4}}
.ok{{color:#176b2c}} .warn{{color:#9a6700}} .bad{{color:#b3261e;font-weight:bold}}
</style></head><body><h1>Gatehouse</h1>
<p>{callers} callers in the policy. Ready: {ready}. <a href="/metrics">metrics</a> · <a href="/status">status JSON</a></p>
<table><tr><th>connection</th><th>provider</th><th>host</th><th>credential</th><th>grant</th><th>token expires</th><th>requests</th><th>2xx</th><th>4xx</th><th>5xx</th><th>ended by Gatehouse</th><th>last unified walk</th></tr>
{rows}</table></body></html>"#,
        callers = state.policy.load().caller_count(),
        ready = if state.accepting.load(std::sync::atomic::Ordering::Acquire) {
            "yes"
        } else {
            "no (shutting down)"
        },
    );
    let mut response = Response::new(full(html));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// The colour of a credential state: green when requests get a credential the provider takes,
/// red when a person must act, amber for the states that recover by themselves or need a look.
fn state_class(state: &str) -> &'static str {
    match state {
        "ok" | "static" | "refreshing" => "ok",
        "reauth_required" | "misconfigured" => "bad",
        _ => "warn",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(escape("<a&\">"), "&lt;a&amp;&quot;&gt;");
    }
}
