//! Provider profiles: everything Gatehouse knows about one provider lives here (and in the
//! simulators), never in the proxy or the guards. The proxy asks a [`ProviderProfile`] how to
//! authenticate, whether a 401 is worth a refresh-and-replay, which requests carry SOQL, and
//! how to read the provider's token endpoint.

pub mod oauth;
pub mod profile;

pub use profile::{
    best_query_plan, builtin, builtin_names, ProviderProfile, QueryPlan, SoqlCarrier,
};
