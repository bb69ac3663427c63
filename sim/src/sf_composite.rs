//! Salesforce `/composite` (≤ 25 subrequests, ≤ 5 queries, `@{ref.path}` references, counts as
//! one API request, 200 with per-subrequest `httpStatusCode`) and `/composite/batch`
//! (≤ 25 independent subrequests, each counted, `{hasErrors, results:[{statusCode, result}]}`).

use serde_json::{json, Value};

use crate::salesforce::{limit_exceeded, sf_error};
use crate::server::Ctx;
use crate::sf_api::{ApiOut, Call, SfApi};

const MAX_SUBREQUESTS: usize = 25;
const MAX_QUERIES: usize = 5;

fn bad(code: &str, msg: &str) -> ApiOut {
    ApiOut::Json(400, sf_error(code, msg))
}

/// Splits `/services/data/v66.0/sobjects/Account?x=y` or `v66.0/...` into (version, rest, query).
fn split_url(url: &str) -> Option<(String, String, Option<String>)> {
    let u = url.trim();
    let u = u.strip_prefix("/services/data/").unwrap_or(u);
    let u = u.strip_prefix('/').unwrap_or(u);
    let u = u.strip_prefix('v')?;
    let (path, query) = match u.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (u, None),
    };
    let (version, rest) = path.split_once('/').unwrap_or((path, ""));
    Some((version.to_owned(), rest.to_owned(), query))
}

fn is_query(rest: &str) -> bool {
    rest.starts_with("query") || rest.starts_with("queryAll")
}

fn run_sub(api: &SfApi, ctx: &Ctx, method: &str, url: &str, body: &[u8]) -> ApiOut {
    let Some((version, rest, query)) = split_url(url) else {
        return ApiOut::Json(
            404,
            sf_error("NOT_FOUND", "The requested resource does not exist"),
        );
    };
    let call = Call {
        method,
        version: &version,
        rest: &rest,
        query: query.as_deref(),
        batch_size: None,
        body,
    };
    api.route(ctx, &call, false)
}

