//! Ashby's unified API against golden list and info answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod unified_common;

use gatehouse_adapters::models::Model;
use gatehouse_adapters::unified::{ListAsk, UnifiedError};
use serde_json::json;
use unified_common::*;

#[test]
fn a_candidates_page_maps_and_goes_on_by_cursor() {
    let ashby = provider("ashby");
    let api = ashby.unified().unwrap();
    let page = read_page(
        api,
        Model::Candidate,
        &ask(1),
        &headers(&[]),
        &golden("ashby/candidates_page.json"),
    )
    .unwrap();
    let k = &page.records[0];
    assert_eq!(k.remote_id, "f9e52a51-a075-4116-a7b8-484deba69004");
    assert_eq!(
        k.remote_modified_at.as_deref(),
        Some("2024-03-05T10:11:12.345Z")
    );
    let c = candidate(k);
    assert_eq!(c.first_name.as_deref(), Some("Katherine"));
    assert_eq!(c.last_name.as_deref(), Some("Johnson"));
    assert_eq!(c.company.as_deref(), Some("NASA"));
    assert_eq!(c.title.as_deref(), Some("Mathematician"));
    assert_eq!(c.tags, ["Math"]);
    assert_eq!(
        c.email_addresses[0].email_address_type.as_deref(),
        Some("Personal")
    );
    assert_eq!(c.applications, ["0a1b2c3d-1111-2222-3333-444455556666"]);
    assert!(
        page.sync_token.is_none(),
        "only the last page carries the sync token"
    );

    let call = api
        .list_call(Model::Candidate, &resume(1, page.next.as_ref().unwrap()))
        .unwrap();
    assert_eq!(call.method, http::Method::POST);
    assert_eq!(relative(&call).0, "/candidate.list");
    assert_eq!(
        json_body(&call),
        json!({"limit": 1, "cursor": "Y3Vyc29yLTI"})
    );
}

#[test]
fn the_last_page_hands_back_its_sync_token_and_a_token_starts_the_next_walk() {
    let ashby = provider("ashby");
    let api = ashby.unified().unwrap();
    let last =
        br#"{"success": true, "results": [], "moreDataAvailable": false, "syncToken": "c3luYy0x"}"#;
    let page = read_page(api, Model::Job, &ask(100), &headers(&[]), last).unwrap();
    assert!(page.next.is_none());
    assert_eq!(page.sync_token.as_deref(), Some("c3luYy0x"));
    let incremental = ListAsk {
        page_size: 100,
        sync_token: Some("c3luYy0x"),
        ..ListAsk::default()
    };
    let call = api.list_call(Model::Job, &incremental).unwrap();
    assert_eq!(
        json_body(&call),
        json!({"limit": 100, "syncToken": "c3luYy0x"})
    );
}

#[test]
fn dead_tokens_and_cursors_ask_for_a_full_walk() {
    let ashby = provider("ashby");
    let api = ashby.unified().unwrap();
    for code in [
        "sync_token_expired",
        "sync_token_invalid",
        "next_cursor_expired",
        "invalid_next_cursor",
    ] {
        let body = serde_json::to_vec(&json!({"success": false, "errorInfo": {"code": code, "message": "run a full sync", "requestId": "01J"}})).unwrap();
        assert_eq!(
            read_page(api, Model::Candidate, &ask(10), &headers(&[]), &body),
            Err(UnifiedError::ResyncNeeded),
            "{code}"
        );
    }
    let other = br#"{"success": false, "errors": ["invalid_input"]}"#;
    assert!(matches!(
        read_page(api, Model::Candidate, &ask(10), &headers(&[]), other),
        Err(UnifiedError::Malformed(_))
    ));
}

