//! Finding SOQL inside request URLs and composite bodies, so every query that reaches the
//! provider is checked. Provider-neutral: it looks for `url` strings whose path ends in
//! `/query` or `/queryAll` and reads their `q` parameter; that covers composite
//! (`compositeRequest[].url`), batch (`batchRequests[].url`), graph and tree bodies alike.

use percent_encoding::percent_decode_str;
use serde_json::Value;

/// A query found in a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddedQuery {
    /// JSON pointer (RFC 6901) to the `url` string that carries the query.
    pub pointer: String,
    /// The decoded SOQL.
    pub soql: String,
    /// The URL was a queryAll endpoint.
    pub query_all: bool,
}

/// The SOQL in a query URL (`.../query?q=...` or `.../queryAll?q=...`), percent-decoded
/// (`+` is a space, as in form encoding). `None` for other URLs, and for follow-up pages
/// (`.../query/01g...-2000`) that carry no query text.
pub fn query_from_url(url: &str) -> Option<(String, bool)> {
    let (path, query) = url.split_once('?')?;
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    let query_all = if last.eq_ignore_ascii_case("queryAll") {
        true
    } else if last.eq_ignore_ascii_case("query") {
        false
    } else {
        return None;
    };
    let query = query.split('#').next().unwrap_or("");
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("q=") {
            let spaced = value.replace('+', " ");
            let soql = percent_decode_str(&spaced).decode_utf8_lossy().into_owned();
            return Some((soql, query_all));
        }
    }
    None
}

/// Every query subrequest in a composite-style JSON body, with a pointer to its URL.
pub fn queries_in_body(body: &Value) -> Vec<EmbeddedQuery> {
    let mut found = Vec::new();
    let mut pointer = String::new();
    walk(body, &mut pointer, &mut found, 0);
    found
}

/// Bodies are parsed by serde_json, which caps nesting at 128; this bound keeps values
/// built in code from recursing without limit too.
const MAX_DEPTH: usize = 128;

fn walk(value: &Value, pointer: &mut String, found: &mut Vec<EmbeddedQuery>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                if key == "url" {
                    if let Value::String(url) = child {
                        if let Some((soql, query_all)) = query_from_url(url) {
                            found.push(EmbeddedQuery {
                                pointer: pointer.clone(),
                                soql,
                                query_all,
                            });
                        }
                    }
                } else {
                    walk(child, pointer, found, depth + 1);
                }
                pointer.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                walk(child, pointer, found, depth + 1);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}
