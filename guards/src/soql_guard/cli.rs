//! `gatehouse soql check`: checks queries against a policy, for CI pipelines that generate
//! SOQL. Lives here (not in the proxy) so it is tested with the guard; the proxy's
//! `soql_cli` module only reads the TOML policy file and calls [`run_with_loader`].
//!
//! Exit codes: 0 all allowed, 1 any blocked, 2 usage error.

use super::check::{CheckContext, SoqlGuard, Verdict};
use super::config::{PolicyFile, SoqlGuardConfig};
use serde_json::json;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

pub const EXIT_ALLOWED: i32 = 0;
pub const EXIT_BLOCKED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// Arguments of `gatehouse soql check [--policy FILE] [--caller ID] [--connection ID] [--json] [QUERY...]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SoqlCheckArgs {
    pub policy: Option<PathBuf>,
    pub caller: Option<String>,
    pub connection: Option<String>,
    pub json: bool,
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
    let config: SoqlGuardConfig = match &args.connection {
        Some(id) => policy.connection(id).cloned().ok_or_else(|| {
            format!("unknown connection {id:?} (not in the policy's [[connections]])")
        })?,
        None => policy.soql.clone(),
    };
    let caller =
        match &args.caller {
            Some(id) => Some(policy.caller(id).ok_or_else(|| {
                format!("unknown caller {id:?} (not in the policy's [[callers]])")
            })?),
            None => None,
        };
    let guard = SoqlGuard::new(config).map_err(|e| e.to_string())?;
    let queries: Vec<String> = if args.queries.is_empty() {
        let mut lines = Vec::new();
        for line in input.lines() {
            let line = line.map_err(|e| format!("reading standard input: {e}"))?;
            if !line.trim().is_empty() {
                lines.push(line);
            }
        }
        lines
    } else {
        args.queries.clone()
    };
    let ctx = CheckContext::default();
    let mut any_blocked = false;
    for (n, query) in queries.iter().enumerate() {
        let verdict = guard.check(query, caller, &ctx);
        any_blocked |= verdict.is_blocked();
        let written = if args.json {
            writeln!(out, "{}", json_line(query, &verdict))
        } else {
            write_report(out, n + 1, query, &verdict)
        };
        written.map_err(|e| format!("writing output: {e}"))?;
    }
    Ok(if any_blocked {
        EXIT_BLOCKED
    } else {
        EXIT_ALLOWED
    })
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
            map.insert("error".into(), serde_json::to_value(e).unwrap_or_default());
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
        let (start, end) = (v.span.0.min(query.len()), v.span.1.min(query.len()));
        let col = query.get(..start).map_or(start, |s| s.chars().count());
        let width = query
            .get(start..end)
            .map_or(1, |s| s.chars().count())
            .max(1);
        writeln!(out, "  {}{} {}", " ".repeat(col), "^".repeat(width), v.rule)?;
        writeln!(out, "  {} ({}): {}", v.rule, v.mode.as_str(), v.message)?;
        writeln!(out, "    fix: {}", v.hint)?;
    }
    if let Some(r) = &verdict.rewritten {
        writeln!(out, "  rewritten: {r}")?;
    }
    Ok(())
}
