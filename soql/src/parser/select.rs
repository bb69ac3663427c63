//! SELECT items, TYPEOF, function calls and field paths.

use super::{trailing_error, Parser, QueryKind, MAX_CHILD_LEVELS, MAX_PARENT_HOPS};
use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::TokKind;

/// Where an expression appears; decides which functions are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    Select,
    Where,
    Having,
    GroupBy,
    OrderBy,
    Arg(Func),
}

impl Place {
    fn describe(self) -> &'static str {
        match self {
            Place::Select => "SELECT",
            Place::Where => "WHERE",
            Place::Having => "HAVING",
            Place::GroupBy => "GROUP BY",
            Place::OrderBy => "ORDER BY",
            Place::Arg(_) => "this function argument",
        }
    }
}

fn allowed(func: Func, place: Place) -> bool {
    use Place::*;
    match func.kind() {
        FuncKind::Aggregate => matches!(place, Select | Having | OrderBy | Arg(Func::Format)),
        FuncKind::Date => matches!(place, Select | Where | Having | GroupBy | OrderBy),
        FuncKind::Other => match func {
            Func::ToLabel => matches!(place, Select | Where),
            Func::ConvertCurrency => matches!(place, Select | Arg(Func::Format)),
            Func::Format => place == Select,
            Func::ConvertTimezone => matches!(place, Arg(f) if f.kind() == FuncKind::Date),
            Func::Distance => matches!(place, Select | Where | OrderBy),
            Func::Geolocation => place == Arg(Func::Distance),
            _ => false,
        },
    }
}

