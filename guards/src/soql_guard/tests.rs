//! Guard tests: the case table (testdata/cases.txt) and behaviour around it.

use super::cli::{run_with_loader, SoqlCheckArgs, EXIT_ALLOWED, EXIT_BLOCKED, EXIT_USAGE};
use super::*;
use gatehouse_soql::ast::Date;
use std::collections::BTreeSet;

fn policy() -> PolicyFile {
    let p: PolicyFile = toml::from_str(include_str!("testdata/policy.toml")).unwrap();
    p.validate().unwrap();
    p
}

fn today() -> i64 {
    Date {
        year: 2025,
        month: 6,
        day: 1,
    }
    .days_since_epoch()
}

fn ctx(query_all: bool) -> CheckContext {
    CheckContext {
        query_all,
        today: Some(today()),
        keyset_walk: false,
    }
}

/// The unified API's own walk: no filter on its first page, `queryAll` when incremental. The
/// selectivity and all-rows rules do not judge it; the caller's allow-lists and the limits do.
#[test]
fn a_keyset_walk_is_judged_by_allow_lists_and_limits_only() {
    let guard = SoqlGuard::new(SoqlGuardConfig::default()).unwrap();
    let walk = CheckContext {
        keyset_walk: true,
        ..ctx(true)
    };
    let first_page = "SELECT Id, Name, SystemModstamp FROM Account ORDER BY SystemModstamp ASC, Id ASC LIMIT 200";
    assert!(guard.check(first_page, None, &ctx(true)).is_blocked());
    let verdict = guard.check(first_page, None, &walk);
    assert!(!verdict.is_blocked(), "{:?}", verdict.violations);
    assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    let caller = CallerSoqlPolicy {
        objects: Some(vec!["Contact".into()]),
        ..CallerSoqlPolicy::default()
    };
    let refused = guard.check(first_page, Some(&caller), &walk);
    assert!(refused.is_blocked());
    assert!(refused
        .blocking()
        .all(|v| v.rule == RuleId::ObjectNotAllowed));
    let too_many = "SELECT Id FROM Account ORDER BY SystemModstamp ASC, Id ASC LIMIT 100000";
    assert!(guard
        .check(too_many, None, &walk)
        .violations
        .iter()
        .any(|v| v.rule == RuleId::LimitTooHigh));
}

#[test]
fn rule_catalog_cases() {
    let policy = policy();
    let default = SoqlGuard::new(policy.soql.clone()).unwrap();
    let rewrite = SoqlGuard::new(policy.connection("rewrite").unwrap().clone()).unwrap();
    let short = SoqlGuard::new(policy.connection("short").unwrap().clone()).unwrap();
    let mut failures = Vec::new();
    let mut count = 0;
    let mut rules_seen = BTreeSet::new();
    for line in include_str!("testdata/cases.txt").lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, " | ");
        let (Some(profile), Some(expected), Some(query)) =
            (parts.next(), parts.next(), parts.next())
        else {
            panic!("malformed case line: {line}");
        };
        count += 1;
        let (guard, caller, query_all) = match profile {
            "default" => (&default, None, false),
            "queryall" => (&default, None, true),
            "rewrite" => (&rewrite, None, false),
            "short" => (&short, None, false),
            "bot" => (&default, policy.caller("bot"), false),
            "lenient" => (&default, policy.caller("lenient"), false),
            "lenient+queryall" => (&default, policy.caller("lenient"), true),
            other => panic!("unknown profile {other}"),
        };
        let (decision, rules) = expected.split_once(' ').unwrap();
        let want: BTreeSet<&str> = rules.split(',').filter(|r| *r != "-").collect();
        let verdict = guard.check(query, caller, &ctx(query_all));
        let got: BTreeSet<&str> = verdict.violations.iter().map(|v| v.rule.as_str()).collect();
        rules_seen.extend(got.iter().map(|s| s.to_string()));
        let want_block = decision == "B";
        if got != want || verdict.is_blocked() != want_block {
            failures.push(format!(
                "{profile} | {query}\n  want {decision} {want:?}\n  got  {} {got:?}\n  {:#?}",
                if verdict.is_blocked() { "B" } else { "A" },
                verdict.violations
            ));
        }
        for v in &verdict.violations {
            assert!(!v.hint.is_empty(), "{} has no hint", v.rule);
            assert!(
                v.span.0 <= v.span.1 && v.span.1 <= query.len(),
                "bad span {:?} in {query}",
                v.span
            );
            let chars = |b: usize| query[..b].chars().count();
            assert_eq!(v.chars, (chars(v.span.0), chars(v.span.1)), "{query}");
        }
    }
    assert!(count >= 100, "only {count} cases");
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for rule in RuleId::ALL {
        assert!(
            rules_seen.contains(rule.as_str()),
            "no case exercises {rule}"
        );
    }
}

