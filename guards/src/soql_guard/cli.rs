//! `gatehouse soql check`: checks queries against a policy, for CI pipelines that generate
//! SOQL. Lives here (not in the proxy) so it is tested with the guard; the proxy's
//! `soql_cli` module only reads the TOML policy file and calls [`run_with_loader`].
//!
//! Exit codes: 0 all allowed, 1 any blocked (a line that is not UTF-8 counts as blocked), 2
//! usage error (bad arguments or policy, or no queries at all).

use super::check::{CheckContext, SoqlGuard, Verdict};
use super::config::{PolicyFile, SoqlGuardConfig};
use serde_json::json;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

pub const EXIT_ALLOWED: i32 = 0;
pub const EXIT_BLOCKED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// Arguments of `gatehouse soql check [--policy FILE] [--caller ID] [--connection ID] [--json] [--apex] [QUERY...]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SoqlCheckArgs {
    pub policy: Option<PathBuf>,
    pub caller: Option<String>,
    pub connection: Option<String>,
    pub json: bool,
    /// Accept Apex bind syntax (`:ids`, `:ids.keySet()`, `ALL ROWS`), for SOQL lifted from
    /// Apex code; the same as `apex_syntax = true` in the policy.
    pub apex: bool,
    /// Queries to check; when empty, one query per line is read from the input.
    pub queries: Vec<String>,
}

/// Runs the command. `load` reads and deserialises the policy file (the proxy supplies a
/// TOML reader); its error text is shown as a usage error.
pub fn run_with_loader(
    args: &SoqlCheckArgs,
    load: impl FnOnce(&Path) -> Result<PolicyFile, String>,
    input: impl BufRead,
    out: &mut impl Write,
) -> i32 {
    match run_inner(args, load, input, out) {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(out, "error: {message}");
            EXIT_USAGE
        }
    }
}

fn run_inner(
    args: &SoqlCheckArgs,
    load: impl FnOnce(&Path) -> Result<PolicyFile, String>,
    input: impl BufRead,
    out: &mut impl Write,
) -> Result<i32, String> {
    let policy = match &args.policy {
        Some(path) => {
            let p = load(path).map_err(|e| format!("policy file {}: {e}", path.display()))?;
            p.validate()
                .map_err(|e| format!("policy file {}: {e}", path.display()))?;
            p
        }
        None => PolicyFile::default(),
    };
    let mut config: SoqlGuardConfig = match &args.connection {
        Some(id) => policy.connection(id).cloned().ok_or_else(|| {
            format!("unknown connection {id:?} (not in the policy's [[connections]])")
        })?,
        None => policy.soql.clone(),
    };
    if args.apex {
        config.apex_syntax = true;
    }
    let caller =
        match &args.caller {
            Some(id) => Some(policy.caller(id).ok_or_else(|| {
                format!("unknown caller {id:?} (not in the policy's [[callers]])")
            })?),
            None => None,
        };
    let guard = SoqlGuard::new(config).map_err(|e| e.to_string())?;
    let queries: Vec<Line> = if args.queries.is_empty() {
        read_lines(input)?
    } else {
        args.queries.iter().cloned().map(Line::Query).collect()
    };
    // Nothing to check is a mistake (an empty file, a pipeline that produced nothing), not
    // a pass: "all allowed" would hide it.
    if queries.is_empty() {
        return Err(
            "no queries: pass them as arguments or one per line on standard input".to_string(),
        );
    }
    let ctx = CheckContext::default();
    let mut any_blocked = false;
    for (n, line) in queries.iter().enumerate() {
        let written = match line {
            Line::Query(query) => {
                let verdict = guard.check(query, caller, &ctx);
                any_blocked |= verdict.is_blocked();
                if args.json {
                    writeln!(out, "{}", json_line(query, &verdict))
                } else {
                    write_report(out, n + 1, query, &verdict)
                }
            }
            Line::NotUtf8 { line, valid_up_to } => {
                // One bad line is that line's error; the rest of the batch is still checked.
                any_blocked = true;
                let message = format!(
                    "line {line} is not valid UTF-8 (bad byte at offset {valid_up_to}); SOQL is text"
                );
                if args.json {
                    let obj = json!({
                        "line": line,
                        "parsed": false,
                        "verdict": "block",
                        "error": {"message": message, "offset": valid_up_to},
                        "violations": [],
                    });
                    writeln!(out, "{obj}")
                } else {
                    writeln!(out, "query {}: BLOCK\n  {message}", n + 1)
                }
            }
        };
        written.map_err(|e| format!("writing output: {e}"))?;
    }
    Ok(if any_blocked {
        EXIT_BLOCKED
    } else {
        EXIT_ALLOWED
    })
}

