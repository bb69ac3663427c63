//! Filter classification and the static selectivity verdict.
//!
//! A filter can drive an index when its field is indexed and it is positive, not a null or
//! empty-string comparison, not a leading-wildcard LIKE, not a function over the field and
//! not a text range (soql.md, "Index not used"). AND is selective when any operand is; OR
//! only when every branch is (a union needs each branch indexed). Date ranges count as
//! selective only when no wider than the configured window.

use super::{relative_segments, SelectivityOptions};
use crate::ast::*;
use crate::catalog::{IndexCatalog, IndexKind};
use crate::dates::date_literal_range;
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The whole comparison.
    pub span: Span,
    /// The path as written (`Account.Name`), or the function text.
    pub path: String,
    /// The object whose field is filtered (the query's object for parent paths).
    pub object: String,
    /// The field name when the left side is a plain field.
    pub field: Option<String>,
    pub op: CompareOp,
    /// Index on the field, when it can be used for this object.
    pub index: Option<IndexKind>,
    /// `!=`, `NOT IN`, `EXCLUDES`, anti-join, or anywhere under NOT.
    pub negative: bool,
    /// Compares with null (`= null`, `IN (..., null)`).
    pub null: bool,
    /// Compares with `''`.
    pub empty_string: bool,
    /// LIKE with any wildcard.
    pub wildcard: bool,
    /// LIKE pattern starting with `%` or `_`.
    pub leading_wildcard: bool,
    /// The left side is a function (`CALENDAR_YEAR(CreatedDate)`, `toLabel(...)`).
    pub on_function: bool,
    /// `<`/`>` on text: an index is not used.
    pub text_range: bool,
    /// For date comparisons: the range it allows.
    pub date_range: Option<DateBound>,
    /// Index into `Analysis::semi_joins` when the right side is a subquery.
    pub semi_join: Option<usize>,
    /// This filter alone could drive an index.
    pub usable: bool,
}

/// A date range; bounds are days, absolute (since 1970) or relative to today.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateBound {
    pub lower: Option<Day>,
    pub upper: Option<Day>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Day {
    Absolute(i64),
    Relative(i64),
}

impl Day {
    fn resolve(self, today: Option<i64>) -> Day {
        match (self, today) {
            (Day::Relative(d), Some(t)) => Day::Absolute(t + d),
            (d, _) => d,
        }
    }
}

fn diff(upper: Day, lower: Day) -> Option<i64> {
    match (upper, lower) {
        (Day::Absolute(u), Day::Absolute(l)) | (Day::Relative(u), Day::Relative(l)) => {
            Some((u - l).max(0))
        }
        _ => None,
    }
}

impl DateBound {
    /// Width in days; `None` when unbounded (or not comparable without today's date).
    /// A missing upper bound means "until today": records are rarely dated in the future.
    pub fn width(&self, today: Option<i64>) -> Option<i64> {
        let lower = self.lower?.resolve(today);
        let upper = self.upper.unwrap_or(Day::Relative(1)).resolve(today);
        diff(upper, lower)
    }

    fn intersect(self, other: DateBound, today: Option<i64>) -> DateBound {
        // Narrow: the later lower bound and the earlier upper bound. When the two cannot be
        // compared, keep ours (either alone is a sound bound).
        let pick = |a: Option<Day>, b: Option<Day>, later: bool| match (a, b) {
            (Some(x), Some(y)) => {
                let (x, y) = (x.resolve(today), y.resolve(today));
                pick_day(x, y, later).or(Some(x))
            }
            (x, None) => x,
            (None, y) => y,
        };
        DateBound {
            lower: pick(self.lower, other.lower, true),
            upper: pick(self.upper, other.upper, false),
        }
    }
}