#[test]
fn rewrite_adds_the_default_limit_in_the_right_place() {
    let policy = policy();
    let guard = SoqlGuard::new(policy.connection("rewrite").unwrap().clone()).unwrap();
    let v = guard.check("SELECT Id FROM Account WHERE Name = 'x'", None, &ctx(false));
    assert_eq!(
        v.rewritten.as_deref(),
        Some("SELECT Id FROM Account WHERE Name = 'x' LIMIT 500")
    );
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(v.violations[0].mode, Mode::Rewrite);
    let v = guard.check(
        "SELECT Id FROM Account WHERE Name = 'x' OFFSET 10 FOR VIEW",
        None,
        &ctx(false),
    );
    let rewritten = v.rewritten.unwrap();
    assert_eq!(
        rewritten,
        "SELECT Id FROM Account WHERE Name = 'x' LIMIT 500 OFFSET 10 FOR VIEW"
    );
    assert!(gatehouse_soql::parse(&rewritten).is_ok());
    // Aggregates need no LIMIT, so nothing is rewritten.
    let v = guard.check(
        "SELECT COUNT() FROM Account WHERE Name = 'x'",
        None,
        &ctx(false),
    );
    assert!(v.rewritten.is_none() && v.violations.is_empty());
}

#[test]
fn observed_violations_are_reported_but_do_not_block() {
    let mut config = SoqlGuardConfig::default();
    config.rules.insert(RuleId::MissingWhere, Mode::Observe);
    config.rules.insert(RuleId::MissingLimit, Mode::Off);
    let guard = SoqlGuard::new(config).unwrap();
    let v = guard.check("SELECT Id FROM Account", None, &ctx(false));
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(v.violations.len(), 1);
    assert_eq!(v.violations[0].rule, RuleId::MissingWhere);
    assert_eq!(v.violations[0].mode, Mode::Observe);
    // A caller override wins over the connection.
    let caller = CallerSoqlPolicy {
        rules: [(RuleId::MissingWhere, Mode::Enforce)]
            .into_iter()
            .collect(),
        ..CallerSoqlPolicy::default()
    };
    assert!(guard
        .check("SELECT Id FROM Account", Some(&caller), &ctx(false))
        .is_blocked());
}

#[test]
fn switching_a_specific_rule_off_does_not_fall_through_to_the_catch_all() {
    let mut config = SoqlGuardConfig::default();
    config.rules.insert(RuleId::NegativeOnly, Mode::Off);
    let guard = SoqlGuard::new(config).unwrap();
    let v = guard.check(
        "SELECT Id FROM Account WHERE Name != 'x' LIMIT 5",
        None,
        &ctx(false),
    );
    assert!(v.violations.is_empty(), "{:?}", v.violations);
}

#[test]
fn describe_metadata_makes_fields_indexed() {
    let mut guard = SoqlGuard::new(SoqlGuardConfig::default()).unwrap();
    let q = "SELECT Id FROM Invoice__c WHERE Code__c = 'A-1' LIMIT 5";
    assert!(guard.check(q, None, &ctx(false)).is_blocked());
    guard.learn_field(
        "Invoice__c",
        "Code__c",
        gatehouse_soql::FieldTraits {
            external_id: true,
            ..Default::default()
        },
    );
    assert!(!guard.check(q, None, &ctx(false)).is_blocked());
}

