//! A small SOQL subset for the Salesforce simulator (kept standalone on purpose):
//! `SELECT f1, f2 | COUNT() FROM Obj [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ..]
//! [LIMIT n] [OFFSET n]`, where `cond` is comparisons (`= != <> < <= > >= LIKE IN NOT IN`) joined
//! by AND or OR (mixing needs parentheses, as in SOQL), with `NOT` and parentheses.
//! Literals: strings, numbers, true/false/null, dates, datetimes, TODAY, YESTERDAY,
//! LAST_N_DAYS:n, NEXT_N_DAYS:n. Anything else is `MALFORMED_QUERY`.

use crate::data::parse_datetime;

#[derive(Debug)]
pub(crate) struct SoqlError {
    pub code: &'static str,
    pub message: String,
}

fn malformed(query: &str, col: usize, msg: impl Into<String>) -> SoqlError {
    let caret = format!("{}^", " ".repeat(col));
    SoqlError {
        code: "MALFORMED_QUERY",
        message: format!(
            "\n{query}\n{caret}\nERROR at Row:1:Column:{}\n{}",
            col + 1,
            msg.into()
        ),
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Sel {
    Field(String),
    Count,
}

#[derive(Debug, Clone)]
pub(crate) struct OrderKey {
    pub field: String,
    pub asc: bool,
    pub nulls_last: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
}

#[derive(Debug, Clone)]
pub(crate) enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    DateTime(i64),
    Date(i64),
    /// A date function: [start, end) in epoch seconds.
    Range(i64, i64),
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp(String, Op, Lit),
    In(String, Vec<Lit>, bool),
}

#[derive(Debug, Clone)]
pub(crate) struct Query {
    pub fields: Vec<Sel>,
    pub object: String,
    pub filter: Option<Expr>,
    pub order: Vec<OrderKey>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(f64),
    DateLit(String),
    Sym(&'static str),
}

fn tokenize(q: &str) -> Result<Vec<(Tok, usize)>, SoqlError> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(malformed(
                            q,
                            start,
                            "line 1:0 mismatched character '<EOF>' expecting '''",
                        ))
                    }
                    Some('\\') => {
                        let e = chars.get(i + 1).copied().unwrap_or('\\');
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        });
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push((Tok::Str(s), start));
            continue;
        }
        if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let mut j = i + 1;
            while j < chars.len()
                && (chars[j].is_ascii_alphanumeric() || matches!(chars[j], '.' | ':' | '-' | '+'))
            {
                j += 1;
            }
            let text: String = chars[i..j].iter().collect();
            if text.len() >= 10 && text.as_bytes().get(4) == Some(&b'-') {
                out.push((Tok::DateLit(text), start));
            } else {
                let n: f64 = text
                    .parse()
                    .map_err(|_| malformed(q, start, format!("unexpected token: '{text}'")))?;
                out.push((Tok::Num(n), start));
            }
            i = j;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let mut j = i + 1;
            while j < chars.len() && (chars[j].is_alphanumeric() || matches!(chars[j], '_' | '.')) {
                j += 1;
            }
            // Date functions with an argument: LAST_N_DAYS:30
            if chars.get(j) == Some(&':') && chars.get(j + 1).is_some_and(|d| d.is_ascii_digit()) {
                j += 1;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
            }
            out.push((Tok::Word(chars[i..j].iter().collect()), start));
            i = j;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let sym = match two.as_str() {
            "!=" => Some("!="),
            "<>" => Some("!="),
            "<=" => Some("<="),
            ">=" => Some(">="),
            _ => None,
        };
        if let Some(s) = sym {
            out.push((Tok::Sym(s), start));
            i += 2;
            continue;
        }
        let one = match c {
            ',' => ",",
            '(' => "(",
            ')' => ")",
            '=' => "=",
            '<' => "<",
            '>' => ">",
            _ => return Err(malformed(q, start, format!("unexpected token: '{c}'"))),
        };
        out.push((Tok::Sym(one), start));
        i += 1;
    }
    Ok(out)
}

