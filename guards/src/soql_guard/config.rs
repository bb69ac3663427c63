//! Policy types: connection-level settings (`[soql]`), per-caller allow-lists and rule
//! overrides (`[[callers]]`), and the stand-alone policy file used by `gatehouse soql check`.
//! The same types are meant to be embedded in the proxy's main config.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The rule catalog of shared/soql.md. The kebab-case ids are stable: they appear in
/// config, errors and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    Syntax,
    MissingWhere,
    MissingLimit,
    LimitTooHigh,
    OffsetTooHigh,
    LeadingWildcard,
    NegativeOnly,
    NullComparison,
    UnindexedFilter,
    OrUnindexed,
    WideDateRange,
    SemiJoinUnselective,
    FieldsAllLimit,
    ObjectNotAllowed,
    FieldNotAllowed,
    ForUpdateNotAllowed,
    AllRowsNotAllowed,
    /// The query is longer than `max_query_chars`; checked before parsing. Always enforced.
    QueryTooLong,
}

impl RuleId {
    pub const ALL: [RuleId; 18] = [
        RuleId::Syntax,
        RuleId::MissingWhere,
        RuleId::MissingLimit,
        RuleId::LimitTooHigh,
        RuleId::OffsetTooHigh,
        RuleId::LeadingWildcard,
        RuleId::NegativeOnly,
        RuleId::NullComparison,
        RuleId::UnindexedFilter,
        RuleId::OrUnindexed,
        RuleId::WideDateRange,
        RuleId::SemiJoinUnselective,
        RuleId::FieldsAllLimit,
        RuleId::ObjectNotAllowed,
        RuleId::FieldNotAllowed,
        RuleId::ForUpdateNotAllowed,
        RuleId::AllRowsNotAllowed,
        RuleId::QueryTooLong,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::Syntax => "syntax",
            RuleId::MissingWhere => "missing-where",
            RuleId::MissingLimit => "missing-limit",
            RuleId::LimitTooHigh => "limit-too-high",
            RuleId::OffsetTooHigh => "offset-too-high",
            RuleId::LeadingWildcard => "leading-wildcard",
            RuleId::NegativeOnly => "negative-only",
            RuleId::NullComparison => "null-comparison",
            RuleId::UnindexedFilter => "unindexed-filter",
            RuleId::OrUnindexed => "or-unindexed",
            RuleId::WideDateRange => "wide-date-range",
            RuleId::SemiJoinUnselective => "semi-join-unselective",
            RuleId::FieldsAllLimit => "fields-all-limit",
            RuleId::ObjectNotAllowed => "object-not-allowed",
            RuleId::FieldNotAllowed => "field-not-allowed",
            RuleId::ForUpdateNotAllowed => "for-update-not-allowed",
            RuleId::AllRowsNotAllowed => "all-rows-not-allowed",
            RuleId::QueryTooLong => "query-too-long",
        }
    }

    pub fn from_id(id: &str) -> Option<RuleId> {
        RuleId::ALL.iter().copied().find(|r| r.as_str() == id)
    }

    /// The rules a small object (RecordType, Profile, `*__mdt`, configured) is exempt from.
    pub fn is_selectivity_rule(self) -> bool {
        matches!(
            self,
            RuleId::MissingWhere
                | RuleId::LeadingWildcard
                | RuleId::NegativeOnly
                | RuleId::NullComparison
                | RuleId::UnindexedFilter
                | RuleId::OrUnindexed
                | RuleId::WideDateRange
                | RuleId::SemiJoinUnselective
        )
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule does when it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Block the query.
    Enforce,
    /// Report and count, but let the query through.
    Observe,
    /// Do not evaluate.
    Off,
    /// `missing-limit` only: add `LIMIT <default_limit>` and let the rewritten query through.
    Rewrite,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Observe => "observe",
            Mode::Off => "off",
            Mode::Rewrite => "rewrite",
        }
    }
}