#[test]
fn syntax_errors_explain_where_and_what() {
    let guard = SoqlGuard::new(SoqlGuardConfig::default()).unwrap();
    let v = guard.check(
        "SELECT Id FROM Account WHERE Name = 'a' AND Type = 'b' OR x = 1",
        None,
        &ctx(false),
    );
    let s = &v.violations[0];
    assert_eq!(s.rule, RuleId::Syntax);
    assert_eq!(s.span.0, 55);
    assert!(s.message.contains("expected AND"), "{}", s.message);
    assert!(s.hint.contains("parentheses"), "{}", s.hint);
    assert!(v.parse_error.is_some());
}

#[test]
fn config_rejects_unknown_fields_rules_and_bad_modes() {
    assert!(toml::from_str::<PolicyFile>("[soql]\nmax_limt = 5\n").is_err());
    assert!(toml::from_str::<PolicyFile>("[soql.rules]\nno-such-rule = \"off\"\n").is_err());
    assert!(toml::from_str::<PolicyFile>("[soql.rules]\nmissing-where = \"sometimes\"\n").is_err());
    let p: PolicyFile = toml::from_str("[soql.rules]\nmissing-where = \"rewrite\"\n").unwrap();
    assert!(matches!(
        p.validate(),
        Err(ConfigError::RewriteNotSupported { .. })
    ));
    let p: PolicyFile = toml::from_str("[soql]\nindexes = [\"NoDot\"]\n").unwrap();
    assert!(matches!(p.validate(), Err(ConfigError::BadIndex { .. })));
    // Defaults when nothing is configured.
    let p: PolicyFile = toml::from_str("").unwrap();
    assert_eq!(p.soql.max_limit, 2000);
    assert_eq!(p.soql.max_offset, 2000);
    assert!(p.soql.large_objects.iter().any(|o| o == "Account"));
    // Config round-trips through serde.
    let back: PolicyFile = toml::from_str(&toml::to_string(&policy()).unwrap()).unwrap();
    assert_eq!(back, policy());
}

#[test]
fn readme_example_policy_parses() {
    let readme = include_str!("README.md");
    let start = readme.find("```toml").unwrap() + "```toml".len();
    let end = start + readme[start..].find("```").unwrap();
    let p: PolicyFile = toml::from_str(&readme[start..end]).unwrap();
    p.validate().unwrap();
    assert!(p.caller("reporting-bot").is_some());
}

#[test]
fn verdict_serialises_with_rule_ids() {
    let guard = SoqlGuard::new(SoqlGuardConfig::default()).unwrap();
    let v = guard.check("SELECT Id FROM Account", None, &ctx(false));
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["decision"], "block");
    assert_eq!(json["violations"][0]["rule"], "missing-limit");
    assert_eq!(json["violations"][1]["rule"], "missing-where");
    assert_eq!(json["violations"][1]["span"], serde_json::json!([15, 22]));
}

