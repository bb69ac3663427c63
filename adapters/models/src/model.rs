//! The unified API's models: which canonical record types exist and how they are named in
//! paths, metrics and the sync state.

use serde::Serialize;

/// The two families of the unified API (`/unified/crm/...`, `/unified/ats/...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Crm,
    Ats,
}

/// A canonical record type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    Account,
    Contact,
    Opportunity,
    Candidate,
    Application,
    Job,
}

impl Model {
    pub const ALL: [Model; 6] = [
        Model::Account,
        Model::Contact,
        Model::Opportunity,
        Model::Candidate,
        Model::Application,
        Model::Job,
    ];

    pub const fn family(self) -> Family {
        match self {
            Model::Account | Model::Contact | Model::Opportunity => Family::Crm,
            Model::Candidate | Model::Application | Model::Job => Family::Ats,
        }
    }

    /// The collection's name in paths (`accounts`).
    pub const fn collection(self) -> &'static str {
        match self {
            Model::Account => "accounts",
            Model::Contact => "contacts",
            Model::Opportunity => "opportunities",
            Model::Candidate => "candidates",
            Model::Application => "applications",
            Model::Job => "jobs",
        }
    }

    /// The model's name in metric labels and the sync state (`crm.accounts`).
    pub const fn label(self) -> &'static str {
        match self {
            Model::Account => "crm.accounts",
            Model::Contact => "crm.contacts",
            Model::Opportunity => "crm.opportunities",
            Model::Candidate => "ats.candidates",
            Model::Application => "ats.applications",
            Model::Job => "ats.jobs",
        }
    }

    /// The model at `family`/`collection` in a unified path (`crm`, `accounts`).
    pub fn from_path(family: &str, collection: &str) -> Option<Model> {
        Model::ALL.into_iter().find(|m| {
            m.collection() == collection
                && match m.family() {
                    Family::Crm => family == "crm",
                    Family::Ats => family == "ats",
                }
        })
    }

    /// The model named by [`Model::label`].
    pub fn from_label(label: &str) -> Option<Model> {
        Model::ALL.into_iter().find(|m| m.label() == label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_labels_name_each_model_once() {
        for model in Model::ALL {
            let family = match model.family() {
                Family::Crm => "crm",
                Family::Ats => "ats",
            };
            assert_eq!(Model::from_path(family, model.collection()), Some(model));
            assert_eq!(Model::from_label(model.label()), Some(model));
            assert_eq!(model.label(), format!("{family}.{}", model.collection()),);
        }
        assert_eq!(Model::from_path("ats", "accounts"), None);
        assert_eq!(Model::from_path("crm", "nope"), None);
    }
}