/// The later (or earlier) of two days, when they are comparable.
fn pick_day(a: Day, b: Day, later: bool) -> Option<Day> {
    let a_after_b = diff(a, b)? > 0;
    Some(if a_after_b == later { a } else { b })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterTree {
    And(Vec<FilterTree>, Span),
    Or(Vec<FilterTree>, Span),
    Not(Box<FilterTree>, Span),
    /// Index into the filter list.
    Leaf(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum Selectivity {
    /// A small object: selectivity does not matter.
    Exempt,
    /// No WHERE clause.
    NoFilter,
    Selective,
    /// Only date ranges narrow the query, and they span more days than allowed
    /// (`width_days` is absent when unbounded).
    WideDateRange {
        width_days: Option<i64>,
    },
    NotSelective,
}

/// How strongly a subtree narrows the scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strength {
    None,
    /// Only date ranges; width in days (`None` = unbounded).
    Date(Option<i64>),
    Strong,
}

pub(crate) fn query_filters(
    q: &Query,
    object: &str,
    catalog: &IndexCatalog,
    options: &SelectivityOptions,
    semi_joins: &[super::SemiJoin],
    today: Option<i64>,
) -> super::QueryFilters {
    let mut b = Builder {
        q,
        object,
        catalog,
        semi_joins,
        filters: Vec::new(),
        next_semi: 0,
    };
    let tree = q.where_clause.as_ref().map(|c| b.tree(c, false));
    let filters = b.filters;
    let selectivity = if options.is_small(object) {
        Selectivity::Exempt
    } else {
        match &tree {
            None => Selectivity::NoFilter,
            Some(t) => match strength(t, &filters, today) {
                Strength::Strong => Selectivity::Selective,
                Strength::Date(Some(w)) if w <= options.date_window_days => Selectivity::Selective,
                Strength::Date(width_days) => Selectivity::WideDateRange { width_days },
                Strength::None => Selectivity::NotSelective,
            },
        }
    };
    super::QueryFilters {
        object: object.to_string(),
        filters,
        tree,
        selectivity,
    }
}

struct Builder<'a> {
    q: &'a Query,
    object: &'a str,
    catalog: &'a IndexCatalog,
    semi_joins: &'a [super::SemiJoin],
    filters: Vec<Filter>,
    next_semi: usize,
}

impl Builder<'_> {
    fn tree(&mut self, c: &Condition, negated: bool) -> FilterTree {
        match c {
            Condition::And(items, span) => {
                FilterTree::And(items.iter().map(|i| self.tree(i, negated)).collect(), *span)
            }
            Condition::Or(items, span) => {
                FilterTree::Or(items.iter().map(|i| self.tree(i, negated)).collect(), *span)
            }
            Condition::Not(inner, span) => FilterTree::Not(Box::new(self.tree(inner, true)), *span),
            Condition::Compare(cmp) => {
                let f = self.classify(cmp, negated);
                self.filters.push(f);
                FilterTree::Leaf(self.filters.len() - 1)
            }
        }
    }

    fn classify(&mut self, cmp: &Comparison, negated: bool) -> Filter {
        let (path, field, index, on_function) = match &cmp.lhs {
            Expr::Field(p) => {
                let segs = relative_segments(self.q, self.object, p);
                let (field, index) = match &*segs {
                    [f] => (
                        Some(f.name.clone()),
                        self.catalog.index_kind(self.object, &f.name),
                    ),
                    // `Account.Id` is the AccountId lookup on this object.
                    [rel, id] if id.name.eq_ignore_ascii_case("Id") => {
                        let lookup = format!("{}Id", rel.name);
                        let index = self.catalog.index_kind(self.object, &lookup);
                        (Some(lookup), index)
                    }
                    // Filters through a parent path cannot drive this object's indexes.
                    _ => (segs.last().map(|s| s.name.clone()), None),
                };
                (p.dotted(), field, index, false)
            }
            other => (crate::printer::print_expr(other), None, None, true),
        };
        let values: Vec<&Literal> = match &cmp.rhs {
            Rhs::Value(l, _) => vec![l],
            Rhs::List(items, _) => items.iter().map(|(l, _)| l).collect(),
            Rhs::SubQuery(_) => Vec::new(),
        };
        let semi_join = if matches!(cmp.rhs, Rhs::SubQuery(_)) && !self.semi_joins.is_empty() {
            let i = self.next_semi;
            self.next_semi += 1;
            (i < self.semi_joins.len()).then_some(i)
        } else {
            None
        };
        let negative = negated
            || matches!(
                cmp.op,
                CompareOp::Ne | CompareOp::NotIn | CompareOp::Excludes
            );
        let null = values.iter().any(|l| matches!(l, Literal::Null));
        let empty_string = values
            .iter()
            .any(|l| matches!(l, Literal::String(s) if s.is_empty()));
        let pattern = match (cmp.op, values.first()) {
            (CompareOp::Like, Some(Literal::String(s))) => Some(s.as_str()),
            _ => None,
        };
        let wildcard = pattern.is_some_and(has_wildcard);
        let leading_wildcard = pattern.is_some_and(|p| p.starts_with('%') || p.starts_with('_'));
        let ranged = matches!(
            cmp.op,
            CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge
        );
        let text_range = ranged && values.iter().any(|l| matches!(l, Literal::String(_)));
        let date_range = date_bound(cmp.op, &values);
        let semi_ok = match (&cmp.rhs, semi_join) {
            (Rhs::SubQuery(_), Some(i)) => matches!(
                self.semi_joins[i].filters.selectivity,
                Selectivity::Selective | Selectivity::Exempt
            ),
            (Rhs::SubQuery(_), None) => false,
            _ => true,
        };
        let usable = index.is_some()
            && !negative
            && !null
            && !empty_string
            && !leading_wildcard
            && !on_function
            && !text_range
            && semi_ok;
        Filter {
            span: cmp.span,
            path,
            object: self.object.to_string(),
            field,
            op: cmp.op,
            index,
            negative,
            null,
            empty_string,
            wildcard,
            leading_wildcard,
            on_function,
            text_range,
            date_range,
            semi_join,
            usable,
        }
    }
}

