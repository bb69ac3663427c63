//! Recursive-descent parser: the statement and its clauses. Select items live in
//! `select.rs`, conditions and literals in `condition.rs`, semantic checks in `validate.rs`.

mod clauses;
mod condition;
mod select;
pub(crate) mod validate;

use crate::ast::*;
use crate::error::{quote, ParseError};
use crate::lexer::{tokenize, TokKind, Token};

/// How deeply parentheses, functions and subqueries may nest before the parser gives up
/// (keeps the recursion, and so the stack, bounded on hostile input).
pub const MAX_DEPTH: usize = 48;

/// Child-relationship subqueries may nest this many levels below the top query (API 58+).
pub const MAX_CHILD_LEVELS: usize = 4;

/// Relationship traversal limit for parent paths (`A.B.C.D.E.Name`).
pub const MAX_PARENT_HOPS: usize = 5;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Accept Apex-only syntax: `:bind` values and `ALL ROWS`.
    pub apex: bool,
}

/// Parses one SOQL statement (API mode).
pub fn parse(src: &str) -> Result<Query, ParseError> {
    parse_with(src, ParseOptions::default())
}

pub fn parse_with(src: &str, options: ParseOptions) -> Result<Query, ParseError> {
    let toks = tokenize(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        options,
        depth: 0,
        semi_joins: Vec::new(),
    };
    let q = p.query(QueryKind::Top)?;
    if p.peek().kind != TokKind::Eof {
        return Err(trailing_error(&p, &q, QueryKind::Top));
    }
    Ok(q)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueryKind {
    Top,
    /// Child-relationship subquery in SELECT, with its nesting level (1 = child of top).
    Child(usize),
    SemiJoin,
}

/// The SOQL keywords that "can't be used as alias names" (SOQL reference, "Alias
/// Notation"). Any other word, `distinct` or `max` included, can alias a SELECT item.
pub(crate) const ALIAS_RESERVED: &[&str] = &[
    "AND", "ASC", "DESC", "EXCLUDES", "FIRST", "FROM", "GROUP", "HAVING", "IN", "INCLUDES", "LAST",
    "LIKE", "LIMIT", "NOT", "NULL", "NULLS", "OR", "SELECT", "USING", "WHERE", "WITH",
];

pub(crate) fn is_alias_reserved(word: &str) -> bool {
    ALIAS_RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

/// Words that cannot name a field, an object alias or a scope: Salesforce's reserved list
/// plus the clause keywords that would make `FROM Account <word>` ambiguous.
pub(crate) const RESERVED: &[&str] = &[
    "AND", "ASC", "DESC", "EXCLUDES", "FIRST", "FROM", "GROUP", "HAVING", "IN", "INCLUDES", "LAST",
    "LIKE", "LIMIT", "NOT", "NULL", "NULLS", "OR", "SELECT", "WHERE", "WITH", "ORDER", "OFFSET",
    "USING", "FOR", "UPDATE", "TYPEOF", "WHEN", "THEN", "ELSE", "END", "TRUE", "FALSE",
];

const CLAUSE_ORDER: &str =
    "SELECT, FROM, USING SCOPE, WHERE, WITH, GROUP BY, HAVING, ORDER BY, LIMIT, OFFSET, FOR, UPDATE";

/// SQL words that people (and generators) put into SOQL, with the SOQL way to say it.
const SQL_WORDS: &[(&str, &str)] = &[
    ("JOIN", JOIN_NOTE),
    ("INNER", JOIN_NOTE),
    ("LEFT", JOIN_NOTE),
    ("RIGHT", JOIN_NOTE),
    ("OUTER", JOIN_NOTE),
    ("ON", JOIN_NOTE),
    ("DISTINCT", "SOQL has no DISTINCT; use GROUP BY"),
    (
        "AS",
        "SOQL has no AS; write the alias directly after the aggregate",
    ),
    ("TOP", "SOQL has no TOP; use LIMIT"),
    (
        "BETWEEN",
        "SOQL has no BETWEEN; use field >= a AND field <= b",
    ),
    ("IS", "SOQL has no IS NULL; use = null or != null"),
    ("UNION", SET_NOTE),
    ("INTERSECT", SET_NOTE),
    ("EXCEPT", SET_NOTE),
    ("CASE", "SOQL has no CASE expressions"),
    (
        "EXISTS",
        "SOQL has no EXISTS; use a semi-join: Id IN (SELECT ...)",
    ),
    ("ILIKE", "use LIKE; it is case-insensitive in SOQL"),
    ("INSERT", WRITE_NOTE),
    ("DELETE", WRITE_NOTE),
    ("MERGE", WRITE_NOTE),
];
const JOIN_NOTE: &str =
    "SOQL has no JOIN; use relationship paths (Account.Name) or a child subquery";
const SET_NOTE: &str = "SOQL has no set operators; run separate queries";
const WRITE_NOTE: &str = "SOQL only reads; use the REST sObject endpoints to write";

/// The SOQL way to say an SQL word. Runs for every select item, so it compares in place
/// rather than upper-casing a copy.
pub(crate) fn sql_note(word: &str) -> Option<&'static str> {
    if word.len() > 9 {
        return None;
    }
    SQL_WORDS
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(word))
        .map(|(_, note)| *note)
}

