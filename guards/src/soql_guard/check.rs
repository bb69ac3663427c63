//! The guard itself: parse, analyse, apply the rule catalog with the caller's modes, and
//! return a verdict that explains itself (rule id, span, message, fix hint).

use super::config::{
    parse_index, CallerSoqlPolicy, ConfigError, Mode, RuleId, SoqlGuardConfig,
    BUILTIN_SMALL_OBJECTS,
};
use super::selectivity;
use gatehouse_soql::analysis::{Analysis, SelectivityOptions};
use gatehouse_soql::ast::{FieldsKind, ForClause, Query, SelectItem};
use gatehouse_soql::catalog::name_matches;
use gatehouse_soql::{
    analyze, is_aggregate_query, parse_with, FieldTraits, IndexCatalog, ParseError, ParseOptions,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Block,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: RuleId,
    pub mode: Mode,
    pub message: String,
    /// Byte range in the query text.
    pub span: (usize, usize),
    /// The same range in characters (Unicode scalar values), for editors and CI
    /// annotations that count columns in characters: it differs from `span` as soon as
    /// the query has a non-ASCII character before the offending text.
    pub chars: (usize, usize),
    /// How to fix it.
    pub hint: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub decision: Decision,
    pub violations: Vec<Violation>,
    /// The query to send instead (when `missing-limit` is in rewrite mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewritten: Option<String>,
    /// The parse error, when the query did not parse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<ParseError>,
}

impl Verdict {
    pub fn is_blocked(&self) -> bool {
        self.decision == Decision::Block
    }

    /// Violations that block (mode `enforce`).
    pub fn blocking(&self) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(|v| v.mode == Mode::Enforce)
    }
}

/// Per-request facts that are not in the query text.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckContext {
    /// The request went to the queryAll endpoint (reads deleted/archived rows).
    pub query_all: bool,
    /// Days since 1970-01-01 (UTC); when absent the system clock is read.
    pub today: Option<i64>,
    /// The query is Gatehouse's own keyset walk for the unified API, built by the adapter:
    /// ordered by an indexed field (`SystemModstamp, Id`), capped by `LIMIT`, resumed by key,
    /// and sent to `queryAll` so that incremental walks see deletions. The selectivity rules
    /// and the all-rows rule judge a caller's query shape, which such a walk does not have, so
    /// they do not apply; syntax, length, limits and the caller's allow-lists still do.
    pub keyset_walk: bool,
}

/// A connection's SOQL guard: its settings and index catalog.
#[derive(Clone, Debug)]
pub struct SoqlGuard {
    config: SoqlGuardConfig,
    catalog: IndexCatalog,
    options: SelectivityOptions,
}

impl SoqlGuard {
    /// A guard over the standard index catalog plus the configured indexes.
    pub fn new(config: SoqlGuardConfig) -> Result<Self, ConfigError> {
        Self::with_catalog(config, IndexCatalog::standard())
    }

    /// A guard over a given catalog (e.g. one filled from describe metadata); configured
    /// indexes are added to it.
    pub fn with_catalog(
        config: SoqlGuardConfig,
        mut catalog: IndexCatalog,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        for entry in &config.indexes {
            let (object, field) = parse_index(entry)?;
            catalog.add_index(object, field);
        }
        let mut small: Vec<String> = BUILTIN_SMALL_OBJECTS
            .iter()
            .map(|s| s.to_string())
            .collect();
        small.extend(config.small_objects.iter().cloned());
        let options = SelectivityOptions {
            date_window_days: i64::from(config.date_window_days),
            small_objects: small,
        };
        Ok(SoqlGuard {
            config,
            catalog,
            options,
        })
    }

    pub fn config(&self) -> &SoqlGuardConfig {
        &self.config
    }

    /// Adds a field learned from describe metadata.
    pub fn learn_field(&mut self, object: &str, field: &str, traits: FieldTraits) {
        self.catalog.learn_field(object, field, traits);
    }