#[test]
fn finds_queries_in_urls_and_composite_bodies() {
    assert_eq!(
        query_from_url(
            "/services/data/v60.0/query?q=SELECT+Id+FROM+Account+WHERE+Name+%3D+%27a%2Bb%27"
        ),
        Some((
            "SELECT Id FROM Account WHERE Name = 'a+b'".to_string(),
            false
        ))
    );
    assert_eq!(
        query_from_url("/services/data/v60.0/queryAll/?q=SELECT%20Id%20FROM%20Task&foo=1"),
        Some(("SELECT Id FROM Task".to_string(), true))
    );
    assert_eq!(
        query_from_url("/services/data/v60.0/query/01gxx0000000001-2000"),
        None
    );
    assert_eq!(
        query_from_url("/services/data/v60.0/sobjects/Account/001?q=x"),
        None
    );
    assert_eq!(
        query_from_url("/services/data/v60.0/query?explain=SELECT+Id+FROM+Account"),
        None
    );
    let body = serde_json::json!({
        "allOrNone": true,
        "compositeRequest": [
            {"method": "GET", "url": "/services/data/v60.0/query?q=SELECT+Id+FROM+Account+LIMIT+5", "referenceId": "a"},
            {"method": "POST", "url": "/services/data/v60.0/sobjects/Contact", "body": {"url": "not a query"}, "referenceId": "b"},
            {"method": "GET", "url": "/services/data/v60.0/queryAll?q=SELECT+Id+FROM+Task", "referenceId": "c"}
        ]
    });
    let found = queries_in_body(&body);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].pointer, "/compositeRequest/0/url");
    assert_eq!(found[0].soql, "SELECT Id FROM Account LIMIT 5");
    assert_eq!(found[1].pointer, "/compositeRequest/2/url");
    assert!(found[1].query_all);
    assert_eq!(
        body.pointer(&found[1].pointer)
            .and_then(|v| v.as_str())
            .map(|s| s.contains("queryAll")),
        Some(true)
    );
    let batch = serde_json::json!({
        "batchRequests": [
            {"method": "GET", "url": "v60.0/query?q=SELECT+Name+FROM+Account"},
            {"method": "PATCH", "url": "v60.0/sobjects/Account/001", "richInput": {"Name": "x"}}
        ]
    });
    let found = queries_in_body(&batch);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].pointer, "/batchRequests/0/url");
    assert_eq!(found[0].soql, "SELECT Name FROM Account");
}

#[test]
fn shape_key_ignores_literal_values() {
    let a = shape_key(
        "select Id from Account where Name = 'a' and CreatedDate = LAST_N_DAYS:3 limit 5",
    )
    .unwrap();
    let b = shape_key("SELECT Id FROM Account WHERE Name = 'zzz' AND CreatedDate = TODAY LIMIT 5")
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(
        a,
        "SELECT Id FROM Account WHERE Name = ? AND CreatedDate = ? LIMIT 5"
    );
    let c = shape_key("SELECT Id FROM Account WHERE Name IN ('a', 'b') LIMIT 5").unwrap();
    let d = shape_key("SELECT Id FROM Account WHERE Name IN ('a') LIMIT 5").unwrap();
    assert_eq!(c, d);
    assert!(shape_key("SELECT").is_none());
}

fn toml_loader(text: &'static str) -> impl FnOnce(&std::path::Path) -> Result<PolicyFile, String> {
    move |_| toml::from_str(text).map_err(|e| e.to_string())
}

fn run_cli(args: SoqlCheckArgs, stdin: &str) -> (i32, String) {
    let mut out = Vec::new();
    let code = run_with_loader(
        &args,
        toml_loader(include_str!("testdata/policy.toml")),
        stdin.as_bytes(),
        &mut out,
    );
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn cli_json_one_object_per_stdin_line() {
    let args = SoqlCheckArgs {
        json: true,
        ..SoqlCheckArgs::default()
    };
    let stdin = "SELECT Id FROM Account WHERE Id = '001000000000001' LIMIT 1\n\nSELECT Id FROM Account WHERE\n";
    let (code, out) = run_cli(args, stdin);
    assert_eq!(code, EXIT_BLOCKED);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["verdict"], "allow");
    assert_eq!(lines[0]["parsed"], true);
    assert!(lines[0].get("error").is_none());
    assert_eq!(lines[1]["verdict"], "block");
    assert_eq!(lines[1]["parsed"], false);
    assert_eq!(lines[1]["violations"][0]["rule"], "syntax");
    assert_eq!(
        lines[1]["violations"][0]["span"],
        serde_json::json!([28, 28])
    );
    assert_eq!(lines[1]["error"]["expected"], "a field name");
}

