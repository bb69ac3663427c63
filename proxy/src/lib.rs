//! Gatehouse: an outbound guardrail proxy for SaaS provider APIs.
//!
//! Start reading at [`pipeline`]: one request from listener to record, each stage a call into
//! the module that owns it.

pub mod admin;
pub mod balance;
pub mod body;
pub mod cli;
pub mod coarse_timer;
pub mod config;
pub mod credentials;
pub mod dashboard;
pub mod demo;
pub mod drain;
pub mod error;
pub mod headers;
pub mod identity;
pub mod logging;
pub mod metrics;
pub mod pipeline;
pub mod reload;
pub mod request_body;
pub mod request_stats;
pub mod routing;
pub mod secret;
pub mod server;
pub mod soql_cli;
pub mod soql_stage;
pub mod state;
pub mod tls;
pub mod upstream;
pub mod worker;
