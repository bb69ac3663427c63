//! What the analysis reports: objects and fields reached, filter classes, selectivity.

// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gatehouse_soql::analysis::{Clause, Selectivity, Via};
use gatehouse_soql::{analyze, parse, FieldTraits, IndexCatalog, IndexKind, SelectivityOptions};

/// The (object, field) pairs an analysis says the query reads.
fn fields_of(a: &gatehouse_soql::Analysis) -> Vec<(String, String)> {
    a.fields
        .iter()
        .map(|f| (f.object.clone(), f.field.clone()))
        .collect()
}

fn assert_reads(fields: &[(String, String)], object: &str, field: &str) {
    assert!(
        fields.contains(&(object.to_owned(), field.to_owned())),
        "{object}.{field} not in {fields:?}"
    );
}

fn run(q: &str) -> gatehouse_soql::Analysis {
    analyze(
        &parse(q).unwrap(),
        &IndexCatalog::standard(),
        &SelectivityOptions::default(),
        Some(20_000),
    )
}

#[test]
fn objects_are_reached_through_every_path() {
    let a = run("SELECT Id, Account.Owner.Name, (SELECT Id FROM Cases), TYPEOF What WHEN Opportunity THEN Amount END \
                 FROM Task WHERE WhatId IN (SELECT Id FROM Invoice__c WHERE Name = 'x') LIMIT 5");
    let got: Vec<(String, Via)> = a.objects.iter().map(|o| (o.name.clone(), o.via)).collect();
    for want in [
        ("Task", Via::From),
        ("Account", Via::ParentPath),
        ("User", Via::ParentPath),
        ("Case", Via::ChildSubquery),
        ("Opportunity", Via::TypeOfBranch),
        ("Invoice__c", Via::SemiJoin),
    ] {
        assert!(
            got.contains(&(want.0.to_string(), want.1)),
            "missing {want:?} in {got:?}"
        );
    }
    let fields: Vec<(String, String, Clause)> = a
        .fields
        .iter()
        .map(|f| (f.object.clone(), f.field.clone(), f.clause))
        .collect();
    assert!(fields.contains(&("User".into(), "Name".into(), Clause::Select)));
    assert!(fields.contains(&("Opportunity".into(), "Amount".into(), Clause::Select)));
    assert!(fields.contains(&("Task".into(), "WhatId".into(), Clause::Where)));
    assert!(fields.contains(&("Invoice__c".into(), "Name".into(), Clause::Where)));
}

#[test]
fn alias_and_custom_relationships_resolve() {
    let a =
        run("SELECT c.Id, c.Parent__r.Name FROM Child__c c WHERE c.Parent__r.Name = 'x' LIMIT 1");
    assert!(a
        .objects
        .iter()
        .any(|o| o.name == "Parent__c" && o.via == Via::ParentPath));
    assert!(a
        .fields
        .iter()
        .any(|f| f.object == "Child__c" && f.field == "Id"));
}

#[test]
fn filters_are_classified() {
    let a = run("SELECT Id FROM Account WHERE Name LIKE '%x' AND OwnerId != null AND Industry = '' \
                 AND CALENDAR_YEAR(CreatedDate) = 2024 AND (NOT Type = 'a') AND CreatedDate = LAST_N_DAYS:10 LIMIT 5");
    let f = &a.main.filters;
    assert!(
        f[0].leading_wildcard
            && f[0].wildcard
            && f[0].index == Some(IndexKind::Standard)
            && !f[0].usable
    );
    assert!(f[1].negative && f[1].null && f[1].index == Some(IndexKind::Custom));
    assert!(f[2].empty_string && f[2].index.is_none());
    assert!(f[3].on_function && !f[3].usable);
    assert!(f[4].negative);
    assert!(f[5].usable && f[5].date_range.is_some());
    assert_eq!(a.main.selectivity, Selectivity::Selective);
}