impl Parser<'_> {
    pub(crate) fn select_list(&mut self, kind: QueryKind) -> Result<Vec<SelectItem>, ParseError> {
        let mut items = Vec::new();
        loop {
            items.push(self.select_item(kind)?);
            if !self.eat(&TokKind::Comma) {
                break;
            }
        }
        Ok(items)
    }

    fn select_item(&mut self, kind: QueryKind) -> Result<SelectItem, ParseError> {
        const EXPECTED: &str = "a field, a function, FIELDS(...), TYPEOF or a subquery";
        let tok = self.peek().clone();
        match tok.kind {
            TokKind::LParen => {
                let level = match kind {
                    QueryKind::Top => 0,
                    QueryKind::Child(level) => level,
                    QueryKind::SemiJoin => {
                        return Err(self
                            .unexpected("a field name")
                            .with_note("a semi-join subquery selects exactly one field"))
                    }
                };
                if level >= MAX_CHILD_LEVELS {
                    return Err(self.unexpected("a field").with_note(format!(
                        "child subqueries nest at most {} levels deep",
                        MAX_CHILD_LEVELS + 1
                    )));
                }
                self.advance();
                let child_kind = QueryKind::Child(level + 1);
                let sub = self.query(child_kind)?;
                if self.peek().kind != TokKind::RParen {
                    return Err(trailing_error(self, &sub, child_kind));
                }
                self.advance();
                let mut sub = sub;
                sub.span = Span::new(tok.span.start, self.last_end());
                Ok(SelectItem::SubQuery(Box::new(sub)))
            }
            TokKind::Word => {
                let next = self.peek_at(1).kind.clone();
                let word = self.text(tok.span);
                if let Some(note) = super::sql_note(word) {
                    if !matches!(next, TokKind::Comma | TokKind::Dot | TokKind::LParen)
                        && !self.is_word_at(1, "FROM")
                    {
                        return Err(self.unexpected(EXPECTED).with_note(note));
                    }
                }
                if self.is_word("TYPEOF") && next == TokKind::Word {
                    return Ok(SelectItem::TypeOf(self.type_of()?));
                }
                if self.is_word("FIELDS") && next == TokKind::LParen {
                    return self.fields_item();
                }
                if next == TokKind::LParen {
                    let call = self.call(Place::Select)?;
                    let alias = self.alias("an alias, ',' or FROM")?;
                    return Ok(SelectItem::Expr {
                        expr: Expr::Call(call),
                        alias,
                    });
                }
                let path = self.field_path()?;
                // Plain fields take an alias only in aggregate queries; validate.rs checks
                // that once the whole query is known.
                let alias = self.alias("',' or FROM")?;
                Ok(SelectItem::Expr {
                    expr: Expr::Field(path),
                    alias,
                })
            }
            _ => Err(self.unexpected(EXPECTED)),
        }
    }

    /// An alias after a SELECT item: any word but the reserved ones. `AS x` and the like
    /// are SQL, and say so.
    fn alias(&mut self, expected: &str) -> Result<Option<Ident>, ParseError> {
        if self.peek().kind != TokKind::Word || self.is_word("FROM") {
            return Ok(None);
        }
        let word = self.text(self.peek().span);
        let followed_by_name = self.peek_at(1).kind == TokKind::Word && !self.is_word_at(1, "FROM");
        if let Some(note) = super::sql_note(word).filter(|_| followed_by_name) {
            return Err(self.unexpected(expected).with_note(note));
        }
        if super::is_alias_reserved(word) {
            let meant_as_alias =
                self.peek_at(1).kind == TokKind::Comma || self.is_word_at(1, "FROM");
            let err = self.unexpected(expected);
            return Err(if meant_as_alias {
                let word = word.to_ascii_uppercase();
                err.with_note(format!("{word} is a reserved word and cannot be an alias"))
            } else {
                err
            });
        }
        let tok = self.advance();
        Ok(Some(Ident {
            name: self.text(tok.span).to_string(),
            span: tok.span,
        }))
    }

    fn fields_item(&mut self) -> Result<SelectItem, ParseError> {
        let start = self.advance().span.start;
        self.advance();
        let kind = if self.eat_word("ALL") {
            FieldsKind::All
        } else if self.eat_word("STANDARD") {
            FieldsKind::Standard
        } else if self.eat_word("CUSTOM") {
            FieldsKind::Custom
        } else {
            return Err(self.unexpected("ALL, STANDARD or CUSTOM"));
        };
        self.expect(&TokKind::RParen, "')'")?;
        Ok(SelectItem::Fields {
            kind,
            span: Span::new(start, self.last_end()),
        })
    }

    fn type_of(&mut self) -> Result<TypeOf, ParseError> {
        let start = self.advance().span.start;
        let relationship = self.ident("a polymorphic relationship name")?;
        let mut whens = Vec::new();
        while self.eat_word("WHEN") {
            let object = self.any_word("an object name")?;
            self.expect_word("THEN")?;
            let fields = self.field_list()?;
            whens.push(TypeOfWhen { object, fields });
        }
        if whens.is_empty() {
            return Err(self.unexpected("WHEN"));
        }
        let mut else_fields = Vec::new();
        if self.eat_word("ELSE") {
            else_fields = self.field_list()?;
        }
        if !self.is_word("END") {
            let expected = if else_fields.is_empty() {
                "',', WHEN, ELSE or END"
            } else {
                "',' or END"
            };
            return Err(self.unexpected(expected));
        }
        self.advance();
        Ok(TypeOf {
            relationship,
            whens,
            else_fields,
            span: Span::new(start, self.last_end()),
        })
    }

    fn field_list(&mut self) -> Result<Vec<FieldPath>, ParseError> {
        let mut fields = Vec::new();
        loop {
            fields.push(self.field_path()?);
            if !self.eat(&TokKind::Comma) {
                break;
            }
        }
        Ok(fields)
    }

    /// A field path or a function call.
    pub(crate) fn expr(&mut self, place: Place) -> Result<Expr, ParseError> {
        if self.peek().kind == TokKind::Word && self.peek_at(1).kind == TokKind::LParen {
            return Ok(Expr::Call(self.call(place)?));
        }
        Ok(Expr::Field(self.field_path()?))
    }

    pub(crate) fn field_path(&mut self) -> Result<FieldPath, ParseError> {
        let first = if self.peek_at(1).kind == TokKind::Dot {
            self.any_word("a field name")?
        } else {
            self.ident("a field name")?
        };
        let start = first.span.start;
        let mut segments = vec![first];
        while self.peek().kind == TokKind::Dot {
            self.advance();
            // `Account. FROM Contact`: a dangling dot, not a field named FROM.
            if self.is_word("FROM") {
                return Err(self.unexpected("a field or relationship name after '.'"));
            }
            segments.push(self.any_word("a field or relationship name after '.'")?);
            // Alias or object prefix + the hops + the field itself.
            if segments.len() > MAX_PARENT_HOPS + 2 {
                let span = Span::new(start, self.last_end());
                return Err(self.error_at(
                    span,
                    "a shorter relationship path",
                    "SOQL follows at most 5 parent relationships",
                ));
            }
        }
        Ok(FieldPath {
            segments,
            span: Span::new(start, self.last_end()),
        })
    }

    pub(crate) fn call(&mut self, place: Place) -> Result<Call, ParseError> {
        let name_tok = self.advance();
        let name = self.text(name_tok.span);
        let Some(func) = Func::from_name(name) else {
            let note = super::sql_note(name).unwrap_or("this is not a SOQL function");
            return Err(self.error_at(name_tok.span, "a SOQL function", note));
        };
        if !allowed(func, place) {
            return Err(self.error_at(
                name_tok.span,
                "a field",
                &format!("{} is not allowed in {}", func.as_str(), place.describe()),
            ));
        }
        self.enter()?;
        self.advance();
        let mut args = Vec::new();
        match func {
            Func::Count if self.peek().kind == TokKind::RParen => {}
            Func::Format
            | Func::CalendarMonth
            | Func::CalendarQuarter
            | Func::CalendarYear
            | Func::DayInMonth
            | Func::DayInWeek
            | Func::DayInYear
            | Func::DayOnly
            | Func::FiscalMonth
            | Func::FiscalQuarter
            | Func::FiscalYear
            | Func::HourInDay
            | Func::WeekInMonth
            | Func::WeekInYear => args.push(self.expr(Place::Arg(func))?),
            Func::Distance => {
                args.push(Expr::Field(self.field_path()?));
                self.expect(&TokKind::Comma, "','")?;
                args.push(self.expr(Place::Arg(func))?);
                self.expect(&TokKind::Comma, "','")?;
                let tok = self.peek().clone();
                match &tok.kind {
                    TokKind::Str(unit) if unit == "mi" || unit == "km" => {
                        self.advance();
                        args.push(Expr::Literal(Literal::String(unit.clone()), tok.span));
                    }
                    _ => return Err(self.unexpected("the unit 'mi' or 'km'")),
                }
            }
            Func::Geolocation => {
                for i in 0..2 {
                    if i == 1 {
                        self.expect(&TokKind::Comma, "','")?;
                    }
                    let tok = self.peek().clone();
                    let lit = match tok.kind {
                        TokKind::Number => Literal::Number(self.text(tok.span).to_string()),
                        TokKind::Bind(_) if self.options.apex => Literal::Bind(self.bind()?.0),
                        _ => return Err(self.unexpected("a latitude or longitude number")),
                    };
                    if matches!(lit, Literal::Number(_)) {
                        self.advance();
                    }
                    args.push(Expr::Literal(
                        lit,
                        Span::new(tok.span.start, self.last_end()),
                    ));
                }
            }
            _ => args.push(Expr::Field(self.field_path()?)),
        }
        if self.peek().kind != TokKind::RParen {
            return Err(self.unexpected("')'"));
        }
        self.advance();
        self.leave();
        Ok(Call {
            func,
            args,
            span: Span::new(name_tok.span.start, self.last_end()),
        })
    }
}