/// Common standard CRM objects that are usually large enough to need a WHERE clause.
pub fn default_large_objects() -> Vec<String> {
    [
        "Account",
        "Contact",
        "Lead",
        "Opportunity",
        "OpportunityLineItem",
        "Case",
        "CaseComment",
        "Task",
        "Event",
        "EmailMessage",
        "Campaign",
        "CampaignMember",
        "Contract",
        "Order",
        "OrderItem",
        "Asset",
        "Quote",
        "QuoteLineItem",
        "User",
        "Attachment",
        "ContentVersion",
        "ContentDocument",
        "ContentDocumentLink",
        "FeedItem",
        "Note",
        "AccountContactRelation",
        "OpportunityContactRole",
        "AccountHistory",
        "ContactHistory",
        "LeadHistory",
        "OpportunityHistory",
        "CaseHistory",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Always exempt from selectivity rules, whatever is configured.
pub const BUILTIN_SMALL_OBJECTS: &[&str] = &["RecordType", "Profile", "*__mdt"];

/// Salesforce's documented maximum length of a SOQL statement: "By default, 100,000
/// characters" (Salesforce Developer Limits, "SOQL and SOSL Limits for Search Queries").
pub const DEFAULT_MAX_QUERY_CHARS: usize = 100_000;

/// Connection-level SOQL guard settings (the `[soql]` table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SoqlGuardConfig {
    /// `limit-too-high`: the largest LIMIT allowed.
    pub max_limit: u64,
    /// `offset-too-high`: the largest OFFSET allowed (Salesforce's own cap is 2000).
    pub max_offset: u64,
    /// The LIMIT that `missing-limit = "rewrite"` adds (never more than `max_limit`).
    pub default_limit: u64,
    /// `wide-date-range`: a date range wider than this many days is not selective.
    pub date_window_days: u32,
    /// `missing-where` applies to these objects (replaces the default list when set).
    pub large_objects: Vec<String>,
    /// Objects exempt from selectivity rules, in addition to RecordType, Profile and
    /// `*__mdt`. `*` matches any run of characters.
    pub small_objects: Vec<String>,
    /// Extra indexed fields, as `Object.Field` (or `*.Field` for every object).
    pub indexes: Vec<String>,
    /// Allow `FOR UPDATE` (row locks).
    pub allow_for_update: bool,
    /// Allow `ALL ROWS` and the queryAll endpoint (deleted and archived rows).
    pub allow_all_rows: bool,
    /// Accept Apex-only syntax (`:bind`, `ALL ROWS`); for checking SOQL taken from Apex.
    pub apex_syntax: bool,
    /// `query-too-long`: queries longer than this many characters are blocked before they
    /// are parsed, in query strings and composite subrequests alike. Salesforce's own
    /// maximum is 100,000; an org whose limit was raised can raise this to match.
    pub max_query_chars: usize,
    /// Rule modes; rules not listed are enforced.
    pub rules: BTreeMap<RuleId, Mode>,
}

impl Default for SoqlGuardConfig {
    fn default() -> Self {
        SoqlGuardConfig {
            max_limit: 2000,
            max_offset: 2000,
            default_limit: 200,
            date_window_days: 365,
            large_objects: default_large_objects(),
            small_objects: Vec::new(),
            indexes: Vec::new(),
            allow_for_update: false,
            allow_all_rows: false,
            apex_syntax: false,
            max_query_chars: DEFAULT_MAX_QUERY_CHARS,
            rules: BTreeMap::new(),
        }
    }
}

/// What one caller may read, and its rule overrides (`[callers.soql]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallerSoqlPolicy {
    /// Objects the caller may reach anywhere in a query. Absent: any object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<String>>,
    /// Per object, the fields the caller may use. Objects not listed: any field.
    /// `*` matches any run of characters (`["Id", "Name", "Billing*"]`).
    pub fields: BTreeMap<String, Vec<String>>,
    /// Rule modes for this caller; they override the connection's.
    pub rules: BTreeMap<RuleId, Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_for_update: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_all_rows: Option<bool>,
}