struct Parser<'a> {
    q: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn col(&self) -> usize {
        self.toks
            .get(self.pos)
            .map(|(_, c)| *c)
            .unwrap_or(self.q.len())
    }

    fn err(&self) -> SoqlError {
        match self.peek() {
            Some(t) => malformed(
                self.q,
                self.col(),
                format!("unexpected token: '{}'", tok_text(t)),
            ),
            None => malformed(self.q, self.col(), "unexpected token: '<EOF>'"),
        }
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn kw(&mut self, kw: &str) -> Result<(), SoqlError> {
        if self.is_kw(kw) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }

    fn sym(&mut self, s: &str) -> Result<(), SoqlError> {
        if matches!(self.peek(), Some(Tok::Sym(x)) if *x == s) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }

    fn ident(&mut self) -> Result<String, SoqlError> {
        match self.peek() {
            Some(Tok::Word(w)) if !is_reserved(w) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.err()),
        }
    }

    fn uint(&mut self) -> Result<usize, SoqlError> {
        match self.peek() {
            Some(Tok::Num(n)) if *n >= 0.0 && n.fract() == 0.0 => {
                let n = *n as usize;
                self.pos += 1;
                Ok(n)
            }
            _ => Err(self.err()),
        }
    }

    fn query(&mut self) -> Result<Query, SoqlError> {
        self.kw("SELECT")?;
        let mut fields = Vec::new();
        loop {
            if self.is_kw("COUNT") {
                self.pos += 1;
                self.sym("(")?;
                self.sym(")")?;
                fields.push(Sel::Count);
            } else {
                fields.push(Sel::Field(self.ident()?));
            }
            if matches!(self.peek(), Some(Tok::Sym(","))) {
                self.pos += 1;
                continue;
            }
            break;
        }
        self.kw("FROM")?;
        let object = self.ident()?;
        let filter = if self.is_kw("WHERE") {
            self.pos += 1;
            Some(self.expr()?)
        } else {
            None
        };
        let mut order = Vec::new();
        if self.is_kw("ORDER") {
            self.pos += 1;
            self.kw("BY")?;
            loop {
                let field = self.ident()?;
                let mut asc = true;
                if self.is_kw("ASC") {
                    self.pos += 1;
                } else if self.is_kw("DESC") {
                    self.pos += 1;
                    asc = false;
                }
                let mut nulls_last = false;
                if self.is_kw("NULLS") {
                    self.pos += 1;
                    if self.is_kw("LAST") {
                        nulls_last = true;
                        self.pos += 1;
                    } else {
                        self.kw("FIRST")?;
                    }
                }
                order.push(OrderKey {
                    field,
                    asc,
                    nulls_last,
                });
                if matches!(self.peek(), Some(Tok::Sym(","))) {
                    self.pos += 1;
                    continue;
                }
                break;
            }
        }
        let mut limit = None;
        if self.is_kw("LIMIT") {
            self.pos += 1;
            limit = Some(self.uint()?);
        }
        let mut offset = None;
        if self.is_kw("OFFSET") {
            self.pos += 1;
            offset = Some(self.uint()?);
        }
        if self.peek().is_some() {
            return Err(self.err());
        }
        Ok(Query {
            fields,
            object,
            filter,
            order,
            limit,
            offset,
        })
    }

    /// A run of terms joined by one connective; mixing AND and OR needs parentheses.
    fn expr(&mut self) -> Result<Expr, SoqlError> {
        let first = self.unary()?;
        let mut terms = vec![first];
        let mut conn: Option<bool> = None; // true = AND
        loop {
            let is_and = if self.is_kw("AND") {
                true
            } else if self.is_kw("OR") {
                false
            } else {
                break;
            };
            if conn.is_some_and(|c| c != is_and) {
                return Err(self.err());
            }
            conn = Some(is_and);
            self.pos += 1;
            terms.push(self.unary()?);
        }
        Ok(match (conn, terms.len()) {
            (_, 1) => terms.remove(0),
            (Some(true), _) => Expr::And(terms),
            _ => Expr::Or(terms),
        })
    }

    fn unary(&mut self) -> Result<Expr, SoqlError> {
        if self.is_kw("NOT") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if matches!(self.peek(), Some(Tok::Sym("("))) {
            self.pos += 1;
            let e = self.expr()?;
            self.sym(")")?;
            return Ok(e);
        }
        let field = self.ident()?;
        if self.is_kw("NOT") {
            self.pos += 1;
            self.kw("IN")?;
            return Ok(Expr::In(field, self.list()?, true));
        }
        if self.is_kw("IN") {
            self.pos += 1;
            return Ok(Expr::In(field, self.list()?, false));
        }
        let op = match self.peek() {
            Some(Tok::Sym("=")) => Op::Eq,
            Some(Tok::Sym("!=")) => Op::Ne,
            Some(Tok::Sym("<")) => Op::Lt,
            Some(Tok::Sym("<=")) => Op::Le,
            Some(Tok::Sym(">")) => Op::Gt,
            Some(Tok::Sym(">=")) => Op::Ge,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("LIKE") => Op::Like,
            _ => return Err(self.err()),
        };
        self.pos += 1;
        Ok(Expr::Cmp(field, op, self.literal()?))
    }

    fn list(&mut self) -> Result<Vec<Lit>, SoqlError> {
        self.sym("(")?;
        let mut v = vec![self.literal()?];
        while matches!(self.peek(), Some(Tok::Sym(","))) {
            self.pos += 1;
            v.push(self.literal()?);
        }
        self.sym(")")?;
        Ok(v)
    }

    fn literal(&mut self) -> Result<Lit, SoqlError> {
        let lit = match self.peek() {
            Some(Tok::Str(s)) => Lit::Str(s.clone()),
            Some(Tok::Num(n)) => Lit::Num(*n),
            Some(Tok::DateLit(d)) => {
                let secs = parse_datetime(d).ok_or_else(|| {
                    malformed(
                        self.q,
                        self.col(),
                        format!(
                            "line 1:{} no viable alternative at character '{d}'",
                            self.col()
                        ),
                    )
                })?;
                if d.len() == 10 {
                    Lit::Date(secs)
                } else {
                    Lit::DateTime(secs)
                }
            }
            Some(Tok::Word(w)) => match date_function(w) {
                Some(l) => l,
                None => return Err(self.err()),
            },
            _ => return Err(self.err()),
        };
        self.pos += 1;
        Ok(lit)
    }
}