#[test]
fn cli_rewrite_and_exit_codes() {
    let args = SoqlCheckArgs {
        policy: Some("policy.toml".into()),
        connection: Some("rewrite".into()),
        json: true,
        queries: vec!["SELECT Id FROM Account WHERE Name = 'x'".into()],
        ..SoqlCheckArgs::default()
    };
    let (code, out) = run_cli(args, "");
    assert_eq!(code, EXIT_ALLOWED, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        v["rewritten"],
        "SELECT Id FROM Account WHERE Name = 'x' LIMIT 500"
    );
    assert_eq!(v["violations"][0]["rule"], "missing-limit");

    let unknown_caller = SoqlCheckArgs {
        policy: Some("policy.toml".into()),
        caller: Some("nobody".into()),
        queries: vec!["SELECT Id FROM Account".into()],
        ..SoqlCheckArgs::default()
    };
    let (code, out) = run_cli(unknown_caller, "");
    assert_eq!(code, EXIT_USAGE);
    assert!(out.contains("unknown caller"), "{out}");

    let unknown_connection = SoqlCheckArgs {
        policy: Some("policy.toml".into()),
        connection: Some("nope".into()),
        ..SoqlCheckArgs::default()
    };
    assert_eq!(run_cli(unknown_connection, "").0, EXIT_USAGE);

    let caller_without_policy = SoqlCheckArgs {
        caller: Some("bot".into()),
        ..SoqlCheckArgs::default()
    };
    assert_eq!(run_cli(caller_without_policy, "").0, EXIT_USAGE);

    let mut out = Vec::new();
    let bad_policy = SoqlCheckArgs {
        policy: Some("p.toml".into()),
        ..SoqlCheckArgs::default()
    };
    let code = run_with_loader(
        &bad_policy,
        toml_loader("[soql]\nbogus = 1\n"),
        "".as_bytes(),
        &mut out,
    );
    assert_eq!(code, EXIT_USAGE);
    assert!(String::from_utf8(out).unwrap().contains("p.toml"));
}

#[test]
fn cli_text_report_underlines_each_span() {
    let args = SoqlCheckArgs {
        policy: Some("policy.toml".into()),
        caller: Some("bot".into()),
        queries: vec!["SELECT Id, Industry FROM Account WHERE Name LIKE '%x' LIMIT 10".into()],
        ..SoqlCheckArgs::default()
    };
    let (code, out) = run_cli(args, "");
    assert_eq!(code, EXIT_BLOCKED);
    let expected = "\
query 1: BLOCK
  SELECT Id, Industry FROM Account WHERE Name LIKE '%x' LIMIT 10
                                         ^^^^^^^^^^^^^^ leading-wildcard
  leading-wildcard (enforce): Name LIKE starts with a wildcard and is the only filter on its branch; no index can be used
    fix: anchor the pattern at the start ('Acme%'), or AND it with a selective indexed filter
             ^^^^^^^^ field-not-allowed
  field-not-allowed (enforce): this caller may not read Account.Industry
    fix: remove Industry from the query, or add it to this caller's fields for Account
";
    assert_eq!(out, expected);
}

