//! The canonical records. Field names follow Merge's common models where they fit, so a
//! service that knows one unified API reads this one. Every field is optional: providers
//! differ in what they know, and an unknown or null provider field leaves ours `None`.
//!
//! A record on the wire is [`Record`]: the fields every model shares (ids, times, the
//! connection) and the model's own fields ([`Fields`]) side by side, plus the provider's raw
//! record when the caller asks for it.

use serde::Serialize;
use serde_json::Value;

/// One canonical record as the unified API serves it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// Stable across calls and walks: derived from the connection and the remote id.
    pub id: String,
    /// The provider's id for the record (the source id).
    pub remote_id: String,
    pub connection: String,
    pub provider: String,
    /// The provider's times, RFC 3339 in UTC.
    pub remote_created_at: Option<String>,
    pub remote_modified_at: Option<String>,
    /// Present where the provider says whether the record was deleted or archived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_was_deleted: Option<bool>,
    #[serde(flatten)]
    pub fields: Fields,
    /// The provider's record, verbatim (`?include_raw=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_data: Option<Value>,
}

/// The model's own fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Fields {
    Account(Account),
    Contact(Contact),
    Opportunity(Opportunity),
    Candidate(Candidate),
    Application(Application),
    Job(Job),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Account {
    pub name: Option<String>,
    pub description: Option<String>,
    pub industry: Option<String>,
    pub website: Option<String>,
    pub number_of_employees: Option<i64>,
    pub phone_numbers: Vec<PhoneNumber>,
    pub addresses: Vec<Address>,
    /// The provider's id of the owning user.
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Contact {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The provider's id of the contact's account (company).
    pub account: Option<String>,
    pub owner: Option<String>,
    pub email_addresses: Vec<EmailAddress>,
    pub phone_numbers: Vec<PhoneNumber>,
    pub addresses: Vec<Address>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Opportunity {
    pub name: Option<String>,
    pub description: Option<String>,
    /// In the provider's currency units (not cents).
    pub amount: Option<f64>,
    pub owner: Option<String>,
    pub account: Option<String>,
    /// The provider's stage name or id.
    pub stage: Option<String>,
    /// `OPEN`, `WON` or `LOST`, where the provider tells.
    pub status: Option<String>,
    /// `YYYY-MM-DD` or RFC 3339, as the provider knows it.
    pub close_date: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Candidate {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub email_addresses: Vec<EmailAddress>,
    pub phone_numbers: Vec<PhoneNumber>,
    pub tags: Vec<String>,
    /// The provider's ids of the candidate's applications.
    pub applications: Vec<String>,
    pub last_interaction_at: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Application {
    /// The provider's id of the candidate.
    pub candidate: Option<String>,
    /// The provider's id of the job.
    pub job: Option<String>,
    pub applied_at: Option<String>,
    pub rejected_at: Option<String>,
    pub current_stage: Option<String>,
    /// The provider's status word (`active`, `rejected`, `hired`...).
    pub status: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Job {
    pub name: Option<String>,
    pub description: Option<String>,
    /// The requisition code.
    pub code: Option<String>,
    /// `OPEN`, `CLOSED`, `DRAFT`, `ARCHIVED` or `PENDING`.
    pub status: Option<String>,
    pub confidential: Option<bool>,
    pub departments: Vec<String>,
    pub offices: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EmailAddress {
    pub email_address: String,
    pub email_address_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PhoneNumber {
    pub phone_number: String,
    pub phone_number_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Address {
    pub street_1: Option<String>,
    pub street_2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub address_type: Option<String>,
}
