//! Greenhouse Harvest v1 and v3 unified APIs against golden pages and records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod unified_common;

use gatehouse_adapters::models::Model;
use gatehouse_adapters::unified::{CallTarget, ListAsk, UnifiedError};
use serde_json::json;
use unified_common::*;

const V1_LINK: &str = "<https://harvest.greenhouse.io/v1/candidates?page=2&per_page=2&skip_count=true>; rel=\"next\", <https://harvest.greenhouse.io/v1/candidates?page=1&per_page=2>; rel=\"prev\"";

#[test]
fn a_candidates_page_maps_and_follows_the_link_as_is() {
    let gh = provider("greenhouse");
    let api = gh.unified().unwrap();
    let body = golden("greenhouse/candidates_page.json");
    let page = read_page(
        api,
        Model::Candidate,
        &ask(2),
        &headers(&[("link", V1_LINK)]),
        &body,
    )
    .unwrap();
    assert_eq!(page.records.len(), 2);
    let ada = &page.records[0];
    assert_eq!(ada.remote_id, "10000001");
    assert_eq!(
        ada.remote_modified_at.as_deref(),
        Some("2024-03-05T10:11:12.322Z")
    );
    assert_eq!(ada.remote_was_deleted, None);
    let c = candidate(ada);
    assert_eq!(c.first_name.as_deref(), Some("Ada"));
    assert_eq!(c.company.as_deref(), Some("Analytical Engines Ltd"));
    assert_eq!(c.applications, ["50000001", "50000002"]);
    // The null address is skipped; the typed one kept.
    assert_eq!(c.email_addresses.len(), 1);
    assert_eq!(
        c.email_addresses[0].email_address_type.as_deref(),
        Some("personal")
    );
    assert_eq!(c.phone_numbers[0].phone_number, "+44 20 7946 0000");
    assert_eq!(c.tags, ["Senior", "Referral"]);
    let empty = &page.records[1];
    assert_eq!(
        empty.remote_created_at.as_deref(),
        Some("2024-01-02T05:00:00Z")
    );
    assert!(
        candidate(empty).first_name.is_none() && candidate(empty).last_interaction_at.is_none()
    );

    let next = page.next.unwrap();
    let call = api.list_call(Model::Candidate, &resume(2, &next)).unwrap();
    assert_eq!(
        call.target,
        CallTarget::Absolute(
            "https://harvest.greenhouse.io/v1/candidates?page=2&per_page=2&skip_count=true".into()
        )
    );
    let end = read_page(
        api,
        Model::Candidate,
        &resume(2, &next),
        &headers(&[]),
        b"[]",
    )
    .unwrap();
    assert!(end.records.is_empty() && end.next.is_none());
}

#[test]
fn first_pages_filter_on_updated_after_or_last_activity_after() {
    let gh = provider("greenhouse");
    let api = gh.unified().unwrap();
    let ask = ListAsk {
        page_size: 900,
        modified_since: Some(march_first()),
        ..ListAsk::default()
    };
    let (path, query) = relative(&api.list_call(Model::Candidate, &ask).unwrap());
    assert_eq!(path, "/v1/candidates");
    let query = query.unwrap();
    assert_eq!(
        param(&query, "updated_after").as_deref(),
        Some("2024-03-01T00:00:00Z")
    );
    assert_eq!(param(&query, "per_page").as_deref(), Some("500"));
    let (_, query) = relative(&api.list_call(Model::Application, &ask).unwrap());
    let query = query.unwrap();
    assert_eq!(
        param(&query, "last_activity_after").as_deref(),
        Some("2024-03-01T00:00:00Z")
    );
    assert!(param(&query, "updated_after").is_none());
}