pub(crate) struct Parser<'a> {
    pub(crate) src: &'a str,
    pub(crate) toks: Vec<Token>,
    pub(crate) pos: usize,
    pub(crate) options: ParseOptions,
    pub(crate) depth: usize,
    /// Spans of the semi-/anti-join subqueries parsed so far. Conditions compare its length
    /// before and after a group to learn whether the group holds one, instead of walking
    /// the group again at every level of nesting.
    pub(crate) semi_joins: Vec<Span>,
}

impl<'a> Parser<'a> {
    pub(crate) fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    pub(crate) fn peek_at(&self, n: usize) -> &Token {
        let i = (self.pos + n).min(self.toks.len().saturating_sub(1));
        // tokenize always ends with Eof, so the vector is never empty.
        &self.toks[i]
    }

    /// Consumes the current token and returns it. Its kind is moved out, not cloned (a
    /// string literal is not copied twice): the parser never looks back at a token it has
    /// consumed, except for its span.
    pub(crate) fn advance(&mut self) -> Token {
        let last = self.toks.len() - 1;
        let i = self.pos.min(last);
        let span = self.toks[i].span;
        if self.pos < last {
            self.pos += 1;
            let kind = std::mem::replace(&mut self.toks[i].kind, TokKind::Eof);
            Token { kind, span }
        } else {
            Token {
                kind: TokKind::Eof,
                span,
            }
        }
    }