/// Resolves `@{refId.path.to[0].field}` from earlier results; `None` if one is missing.
fn substitute(text: &str, results: &[(String, Value)]) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let expr = &after[..end];
        let mut parts = expr.split('.');
        let refid = parts.next()?;
        let mut v = &results.iter().find(|(r, _)| r == refid)?.1;
        for p in parts {
            let (name, idx) = match p.split_once('[') {
                Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
                None => (p, None),
            };
            if !name.is_empty() {
                v = v.get(name)?;
            }
            if let Some(i) = idx {
                v = v.get(i)?;
            }
        }
        match v {
            Value::String(s) => out.push_str(s),
            Value::Null => return None,
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

pub(crate) fn composite(api: &SfApi, ctx: &Ctx, call: &Call) -> ApiOut {
    let Ok(body) = serde_json::from_slice::<Value>(call.body) else {
        return bad("JSON_PARSER_ERROR", "Unexpected character in request body");
    };
    let all_or_none = body["allOrNone"].as_bool().unwrap_or(false);
    let Some(subs) = body["compositeRequest"].as_array() else {
        return bad("INVALID_API_INPUT", "compositeRequest is required");
    };
    if subs.len() > MAX_SUBREQUESTS {
        return bad(
            "INVALID_API_INPUT",
            "Composite API: the number of subrequests exceeded the limit of 25",
        );
    }
    let queries = subs
        .iter()
        .filter(|s| {
            split_url(s["url"].as_str().unwrap_or_default()).is_some_and(|(_, r, _)| is_query(&r))
        })
        .count();
    if queries > MAX_QUERIES {
        return bad(
            "INVALID_API_INPUT",
            "Composite API: the number of query subrequests exceeded the limit of 5",
        );
    }
    let mut results: Vec<(String, Value)> = Vec::new();
    let mut out: Vec<Value> = Vec::new();
    let mut failed = false;
    for s in subs {
        let reference = s["referenceId"].as_str().unwrap_or_default().to_owned();
        if failed && all_or_none {
            out.push(halted(&reference));
            continue;
        }
        let method = s["method"].as_str().unwrap_or("GET").to_ascii_uppercase();
        let url = s["url"].as_str().unwrap_or_default();
        let body_text = match &s["body"] {
            Value::Null => String::new(),
            b => b.to_string(),
        };
        let (Some(url), Some(body_text)) =
            (substitute(url, &results), substitute(&body_text, &results))
        else {
            failed = true;
            out.push(json!({
                "body": [{"errorCode": "PROCESSING_HALTED", "message": format!("Invalid reference specified. No value for {reference} found.")}],
                "httpHeaders": {}, "httpStatusCode": 400, "referenceId": reference,
            }));
            continue;
        };
        let r = run_sub(api, ctx, &method, &url, body_text.as_bytes());
        let status = r.status();
        let rbody = r.body();
        if status >= 400 {
            failed = true;
        }
        let headers = if status == 201 {
            json!({"Location": format!("{}/{}", url.trim_end_matches('/'), rbody["id"].as_str().unwrap_or_default())})
        } else {
            json!({})
        };
        results.push((reference.clone(), rbody.clone()));
        out.push(json!({"body": rbody, "httpHeaders": headers, "httpStatusCode": status, "referenceId": reference}));
    }
    if failed && all_or_none {
        // The transaction rolled back: earlier successes are reported as halted too.
        for o in out.iter_mut() {
            if o["httpStatusCode"].as_u64().is_some_and(|s| s < 400) {
                let reference = o["referenceId"].as_str().unwrap_or_default().to_owned();
                *o = halted(&reference);
            }
        }
    }
    ApiOut::Json(200, json!({"compositeResponse": out}))
}

fn halted(reference: &str) -> Value {
    json!({
        "body": [{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back since another operation in the same transaction failed."}],
        "httpHeaders": {}, "httpStatusCode": 400, "referenceId": reference,
    })
}

pub(crate) fn batch(api: &SfApi, ctx: &Ctx, call: &Call) -> ApiOut {
    let Ok(body) = serde_json::from_slice::<Value>(call.body) else {
        return bad("JSON_PARSER_ERROR", "Unexpected character in request body");
    };
    let halt = body["haltOnError"].as_bool().unwrap_or(false);
    let Some(subs) = body["batchRequests"].as_array() else {
        return bad("INVALID_API_INPUT", "batchRequests is required");
    };
    if subs.is_empty() || subs.len() > MAX_SUBREQUESTS {
        return bad(
            "INVALID_API_INPUT",
            "Batch API: the number of subrequests must be between 1 and 25",
        );
    }
    // Each subrequest counts against the allocation.
    if ctx.quota.take(subs.len() as u64).is_err() {
        let b = limit_exceeded().into_body();
        return ApiOut::Json(403, serde_json::from_slice(&b).unwrap_or(Value::Null));
    }
    let mut has_errors = false;
    let mut results = Vec::new();
    for s in subs {
        if has_errors && halt {
            results.push(json!({"statusCode": 412, "result": [{"errorCode": "BATCH_PROCESSING_HALTED", "message": "Batch processing halted per request"}]}));
            continue;
        }
        let method = s["method"].as_str().unwrap_or("GET").to_ascii_uppercase();
        let url = s["url"].as_str().unwrap_or_default();
        let rich = match &s["richInput"] {
            Value::Null => String::new(),
            b => b.to_string(),
        };
        let r = run_sub(api, ctx, &method, url, rich.as_bytes());
        let status = r.status();
        if status >= 400 {
            has_errors = true;
        }
        let result = r.body();
        results.push(json!({"statusCode": status, "result": result}));
    }
    ApiOut::Json(200, json!({"hasErrors": has_errors, "results": results}))
}
