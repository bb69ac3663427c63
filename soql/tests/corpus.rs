//! The query corpus: every valid query parses, prints canonically and round-trips; every
//! invalid query fails with an error whose text matches the golden file.

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