#[test]
fn selectivity_verdicts() {
    let cases = [
        ("SELECT Id FROM Account LIMIT 1", Selectivity::NoFilter),
        (
            "SELECT Id FROM Account WHERE Name = 'a' LIMIT 1",
            Selectivity::Selective,
        ),
        (
            "SELECT Id FROM Account WHERE Industry = 'a' LIMIT 1",
            Selectivity::NotSelective,
        ),
        (
            "SELECT Id FROM Account WHERE Name = 'a' OR Industry = 'b' LIMIT 1",
            Selectivity::NotSelective,
        ),
        (
            "SELECT Id FROM Account WHERE Name = 'a' AND Industry = 'b' LIMIT 1",
            Selectivity::Selective,
        ),
        (
            "SELECT Id FROM Account WHERE CreatedDate = LAST_N_YEARS:3 LIMIT 1",
            Selectivity::WideDateRange {
                width_days: Some(1095),
            },
        ),
        (
            "SELECT Id FROM Account WHERE CreatedDate < 2020-01-01 LIMIT 1",
            Selectivity::WideDateRange { width_days: None },
        ),
        (
            "SELECT Id FROM RecordType WHERE Name != 'a'",
            Selectivity::Exempt,
        ),
        ("SELECT Id FROM Foo__mdt", Selectivity::Exempt),
    ];
    for (q, want) in cases {
        assert_eq!(run(q).main.selectivity, want, "{q}");
    }
}

#[test]
fn catalog_learns_from_describe_and_config() {
    let mut c = IndexCatalog::standard();
    assert_eq!(c.index_kind("Invoice__c", "Code__c"), None);
    c.learn_field(
        "Invoice__c",
        "Code__c",
        FieldTraits {
            unique: true,
            ..Default::default()
        },
    );
    assert_eq!(
        c.index_kind("invoice__c", "CODE__C"),
        Some(IndexKind::Custom)
    );
    c.learn_field("Invoice__c", "Memo__c", FieldTraits::default());
    assert_eq!(c.index_kind("Invoice__c", "Memo__c"), None);
    c.add_index("*", "Legacy_Id__c");
    assert_eq!(
        c.index_kind("Anything__c", "Legacy_Id__c"),
        Some(IndexKind::Custom)
    );
    c.learn_relationship("Contact", "Employer__r", "Account");
    assert_eq!(c.parent_object("Contact", "Employer__r"), "Account");
    assert_eq!(c.parent_object("Contact", "Other__r"), "Other__c");
    assert_eq!(c.child_object("Account", "Opportunities"), "Opportunity");
    assert_eq!(c.child_object("Account", "Histories"), "AccountHistory");
    assert_eq!(
        IndexCatalog::without_standard_indexes().index_kind("Account", "Id"),
        None
    );
}

#[test]
fn related_from_aliases_resolve_to_their_objects() {
    // "Alias Notation": `a` is the Account reached from Contact, `o` that account's owner.
    let a = run("SELECT Id, a.Name, o.Email FROM Contact c, c.Account a, a.Owner o WHERE a.Name = 'MyriadPubs' LIMIT 5");
    let objects: Vec<(String, Via)> = a.objects.iter().map(|o| (o.name.clone(), o.via)).collect();
    assert!(
        objects.contains(&("Account".into(), Via::ParentPath)),
        "{objects:?}"
    );
    assert!(
        objects.contains(&("User".into(), Via::ParentPath)),
        "{objects:?}"
    );
    let fields = fields_of(&a);
    assert_reads(&fields, "Account", "Name");
    assert_reads(&fields, "User", "Email");
    // A filter through the related alias is a parent-path filter: no index on Contact.
    assert_eq!(a.main.filters[0].index, None);
    assert_eq!(a.main.selectivity, Selectivity::NotSelective);
}

#[test]
fn a_qualified_child_relationship_reads_the_child_object() {
    // "SOQL SELECT Syntax": (SELECT Contact.LastName FROM Account.Contacts).
    let a = run(
        "SELECT Account.Name, (SELECT Contact.LastName FROM Account.Contacts) FROM Account LIMIT 5",
    );
    let fields = fields_of(&a);
    assert_reads(&fields, "Contact", "LastName");
    assert_reads(&fields, "Account", "Name");
    assert!(a
        .objects
        .iter()
        .any(|o| o.name == "Contact" && o.via == Via::ChildSubquery));
}
