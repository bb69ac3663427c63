//! Salesforce's unified API against golden query pages and records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod unified_common;

use gatehouse_adapters::models::Model;
use gatehouse_adapters::unified::{ListAsk, UnifiedError};
use serde_json::json;
use unified_common::*;

#[test]
fn a_query_page_maps_every_field_and_normalises_times() {
    let sf = provider("salesforce");
    let api = sf.unified().unwrap();
    let body = golden("salesforce/accounts_page.json");
    let page = read_page(api, Model::Account, &ask(50), &headers(&[]), &body).unwrap();
    assert_eq!(page.records.len(), 2);
    assert!(
        page.next.is_none(),
        "a short page that is done ends the walk"
    );
    let acme = &page.records[0];
    assert_eq!(acme.remote_id, "0015g00000AbCdEAAV");
    assert_eq!(
        acme.remote_created_at.as_deref(),
        Some("2024-01-01T00:00:00Z")
    );
    // SystemModstamp, the field incremental walks filter on, not LastModifiedDate.
    assert_eq!(
        acme.remote_modified_at.as_deref(),
        Some("2024-03-05T10:11:13Z")
    );
    assert_eq!(acme.remote_was_deleted, Some(false));
    let fields = account(acme);
    assert_eq!(fields.name.as_deref(), Some("Acme Corporation"));
    assert_eq!(fields.industry.as_deref(), Some("Manufacturing"));
    assert_eq!(fields.number_of_employees, Some(1200));
    assert_eq!(fields.owner.as_deref(), Some("0055g00000Xy1ZAAAY"));
    assert_eq!(fields.phone_numbers[0].phone_number, "+1 415 555 0100");
    let billing = &fields.addresses[0];
    assert_eq!(billing.street_1.as_deref(), Some("1 Market St"));
    assert_eq!(billing.street_2.as_deref(), Some("Suite 300"));
    assert_eq!(billing.postal_code.as_deref(), Some("94105"));
    assert_eq!(billing.address_type.as_deref(), Some("BILLING"));
    // Verbatim, unknown custom fields and `attributes` included.
    assert_eq!(acme.raw["Custom_Score__c"], json!(97.5));
    assert_eq!(acme.raw["attributes"]["type"], "Account");

    let globex = &page.records[1];
    assert_eq!(globex.remote_was_deleted, Some(true));
    // +0100 becomes UTC.
    assert_eq!(
        globex.remote_created_at.as_deref(),
        Some("2024-02-01T07:00:00Z")
    );
    let nulls = account(globex);
    assert!(nulls.website.is_none() && nulls.industry.is_none());
    assert!(nulls.addresses.is_empty() && nulls.phone_numbers.is_empty());
}

#[test]
fn an_opportunity_reads_status_amount_and_close_date() {
    let sf = provider("salesforce");
    let mapped = read_record(
        sf.unified().unwrap(),
        Model::Opportunity,
        &golden("salesforce/opportunity.json"),
    )
    .unwrap();
    let o = opportunity(&mapped);
    assert_eq!(o.status.as_deref(), Some("WON"));
    assert_eq!(o.amount, Some(125000.5));
    assert_eq!(o.close_date.as_deref(), Some("2024-06-30"));
    assert_eq!(o.stage.as_deref(), Some("Closed Won"));
    assert_eq!(o.account.as_deref(), Some("0015g00000AbCdEAAV"));
}

#[test]
fn the_first_page_is_a_limited_query_in_keyset_order() {
    let sf = provider("salesforce");
    let api = sf.unified().unwrap();
    let call = api.list_call(Model::Contact, &ask(50)).unwrap();
    assert_eq!(call.method, http::Method::GET);
    let (path, query) = relative(&call);
    assert_eq!(path, "/services/data/v66.0/query");
    let soql = param(&query.unwrap(), "q").unwrap();
    assert!(
        soql.starts_with("SELECT Id,FirstName,LastName,Email"),
        "{soql}"
    );
    assert!(soql.ends_with("FROM Contact ORDER BY SystemModstamp ASC, Id ASC LIMIT 50"));
    // A page size of 50 is a LIMIT, not a batchSize (which Salesforce raises to 200).
    assert!(call.headers.is_empty());
}

#[test]
fn modified_since_queries_all_rows_from_that_second() {
    let sf = provider("salesforce");
    let api = sf.unified().unwrap();
    let since = march_first() + std::time::Duration::from_millis(999);
    let ask = ListAsk {
        page_size: 200,
        modified_since: Some(since),
        ..ListAsk::default()
    };
    let (path, query) = relative(&api.list_call(Model::Account, &ask).unwrap());
    assert_eq!(path, "/services/data/v66.0/queryAll");
    let soql = param(&query.unwrap(), "q").unwrap();
    assert!(
        soql.contains("WHERE SystemModstamp >= 2024-03-01T00:00:00Z ORDER BY"),
        "{soql}"
    );
}

