//! End-to-end: the `gatehouse soql check` command as a CI pipeline runs it, and
//! `gatehouse demo` as a newcomer runs it.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use gatehouse_e2e::{run_cli, run_cli_with_stdin};

#[test]
fn soql_check_exit_codes_and_json_lines() {
    let dir = tempfile::tempdir().expect("dir");
    let good = "SELECT Id FROM Account WHERE Id = '001000000000001AAA' LIMIT 1";
    let (code, out, _) = run_cli(&["soql", "check", good], dir.path());
    assert_eq!(code, 0, "{out}");

    let input = format!("{good}\nSELECT Id FROM Account\nSELECT FROM\n");
    let (code, out, _) = run_cli_with_stdin(&["soql", "check", "--json"], dir.path(), &input);
    assert_eq!(code, 1, "{out}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["verdict"], "allow");
    assert_eq!(lines[1]["verdict"], "block");
    let rules: Vec<&str> = lines[1]["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter_map(|v| v["rule"].as_str())
        .collect();
    assert!(
        rules.contains(&"missing-limit") && rules.contains(&"missing-where"),
        "{rules:?}"
    );
    assert_eq!(lines[2]["parsed"], false);
    assert_eq!(lines[2]["violations"][0]["rule"], "syntax");
    assert!(lines[2]["error"].is_object());

    // Readable report: the query underlined at the span.
    let (code, out, _) = run_cli(
        &[
            "soql",
            "check",
            "SELECT Id FROM Account WHERE Name LIKE '%x' LIMIT 5",
        ],
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("^") && out.contains("leading-wildcard"),
        "{out}"
    );

    let (code, _, _) = run_cli(
        &["soql", "check", "--policy", "missing.toml", good],
        dir.path(),
    );
    assert_eq!(code, 2, "an unreadable policy is a usage error");
}

#[test]
fn demo_starts_everything_and_shows_allowed_and_blocked_traffic() {
    let output = gatehouse_e2e::demo::command(6)
        .env("GATEHOUSE_LOG", "warn")
        .output()
        .expect("demo runs");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.contains("data plane:  http://127.0.0.1:"), "{out}");
    assert!(out.contains("admin:       http://127.0.0.1:"), "{out}");
    let line = |scenario: &str| {
        out.lines()
            .rev()
            .find(|l| l.trim_start().starts_with(&format!("{scenario}:")))
            .unwrap_or_default()
            .to_owned()
    };
    // OAuth (refresh token, client credentials) and Basic connections all answer through Gatehouse.
    for scenario in [
        "sf-sync",
        "hubspot-sync",
        "greenhouse-sync",
        "greenhouse-v3-sync",
        "lever-sync",
        "ashby-sync",
        "ai-agent-good",
    ] {
        assert!(
            line(scenario).contains(" 200x"),
            "{scenario}: {}\n{out}",
            line(scenario)
        );
    }
    assert!(
        line("ai-agent-risky").contains("403x"),
        "risky SOQL is blocked:\n{out}"
    );
    assert!(
        line("recruiting-strays").contains("403x"),
        "out-of-grant calls are denied:\n{out}"
    );
    assert!(
        line("hubspot-burst").contains("429x"),
        "the burst hits HubSpot's quota:\n{out}"
    );
}