    pub fn catalog_mut(&mut self) -> &mut IndexCatalog {
        &mut self.catalog
    }

    /// The effective mode of a rule for a caller.
    pub fn mode(&self, rule: RuleId, caller: Option<&CallerSoqlPolicy>) -> Mode {
        // A safety limit, not a policy: callers cannot switch it off (config validation
        // refuses it too).
        if rule == RuleId::QueryTooLong {
            return Mode::Enforce;
        }
        let mode = caller
            .and_then(|c| c.rules.get(&rule).copied())
            .unwrap_or_else(|| self.config.mode(rule));
        // Rewrite is only meaningful for missing-limit; elsewhere it would silently pass.
        if mode == Mode::Rewrite && rule != RuleId::MissingLimit {
            Mode::Enforce
        } else {
            mode
        }
    }

    pub fn check(
        &self,
        query: &str,
        caller: Option<&CallerSoqlPolicy>,
        ctx: &CheckContext,
    ) -> Verdict {
        let mut out = Collector {
            guard: self,
            caller,
            violations: Vec::new(),
            counts: BTreeMap::new(),
        };
        // Before anything else reads the text: the parser and the checks are linear, but
        // the cap keeps one request from costing more than Salesforce would accept.
        // Bytes bound characters from above, so most queries skip the count.
        let max = self.config.max_query_chars;
        if query.len() > max {
            let chars = query.chars().count();
            if chars > max {
                out.push(
                    RuleId::QueryTooLong,
                    format!("the query is {chars} characters long; the maximum is {max}"),
                    (0, query.len()),
                    "split it into several queries (for example, fewer values per IN list, or fewer fields per query)".to_string(),
                );
                return out.finish(query, None, None);
            }
        }
        let options = ParseOptions {
            apex: self.config.apex_syntax,
        };
        let q = match parse_with(query, options) {
            Ok(q) => q,
            Err(e) => {
                let (message, hint) = syntax_message(query, &e);
                out.push(RuleId::Syntax, message, (e.offset, e.end), hint);
                return out.finish(query, None, Some(e));
            }
        };
        let today = ctx.today.or_else(today_from_clock);
        let analysis = analyze(&q, &self.catalog, &self.options, today);
        let rewritten = self.limit_rules(&q, query, &mut out);
        let effective_limit = q
            .limit
            .as_ref()
            .and_then(|l| l.value())
            .or(rewritten.as_ref().map(|_| self.rewrite_limit()));
        self.offset_rule(&q, &mut out);
        fields_all_rule(&q, effective_limit, &mut out);
        if !self.options.is_small(&q.from.object.name) && !ctx.keyset_walk {
            selectivity::rules(&q, &analysis, &self.options, today, &self.config, &mut out);
        }
        allow_list_rules(&analysis, caller, &mut out);
        self.locking_rules(&q, ctx, caller, query.len(), &mut out);
        out.finish(query, rewritten, None)
    }

    /// The LIMIT a rewrite adds: the default, capped so the result passes limit-too-high.
    fn rewrite_limit(&self) -> u64 {
        self.config.default_limit.min(self.config.max_limit)
    }

    /// missing-limit (with rewrite) and limit-too-high. Returns the rewritten query.
    fn limit_rules(&self, q: &Query, src: &str, out: &mut Collector<'_>) -> Option<String> {
        let max = self.config.max_limit;
        match &q.limit {
            None if !is_aggregate_query(q) => {
                let at = q.limit_insert_at.start.min(src.len());
                let message = "the query has no LIMIT".to_string();
                let hint = format!("add LIMIT n (at most {max})");
                let mode = out.push(RuleId::MissingLimit, message, (at, at), hint);
                if mode == Some(Mode::Rewrite) && src.is_char_boundary(at) {
                    let n = self.rewrite_limit();
                    let (head, tail) = src.split_at(at);
                    return Some(if at >= q.span.end {
                        format!("{head} LIMIT {n}{tail}")
                    } else {
                        format!("{head}LIMIT {n} {tail}")
                    });
                }
            }
            Some(limit) => {
                if let Some(v) = limit.value().filter(|v| *v > max) {
                    let s = limit.span();
                    out.push(
                        RuleId::LimitTooHigh,
                        format!("LIMIT {v} is above the maximum of {max}"),
                        (s.start, s.end),
                        format!(
                            "use LIMIT {max} or less and page with ORDER BY on an indexed field"
                        ),
                    );
                }
            }
            None => {}
        }
        None
    }

