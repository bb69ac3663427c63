//! The canonical records. Field names follow Merge's common models where they fit, so a
//! service that knows one unified API reads this one. Every field is optional: providers
//! differ in what they know, and an unknown or null provider field leaves ours `None` (or an
//! empty list).
//!
//! A record on the wire is [`Record`]: the fields every model shares (ids, times, the
//! connection) and the model's own fields ([`Fields`]) side by side, plus the provider's raw
//! record when the caller asks for it. Times are RFC 3339 in UTC; dates without a time stay
//! `YYYY-MM-DD`. Which provider field feeds each of ours is in `docs/unified.md`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The fields every unified record carries, whatever its model.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Record {
    /// Gatehouse's id for the record: stable across calls and walks, derived from the
    /// connection and the remote id.
    pub id: String,
    /// The provider's id for the record (the source id).
    pub remote_id: String,
    /// The Gatehouse connection the record was read through.
    pub connection: String,
    /// The provider the connection talks to (`salesforce`, `hubspot`, ...).
    pub provider: String,
    /// When the provider says the record was created (RFC 3339, UTC).
    pub remote_created_at: Option<String>,
    /// When the provider says the record last changed (RFC 3339, UTC): the time its
    /// incremental sync filters on, so a `modified_since` at or before it finds the record.
    pub remote_modified_at: Option<String>,
    /// Whether the provider says the record was deleted or archived; absent where the
    /// provider does not tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_was_deleted: Option<bool>,
    /// The model's own fields, side by side with the common ones.
    #[serde(flatten)]
    #[schemars(skip)]
    pub fields: Fields,
    /// The provider's record, verbatim (only with `?include_raw=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_data: Option<Value>,
}

/// The model's own fields.
///
/// Serialised untagged: the path a record is served under names its model.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Fields {
    Account(Account),
    Contact(Contact),
    Opportunity(Opportunity),
    Candidate(Candidate),
    Application(Application),
    Job(Job),
}

/// A company a CRM tracks (`/unified/crm/accounts`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Account {
    /// The company's name.
    pub name: Option<String>,
    /// Free-text description.
    pub description: Option<String>,
    /// The industry, in the provider's words.
    pub industry: Option<String>,
    /// The company's website or domain.
    pub website: Option<String>,
    /// Headcount, as the provider records it.
    pub number_of_employees: Option<i64>,
    /// The company's phone numbers.
    pub phone_numbers: Vec<PhoneNumber>,
    /// The company's addresses (billing, shipping, or where the provider does not say).
    pub addresses: Vec<Address>,
    /// The provider's id of the owning user.
    pub owner: Option<String>,
}

/// A person at an account (`/unified/crm/contacts`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Contact {
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// The provider's id of the contact's account (company).
    pub account: Option<String>,
    /// The provider's id of the owning user.
    pub owner: Option<String>,
    /// The contact's email addresses.
    pub email_addresses: Vec<EmailAddress>,
    /// The contact's phone numbers.
    pub phone_numbers: Vec<PhoneNumber>,
    /// The contact's addresses.
    pub addresses: Vec<Address>,
}

/// A deal (`/unified/crm/opportunities`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Opportunity {
    /// The deal's name.
    pub name: Option<String>,
    /// Free-text description.
    pub description: Option<String>,
    /// In the provider's currency units (not cents).
    pub amount: Option<f64>,
    /// The provider's id of the owning user.
    pub owner: Option<String>,
    /// The provider's id of the account (company) the deal is with.
    pub account: Option<String>,
    /// The provider's stage name or id.
    pub stage: Option<String>,
    /// `OPEN`, `WON` or `LOST`, where the provider tells.
    pub status: Option<String>,
    /// The expected or actual close: `YYYY-MM-DD` where the provider keeps a date, RFC 3339
    /// (UTC) where it keeps a time.
    pub close_date: Option<String>,
}

/// A person applying or sourced (`/unified/ats/candidates`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Candidate {
    /// Given name (split from a full name where the provider keeps only that).
    pub first_name: Option<String>,
    /// Family name (the rest of a full name).
    pub last_name: Option<String>,
    /// The candidate's current company.
    pub company: Option<String>,
    /// The candidate's current title or headline.
    pub title: Option<String>,
    /// The candidate's email addresses.
    pub email_addresses: Vec<EmailAddress>,
    /// The candidate's phone numbers.
    pub phone_numbers: Vec<PhoneNumber>,
    /// Tags the provider attaches.
    pub tags: Vec<String>,
    /// The provider's ids of the candidate's applications.
    pub applications: Vec<String>,
    /// The last interaction or activity with the candidate (RFC 3339, UTC).
    pub last_interaction_at: Option<String>,
}

/// A candidate's application to a job (`/unified/ats/applications`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Application {
    /// The provider's id of the candidate.
    pub candidate: Option<String>,
    /// The provider's id of the job.
    pub job: Option<String>,
    /// When the candidate applied (RFC 3339, UTC).
    pub applied_at: Option<String>,
    /// When the application was rejected (RFC 3339, UTC), if it was.
    pub rejected_at: Option<String>,
    /// The name of the interview stage the application is in.
    pub current_stage: Option<String>,
    /// The provider's status word (`active`, `rejected`, `hired`...).
    pub status: Option<String>,
    /// Where the application came from (the source's name).
    pub source: Option<String>,
}

/// An open or past position (`/unified/ats/jobs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Job {
    /// The job's title.
    pub name: Option<String>,
    /// Free-text description or notes.
    pub description: Option<String>,
    /// The requisition code.
    pub code: Option<String>,
    /// `OPEN`, `CLOSED`, `DRAFT`, `ARCHIVED` or `PENDING`.
    pub status: Option<String>,
    /// Whether the job is confidential.
    pub confidential: Option<bool>,
    /// The names (or, where the provider gives no name, the ids) of the job's departments.
    pub departments: Vec<String>,
    /// The names (or ids) of the job's offices or locations.
    pub offices: Vec<String>,
    /// The provider's ids of the job's hiring managers.
    pub hiring_managers: Vec<String>,
}

/// An email address of a contact or candidate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EmailAddress {
    /// The address itself.
    pub email_address: String,
    /// The provider's kind for it (`personal`, `work`...), where it says.
    pub email_address_type: Option<String>,
}

/// A phone number of an account, contact or candidate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PhoneNumber {
    /// The number, as the provider stores it.
    pub phone_number: String,
    /// The provider's kind for it (`mobile`, `work`...), where it says.
    pub phone_number_type: Option<String>,
}

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Address {
    /// First street line.
    pub street_1: Option<String>,
    /// Second street line.
    pub street_2: Option<String>,
    /// City or town.
    pub city: Option<String>,
    /// State, province or region.
    pub state: Option<String>,
    /// Postal or ZIP code.
    pub postal_code: Option<String>,
    /// Country, as the provider spells it.
    pub country: Option<String>,
    /// `BILLING`, `SHIPPING` or the provider's own word, where it says.
    pub address_type: Option<String>,
}