    pub(crate) fn text(&self, span: Span) -> &'a str {
        self.src.get(span.start..span.end).unwrap_or("")
    }

    /// The previous token's end, for spans of constructs just parsed.
    pub(crate) fn last_end(&self) -> usize {
        if self.pos == 0 {
            0
        } else {
            self.toks[self.pos - 1].span.end
        }
    }

    pub(crate) fn is_word_at(&self, n: usize, kw: &str) -> bool {
        let t = self.peek_at(n);
        t.kind == TokKind::Word && self.text(t.span).eq_ignore_ascii_case(kw)
    }

    pub(crate) fn is_word(&self, kw: &str) -> bool {
        self.is_word_at(0, kw)
    }

    pub(crate) fn eat_word(&mut self, kw: &str) -> bool {
        if self.is_word(kw) {
            self.advance();
            true
        } else {
            false
        }
    }

    pub(crate) fn expect_word(&mut self, kw: &str) -> Result<Span, ParseError> {
        if self.is_word(kw) {
            Ok(self.advance().span)
        } else {
            Err(self.unexpected(kw))
        }
    }

    pub(crate) fn eat(&mut self, kind: &TokKind) -> bool {
        if &self.peek().kind == kind {
            self.advance();
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, kind: &TokKind, what: &str) -> Result<Span, ParseError> {
        if &self.peek().kind == kind {
            Ok(self.advance().span)
        } else {
            Err(self.unexpected(what))
        }
    }

    pub(crate) fn describe(&self, tok: &Token) -> String {
        match tok.kind {
            TokKind::Eof => "end of query".to_string(),
            _ => quote(self.text(tok.span)),
        }
    }

    /// "expected X, found <current token>", with a note for SQL-isms.
    pub(crate) fn unexpected(&self, expected: &str) -> ParseError {
        let tok = self.peek();
        let err = ParseError::new(tok.span.start, tok.span.end, expected, self.describe(tok));
        if tok.kind == TokKind::Word {
            if let Some(note) = sql_note(self.text(tok.span)) {
                return err.with_note(note);
            }
        }
        err
    }

    pub(crate) fn error_at(&self, span: Span, expected: &str, note: &str) -> ParseError {
        ParseError::new(span.start, span.end, expected, quote(self.text(span))).with_note(note)
    }

    pub(crate) fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let tok = self.peek();
            return Err(ParseError::new(
                tok.span.start,
                tok.span.end,
                "less deeply nested query",
                self.describe(tok),
            )
            .with_note(format!("nesting deeper than {MAX_DEPTH} levels is refused")));
        }
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// A plain name (field, alias, object): any word that is not reserved.
    pub(crate) fn ident(&mut self, expected: &str) -> Result<Ident, ParseError> {
        let tok = self.peek();
        if tok.kind == TokKind::Word {
            let text = self.text(tok.span);
            if !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(text)) {
                let span = tok.span;
                self.advance();
                return Ok(Ident {
                    name: text.to_string(),
                    span,
                });
            }
        }
        Err(self.unexpected(expected))
    }

    /// Any word, reserved or not (object names such as `Order` and `Group`).
    pub(crate) fn any_word(&mut self, expected: &str) -> Result<Ident, ParseError> {
        let tok = self.peek();
        if tok.kind == TokKind::Word {
            let span = tok.span;
            self.advance();
            return Ok(Ident {
                name: self.text(span).to_string(),
                span,
            });
        }
        Err(self.unexpected(expected))
    }

    pub(crate) fn query(&mut self, kind: QueryKind) -> Result<Query, ParseError> {
        self.enter()?;
        let start = self.peek().span.start;
        self.expect_word("SELECT")?;
        let select = self.select_list(kind)?;
        if !self.is_word("FROM") {
            return Err(self.unexpected("',' or FROM"));
        }
        self.advance();
        let from = self.parse_from(kind)?;
        let mut q = Query {
            select,
            from,
            using_scope: None,
            where_clause: None,
            with: None,
            group_by: None,
            having: None,
            order_by: Vec::new(),
            limit: None,
            offset: None,
            all_rows: false,
            for_clause: None,
            update: None,
            span: Span::new(start, start),
            all_rows_span: Span::default(),
            for_span: Span::default(),
            limit_insert_at: Span::default(),
        };
        if self.is_word("USING") {
            self.advance();
            self.expect_word("SCOPE")?;
            q.using_scope = Some(self.scope()?);
        }
        if self.eat_word("WHERE") {
            q.where_clause = Some(self.where_clause(kind)?);
        }
        if kind == QueryKind::Top && self.eat_word("WITH") {
            q.with = Some(self.with_clause()?);
        }
        if self.is_word("GROUP") && self.is_word_at(1, "BY") {
            self.advance();
            self.advance();
            q.group_by = Some(self.group_by()?);
        }
        if self.is_word("HAVING") {
            if q.group_by.is_none() {
                return Err(self
                    .unexpected("ORDER BY, LIMIT or the end of the query")
                    .with_note("HAVING needs a GROUP BY"));
            }
            self.advance();
            q.having = Some(self.having_clause()?);
        }
        if self.is_word("ORDER") && self.is_word_at(1, "BY") {
            self.advance();
            self.advance();
            q.order_by = self.order_by()?;
        }
        if self.eat_word("LIMIT") {
            q.limit = Some(self.count("a number after LIMIT")?);
        }
        q.limit_insert_at = Span::new(self.peek().span.start, self.peek().span.start);
        if self.eat_word("OFFSET") {
            q.offset = Some(self.count("a number after OFFSET")?);
        }
        if kind == QueryKind::Top && self.is_word("ALL") && self.is_word_at(1, "ROWS") {
            if !self.options.apex {
                return Err(self
                    .unexpected("FOR, UPDATE or the end of the query")
                    .with_note("ALL ROWS is Apex-only; use the queryAll endpoint instead"));
            }
            let first = self.advance().span;
            let second = self.advance().span;
            q.all_rows = true;
            q.all_rows_span = first.to(second);
        }
        if kind == QueryKind::Top && self.is_word("FOR") {
            let for_start = self.advance().span.start;
            q.for_clause = Some(if self.eat_word("VIEW") {
                ForClause::View
            } else if self.eat_word("REFERENCE") {
                ForClause::Reference
            } else if self.eat_word("UPDATE") {
                ForClause::Update
            } else {
                return Err(self.unexpected("VIEW, REFERENCE or UPDATE"));
            });
            q.for_span = Span::new(for_start, self.last_end());
        }
        if kind == QueryKind::Top && self.eat_word("UPDATE") {
            q.update = Some(if self.eat_word("TRACKING") {
                UpdateClause::Tracking
            } else if self.eat_word("VIEWSTAT") {
                UpdateClause::Viewstat
            } else {
                return Err(self.unexpected("TRACKING or VIEWSTAT"));
            });
        }
        q.span = Span::new(start, self.last_end());
        if q.offset.is_none() && !q.all_rows && q.for_clause.is_none() && q.update.is_none() {
            q.limit_insert_at = Span::new(q.span.end, q.span.end);
        }
        self.validate_query(&q, kind)?;
        self.leave();
        Ok(q)
    }

    fn parse_from(&mut self, kind: QueryKind) -> Result<From, ParseError> {
        let expected = match kind {
            QueryKind::Child(_) => "a child relationship name",
            _ => "an object name",
        };
        let mut object = self.any_word(expected)?;
        let mut parent = None;
        if self.peek().kind == TokKind::Dot {
            // `FROM Account.Contacts`: a child relationship qualified with its parent.
            if !matches!(kind, QueryKind::Child(_)) {
                return Err(self
                    .unexpected("an alias, ',', a clause keyword or the end of the query")
                    .with_note("FROM takes an object name; relationship paths follow a comma: FROM Contact c, c.Account a"));
            }
            self.advance();
            let relationship = self.any_word("a child relationship name after '.'")?;
            parent = Some(std::mem::replace(&mut object, relationship));
            if self.peek().kind == TokKind::Dot {
                return Err(self
                    .unexpected("an alias, a clause keyword or ')'")
                    .with_note("a subquery's FROM is a child relationship, optionally after its parent: Account.Contacts"));
            }
        }
        let alias = self.object_alias()?;
        let mut related = Vec::new();
        if kind == QueryKind::Top {
            while self.eat(&TokKind::Comma) {
                let path = self.field_path()?;
                let known = |name: &str| {
                    alias
                        .as_ref()
                        .is_some_and(|a: &Ident| a.eq_ignore_case(name))
                        || object.eq_ignore_case(name)
                        || related.iter().any(|r: &RelatedFrom| {
                            r.alias.as_ref().is_some_and(|a| a.eq_ignore_case(name))
                        })
                };
                let starts_known = path.segments.len() > 1
                    && path.segments.first().is_some_and(|s| known(&s.name));
                if !starts_known {
                    return Err(self.error_at(
                        path.span,
                        "a relationship path from the queried object, such as c.Account",
                        "after a comma, FROM lists relationship paths that start with the object or its alias: FROM Contact c, c.Account a",
                    ));
                }
                let alias = self.object_alias()?;
                related.push(RelatedFrom { path, alias });
            }
        }
        Ok(From {
            object,
            parent,
            alias,
            related,
        })
    }

    /// An alias after an object or relationship path in FROM, when the next word is not
    /// a clause keyword.
    fn object_alias(&mut self) -> Result<Option<Ident>, ParseError> {
        if self.peek().kind != TokKind::Word {
            return Ok(None);
        }
        let word = self.text(self.peek().span);
        let clause_word = RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
            || word.eq_ignore_ascii_case("ALL");
        if clause_word || sql_note(word).is_some() {
            return Ok(None);
        }
        Ok(Some(self.ident("an alias")?))
    }
}

