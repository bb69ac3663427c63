//! Gatehouse's shared vocabulary, with no I/O: the error taxonomy every failure is classified
//! into ([`Category`]), and the canonical CRM and ATS models of the unified API ([`Model`]),
//! with their JSON Schemas ([`schema::record_schemas`]). The adapters map provider answers
//! into these; the proxy serves them.

pub mod category;
pub mod model;
pub mod record;
pub mod schema;

pub use category::Category;
pub use model::{Family, Model};
pub use record::{Fields, Record};
