//! What a query reaches (objects, fields) and how its filters behave (indexed, negative,
//! null, wildcard, date range), with a static selectivity verdict. No I/O: "today" is an
//! input, not read from a clock.

mod filters;

pub use filters::{DateBound, Filter, FilterTree, Selectivity};

use crate::ast::*;
use crate::catalog::{name_matches, IndexCatalog};
use std::borrow::Cow;

/// How an object is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    From,
    ParentPath,
    ChildSubquery,
    SemiJoin,
    TypeOfBranch,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    pub name: String,
    pub via: Via,
    pub span: Span,
}

/// Which clause a field is used in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Clause {
    Select,
    Where,
    GroupBy,
    Having,
    OrderBy,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRef {
    /// The object the field belongs to, after following parent relationships.
    pub object: String,
    pub field: String,
    pub clause: Clause,
    pub span: Span,
}

/// `FIELDS(ALL|STANDARD|CUSTOM)` on an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldsWildcard {
    pub object: String,
    pub kind: FieldsKind,
    pub span: Span,
}

/// Filters of one query level (the main query or a semi-join) and their verdict.
#[derive(Clone, Debug)]
pub struct QueryFilters {
    pub object: String,
    pub filters: Vec<Filter>,
    pub tree: Option<FilterTree>,
    pub selectivity: Selectivity,
}

impl QueryFilters {
    /// Is this node of the filter tree selective on its own (an usable indexed filter, or
    /// date ranges within the window)?
    pub fn node_selective(
        &self,
        node: &FilterTree,
        options: &SelectivityOptions,
        today: Option<i64>,
    ) -> bool {
        filters::selective(node, &self.filters, today, options.date_window_days)
    }
}

#[derive(Clone, Debug)]
pub struct SemiJoin {
    pub span: Span,
    /// `NOT IN (SELECT ...)`.
    pub anti: bool,
    pub filters: QueryFilters,
}

#[derive(Clone, Debug)]
pub struct Analysis {
    pub objects: Vec<ObjectRef>,
    pub fields: Vec<FieldRef>,
    pub wildcards: Vec<FieldsWildcard>,
    pub main: QueryFilters,
    pub semi_joins: Vec<SemiJoin>,
}

/// Inputs to the selectivity verdict that come from policy rather than schema.
#[derive(Clone, Debug)]
pub struct SelectivityOptions {
    /// A date range wider than this many days does not count as selective.
    pub date_window_days: i64,
    /// Objects exempt from selectivity (`*` wildcards allowed, e.g. `*__mdt`).
    pub small_objects: Vec<String>,
}

impl Default for SelectivityOptions {
    fn default() -> Self {
        SelectivityOptions {
            date_window_days: 365,
            small_objects: vec!["RecordType".into(), "Profile".into(), "*__mdt".into()],
        }
    }
}

impl SelectivityOptions {
    pub fn is_small(&self, object: &str) -> bool {
        self.small_objects.iter().any(|p| name_matches(p, object))
    }
}

/// Analyses a parsed query. `today` (days since 1970-01-01, UTC) measures open-ended date
/// ranges such as `CreatedDate > 2024-01-01`; without it they count as unbounded.
pub fn analyze(
    q: &Query,
    catalog: &IndexCatalog,
    options: &SelectivityOptions,
    today: Option<i64>,
) -> Analysis {
    let mut w = Walker {
        catalog,
        options,
        today,
        objects: Vec::new(),
        fields: Vec::new(),
        wildcards: Vec::new(),
        semi_joins: Vec::new(),
    };
    let object = q.from.object.name.clone();
    w.walk(q, &object, Via::From);
    let main = filters::query_filters(q, &object, catalog, options, &w.semi_joins, today);
    Analysis {
        objects: w.objects,
        fields: w.fields,
        wildcards: w.wildcards,
        main,
        semi_joins: w.semi_joins,
    }
}

/// Is the query an aggregate query (aggregate functions or GROUP BY)?
pub fn is_aggregate_query(q: &Query) -> bool {
    q.group_by.is_some()
        || q.select.iter().any(|i| match i {
            SelectItem::Expr { expr, .. } => crate::parser_is_aggregate(expr),
            _ => false,
        })
}

/// The relationship segments of a path, relative to the queried object: an alias or
/// object-name prefix is dropped (for a child subquery, the child object's own name too:
/// `Contact.LastName` in `FROM Account.Contacts`), and an alias of a related FROM path
/// (`a` in `FROM Contact c, c.Account a`) is replaced by that path.
pub(crate) fn relative_segments<'a>(
    q: &Query,
    object: &str,
    path: &'a FieldPath,
) -> Cow<'a, [Ident]> {
    let segs = path.segments.as_slice();
    if segs.len() > 1 {
        let first = &segs[0].name;
        if is_self_prefix(q, object, first) {
            return Cow::Borrowed(&segs[1..]);
        }
        let related = q
            .from
            .related
            .iter()
            .find(|r| r.alias.as_ref().is_some_and(|a| a.eq_ignore_case(first)));
        if let Some(r) = related {
            let mut joined = related_path(q, object, r);
            joined.extend_from_slice(&segs[1..]);
            return Cow::Owned(joined);
        }
    }
    Cow::Borrowed(segs)
}

fn is_self_prefix(q: &Query, object: &str, name: &str) -> bool {
    q.from
        .alias
        .as_ref()
        .is_some_and(|a| a.eq_ignore_case(name))
        || q.from.object.eq_ignore_case(name)
        || name.eq_ignore_ascii_case(object)
}