/// What could still follow a finished query, for the "expected" part of an error.
fn clauses_after(q: &Query, kind: QueryKind) -> String {
    let mut rest: Vec<&str> = Vec::new();
    let top = kind == QueryKind::Top;
    let stage = if q.update.is_some() {
        12
    } else if q.for_clause.is_some() {
        11
    } else if q.all_rows {
        10
    } else if q.offset.is_some() {
        9
    } else if q.limit.is_some() {
        8
    } else if !q.order_by.is_empty() {
        7
    } else if q.having.is_some() {
        6
    } else if q.group_by.is_some() {
        5
    } else if q.with.is_some() {
        4
    } else if q.where_clause.is_some() {
        3
    } else if q.using_scope.is_some() {
        2
    } else {
        1
    };
    let all: [(usize, &str, bool); 10] = [
        (2, "USING SCOPE", true),
        (3, "WHERE", true),
        (4, "WITH", top),
        (5, "GROUP BY", true),
        (6, "HAVING", q.group_by.is_some()),
        (7, "ORDER BY", true),
        (8, "LIMIT", true),
        (9, "OFFSET", true),
        (11, "FOR", top),
        (12, "UPDATE", top),
    ];
    for (n, name, ok) in all {
        if n > stage && ok {
            rest.push(name);
        }
    }
    let last = if top { "the end of the query" } else { "')'" };
    if rest.is_empty() {
        last.to_string()
    } else {
        format!("{} or {last}", rest.join(", "))
    }
}

impl Parser<'_> {
    /// Error for a clause keyword met out of order.
    pub(crate) fn out_of_order_note(&self) -> Option<String> {
        let tok = self.peek();
        if tok.kind != TokKind::Word {
            return None;
        }
        let w = self.text(tok.span).to_ascii_uppercase();
        matches!(
            w.as_str(),
            "SELECT"
                | "FROM"
                | "USING"
                | "WHERE"
                | "WITH"
                | "GROUP"
                | "HAVING"
                | "ORDER"
                | "LIMIT"
                | "OFFSET"
                | "FOR"
                | "UPDATE"
        )
        .then(|| format!("clauses must come in this order: {CLAUSE_ORDER}"))
    }
}

pub(crate) fn trailing_error(p: &Parser<'_>, q: &Query, kind: QueryKind) -> ParseError {
    let err = p.unexpected(&clauses_after(q, kind));
    match p.out_of_order_note() {
        Some(note) if err.note.is_none() => err.with_note(note),
        _ => err,
    }
}
