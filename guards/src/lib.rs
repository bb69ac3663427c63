//! Guards: scope policy evaluation, the SOQL guard, and (later) rate limits and circuit breakers.
//! Provider-agnostic: no provider is named here.

pub mod policy;
pub mod soql_guard;
