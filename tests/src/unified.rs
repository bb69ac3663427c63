//! Helpers for the unified API's end-to-end tests: a caller's GET, a whole paginated walk, the
//! connection of each simulator, and a check of a served body against the OpenAPI document.

use crate::Gatehouse;

use gatehouse_sim::{
    Provider, SimHandle, DEMO_API_KEY, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN,
    DEMO_RUN_AS_USER,
};
use serde_json::Value;

/// The unified collections of a CRM and of an ATS.
pub const CRM: [&str; 3] = ["crm/accounts", "crm/contacts", "crm/opportunities"];
pub const ATS: [&str; 3] = ["ats/candidates", "ats/applications", "ats/jobs"];

/// The Gatehouse provider name of a simulator, and the collections it serves (Lever's
/// applications live inside its opportunities: no collection of their own).
pub fn provider_of(sim: Provider) -> (&'static str, &'static [&'static str]) {
    match sim {
        Provider::Salesforce => ("salesforce", &CRM),
        Provider::HubSpot => ("hubspot", &CRM),
        Provider::GreenhouseV1 => ("greenhouse", &ATS),
        Provider::GreenhouseV3 => ("greenhouse-v3", &ATS),
        Provider::Lever => ("lever", &["ats/candidates", "ats/jobs"]),
        Provider::Ashby => ("ashby", &ATS),
    }
}

/// A `[[connections]]` entry `id` for the simulator `sim`, with the credential its provider
/// takes (OAuth refresh for Salesforce and HubSpot, client credentials for Greenhouse v3, the
/// API key otherwise).
pub fn connection(id: &str, sim: &SimHandle) -> String {
    let (provider, _) = provider_of(sim.provider());
    let base = sim.http_base_url();
    let token_url = sim.token_url();
    // Every connection keeps the SOQL guard's default rules: the Salesforce adapter's keyset
    // walk (first page without a WHERE, `queryAll` when incremental) is judged by the caller's
    // allow-lists and the limits only (`CheckContext::keyset_walk`), so it passes them.
    let credentials = match sim.provider() {
        Provider::Salesforce | Provider::HubSpot => format!(
            "type = \"oauth_refresh_token\"\ntoken_url = \"{token_url}\"\nclient_id = \"{DEMO_CLIENT_ID}\"\nclient_secret = \"{DEMO_CLIENT_SECRET}\"\nrefresh_token = \"{DEMO_REFRESH_TOKEN}\""
        ),
        Provider::GreenhouseV3 => format!(
            "type = \"client_credentials\"\ntoken_url = \"{token_url}\"\nclient_id = \"{DEMO_CLIENT_ID}\"\nclient_secret = \"{DEMO_CLIENT_SECRET}\"\nsub = \"{DEMO_RUN_AS_USER}\""
        ),
        _ => format!("type = \"basic\"\nusername = \"{DEMO_API_KEY}\""),
    };
    format!(
        "[[connections]]\nid = \"{id}\"\nprovider = \"{provider}\"\nbase_url = \"{base}\"\n[connections.credentials]\n{credentials}\n"
    )
}

/// A caller's view of the unified API.
pub struct Caller<'a> {
    pub gatehouse: &'a Gatehouse,
    pub token: &'a str,
}

impl Caller<'_> {
    /// `GET <data plane><path_and_query>`: the status and the body as JSON (`Null` if it is not).
    /// A throttled answer is asked again after its `retry_after`, as a sync job would (a few
    /// times).
    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        for _ in 0..5 {
            let (status, body) = self.get_once(path_and_query).await;
            let wait = body["error"]["retry_after"].as_u64();
            match (status, wait) {
                (429, Some(secs)) => {
                    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
                }
                _ => return (status, body),
            }
        }
        self.get_once(path_and_query).await
    }

    async fn get_once(&self, path_and_query: &str) -> (u16, Value) {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .get(format!("{}{path_and_query}", self.gatehouse.data_url()))
            .header("proxy-authorization", format!("Bearer {}", self.token))
            .send()
            .await
            .expect("gatehouse answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Walks `collection` (`crm/accounts`) of `connection` with the first page's `query`
    /// (`&page_size=3`), calling `between` with the page number after each page but the last.
    /// Every record served, in order, or the first failing page's status and body.
    pub async fn walk(
        &self,
        collection: &str,
        connection: &str,
        query: &str,
        mut between: impl FnMut(usize),
    ) -> Result<Vec<Value>, (u16, Value)> {
        let mut records = Vec::new();
        let mut next = format!("/unified/{collection}?connection={connection}{query}");
        for page in 1.. {
            let (status, body) = self.get(&next).await;
            if status != 200 {
                return Err((status, body));
            }
            records.extend(body["data"].as_array().cloned().unwrap_or_default());
            let Some(cursor) = body["next_cursor"].as_str() else {
                break;
            };
            between(page);
            next = format!(
                "/unified/{collection}?connection={connection}&cursor={}",
                encode(cursor)
            );
        }
        Ok(records)
    }
}

/// `text` form-encoded for a query string.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The field `key` of each record, as strings.
pub fn strings<'a>(records: &'a [Value], key: &str) -> Vec<&'a str> {
    records.iter().filter_map(|r| r[key].as_str()).collect()
}

/// Checks `instance` against the schema at `pointer` (`/components/schemas/AccountList`) of
/// the OpenAPI `document`; the errors, if any.
pub fn schema_errors(document: &Value, pointer: &str, instance: &Value) -> Vec<String> {
    // The component is checked inside the whole document, so its `$ref`s resolve there.
    let mut schema = document.clone();
    if let Value::Object(map) = &mut schema {
        map.insert("$ref".into(), Value::String(format!("#{pointer}")));
        map.insert(
            "$schema".into(),
            Value::String("https://json-schema.org/draft/2020-12/schema".into()),
        );
    }
    match jsonschema::validator_for(&schema) {
        Err(error) => vec![format!("the document's schema does not compile: {error}")],
        Ok(validator) => validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect(),
    }
}
