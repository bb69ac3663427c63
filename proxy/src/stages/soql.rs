//! The SOQL request guard: every query bound for a provider that speaks SOQL is checked
//! before it leaves — in the URL (`.../query?q=`, `.../queryAll?q=`) and inside composite
//! bodies — against the connection's rule catalog and the caller's allow-lists. Follow-up
//! pages (`nextRecordsUrl`) carry no query text and pass. Optionally the provider's query
//! planner is asked too (`?explain=`), cached by query shape.

use crate::config::{ConnectionConfig, ExplainConfig};
use crate::error::{Category, GatewayError};
use crate::stages::body::RequestBody;
use crate::stages::route::UpstreamBase;
use crate::telemetry::metrics::{Metrics, SoqlLabels};
use bytes::Bytes;
use gatehouse_adapters::Provider;
use gatehouse_guards::soql_guard::{
    queries_in_body, query_from_url, shape_key, CallerSoqlPolicy, CheckContext, Mode, RuleId,
    SoqlGuard, Verdict,
};
use http::HeaderMap;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use std::collections::HashMap;
use tokio::time::Instant;

/// One connection's SOQL guard and, if switched on, its explain check.
pub struct ConnectionSoql {
    guard: SoqlGuard,
    explain: Option<ExplainCheck>,
}

impl ConnectionSoql {
    /// The guard of one connection, or `None` when its provider speaks no SOQL.
    pub fn build(conn: &ConnectionConfig, provider: &dyn Provider) -> Result<Option<Self>, String> {
        if provider.soql().is_none() {
            return Ok(None);
        }
        let guard = SoqlGuard::new(conn.soql.clone().unwrap_or_default())
            .map_err(|e| format!("soql: {e}"))?;
        let explain = conn
            .soql_explain
            .clone()
            .filter(|e| e.enabled)
            .map(ExplainCheck::new);
        Ok(Some(ConnectionSoql { guard, explain }))
    }
}

/// The queries a request will carry, after any rewrite, and where they were found.
#[derive(Default)]
pub struct SoqlPlan {
    /// (query text as sent, the query endpoint path it goes to).
    pub queries: Vec<(String, String)>,
    /// A replacement for the request's query string (rewrite mode).
    pub query_string: Option<String>,
    /// A replacement body (a composite body with rewritten queries).
    pub body: Option<Bytes>,
}

/// What the SOQL stage needs of the connection a request goes to (a view, so this stage does
/// not depend on the runtime that holds it).
#[derive(Clone, Copy)]
pub struct Connection<'a> {
    pub id: &'a str,
    pub provider: &'a dyn Provider,
    pub clients: &'a crate::forward::upstream::UpstreamClients,
    /// The configured base URL; a token may name another API base (`instance_url`).
    pub base: &'a UpstreamBase,
    /// The connection's SOQL guard; `None` where its provider has no SOQL.
    pub soql: Option<&'a ConnectionSoql>,
}

pub struct Request<'a> {
    pub connection: Connection<'a>,
    /// For the log line of a blocked query.
    pub request_id: &'a str,
    pub caller: &'a str,
    pub caller_policy: Option<&'a CallerSoqlPolicy>,
    pub method: &'a http::Method,
    /// Provider path (decoded) and raw query string.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// See [`Asked::keyset_walk`].
    pub keyset_walk: bool,
}

/// A request as the SOQL stage is asked about it.
pub(crate) struct Asked<'a> {
    pub request_id: &'a str,
    pub caller: &'a str,
    /// The policy in force, for the caller's SOQL allow-lists.
    pub policy: &'a gatehouse_guards::policy::Policy,
    pub method: &'a http::Method,
    /// Provider path (decoded) and raw query string.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The caller's headers (its `Accept` goes to the planner call).
    pub headers: &'a HeaderMap,
    /// The query is the unified API's own keyset walk, not the caller's text: only syntax,
    /// limits and the caller's allow-lists apply, and the planner is not asked
    /// (`gatehouse_guards::soql_guard::CheckContext::keyset_walk` says why).
    pub keyset_walk: bool,
}