#[test]
fn v3_keeps_the_cursor_as_the_only_parameter() {
    let gh = provider("greenhouse-v3");
    let api = gh.unified().unwrap();
    let first = ListAsk {
        page_size: 100,
        modified_since: Some(march_first()),
        ..ListAsk::default()
    };
    let (path, query) = relative(&api.list_call(Model::Job, &first).unwrap());
    assert_eq!(path, "/v3/jobs");
    assert_eq!(
        param(&query.unwrap(), "updated_after").as_deref(),
        Some("2024-03-01T00:00:00Z")
    );
    let link = "<https://harvest.greenhouse.io/v3/jobs?cursor=eyJwIjoxMDB9>; rel=\"next\"";
    let body = serde_json::to_vec(&json!([serde_json::from_slice::<serde_json::Value>(
        &golden("greenhouse/job.json")
    )
    .unwrap()]))
    .unwrap();
    let page = read_page(api, Model::Job, &first, &headers(&[("link", link)]), &body).unwrap();
    let next = page.next.unwrap();
    let (path, query) = relative(&api.list_call(Model::Job, &resume(100, &next)).unwrap());
    assert_eq!(path, "/v3/jobs");
    assert_eq!(query.as_deref(), Some("cursor=eyJwIjoxMDB9"));
    // A v1 state is not a v3 one.
    let v1 = provider("greenhouse");
    let v1_page = read_page(
        v1.unified().unwrap(),
        Model::Job,
        &first,
        &headers(&[("link", V1_LINK)]),
        &body,
    )
    .unwrap();
    assert_eq!(
        api.list_call(Model::Job, &resume(100, &v1_page.next.unwrap())),
        Err(UnifiedError::BadWalkState)
    );
}

#[test]
fn applications_and_jobs_map() {
    let gh = provider("greenhouse");
    let api = gh.unified().unwrap();
    let app = read_record(
        api,
        Model::Application,
        &golden("greenhouse/application.json"),
    )
    .unwrap();
    let a = application(&app);
    assert_eq!(a.candidate.as_deref(), Some("10000001"));
    assert_eq!(a.job.as_deref(), Some("4000001"));
    assert_eq!(a.status.as_deref(), Some("rejected"));
    assert_eq!(a.rejected_at.as_deref(), Some("2024-02-01T12:00:00Z"));
    assert_eq!(a.source.as_deref(), Some("LinkedIn"));
    assert!(a.current_stage.is_none());
    // The field incremental walks filter applications on.
    assert_eq!(
        app.remote_modified_at.as_deref(),
        Some("2024-02-01T12:00:00Z")
    );

    let job_record = read_record(api, Model::Job, &golden("greenhouse/job.json")).unwrap();
    let j = job(&job_record);
    assert_eq!(j.status.as_deref(), Some("OPEN"));
    assert_eq!(j.code.as_deref(), Some("REQ-0001"));
    assert_eq!(j.departments, ["Engineering"]);
    assert_eq!(j.offices, ["London"]);
    assert_eq!(j.hiring_managers, ["84275"]);
    assert_eq!(
        j.description.as_deref(),
        Some("Hiring for the platform team")
    );
}

#[test]
fn huge_and_malformed_pages() {
    let gh = provider("greenhouse");
    let api = gh.unified().unwrap();
    let rows: Vec<_> = (0..2000)
        .map(|i| json!({"id": 10_000_000 + i, "first_name": format!("C{i}"), "updated_at": "2024-01-01T00:00:00Z", "unknown": {"deep": [1, 2]}}))
        .collect();
    let body = serde_json::to_vec(&rows).unwrap();
    let page = read_page(api, Model::Candidate, &ask(500), &headers(&[]), &body).unwrap();
    assert_eq!(page.records.len(), 2000);
    assert_eq!(
        candidate(&page.records[1999]).first_name.as_deref(),
        Some("C1999")
    );

    refuses_malformed_pages(api, Model::Candidate);
    for body in [
        &br#"[{"first_name": "no id"}]"#[..],
        br#"[{"id": null}]"#,
        br#"[{"id": 1.5}]"#,
        b"[7]",
        br#"{"candidates": []}"#,
    ] {
        let read = read_page(api, Model::Candidate, &ask(10), &headers(&[]), body);
        assert!(matches!(read, Err(UnifiedError::Malformed(_))), "{read:?}");
    }
    let v3 = provider("greenhouse-v3");
    let bad_link = headers(&[(
        "link",
        "<https://harvest.greenhouse.io/v3/jobs?page=2>; rel=\"next\"",
    )]);
    let read = read_page(
        v3.unified().unwrap(),
        Model::Job,
        &ask(10),
        &bad_link,
        b"[]",
    );
    assert!(matches!(read, Err(UnifiedError::Malformed(_))), "{read:?}");
    assert!(matches!(
        api.get_call(Model::Job, "4000001x"),
        Err(UnifiedError::BadRemoteId(_))
    ));
    assert_eq!(
        relative(&api.get_call(Model::Job, "4000001").unwrap()).0,
        "/v1/jobs/4000001"
    );
}
