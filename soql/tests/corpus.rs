//! The query corpus: every valid query parses, prints canonically and round-trips; every
//! invalid query fails with an error whose text matches the golden file.

// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gatehouse_soql::{analyze, parse, print, IndexCatalog, SelectivityOptions};
use std::fmt::Write;

fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect()
}

fn valid() -> Vec<&'static str> {
    let mut v = lines(include_str!("corpus/valid_handwritten.soql"));
    v.extend(lines(include_str!("corpus/valid_generated.soql")));
    v.extend(lines(include_str!("corpus/valid_reference.soql")));
    v
}

#[test]
fn corpus_is_large_enough() {
    assert!(valid().len() >= 300, "valid corpus has {}", valid().len());
    assert!(lines(include_str!("corpus/invalid.soql")).len() >= 100);
}

#[test]
fn every_valid_query_parses_and_round_trips() {
    let catalog = IndexCatalog::standard();
    let options = SelectivityOptions::default();
    let mut failures = String::new();
    for q in valid() {
        match parse(q) {
            Ok(ast) => {
                let printed = print(&ast);
                match parse(&printed) {
                    Ok(again) => {
                        if again != ast {
                            let _ = writeln!(
                                failures,
                                "round trip changed the AST: {q}\n  printed: {printed}"
                            );
                        }
                        // Canonical text is a fixed point.
                        if print(&again) != printed {
                            let _ = writeln!(failures, "printing is not idempotent: {q}");
                        }
                    }
                    Err(e) => {
                        let _ = writeln!(
                            failures,
                            "printed form does not parse: {q}\n  printed: {printed}\n  {e}"
                        );
                    }
                }
                let a = analyze(&ast, &catalog, &options, Some(19_900));
                assert!(!a.objects.is_empty());
            }
            Err(e) => {
                let _ = writeln!(failures, "{q}\n  {e}");
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn every_invalid_query_fails_inside_the_text() {
    let mut accepted = String::new();
    for q in lines(include_str!("corpus/invalid.soql")) {
        match parse(q) {
            Ok(ast) => {
                let _ = writeln!(accepted, "{q}\n  parsed as: {}", print(&ast));
            }
            Err(e) => {
                assert!(e.offset <= q.len() && e.end <= q.len(), "{q}: {e:?}");
                assert!(!e.expected.is_empty());
            }
        }
    }
    assert!(accepted.is_empty(), "accepted invalid queries:\n{accepted}");
}

/// Error messages are part of the product: a change must be deliberate. Regenerate with
/// `UPDATE_GOLDEN=1 cargo test -p gatehouse-soql --test corpus` and review the diff.
#[test]
fn error_messages_match_golden() {
    let mut actual = String::new();
    for q in lines(include_str!("corpus/invalid.soql")) {
        let msg = match parse(q) {
            Ok(_) => "ACCEPTED".to_string(),
            Err(e) => e.to_string(),
        };
        let _ = writeln!(actual, "query: {q}\nerror: {msg}\n");
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/errors.golden");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(path).unwrap();
    for (e, a) in expected.lines().zip(actual.lines()) {
        assert_eq!(e, a, "golden mismatch");
    }
    assert_eq!(expected.lines().count(), actual.lines().count());
}

#[test]
fn apex_mode_accepts_binds_and_all_rows() {
    use gatehouse_soql::{parse_with, ParseOptions};
    let apex = ParseOptions { apex: true };
    for q in [
        "SELECT Id FROM Account WHERE Name = :name",
        "SELECT Id FROM Account WHERE Id IN :ids LIMIT :n OFFSET :skip",
        "SELECT Id FROM Account WHERE OwnerId = :acc.OwnerId ALL ROWS",
        "SELECT Id FROM Warehouse__c WHERE DISTANCE(Location__c, GEOLOCATION(:lat, :lng), 'mi') < 5",
    ] {
        assert!(parse(q).is_err(), "API mode accepted {q}");
        let ast = parse_with(q, apex).unwrap_or_else(|e| panic!("{q}: {e}"));
        let again = parse_with(&print(&ast), apex).unwrap();
        assert_eq!(ast, again);
    }
}

#[test]
fn empty_and_blank_input_is_an_error() {
    for q in ["", "   ", "\n\t"] {
        let e = parse(q).unwrap_err();
        assert_eq!(e.found, "end of query");
        assert_eq!(e.expected, "SELECT");
    }
}

#[test]
fn spans_point_at_the_source() {
    let q = "SELECT Id FROM Contact WHERE Account.Name LIKE 'x%' LIMIT 5";
    let ast = parse(q).unwrap();
    let w = ast.where_clause.as_ref().unwrap();
    let s = w.span();
    assert_eq!(&q[s.start..s.end], "Account.Name LIKE 'x%'");
    let l = ast.limit.as_ref().unwrap().span();
    assert_eq!(&q[l.start..l.end], "5");
    assert_eq!(
        &q[ast.from.object.span.start..ast.from.object.span.end],
        "Contact"
    );
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let q = format!(
        "SELECT Id FROM Account WHERE {}Name = 'a'{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let e = parse(&q).unwrap_err();
    assert!(e.to_string().contains("nesting"), "{e}");
}

#[test]
fn apex_binds_are_opaque_balanced_expressions() {
    use gatehouse_soql::ast::{Literal, Rhs};
    use gatehouse_soql::{parse_with, ParseOptions};
    let apex = ParseOptions { apex: true };
    for (q, bind) in [
        ("SELECT Id FROM Account WHERE Id IN :ids.keySet()", "ids.keySet()"),
        ("SELECT Id FROM Contact WHERE AccountId = :accounts[0].Id", "accounts[0].Id"),
        (
            "SELECT Id FROM Account WHERE Id IN :new Map<Id, Account>(accounts).keySet() LIMIT 5",
            "new Map<Id, Account>(accounts).keySet()",
        ),
        (
            "SELECT Id FROM Account WHERE Id IN :new Map<Id, List<Account>>(byOwner.get(x[1])).keySet()",
            "new Map<Id, List<Account>>(byOwner.get(x[1])).keySet()",
        ),
        ("SELECT Id FROM Account WHERE Name = :names.get('a)b')", "names.get('a)b')"),
        ("SELECT Id FROM Account WHERE Amount > :limits.get(a < b)", "limits.get(a < b)"),
        ("SELECT Id FROM Account WHERE (Id IN :ids) AND Name = : n", "ids"),
    ] {
        let ast = parse_with(q, apex).unwrap_or_else(|e| panic!("{q}: {e}"));
        let Some(gatehouse_soql::ast::Condition::Compare(c)) = first_compare(&ast) else {
            panic!("{q}: no comparison");
        };
        assert_eq!(c.rhs, Rhs::Value(Literal::Bind(bind.into()), c.rhs.span()), "{q}");
        let again = parse_with(&print(&ast), apex).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(ast, again, "{q}");
        assert!(parse(q).is_err(), "API mode accepted {q}");
    }
    for bad in [
        "SELECT Id FROM Account WHERE Id IN :ids.get(1",
        "SELECT Id FROM Account WHERE Id IN :ids[0)",
        "SELECT Id FROM Account WHERE Id IN :new Map<Id, Account(x)",
        "SELECT Id FROM Account WHERE Id IN :new Map<Id, Account>",
    ] {
        assert!(parse_with(bad, apex).is_err(), "accepted {bad}");
    }
}

fn first_compare(q: &gatehouse_soql::Query) -> Option<gatehouse_soql::ast::Condition> {
    use gatehouse_soql::ast::Condition;
    let mut c = q.where_clause.clone()?;
    loop {
        match c {
            Condition::And(items, _) | Condition::Or(items, _) => c = items.into_iter().next()?,
            Condition::Not(inner, _) => c = *inner,
            cmp @ Condition::Compare(_) => return Some(cmp),
        }
    }
}

#[test]
fn unicode_escapes_decode() {
    use gatehouse_soql::lexer::unescape_string;
    let q = parse("SELECT Id FROM Account WHERE Name = 'caf\\u00E9' LIMIT 1").unwrap();
    let printed = print(&q);
    assert!(printed.contains("'caf\\u00e9'"), "{printed}");
    assert_eq!(unescape_string("caf\\u00e9"), "café");
}

/// The duplicate-field check used to compare every field with every earlier one: 60,000
/// distinct fields took about two minutes. It is linear now; how fast it is, is measured by
/// `cargo bench -p gatehouse-soql --bench parse_check` (the 100,000-character shapes), not here.
#[test]
fn many_distinct_fields_and_a_late_duplicate() {
    let fields: Vec<String> = (0..60_000).map(|i| format!("F{i}__c")).collect();
    let q = format!("SELECT {} FROM Account LIMIT 1", fields.join(", "));
    let ast = parse(&q).unwrap();
    assert_eq!(ast.select.len(), 60_000);
    let dup = format!("SELECT {}, f7__C FROM Account LIMIT 1", fields.join(", "));
    let e = parse(&dup).unwrap_err();
    assert!(
        e.to_string().contains("duplicate field selected: f7__C"),
        "{e}"
    );
}
