//! The `gatehouse demo` world: every simulator on loopback, the Gatehouse config that fronts
//! them (connections, callers with different grants, SOQL rules on), and a traffic generator
//! that behaves like a few services — including one that writes risky SOQL, one that strays
//! outside its grants, and one that bursts into a provider's quota.
//!
//! Provider knowledge lives here (with the simulators), so the proxy's `demo` command stays a
//! thin runner.

use crate::{
    Provider, SimConfig, SimError, SimHandle, Simulator, TestCa, DEMO_API_KEY, DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET, DEMO_REFRESH_TOKEN, DEMO_RUN_AS_USER,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A demo caller: its id and the bearer token it sends in `Proxy-Authorization`.
#[derive(Debug, Clone)]
pub struct DemoCaller {
    pub id: &'static str,
    pub token: &'static str,
}

pub const CRM_SYNC: DemoCaller = DemoCaller {
    id: "crm-sync",
    token: "demo-crm-sync-token",
};
pub const RECRUITING: DemoCaller = DemoCaller {
    id: "recruiting",
    token: "demo-recruiting-token",
};
pub const AI_AGENT: DemoCaller = DemoCaller {
    id: "ai-agent",
    token: "demo-ai-agent-token",
};

/// A call to try by hand, printed by `gatehouse demo` under its URLs.
#[derive(Debug, Clone)]
pub struct Example {
    pub caller: DemoCaller,
    /// Connection id and provider path, without the query string.
    pub path: &'static str,
    /// The SOQL sent as `q`, if any.
    pub query: Option<&'static str>,
    /// What the newcomer should see.
    pub outcome: &'static str,
}

/// The demo's example calls. The first returns records: the simulators' seeded records are
/// dated in 2025 (fixed, so tests stay deterministic), so it asks for a fixed month of them
/// rather than `LAST_N_DAYS`, which finds nothing once 2025 is that long ago. A bounded window
/// on an indexed field with a LIMIT is what the demo's SOQL guard allows on a large object
/// (an open-ended `CreatedDate >` is as wide as the time since); the second example is the
/// same object unfiltered, which the guard blocks.
pub fn examples() -> [Example; 2] {
    [
        Example {
            caller: CRM_SYNC,
            path: "/acme-sf/services/data/v60.0/query",
            query: Some(
                "SELECT Id, Name, CreatedDate FROM Account WHERE CreatedDate >= 2025-06-01T00:00:00Z AND CreatedDate < 2025-07-01T00:00:00Z LIMIT 5",
            ),
            outcome: "five accounts",
        },
        Example {
            caller: CRM_SYNC,
            path: "/acme-sf/services/data/v60.0/query",
            query: Some("SELECT Id FROM Account"),
            outcome: "blocked by the SOQL guard",
        },
    ]
}

/// A unified API call the demo makes once at start and prints, and that a newcomer can repeat.
#[derive(Debug, Clone)]
pub struct UnifiedExample {
    pub caller: DemoCaller,
    /// Path and query on the data plane.
    pub path_and_query: &'static str,
    /// What the page holds, for the banner.
    pub what: &'static str,
}

/// Pages of CRM accounts from two CRMs and a page of ATS candidates, each with its
/// `next_cursor`.
pub fn unified_examples() -> [UnifiedExample; 3] {
    [
        UnifiedExample {
            caller: CRM_SYNC,
            path_and_query: "/unified/crm/accounts?connection=acme-sf&page_size=2",
            what: "Salesforce Accounts as unified CRM accounts",
        },
        UnifiedExample {
            caller: CRM_SYNC,
            path_and_query: "/unified/crm/accounts?connection=acme-hubspot&page_size=2",
            what: "HubSpot companies as unified CRM accounts",
        },
        UnifiedExample {
            caller: RECRUITING,
            path_and_query: "/unified/ats/candidates?connection=acme-greenhouse&page_size=2",
            what: "Greenhouse candidates as unified ATS candidates",
        },
    ]
}

/// Every simulator of the demo, sharing one test CA.
pub struct DemoWorld {
    pub ca: TestCa,
    pub salesforce: SimHandle,
    pub hubspot: SimHandle,
    pub greenhouse: SimHandle,
    pub greenhouse_v3: SimHandle,
    pub lever: SimHandle,
    pub ashby: SimHandle,
}

impl DemoWorld {
    /// Each simulator the demo prints, by provider name, with its HTTPS base URL.
    pub fn simulators(&self) -> Vec<(&'static str, String)> {
        [
            ("salesforce", &self.salesforce),
            ("hubspot", &self.hubspot),
            ("greenhouse", &self.greenhouse),
            ("lever", &self.lever),
            ("ashby", &self.ashby),
        ]
        .into_iter()
        .map(|(name, sim)| (name, sim.https_base_url()))
        .collect()
    }

    pub async fn start() -> Result<DemoWorld, SimError> {
        let ca = TestCa::generate()?;
        let start = |provider: Provider| {
            let config = SimConfig {
                ca: Some(ca.clone()),
                ..SimConfig::default()
            };
            Simulator::start(provider, config)
        };
        Ok(DemoWorld {
            salesforce: start(Provider::Salesforce).await?,
            hubspot: start(Provider::HubSpot).await?,
            greenhouse: start(Provider::GreenhouseV1).await?,
            greenhouse_v3: start(Provider::GreenhouseV3).await?,
            lever: start(Provider::Lever).await?,
            ashby: start(Provider::Ashby).await?,
            ca,
        })
    }

    pub fn ca_pem(&self) -> String {
        self.ca.cert_pem()
    }

    pub fn callers(&self) -> [DemoCaller; 3] {
        [CRM_SYNC, RECRUITING, AI_AGENT]
    }

    /// The Gatehouse config for this world. `ca_file` must hold [`DemoWorld::ca_pem`]; every
    /// connection talks HTTPS to its simulator, verified against that CA.
    pub fn gatehouse_config(
        &self,
        listen: &str,
        admin: &str,
        data_dir: &Path,
        ca_file: &Path,
    ) -> String {
        let hash = |token: &str| {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(token.as_bytes()))
        };
        let https_token_url = |sim: &SimHandle| {
            sim.token_url()
                .replace(&sim.http_base_url(), &sim.https_base_url())
        };
        let ca = ca_file.display();
        format!(
            r#"# gatehouse demo: generated, points at the local simulators.
[server]
listen = "{listen}"
admin_listen = "{admin}"
request_timeout = "10s"

[store]
data_dir = "{data_dir}"

[[connections]]
id = "acme-sf"
provider = "salesforce"
base_url = "{sf}"
ca_file = "{ca}"
[connections.credentials]
type = "oauth_refresh_token"
token_url = "{sf_token}"
client_id = "{client_id}"
client_secret = "{client_secret}"
refresh_token = "{refresh}"
scopes = ["api", "refresh_token"]
[connections.soql]
large_objects = ["Account", "Contact", "Lead", "Opportunity", "Case", "Task", "Event"]

[[connections]]
id = "acme-hubspot"
provider = "hubspot"
base_url = "{hs}"
ca_file = "{ca}"
[connections.credentials]
type = "oauth_refresh_token"
token_url = "{hs_token}"
client_id = "{client_id}"
client_secret = "{client_secret}"
refresh_token = "{refresh}"
scopes = ["crm.objects.contacts.read", "crm.objects.companies.read", "crm.objects.deals.read"]

[[connections]]
id = "acme-greenhouse"
provider = "greenhouse"
base_url = "{gh}"
ca_file = "{ca}"
credentials = {{ type = "basic", username = "{api_key}" }}

[[connections]]
id = "acme-greenhouse-v3"
provider = "greenhouse-v3"
base_url = "{gh3}"
ca_file = "{ca}"
[connections.credentials]
type = "client_credentials"
token_url = "{gh3_token}"
client_id = "{client_id}"
client_secret = "{client_secret}"
sub = "{run_as}"

[[connections]]
id = "acme-lever"
provider = "lever"
base_url = "{lv}"
ca_file = "{ca}"
credentials = {{ type = "basic", username = "{api_key}" }}

[[connections]]
id = "acme-ashby"
provider = "ashby"
base_url = "{ab}"
ca_file = "{ca}"
credentials = {{ type = "basic", username = "{api_key}" }}

# crm-sync: reads CRM data.
[[callers]]
id = "{crm}"
token_sha256 = "{crm_hash}"
[[callers.grants]]
connections = ["acme-sf"]
methods = ["GET"]
paths = ["/services/data/*/query", "/services/data/*/query/*", "/services/data/*/sobjects/**", "/services/data/*/limits"]
[[callers.grants]]
connections = ["acme-hubspot"]
methods = ["GET"]
paths = ["/crm/v3/objects/**"]
[[callers.grants]]
connections = ["acme-hubspot"]
methods = ["POST"]
paths = ["/crm/v3/objects/*/search"]
max_body_bytes = 16384
[[callers.grants]]
connections = ["acme-sf", "acme-hubspot"]
methods = ["GET"]
paths = ["/unified/crm/**"]

# recruiting: reads the ATSs.
[[callers]]
id = "{rec}"
token_sha256 = "{rec_hash}"
[[callers.grants]]
connections = ["acme-greenhouse", "acme-lever"]
methods = ["GET"]
paths = ["/v1/**"]
[[callers.grants]]
connections = ["acme-greenhouse-v3"]
methods = ["GET"]
paths = ["/v3/**"]
[[callers.grants]]
connections = ["acme-ashby"]
methods = ["POST"]
paths = ["/candidate.list", "/application.list", "/job.list"]
max_body_bytes = 4096
[[callers.grants]]
connections = ["acme-greenhouse", "acme-greenhouse-v3", "acme-lever", "acme-ashby"]
methods = ["GET"]
paths = ["/unified/ats/**"]

# ai-agent: generated SOQL against Salesforce, Accounts and Opportunities only.
[[callers]]
id = "{ai}"
token_sha256 = "{ai_hash}"
[[callers.grants]]
connections = ["acme-sf"]
methods = ["GET"]
paths = ["/services/data/*/query", "/services/data/*/query/*"]
[callers.soql]
objects = ["Account", "Opportunity"]
"#,
            data_dir = data_dir.display(),
            sf = self.salesforce.https_base_url(),
            sf_token = https_token_url(&self.salesforce),
            hs = self.hubspot.https_base_url(),
            hs_token = https_token_url(&self.hubspot),
            gh = self.greenhouse.https_base_url(),
            gh3 = self.greenhouse_v3.https_base_url(),
            gh3_token = https_token_url(&self.greenhouse_v3),
            lv = self.lever.https_base_url(),
            ab = self.ashby.https_base_url(),
            client_id = DEMO_CLIENT_ID,
            client_secret = DEMO_CLIENT_SECRET,
            refresh = DEMO_REFRESH_TOKEN,
            api_key = DEMO_API_KEY,
            run_as = DEMO_RUN_AS_USER,
            crm = CRM_SYNC.id,
            crm_hash = hash(CRM_SYNC.token),
            rec = RECRUITING.id,
            rec_hash = hash(RECRUITING.token),
            ai = AI_AGENT.id,
            ai_hash = hash(AI_AGENT.token),
        )
    }

    pub async fn shutdown(self) {
        for sim in [
            self.salesforce,
            self.hubspot,
            self.greenhouse,
            self.greenhouse_v3,
            self.lever,
            self.ashby,
        ] {
            sim.shutdown().await;
        }
    }
}

