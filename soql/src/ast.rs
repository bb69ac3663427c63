//! Typed SOQL syntax tree.
//!
//! Every node that a user could be pointed at carries a [`Span`] (byte offsets into the
//! source). Spans compare equal to each other so that `==` on the tree is structural:
//! `parse(print(ast)) == ast` holds even though the printed text has other offsets.

use std::fmt;

pub use crate::func::{Func, FuncKind};

/// Byte range `[start, end)` into the parsed source.
///
/// Deliberately equal to every other span (see the module comment); read `start`/`end`
/// when the position matters.
#[derive(Clone, Copy, Debug, Default, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub const fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl PartialEq for Span {
    fn eq(&self, _other: &Span) -> bool {
        true
    }
}

/// A name as written (case preserved; SOQL compares names case-insensitively).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

impl Ident {
    pub fn new(name: impl Into<String>) -> Self {
        Ident {
            name: name.into(),
            span: Span::default(),
        }
    }

    pub fn eq_ignore_case(&self, other: &str) -> bool {
        self.name.eq_ignore_ascii_case(other)
    }
}

/// A dotted field reference: `Name`, `Account.Owner.Name`, `Parent__r.Field__c`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldPath {
    pub segments: Vec<Ident>,
    pub span: Span,
}

impl FieldPath {
    /// The last segment: the field itself.
    pub fn field(&self) -> &str {
        self.segments.last().map(|s| s.name.as_str()).unwrap_or("")
    }

    pub fn dotted(&self) -> String {
        let names: Vec<&str> = self.segments.iter().map(|s| s.name.as_str()).collect();
        names.join(".")
    }
}

/// One SOQL query: the top-level statement, a child-relationship subquery or a semi-join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub select: Vec<SelectItem>,
    pub from: From,
    pub using_scope: Option<Ident>,
    pub where_clause: Option<Condition>,
    pub with: Option<WithClause>,
    pub group_by: Option<GroupBy>,
    pub having: Option<Condition>,
    pub order_by: Vec<OrderItem>,
    pub limit: Option<Count>,
    pub offset: Option<Count>,
    /// Apex-only `ALL ROWS`.
    pub all_rows: bool,
    pub for_clause: Option<ForClause>,
    pub update: Option<UpdateClause>,
    pub span: Span,
    /// Where `ALL ROWS` / `FOR ...` were written (empty when absent).
    pub all_rows_span: Span,
    pub for_span: Span,
    /// Where a `LIMIT` clause would go if one were added (before OFFSET/ALL ROWS/FOR/UPDATE).
    pub limit_insert_at: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct From {
    /// An object (top level, semi-join) or a child relationship name (subquery in SELECT).
    pub object: Ident,
    /// The parent named before a child relationship: `Account` in a subquery's
    /// `FROM Account.Contacts` (SOQL reference, "SOQL SELECT Syntax").
    pub parent: Option<Ident>,
    pub alias: Option<Ident>,
    /// Relationship paths listed after the object, each with an alias:
    /// `FROM Contact c, c.Account a` (SOQL reference, "Alias Notation").
    pub related: Vec<RelatedFrom>,
}

/// `c.Account a` in `FROM Contact c, c.Account a`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelatedFrom {
    /// Starts with the query's alias or object name (or an earlier related alias).
    pub path: FieldPath,
    pub alias: Option<Ident>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectItem {
    /// A field path, or a function call (aggregate, date function, toLabel, ...) with an alias.
    Expr {
        expr: Expr,
        alias: Option<Ident>,
    },
    Fields {
        kind: FieldsKind,
        span: Span,
    },
    SubQuery(Box<Query>),
    TypeOf(TypeOf),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldsKind {
    All,
    Standard,
    Custom,
}

impl FieldsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldsKind::All => "ALL",
            FieldsKind::Standard => "STANDARD",
            FieldsKind::Custom => "CUSTOM",
        }
    }
}

/// `TYPEOF What WHEN Account THEN Phone WHEN Opportunity THEN Amount ELSE Name END`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeOf {
    pub relationship: Ident,
    pub whens: Vec<TypeOfWhen>,
    pub else_fields: Vec<FieldPath>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeOfWhen {
    pub object: Ident,
    pub fields: Vec<FieldPath>,
}

/// A value expression: in SELECT, GROUP BY, ORDER BY, function arguments and on the left of
/// a comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Field(FieldPath),
    Call(Call),
    Literal(Literal, Span),
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::Field(p) => p.span,
            Expr::Call(c) => c.span,
            Expr::Literal(_, s) => *s,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub func: Func,
    pub args: Vec<Expr>,
    pub span: Span,
}

/// Every function SOQL knows. The printer uses the documented spelling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WithClause {
    SecurityEnforced,
    UserMode,
    SystemMode,
    /// `WITH DATA CATEGORY a AT b AND c BELOW (d, e)`.
    DataCategory(Vec<DataCategoryFilter>),
    /// `WITH UserId = '005...'` (UserProfileFeed): the string body in canonical form.
    UserId(String),
    /// `WITH RecordVisibilityContext (maxDescriptorPerRecord=100, supportsDomains=true)`.
    RecordVisibilityContext(Vec<VisibilityParam>),
}

