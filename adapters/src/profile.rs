//! Built-in provider profiles and the shape of a custom one.

use serde::Deserialize;

/// Which requests carry SOQL that the guard must see before it reaches the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoqlCarrier {
    /// The provider speaks no SOQL.
    None,
    /// Salesforce-style REST: `GET .../query?q=`, `.../queryAll?q=`, `nextRecordsUrl` follow-ups
    /// (`.../query/<locator>`), and query subrequests inside `/composite` and `/composite/batch`.
    SalesforceRest,
}

impl SoqlCarrier {
    /// Whether a request body sent to `path` can embed SOQL (composite subrequests).
    pub fn body_carries_soql(self, method: &http::Method, path: &str) -> bool {
        match self {
            SoqlCarrier::None => false,
            SoqlCarrier::SalesforceRest => {
                *method != http::Method::GET
                    && path.split('/').any(|s| s.eq_ignore_ascii_case("composite"))
            }
        }
    }

    /// The path and query of the provider's query-plan call for `soql`, asked on behalf of a
    /// query sent to `query_path` (`/services/data/v60.0/query` → same path, `?explain=`).
    pub fn explain_path_and_query(self, query_path: &str, soql: &str) -> Option<String> {
        match self {
            SoqlCarrier::None => None,
            SoqlCarrier::SalesforceRest => {
                let (prefix, last) = query_path.trim_end_matches('/').rsplit_once('/')?;
                if !(last.eq_ignore_ascii_case("query") || last.eq_ignore_ascii_case("queryAll")) {
                    return None;
                }
                let encoded: String =
                    url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
                Some(format!("{prefix}/query?explain={encoded}"))
            }
        }
    }
}

/// A query plan as the provider's explain call reports it, reduced to what the guard decides on.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPlan {
    pub relative_cost: f64,
    pub leading_operation: String,
    pub cardinality: Option<u64>,
}

/// The best (first) plan of an explain response: `{"plans":[{"relativeCost":..,"leadingOperationType":..}]}`.
pub fn best_query_plan(body: &serde_json::Value) -> Option<QueryPlan> {
    let plan = body.get("plans")?.as_array()?.first()?;
    Some(QueryPlan {
        relative_cost: plan.get("relativeCost")?.as_f64()?,
        leading_operation: plan.get("leadingOperationType")?.as_str()?.to_owned(),
        cardinality: plan.get("cardinality").and_then(serde_json::Value::as_u64),
    })
}

/// What the proxy needs to know about one provider. Built-in profiles are `'static` data;
/// a custom profile (any OAuth/REST API) is deserialised from the connection's config.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProviderProfile {
    /// Stable name, used in metrics labels and error envelopes (`salesforce`, `hubspot`, ...).
    pub name: String,
    /// Refresh-and-replay once on a 401. HubSpot documents that a 401 is not a reliable signal
    /// to refresh (refresh on TTL instead), so its profile turns this off.
    #[serde(default = "default_true")]
    pub replay_on_401: bool,
    /// Default access-token lifetime in seconds when the token endpoint returns no
    /// `expires_in` (Salesforce: the session timeout, two hours by default).
    #[serde(default)]
    pub default_token_lifetime_secs: Option<u64>,
    /// The token endpoint may return an `instance_url` that becomes the API base URL.
    #[serde(default)]
    pub token_sets_instance_url: bool,
    /// Which requests carry SOQL.
    #[serde(skip, default = "no_soql")]
    pub soql: SoqlCarrier,
    /// The query parameter with which the provider lets a request name another method
    /// (Salesforce: `_HttpMethod`); the policy then checks that method too.
    #[serde(skip)]
    pub method_override_param: Option<String>,
}

fn default_true() -> bool {
    true
}

fn no_soql() -> SoqlCarrier {
    SoqlCarrier::None
}

impl ProviderProfile {
    fn builtin(
        name: &str,
        replay_on_401: bool,
        lifetime: Option<u64>,
        instance_url: bool,
        soql: SoqlCarrier,
    ) -> Self {
        Self {
            name: name.to_owned(),
            replay_on_401,
            default_token_lifetime_secs: lifetime,
            token_sets_instance_url: instance_url,
            soql,
            method_override_param: None,
        }
    }

    /// A generic OAuth/REST API: replay on 401, honour `expires_in`, no SOQL.
    pub fn custom(name: &str) -> Self {
        Self::builtin(name, true, None, false, SoqlCarrier::None)
    }
}

/// Names of the built-in profiles, for config validation messages.
pub fn builtin_names() -> &'static [&'static str] {
    &[
        "salesforce",
        "hubspot",
        "greenhouse",
        "greenhouse-v3",
        "lever",
        "ashby",
    ]
}

/// The built-in profile with this name, if any.
pub fn builtin(name: &str) -> Option<ProviderProfile> {
    let profile = match name {
        // Salesforce: no `expires_in`; the session timeout defaults to 2 hours. The token
        // response carries `instance_url`.
        "salesforce" => ProviderProfile {
            // `POST ...?_HttpMethod=PATCH` (or DELETE) runs as that method.
            method_override_param: Some("_HttpMethod".to_owned()),
            ..ProviderProfile::builtin(name, true, Some(7200), true, SoqlCarrier::SalesforceRest)
        },
        // HubSpot: refresh on TTL (1800 s), not on 401.
        "hubspot" => ProviderProfile::builtin(name, false, None, false, SoqlCarrier::None),
        "greenhouse" | "greenhouse-v3" | "lever" | "ashby" => {
            ProviderProfile::builtin(name, true, None, false, SoqlCarrier::None)
        }
        _ => return None,
    };
    Some(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_has_a_profile() {
        for name in builtin_names() {
            let profile = builtin(name);
            assert_eq!(profile.map(|p| p.name), Some((*name).to_owned()));
        }
        assert!(builtin("unknown").is_none());
    }

    #[test]
    fn salesforce_soql_carriers() {
        let sf = SoqlCarrier::SalesforceRest;
        assert!(sf.body_carries_soql(&http::Method::POST, "/services/data/v60.0/composite/batch"));
        assert!(!sf.body_carries_soql(&http::Method::GET, "/services/data/v60.0/composite"));
        assert!(!SoqlCarrier::None.body_carries_soql(&http::Method::POST, "/composite"));
        assert_eq!(
            sf.explain_path_and_query("/services/data/v60.0/queryAll", "SELECT Id FROM Account"),
            Some("/services/data/v60.0/query?explain=SELECT+Id+FROM+Account".to_owned())
        );
        assert_eq!(
            sf.explain_path_and_query("/services/data/v60.0/sobjects", "x"),
            None
        );
        let plan = best_query_plan(
            &serde_json::json!({"plans":[{"relativeCost":2.5,"leadingOperationType":"TableScan","cardinality":10},{"relativeCost":0.1,"leadingOperationType":"Index"}]}),
        );
        assert_eq!(
            plan.map(|p| (p.relative_cost, p.leading_operation)),
            Some((2.5, "TableScan".to_owned()))
        );
        assert_eq!(best_query_plan(&serde_json::json!({"plans":[]})), None);
    }

    #[test]
    fn hubspot_refreshes_on_ttl_not_on_401() {
        assert_eq!(builtin("hubspot").map(|p| p.replay_on_401), Some(false));
        assert_eq!(
            builtin("salesforce").map(|p| p.soql),
            Some(SoqlCarrier::SalesforceRest)
        );
    }
}
