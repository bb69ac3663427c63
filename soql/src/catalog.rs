//! What the guard knows about an org's schema: which fields are indexed, and which object a
//! relationship name leads to. Starts from Salesforce's standard indexes and naming
//! conventions; configured indexes and describe metadata refine it.

use std::collections::HashMap;

/// Which selectivity threshold an index gets. Lookups, external ids and configured indexes
/// use the stricter custom-index threshold (soql.md, "Treat lookups as custom indexes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IndexKind {
    Standard,
    Custom,
}

/// Field properties from the describe API that imply an index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FieldTraits {
    pub external_id: bool,
    pub unique: bool,
    pub id_lookup: bool,
    /// Lookup or master-detail.
    pub reference: bool,
}

#[derive(Clone, Debug, Default)]
pub struct IndexCatalog {
    /// (object, field), both lower-case. Object "*" applies to every object.
    indexes: HashMap<(String, String), IndexKind>,
    /// (object, relationship) -> target object.
    parents: HashMap<(String, String), String>,
    /// (object, child relationship) -> child object.
    children: HashMap<(String, String), String>,
    no_standard: bool,
}

/// Standard fields indexed on every object.
const STANDARD_INDEXED: &[&str] = &[
    "id",
    "name",
    "createddate",
    "systemmodstamp",
    "lastmodifieddate",
    "recordtypeid",
    "division",
];

fn key(object: &str, field: &str) -> (String, String) {
    (object.to_ascii_lowercase(), field.to_ascii_lowercase())
}

impl IndexCatalog {
    /// Salesforce's standard indexes and relationship naming conventions.
    pub fn standard() -> Self {
        IndexCatalog::default()
    }

    /// No standard indexes at all: only what is added (for tests and unusual orgs).
    pub fn without_standard_indexes() -> Self {
        IndexCatalog {
            no_standard: true,
            ..IndexCatalog::default()
        }
    }

    /// The standard catalog plus fields from describe metadata:
    /// `(object, field, FieldTraits { external_id, unique, id_lookup, reference })`.
    pub fn from_describe<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a str, FieldTraits)>,
    ) -> Self {
        let mut catalog = IndexCatalog::standard();
        for (object, field, traits) in fields {
            catalog.learn_field(object, field, traits);
        }
        catalog
    }

    /// A configured custom index. `object` may be `*` for every object.
    pub fn add_index(&mut self, object: &str, field: &str) {
        self.indexes.insert(key(object, field), IndexKind::Custom);
    }

    /// A field learned from describe metadata; indexed when it is an external id, unique,
    /// an idLookup field or a reference.
    pub fn learn_field(&mut self, object: &str, field: &str, traits: FieldTraits) {
        if traits.external_id || traits.unique || traits.id_lookup || traits.reference {
            let kind = if traits.id_lookup && !traits.external_id && !traits.reference {
                // idLookup covers Id, Name, Email...: the standard indexes.
                IndexKind::Standard
            } else {
                IndexKind::Custom
            };
            self.indexes.insert(key(object, field), kind);
        }
    }

    /// A parent relationship from describe (`Contact.Account` -> `Account`).
    pub fn learn_relationship(&mut self, object: &str, relationship: &str, target: &str) {
        self.parents
            .insert(key(object, relationship), target.to_string());
    }

    /// A child relationship from describe (`Account.Contacts` -> `Contact`).
    pub fn learn_child_relationship(&mut self, object: &str, relationship: &str, child: &str) {
        self.children
            .insert(key(object, relationship), child.to_string());
    }

    pub fn index_kind(&self, object: &str, field: &str) -> Option<IndexKind> {
        // Only allocate lower-case keys when something was configured or learned: this runs
        // for every filter of every query.
        if !self.indexes.is_empty() {
            let k = key(object, field);
            if let Some(kind) = self.indexes.get(&k) {
                return Some(*kind);
            }
            if let Some(kind) = self.indexes.get(&("*".to_string(), k.1)) {
                return Some(*kind);
            }
        }
        if self.no_standard {
            return None;
        }
        if STANDARD_INDEXED
            .iter()
            .any(|s| s.eq_ignore_ascii_case(field))
        {
            return Some(IndexKind::Standard);
        }
        if field.eq_ignore_ascii_case("email")
            && (object.eq_ignore_ascii_case("contact") || object.eq_ignore_ascii_case("lead"))
        {
            return Some(IndexKind::Standard);
        }
        // Standard lookups (OwnerId, AccountId, ParentId, WhatId...) end in "Id"; custom
        // fields are only indexed when configured or learned.
        let ends_in_id = field.len() > 2
            && field
                .get(field.len() - 2..)
                .is_some_and(|s| s.eq_ignore_ascii_case("id"));
        if ends_in_id && !field.contains("__") {
            return Some(IndexKind::Custom);
        }
        None
    }

    /// The object a parent relationship leads to. Unknown names follow Salesforce's
    /// conventions: `Foo__r` -> `Foo__c`, `Owner`/`CreatedBy`/... -> `User`, `Parent` ->
    /// the same object, polymorphic `What`/`Who` -> the `Name` pseudo-object.
    pub fn parent_object(&self, object: &str, relationship: &str) -> String {
        if let Some(t) = self.parents.get(&key(object, relationship)) {
            return t.clone();
        }
        let r = relationship.to_ascii_lowercase();
        match r.as_str() {
            "owner" | "createdby" | "lastmodifiedby" | "manager" | "delegatedapprover" => {
                "User".to_string()
            }
            "parent" | "masterrecord" => object.to_string(),
            "what" | "who" => "Name".to_string(),
            _ => custom_suffix(relationship, "__r", "__c")
                .unwrap_or_else(|| relationship.to_string()),
        }
    }

    /// The object a child relationship (subquery FROM) leads to.
    pub fn child_object(&self, object: &str, relationship: &str) -> String {
        if let Some(t) = self.children.get(&key(object, relationship)) {
            return t.clone();
        }
        if let Some(c) = custom_suffix(relationship, "__r", "__c") {
            return c;
        }
        let r = relationship.to_ascii_lowercase();
        let known = match r.as_str() {
            "childaccounts" => Some("Account"),
            "opportunities" => Some("Opportunity"),
            "activityhistories" => Some("ActivityHistory"),
            "openactivities" => Some("OpenActivity"),
            "notesandattachments" => Some("NoteAndAttachment"),
            "histories" => return format!("{object}History"),
            "shares" => return format!("{object}Share"),
            "feeds" => return format!("{object}Feed"),
            _ => None,
        };
        if let Some(k) = known {
            return k.to_string();
        }
        if let Some(stem) = relationship.strip_suffix("ies") {
            return format!("{stem}y");
        }
        if let Some(stem) = relationship.strip_suffix('s') {
            return stem.to_string();
        }
        relationship.to_string()
    }
}

fn custom_suffix(name: &str, from: &str, to: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(from) {
        let stem = &name[..name.len() - from.len()];
        Some(format!("{stem}{to}"))
    } else {
        None
    }
}

/// `true` when `name` matches `pattern`, case-insensitively; `*` in the pattern matches any
/// run of characters (`*__mdt`).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.eq_ignore_ascii_case(name),
        Some((head, tail)) => {
            let (n, h, t) = (name.as_bytes(), head.as_bytes(), tail.as_bytes());
            n.len() >= h.len() + t.len()
                && n[..h.len()].eq_ignore_ascii_case(h)
                && n[n.len() - t.len()..].eq_ignore_ascii_case(t)
        }
    }
}