    fn offset_rule(&self, q: &Query, out: &mut Collector<'_>) {
        let max = self.config.max_offset;
        if let Some(v) = q
            .offset
            .as_ref()
            .and_then(|o| o.value())
            .filter(|v| *v > max)
        {
            let s = q.offset.as_ref().map(|o| o.span()).unwrap_or_default();
            out.push(
                RuleId::OffsetTooHigh,
                format!("OFFSET {v} is above the maximum of {max}"),
                (s.start, s.end),
                "page with a WHERE on an indexed field (e.g. Id > last seen Id ORDER BY Id) or use queryMore".to_string(),
            );
        }
        child_offsets(q, out);
    }

    fn locking_rules(
        &self,
        q: &Query,
        ctx: &CheckContext,
        caller: Option<&CallerSoqlPolicy>,
        len: usize,
        out: &mut Collector<'_>,
    ) {
        let allow_update = caller
            .and_then(|c| c.allow_for_update)
            .unwrap_or(self.config.allow_for_update);
        if q.for_clause == Some(ForClause::Update) && !allow_update {
            out.push(
                RuleId::ForUpdateNotAllowed,
                "FOR UPDATE locks the rows it reads".to_string(),
                (q.for_span.start, q.for_span.end),
                "remove FOR UPDATE, or ask for allow_for_update on this caller".to_string(),
            );
        }
        let allow_all = caller
            .and_then(|c| c.allow_all_rows)
            .unwrap_or(self.config.allow_all_rows);
        if (q.all_rows || ctx.query_all) && !allow_all && !ctx.keyset_walk {
            let span = if q.all_rows {
                (q.all_rows_span.start, q.all_rows_span.end)
            } else {
                (0, len)
            };
            let what = if q.all_rows {
                "ALL ROWS"
            } else {
                "the queryAll endpoint"
            };
            out.push(
                RuleId::AllRowsNotAllowed,
                format!("{what} reads deleted and archived rows"),
                span,
                "use the query endpoint without ALL ROWS, or ask for allow_all_rows on this caller"
                    .to_string(),
            );
        }
    }
}

/// Gathers violations, applying the effective mode of each rule.
pub(crate) struct Collector<'a> {
    guard: &'a SoqlGuard,
    caller: Option<&'a CallerSoqlPolicy>,
    violations: Vec<Violation>,
    /// Per rule: violations recorded, and how many more were left out.
    counts: BTreeMap<RuleId, (usize, usize)>,
}

/// At most this many violations of one rule are listed; the rest are counted in one more
/// violation. A 100,000-character query can name 10,000 fields a caller may not read, and
/// listing each would make the blocked answer megabytes long.
pub const MAX_LISTED_PER_RULE: usize = 100;

