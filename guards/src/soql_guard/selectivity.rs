//! The selectivity rules: missing-where, negative-only, or-unindexed, leading-wildcard,
//! null-comparison, wide-date-range, semi-join-unselective and the catch-all
//! unindexed-filter. Small objects never reach this module.
//!
//! The leaf rules (leading-wildcard, null-comparison) only matter when the query as a whole
//! is not selective: a selective sibling under AND carries the query.

use super::check::Collector;
use super::config::{RuleId, SoqlGuardConfig};
use gatehouse_soql::analysis::{
    Analysis, Filter, FilterTree, QueryFilters, Selectivity, SelectivityOptions,
};
use gatehouse_soql::ast::{Query, Span};
use gatehouse_soql::catalog::name_matches;

const INDEXED_HINT: &str =
    "Id, Name, OwnerId, CreatedDate, SystemModstamp, RecordTypeId, a lookup or an external id";

pub(crate) fn rules(
    q: &Query,
    a: &Analysis,
    options: &SelectivityOptions,
    today: Option<i64>,
    config: &SoqlGuardConfig,
    out: &mut Collector<'_>,
) {
    let object = &q.from.object.name;
    let Some(where_clause) = &q.where_clause else {
        if config.large_objects.iter().any(|o| name_matches(o, object)) {
            let s = q.from.object.span;
            out.push(
                RuleId::MissingWhere,
                format!("{object} is a large object and the query has no WHERE clause"),
                (s.start, s.end),
                format!("add a WHERE clause on an indexed field: {INDEXED_HINT}"),
            );
        }
        return;
    };
    let semi_join_matched = semi_join_rule(a, config, out);
    let main = &a.main;
    let Some(tree) = &main.tree else {
        return;
    };
    if matches!(
        main.selectivity,
        Selectivity::Selective | Selectivity::Exempt
    ) {
        return;
    }
    let where_span = where_clause.span();
    let ctx = TreeCtx {
        main,
        options,
        today,
    };
    // Which specific rules matched, whatever their mode, so that switching one off does
    // not turn it into the catch-all.
    let mut matched = semi_join_matched;

    if main.filters.iter().all(|f| f.negative) {
        matched = true;
        out.push(
            RuleId::NegativeOnly,
            "every filter is negative (!=, NOT IN, EXCLUDES, NOT, anti-join); negative filters cannot use an index".to_string(),
            (where_span.start, where_span.end),
            "add a positive filter on an indexed field, e.g. RecordTypeId = '...' or CreatedDate = LAST_N_DAYS:30".to_string(),
        );
    }

    let mut or_branches = Vec::new();
    ctx.unselective_or_branches(tree, &mut or_branches);
    for span in or_branches {
        matched = true;
        out.push(
            RuleId::OrUnindexed,
            "this OR branch has no selective indexed filter, so the whole OR needs a full scan"
                .to_string(),
            (span.start, span.end),
            "filter every OR branch on an indexed field, or split the OR into separate queries"
                .to_string(),
        );
    }

    let mut leaves = Vec::new();
    ctx.uncovered_leaves(tree, false, &mut leaves);
    // Each leaf reports every rule it breaks: `Email != null` is a null comparison as well
    // as a negative filter, and `NOT Name LIKE '%x'` a leading wildcard as well.
    for i in leaves {
        let f = &main.filters[i];
        if f.leading_wildcard {
            matched = true;
            out.push(
                RuleId::LeadingWildcard,
                format!("{} LIKE starts with a wildcard and is the only filter on its branch; no index can be used", f.path),
                (f.span.start, f.span.end),
                "anchor the pattern at the start ('Acme%'), or AND it with a selective indexed filter".to_string(),
            );
        }
        if (f.null || f.empty_string) && f.index.is_some() {
            matched = true;
            let (what, fix) = if f.null {
                ("null", "filter on a value that records have (e.g. Email LIKE 'a%'), or AND it with another selective indexed filter")
            } else {
                (
                    "''",
                    "compare with a real value, or AND it with another selective indexed filter",
                )
            };
            out.push(
                RuleId::NullComparison,
                format!(
                    "{} is compared with {what}, and indexes do not contain empty values",
                    f.path
                ),
                (f.span.start, f.span.end),
                fix.to_string(),
            );
        }
    }

    if let Selectivity::WideDateRange { width_days } = main.selectivity {
        matched = true;
        let span = main
            .filters
            .iter()
            .find(|f| f.usable && f.date_range.is_some())
            .map_or(where_span, |f| f.span);
        let width = match width_days {
            Some(w) => format!("{w} days"),
            None => "an open-ended range".to_string(),
        };
        out.push(
            RuleId::WideDateRange,
            format!(
                "the only selective filter is a date range of {width}, wider than the {}-day window",
                config.date_window_days
            ),
            (span.start, span.end),
            "narrow the range (e.g. CreatedDate = LAST_N_DAYS:30) or AND it with another selective indexed filter".to_string(),
        );
    }

    if !matched {
        out.push(
            RuleId::UnindexedFilter,
            format!("no filter can use an index: {}", explain_unusable(&main.filters)),
            (where_span.start, where_span.end),
            format!("filter on an indexed field ({INDEXED_HINT}), or declare the index in [soql] indexes"),
        );
    }
}