/// The SOQL request guard as one stage: the request's queries (in the URL and in the body)
/// checked against the rules and the caller's allow-lists, a rewritten body put in place of the
/// caller's, and the provider's planner asked. Returns the query string to send instead of the
/// caller's when a query in it was rewritten. A connection whose provider speaks no SOQL passes
/// untouched.
pub(crate) async fn guard(
    view: Connection<'_>,
    metrics: &Metrics,
    credentials: &crate::credentials::Credentials,
    asked: Asked<'_>,
    body: &mut RequestBody,
) -> Result<Option<String>, GatewayError> {
    let Some(soql) = view.soql else {
        return Ok(None);
    };
    let request = Request {
        connection: view,
        request_id: asked.request_id,
        caller: asked.caller,
        caller_policy: asked.policy.caller_soql(asked.caller),
        method: asked.method,
        path: asked.path,
        query: asked.query,
        keyset_walk: asked.keyset_walk,
    };
    let mut plan = check(soql, metrics, &request, body)?;
    if let Some(rewritten) = plan.body.take() {
        *body = RequestBody::Buffered(rewritten);
    }
    if !asked.keyset_walk {
        let accept = asked.headers.get(http::header::ACCEPT);
        explain(soql, view, credentials, accept, &plan).await?;
    }
    Ok(plan.query_string)
}

/// Checks the SOQL in a request; returns what to send instead when a query was rewritten.
pub fn check(
    soql: &ConnectionSoql,
    metrics: &Metrics,
    req: &Request<'_>,
    body: &RequestBody,
) -> Result<SoqlPlan, GatewayError> {
    let mut plan = SoqlPlan::default();
    if let Some(query) = req.query {
        if query.split('&').filter(|p| p.starts_with("q=")).count() > 1 {
            return Err(GatewayError::bad_request(
                "ambiguous_soql",
                "send a single q= parameter",
            ));
        }
        if let Some((text, query_all)) = query_from_url(&format!("{}?{query}", req.path)) {
            let verdict = check_one(soql, metrics, req, &text, query_all)?;
            let sent = match verdict.rewritten {
                Some(rewritten) => {
                    plan.query_string = Some(replace_q(query, &rewritten));
                    rewritten
                }
                None => text,
            };
            plan.queries.push((sent, req.path.to_owned()));
        }
    }
    let body_carries_soql = req
        .connection
        .provider
        .soql()
        .is_some_and(|api| api.body_carries_soql(req.method, req.path));
    if body_carries_soql {
        let RequestBody::Buffered(bytes) = body else {
            return match body {
                RequestBody::Empty => Ok(plan),
                _ => Err(GatewayError::new(
                    Category::PayloadTooLarge,
                    "soql_body_too_large",
                    "a body that may carry SOQL must fit the replay buffer to be checked",
                )),
            };
        };
        let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(bytes) else {
            return Err(GatewayError::bad_request(
                "invalid_json",
                "the composite body is not valid JSON",
            ));
        };
        let mut changed = false;
        for embedded in queries_in_body(&json) {
            let verdict = check_one(soql, metrics, req, &embedded.soql, embedded.query_all)?;
            let sub_path = json
                .pointer(&embedded.pointer)
                .and_then(|v| v.as_str())
                .map(|u| u.split('?').next().unwrap_or(u).to_owned())
                .unwrap_or_default();
            let sent = match verdict.rewritten {
                Some(rewritten) => {
                    if let Some(slot) = json.pointer_mut(&embedded.pointer) {
                        if let Some(url) = slot.as_str().map(str::to_owned) {
                            if let Some((path, query)) = url.split_once('?') {
                                *slot = serde_json::Value::String(format!(
                                    "{path}?{}",
                                    replace_q(query, &rewritten)
                                ));
                                changed = true;
                            }
                        }
                    }
                    rewritten
                }
                None => embedded.soql,
            };
            plan.queries.push((sent, sub_path));
        }
        if changed {
            plan.body = serde_json::to_vec(&json).ok().map(Bytes::from);
        }
    }
    Ok(plan)
}