impl Collector<'_> {
    pub(crate) fn enabled(&self, rule: RuleId) -> bool {
        self.guard.mode(rule, self.caller) != Mode::Off
    }

    /// Records a violation unless the rule is off; returns the mode used.
    pub(crate) fn push(
        &mut self,
        rule: RuleId,
        message: String,
        span: (usize, usize),
        hint: String,
    ) -> Option<Mode> {
        let mode = self.guard.mode(rule, self.caller);
        if mode == Mode::Off {
            return None;
        }
        let (listed, omitted) = self.counts.entry(rule).or_default();
        if *listed >= MAX_LISTED_PER_RULE {
            *omitted += 1;
            return Some(mode);
        }
        *listed += 1;
        self.violations.push(Violation {
            rule,
            mode,
            message,
            span,
            chars: span,
            hint,
        });
        Some(mode)
    }

    fn finish(
        mut self,
        src: &str,
        rewritten: Option<String>,
        parse_error: Option<ParseError>,
    ) -> Verdict {
        for (rule, (_, omitted)) in &self.counts {
            if *omitted > 0 {
                let mode = self.guard.mode(*rule, self.caller);
                self.violations.push(Violation {
                    rule: *rule,
                    mode,
                    message: format!(
                        "{omitted} more {rule} violations are not listed (the first {MAX_LISTED_PER_RULE} are)"
                    ),
                    span: (0, src.len()),
                    chars: (0, src.len()),
                    hint: "fix the listed ones the same way and check again".to_string(),
                });
            }
        }
        set_char_spans(src, &mut self.violations);
        let decision = if self.violations.iter().any(|v| v.mode == Mode::Enforce) {
            Decision::Block
        } else {
            Decision::Allow
        };
        Verdict {
            decision,
            violations: self.violations,
            rewritten,
            parse_error,
        }
    }
}

/// Fills `chars` from `span` for every violation in one pass over the text (a query can
/// have thousands of violations, so each is not counted from the start).
fn set_char_spans(src: &str, violations: &mut [Violation]) {
    if src.is_ascii() {
        return;
    }
    let mut offsets: Vec<usize> = violations
        .iter()
        .flat_map(|v| [v.span.0, v.span.1])
        .collect();
    offsets.sort_unstable();
    offsets.dedup();
    let mut chars_at: Vec<usize> = Vec::with_capacity(offsets.len());
    let mut count = 0;
    let mut iter = src.char_indices().peekable();
    for &offset in &offsets {
        // Characters that start before the offset.
        while iter.next_if(|(i, _)| *i < offset).is_some() {
            count += 1;
        }
        chars_at.push(count);
    }
    let lookup = |byte: usize| {
        offsets
            .binary_search(&byte)
            .ok()
            .and_then(|i| chars_at.get(i).copied())
            .unwrap_or(byte)
    };
    for v in violations {
        v.chars = (lookup(v.span.0), lookup(v.span.1));
    }
}

/// The message and hint of a `syntax` violation. The message says where (in characters,
/// and in bytes when they differ) and what was expected; the hint says how to fix it: the
/// parser's note when it has one (`write a AND (b OR c)`), otherwise what to write after
/// the text that still parses.
fn syntax_message(src: &str, e: &ParseError) -> (String, String) {
    let at = src.get(..e.offset).map_or(e.offset, |s| s.chars().count());
    let place = if at == e.offset {
        format!("at character {at}")
    } else {
        format!("at character {at} (byte {})", e.offset)
    };
    let message = format!("{place}: expected {}, found {}", e.expected, e.found);
    let hint = match &e.note {
        Some(note) => note.clone(),
        None => {
            let before = src.get(..e.offset).unwrap_or("").trim_end();
            // The last few words that parsed, to say where without counting columns.
            let n = before.chars().count();
            let tail: String = if n > 40 {
                let rest: String = before.chars().skip(n - 40).collect();
                format!("...{rest}")
            } else {
                before.to_string()
            };
            if e.found == "end of query" {
                format!(
                    "the query stops after '{tail}'; finish it with {}",
                    e.expected
                )
            } else if tail.is_empty() {
                format!("start the query with {}", e.expected)
            } else {
                format!(
                    "after '{tail}', write {} instead of {}",
                    e.expected, e.found
                )
            }
        }
    };
    (message, hint)
}

