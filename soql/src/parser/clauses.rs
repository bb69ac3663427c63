//! Clauses after FROM: USING SCOPE, WITH, GROUP BY, ORDER BY, LIMIT/OFFSET values, binds.

use super::select::Place;
use super::Parser;
use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::TokKind;

impl Parser<'_> {
    /// Any scope name. Scopes vary per object (`supportedScopes` in describe: `mine`,
    /// `team`, `my_territory`, `scopingRule`, ...), so the org checks the name, not us.
    pub(crate) fn scope(&mut self) -> Result<Ident, ParseError> {
        self.ident("a scope name (everything, mine, team, ... as the object's describe lists)")
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
        if self.is_word("UserId") && self.peek_at(1).kind == TokKind::Eq {
            self.advance();
            self.advance();
            let tok = self.peek().clone();
            return match tok.kind {
                TokKind::Str(body) => {
                    self.advance();
                    Ok(WithClause::UserId(body))
                }
                _ => Err(self.unexpected("a user id in quotes")),
            };
        }
        if self.is_word("RecordVisibilityContext") {
            self.advance();
            return self.visibility_context();
        }
        if !(self.is_word("DATA") && self.is_word_at(1, "CATEGORY")) {
            return Err(self.unexpected(
                "SECURITY_ENFORCED, USER_MODE, SYSTEM_MODE, DATA CATEGORY, UserId = '...' or RecordVisibilityContext (...)",
            ));
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

    /// `(name=value, ...)` after `WITH RecordVisibilityContext`; at least one parameter
    /// (SOQL reference, "WITH RecordVisibilityContext").
    fn visibility_context(&mut self) -> Result<WithClause, ParseError> {
        if self.peek().kind != TokKind::LParen {
            return Err(self.unexpected("'(' and parameters").with_note(
                "RecordVisibilityContext needs at least one parameter, e.g. (maxDescriptorPerRecord=100)",
            ));
        }
        self.advance();
        let mut params = Vec::new();
        loop {
            let name = self.ident(
                "a parameter name (maxDescriptorPerRecord, supportsDomains, supportsDelegates)",
            )?;
            self.expect(&TokKind::Eq, "'='")?;
            let (value, span) = self.literal()?;
            if !matches!(value, Literal::Number(_) | Literal::Bool(_)) {
                return Err(self.error_at(
                    span,
                    "a number or true/false",
                    "RecordVisibilityContext parameters are numbers or booleans",
                ));
            }
            params.push(VisibilityParam { name, value });
            if !self.eat(&TokKind::Comma) {
                break;
            }
        }
        self.expect(&TokKind::RParen, "',' or ')'")?;
        Ok(WithClause::RecordVisibilityContext(params))
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
            TokKind::Bind(_) if self.options.apex => {
                let (name, span) = self.bind()?;
                Ok(Count::Bind(name, span))
            }
            TokKind::Bind(_) => Err(self
                .unexpected(expected)
                .with_note("':name' bind variables are Apex-only; inline the number")),
            _ => Err(self.unexpected(expected)),
        }
    }

    /// An Apex bind expression (`:name`, `:a.b`, `:ids.keySet()`, ...), Apex mode only
    /// (callers check the mode). The text is kept as written.
    pub(crate) fn bind(&mut self) -> Result<(String, Span), ParseError> {
        let tok = self.advance();
        match tok.kind {
            TokKind::Bind(text) => Ok((text, tok.span)),
            _ => Err(ParseError::new(
                tok.span.start,
                tok.span.end,
                "a bind expression",
                self.describe(&tok),
            )),
        }
    }
}