/// One `name=value` of `WITH RecordVisibilityContext (...)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VisibilityParam {
    pub name: Ident,
    pub value: Literal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataCategoryFilter {
    pub group: Ident,
    pub op: DataCategoryOp,
    pub categories: Vec<Ident>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataCategoryOp {
    At,
    Above,
    Below,
    AboveOrBelow,
}

impl DataCategoryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            DataCategoryOp::At => "AT",
            DataCategoryOp::Above => "ABOVE",
            DataCategoryOp::Below => "BELOW",
            DataCategoryOp::AboveOrBelow => "ABOVE_OR_BELOW",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Plain(Vec<Expr>),
    Rollup(Vec<Expr>),
    Cube(Vec<Expr>),
}

impl GroupBy {
    pub fn exprs(&self) -> &[Expr] {
        match self {
            GroupBy::Plain(e) | GroupBy::Rollup(e) | GroupBy::Cube(e) => e,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderItem {
    pub expr: Expr,
    pub direction: Option<Direction>,
    pub nulls: Option<Nulls>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nulls {
    First,
    Last,
}

/// The argument of LIMIT / OFFSET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Count {
    Value(u64, Span),
    /// Apex bind (`LIMIT :n`), only in bind mode.
    Bind(String, Span),
}

impl Count {
    pub fn value(&self) -> Option<u64> {
        match self {
            Count::Value(v, _) => Some(*v),
            Count::Bind(..) => None,
        }
    }

    pub fn span(&self) -> Span {
        match self {
            Count::Value(_, s) | Count::Bind(_, s) => *s,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForClause {
    View,
    Reference,
    Update,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateClause {
    Tracking,
    Viewstat,
}

/// A WHERE/HAVING condition. Parentheses are not stored: the printer adds them around every
/// nested AND/OR/NOT, which is exactly where SOQL requires them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Two or more operands.
    And(Vec<Condition>, Span),
    /// Two or more operands.
    Or(Vec<Condition>, Span),
    Not(Box<Condition>, Span),
    Compare(Comparison),
}

impl Condition {
    pub fn span(&self) -> Span {
        match self {
            Condition::And(_, s) | Condition::Or(_, s) | Condition::Not(_, s) => *s,
            Condition::Compare(c) => c.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    pub lhs: Expr,
    pub op: CompareOp,
    pub rhs: Rhs,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    /// `!=` or `<>` (printed as `!=`).
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    In,
    NotIn,
    Includes,
    Excludes,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Like => "LIKE",
            CompareOp::In => "IN",
            CompareOp::NotIn => "NOT IN",
            CompareOp::Includes => "INCLUDES",
            CompareOp::Excludes => "EXCLUDES",
        }
    }

    /// Operators that take a parenthesised list (or subquery).
    pub fn takes_list(self) -> bool {
        matches!(
            self,
            CompareOp::In | CompareOp::NotIn | CompareOp::Includes | CompareOp::Excludes
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rhs {
    Value(Literal, Span),
    List(Vec<(Literal, Span)>, Span),
    /// Semi-join (`IN`) or anti-join (`NOT IN`).
    SubQuery(Box<Query>),
}

impl Rhs {
    pub fn span(&self) -> Span {
        match self {
            Rhs::Value(_, s) | Rhs::List(_, s) => *s,
            Rhs::SubQuery(q) => q.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Literal {
    Null,
    Bool(bool),
    /// Decimal number as written (sign and fraction kept), e.g. `-12.50`.
    Number(String),
    /// The body between the quotes in canonical escaped form (see `lexer::canonical_escape`).
    String(String),
    Date(Date),
    DateTime(DateTime),
    DateLiteral(DateLiteral),
    /// `USD5000`, `EUR12.5`.
    Currency {
        code: String,
        amount: String,
    },
    /// Apex bind (`:name`), only in bind mode.
    Bind(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// Days since 1970-01-01 (proleptic Gregorian), for range widths.
    pub fn days_since_epoch(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub date: Date,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// Fractional seconds digits as written (without the dot).
    pub fraction: Option<String>,
    pub offset: UtcOffset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UtcOffset {
    Z,
    /// Sign (+1/-1), hours, minutes.
    Offset(i8, u8, u8),
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}T{:02}:{:02}:{:02}",
            self.date, self.hour, self.minute, self.second
        )?;
        if let Some(frac) = &self.fraction {
            write!(f, ".{frac}")?;
        }
        match self.offset {
            UtcOffset::Z => write!(f, "Z"),
            UtcOffset::Offset(sign, h, m) => {
                let s = if sign < 0 { '-' } else { '+' };
                write!(f, "{s}{h:02}:{m:02}")
            }
        }
    }
}

/// A relative date literal such as `TODAY` or `LAST_N_DAYS:30`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateLiteral {
    /// Canonical (upper-case) name from [`crate::dates::DATE_LITERALS`].
    pub name: &'static str,
    /// The `:n` argument of the `_N_` forms.
    pub n: Option<u32>,
}

impl fmt::Display for DateLiteral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.n {
            Some(n) => write!(f, "{}:{n}", self.name),
            None => f.write_str(self.name),
        }
    }
}
