//! Run-time fault injection: latency, 5xx bursts, connection resets, slow bodies, token endpoint
//! down, token revocation/expiry, every credential rejected, quota exhaustion, rotation toggle.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::oauth::TokenStore;
use crate::quota::Quota;

/// Which requests a fault applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultTarget {
    /// API requests only (not the token/authorize endpoints). The default.
    #[default]
    Api,
    /// Token and authorize endpoints only.
    Token,
    /// Every request except the `/__sim/` admin endpoints.
    All,
}

impl FaultTarget {
    pub(crate) fn matches(self, is_token_endpoint: bool) -> bool {
        match self {
            FaultTarget::Api => !is_token_endpoint,
            FaultTarget::Token => is_token_endpoint,
            FaultTarget::All => true,
        }
    }
}

/// Trickle response bodies: `chunk_bytes` every `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlowBody {
    pub chunk_bytes: usize,
    #[serde(with = "millis")]
    pub interval: Duration,
}

/// How the token endpoint is "down".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenEndpointDown {
    /// Answer 503 with the provider's server-busy body.
    #[serde(rename = "503")]
    Unavailable,
    /// Close the connection without any response.
    Reset,
}

/// A snapshot of the configured faults (also the JSON of `GET /__sim/faults`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct FaultState {
    #[serde(with = "millis")]
    pub latency: Duration,
    /// Remaining requests that will get `error_status`.
    pub error_burst_remaining: u32,
    pub error_status: u16,
    pub error_target: FaultTarget,
    /// Remaining requests whose connection will be closed without a response.
    pub reset_remaining: u32,
    pub reset_target: FaultTarget,
    pub slow_body: Option<SlowBody>,
    pub token_endpoint_down: Option<TokenEndpointDown>,
    /// Ashby: 429s carry `X-RateLimit-Scope: integration-partner` (partner-wide throttle).
    pub partner_throttle: bool,
    pub rotation: bool,
    /// Every API credential is rejected as the provider rejects a revoked one: access tokens
    /// (including ones issued after the fault was set) and API keys. The token endpoint keeps
    /// issuing tokens, so each refresh succeeds and its token is rejected at once.
    pub reject_credentials: bool,
}

/// What to do with one request, decided before it is handled.
pub(crate) enum Decision {
    Proceed,
    Reset,
    Error(u16),
    TokenDown(TokenEndpointDown),
}

/// Fault controls of one simulator. Every setter takes effect for the next request.
pub struct Faults {
    state: Mutex<FaultState>,
    tokens: Option<Arc<TokenStore>>,
    quota: Arc<Quota>,
    daily: Arc<Quota>,
}

impl Faults {
    pub(crate) fn new(
        tokens: Option<Arc<TokenStore>>,
        quota: Arc<Quota>,
        daily: Arc<Quota>,
    ) -> Self {
        let rotation = tokens.as_ref().is_some_and(|t| t.rotation());
        Self {
            state: Mutex::new(FaultState {
                error_status: 503,
                rotation,
                ..FaultState::default()
            }),
            tokens,
            quota,
            daily,
        }
    }