#[test]
fn modified_since_keeps_records_changed_at_or_after_it() {
    let ashby = provider("ashby");
    let api = ashby.unified().unwrap();
    let since = ListAsk {
        page_size: 100,
        modified_since: Some(march_first()),
        ..ListAsk::default()
    };
    let body = serde_json::to_vec(
        &json!({"success": true, "moreDataAvailable": true, "nextCursor": "n", "results": [
            {"id": "a", "updatedAt": "2024-02-29T23:59:59.999Z"},
            {"id": "b", "updatedAt": "2024-03-01T00:00:00.000Z"},
            {"id": "c", "updatedAt": null},
        ]}),
    )
    .unwrap();
    let page = read_page(api, Model::Job, &since, &headers(&[]), &body).unwrap();
    let ids: Vec<&str> = page.records.iter().map(|r| r.remote_id.as_str()).collect();
    assert_eq!(ids, ["b", "c"]);
    // The walk remembers the bound for its later pages.
    let later = read_page(
        api,
        Model::Job,
        &resume(100, page.next.as_ref().unwrap()),
        &headers(&[]),
        &body,
    )
    .unwrap();
    assert_eq!(later.records.len(), 2);
}

#[test]
fn applications_map_and_info_calls_name_their_ids() {
    let ashby = provider("ashby");
    let api = ashby.unified().unwrap();
    let app = read_record(api, Model::Application, &golden("ashby/application.json")).unwrap();
    let a = application(&app);
    assert_eq!(
        a.candidate.as_deref(),
        Some("f9e52a51-a075-4116-a7b8-484deba69004")
    );
    assert_eq!(
        a.job.as_deref(),
        Some("6b0a3d6e-0000-4000-8000-000000000001")
    );
    assert_eq!(a.current_stage.as_deref(), Some("Onsite"));
    assert_eq!(a.source.as_deref(), Some("Referral"));
    assert_eq!(a.applied_at.as_deref(), Some("2024-01-02T03:04:05.678Z"));
    let call = api
        .get_call(Model::Application, "0a1b2c3d-1111-2222-3333-444455556666")
        .unwrap();
    assert_eq!(relative(&call).0, "/application.info");
    assert_eq!(
        json_body(&call),
        json!({"applicationId": "0a1b2c3d-1111-2222-3333-444455556666"})
    );
    assert_eq!(
        json_body(&api.get_call(Model::Job, "j-1").unwrap()),
        json!({"id": "j-1"})
    );
    assert!(matches!(
        api.get_call(Model::Job, "\"}"),
        Err(UnifiedError::BadRemoteId(_))
    ));
    let job_body = br#"{"success": true, "results": {"id": "j-1", "title": "Pilot", "status": "Archived", "locationIds": ["l1"], "departmentId": "d1"}}"#;
    let j = read_record(api, Model::Job, job_body).unwrap();
    assert_eq!(job(&j).status.as_deref(), Some("ARCHIVED"));
    assert_eq!(job(&j).offices, ["l1"]);
}

#[test]
fn empty_huge_and_malformed_pages() {
    let ashby = provider("ashby");
    let api = ashby.unified().unwrap();
    let results: Vec<_> = (0..2000).map(|i| json!({"id": format!("c-{i}"), "name": format!("N {i}"), "createdAt": "2024-01-01T00:00:00Z"})).collect();
    let body = serde_json::to_vec(
        &json!({"success": true, "results": results, "moreDataAvailable": false}),
    )
    .unwrap();
    let page = read_page(api, Model::Candidate, &ask(100), &headers(&[]), &body).unwrap();
    assert_eq!(page.records.len(), 2000);
    assert!(page.sync_token.is_none());
    refuses_malformed_pages(api, Model::Candidate);
    for body in [
        &br#"{"success": true, "results": [], "moreDataAvailable": true}"#[..],
        br#"{"success": true, "results": {}, "moreDataAvailable": false}"#,
        br#"{"success": "yes", "results": []}"#,
        br#"{"success": true, "results": [{"name": "no id"}], "moreDataAvailable": false}"#,
    ] {
        let read = read_page(api, Model::Candidate, &ask(10), &headers(&[]), body);
        assert!(matches!(read, Err(UnifiedError::Malformed(_))), "{read:?}");
    }
}