/// Returns whether any semi-join matched.
fn semi_join_rule(a: &Analysis, config: &SoqlGuardConfig, out: &mut Collector<'_>) -> bool {
    let mut matched = false;
    for sj in &a.semi_joins {
        let reason = match sj.filters.selectivity {
            Selectivity::Selective | Selectivity::Exempt => continue,
            Selectivity::NoFilter => "has no WHERE clause".to_string(),
            Selectivity::WideDateRange { .. } => format!(
                "only filters on a date range wider than {} days",
                config.date_window_days
            ),
            Selectivity::NotSelective => "has no filter that can use an index".to_string(),
        };
        matched = true;
        let kind = if sj.anti { "anti-join" } else { "semi-join" };
        out.push(
            RuleId::SemiJoinUnselective,
            format!("the {kind} subquery on {} {reason}", sj.filters.object),
            (sj.span.start, sj.span.end),
            format!(
                "add a selective filter on an indexed field of {} to the subquery",
                sj.filters.object
            ),
        );
    }
    matched
}

fn explain_unusable(filters: &[Filter]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for f in filters.iter().take(4) {
        let why = if f.on_function {
            "wraps the field in a function"
        } else if f.semi_join.is_some() {
            "is a subquery that is not selective"
        } else if f.index.is_none() {
            "is not indexed"
        } else if f.negative {
            "is negative"
        } else if f.text_range {
            "is a range on text"
        } else if f.null || f.empty_string {
            "compares with an empty value"
        } else if f.leading_wildcard {
            "starts with a wildcard"
        } else {
            continue;
        };
        parts.push(format!("{} {why}", f.path));
    }
    if parts.is_empty() {
        "the filters are not selective".to_string()
    } else {
        parts.join("; ")
    }
}

struct TreeCtx<'a> {
    main: &'a QueryFilters,
    options: &'a SelectivityOptions,
    today: Option<i64>,
}

impl TreeCtx<'_> {
    fn selective(&self, node: &FilterTree) -> bool {
        self.main.node_selective(node, self.options, self.today)
    }

    fn span(&self, node: &FilterTree) -> Span {
        match node {
            FilterTree::And(_, s) | FilterTree::Or(_, s) | FilterTree::Not(_, s) => *s,
            FilterTree::Leaf(i) => self
                .main
                .filters
                .get(*i)
                .map_or(Span::default(), |f| f.span),
        }
    }

    /// The first non-selective branch of every OR (outside NOT) that is not carried by a
    /// selective AND sibling.
    fn unselective_or_branches(&self, node: &FilterTree, out: &mut Vec<Span>) {
        match node {
            FilterTree::Or(items, _) => {
                if let Some(bad) = items.iter().find(|i| !self.selective(i)) {
                    out.push(self.span(bad));
                }
                for i in items {
                    self.unselective_or_branches(i, out);
                }
            }
            FilterTree::And(items, _) => {
                if items.iter().any(|i| self.selective(i)) {
                    return;
                }
                for i in items {
                    self.unselective_or_branches(i, out);
                }
            }
            FilterTree::Not(..) | FilterTree::Leaf(_) => {}
        }
    }

    /// Leaves with no selective AND sibling on the way up ("the only filter on the branch").
    fn uncovered_leaves(&self, node: &FilterTree, covered: bool, out: &mut Vec<usize>) {
        match node {
            FilterTree::Leaf(i) => {
                if !covered {
                    out.push(*i);
                }
            }
            FilterTree::Or(items, _) => {
                for i in items {
                    self.uncovered_leaves(i, covered, out);
                }
            }
            FilterTree::And(items, _) => {
                // Count once; asking "is any other sibling selective?" per item would be
                // quadratic in the width of the AND.
                let selective: Vec<bool> = items.iter().map(|i| self.selective(i)).collect();
                let total = selective.iter().filter(|s| **s).count();
                for (item, own) in items.iter().zip(&selective) {
                    let sibling = total > usize::from(*own);
                    self.uncovered_leaves(item, covered || sibling, out);
                }
            }
            FilterTree::Not(inner, _) => self.uncovered_leaves(inner, covered, out),
        }
    }
}
