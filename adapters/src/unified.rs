//! What a provider module implements to serve the unified API ([`UnifiedApi`], reached through
//! [`crate::Provider::unified`]): which provider call lists or fetches a model's records, how
//! its answer reads as canonical records, and how its pagination resumes. Pure: the proxy sends
//! the calls (with the connection's credential, limits and audit) and hands the answers back.
//!
//! A walk's position between pages is a [`WalkState`]: whatever the provider needs to go on
//! (Salesforce's `nextRecordsUrl`, HubSpot's `after`, Greenhouse's `Link` target, Lever's
//! `offset`, Ashby's `nextCursor`), opaque to the proxy, which seals it into the caller's one
//! cursor so that it cannot be forged or used by another caller.

use gatehouse_models::{Fields, Model};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::SystemTime;

/// A provider's unified API: list and fetch canonical records of the models it serves.
pub trait UnifiedApi: Send + Sync {
    /// The models this provider serves (a CRM serves accounts, contacts, opportunities).
    fn models(&self) -> &'static [Model];

    /// The largest page the provider serves for `model`; the proxy clamps `page_size` to it.
    fn max_page_size(&self, model: Model) -> u32;

    /// The call for one page of `model`: the first (`ask.resume` is `None`) or the next.
    fn list_call(&self, model: Model, ask: &ListAsk<'_>) -> Result<ProviderCall, UnifiedError>;

    /// Reads a successful (2xx, not classified as an error) answer to [`UnifiedApi::list_call`].
    fn read_page(
        &self,
        model: Model,
        ask: &ListAsk<'_>,
        answer: &Answer<'_>,
    ) -> Result<Page, UnifiedError>;

    /// The call that fetches one record by its remote id.
    fn get_call(&self, model: Model, remote_id: &str) -> Result<ProviderCall, UnifiedError>;

    /// Reads a successful answer to [`UnifiedApi::get_call`].
    fn read_record(&self, model: Model, answer: &Answer<'_>) -> Result<Mapped, UnifiedError>;
}

/// What the caller asked of one page.
#[derive(Debug, Clone, Default)]
pub struct ListAsk<'a> {
    /// Already clamped to 1..=[`UnifiedApi::max_page_size`].
    pub page_size: u32,
    /// Only records modified at or after this time (incremental sync).
    pub modified_since: Option<SystemTime>,
    /// Where the walk stands: `None` for its first page.
    pub resume: Option<&'a WalkState>,
    /// A provider sync token kept from this caller's last completed walk of this model
    /// (Ashby's `syncToken`), offered for an incremental first page. The adapter may ignore it.
    pub sync_token: Option<&'a str>,
}

/// A provider call the unified layer makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCall {
    pub method: http::Method,
    pub target: CallTarget,
    /// Extra request headers (`Content-Type`, `Sforce-Query-Options`); never a credential.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub body: Option<Vec<u8>>,
}

/// Where a [`ProviderCall`] goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallTarget {
    /// A path (starting with `/`) and query relative to the connection's API base.
    Relative { path: String, query: Option<String> },
    /// A URL the provider itself handed out (a `Link` header's next page, an absolute
    /// `nextRecordsUrl`), to be followed as-is, but only on the connection's own hosts: the
    /// proxy refuses it otherwise.
    Absolute(String),
    /// A path and query the provider handed out, relative to the API host's root rather than
    /// to the connection's base path (Salesforce's `nextRecordsUrl`).
    HostRelative(String),
}

/// A provider answer, read whole.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// One page of canonical records.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub records: Vec<Mapped>,
    /// How to ask for the next page; `None` at the end of the walk.
    pub next: Option<WalkState>,
    /// A sync token the provider handed out on the walk's last page (Ashby), to keep for the
    /// next incremental walk.
    pub sync_token: Option<String>,
}

/// A provider record mapped to its canonical model, before the proxy adds the connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub remote_id: String,
    /// RFC 3339, UTC.
    pub remote_created_at: Option<String>,
    pub remote_modified_at: Option<String>,
    pub remote_was_deleted: Option<bool>,
    pub fields: Fields,
    /// The provider's record, verbatim.
    pub raw: Value,
}

/// A walk's position, opaque to the proxy. Serialised into the caller's sealed cursor, so it
/// is kept small: the provider's own cursor plus what the adapter needs to go on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalkState(pub Value);

/// Why the unified layer cannot serve a request or read an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UnifiedError {
    /// This provider does not serve the model.
    #[error("{provider} does not serve {model}")]
    Unsupported {
        provider: &'static str,
        model: &'static str,
    },
    /// The remote id cannot be one of this provider's ids.
    #[error("{0}")]
    BadRemoteId(String),
    /// The walk state does not belong to this provider or model (a cursor from elsewhere).
    #[error("the cursor does not belong to this walk")]
    BadWalkState,
    /// The provider's answer is not what its API documents (truncated JSON, an HTML page,
    /// wrong types). The proxy keeps the raw body for the audit record.
    #[error("malformed provider answer: {0}")]
    Malformed(String),
    /// The provider says the sync token is no good any more: walk again from the start,
    /// without one (Ashby's `sync_token_expired`).
    #[error("the provider's sync token expired; a full walk is needed")]
    ResyncNeeded,
}
