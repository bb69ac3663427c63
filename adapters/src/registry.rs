//! Provider name → [`Provider`]: the built-ins, and custom providers from config.

use crate::custom::{self, CustomProfile};
use crate::provider::Provider;
use crate::{ashby, greenhouse, hubspot, lever, salesforce};
use std::sync::Arc;

type Constructor = fn() -> Arc<dyn Provider>;

/// Every built-in provider, by the name a connection's `provider` gives. A new provider is
/// one line here (plus its module).
static BUILTINS: &[(&str, Constructor)] = &[
    (salesforce::NAME, || Arc::new(salesforce::Salesforce)),
    (hubspot::NAME, || Arc::new(hubspot::HubSpot)),
    (greenhouse::V1_NAME, || Arc::new(greenhouse::HarvestV1)),
    (greenhouse::V3_NAME, || Arc::new(greenhouse::HarvestV3)),
    (lever::NAME, || Arc::new(lever::Lever)),
    (ashby::NAME, || Arc::new(ashby::Ashby)),
];

/// Names of the built-in providers, for config validation messages.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|(name, _)| *name).collect()
}

/// The built-in provider with this name, if any.
pub fn builtin(name: &str) -> Option<Arc<dyn Provider>> {
    BUILTINS
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .map(|(_, make)| make())
}

/// Why a connection's `provider` (and `[connections.profile]`) names no provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("provider \"custom\" needs a [connections.profile] table")]
    CustomWithoutProfile,
    #[error("a [connections.profile] table is only for provider = \"custom\", not {0:?}")]
    ProfileForBuiltin(String),
    #[error("unknown provider {name:?}; expected one of {known:?} or \"custom\"")]
    Unknown {
        name: String,
        known: Vec<&'static str>,
    },
}

/// The provider a connection uses: a built-in by name, or `custom` with its profile table.
pub fn resolve(
    provider: &str,
    custom: Option<&CustomProfile>,
) -> Result<Arc<dyn Provider>, ResolveError> {
    if provider == custom::NAME {
        return match custom {
            Some(profile) => Ok(Arc::new(profile.clone())),
            None => Err(ResolveError::CustomWithoutProfile),
        };
    }
    if custom.is_some() {
        return Err(ResolveError::ProfileForBuiltin(provider.to_owned()));
    }
    builtin(provider).ok_or_else(|| ResolveError::Unknown {
        name: provider.to_owned(),
        known: builtin_names(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_has_a_provider_of_that_name() {
        let names = builtin_names();
        assert_eq!(
            names,
            [
                "salesforce",
                "hubspot",
                "greenhouse",
                "greenhouse-v3",
                "lever",
                "ashby"
            ]
        );
        for name in names {
            assert_eq!(
                builtin(name).map(|p| p.name().to_owned()).as_deref(),
                Some(name)
            );
        }
        assert!(builtin("unknown").is_none());
        assert!(builtin("custom").is_none());
    }

    #[test]
    fn resolve_takes_builtins_by_name_and_custom_from_its_table() {
        let sf = resolve("salesforce", None).unwrap();
        assert!(sf.soql().is_some() && sf.token_sets_instance_url());
        let custom = resolve("custom", Some(&CustomProfile::named("testapi"))).unwrap();
        assert_eq!(custom.name(), "testapi");
        assert!(custom.soql().is_none());
        assert_eq!(
            resolve("custom", None).unwrap_err().to_string(),
            "provider \"custom\" needs a [connections.profile] table"
        );
        assert_eq!(
            resolve("hubspot", Some(&CustomProfile::named("x")))
                .unwrap_err()
                .to_string(),
            "a [connections.profile] table is only for provider = \"custom\", not \"hubspot\""
        );
        assert_eq!(
            resolve("salesforc", None).unwrap_err().to_string(),
            "unknown provider \"salesforc\"; expected one of [\"salesforce\", \"hubspot\", \"greenhouse\", \"greenhouse-v3\", \"lever\", \"ashby\"] or \"custom\""
        );
    }
}
