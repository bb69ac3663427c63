//! Gatehouse: an outbound guardrail proxy for SaaS provider APIs.
//!
//! Start reading at [`pipeline`]: one request from listener to record, each stage a call into
//! the module that owns it. The rooms, by concern:
//!
//! - [`listen`]: accepting callers (server, TLS, accept balance, coarse timer, drain, workers);
//! - [`stages`]: the checks before a request leaves (route, caller, policy, body, hygiene, SOQL);
//! - [`forward`]: the exchange with the provider (credentials, send, 401 replay; the pool);
//! - [`respond`]: what the caller gets back from a provider response;
//! - [`telemetry`]: the request record and its sinks (metrics, access log), the metric names;
//! - [`credentials`]: tokens, refresh, the connect flow; [`config`]: the typed config;
//! - [`unified`]: the unified API (canonical CRM and ATS records), its sync state;
//! - [`admin`]: the admin port; [`cli`]: the subcommands, the demo.
//!
//! Only [`cli::main`] is used from outside (by `main.rs`); everything else is crate-private,
//! so the compiler reports code that nothing uses.

pub(crate) mod admin;
pub(crate) mod body;
pub mod cli;
pub(crate) mod config;
pub(crate) mod credentials;
pub(crate) mod error;
pub(crate) mod forward;
pub(crate) mod listen;
pub(crate) mod pipeline;
pub(crate) mod respond;
pub(crate) mod secret;
pub(crate) mod stages;
pub(crate) mod state;
pub(crate) mod swar;
pub(crate) mod telemetry;
pub(crate) mod unified;
