//! Canonical SOQL text from the AST: upper-case keywords, documented function spelling,
//! `!=` for `<>`, single spaces, parentheses exactly where SOQL needs them. Printing then
//! parsing gives back an equal AST.

use crate::ast::*;
use std::fmt::Write;

/// Canonical SOQL for a query.
pub fn print(q: &Query) -> String {
    let mut p = Printer {
        out: String::with_capacity(128),
        shape: false,
    };
    p.query(q);
    p.out
}

/// The query's shape: canonical text with every literal in a condition replaced by `?`
/// (lists collapse to `(?)`), so queries that differ only in values share one key.
pub fn shape_key(q: &Query) -> String {
    let mut p = Printer {
        out: String::with_capacity(128),
        shape: true,
    };
    p.query(q);
    p.out
}

/// Canonical text of one expression (used to compare GROUP BY items).
pub fn print_expr(e: &Expr) -> String {
    let mut p = Printer {
        out: String::new(),
        shape: false,
    };
    p.expr(e);
    p.out
}

/// Canonical text of one literal.
pub fn print_literal(l: &Literal) -> String {
    let mut p = Printer {
        out: String::new(),
        shape: false,
    };
    p.literal(l);
    p.out
}

struct Printer {
    out: String,
    shape: bool,
}

impl Printer {
    fn s(&mut self, text: &str) {
        self.out.push_str(text);
    }

    fn query(&mut self, q: &Query) {
        self.s("SELECT ");
        for (i, item) in q.select.iter().enumerate() {
            if i > 0 {
                self.s(", ");
            }
            self.select_item(item);
        }
        self.s(" FROM ");
        if let Some(parent) = &q.from.parent {
            self.s(&parent.name);
            self.s(".");
        }
        self.s(&q.from.object.name);
        if let Some(alias) = &q.from.alias {
            self.s(" ");
            self.s(&alias.name);
        }
        for related in &q.from.related {
            self.s(", ");
            self.path(&related.path);
            if let Some(alias) = &related.alias {
                self.s(" ");
                self.s(&alias.name);
            }
        }
        if let Some(scope) = &q.using_scope {
            self.s(" USING SCOPE ");
            self.s(&scope.name);
        }
        if let Some(w) = &q.where_clause {
            self.s(" WHERE ");
            self.condition(w, false);
        }
        if let Some(with) = &q.with {
            self.s(" WITH ");
            self.with(with);
        }
        if let Some(g) = &q.group_by {
            self.s(" GROUP BY ");
            let (open, close) = match g {
                GroupBy::Plain(_) => ("", ""),
                GroupBy::Rollup(_) => ("ROLLUP(", ")"),
                GroupBy::Cube(_) => ("CUBE(", ")"),
            };
            self.s(open);
            self.expr_list(g.exprs());
            self.s(close);
        }
        if let Some(h) = &q.having {
            self.s(" HAVING ");
            self.condition(h, false);
        }
        if !q.order_by.is_empty() {
            self.s(" ORDER BY ");
            for (i, o) in q.order_by.iter().enumerate() {
                if i > 0 {
                    self.s(", ");
                }
                self.expr(&o.expr);
                match o.direction {
                    Some(Direction::Asc) => self.s(" ASC"),
                    Some(Direction::Desc) => self.s(" DESC"),
                    None => {}
                }
                match o.nulls {
                    Some(Nulls::First) => self.s(" NULLS FIRST"),
                    Some(Nulls::Last) => self.s(" NULLS LAST"),
                    None => {}
                }
            }
        }
        if let Some(limit) = &q.limit {
            self.s(" LIMIT ");
            self.count(limit);
        }
        if let Some(offset) = &q.offset {
            self.s(" OFFSET ");
            self.count(offset);
        }
        if q.all_rows {
            self.s(" ALL ROWS");
        }
        match q.for_clause {
            Some(ForClause::View) => self.s(" FOR VIEW"),
            Some(ForClause::Reference) => self.s(" FOR REFERENCE"),
            Some(ForClause::Update) => self.s(" FOR UPDATE"),
            None => {}
        }
        match q.update {
            Some(UpdateClause::Tracking) => self.s(" UPDATE TRACKING"),
            Some(UpdateClause::Viewstat) => self.s(" UPDATE VIEWSTAT"),
            None => {}
        }
    }

    fn count(&mut self, c: &Count) {
        match c {
            Count::Value(v, _) => {
                let _ = write!(self.out, "{v}");
            }
            Count::Bind(name, _) => {
                self.s(":");
                self.s(name);
            }
        }
    }

    fn select_item(&mut self, item: &SelectItem) {
        match item {
            SelectItem::Expr { expr, alias } => {
                self.expr(expr);
                if let Some(a) = alias {
                    self.s(" ");
                    self.s(&a.name);
                }
            }
            SelectItem::Fields { kind, .. } => {
                self.s("FIELDS(");
                self.s(kind.as_str());
                self.s(")");
            }
            SelectItem::SubQuery(q) => {
                self.s("(");
                self.query(q);
                self.s(")");
            }
            SelectItem::TypeOf(t) => {
                self.s("TYPEOF ");
                self.s(&t.relationship.name);
                for w in &t.whens {
                    self.s(" WHEN ");
                    self.s(&w.object.name);
                    self.s(" THEN ");
                    self.paths(&w.fields);
                }
                if !t.else_fields.is_empty() {
                    self.s(" ELSE ");
                    self.paths(&t.else_fields);
                }
                self.s(" END");
            }
        }
    }

