//! Lever's unified API against golden opportunity and posting answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod unified_common;

use gatehouse_adapters::models::Model;
use gatehouse_adapters::unified::{ListAsk, UnifiedError};
use serde_json::json;
use unified_common::*;

#[test]
fn opportunities_map_epoch_milliseconds_and_archives() {
    let lever = provider("lever");
    let api = lever.unified().unwrap();
    let body = golden("lever/opportunities_page.json");
    let page = read_page(api, Model::Candidate, &ask(2), &headers(&[]), &body).unwrap();
    let grace = &page.records[0];
    assert_eq!(
        grace.remote_created_at.as_deref(),
        Some("2024-01-01T00:00:00Z")
    );
    assert_eq!(
        grace.remote_modified_at.as_deref(),
        Some("2024-03-05T10:11:12.345Z")
    );
    assert_eq!(grace.remote_was_deleted, Some(false));
    let c = candidate(grace);
    assert_eq!(c.first_name.as_deref(), Some("Grace"));
    assert_eq!(c.last_name.as_deref(), Some("Brewster Hopper"));
    assert_eq!(c.title.as_deref(), Some("Rear Admiral at US Navy"));
    assert_eq!(c.email_addresses[0].email_address, "grace@example.com");
    assert_eq!(
        c.phone_numbers[0].phone_number_type.as_deref(),
        Some("mobile")
    );
    assert_eq!(c.applications, ["cdb0a6f3-ebd1-4ac7-b7f5-4b3a1c2d9e8f"]);
    assert_eq!(
        c.last_interaction_at.as_deref(),
        Some("2024-03-05T10:11:12.345Z")
    );
    let prince = &page.records[1];
    assert_eq!(prince.remote_was_deleted, Some(true));
    assert_eq!(candidate(prince).first_name.as_deref(), Some("Prince"));
    assert!(candidate(prince).last_name.is_none());

    let next = page.next.unwrap();
    let (path, query) = relative(&api.list_call(Model::Candidate, &resume(2, &next)).unwrap());
    assert_eq!(path, "/v1/opportunities");
    assert_eq!(
        param(query.as_deref().unwrap(), "offset").as_deref(),
        Some("WzE3MDkwMDAwMDAwMDAsIjVjODYiXQ")
    );
}

#[test]
fn modified_since_is_updated_at_start_on_every_page_and_filters_the_page() {
    let lever = provider("lever");
    let api = lever.unified().unwrap();
    let first = ListAsk {
        page_size: 2,
        modified_since: Some(march_first()),
        ..ListAsk::default()
    };
    let (_, query) = relative(&api.list_call(Model::Candidate, &first).unwrap());
    assert_eq!(
        param(query.as_deref().unwrap(), "updated_at_start").as_deref(),
        Some("1709251200000")
    );
    let page = read_page(
        api,
        Model::Candidate,
        &first,
        &headers(&[]),
        &golden("lever/opportunities_page.json"),
    )
    .unwrap();
    // Prince changed on 2024-02-27, before modified_since: an endpoint that ignored the
    // filter does not leak it.
    let ids: Vec<&str> = page.records.iter().map(|r| r.remote_id.as_str()).collect();
    assert_eq!(ids, ["250d8f03-738a-4bba-a671-8a3d73477145"]);
    // The next page repeats the filter, whatever the caller's ask says then.
    let next = page.next.unwrap();
    let (_, query) = relative(&api.list_call(Model::Candidate, &resume(2, &next)).unwrap());
    let query = query.unwrap();
    assert_eq!(
        param(&query, "updated_at_start").as_deref(),
        Some("1709251200000")
    );
    assert!(param(&query, "offset").is_some());
}

#[test]
fn postings_are_jobs_and_applications_are_not_served() {
    let lever = provider("lever");
    let api = lever.unified().unwrap();
    let posting = read_record(api, Model::Job, &golden("lever/posting.json")).unwrap();
    let j = job(&posting);
    assert_eq!(j.name.as_deref(), Some("Senior Backend Engineer"));
    assert_eq!(j.status.as_deref(), Some("OPEN"));
    assert_eq!(j.confidential, Some(false));
    assert_eq!(j.departments, ["Engineering", "Platform"]);
    assert_eq!(j.offices, ["London"]);
    assert_eq!(j.code.as_deref(), Some("REQ-77"));
    assert_eq!(j.hiring_managers, ["0f7a9c3e-5b1d-4e2f-8a6c-9d0e1f2a3b4c"]);
    assert_eq!(
        posting.remote_modified_at.as_deref(),
        Some("2024-02-01T00:00:00Z")
    );
    assert_eq!(api.models(), [Model::Candidate, Model::Job]);
    assert!(matches!(
        api.list_call(Model::Application, &ask(10)),
        Err(UnifiedError::Unsupported { .. })
    ));
    assert_eq!(
        relative(
            &api.get_call(Model::Job, "f2f01e16-27f8-4711-a728-7d49499795a0")
                .unwrap()
        )
        .0,
        "/v1/postings/f2f01e16-27f8-4711-a728-7d49499795a0"
    );
    assert!(matches!(
        api.get_call(Model::Job, "a/b"),
        Err(UnifiedError::BadRemoteId(_))
    ));
}

#[test]
fn empty_huge_and_malformed_pages() {
    let lever = provider("lever");
    let api = lever.unified().unwrap();
    let page = read_page(
        api,
        Model::Job,
        &ask(100),
        &headers(&[]),
        br#"{"data": [], "hasNext": false}"#,
    )
    .unwrap();
    assert!(page.records.is_empty() && page.next.is_none());
    let data: Vec<_> = (0..2000)
        .map(|i| json!({"id": format!("id-{i}"), "name": format!("N {i}"), "createdAt": 1_704_067_200_000_i64 + i, "updatedAt": null}))
        .collect();
    let body = serde_json::to_vec(&json!({"data": data, "hasNext": false})).unwrap();
    let page = read_page(api, Model::Candidate, &ask(100), &headers(&[]), &body).unwrap();
    assert_eq!(page.records.len(), 2000);
    assert_eq!(
        page.records[1999].remote_created_at.as_deref(),
        Some("2024-01-01T00:00:01.999Z")
    );
    assert!(page.records[0].remote_modified_at.is_none());

    refuses_malformed_pages(api, Model::Candidate);
    for body in [
        &br#"{"data": [], "hasNext": true}"#[..],
        br#"{"data": [], "hasNext": "no"}"#,
        br#"{"data": [{"name": "no id"}], "hasNext": false}"#,
        br#"{"data": {"id": "x"}, "hasNext": false}"#,
    ] {
        let read = read_page(api, Model::Candidate, &ask(10), &headers(&[]), body);
        assert!(matches!(read, Err(UnifiedError::Malformed(_))), "{read:?}");
    }
    let wrong =
        br#"{"data": {"id": "x", "createdAt": "yesterday", "emails": "a@b", "archived": false}}"#;
    let mapped = read_record(api, Model::Candidate, wrong).unwrap();
    assert!(mapped.remote_created_at.is_none() && candidate(&mapped).email_addresses.is_empty());
}
