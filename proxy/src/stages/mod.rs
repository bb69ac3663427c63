//! The checks a request passes before it leaves, in the order the pipeline calls them:
//! `route` (which connection, which provider path), `caller` (who is calling), `policy` (may
//! this caller do this), `body` (the request body, capped and replayable), `hygiene` (headers
//! that must not reach a provider), `soql` (the SOQL request guard). Rate limits and circuit
//! breakers join here as request guards.

pub(crate) mod body;
pub(crate) mod caller;
pub(crate) mod hygiene;
pub(crate) mod policy;
pub(crate) mod route;
pub(crate) mod soql;