fn has_wildcard(body: &str) -> bool {
    let mut escaped = false;
    for ch in body.chars() {
        if escaped {
            escaped = false;
        } else if ch == '\\' {
            escaped = true;
        } else if ch == '%' || ch == '_' {
            return true;
        }
    }
    false
}

fn day_range(l: &Literal) -> Option<(Day, Day)> {
    match l {
        Literal::Date(d) => {
            let n = d.days_since_epoch();
            Some((Day::Absolute(n), Day::Absolute(n + 1)))
        }
        Literal::DateTime(dt) => {
            let n = dt.date.days_since_epoch();
            Some((Day::Absolute(n), Day::Absolute(n + 1)))
        }
        Literal::DateLiteral(d) => {
            let (start, len) = date_literal_range(d);
            Some((Day::Relative(start), Day::Relative(start + len)))
        }
        _ => None,
    }
}

fn date_bound(op: CompareOp, values: &[&Literal]) -> Option<DateBound> {
    let ranges: Vec<(Day, Day)> = values.iter().filter_map(|l| day_range(l)).collect();
    if ranges.is_empty() || ranges.len() != values.len() {
        return None;
    }
    let (start, end) = ranges[0];
    Some(match op {
        CompareOp::Eq => DateBound {
            lower: Some(start),
            upper: Some(end),
        },
        CompareOp::In => {
            // The union of the listed days: earliest start to latest end. Values that
            // cannot be compared (absolute vs relative) leave the range unbounded.
            let mut lower = Some(start);
            let mut upper = Some(end);
            for (s, e) in &ranges[1..] {
                lower = lower.and_then(|l| pick_day(l, *s, false));
                upper = upper.and_then(|u| pick_day(u, *e, true));
            }
            DateBound { lower, upper }
        }
        CompareOp::Gt => DateBound {
            lower: Some(end),
            upper: None,
        },
        CompareOp::Ge => DateBound {
            lower: Some(start),
            upper: None,
        },
        CompareOp::Lt => DateBound {
            lower: None,
            upper: Some(start),
        },
        CompareOp::Le => DateBound {
            lower: None,
            upper: Some(end),
        },
        _ => return None,
    })
}

pub(crate) fn strength(t: &FilterTree, filters: &[Filter], today: Option<i64>) -> Strength {
    match t {
        FilterTree::Leaf(i) => leaf_strength(&filters[*i], today),
        FilterTree::Not(..) => Strength::None,
        FilterTree::Or(items, _) => {
            let mut widest: Option<Option<i64>> = None;
            for item in items {
                match strength(item, filters, today) {
                    Strength::None => return Strength::None,
                    Strength::Strong => {}
                    Strength::Date(w) => {
                        widest = Some(match (widest, w) {
                            (Some(Some(a)), Some(b)) => Some(a.max(b)),
                            (None, w) => w,
                            _ => None,
                        })
                    }
                }
            }
            widest.map_or(Strength::Strong, Strength::Date)
        }
        FilterTree::And(items, _) => {
            // Date leaves on the same field combine into one range (>= a AND < b). A map,
            // not a list search: an AND can have thousands of operands.
            let mut per_field: HashMap<String, DateBound> = HashMap::new();
            let mut best: Option<Option<i64>> = None;
            let consider = |w: Option<i64>, best: &mut Option<Option<i64>>| {
                *best = Some(match (*best, w) {
                    (Some(Some(a)), Some(b)) => Some(a.min(b)),
                    (Some(Some(a)), None) => Some(a),
                    (_, w) => w,
                });
            };
            for item in items {
                if let FilterTree::Leaf(i) = item {
                    let f = &filters[*i];
                    if let (Some(bound), true) = (f.date_range, f.usable) {
                        let name = f.field.clone().unwrap_or_default().to_ascii_lowercase();
                        per_field
                            .entry(name)
                            .and_modify(|b| *b = b.intersect(bound, today))
                            .or_insert(bound);
                        continue;
                    }
                }
                match strength(item, filters, today) {
                    Strength::Strong => return Strength::Strong,
                    Strength::Date(w) => consider(w, &mut best),
                    Strength::None => {}
                }
            }
            for b in per_field.values() {
                consider(b.width(today), &mut best);
            }
            best.map_or(Strength::None, Strength::Date)
        }
    }
}

fn leaf_strength(f: &Filter, today: Option<i64>) -> Strength {
    if !f.usable {
        return Strength::None;
    }
    match f.date_range {
        Some(b) => Strength::Date(b.width(today)),
        None => Strength::Strong,
    }
}

/// Is this subtree selective on its own: an indexed filter, or date ranges no wider than
/// the window?
pub(crate) fn selective(
    t: &FilterTree,
    filters: &[Filter],
    today: Option<i64>,
    window_days: i64,
) -> bool {
    match strength(t, filters, today) {
        Strength::Strong => true,
        Strength::Date(Some(w)) => w <= window_days,
        _ => false,
    }
}
