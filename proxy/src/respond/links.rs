//! Passthrough pagination stays behind the guard: a page URL the provider hands out (a `Link`
//! header, a JSON field the adapter names: see `Provider::page_links`) that points at the
//! connection's own provider is rewritten to the same place through Gatehouse,
//! `/<connection><path relative to the base>?<query>`. The result is a path, not a URL:
//! Gatehouse does not know the host name its caller used, and a path resolves against it.
//! A URL on any other host is left as it is (Gatehouse neither follows nor rewrites it).

use crate::state::ConnectionRuntime;
use http::{header, HeaderMap, HeaderValue};

/// The largest JSON page read whole to rewrite its page links: a Salesforce query page holds
/// up to 2,000 records, a few MiB. A larger page (or one whose length passes this as it
/// streams) goes to the caller unchanged, its links not rewritten, and says so in a warning.
pub(crate) const PAGE_REWRITE_BYTES: u64 = 8 * 1024 * 1024;

/// `url` as Gatehouse's path for `connection`, when it points at the connection's own
/// provider: an absolute URL on one of its hosts, or a host-relative path (`/services/...`,
/// relative to the host that answered, which is one of the connection's own). `None` for
/// anything else, a query-only reference (`?after=..`) included: that one already resolves
/// against the caller's own request through Gatehouse.
pub(crate) fn through_gatehouse(connection: &ConnectionRuntime, url: &str) -> Option<String> {
    let url = url.trim();
    let (path, query) = if url.starts_with('/') && !url.starts_with("//") {
        let base = &connection.base;
        connection.own_path_of(&format!("{}://{}{url}", base.scheme, base.authority))?
    } else {
        connection.own_path_of(url)?
    };
    let mut out = String::with_capacity(1 + connection.id.len() + path.len() + 64);
    out.push('/');
    out.push_str(&connection.id);
    out.push_str(&path);
    if let Some(query) = query {
        out.push('?');
        out.push_str(&query);
    }
    Some(out)
}

/// Rewrites the URLs of every `Link` header (RFC 8288: `<url>; rel="next", <url>; rel="last"`).
pub(crate) fn rewrite_link_headers(headers: &mut HeaderMap, connection: &ConnectionRuntime) {
    if !headers.contains_key(header::LINK) {
        return;
    }
    let values: Vec<HeaderValue> = headers
        .get_all(header::LINK)
        .iter()
        .map(|value| rewrite_link_value(value, connection).unwrap_or_else(|| value.clone()))
        .collect();
    headers.remove(header::LINK);
    for value in values {
        headers.append(header::LINK, value);
    }
}

/// One `Link` value with its own URLs rewritten; `None` when nothing changed (or the value is
/// not text, or not well formed: it then goes on as the provider sent it).
fn rewrite_link_value(value: &HeaderValue, connection: &ConnectionRuntime) -> Option<HeaderValue> {
    let text = value.to_str().ok()?;
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut in_quotes = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '<' && !in_quotes {
            let close = rest.find('>')?;
            let target = &rest[1..close];
            out.push('<');
            match through_gatehouse(connection, target) {
                Some(path) => {
                    out.push_str(&path);
                    changed = true;
                }
                None => out.push_str(target),
            }
            out.push('>');
            rest = &rest[close + 1..];
            continue;
        }
        if c == '"' {
            in_quotes = !in_quotes;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !changed {
        return None;
    }
    HeaderValue::from_str(&out).ok()
}

/// `body` (a JSON document) with the string at each of `pointers` rewritten when it is a page
/// URL of the connection's own provider. Only those strings' bytes change: the rest of the page
/// reaches the caller byte for byte (no re-serialisation). `None` when nothing changed.
pub(crate) fn rewrite_json_links(
    body: &[u8],
    pointers: &[&str],
    connection: &ConnectionRuntime,
) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for pointer in pointers {
        let Some((start, end)) = locate(text, pointer) else {
            continue;
        };
        let Some(Ok(url)) = text.get(start..end).map(serde_json::from_str::<String>) else {
            continue;
        };
        if let Some(path) = through_gatehouse(connection, &url) {
            if let Ok(quoted) = serde_json::to_string(&path) {
                edits.push((start, end, quoted));
            }
        }
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|(start, _, _)| *start);
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut at = 0;
    for (start, end, replacement) in edits {
        if start < at {
            continue;
        }
        out.extend_from_slice(&body[at..start]);
        out.extend_from_slice(replacement.as_bytes());
        at = end;
    }
    out.extend_from_slice(&body[at..]);
    Some(out)
}

/// The byte range in `doc` of the value at the JSON pointer `pointer` (RFC 6901), found by a
/// scan that skips what it does not need rather than building the page as values. `None` when
/// there is no such value, or the document is not JSON on the way to it.
fn locate(doc: &str, pointer: &str) -> Option<(usize, usize)> {
    let bytes = doc.as_bytes();
    let mut at = skip_ws(bytes, 0);
    for segment in pointer.split('/').skip(1) {
        let key = segment.replace("~1", "/").replace("~0", "~");
        at = match bytes.get(at)? {
            b'{' => member(doc, at, &key)?,
            b'[' => element(bytes, at, key.parse().ok()?)?,
            _ => return None,
        };
    }
    Some((at, skip_value(bytes, at)?))
}

/// The start of the value of member `key` in the object at `at`.
fn member(doc: &str, mut at: usize, key: &str) -> Option<usize> {
    let bytes = doc.as_bytes();
    at = skip_ws(bytes, at + 1);
    if bytes.get(at) == Some(&b'}') {
        return None;
    }
    loop {
        let key_end = skip_string(bytes, at)?;
        let name: String = serde_json::from_str(doc.get(at..key_end)?).ok()?;
        at = skip_ws(bytes, key_end);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        let value = skip_ws(bytes, at + 1);
        if name == key {
            return Some(value);
        }
        at = skip_ws(bytes, skip_value(bytes, value)?);
        match bytes.get(at)? {
            b',' => at = skip_ws(bytes, at + 1),
            _ => return None,
        }
    }
}

/// The start of element `index` of the array at `at`.
fn element(bytes: &[u8], mut at: usize, index: usize) -> Option<usize> {
    at = skip_ws(bytes, at + 1);
    for _ in 0..index {
        at = skip_ws(bytes, skip_value(bytes, at)?);
        match bytes.get(at)? {
            b',' => at = skip_ws(bytes, at + 1),
            _ => return None,
        }
    }
    (bytes.get(at) != Some(&b']')).then_some(at)
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while bytes
        .get(at)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        at += 1;
    }
    at
}

/// The end of the string starting (with its quote) at `at`.
fn skip_string(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    loop {
        match bytes.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The end of the value starting at `at`. Nesting is counted, not recursed into, so a deep
/// document cannot exhaust the stack; the values' own syntax is serde_json's to check later.
fn skip_value(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b'"' => skip_string(bytes, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match bytes.get(i)? {
                    b'"' => {
                        i = skip_string(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let len = bytes[at..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(bytes.len() - at);
            (len > 0).then_some(at + len)
        }
    }
}

/// Whether a response's `Content-Type` says JSON (`application/json`, `...+json`).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.to_ascii_lowercase().ends_with("+json")
        })
}

#[cfg(test)]
mod tests;
