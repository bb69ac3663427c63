//! The unified API's contract as an OpenAPI 3.1 document, generated from the code: the paths
//! from [`Model`], the parameters the handler reads ([`super::request`]), the list and error
//! envelopes, and the record schemas derived from the record types
//! (`gatehouse_models::schema::record_schemas`). Served at `GET /unified/openapi.json` and
//! committed as `docs/unified-openapi.json`; a test keeps the two equal
//! (`GATEHOUSE_WRITE_OPENAPI=1 cargo test -p gatehouse --lib openapi` rewrites the file).

use crate::error::Category;
use bytes::Bytes;
use gatehouse_models::schema::{record_schemas, schema_name};
use gatehouse_models::{Family, Model};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// The document as served (pretty JSON, built once).
pub(crate) fn document_bytes() -> Bytes {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
            text.push('\n');
            Bytes::from(text)
        })
        .clone()
}

fn family_name(model: Model) -> &'static str {
    match model.family() {
        Family::Crm => "crm",
        Family::Ats => "ats",
    }
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The name of the schema of one served record of `model` (`AccountRecord`).
fn record_schema(model: Model) -> String {
    format!("{}Record", schema_name(model))
}

fn list_schema(model: Model) -> String {
    format!("{}List", schema_name(model))
}

fn param(name: &str, required: bool, description: &str, schema: Value) -> Value {
    json!({
        "name": name, "in": "query", "required": required,
        "description": description, "schema": schema,
    })
}

fn parameters(list: bool) -> Vec<Value> {
    let mut all = vec![param(
        "connection",
        true,
        "The connection whose provider answers (its id in the config).",
        json!({"type": "string"}),
    )];
    if list {
        all.push(param(
            "cursor",
            false,
            "The `next_cursor` of the page before: sealed, bound to the caller, connection and model, good for 24 hours from the walk's first page. The walk's page_size, modified_since and include_raw come with it; repeating them is allowed, contradicting them is a bad_request.",
            json!({"type": "string"}),
        ));
        all.push(param(
            "page_size",
            false,
            "Records per page (default 100), capped at the provider's largest page.",
            json!({"type": "integer", "minimum": 1}),
        ));
        all.push(param(
            "modified_since",
            false,
            "Only records modified at or after this time (RFC 3339), by the provider's own incremental field or mechanism.",
            json!({"type": "string", "format": "date-time"}),
        ));
    }
    all.push(param(
        "include_raw",
        false,
        "Adds `remote_data`, the provider's record verbatim.",
        json!({"type": "boolean", "default": false}),
    ));
    all
}

fn error_responses() -> Value {
    let error = json!({
        "description": "The request failed: the error envelope (the provider's own error inside `provider_error` when the provider refused).",
        "content": {"application/json": {"schema": reference("Error")}},
    });
    json!({ "default": error })
}

fn operation(model: Model, list: bool) -> Value {
    let (summary, schema, id) = if list {
        (
            format!("A page of {} records", model.label()),
            list_schema(model),
            format!("list_{}_{}", family_name(model), model.collection()),
        )
    } else {
        (
            format!("One {} record, by its id", model.label()),
            record_schema(model),
            format!("get_{}_{}", family_name(model), model.collection()),
        )
    };
    let mut responses = error_responses();
    responses["200"] = json!({
        "description": summary,
        "content": {"application/json": {"schema": reference(&schema)}},
    });
    let mut parameters = parameters(list);
    if !list {
        parameters.insert(
            0,
            json!({
                "name": "id", "in": "path", "required": true,
                "description": "The record's `id` as a list or record answer gave it.",
                "schema": {"type": "string"},
            }),
        );
    }
    json!({
        "operationId": id,
        "summary": summary,
        "tags": [family_name(model)],
        "parameters": parameters,
        "responses": responses,
        "security": [{"caller": []}],
    })
}

fn error_schema() -> Value {
    let categories: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
    let nullable_string = json!({"type": ["string", "null"]});
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["category", "code", "message", "retryable", "request_id"],
            "properties": {
                "category": {"type": "string", "enum": categories, "description": "The error taxonomy's category."},
                "code": {"type": "string", "description": "A finer, stable reason (`invalid_cursor`, `provider_error`, `malformed_provider_answer`)."},
                "message": {"type": "string"},
                "retryable": {"type": "boolean"},
                "retry_after": {"type": ["integer", "null"], "description": "Seconds to wait before trying again, when known."},
                "provider": nullable_string,
                "connection": nullable_string,
                "request_id": {"type": "string"},
                "provider_error": {"description": "The provider's own error body, verbatim (its JSON, or its text as a string)."},
                "details": {"description": "Structured detail (a SOQL guard's violations)."},
            },
        }},
    })
}

/// The whole document.
pub(crate) fn document() -> Value {
    let mut schemas = match record_schemas() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let mut paths = Map::new();
    for model in Model::ALL {
        schemas.insert(
            record_schema(model),
            json!({"allOf": [reference("Record"), reference(schema_name(model))]}),
        );
        schemas.insert(
            list_schema(model),
            json!({
                "type": "object",
                "required": ["data", "next_cursor"],
                "properties": {
                    "data": {"type": "array", "items": reference(&record_schema(model))},
                    "next_cursor": {
                        "type": ["string", "null"],
                        "description": "Ask the next page with ?cursor=<next_cursor>; null on the walk's last page.",
                    },
                },
            }),
        );
        let base = format!("/unified/{}/{}", family_name(model), model.collection());
        paths.insert(base.clone(), json!({"get": operation(model, true)}));
        paths.insert(
            format!("{base}/{{id}}"),
            json!({"get": operation(model, false)}),
        );
    }
    schemas.insert("Error".into(), error_schema());
    paths.insert(
        "/unified/openapi.json".into(),
        json!({"get": {
            "operationId": "openapi",
            "summary": "This document (no caller identity needed: it holds no data)",
            "responses": {"200": {"description": "The OpenAPI 3.1 document", "content": {"application/json": {}}}},
        }}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Gatehouse unified API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Canonical CRM and ATS records from every provider behind Gatehouse, one page at a time with one opaque cursor. Callers authenticate to Gatehouse as for any provider call (Proxy-Authorization: Bearer <caller token>, or a client certificate), and the scope policy must grant GET on the unified path for the connection.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"caller": {
                "type": "apiKey", "in": "header", "name": "Proxy-Authorization",
                "description": "Bearer <caller token>",
            }},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/unified-openapi.json")
    }

    #[test]
    fn the_committed_document_is_the_generated_one() {
        let generated = document_bytes();
        if std::env::var_os("GATEHOUSE_WRITE_OPENAPI").is_some() {
            std::fs::write(committed_path(), &generated).unwrap();
        }
        let committed = std::fs::read(committed_path()).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/unified-openapi.json is stale: GATEHOUSE_WRITE_OPENAPI=1 cargo test -p gatehouse --lib openapi"
        );
    }

    #[test]
    fn every_model_has_its_paths_and_every_reference_resolves() {
        let doc = document();
        for model in Model::ALL {
            let base = format!("/unified/{}/{}", family_name(model), model.collection());
            assert!(doc["paths"][&base]["get"].is_object(), "{base}");
            assert!(doc["paths"][format!("{base}/{{id}}")]["get"].is_object());
        }
        fn refs(value: &Value, out: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        out.push(r.clone());
                    }
                    map.values().for_each(|v| refs(v, out));
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.len() > 20);
        for r in all {
            let pointer = r.trim_start_matches('#');
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }
}
