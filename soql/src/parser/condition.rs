//! WHERE / HAVING conditions and literal values.

use super::select::Place;
use super::{trailing_error, Parser, QueryKind};
use crate::ast::*;
use crate::dates::lookup_date_literal;
use crate::error::ParseError;
use crate::lexer::{is_currency_head, TokKind};

/// How many semi-/anti-joins one WHERE clause may hold (a Salesforce limit).
const MAX_SEMI_JOINS: usize = 2;

#[derive(Clone, Copy)]
struct Ctx {
    place: Place,
    /// Semi-joins are only allowed in the top-level query's WHERE.
    semi_join_ok: bool,
}

impl Parser<'_> {
    pub(crate) fn where_clause(&mut self, kind: QueryKind) -> Result<Condition, ParseError> {
        let ctx = Ctx {
            place: Place::Where,
            semi_join_ok: kind == QueryKind::Top,
        };
        let before = self.semi_joins.len();
        let cond = self.condition(ctx)?;
        if self.semi_joins.len() - before > MAX_SEMI_JOINS {
            let span = self.semi_joins[before + MAX_SEMI_JOINS];
            return Err(self.error_at(
                span,
                "at most two semi-join or anti-join subqueries",
                "Salesforce allows no more than two IN/NOT IN subqueries per WHERE clause",
            ));
        }
        Ok(cond)
    }

    pub(crate) fn having_clause(&mut self) -> Result<Condition, ParseError> {
        self.condition(Ctx {
            place: Place::Having,
            semi_join_ok: false,
        })
    }

    /// `NOT primary` | `primary (AND primary)*` | `primary (OR primary)*`.
    fn condition(&mut self, ctx: Ctx) -> Result<Condition, ParseError> {
        let joins_before = self.semi_joins.len();
        if self.is_word("NOT") {
            let start = self.advance().span.start;
            let inner = self.primary(ctx)?;
            self.no_semi_join_since(joins_before, "NOT")?;
            if self.is_word("AND") || self.is_word("OR") {
                return Err(self.unexpected("')' or the next clause").with_note(
                    "NOT applies to the whole group; write (NOT a) AND b, with parentheses",
                ));
            }
            return Ok(Condition::Not(
                Box::new(inner),
                Span::new(start, self.last_end()),
            ));
        }
        let first = self.primary(ctx)?;
        let is_and = self.is_word("AND");
        if !is_and && !self.is_word("OR") {
            return Ok(first);
        }
        let (this, other) = if is_and { ("AND", "OR") } else { ("OR", "AND") };
        let start = first.span().start;
        let mut items = vec![first];
        while self.eat_word(this) {
            items.push(self.primary(ctx)?);
        }
        if self.is_word(other) {
            return Err(self
                .unexpected(&format!("{this}, ')' or the next clause"))
                .with_note(
                    "AND and OR cannot be mixed without parentheses: write a AND (b OR c)",
                ));
        }
        let span = Span::new(start, self.last_end());
        if is_and {
            Ok(Condition::And(items, span))
        } else {
            self.no_semi_join_since(joins_before, "OR")?;
            Ok(Condition::Or(items, span))
        }
    }

    /// Fails when a semi-join was parsed since `before` (that is, inside the NOT or OR
    /// group just built).
    fn no_semi_join_since(&self, before: usize, op: &str) -> Result<(), ParseError> {
        match self.semi_joins.get(before) {
            Some(span) => Err(self.error_at(
                *span,
                "a value list",
                &format!("semi-join and anti-join subqueries are not allowed under {op}; only at the top level of WHERE"),
            )),
            None => Ok(()),
        }
    }

    fn primary(&mut self, ctx: Ctx) -> Result<Condition, ParseError> {
        if self.peek().kind == TokKind::LParen {
            self.enter()?;
            self.advance();
            // A nested group is no longer the top level, but ANDed semi-joins inside
            // parentheses are still top-level in Salesforce's sense only when the group is
            // a plain AND; OR and NOT are rejected where they are built.
            let inner = self.condition(ctx)?;
            if self.peek().kind != TokKind::RParen {
                return Err(self.unexpected("AND, OR or ')'"));
            }
            self.advance();
            self.leave();
            return Ok(inner);
        }
        if self.is_word("NOT") && self.peek_at(1).kind != TokKind::Dot {
            return Err(self
                .unexpected("a condition")
                .with_note("NOT must start a parenthesised group: write a AND (NOT b)"));
        }
        Ok(Condition::Compare(self.comparison(ctx)?))
    }

    fn comparison(&mut self, ctx: Ctx) -> Result<Comparison, ParseError> {
        let lhs = self.expr(ctx.place)?;
        let op = self.operator()?;
        let rhs = if op.takes_list() {
            self.list_rhs(op, ctx)?
        } else {
            let (lit, span) = self.literal()?;
            Rhs::Value(lit, span)
        };
        self.check_operands(&lhs, op, &rhs)?;
        let span = Span::new(lhs.span().start, self.last_end());
        Ok(Comparison { lhs, op, rhs, span })
    }

    fn operator(&mut self) -> Result<CompareOp, ParseError> {
        let op = match self.peek().kind {
            TokKind::Eq => CompareOp::Eq,
            TokKind::Ne => CompareOp::Ne,
            TokKind::Lt => CompareOp::Lt,
            TokKind::Le => CompareOp::Le,
            TokKind::Gt => CompareOp::Gt,
            TokKind::Ge => CompareOp::Ge,
            TokKind::Word if self.is_word("LIKE") => CompareOp::Like,
            TokKind::Word if self.is_word("IN") => CompareOp::In,
            TokKind::Word if self.is_word("INCLUDES") => CompareOp::Includes,
            TokKind::Word if self.is_word("EXCLUDES") => CompareOp::Excludes,
            TokKind::Word if self.is_word("NOT") && self.is_word_at(1, "IN") => {
                self.advance();
                CompareOp::NotIn
            }
            _ => {
                let mut err = self
                    .unexpected("an operator (= != <> < <= > >= LIKE IN NOT IN INCLUDES EXCLUDES)");
                if self.is_word("NOT") && self.is_word_at(1, "LIKE") {
                    err = err.with_note(
                        "write NOT field LIKE 'x' inside parentheses: (NOT Name LIKE 'x%')",
                    );
                }
                return Err(err);
            }
        };
        self.advance();
        Ok(op)
    }

    fn list_rhs(&mut self, op: CompareOp, ctx: Ctx) -> Result<Rhs, ParseError> {
        let is_bind = matches!(self.peek().kind, TokKind::Bind(_));
        if is_bind && self.options.apex {
            let (name, span) = self.bind()?;
            return Ok(Rhs::Value(Literal::Bind(name), span));
        }
        if is_bind {
            return Err(self
                .unexpected("'(' and a list of values")
                .with_note("':name' bind variables are Apex-only; inline the values"));
        }
        let open = self.expect(&TokKind::LParen, "'(' and a list of values")?;
        if self.is_word("SELECT") {
            if !matches!(op, CompareOp::In | CompareOp::NotIn) {
                return Err(self
                    .unexpected("a value")
                    .with_note("only IN and NOT IN take a subquery"));
            }
            if !ctx.semi_join_ok {
                return Err(self.unexpected("a value").with_note(
                    "semi-join subqueries are only allowed at the top level of the main query's WHERE",
                ));
            }
            let mut sub = self.query(QueryKind::SemiJoin)?;
            if self.peek().kind != TokKind::RParen {
                return Err(trailing_error(self, &sub, QueryKind::SemiJoin));
            }
            self.advance();
            sub.span = Span::new(open.start, self.last_end());
            self.semi_joins.push(sub.span);
            return Ok(Rhs::SubQuery(Box::new(sub)));
        }
        let mut values = Vec::new();
        loop {
            values.push(self.literal()?);
            if !self.eat(&TokKind::Comma) {
                break;
            }
        }
        if self.peek().kind != TokKind::RParen {
            return Err(self.unexpected("',' or ')'"));
        }
        self.advance();
        Ok(Rhs::List(values, Span::new(open.start, self.last_end())))
    }

    /// A single value: string, number, null, boolean, date, datetime, date literal,
    /// currency, or (Apex mode) a bind.
    pub(crate) fn literal(&mut self) -> Result<(Literal, Span), ParseError> {
        const EXPECTED: &str =
            "a value (string, number, null, true/false, date, datetime, date literal or currency)";
        // Strings are moved out of the token, not copied: an IN list can hold thousands.
        if matches!(self.peek().kind, TokKind::Str(_)) {
            let tok = self.advance();
            if let TokKind::Str(body) = tok.kind {
                return Ok((Literal::String(body), tok.span));
            }
        }
        let tok = self.peek().clone();
        let lit = match &tok.kind {
            TokKind::Number => Literal::Number(self.text(tok.span).to_string()),
            TokKind::Date(d) => Literal::Date(*d),
            TokKind::DateTime(dt) => Literal::DateTime(dt.clone()),
            TokKind::Bind(_) if self.options.apex => {
                let (name, span) = self.bind()?;
                return Ok((Literal::Bind(name), span));
            }
            TokKind::Bind(_) => {
                return Err(self
                    .unexpected(EXPECTED)
                    .with_note("':name' bind variables are Apex-only; inline the value"))
            }
            TokKind::Word => {
                let word = self.text(tok.span);
                if word.eq_ignore_ascii_case("null") {
                    Literal::Null
                } else if word.eq_ignore_ascii_case("true") {
                    Literal::Bool(true)
                } else if word.eq_ignore_ascii_case("false") {
                    Literal::Bool(false)
                } else if let Some((name, takes_n)) = lookup_date_literal(word) {
                    self.advance();
                    let n = if takes_n {
                        Some(self.date_n(name)?)
                    } else {
                        None
                    };
                    if !takes_n && self.peek().kind == TokKind::Colon {
                        return Err(self
                            .unexpected("the next condition or clause")
                            .with_note(format!("{name} takes no :n argument")));
                    }
                    return Ok((
                        Literal::DateLiteral(DateLiteral { name, n }),
                        Span::new(tok.span.start, self.last_end()),
                    ));
                } else if let Some((code, amount)) = split_currency(word) {
                    Literal::Currency { code, amount }
                } else {
                    return Err(self.unexpected(EXPECTED));
                }
            }
            _ => return Err(self.unexpected(EXPECTED)),
        };
        self.advance();
        Ok((lit, tok.span))
    }

    fn date_n(&mut self, name: &str) -> Result<u32, ParseError> {
        if self.peek().kind != TokKind::Colon {
            return Err(self.unexpected(&format!("':' and a number after {name}")));
        }
        self.advance();
        let tok = self.peek().clone();
        if tok.kind == TokKind::Number {
            if let Ok(n) = self.text(tok.span).parse::<u32>() {
                self.advance();
                return Ok(n);
            }
        }
        Err(self.unexpected(&format!("a whole number after {name}:")))
    }

    /// Operand checks Salesforce makes at parse time.
    fn check_operands(&self, lhs: &Expr, op: CompareOp, rhs: &Rhs) -> Result<(), ParseError> {
        let values: Vec<&(Literal, Span)> = match rhs {
            Rhs::List(v, _) => v.iter().collect(),
            _ => Vec::new(),
        };
        let single = match rhs {
            Rhs::Value(l, s) => Some((l, *s)),
            _ => None,
        };
        if op == CompareOp::Like {
            if let Some((lit, span)) = single {
                if !matches!(lit, Literal::String(_) | Literal::Bind(_) | Literal::Null) {
                    return Err(self.error_at(
                        span,
                        "a string pattern",
                        "LIKE compares with a string",
                    ));
                }
            }
        }
        if matches!(op, CompareOp::Includes | CompareOp::Excludes) {
            for (lit, span) in &values {
                if !matches!(lit, Literal::String(_) | Literal::Bind(_)) {
                    return Err(self.error_at(
                        *span,
                        "a string",
                        "INCLUDES/EXCLUDES take multi-select picklist values as strings",
                    ));
                }
            }
        }
        // `Id = 'abc'` fails in Salesforce with "invalid ID field"; catch it here.
        if let Expr::Field(path) = lhs {
            if path.field().eq_ignore_ascii_case("Id")
                && matches!(
                    op,
                    CompareOp::Eq | CompareOp::Ne | CompareOp::In | CompareOp::NotIn
                )
            {
                let all = single
                    .into_iter()
                    .chain(values.iter().map(|(l, s)| (l, *s)));
                for (lit, span) in all {
                    if let Literal::String(body) = lit {
                        if !body.is_empty() && !is_salesforce_id(body) {
                            return Err(self.error_at(
                                span,
                                "a 15 or 18 character record id",
                                "an Id must be 15 or 18 letters and digits",
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// 15- or 18-character alphanumeric record id.
pub fn is_salesforce_id(s: &str) -> bool {
    (s.len() == 15 || s.len() == 18) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn split_currency(word: &str) -> Option<(String, String)> {
    let head_end = word.find('.').unwrap_or(word.len());
    if !is_currency_head(word.as_bytes().get(..head_end)?) {
        return None;
    }
    let (code, amount) = word.split_at(3);
    Some((code.to_ascii_uppercase(), amount.to_string()))
}
