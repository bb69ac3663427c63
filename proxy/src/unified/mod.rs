//! The unified API: canonical CRM and ATS records over every provider's own API.

pub(crate) mod sync_state;