/// OFFSET in a child subquery is only allowed when the parent query has `LIMIT 1`.
fn child_offsets(q: &Query, out: &mut Collector<'_>) {
    for item in &q.select {
        if let SelectItem::SubQuery(sub) = item {
            if let Some(offset) = &sub.offset {
                let parent_limit_one = q.limit.as_ref().and_then(|l| l.value()) == Some(1);
                if !parent_limit_one {
                    let s = offset.span();
                    out.push(
                        RuleId::OffsetTooHigh,
                        "OFFSET in a subquery needs LIMIT 1 on the parent query".to_string(),
                        (s.start, s.end),
                        "add LIMIT 1 to the outer query, or remove OFFSET from the subquery"
                            .to_string(),
                    );
                }
            }
            child_offsets(sub, out);
        }
    }
}

/// FIELDS(ALL) and FIELDS(CUSTOM) need LIMIT 200 or less (a Salesforce rule), at every level.
fn fields_all_rule(q: &Query, limit: Option<u64>, out: &mut Collector<'_>) {
    for item in &q.select {
        match item {
            SelectItem::Fields { kind, span }
                if *kind != FieldsKind::Standard && limit.is_none_or(|l| l > 200) =>
            {
                out.push(
                    RuleId::FieldsAllLimit,
                    format!("FIELDS({}) needs LIMIT 200 or less", kind.as_str()),
                    (span.start, span.end),
                    "add LIMIT 200 (or less), or list the fields you need".to_string(),
                );
            }
            SelectItem::SubQuery(sub) => {
                let sub_limit = sub.limit.as_ref().and_then(|l| l.value());
                fields_all_rule(sub, sub_limit, out);
            }
            _ => {}
        }
    }
}

fn allow_list_rules(a: &Analysis, caller: Option<&CallerSoqlPolicy>, out: &mut Collector<'_>) {
    let Some(policy) = caller else {
        return;
    };
    if let Some(objects) = &policy.objects {
        if out.enabled(RuleId::ObjectNotAllowed) {
            // Sets, not lists: a long query can reach thousands of names.
            let mut reported: HashSet<String> = HashSet::new();
            for o in &a.objects {
                let allowed = objects.iter().any(|p| name_matches(p, &o.name));
                if !allowed && reported.insert(o.name.to_ascii_lowercase()) {
                    out.push(
                        RuleId::ObjectNotAllowed,
                        format!("this caller may not read {}", o.name),
                        (o.span.start, o.span.end),
                        format!(
                            "remove {} from the query, or add it to this caller's objects",
                            o.name
                        ),
                    );
                }
            }
        }
    }
    if policy.fields.is_empty() || !out.enabled(RuleId::FieldNotAllowed) {
        return;
    }
    let list_for = |object: &str| {
        policy
            .fields
            .iter()
            .find(|(o, _)| o.eq_ignore_ascii_case(object))
            .map(|(_, f)| f)
    };
    let mut reported: HashSet<(String, String)> = HashSet::new();
    for f in &a.fields {
        let Some(list) = list_for(&f.object) else {
            continue;
        };
        if !list.iter().any(|p| name_matches(p, &f.field))
            && reported.insert((f.object.to_ascii_lowercase(), f.field.to_ascii_lowercase()))
        {
            out.push(
                RuleId::FieldNotAllowed,
                format!("this caller may not read {}.{}", f.object, f.field),
                (f.span.start, f.span.end),
                format!(
                    "remove {} from the query, or add it to this caller's fields for {}",
                    f.field, f.object
                ),
            );
        }
    }
    for w in &a.wildcards {
        if let Some(list) = list_for(&w.object) {
            if !list.iter().any(|p| p == "*") {
                out.push(
                    RuleId::FieldNotAllowed,
                    format!(
                        "FIELDS({}) reads every field of {}, but this caller may only read some",
                        w.kind.as_str(),
                        w.object
                    ),
                    (w.span.start, w.span.end),
                    format!(
                        "list the allowed fields of {} instead of FIELDS(...)",
                        w.object
                    ),
                );
            }
        }
    }
}

/// Today as days since 1970-01-01 (UTC), from the system clock.
fn today_from_clock() -> Option<i64> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    i64::try_from(secs / 86_400).ok()
}
