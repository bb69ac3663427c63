//! Checks Salesforce makes when it compiles a query, beyond the grammar: duplicate fields,
//! grouping of aggregate queries, COUNT() alone, semi-join shape, relationship depth.

use super::{Parser, QueryKind, MAX_PARENT_HOPS};
use crate::ast::*;
use crate::error::ParseError;
use crate::printer::print_expr;
use std::collections::HashSet;

impl Parser<'_> {
    pub(crate) fn validate_query(&self, q: &Query, kind: QueryKind) -> Result<(), ParseError> {
        if kind == QueryKind::SemiJoin {
            self.check_semi_join_select(q)?;
        }
        self.check_duplicates(q)?;
        self.check_field_aliases(q)?;
        self.check_count_alone(q)?;
        self.check_grouping(q)?;
        self.check_depth(q)?;
        Ok(())
    }

    fn check_semi_join_select(&self, q: &Query) -> Result<(), ParseError> {
        let ok = match q.select.as_slice() {
            [SelectItem::Expr {
                expr: Expr::Field(p),
                alias: None,
            }] => p.segments.len() == 1,
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let span = q.select.first().map(item_span).unwrap_or(q.span);
        Err(self.error_at(
            span,
            "one Id or reference field",
            "a semi-join subquery selects exactly one field, without relationship paths",
        ))
    }

    /// One pass with a hash set: a query of 100,000 characters can select thousands of
    /// fields, and comparing each with every earlier one would be quadratic.
    fn check_duplicates(&self, q: &Query) -> Result<(), ParseError> {
        let mut seen: HashSet<Caseless<'_>> = HashSet::with_capacity(q.select.len());
        for item in &q.select {
            if let SelectItem::Expr {
                expr: Expr::Field(p),
                ..
            } = item
            {
                if !seen.insert(Caseless(p)) {
                    return Err(self.error_at(
                        p.span,
                        "a field not selected before",
                        &format!("duplicate field selected: {}", p.dotted()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Plain fields take an alias only in aggregate queries ("Using Aliases with GROUP
    /// BY"); function results (`toLabel(Status) s`, `FORMAT(Amount) a`) take one anywhere.
    fn check_field_aliases(&self, q: &Query) -> Result<(), ParseError> {
        if has_aggregate(q) || q.group_by.is_some() {
            return Ok(());
        }
        for item in &q.select {
            if let SelectItem::Expr {
                expr: Expr::Field(_),
                alias: Some(alias),
            } = item
            {
                return Err(self.error_at(
                    alias.span,
                    "',' or FROM",
                    "a plain field can only have an alias in an aggregate query (GROUP BY or an aggregate function); remove the alias",
                ));
            }
        }
        Ok(())
    }

    fn check_count_alone(&self, q: &Query) -> Result<(), ParseError> {
        for item in &q.select {
            if let SelectItem::Expr {
                expr: Expr::Call(c),
                ..
            } = item
            {
                if c.func == Func::Count && c.args.is_empty() && q.select.len() > 1 {
                    return Err(self.error_at(
                        c.span,
                        "COUNT() alone, or COUNT(field)",
                        "COUNT() must be the only item in the SELECT list",
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_grouping(&self, q: &Query) -> Result<(), ParseError> {
        if !has_aggregate(q) && q.group_by.is_none() {
            return Ok(());
        }
        let groups: HashSet<String> = q
            .group_by
            .as_ref()
            .map(|g| {
                g.exprs()
                    .iter()
                    .map(|e| print_expr(e).to_ascii_lowercase())
                    .collect()
            })
            .unwrap_or_default();
        for item in &q.select {
            let (span, what) = match item {
                SelectItem::Expr { expr, .. } => {
                    if is_aggregate(expr) || groups.contains(&print_expr(expr).to_ascii_lowercase())
                    {
                        continue;
                    }
                    (expr.span(), "field must be grouped or aggregated")
                }
                SelectItem::Fields { span, .. } => {
                    (*span, "FIELDS() cannot be used in an aggregate query")
                }
                SelectItem::SubQuery(sub) => {
                    (sub.span, "subqueries cannot be used in an aggregate query")
                }
                SelectItem::TypeOf(t) => (t.span, "TYPEOF cannot be used in an aggregate query"),
            };
            return Err(self.error_at(span, "a grouped field or an aggregate function", what));
        }
        Ok(())
    }

    fn check_depth(&self, q: &Query) -> Result<(), ParseError> {
        let mut result = Ok(());
        for_each_path(q, &mut |p: &FieldPath| {
            if result.is_err() {
                return;
            }
            let prefixed = p.segments.len() > 1
                && p.segments.first().is_some_and(|s| {
                    q.from
                        .alias
                        .as_ref()
                        .is_some_and(|a| a.name.eq_ignore_ascii_case(&s.name))
                        || q.from.object.name.eq_ignore_ascii_case(&s.name)
                });
            let hops = p.segments.len() - 1 - usize::from(prefixed);
            if hops > MAX_PARENT_HOPS {
                result = Err(self.error_at(
                    p.span,
                    "a shorter relationship path",
                    "SOQL follows at most 5 parent relationships",
                ));
            }
        });
        result
    }
}

fn item_span(item: &SelectItem) -> Span {
    match item {
        SelectItem::Expr { expr, .. } => expr.span(),
        SelectItem::Fields { span, .. } => *span,
        SelectItem::SubQuery(q) => q.span,
        SelectItem::TypeOf(t) => t.span,
    }
}

fn has_aggregate(q: &Query) -> bool {
    q.select.iter().any(|item| match item {
        SelectItem::Expr { expr, .. } => is_aggregate(expr),
        _ => false,
    })
}

/// A field path compared and hashed without regard to ASCII case, borrowed (no lower-cased
/// copy per selected field).
struct Caseless<'a>(&'a FieldPath);

impl PartialEq for Caseless<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.segments.len() == other.0.segments.len()
            && self
                .0
                .segments
                .iter()
                .zip(&other.0.segments)
                .all(|(a, b)| a.name.eq_ignore_ascii_case(&b.name))
    }
}

impl Eq for Caseless<'_> {}

impl std::hash::Hash for Caseless<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for seg in &self.0.segments {
            for b in seg.name.bytes() {
                state.write_u8(b.to_ascii_lowercase());
            }
            state.write_u8(b'.');
        }
    }
}

/// An aggregate call, or a call wrapping one (`FORMAT(MIN(x))`).
pub(crate) fn is_aggregate(expr: &Expr) -> bool {
    match expr {
        Expr::Call(c) => c.func.kind() == FuncKind::Aggregate || c.args.iter().any(is_aggregate),
        _ => false,
    }
}

/// Every field path at this query level (not inside subqueries).
pub(crate) fn for_each_path(q: &Query, f: &mut dyn FnMut(&FieldPath)) {
    fn expr(e: &Expr, f: &mut dyn FnMut(&FieldPath)) {
        match e {
            Expr::Field(p) => f(p),
            Expr::Call(c) => c.args.iter().for_each(|a| expr(a, f)),
            Expr::Literal(..) => {}
        }
    }
    fn cond(c: &Condition, f: &mut dyn FnMut(&FieldPath)) {
        match c {
            Condition::And(items, _) | Condition::Or(items, _) => {
                items.iter().for_each(|i| cond(i, f))
            }
            Condition::Not(inner, _) => cond(inner, f),
            Condition::Compare(cmp) => expr(&cmp.lhs, f),
        }
    }
    for item in &q.select {
        match item {
            SelectItem::Expr { expr: e, .. } => expr(e, f),
            SelectItem::TypeOf(t) => {
                t.whens
                    .iter()
                    .flat_map(|w| w.fields.iter())
                    .for_each(&mut *f);
                t.else_fields.iter().for_each(&mut *f);
            }
            SelectItem::Fields { .. } | SelectItem::SubQuery(_) => {}
        }
    }
    if let Some(w) = &q.where_clause {
        cond(w, f);
    }
    if let Some(g) = &q.group_by {
        g.exprs().iter().for_each(|e| expr(e, f));
    }
    if let Some(h) = &q.having {
        cond(h, f);
    }
    q.order_by.iter().for_each(|o| expr(&o.expr, f));
}