fn check_one(
    soql: &ConnectionSoql,
    metrics: &Metrics,
    req: &Request<'_>,
    text: &str,
    query_all: bool,
) -> Result<Verdict, GatewayError> {
    let verdict = soql.guard.check(
        text,
        req.caller_policy,
        &CheckContext {
            query_all,
            today: None,
            keyset_walk: req.keyset_walk,
        },
    );
    let count = |verdict: &str, rule: &str| {
        metrics
            .soql_verdicts
            .get_or_create(&SoqlLabels {
                connection: req.connection.id.to_owned(),
                caller: req.caller.to_owned(),
                verdict: verdict.to_owned(),
                rule: rule.to_owned(),
            })
            .inc();
    };
    for v in &verdict.violations {
        let kind = match v.mode {
            Mode::Enforce => "block",
            Mode::Observe => "observe",
            Mode::Rewrite => "rewrite",
            Mode::Off => continue,
        };
        count(kind, v.rule.as_str());
    }
    if verdict.is_blocked() {
        tracing::info!(request_id = req.request_id, connection = req.connection.id, caller = req.caller, rules = ?verdict.blocking().map(|v| v.rule.as_str()).collect::<Vec<_>>(), "SOQL blocked");
        return Err(blocked(text, &verdict));
    }
    if !verdict.violations.iter().any(|v| v.mode == Mode::Enforce) {
        count("allow", "none");
    }
    Ok(verdict)
}

fn blocked(query: &str, verdict: &Verdict) -> GatewayError {
    let blocking: Vec<_> = verdict.blocking().collect();
    let rules: Vec<&str> = blocking.iter().map(|v| v.rule.as_str()).collect();
    let first = blocking
        .first()
        .map(|v| format!("{} Fix: {}", v.message, v.hint))
        .unwrap_or_default();
    let violations: Vec<serde_json::Value> = verdict
        .violations
        .iter()
        .map(|v| {
            serde_json::json!({
                "rule": v.rule.as_str(), "mode": v.mode.as_str(), "message": v.message,
                "span": [v.span.0, v.span.1], "chars": [v.chars.0, v.chars.1], "hint": v.hint,
            })
        })
        .collect();
    // An oversized query is not echoed back whole: its start is enough to recognise it.
    let too_long = blocking.iter().any(|v| v.rule == RuleId::QueryTooLong);
    let shown: String = if too_long {
        query.chars().take(200).collect()
    } else {
        query.to_owned()
    };
    let mut details = serde_json::json!({ "query": shown, "violations": violations });
    if let Some(parse_error) = &verdict.parse_error {
        details["parse_error"] = serde_json::json!(parse_error.to_string());
    }
    let code = if too_long {
        "query_too_long"
    } else {
        "soql_blocked"
    };
    GatewayError::new(
        Category::GuardBlocked,
        code,
        format!("SOQL blocked by {}: {first}", rules.join(", ")),
    )
    .with_details(details)
}

