//! The unified API's record schemas, derived from the record types in [`crate::record`]
//! (their doc comments become the descriptions), as JSON Schema 2020-12: what OpenAPI 3.1
//! takes as `components.schemas`.

use crate::model::Model;
use crate::record::{
    Account, Address, Application, Candidate, Contact, EmailAddress, Job, Opportunity, PhoneNumber,
    Record,
};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// Where the schemas live in the OpenAPI document, so that their `$ref`s resolve there.
const COMPONENTS: &str = "/components/schemas";

/// The name of `model`'s schema in [`record_schemas`] (`Account`, ...).
pub const fn schema_name(model: Model) -> &'static str {
    match model {
        Model::Account => "Account",
        Model::Contact => "Contact",
        Model::Opportunity => "Opportunity",
        Model::Candidate => "Candidate",
        Model::Application => "Application",
        Model::Job => "Job",
    }
}

/// A JSON object of schemas by name: one per model (its own fields), the shared parts
/// (`EmailAddress`, `PhoneNumber`, `Address`), and `Record`, the fields every record has. A
/// served record of model `M` is `allOf: [Record, M]`; references point into
/// `#/components/schemas/`.
pub fn record_schemas() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = COMPONENTS.into();
    let mut generator = settings.into_generator();
    // Each call registers the type (and what it refers to) as a definition.
    generator.subschema_for::<Record>();
    generator.subschema_for::<Account>();
    generator.subschema_for::<Contact>();
    generator.subschema_for::<Opportunity>();
    generator.subschema_for::<Candidate>();
    generator.subschema_for::<Application>();
    generator.subschema_for::<Job>();
    generator.subschema_for::<EmailAddress>();
    generator.subschema_for::<PhoneNumber>();
    generator.subschema_for::<Address>();
    let definitions: Map<String, Value> = generator.take_definitions(true);
    Value::Object(definitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptions_everywhere(name: &str, schema: &Value) {
        let properties = schema["properties"].as_object().unwrap();
        assert!(!properties.is_empty(), "{name} has no properties");
        for (field, property) in properties {
            let described = property.get("description").and_then(Value::as_str);
            assert!(
                described.is_some_and(|d| !d.is_empty()),
                "{name}.{field} has no description"
            );
        }
    }

    #[test]
    fn every_model_and_part_has_a_described_schema() {
        let schemas = record_schemas();
        let names = Model::ALL.map(schema_name);
        for name in names
            .iter()
            .chain(&["Record", "EmailAddress", "PhoneNumber", "Address"])
        {
            let schema = &schemas[*name];
            assert_eq!(schema["type"], "object", "{name}");
            descriptions_everywhere(name, schema);
        }
    }

    #[test]
    fn references_resolve_in_the_components() {
        let schemas = record_schemas();
        let text = schemas.to_string();
        assert!(text.contains("\"#/components/schemas/EmailAddress\""));
        assert!(!text.contains("$defs"));
        // The common fields only: a record's model fields come from its model's schema.
        let record = schemas["Record"]["properties"].as_object().unwrap();
        assert!(record.contains_key("remote_id") && !record.contains_key("fields"));
        assert!(!record.contains_key("name"));
        let required = schemas["Record"]["required"].as_array().unwrap();
        assert!(required.contains(&Value::from("id")));
    }

    #[test]
    fn a_serialised_record_matches_its_schemas_fields() {
        let record = Record {
            id: "c:1".into(),
            remote_id: "1".into(),
            connection: "c".into(),
            provider: "p".into(),
            remote_created_at: None,
            remote_modified_at: Some("2024-01-01T00:00:00Z".into()),
            remote_was_deleted: None,
            fields: crate::Fields::Job(Job::default()),
            remote_data: None,
        };
        let served = serde_json::to_value(&record).unwrap();
        let schemas = record_schemas();
        let known: Vec<&String> = schemas["Record"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .chain(schemas["Job"]["properties"].as_object().unwrap().keys())
            .collect();
        for key in served.as_object().unwrap().keys() {
            assert!(
                known.contains(&key),
                "{key} is served but not in the schema"
            );
        }
        assert!(served.get("remote_was_deleted").is_none());
    }
}
