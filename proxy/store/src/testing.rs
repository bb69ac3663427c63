//! Helpers for test suites that run against the real PostgreSQL (127.0.0.1:5432, db `test`, or
//! `GATEHOUSE_TEST_PG`). Built only for this crate's tests and with the `testing` feature, which
//! the proxy enables for its own tests only.

use crate::{Secret, StoreConfig};

/// The PostgreSQL the tests use.
pub fn pg_url() -> String {
    std::env::var("GATEHOUSE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema per call, so tests run in parallel without seeing each other's rows.
pub fn pg_config() -> StoreConfig {
    StoreConfig {
        url: Some(Secret::new(pg_url())),
        schema: Some(format!("gh_test_{}", uuid_like())),
        ..StoreConfig::default()
    }
}

/// 128 random bits as hex: unique enough for a schema name.
fn uuid_like() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}
