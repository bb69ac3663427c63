//! HubSpot's unified API against golden list and search pages and records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod unified_common;

use gatehouse_adapters::models::Model;
use gatehouse_adapters::unified::{ListAsk, UnifiedError};
use serde_json::json;
use unified_common::*;

#[test]
fn a_list_page_maps_string_properties_and_goes_on_after() {
    let hs = provider("hubspot");
    let api = hs.unified().unwrap();
    let body = golden("hubspot/companies_page.json");
    let page = read_page(api, Model::Account, &ask(2), &headers(&[]), &body).unwrap();
    assert_eq!(page.records.len(), 2);
    let acme = &page.records[0];
    assert_eq!(acme.remote_id, "5001");
    assert_eq!(
        acme.remote_modified_at.as_deref(),
        Some("2024-03-05T10:11:12.345Z")
    );
    assert_eq!(
        acme.remote_created_at.as_deref(),
        Some("2024-01-01T00:00:00Z")
    );
    assert_eq!(acme.remote_was_deleted, Some(false));
    let a = account(acme);
    assert_eq!(a.name.as_deref(), Some("Acme Corporation"));
    assert_eq!(a.number_of_employees, Some(1200));
    assert_eq!(a.website.as_deref(), Some("acme.example.com"));
    // An empty string is unset, as HubSpot means it.
    assert!(a.description.is_none());
    assert_eq!(a.addresses[0].city.as_deref(), Some("San Francisco"));
    assert_eq!(a.owner.as_deref(), Some("31337"));
    assert_eq!(
        acme.raw["properties"]["hs_unknown_new_property"],
        "whatever"
    );
    let sparse = account(&page.records[1]);
    assert!(sparse.name.is_none() && sparse.addresses.is_empty());

    let next = page.next.unwrap();
    let call = api.list_call(Model::Account, &resume(2, &next)).unwrap();
    let (path, query) = relative(&call);
    assert_eq!(path, "/crm/v3/objects/companies");
    let query = query.unwrap();
    assert_eq!(param(&query, "after").as_deref(), Some("5007"));
    assert_eq!(param(&query, "limit").as_deref(), Some("2"));
    assert!(param(&query, "properties")
        .unwrap()
        .contains("hs_lastmodifieddate"));

    let last = br#"{"results": []}"#;
    let end = read_page(api, Model::Account, &resume(2, &next), &headers(&[]), last).unwrap();
    assert!(end.records.is_empty() && end.next.is_none());
}

#[test]
fn a_deal_reads_its_amount_status_company_and_archive() {
    let hs = provider("hubspot");
    let mapped = read_record(
        hs.unified().unwrap(),
        Model::Opportunity,
        &golden("hubspot/deal.json"),
    )
    .unwrap();
    let deal = opportunity(&mapped);
    assert_eq!(deal.amount, Some(1500.5));
    assert_eq!(deal.status.as_deref(), Some("WON"));
    assert_eq!(deal.account.as_deref(), Some("5001"));
    assert_eq!(deal.close_date.as_deref(), Some("2024-06-30T00:00:00Z"));
    assert_eq!(mapped.remote_was_deleted, Some(true));
    assert_eq!(
        mapped.remote_modified_at.as_deref(),
        Some("2024-06-30T17:00:00.123Z")
    );
}

fn search_page(results: &[(&str, &str)], more: bool) -> Vec<u8> {
    let results: Vec<_> = results
        .iter()
        .map(|(id, at)| {
            json!({"id": id, "properties": {"lastmodifieddate": at, "firstname": "A"},
                   "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": at, "archived": false})
        })
        .collect();
    let mut page = json!({"total": 99999, "results": results});
    if more {
        page["paging"] = json!({"next": {"after": "3"}});
    }
    serde_json::to_vec(&page).unwrap()
}

