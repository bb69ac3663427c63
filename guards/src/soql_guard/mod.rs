//! The SOQL guard: applies the rule catalog of shared/soql.md to a query, with per-rule
//! modes (enforce / observe / off, and rewrite for missing-limit) set per connection and
//! overridden per caller, plus per-caller object and field allow-lists.
//!
//! Entry points for the proxy:
//! - [`SoqlGuard::new`] from a [`SoqlGuardConfig`] (the `[soql]` table), then
//!   [`SoqlGuard::check`] with the caller's [`CallerSoqlPolicy`] and a [`CheckContext`];
//! - [`query_from_url`] / [`queries_in_body`] to find the SOQL in requests;
//! - [`shape_key`] to cache `?explain=` plans by query shape.
//!
//! See README.md beside this file for the policy format.

mod check;
pub mod cli;
mod composite;
pub mod config;
mod selectivity;
#[cfg(test)]
mod tests;

pub use check::{CheckContext, Decision, SoqlGuard, Verdict, Violation, MAX_LISTED_PER_RULE};
pub use composite::{queries_in_body, query_from_url, EmbeddedQuery};
pub use config::{
    CallerEntry, CallerSoqlPolicy, ConfigError, ConnectionEntry, Mode, PolicyFile, RuleId,
    SoqlGuardConfig,
};

/// The cache key for explain plans: canonical SOQL with literals replaced by `?`.
/// `None` when the query does not parse.
pub fn shape_key(query: &str) -> Option<String> {
    gatehouse_soql::parse(query)
        .ok()
        .map(|q| gatehouse_soql::shape_key(&q))
}