/// `q=` replaced by `soql`, other parameters kept in order.
fn replace_q(query: &str, soql: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(soql.as_bytes()).collect();
    query
        .split('&')
        .map(|pair| {
            if pair.starts_with("q=") {
                format!("q={encoded}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Asks the provider's planner about each query (cached by shape), with the connection's
/// credential and on the host the query itself goes to (the token's API base when it names
/// one). `accept` is the caller's `Accept`, passed on.
pub async fn explain(
    soql: &ConnectionSoql,
    connection: Connection<'_>,
    credentials: &crate::credentials::Credentials,
    accept: Option<&http::HeaderValue>,
    plan: &SoqlPlan,
) -> Result<(), GatewayError> {
    let Some(check) = &soql.explain else {
        return Ok(());
    };
    if plan.queries.is_empty() {
        return Ok(());
    }
    let mut headers = HeaderMap::new();
    if let Some(accept) = accept {
        headers.insert(http::header::ACCEPT, accept.clone());
    }
    let applied = credentials.apply(connection.id, &mut headers).await?;
    let base = applied.base_url.as_deref().unwrap_or(connection.base);
    for (query, path) in &plan.queries {
        let asked = PlanQuestion {
            connection,
            base,
            headers: &headers,
            query,
            path,
        };
        check.check(asked).await?;
    }
    Ok(())
}

/// One query to ask the provider's planner about, and where and how to ask.
#[derive(Clone, Copy)]
struct PlanQuestion<'a> {
    connection: Connection<'a>,
    /// The API base the query itself goes to (the token's, where it names one).
    base: &'a UpstreamBase,
    /// The credential and `Accept` the planner call carries.
    headers: &'a HeaderMap,
    query: &'a str,
    /// The provider path the query was sent to.
    path: &'a str,
}

struct ExplainCheck {
    config: ExplainConfig,
    /// shape → (checked at, Some(reason) when blocked).
    cache: Mutex<HashMap<String, (Instant, Option<String>)>>,
}

impl ExplainCheck {
    fn new(config: ExplainConfig) -> Self {
        Self {
            config,
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn check(&self, asked: PlanQuestion<'_>) -> Result<(), GatewayError> {
        let PlanQuestion {
            connection, query, ..
        } = asked;
        let Some(shape) = shape_key(query) else {
            return Ok(());
        };
        let cached = self
            .cache
            .lock()
            .get(&shape)
            .filter(|(at, _)| at.elapsed() < self.config.cache_ttl)
            .map(|(_, r)| r.clone());
        let outcome = match cached {
            Some(outcome) => outcome,
            None => match tokio::time::timeout(self.config.timeout, self.ask(asked)).await {
                Ok(Some(outcome)) => {
                    let mut cache = self.cache.lock();
                    if cache.len() >= self.config.cache_entries {
                        cache.clear();
                    }
                    cache.insert(shape, (Instant::now(), outcome.clone()));
                    outcome
                }
                // No answer in time, or an answer we cannot read: the static verdict stands.
                Ok(None) | Err(_) => {
                    tracing::warn!(
                        connection = connection.id,
                        "query plan unavailable; static SOQL verdict used"
                    );
                    None
                }
            },
        };
        match outcome {
            None => Ok(()),
            Some(reason) => Err(GatewayError::new(Category::GuardBlocked, "soql_plan_blocked", format!("SOQL blocked by explain: {reason}"))
                .with_details(serde_json::json!({"query": query, "violations": [{"rule": "explain", "mode": "enforce", "message": reason, "span": [0, query.len()], "hint": "filter on an indexed field so the planner can use an index"}]}))),
        }
    }

    /// Some(None) = plan fine, Some(Some(reason)) = blocked, None = no usable answer.
    /// Asks the planner on the same host the query itself would go to (`base`).
    async fn ask(&self, asked: PlanQuestion<'_>) -> Option<Option<String>> {
        let PlanQuestion {
            connection,
            base,
            headers,
            query,
            path,
        } = asked;
        let api = connection.provider.soql()?;
        let pq = api.explain_path_and_query(path, query)?;
        let (plan_path, plan_query) = match pq.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (pq.as_str(), None),
        };
        let to = base.join(plan_path, plan_query).ok()?;
        let mut sent = http::HeaderMap::new();
        for name in [http::header::AUTHORIZATION, http::header::ACCEPT] {
            if let Some(v) = headers.get(&name) {
                sent.insert(name, v.clone());
            }
        }
        let response = connection
            .clients
            .send(&http::Method::GET, &to, sent, crate::body::empty())
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let bytes = response.into_body().collect().await.ok()?.to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let best = api.best_query_plan(&body)?;
        if best.full_scan {
            return Some(Some(format!(
                "the best plan is a table scan (relativeCost {:.2})",
                best.relative_cost
            )));
        }
        if best.relative_cost > self.config.max_relative_cost {
            return Some(Some(format!(
                "the best plan's relativeCost {:.2} is above {:.2} (not selective)",
                best.relative_cost, self.config.max_relative_cost
            )));
        }
        Some(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_query_is_answered_as_query_too_long() {
        let guard = SoqlGuard::new(gatehouse_guards::soql_guard::SoqlGuardConfig {
            max_query_chars: 40,
            ..Default::default()
        })
        .unwrap();
        let query = format!(
            "SELECT Id FROM Account WHERE Name IN ({}) LIMIT 5",
            "'a', ".repeat(200)
        );
        let verdict = guard.check(&query, None, &CheckContext::default());
        let e = blocked(&query, &verdict);
        assert_eq!(e.category, Category::GuardBlocked);
        assert_eq!(e.code, "query_too_long");
        let details = e.details().unwrap();
        assert_eq!(details["violations"][0]["rule"], "query-too-long");
        assert!(details["query"].as_str().unwrap().len() <= 200);
        // Any other block keeps its code.
        let verdict = guard.check("SELECT Id FROM Account", None, &CheckContext::default());
        assert_eq!(
            blocked("SELECT Id FROM Account", &verdict).code,
            "soql_blocked"
        );
    }

    #[test]
    fn replace_q_keeps_other_parameters() {
        assert_eq!(
            replace_q("a=1&q=SELECT+Id&b=2", "SELECT Id FROM A LIMIT 5"),
            "a=1&q=SELECT+Id+FROM+A+LIMIT+5&b=2"
        );
    }
}