/// Full guard throughput (parse + analysis + every rule + allow-lists) over the case table.
/// `cargo test -p gatehouse-guards --release guard_check_throughput -- --ignored --nocapture`
#[test]
#[ignore = "timing only; run in release"]
#[allow(clippy::disallowed_methods)] // a throughput figure: wall-clock time is what it measures
fn guard_check_throughput() {
    let policy = policy();
    let guard = SoqlGuard::new(policy.soql.clone()).unwrap();
    let caller = policy.caller("bot");
    let queries: Vec<&str> = include_str!("testdata/cases.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.splitn(3, " | ").nth(2))
        .collect();
    let ctx = ctx(false);
    let start = std::time::Instant::now();
    let mut n = 0u64;
    while start.elapsed() < std::time::Duration::from_secs(3) {
        for q in &queries {
            std::hint::black_box(guard.check(std::hint::black_box(q), caller, &ctx));
        }
        n += queries.len() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "guard.check over {} case queries: {:.0} queries/s, {:.0} ns/query",
        queries.len(),
        n as f64 / secs,
        secs * 1e9 / n as f64
    );
}

#[test]
fn the_length_cap_is_salesforces_maximum_and_comes_before_parsing() {
    let guard = SoqlGuard::new(SoqlGuardConfig::default()).unwrap();
    assert_eq!(guard.config().max_query_chars, 100_000);
    // Exactly 100,000 characters of a valid query pass the cap and are checked as usual.
    let head = "SELECT Id FROM Account WHERE Id = '001000000000001' AND Name IN (";
    let tail = ") LIMIT 1";
    let mut values = String::new();
    while head.len() + values.len() + tail.len() + 6 <= 100_000 {
        values.push_str(if values.is_empty() { "'abc'" } else { ",'abc'" });
    }
    let pad = 100_000 - head.len() - values.len() - tail.len();
    let at_cap = format!("{head}{values}{}{tail}", " ".repeat(pad));
    assert_eq!(at_cap.chars().count(), 100_000);
    let v = guard.check(&at_cap, None, &ctx(false));
    assert!(!v.is_blocked(), "{:?}", v.violations);
    // One character more is blocked without being parsed, whatever else is wrong with it.
    let over = format!("{at_cap} ");
    let v = guard.check(&over, None, &ctx(false));
    assert!(v.is_blocked());
    assert_eq!(v.violations.len(), 1);
    assert_eq!(v.violations[0].rule, RuleId::QueryTooLong);
    assert!(
        v.violations[0].message.contains("100001"),
        "{}",
        v.violations[0].message
    );
    assert!(v.parse_error.is_none());
    // The cap counts characters, not bytes: 60,000 two-byte characters are under it.
    let wide = format!(
        "SELECT Id FROM Account WHERE Name = '{}' LIMIT 1",
        "é".repeat(60_000)
    );
    assert!(wide.len() > 100_000);
    let v = guard.check(&wide, None, &ctx(false));
    assert!(v.violations.iter().all(|v| v.rule != RuleId::QueryTooLong));
}

#[test]
fn the_length_cap_cannot_be_switched_off_only_raised() {
    let p: PolicyFile = toml::from_str("[soql.rules]\nquery-too-long = \"off\"\n").unwrap();
    assert_eq!(p.validate(), Err(ConfigError::QueryTooLongAlwaysEnforced));
    let p: PolicyFile = toml::from_str("[soql]\nmax_query_chars = 0\n").unwrap();
    assert_eq!(p.validate(), Err(ConfigError::ZeroQueryLength));
    let p: PolicyFile = toml::from_str("[soql]\nmax_query_chars = 200000\n").unwrap();
    p.validate().unwrap();
    let guard = SoqlGuard::new(p.soql).unwrap();
    let caller = CallerSoqlPolicy {
        rules: [(RuleId::QueryTooLong, Mode::Off)].into_iter().collect(),
        ..CallerSoqlPolicy::default()
    };
    assert_eq!(
        guard.mode(RuleId::QueryTooLong, Some(&caller)),
        Mode::Enforce
    );
    let q = format!(
        "SELECT Id FROM Account WHERE Name = '{}' LIMIT 1",
        "x".repeat(150_000)
    );
    assert!(!guard.check(&q, None, &ctx(false)).is_blocked());
}

#[test]
fn spans_count_characters_as_well_as_bytes() {
    let guard = SoqlGuard::new(SoqlGuardConfig::default()).unwrap();
    let q = "SELECT Id FROM Contact WHERE LastName = 'Müller' AND Email != null LIMIT 5";
    let v = guard.check(q, None, &ctx(false));
    let null = v
        .violations
        .iter()
        .find(|v| v.rule == RuleId::NullComparison)
        .expect("null-comparison");
    assert_eq!(&q[null.span.0..null.span.1], "Email != null");
    // One two-byte character (ü) before the span.
    assert_eq!(null.chars, (null.span.0 - 1, null.span.1 - 1));
    let e = guard.check(
        "SELECT Id FROM Account WHERE Name = 'Nämé' AND",
        None,
        &ctx(false),
    );
    let s = &e.violations[0];
    assert_eq!(s.rule, RuleId::Syntax);
    assert_eq!(s.span, (48, 48));
    assert_eq!(s.chars, (46, 46));
    assert!(
        s.message.starts_with("at character 46 (byte 48):"),
        "{}",
        s.message
    );
}

#[test]
fn syntax_hints_add_the_fix_instead_of_repeating_the_message() {
    let guard = SoqlGuard::new(SoqlGuardConfig::default()).unwrap();
    for q in [
        "SELECT Id FROM Account WHERE Name = 'a' AND Type = 'b' OR x = 1",
        "SELECT Id FROM Account WHERE",
        "SELECT Id FROM Account WHERE Name = 'x' LIMIT 5 ORDER BY Name",
        "SELECT Id, FROM Account",
        "SELECT * FROM Account",
    ] {
        let v = guard.check(q, None, &ctx(false));
        let s = &v.violations[0];
        assert_eq!(s.rule, RuleId::Syntax);
        assert!(
            !s.message.contains(&s.hint),
            "{q}: hint repeats the message: {}",
            s.hint
        );
        assert!(!s.hint.contains(" at byte "), "{q}: {}", s.hint);
    }
    let v = guard.check("SELECT Id FROM Account WHERE", None, &ctx(false));
    assert_eq!(
        v.violations[0].hint,
        "the query stops after 'SELECT Id FROM Account WHERE'; finish it with a field name"
    );
    let v = guard.check("SELECT Id, FROM Account", None, &ctx(false));
    assert_eq!(
        v.violations[0].hint,
        "after 'SELECT Id,', write a field name instead of 'FROM'"
    );
}

/// A query at the length cap of each shape is checked and reports what it breaks (the
/// quadratic duplicate-field and allow-list checks took seconds on these; their speed is
/// measured by `cargo bench -p gatehouse-soql --bench parse_check`).
#[test]
fn queries_at_the_cap_are_checked_and_report_their_violations() {
    let policy = policy();
    let guard = SoqlGuard::new(SoqlGuardConfig::default()).unwrap();
    let bot = policy.caller("bot");
    let fields: Vec<String> = (0..10_000).map(|i| format!("F{i}__c")).collect();
    let many_fields = format!(
        "SELECT {} FROM Account WHERE Id = '001000000000001' LIMIT 1",
        fields.join(",")
    );
    let ors: Vec<String> = (0..3_000).map(|i| format!("Name = 'n{i}'")).collect();
    let or_chain = format!("SELECT Id FROM Account WHERE {} LIMIT 5", ors.join(" OR "));
    let ands: Vec<String> = (0..3_000).map(|i| format!("F{i}__c = 1")).collect();
    let and_chain = format!(
        "SELECT Id FROM Account WHERE {} LIMIT 5",
        ands.join(" AND ")
    );
    // Groups nested 40 deep (AND and OR alternate, so each level is parenthesised), the
    // filters unindexed so that every rule walks the whole tree.
    let nested = |i: usize| {
        let mut c = format!("F{i}__c = 1");
        for level in 0..40 {
            let op = if level % 2 == 0 { "AND" } else { "OR" };
            c = format!("(G{level}__c = 2 {op} {c})");
        }
        c
    };
    let groups: Vec<String> = (0..60).map(nested).collect();
    let deep = format!(
        "SELECT Id FROM Account WHERE {} LIMIT 5",
        groups.join(" OR ")
    );
    // (query, violations at least): every field of the first is outside the bot's list
    // (100 are listed, the rest counted in one more).
    for (q, at_least) in [
        (&many_fields, 101),
        (&or_chain, 0),
        (&and_chain, 1),
        (&deep, 1),
    ] {
        assert!(q.len() <= 100_000, "{}", q.len());
        // How long this takes is the benchmark's business (parse_check), not a test's.
        let v = guard.check(q, bot, &ctx(false));
        assert!(v.violations.len() >= at_least, "{}", v.violations.len());
    }
}

#[test]
fn cli_apex_flag_accepts_bind_expressions() {
    let q = "SELECT Id FROM Account WHERE Id IN :ids.keySet() LIMIT 5";
    let plain = SoqlCheckArgs {
        json: true,
        queries: vec![q.into()],
        ..SoqlCheckArgs::default()
    };
    let (code, out) = run_cli(plain, "");
    assert_eq!(code, EXIT_BLOCKED, "{out}");
    assert!(out.contains("\"syntax\""), "{out}");
    let apex = SoqlCheckArgs {
        json: true,
        apex: true,
        queries: vec![q.into()],
        ..SoqlCheckArgs::default()
    };
    let (code, out) = run_cli(apex, "");
    assert_eq!(code, EXIT_ALLOWED, "{out}");
}

#[test]
fn cli_a_line_of_invalid_utf8_is_that_lines_error_not_the_end_of_the_batch() {
    let args = SoqlCheckArgs {
        json: true,
        ..SoqlCheckArgs::default()
    };
    let mut stdin: Vec<u8> =
        b"SELECT Id FROM Account WHERE Id = '001000000000001' LIMIT 1\n".to_vec();
    stdin.extend_from_slice(b"SELECT Id FROM Account WHERE Name = '\xff\xfe' LIMIT 1\r\n");
    stdin.extend_from_slice(b"SELECT Id FROM Account WHERE Id = '001000000000002' LIMIT 1\n");
    let mut out = Vec::new();
    let code = run_with_loader(&args, toml_loader(""), stdin.as_slice(), &mut out);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, EXIT_BLOCKED, "{out}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0]["verdict"], "allow");
    assert_eq!(lines[1]["verdict"], "block");
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[1]["error"]["offset"], 37);
    assert_eq!(lines[2]["verdict"], "allow");
}