#[test]
fn modified_since_searches_ascending_and_restarts_from_the_last_time_seen() {
    let hs = provider("hubspot");
    let api = hs.unified().unwrap();
    let first = ListAsk {
        page_size: 3,
        modified_since: Some(march_first()),
        ..ListAsk::default()
    };
    let call = api.list_call(Model::Contact, &first).unwrap();
    assert_eq!(call.method, http::Method::POST);
    assert_eq!(relative(&call).0, "/crm/v3/objects/contacts/search");
    let body = json_body(&call);
    assert_eq!(
        body["filterGroups"][0]["filters"][0],
        json!({"propertyName": "lastmodifieddate", "operator": "GTE", "value": "1709251200000"})
    );
    assert_eq!(body["sorts"][0]["direction"], "ASCENDING");
    assert_eq!(body["limit"], 3);
    assert!(body.get("after").is_none());

    let date = headers(&[("date", "Fri, 01 Mar 2024 12:00:00 GMT")]);
    let t1 = "2024-03-01T01:00:00.000Z";
    let t2 = "2024-03-01T02:00:00.000Z";
    let page = read_page(
        api,
        Model::Contact,
        &first,
        &date,
        &search_page(&[("1", t1), ("2", t2), ("3", t2)], true),
    )
    .unwrap();
    assert_eq!(page.records.len(), 3);
    let next = page.next.unwrap();
    // The next search starts at the last time seen (not at `after`, which would meet the
    // 10,000 cap and shift when a record ahead changes), bounded by the first answer's Date.
    let call = api.list_call(Model::Contact, &resume(3, &next)).unwrap();
    let body = json_body(&call);
    let filters = &body["filterGroups"][0]["filters"];
    assert_eq!(filters[0]["operator"], "GTE");
    assert_eq!(filters[0]["value"], "1709258400000");
    assert_eq!(
        filters[1],
        json!({"propertyName": "lastmodifieddate", "operator": "LT", "value": "1709294400000"})
    );
    assert!(body.get("after").is_none());

    // The search comes back with the two served at that time first: they are dropped.
    let again = read_page(
        api,
        Model::Contact,
        &resume(3, &next),
        &headers(&[]),
        &search_page(
            &[("2", t2), ("3", t2), ("4", "2024-03-01T03:00:00.000Z")],
            false,
        ),
    )
    .unwrap();
    let ids: Vec<&str> = again.records.iter().map(|r| r.remote_id.as_str()).collect();
    assert_eq!(ids, ["4"]);
    assert!(again.next.is_none());
}

#[test]
fn more_ties_than_a_page_step_over_by_offset() {
    let hs = provider("hubspot");
    let api = hs.unified().unwrap();
    let first = ListAsk {
        page_size: 2,
        modified_since: Some(march_first()),
        ..ListAsk::default()
    };
    let t = "2024-03-01T01:00:00.000Z";
    let page = read_page(
        api,
        Model::Contact,
        &first,
        &headers(&[]),
        &search_page(&[("1", t), ("2", t)], true),
    )
    .unwrap();
    let call = api
        .list_call(Model::Contact, &resume(2, page.next.as_ref().unwrap()))
        .unwrap();
    assert_eq!(json_body(&call)["after"], "2");

    // A search that brings nothing new but says there is more would loop: refused.
    let stuck = read_page(
        api,
        Model::Contact,
        &resume(2, page.next.as_ref().unwrap()),
        &headers(&[]),
        &search_page(&[("1", t), ("2", t)], true),
    );
    assert!(matches!(stuck, Err(UnifiedError::Malformed(_))));
}

#[test]
fn empty_huge_and_malformed_pages() {
    let hs = provider("hubspot");
    let api = hs.unified().unwrap();
    let page = read_page(
        api,
        Model::Opportunity,
        &ask(100),
        &headers(&[]),
        br#"{"results": []}"#,
    )
    .unwrap();
    assert!(page.records.is_empty() && page.next.is_none());

    let results: Vec<_> = (0..2000)
        .map(|i| json!({"id": (90_000 + i).to_string(), "properties": {"dealname": format!("Deal {i}"), "amount": "10"}, "archived": false}))
        .collect();
    let body = serde_json::to_vec(&json!({"results": results})).unwrap();
    let page = read_page(api, Model::Opportunity, &ask(100), &headers(&[]), &body).unwrap();
    assert_eq!(page.records.len(), 2000);
    assert_eq!(
        opportunity(&page.records[1999]).name.as_deref(),
        Some("Deal 1999")
    );

    refuses_malformed_pages(api, Model::Opportunity);
    for body in [
        &br#"{"results": [{"properties": {}}]}"#[..],
        br#"{"results": [{"id": "1", "properties": "name=x"}]}"#,
        br#"{"results": [], "paging": {"next": {"link": "?after=3"}}}"#,
        br#"{"results": "none"}"#,
    ] {
        let read = read_page(api, Model::Account, &ask(10), &headers(&[]), body);
        assert!(matches!(read, Err(UnifiedError::Malformed(_))), "{read:?}");
    }
    let odd = br#"{"id": "7", "properties": {"amount": "lots", "hs_is_closed": "true", "hs_is_closed_won": "false"}}"#;
    let deal = read_record(api, Model::Opportunity, odd).unwrap();
    assert!(opportunity(&deal).amount.is_none());
    assert_eq!(opportunity(&deal).status.as_deref(), Some("LOST"));
}

#[test]
fn get_calls_take_numeric_ids() {
    let hs = provider("hubspot");
    let api = hs.unified().unwrap();
    let (path, query) = relative(&api.get_call(Model::Opportunity, "90001").unwrap());
    assert_eq!(path, "/crm/v3/objects/deals/90001");
    assert_eq!(
        param(&query.unwrap(), "associations").as_deref(),
        Some("companies")
    );
    assert!(matches!(
        api.get_call(Model::Contact, "12/../../x"),
        Err(UnifiedError::BadRemoteId(_))
    ));
    assert_eq!(api.max_page_size(Model::Contact), 100);
}
