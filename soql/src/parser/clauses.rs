//! Clauses after FROM: USING SCOPE, WITH, GROUP BY, ORDER BY, LIMIT/OFFSET values, binds.

use super::select::Place;
use super::Parser;
use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::TokKind;

impl Parser<'_> {
    pub(crate) fn scope(&mut self) -> Result<Ident, ParseError> {
        const SCOPES: &[&str] = &[
            "Delegated",
            "Everything",
            "Mine",
            "MineAndMyGroups",
            "Mine_And_My_Groups",
            "My_Territory",
            "My_Team_Territory",
            "Team",
            "ScopingRule",
            "AllPrivate",
        ];
        let tok = self.peek().clone();
        let word = self.text(tok.span);
        if tok.kind == TokKind::Word && SCOPES.iter().any(|s| s.eq_ignore_ascii_case(word)) {
            self.advance();
            return Ok(Ident {
                name: word.to_string(),
                span: tok.span,
            });
        }
        Err(self.unexpected(
            "a scope (Delegated, Everything, Mine, MineAndMyGroups, My_Territory, My_Team_Territory, Team, ScopingRule, AllPrivate)",
        ))
    }

    pub(crate) fn with_clause(&mut self) -> Result<WithClause, ParseError> {
        if self.eat_word("SECURITY_ENFORCED") {
            return Ok(WithClause::SecurityEnforced);
        }
        if self.eat_word("USER_MODE") {
            return Ok(WithClause::UserMode);
        }
        if self.eat_word("SYSTEM_MODE") {
            return Ok(WithClause::SystemMode);
        }
        if !(self.is_word("DATA") && self.is_word_at(1, "CATEGORY")) {
            return Err(
                self.unexpected("SECURITY_ENFORCED, USER_MODE, SYSTEM_MODE or DATA CATEGORY")
            );
        }
        self.advance();
        self.advance();
        let mut filters = Vec::new();
        loop {
            let group = self.ident("a data category group name")?;
            let op = if self.eat_word("AT") {
                DataCategoryOp::At
            } else if self.eat_word("ABOVE") {
                DataCategoryOp::Above
            } else if self.eat_word("BELOW") {
                DataCategoryOp::Below
            } else if self.eat_word("ABOVE_OR_BELOW") {
                DataCategoryOp::AboveOrBelow
            } else {
                return Err(self.unexpected("AT, ABOVE, BELOW or ABOVE_OR_BELOW"));
            };
            let mut categories = Vec::new();
            if self.eat(&TokKind::LParen) {
                loop {
                    categories.push(self.ident("a data category name")?);
                    if !self.eat(&TokKind::Comma) {
                        break;
                    }
                }
                self.expect(&TokKind::RParen, "',' or ')'")?;
            } else {
                categories.push(self.ident("a data category name or '('")?);
            }
            filters.push(DataCategoryFilter {
                group,
                op,
                categories,
            });
            if self.is_word("OR") {
                return Err(self
                    .unexpected("AND or the next clause")
                    .with_note("data category filters can only be combined with AND"));
            }
            if !self.eat_word("AND") {
                break;
            }
        }
        Ok(WithClause::DataCategory(filters))
    }

    pub(crate) fn group_by(&mut self) -> Result<GroupBy, ParseError> {
        let wrapped = if self.is_word("ROLLUP") && self.peek_at(1).kind == TokKind::LParen {
            Some(true)
        } else if self.is_word("CUBE") && self.peek_at(1).kind == TokKind::LParen {
            Some(false)
        } else {
            None
        };
        if wrapped.is_some() {
            self.advance();
            self.advance();
        }
        let mut exprs = Vec::new();
        loop {
            exprs.push(self.expr(Place::GroupBy)?);
            if !self.eat(&TokKind::Comma) {
                break;
            }
        }
        Ok(match wrapped {
            Some(rollup) => {
                self.expect(&TokKind::RParen, "',' or ')'")?;
                if rollup {
                    GroupBy::Rollup(exprs)
                } else {
                    GroupBy::Cube(exprs)
                }
            }
            None => GroupBy::Plain(exprs),
        })
    }

    pub(crate) fn order_by(&mut self) -> Result<Vec<OrderItem>, ParseError> {
        let mut items = Vec::new();
        loop {
            let expr = self.expr(Place::OrderBy)?;
            let direction = if self.eat_word("ASC") {
                Some(Direction::Asc)
            } else if self.eat_word("DESC") {
                Some(Direction::Desc)
            } else {
                None
            };
            let nulls = if self.eat_word("NULLS") {
                if self.eat_word("FIRST") {
                    Some(Nulls::First)
                } else if self.eat_word("LAST") {
                    Some(Nulls::Last)
                } else {
                    return Err(self.unexpected("FIRST or LAST"));
                }
            } else {
                None
            };
            items.push(OrderItem {
                expr,
                direction,
                nulls,
            });
            if !self.eat(&TokKind::Comma) {
                break;
            }
        }
        Ok(items)
    }

    pub(crate) fn count(&mut self, expected: &str) -> Result<Count, ParseError> {
        let tok = self.peek().clone();
        match tok.kind {
            TokKind::Number => {
                let text = self.text(tok.span);
                match text.parse::<u64>() {
                    Ok(v) => {
                        self.advance();
                        Ok(Count::Value(v, tok.span))
                    }
                    Err(_) => {
                        Err(self.unexpected("a whole number (0 or more) that fits in 64 bits"))
                    }
                }
            }
            TokKind::Colon if self.options.apex => {
                let (name, span) = self.bind()?;
                Ok(Count::Bind(name, span))
            }
            TokKind::Colon => Err(self
                .unexpected(expected)
                .with_note("':name' bind variables are Apex-only; inline the number")),
            _ => Err(self.unexpected(expected)),
        }
    }

    /// `:name` or `:a.b`, Apex mode only (callers check the mode).
    pub(crate) fn bind(&mut self) -> Result<(String, Span), ParseError> {
        let colon = self.advance().span;
        let mut name = String::new();
        loop {
            let word = self.any_word("a bind variable name")?;
            name.push_str(&word.name);
            if self.peek().kind == TokKind::Dot && self.peek_at(1).kind == TokKind::Word {
                self.advance();
                name.push('.');
            } else {
                break;
            }
        }
        Ok((name, Span::new(colon.start, self.last_end())))
    }
}