#[test]
fn a_full_page_resumes_after_its_last_row_below_the_first_answers_date() {
    let sf = provider("salesforce");
    let api = sf.unified().unwrap();
    let body = golden("salesforce/accounts_page.json");
    let date = headers(&[("date", "Tue, 02 Apr 2024 09:00:00 GMT")]);
    let page = read_page(api, Model::Account, &ask(2), &date, &body).unwrap();
    let next = page.next.expect("a full page goes on");
    let call = api.list_call(Model::Account, &resume(2, &next)).unwrap();
    let (path, query) = relative(&call);
    assert_eq!(path, "/services/data/v66.0/query");
    let soql = param(&query.unwrap(), "q").unwrap();
    assert!(soql.contains(
        "WHERE (SystemModstamp > 2024-04-01T00:00:00Z OR (SystemModstamp = 2024-04-01T00:00:00Z AND Id > '0015g00000AbCdFAAV')) AND SystemModstamp < 2024-04-02T09:00:00Z"
    ), "{soql}");
    // The bound stays for the rest of the walk, whatever later answers' dates say.
    let later = read_page(
        api,
        Model::Account,
        &resume(2, &next),
        &headers(&[("date", "Wed, 03 Apr 2024 09:00:00 GMT")]),
        &body,
    )
    .unwrap();
    let (_, query) = relative(
        &api.list_call(Model::Account, &resume(2, &later.next.unwrap()))
            .unwrap(),
    );
    assert!(param(&query.unwrap(), "q")
        .unwrap()
        .contains("SystemModstamp < 2024-04-02T09:00:00Z"));
}

#[test]
fn empty_and_huge_pages() {
    let sf = provider("salesforce");
    let api = sf.unified().unwrap();
    let empty = br#"{"totalSize": 0, "done": true, "records": []}"#;
    let page = read_page(api, Model::Contact, &ask(2000), &headers(&[]), empty).unwrap();
    assert!(page.records.is_empty() && page.next.is_none());

    let rows: Vec<_> = (0..2000)
        .map(|i| {
            json!({
                "attributes": {"type": "Contact"},
                "Id": format!("0035g00000{i:06}AAA"),
                "FirstName": format!("First{i}"), "LastName": "Last", "Email": null,
                "SystemModstamp": "2024-01-01T00:00:00.000+0000", "IsDeleted": false,
            })
        })
        .collect();
    let body =
        serde_json::to_vec(&json!({"totalSize": 5000, "done": true, "records": rows})).unwrap();
    let page = read_page(api, Model::Contact, &ask(2000), &headers(&[]), &body).unwrap();
    assert_eq!(page.records.len(), 2000);
    assert_eq!(
        contact(&page.records[1999]).first_name.as_deref(),
        Some("First1999")
    );
    assert!(page.next.is_some());
}

#[test]
fn malformed_pages_and_records_are_typed_errors() {
    let sf = provider("salesforce");
    let api = sf.unified().unwrap();
    refuses_malformed_pages(api, Model::Account);
    let h = headers(&[]);
    for body in [
        &br#"{"done": true, "records": {"Id": "x"}}"#[..],
        br#"{"done": "yes", "records": []}"#,
        br#"{"done": true, "records": [{"Name": "no id"}]}"#,
        br#"{"done": true, "records": [{"Id": 42}]}"#,
        br#"{"done": true, "records": ["0015g00000AbCdEAAV"]}"#,
        // A full page whose last row cannot say where to go on.
        br#"{"done": false, "records": [{"Id": "0015g00000AbCdEAAV", "SystemModstamp": "soon"}]}"#,
    ] {
        let read = read_page(api, Model::Account, &ask(1), &h, body);
        assert!(matches!(read, Err(UnifiedError::Malformed(_))), "{read:?}");
    }
    let wrong_types = br#"{"Id": "0015g00000AbCdEAAV", "Name": 7, "NumberOfEmployees": "many", "IsDeleted": "no"}"#;
    let mapped = read_record(api, Model::Account, wrong_types).unwrap();
    assert!(account(&mapped).name.is_none() && account(&mapped).number_of_employees.is_none());
    assert_eq!(mapped.remote_was_deleted, None);
    assert!(matches!(
        read_record(api, Model::Account, b"[]"),
        Err(UnifiedError::Malformed(_))
    ));
}

#[test]
fn get_calls_check_the_id_and_ask_the_same_fields() {
    let sf = provider("salesforce");
    let api = sf.unified().unwrap();
    let (path, query) = relative(&api.get_call(Model::Opportunity, "0065g00000Qq9RA").unwrap());
    assert_eq!(
        path,
        "/services/data/v66.0/sobjects/Opportunity/0065g00000Qq9RA"
    );
    assert!(param(&query.unwrap(), "fields")
        .unwrap()
        .contains("StageName"));
    for bad in [
        "",
        "0065g00000Qq9R",
        "0065g00000Qq9RA' OR Id != '",
        "../../limits",
    ] {
        assert!(matches!(
            api.get_call(Model::Opportunity, bad),
            Err(UnifiedError::BadRemoteId(_))
        ));
    }
    assert!(matches!(
        api.list_call(Model::Candidate, &ask(10)),
        Err(UnifiedError::Unsupported { .. })
    ));
    assert_eq!(
        api.models(),
        [Model::Account, Model::Contact, Model::Opportunity]
    );
    assert_eq!(api.max_page_size(Model::Account), 2000);
}

#[test]
fn a_walk_state_from_elsewhere_is_refused() {
    let sf = provider("salesforce");
    let api = sf.unified().unwrap();
    let body = golden("salesforce/accounts_page.json");
    let next = read_page(api, Model::Account, &ask(2), &headers(&[]), &body)
        .unwrap()
        .next
        .unwrap();
    assert_eq!(
        api.list_call(Model::Contact, &resume(2, &next)),
        Err(UnifiedError::BadWalkState)
    );
    let mut forged = next.clone();
    forged.0["id"] = json!("x' OR Name != '");
    assert_eq!(
        api.list_call(Model::Account, &resume(2, &forged)),
        Err(UnifiedError::BadWalkState)
    );
}
