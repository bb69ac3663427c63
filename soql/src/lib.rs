//! SOQL for Gatehouse: lexer, recursive-descent parser into a typed AST with byte spans,
//! canonical printer, and static analysis (objects and fields reached, filter
//! classification, selectivity over an index catalog). No I/O.
//!
//! The grammar and the strictness rules follow `shared/soql.md`: mixed AND/OR without
//! parentheses, `AND NOT (...)`, impossible dates, comments and SQL-only syntax are
//! errors, and Apex-only syntax (`:bind`, `ALL ROWS`) needs [`ParseOptions::apex`].
//!
//! ```
//! let q = gatehouse_soql::parse("select id from account where name like 'Acme%' limit 5").unwrap();
//! assert_eq!(gatehouse_soql::print(&q), "SELECT id FROM account WHERE name LIKE 'Acme%' LIMIT 5");
//! ```

pub mod analysis;
pub mod ast;
pub mod catalog;
pub mod dates;
mod error;
mod func;
pub mod lexer;
mod parser;
mod printer;

pub use analysis::{analyze, is_aggregate_query, Analysis, SelectivityOptions};
pub use ast::Query;
pub use catalog::{FieldTraits, IndexCatalog, IndexKind};
pub use error::ParseError;
pub use parser::{parse, parse_with, ParseOptions, MAX_CHILD_LEVELS, MAX_DEPTH, MAX_PARENT_HOPS};
pub use printer::{print, print_expr, print_literal, shape_key};

pub(crate) use parser::validate::is_aggregate as parser_is_aggregate;