/// A `[[callers]]` entry of the policy file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerEntry {
    pub id: String,
    #[serde(default)]
    pub soql: CallerSoqlPolicy,
}

/// A `[[connections]]` entry: settings for one named connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionEntry {
    pub id: String,
    #[serde(default)]
    pub soql: SoqlGuardConfig,
}

/// The stand-alone policy file of `gatehouse soql check --policy FILE`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Default connection settings.
    #[serde(default)]
    pub soql: SoqlGuardConfig,
    /// Named connections (selected with `--connection`).
    #[serde(default)]
    pub connections: Vec<ConnectionEntry>,
    #[serde(default)]
    pub callers: Vec<CallerEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("rule {rule}: mode \"rewrite\" is only available for missing-limit")]
    RewriteNotSupported { rule: RuleId },
    #[error("index {entry:?} must be written Object.Field (or *.Field)")]
    BadIndex { entry: String },
    #[error("duplicate {what} id {id:?}")]
    Duplicate { what: &'static str, id: String },
    #[error("query-too-long is always enforced (it keeps oversized queries away from the parser); raise max_query_chars instead of setting its mode")]
    QueryTooLongAlwaysEnforced,
    #[error("max_query_chars must be at least 1")]
    ZeroQueryLength,
}

fn check_modes(rules: &BTreeMap<RuleId, Mode>) -> Result<(), ConfigError> {
    for (rule, mode) in rules {
        if *mode == Mode::Rewrite && *rule != RuleId::MissingLimit {
            return Err(ConfigError::RewriteNotSupported { rule: *rule });
        }
        if *rule == RuleId::QueryTooLong && *mode != Mode::Enforce {
            return Err(ConfigError::QueryTooLongAlwaysEnforced);
        }
    }
    Ok(())
}

impl SoqlGuardConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_modes(&self.rules)?;
        if self.max_query_chars == 0 {
            return Err(ConfigError::ZeroQueryLength);
        }
        for entry in &self.indexes {
            parse_index(entry)?;
        }
        Ok(())
    }

    pub fn mode(&self, rule: RuleId) -> Mode {
        self.rules.get(&rule).copied().unwrap_or(Mode::Enforce)
    }
}

impl CallerSoqlPolicy {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_modes(&self.rules)
    }
}

impl PolicyFile {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.soql.validate()?;
        for (i, c) in self.connections.iter().enumerate() {
            c.soql.validate()?;
            if self.connections[..i].iter().any(|o| o.id == c.id) {
                return Err(ConfigError::Duplicate {
                    what: "connection",
                    id: c.id.clone(),
                });
            }
        }
        for (i, c) in self.callers.iter().enumerate() {
            c.soql.validate()?;
            if self.callers[..i].iter().any(|o| o.id == c.id) {
                return Err(ConfigError::Duplicate {
                    what: "caller",
                    id: c.id.clone(),
                });
            }
        }
        Ok(())
    }

    pub fn caller(&self, id: &str) -> Option<&CallerSoqlPolicy> {
        self.callers.iter().find(|c| c.id == id).map(|c| &c.soql)
    }

    pub fn connection(&self, id: &str) -> Option<&SoqlGuardConfig> {
        self.connections
            .iter()
            .find(|c| c.id == id)
            .map(|c| &c.soql)
    }
}

/// Splits `Object.Field`.
pub(crate) fn parse_index(entry: &str) -> Result<(&str, &str), ConfigError> {
    match entry.split_once('.') {
        Some((o, f)) if !o.is_empty() && !f.is_empty() && !f.contains('.') => Ok((o, f)),
        _ => Err(ConfigError::BadIndex {
            entry: entry.to_string(),
        }),
    }
}