/// Responses seen by the traffic generator, by scenario and status.
#[derive(Default)]
pub struct TrafficStats {
    counts: Mutex<BTreeMap<(&'static str, u16), u64>>,
}

impl TrafficStats {
    fn record(&self, scenario: &'static str, status: u16) {
        *self.counts.lock().entry((scenario, status)).or_default() += 1;
    }

    /// One line per scenario: `scenario: 200×12 403×3`.
    pub fn summary(&self) -> Vec<String> {
        let counts = self.counts.lock();
        let mut lines: BTreeMap<&str, String> = BTreeMap::new();
        for ((scenario, status), n) in counts.iter() {
            let line = lines.entry(scenario).or_default();
            let status = if *status == 0 {
                "error".to_owned()
            } else {
                status.to_string()
            };
            line.push_str(&format!(" {status}x{n}"));
        }
        lines.into_iter().map(|(s, l)| format!("{s}:{l}")).collect()
    }
}

struct Call {
    scenario: &'static str,
    caller: DemoCaller,
    method: http::Method,
    path: String,
    body: Option<&'static str>,
}

fn get(scenario: &'static str, caller: DemoCaller, path: &str) -> Call {
    Call {
        scenario,
        caller,
        method: http::Method::GET,
        path: path.to_owned(),
        body: None,
    }
}

fn soql(scenario: &'static str, caller: DemoCaller, query: &str) -> Call {
    let q: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
    get(
        scenario,
        caller,
        &format!("/acme-sf/services/data/v60.0/query?q={q}"),
    )
}

/// One round of every scenario. Good traffic dominates; the bad kinds show up in the errors.
fn round(tick: u64) -> Vec<Call> {
    let mut calls = vec![
        soql("sf-sync", CRM_SYNC, "SELECT Id, Name, Industry FROM Account WHERE SystemModstamp > LAST_N_DAYS:7 ORDER BY SystemModstamp LIMIT 200"),
        get("hubspot-sync", CRM_SYNC, "/acme-hubspot/crm/v3/objects/contacts?limit=50"),
        get("greenhouse-sync", RECRUITING, "/acme-greenhouse/v1/candidates?per_page=50"),
        get("greenhouse-v3-sync", RECRUITING, "/acme-greenhouse-v3/v3/candidates?per_page=50"),
        get("lever-sync", RECRUITING, "/acme-lever/v1/opportunities?limit=50"),
        Call {
            scenario: "ashby-sync",
            caller: RECRUITING,
            method: http::Method::POST,
            path: "/acme-ashby/candidate.list".to_owned(),
            body: Some(r#"{"limit":50}"#),
        },
        soql("ai-agent-good", AI_AGENT, "SELECT Id, Name, Amount FROM Opportunity WHERE CreatedDate = LAST_N_DAYS:90 LIMIT 100"),
    ];
    match tick % 4 {
        0 => calls.push(soql(
            "ai-agent-risky",
            AI_AGENT,
            "SELECT Id, Name FROM Account",
        )),
        1 => calls.push(soql(
            "ai-agent-risky",
            AI_AGENT,
            "SELECT Id FROM Account WHERE Name LIKE '%corp%' LIMIT 10",
        )),
        2 => calls.push(soql(
            "ai-agent-risky",
            AI_AGENT,
            "SELECT Id, Email FROM Contact WHERE Email != null LIMIT 10",
        )),
        _ => calls.push(soql(
            "ai-agent-risky",
            AI_AGENT,
            "SELECT Id FROM Account WHERE Name = 'Acme' AND OR Industry = 'x'",
        )),
    }
    if tick.is_multiple_of(3) {
        // Outside its grants: recruiting reaching for the CRM.
        calls.push(get(
            "recruiting-strays",
            RECRUITING,
            "/acme-sf/services/data/v60.0/sobjects/Account",
        ));
    }
    if tick % 10 == 2 {
        // A burst into HubSpot's 100-per-10-seconds limit: the provider answers 429.
        for _ in 0..100 {
            calls.push(get(
                "hubspot-burst",
                CRM_SYNC,
                "/acme-hubspot/crm/v3/objects/companies?limit=10",
            ));
        }
    }
    calls
}

/// Sends demo traffic to the Gatehouse data plane at `data_url` until `stop` flips to true.
pub async fn run_traffic(
    data_url: String,
    stats: Arc<TrafficStats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let client: Client<_, http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut tick: u64 = 0;
    loop {
        for call in round(tick) {
            let body = match call.body {
                Some(b) => Full::new(Bytes::from_static(b.as_bytes())).boxed(),
                None => Empty::new().boxed(),
            };
            let mut builder = http::Request::builder()
                .method(call.method.clone())
                .uri(format!("{data_url}{}", call.path))
                .header(
                    "proxy-authorization",
                    format!("Bearer {}", call.caller.token),
                );
            if call.body.is_some() {
                builder = builder.header("content-type", "application/json");
            }
            let Ok(request) = builder.body(body) else {
                continue;
            };
            let status = match tokio::time::timeout(
                Duration::from_secs(15),
                client.request(request),
            )
            .await
            {
                Ok(Ok(response)) => {
                    let status = response.status().as_u16();
                    let _ = response.into_body().collect().await;
                    status
                }
                _ => 0,
            };
            stats.record(call.scenario, status);
        }
        tick += 1;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(1000)) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// What one unified page held: how many records, the first one's `remote_id` and name, and
/// the page's `next_cursor`.
#[derive(Debug, Clone, PartialEq)]
pub struct UnifiedPage {
    pub status: u16,
    pub records: usize,
    pub first: Option<String>,
    pub next_cursor: Option<String>,
}

/// Asks `example` of the Gatehouse at `data_url` once.
pub async fn unified_page(data_url: &str, example: &UnifiedExample) -> Result<UnifiedPage, String> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::builder()
        .uri(format!("{data_url}{}", example.path_and_query))
        .header(
            "proxy-authorization",
            format!("Bearer {}", example.caller.token),
        )
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(15), client.request(request))
        .await
        .map_err(|_| "no answer in 15 s".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let page: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let records = page["data"].as_array().map_or(0, Vec::len);
    let first = page["data"][0]["remote_id"].as_str().map(|id| {
        let name = page["data"][0]["name"]
            .as_str()
            .or_else(|| page["data"][0]["last_name"].as_str())
            .unwrap_or("");
        format!("{id} {name}").trim().to_owned()
    });
    let next_cursor = page["next_cursor"].as_str().map(str::to_owned);
    Ok(UnifiedPage {
        status,
        records,
        first,
        next_cursor,
    })
}
