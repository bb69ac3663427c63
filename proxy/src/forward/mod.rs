//! The exchange with the provider: `exchange` applies the credential, sends, and replays once
//! after a refresh on a 401 (retries within a budget, circuit and quota feedback join here);
//! `upstream` holds the clients and the per-worker connection pools.

pub(crate) mod exchange;
pub(crate) mod upstream;
