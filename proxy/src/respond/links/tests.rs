use super::*;
use crate::config::{ConnectionConfig, ServerConfig};
use crate::forward::upstream::UpstreamClients;
use crate::stages::route::UpstreamBase;
use std::sync::Arc;

fn connection(id: &str, provider: &str, base: &str, allowed: &[&str]) -> ConnectionRuntime {
    let config: ConnectionConfig = toml::from_str(&format!(
        "id = '{id}'\nprovider = 'custom'\nbase_url = '{base}'\n"
    ))
    .unwrap();
    ConnectionRuntime {
        id: id.to_owned(),
        provider: gatehouse_adapters::builtin(provider)
            .unwrap_or_else(|| Arc::new(gatehouse_adapters::CustomProfile::named("crm"))),
        base: UpstreamBase::parse(base).unwrap(),
        clients: UpstreamClients::build(&ServerConfig::default(), &config, 1).unwrap(),
        soql: None,
        allowed_hosts: allowed.iter().map(|h| h.to_string()).collect(),
    }
}

#[test]
fn own_urls_become_gatehouse_paths_and_others_stay() {
    let gh = connection("gh", "greenhouse", "https://harvest.greenhouse.io/v1", &[]);
    assert_eq!(
        through_gatehouse(
            &gh,
            "https://harvest.greenhouse.io/v1/candidates?page=2&per_page=2"
        )
        .as_deref(),
        Some("/gh/candidates?page=2&per_page=2")
    );
    // Another host, another scheme, outside the base path, credentials in the URL, query only.
    for url in [
        "https://evil.example/v1/candidates?page=2",
        "http://harvest.greenhouse.io/v1/candidates",
        "https://harvest.greenhouse.io/v2/candidates",
        "https://user:pw@harvest.greenhouse.io/v1/candidates",
        "?page=2",
        "//evil.example/v1/candidates",
        "not a url",
    ] {
        assert_eq!(through_gatehouse(&gh, url), None, "{url}");
    }
    // Host-relative paths are the connection's own (Salesforce's `nextRecordsUrl`).
    let sf = connection(
        "sf",
        "salesforce",
        "https://acme.my.salesforce.com",
        &["na1.salesforce.com"],
    );
    assert_eq!(
        through_gatehouse(&sf, "/services/data/v66.0/query/01gRO0000016PIAYA2-500").as_deref(),
        Some("/sf/services/data/v66.0/query/01gRO0000016PIAYA2-500")
    );
    assert_eq!(
        through_gatehouse(
            &sf,
            "https://na1.salesforce.com/services/data/v66.0/query/x-2"
        )
        .as_deref(),
        Some("/sf/services/data/v66.0/query/x-2")
    );
}

#[test]
fn link_headers_keep_their_parameters_and_foreign_urls() {
    let gh = connection("gh", "greenhouse", "https://harvest.greenhouse.io/v1", &[]);
    let mut headers = HeaderMap::new();
    headers.append(
        header::LINK,
        HeaderValue::from_static(
            "<https://harvest.greenhouse.io/v1/candidates?page=2&per_page=2&properties=a,b>; rel=\"next\", <https://docs.example/x>; rel=\"help\"; title=\"a <b>, c\", <https://harvest.greenhouse.io/v1/candidates?page=474&per_page=2>; rel=\"last\"",
        ),
    );
    headers.append(
        header::LINK,
        HeaderValue::from_static("<https://elsewhere.example/a>; rel=\"x\""),
    );
    rewrite_link_headers(&mut headers, &gh);
    let values: Vec<&str> = headers
        .get_all(header::LINK)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        values,
        [
            "</gh/candidates?page=2&per_page=2&properties=a,b>; rel=\"next\", <https://docs.example/x>; rel=\"help\"; title=\"a <b>, c\", </gh/candidates?page=474&per_page=2>; rel=\"last\"",
            "<https://elsewhere.example/a>; rel=\"x\"",
        ]
    );
    // Not well formed: left as sent.
    let mut broken = HeaderMap::new();
    broken.insert(
        header::LINK,
        HeaderValue::from_static("<https://harvest.greenhouse.io/v1/x"),
    );
    rewrite_link_headers(&mut broken, &gh);
    assert_eq!(broken[header::LINK], "<https://harvest.greenhouse.io/v1/x");
}

#[test]
fn json_links_change_alone_and_the_rest_stays_byte_for_byte() {
    let hs = connection("hs", "hubspot", "https://api.hubapi.com", &[]);
    // Spacing, escapes and number spellings a re-serialisation would change.
    let body = br#"{ "results" : [ {"id":"1","n":1.0,"s":"\u003cb\u003e"} ],
  "paging": {"next": {"after": "2", "link": "https:\/\/api.hubapi.com\/crm\/v3\/objects\/contacts?after=2&limit=1"}} }"#;
    let out = rewrite_json_links(body, &["/paging/next/link", "/paging/prev/link"], &hs).unwrap();
    let want = br#"{ "results" : [ {"id":"1","n":1.0,"s":"\u003cb\u003e"} ],
  "paging": {"next": {"after": "2", "link": "/hs/crm/v3/objects/contacts?after=2&limit=1"}} }"#;
    assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(want));
    // A link elsewhere, a missing field, a field of the wrong type, garbage: unchanged.
    for body in [
        &br#"{"paging":{"next":{"link":"https://evil.example/crm/v3/objects/contacts?after=2"}}}"#
            [..],
        br#"{"results":[]}"#,
        br#"{"paging":{"next":{"link":7}}}"#,
        br#"{"paging":{"next":"#,
        b"<html></html>",
        b"[1,2]",
    ] {
        assert_eq!(rewrite_json_links(body, &["/paging/next/link"], &hs), None);
    }
    let sf = connection("sf", "salesforce", "https://acme.my.salesforce.com", &[]);
    let page = br#"{"totalSize":3,"done":false,"nextRecordsUrl":"/services/data/v66.0/query/01g-2","records":[{"attributes":{"type":"Account","url":"/services/data/v66.0/sobjects/Account/001"}}]}"#;
    let out = rewrite_json_links(page, &["/nextRecordsUrl"], &sf).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out),
        r#"{"totalSize":3,"done":false,"nextRecordsUrl":"/sf/services/data/v66.0/query/01g-2","records":[{"attributes":{"type":"Account","url":"/services/data/v66.0/sobjects/Account/001"}}]}"#
    );
}

#[test]
fn json_content_types_are_told_apart() {
    let mut headers = HeaderMap::new();
    assert!(!is_json(&headers));
    for (value, json) in [
        ("application/json", true),
        ("application/json; charset=UTF-8", true),
        ("application/vnd.api+json", true),
        ("text/html", false),
        ("application/jsonx", false),
    ] {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        assert_eq!(is_json(&headers), json, "{value}");
    }
}