fn date_function(w: &str) -> Option<Lit> {
    const DAY: i64 = 86_400;
    let upper = w.to_ascii_uppercase();
    let now = (crate::http::now_ms() / 1000) as i64;
    let today = now - now.rem_euclid(DAY);
    match upper.as_str() {
        "TRUE" => return Some(Lit::Bool(true)),
        "FALSE" => return Some(Lit::Bool(false)),
        "NULL" => return Some(Lit::Null),
        "TODAY" => return Some(Lit::Range(today, today + DAY)),
        "YESTERDAY" => return Some(Lit::Range(today - DAY, today)),
        "TOMORROW" => return Some(Lit::Range(today + DAY, today + 2 * DAY)),
        _ => {}
    }
    let (name, n) = upper.split_once(':')?;
    let n: i64 = n.parse().ok()?;
    match name {
        "LAST_N_DAYS" => Some(Lit::Range(today - n * DAY, today + DAY)),
        "NEXT_N_DAYS" => Some(Lit::Range(today + DAY, today + (n + 1) * DAY)),
        _ => None,
    }
}

fn is_reserved(w: &str) -> bool {
    const RESERVED: &[&str] = &[
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "LIMIT",
        "OFFSET", "ASC", "DESC", "NULLS", "NULL", "TRUE", "FALSE", "GROUP", "HAVING",
    ];
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(w))
}

fn tok_text(t: &Tok) -> String {
    match t {
        Tok::Word(w) | Tok::DateLit(w) => w.clone(),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Num(n) => n.to_string(),
        Tok::Sym(s) => (*s).to_owned(),
    }
}

/// Parses one query (syntax only; see [`check`] for names and types).
pub(crate) fn parse(q: &str) -> Result<Query, SoqlError> {
    let toks = tokenize(q)?;
    Parser { q, toks, pos: 0 }.query()
}

pub(crate) use crate::soql_eval::{check, matches, sort};