    fn paths(&mut self, paths: &[FieldPath]) {
        for (i, p) in paths.iter().enumerate() {
            if i > 0 {
                self.s(", ");
            }
            self.path(p);
        }
    }

    fn path(&mut self, p: &FieldPath) {
        for (i, seg) in p.segments.iter().enumerate() {
            if i > 0 {
                self.s(".");
            }
            self.s(&seg.name);
        }
    }

    fn expr_list(&mut self, exprs: &[Expr]) {
        for (i, e) in exprs.iter().enumerate() {
            if i > 0 {
                self.s(", ");
            }
            self.expr(e);
        }
    }

    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Field(p) => self.path(p),
            Expr::Call(c) => {
                self.s(c.func.as_str());
                self.s("(");
                // Function arguments are part of the shape (units, coordinates are literal
                // but select-side), so they are printed as they are.
                let shape = std::mem::replace(&mut self.shape, false);
                self.expr_list(&c.args);
                self.shape = shape;
                self.s(")");
            }
            Expr::Literal(l, _) => self.literal(l),
        }
    }

    fn with(&mut self, w: &WithClause) {
        match w {
            WithClause::SecurityEnforced => self.s("SECURITY_ENFORCED"),
            WithClause::UserMode => self.s("USER_MODE"),
            WithClause::SystemMode => self.s("SYSTEM_MODE"),
            WithClause::UserId(body) => {
                self.s("UserId = '");
                self.s(body);
                self.s("'");
            }
            WithClause::RecordVisibilityContext(params) => {
                self.s("RecordVisibilityContext (");
                for (i, p) in params.iter().enumerate() {
                    if i > 0 {
                        self.s(", ");
                    }
                    self.s(&p.name.name);
                    self.s("=");
                    // Parameters are part of the shape, like function arguments.
                    let shape = std::mem::replace(&mut self.shape, false);
                    self.literal(&p.value);
                    self.shape = shape;
                }
                self.s(")");
            }
            WithClause::DataCategory(filters) => {
                self.s("DATA CATEGORY ");
                for (i, f) in filters.iter().enumerate() {
                    if i > 0 {
                        self.s(" AND ");
                    }
                    self.s(&f.group.name);
                    self.s(" ");
                    self.s(f.op.as_str());
                    self.s(" ");
                    if f.categories.len() == 1 {
                        self.s(&f.categories[0].name);
                    } else {
                        self.s("(");
                        for (j, c) in f.categories.iter().enumerate() {
                            if j > 0 {
                                self.s(", ");
                            }
                            self.s(&c.name);
                        }
                        self.s(")");
                    }
                }
            }
        }
    }

    /// `nested`: this condition is an operand of AND/OR, so compound forms need parentheses.
    fn condition(&mut self, c: &Condition, nested: bool) {
        match c {
            Condition::Compare(cmp) => self.comparison(cmp),
            Condition::And(items, _) | Condition::Or(items, _) => {
                let op = if matches!(c, Condition::And(..)) {
                    " AND "
                } else {
                    " OR "
                };
                if nested {
                    self.s("(");
                }
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.s(op);
                    }
                    self.condition(item, true);
                }
                if nested {
                    self.s(")");
                }
            }
            Condition::Not(inner, _) => {
                if nested {
                    self.s("(");
                }
                self.s("NOT ");
                match inner.as_ref() {
                    Condition::Compare(cmp) => self.comparison(cmp),
                    other => {
                        self.s("(");
                        self.condition(other, false);
                        self.s(")");
                    }
                }
                if nested {
                    self.s(")");
                }
            }
        }
    }

    fn comparison(&mut self, c: &Comparison) {
        self.expr(&c.lhs);
        self.s(" ");
        self.s(c.op.as_str());
        self.s(" ");
        match &c.rhs {
            Rhs::Value(l, _) => self.literal(l),
            Rhs::List(items, _) => {
                self.s("(");
                if self.shape {
                    self.s("?");
                } else {
                    for (i, (l, _)) in items.iter().enumerate() {
                        if i > 0 {
                            self.s(", ");
                        }
                        self.literal(l);
                    }
                }
                self.s(")");
            }
            Rhs::SubQuery(q) => {
                self.s("(");
                self.query(q);
                self.s(")");
            }
        }
    }

    fn literal(&mut self, l: &Literal) {
        if self.shape && !matches!(l, Literal::Bind(_)) {
            self.s("?");
            return;
        }
        match l {
            Literal::Null => self.s("null"),
            Literal::Bool(true) => self.s("true"),
            Literal::Bool(false) => self.s("false"),
            Literal::Number(n) => self.s(n),
            Literal::String(body) => {
                self.s("'");
                self.s(body);
                self.s("'");
            }
            Literal::Date(d) => {
                let _ = write!(self.out, "{d}");
            }
            Literal::DateTime(dt) => {
                let _ = write!(self.out, "{dt}");
            }
            Literal::DateLiteral(d) => {
                let _ = write!(self.out, "{d}");
            }
            Literal::Currency { code, amount } => {
                self.s(code);
                self.s(amount);
            }
            Literal::Bind(name) => {
                self.s(":");
                self.s(name);
            }
        }
    }
}
