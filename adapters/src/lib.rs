//! Provider adapters: everything Gatehouse knows about one provider lives here (and in the
//! simulators), never in the proxy or the guards. The proxy holds one [`Provider`] per
//! connection and asks it how to authenticate, whether a 401 is worth a refresh-and-replay,
//! which requests carry SOQL, and how to read the provider's token endpoint. See README.md.

pub mod oauth;
pub mod provider;
pub mod registry;
pub mod taxonomy;
pub mod unified;

pub mod ashby;
pub mod custom;
pub mod greenhouse;
pub mod hubspot;
pub mod lever;
pub mod salesforce;

pub use custom::CustomProfile;
pub use gatehouse_models as models;
pub use provider::{PageLinks, Provider, ProviderAccount, QueryPlan, SoqlApi};
pub use registry::{builtin, builtin_names, resolve, ResolveError};
pub use taxonomy::{Category, ProviderError};
pub use unified::UnifiedApi;
