//! Any OAuth 2.0 / REST API the built-ins do not cover, described in the connection's config
//! (`provider = "custom"` with a `[connections.profile]` table). It gets the RFC 6749
//! defaults of [`Provider`] except where the table says otherwise.

use crate::provider::Provider;
use serde::Deserialize;

/// The `provider` value that selects a custom profile.
pub const NAME: &str = "custom";

/// The `[connections.profile]` table.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CustomProfile {
    /// Stable name, used in metrics labels and error envelopes.
    pub name: String,
    /// Refresh-and-replay once on a 401 (default true).
    #[serde(default = "default_true")]
    pub replay_on_401: bool,
    /// Access-token lifetime in seconds when the token endpoint returns no `expires_in`.
    #[serde(default)]
    pub default_token_lifetime_secs: Option<u64>,
    /// The token endpoint may return an `instance_url` that becomes the API base URL.
    #[serde(default)]
    pub token_sets_instance_url: bool,
}

fn default_true() -> bool {
    true
}

impl CustomProfile {
    /// A profile with every default: replay on 401, honour `expires_in`, no instance URL.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            replay_on_401: true,
            default_token_lifetime_secs: None,
            token_sets_instance_url: false,
        }
    }
}

impl Provider for CustomProfile {
    fn name(&self) -> &str {
        &self.name
    }

    fn replay_on_401(&self) -> bool {
        self.replay_on_401
    }

    fn default_token_lifetime_secs(&self) -> Option<u64> {
        self.default_token_lifetime_secs
    }

    fn token_sets_instance_url(&self) -> bool {
        self.token_sets_instance_url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_sets_what_it_names_and_defaults_the_rest() {
        let profile: CustomProfile = toml_like(r#"{"name":"crm","replay_on_401":false}"#);
        assert_eq!(profile.name(), "crm");
        assert!(!profile.replay_on_401());
        assert_eq!(profile.default_token_lifetime_secs(), None);
        assert!(!profile.token_sets_instance_url());
        assert!(profile.soql().is_none());
        let minimal: CustomProfile = toml_like(r#"{"name":"x"}"#);
        assert_eq!(minimal, CustomProfile::named("x"));
        assert!(serde_json::from_str::<CustomProfile>(r#"{"name":"x","soql":true}"#).is_err());
    }

    fn toml_like(json: &str) -> CustomProfile {
        serde_json::from_str(json).unwrap()
    }
}
