//! What a simulator received, so a test can prove what Gatehouse sent.

use std::collections::BTreeMap;
use std::time::SystemTime;

use parking_lot::Mutex;
use serde::Serialize;

/// One request as it reached the simulator (before any fault was applied).
#[derive(Clone, Debug, Serialize)]
pub struct ReceivedRequest {
    /// Monotonic sequence number within this simulator.
    pub seq: u64,
    pub method: String,
    /// Path and query exactly as sent, e.g. `/services/data/v66.0/query?q=SELECT+Id+FROM+Account`.
    pub path_and_query: String,
    /// All headers in arrival order, names lower-cased, values lossily decoded (Authorization included).
    pub headers: Vec<(String, String)>,
    /// Raw body bytes.
    #[serde(serialize_with = "ser_body")]
    pub body: Vec<u8>,
    /// Whether it arrived on the HTTPS port.
    pub tls: bool,
    /// Wall-clock arrival time, milliseconds since the Unix epoch.
    pub received_at_ms: u64,
}

fn ser_body<S: serde::Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(body))
}

impl ReceivedRequest {
    /// First header value with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.path_and_query
            .split('?')
            .next()
            .unwrap_or(&self.path_and_query)
    }

    /// The body as (lossy) UTF-8.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Counts of token-endpoint calls, by grant type, and how many failed.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct TokenCallCounts {
    /// Calls per `grant_type` value as sent (e.g. `refresh_token`, `client_credentials`,
    /// `authorization_code`, `urn:ietf:params:oauth:grant-type:jwt-bearer`; `<missing>` if absent).
    pub by_grant_type: BTreeMap<String, u64>,
    /// Calls that got a non-2xx answer (including injected faults), per grant type.
    pub failures_by_grant_type: BTreeMap<String, u64>,
    pub total: u64,
    pub failures: u64,
}

impl TokenCallCounts {
    /// Calls made with this grant type.
    pub fn grant(&self, grant_type: &str) -> u64 {
        self.by_grant_type.get(grant_type).copied().unwrap_or(0)
    }

    /// Failed calls with this grant type.
    pub fn failed(&self, grant_type: &str) -> u64 {
        self.failures_by_grant_type
            .get(grant_type)
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Default)]
pub(crate) struct Recorder {
    inner: Mutex<RecorderState>,
}

#[derive(Default)]
struct RecorderState {
    next_seq: u64,
    received: Vec<ReceivedRequest>,
    tokens: TokenCallCounts,
}

impl Recorder {
    pub(crate) fn record(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &http::HeaderMap,
        body: &[u8],
        tls: bool,
    ) {
        let received_at_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let headers = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut st = self.inner.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        st.received.push(ReceivedRequest {
            seq,
            method: method.to_owned(),
            path_and_query: path_and_query.to_owned(),
            headers,
            body: body.to_vec(),
            tls,
            received_at_ms,
        });
    }

    pub(crate) fn token_call(&self, grant_type: &str, ok: bool) {
        let mut st = self.inner.lock();
        let t = &mut st.tokens;
        t.total += 1;
        *t.by_grant_type.entry(grant_type.to_owned()).or_default() += 1;
        if !ok {
            t.failures += 1;
            *t.failures_by_grant_type
                .entry(grant_type.to_owned())
                .or_default() += 1;
        }
    }

    pub(crate) fn received(&self) -> Vec<ReceivedRequest> {
        self.inner.lock().received.clone()
    }

    pub(crate) fn token_calls(&self) -> TokenCallCounts {
        self.inner.lock().tokens.clone()
    }

    /// Clears received requests and token counters.
    pub(crate) fn clear(&self) {
        let mut st = self.inner.lock();
        st.received.clear();
        st.tokens = TokenCallCounts::default();
    }
}