    /// Adds this much latency before every matching response (zero to turn off).
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().latency = latency;
    }

    /// The next `count` API requests get HTTP `status` (500, 503, ...) with the provider's body.
    pub fn fail_next(&self, count: u32, status: u16) {
        self.fail_next_on(count, status, FaultTarget::Api);
    }

    /// Like [`Faults::fail_next`] for a chosen target.
    pub fn fail_next_on(&self, count: u32, status: u16, target: FaultTarget) {
        let mut st = self.state.lock();
        st.error_burst_remaining = count;
        st.error_status = status;
        st.error_target = target;
    }

    /// The next `count` API requests have their connection closed without a response.
    pub fn reset_next(&self, count: u32) {
        self.reset_next_on(count, FaultTarget::Api);
    }

    /// Like [`Faults::reset_next`] for a chosen target.
    pub fn reset_next_on(&self, count: u32, target: FaultTarget) {
        let mut st = self.state.lock();
        st.reset_remaining = count;
        st.reset_target = target;
    }

    /// Trickles every response body (`None` to turn off).
    pub fn set_slow_body(&self, slow: Option<SlowBody>) {
        self.state.lock().slow_body = slow;
    }

    /// Takes the token endpoint down (`None` brings it back).
    pub fn set_token_endpoint_down(&self, mode: Option<TokenEndpointDown>) {
        self.state.lock().token_endpoint_down = mode;
    }

    /// Revokes every access and refresh token now (as an uninstall or admin revocation would).
    pub fn revoke_all_tokens(&self) {
        if let Some(t) = &self.tokens {
            t.revoke_all();
        }
    }

    /// Expires every access token issued so far; refresh tokens stay valid.
    pub fn expire_access_tokens(&self) {
        if let Some(t) = &self.tokens {
            t.expire_all_access();
        }
    }

    /// Changes the lifetime of access tokens issued from now on.
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        if let Some(t) = &self.tokens {
            t.set_access_lifetime(lifetime);
        }
    }

    /// Uses up the rest of the current quota window (HubSpot: the 10-second burst window).
    pub fn exhaust_quota(&self) {
        self.quota.exhaust();
    }

    /// HubSpot: uses up the daily allowance (private-app tokens only see it).
    pub fn exhaust_daily_quota(&self) {
        self.daily.exhaust();
    }

    /// Starts fresh quota windows now.
    pub fn reset_quota(&self) {
        self.quota.reset();
        self.daily.reset();
    }

    /// Changes the quota size (and window) from now on.
    pub fn set_quota(&self, limit: u64, window: Option<Duration>) {
        self.quota.set_limit(limit, window);
    }

    /// Turns refresh-token rotation on or off.
    pub fn set_rotation(&self, on: bool) {
        if let Some(t) = &self.tokens {
            t.set_rotation(on);
        }
        self.state.lock().rotation = on;
    }

    /// Rejects every API credential from now on (`false` to stop): see
    /// [`FaultState::reject_credentials`].
    pub fn set_reject_credentials(&self, on: bool) {
        if let Some(t) = &self.tokens {
            t.set_reject_access(on);
        }
        self.state.lock().reject_credentials = on;
    }

    /// Whether API keys and access tokens are being rejected (the providers' auth checks ask).
    pub(crate) fn rejects_credentials(&self) -> bool {
        self.state.lock().reject_credentials
    }

    /// Ashby: make 429s partner-wide (`X-RateLimit-Scope: integration-partner`).
    pub fn set_partner_throttle(&self, on: bool) {
        self.state.lock().partner_throttle = on;
    }

    /// Clears latency, bursts, resets, slow bodies, token-endpoint-down and credential
    /// rejection (not token state).
    pub fn clear(&self) {
        if let Some(t) = &self.tokens {
            t.set_reject_access(false);
        }
        let mut st = self.state.lock();
        let rotation = st.rotation;
        let partner = st.partner_throttle;
        *st = FaultState {
            error_status: 503,
            rotation,
            partner_throttle: partner,
            ..FaultState::default()
        };
    }

    pub fn snapshot(&self) -> FaultState {
        self.state.lock().clone()
    }

    pub(crate) fn partner_throttle(&self) -> bool {
        self.state.lock().partner_throttle
    }

    pub(crate) fn decide(&self, is_token_endpoint: bool) -> (Decision, Duration, Option<SlowBody>) {
        let mut st = self.state.lock();
        let latency = st.latency;
        let slow = st.slow_body;
        if st.reset_remaining > 0 && st.reset_target.matches(is_token_endpoint) {
            st.reset_remaining -= 1;
            return (Decision::Reset, latency, slow);
        }
        if is_token_endpoint {
            if let Some(mode) = st.token_endpoint_down {
                return (Decision::TokenDown(mode), latency, slow);
            }
        }
        if st.error_burst_remaining > 0 && st.error_target.matches(is_token_endpoint) {
            st.error_burst_remaining -= 1;
            return (Decision::Error(st.error_status), latency, slow);
        }
        (Decision::Proceed, latency, slow)
    }

    /// Applies an admin request (`POST /__sim/faults`).
    pub(crate) fn apply(&self, req: &FaultRequest) {
        if req.clear {
            self.clear();
        }
        if let Some(ms) = req.latency_ms {
            self.set_latency(Duration::from_millis(ms));
        }
        if let Some(b) = &req.fail_next {
            self.fail_next_on(
                b.count,
                b.status.unwrap_or(503),
                b.target.unwrap_or_default(),
            );
        }
        if let Some(b) = &req.reset_next {
            self.reset_next_on(b.count, b.target.unwrap_or_default());
        }
        if let Some(s) = &req.slow_body {
            self.set_slow_body((s.chunk_bytes > 0).then_some(SlowBody {
                chunk_bytes: s.chunk_bytes,
                interval: Duration::from_millis(s.interval_ms),
            }));
        }
        if let Some(d) = &req.token_endpoint_down {
            self.set_token_endpoint_down(match d.as_str() {
                "503" | "unavailable" => Some(TokenEndpointDown::Unavailable),
                "reset" => Some(TokenEndpointDown::Reset),
                _ => None,
            });
        }
        if req.revoke_all_tokens {
            self.revoke_all_tokens();
        }
        if req.expire_access_tokens {
            self.expire_access_tokens();
        }
        if let Some(s) = req.access_token_lifetime_ms {
            self.set_access_token_lifetime(Duration::from_millis(s));
        }
        if req.exhaust_quota {
            self.exhaust_quota();
        }
        if req.exhaust_daily_quota {
            self.exhaust_daily_quota();
        }
        if req.reset_quota {
            self.reset_quota();
        }
        if let Some(on) = req.rotation {
            self.set_rotation(on);
        }
        if let Some(on) = req.partner_throttle {
            self.set_partner_throttle(on);
        }
        if let Some(on) = req.reject_credentials {
            self.set_reject_credentials(on);
        }
    }
}

/// JSON body of `POST /__sim/faults`; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct FaultRequest {
    clear: bool,
    latency_ms: Option<u64>,
    fail_next: Option<BurstSpec>,
    reset_next: Option<BurstSpec>,
    slow_body: Option<SlowSpec>,
    /// "503", "reset" or "off".
    token_endpoint_down: Option<String>,
    revoke_all_tokens: bool,
    expire_access_tokens: bool,
    access_token_lifetime_ms: Option<u64>,
    exhaust_quota: bool,
    exhaust_daily_quota: bool,
    reset_quota: bool,
    rotation: Option<bool>,
    partner_throttle: Option<bool>,
    reject_credentials: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct BurstSpec {
    count: u32,
    status: Option<u16>,
    target: Option<FaultTarget>,
}

#[derive(Debug, Deserialize)]
struct SlowSpec {
    chunk_bytes: usize,
    #[serde(default)]
    interval_ms: u64,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