#[test]
fn cli_empty_input_is_a_usage_error() {
    for stdin in ["", "\n  \n\t\n"] {
        let (code, out) = run_cli(SoqlCheckArgs::default(), stdin);
        assert_eq!(code, EXIT_USAGE, "{stdin:?}: {out}");
        assert!(out.contains("no queries"), "{out}");
    }
}

#[test]
fn cli_json_reports_character_columns() {
    let args = SoqlCheckArgs {
        json: true,
        queries: vec!["SELECT Id FROM Account WHERE Name = 'Nämé' AND".into()],
        ..SoqlCheckArgs::default()
    };
    let (_, out) = run_cli(args, "");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["violations"][0]["span"], serde_json::json!([48, 48]));
    assert_eq!(v["violations"][0]["chars"], serde_json::json!([46, 46]));
    assert_eq!(v["error"]["offset"], 48);
    assert_eq!(v["error"]["char_offset"], 46);
}

#[test]
fn a_rule_lists_at_most_a_hundred_violations_and_counts_the_rest() {
    let policy = policy();
    let guard = SoqlGuard::new(SoqlGuardConfig::default()).unwrap();
    let fields: Vec<String> = (0..250).map(|i| format!("F{i}__c")).collect();
    let q = format!(
        "SELECT {} FROM Account WHERE Id = '001000000000001' LIMIT 1",
        fields.join(", ")
    );
    let v = guard.check(&q, policy.caller("bot"), &ctx(false));
    assert!(v.is_blocked());
    let listed: Vec<&Violation> = v
        .violations
        .iter()
        .filter(|v| v.rule == RuleId::FieldNotAllowed)
        .collect();
    assert_eq!(listed.len(), 101);
    assert!(
        listed[99].message.ends_with("Account.F99__c"),
        "{}",
        listed[99].message
    );
    assert!(
        listed[100]
            .message
            .starts_with("150 more field-not-allowed violations"),
        "{}",
        listed[100].message
    );
}