/// The relationships a related FROM path follows from the queried object. Related paths
/// may start from an earlier related alias; each is resolved against the ones before it.
fn related_path(q: &Query, object: &str, r: &RelatedFrom) -> Vec<Ident> {
    let segs = r.path.segments.as_slice();
    let Some((first, rest)) = segs.split_first() else {
        return Vec::new();
    };
    if is_self_prefix(q, object, &first.name) {
        return rest.to_vec();
    }
    let earlier = q
        .from
        .related
        .iter()
        .take_while(|e| !std::ptr::eq(*e, r))
        .find(|e| {
            e.alias
                .as_ref()
                .is_some_and(|a| a.eq_ignore_case(&first.name))
        });
    match earlier {
        Some(e) => {
            let mut out = related_path(q, object, e);
            out.extend_from_slice(rest);
            out
        }
        None => segs.to_vec(),
    }
}

struct Walker<'a> {
    catalog: &'a IndexCatalog,
    options: &'a SelectivityOptions,
    today: Option<i64>,
    objects: Vec<ObjectRef>,
    fields: Vec<FieldRef>,
    wildcards: Vec<FieldsWildcard>,
    semi_joins: Vec<SemiJoin>,
}

impl Walker<'_> {
    fn walk(&mut self, q: &Query, object: &str, via: Via) {
        self.objects.push(ObjectRef {
            name: object.to_string(),
            via,
            span: q.from.object.span,
        });
        for r in &q.from.related {
            let mut current = object.to_string();
            for rel in related_path(q, object, r) {
                current = self.catalog.parent_object(&current, &rel.name);
                self.objects.push(ObjectRef {
                    name: current.clone(),
                    via: Via::ParentPath,
                    span: r.path.span,
                });
            }
        }
        for item in &q.select {
            match item {
                SelectItem::Expr { expr, .. } => self.expr(q, object, expr, Clause::Select),
                SelectItem::Fields { kind, span } => self.wildcards.push(FieldsWildcard {
                    object: object.to_string(),
                    kind: *kind,
                    span: *span,
                }),
                SelectItem::SubQuery(sub) => {
                    let child = self.catalog.child_object(object, &sub.from.object.name);
                    self.walk(sub, &child, Via::ChildSubquery);
                }
                SelectItem::TypeOf(t) => {
                    for when in &t.whens {
                        self.objects.push(ObjectRef {
                            name: when.object.name.clone(),
                            via: Via::TypeOfBranch,
                            span: when.object.span,
                        });
                        for p in &when.fields {
                            self.path_from(&when.object.name, &p.segments, p.span, Clause::Select);
                        }
                    }
                    if !t.else_fields.is_empty() {
                        let target = self.catalog.parent_object(object, &t.relationship.name);
                        for p in &t.else_fields {
                            self.path_from(&target, &p.segments, p.span, Clause::Select);
                        }
                    }
                }
            }
        }
        if let Some(c) = &q.where_clause {
            self.condition(q, object, c, Clause::Where, via == Via::From);
        }
        if let Some(g) = &q.group_by {
            for e in g.exprs() {
                self.expr(q, object, e, Clause::GroupBy);
            }
        }
        if let Some(h) = &q.having {
            self.condition(q, object, h, Clause::Having, false);
        }
        for o in &q.order_by {
            self.expr(q, object, &o.expr, Clause::OrderBy);
        }
    }

    fn condition(&mut self, q: &Query, object: &str, c: &Condition, clause: Clause, top: bool) {
        match c {
            Condition::And(items, _) | Condition::Or(items, _) => {
                for i in items {
                    self.condition(q, object, i, clause, top);
                }
            }
            Condition::Not(inner, _) => self.condition(q, object, inner, clause, top),
            Condition::Compare(cmp) => {
                self.expr(q, object, &cmp.lhs, clause);
                if let Rhs::SubQuery(sub) = &cmp.rhs {
                    let target = sub.from.object.name.clone();
                    self.walk(sub, &target, Via::SemiJoin);
                    if top {
                        let filters = filters::query_filters(
                            sub,
                            &target,
                            self.catalog,
                            self.options,
                            &[],
                            self.today,
                        );
                        self.semi_joins.push(SemiJoin {
                            span: sub.span,
                            anti: cmp.op == CompareOp::NotIn,
                            filters,
                        });
                    }
                }
            }
        }
    }

    fn expr(&mut self, q: &Query, object: &str, e: &Expr, clause: Clause) {
        match e {
            Expr::Field(p) => {
                let segs = relative_segments(q, object, p);
                self.path_from(object, &segs, p.span, clause);
            }
            Expr::Call(c) => {
                for a in &c.args {
                    self.expr(q, object, a, clause);
                }
            }
            Expr::Literal(..) => {}
        }
    }

    fn path_from(&mut self, object: &str, segs: &[Ident], span: Span, clause: Clause) {
        let Some((field, rels)) = segs.split_last() else {
            return;
        };
        let mut current = object.to_string();
        for rel in rels {
            current = self.catalog.parent_object(&current, &rel.name);
            self.objects.push(ObjectRef {
                name: current.clone(),
                via: Via::ParentPath,
                span,
            });
        }
        self.fields.push(FieldRef {
            object: current,
            field: field.name.clone(),
            clause,
            span,
        });
    }
}