/// One input line: a query, or a line that is not UTF-8 (1-based line number).
enum Line {
    Query(String),
    NotUtf8 { line: usize, valid_up_to: usize },
}

/// Non-blank lines of the input. Reads bytes, not `String`s, so one line of invalid UTF-8
/// does not end the batch.
fn read_lines(mut input: impl BufRead) -> Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("reading standard input: {e}"))?;
        if n == 0 {
            break;
        }
        number += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        match std::str::from_utf8(&buf) {
            Ok(text) if text.trim().is_empty() => {}
            Ok(text) => lines.push(Line::Query(text.to_string())),
            Err(e) => lines.push(Line::NotUtf8 {
                line: number,
                valid_up_to: e.valid_up_to(),
            }),
        }
    }
    Ok(lines)
}

/// One JSON object per query.
pub fn json_line(query: &str, verdict: &Verdict) -> String {
    let violations: Vec<_> = verdict
        .violations
        .iter()
        .map(|v| {
            json!({
                "rule": v.rule.as_str(),
                "mode": v.mode.as_str(),
                "message": v.message,
                "span": [v.span.0, v.span.1],
                "chars": [v.chars.0, v.chars.1],
                "hint": v.hint,
            })
        })
        .collect();
    let mut obj = json!({
        "query": query,
        "parsed": verdict.parse_error.is_none(),
        "verdict": if verdict.is_blocked() { "block" } else { "allow" },
        "violations": violations,
    });
    if let Some(map) = obj.as_object_mut() {
        if let Some(e) = &verdict.parse_error {
            let mut error = serde_json::to_value(e).unwrap_or_default();
            // Editors count columns in characters; `offset`/`end` are bytes.
            if let Some(error) = error.as_object_mut() {
                let chars = |b: usize| query.get(..b).map_or(b, |s| s.chars().count());
                error.insert("char_offset".into(), json!(chars(e.offset)));
                error.insert("char_end".into(), json!(chars(e.end)));
            }
            map.insert("error".into(), error);
        }
        if let Some(r) = &verdict.rewritten {
            map.insert("rewritten".into(), json!(r));
        }
    }
    obj.to_string()
}

/// The readable report: the verdict, the query, and carets under each violation's span.
pub fn write_report(
    out: &mut impl Write,
    n: usize,
    query: &str,
    verdict: &Verdict,
) -> std::io::Result<()> {
    let word = if verdict.is_blocked() {
        "BLOCK"
    } else {
        "ALLOW"
    };
    writeln!(out, "query {n}: {word}")?;
    // Newlines and tabs would break the alignment of the carets.
    let shown: String = query
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    writeln!(out, "  {shown}")?;
    for v in &verdict.violations {
        let (col, width) = (v.chars.0, v.chars.1.saturating_sub(v.chars.0).max(1));
        writeln!(out, "  {}{} {}", " ".repeat(col), "^".repeat(width), v.rule)?;
        writeln!(out, "  {} ({}): {}", v.rule, v.mode.as_str(), v.message)?;
        writeln!(out, "    fix: {}", v.hint)?;
    }
    if let Some(r) = &verdict.rewritten {
        writeln!(out, "  rewritten: {r}")?;
    }
    Ok(())
}
