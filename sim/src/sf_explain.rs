//! Salesforce `?explain=`: a query plan per usable index plus the table scan, cheapest first.
//! `relativeCost` > 1 means "not selective": a filter on unindexed fields, or no filter over a
//! large object (more than 1000 live rows).

use serde_json::{json, Value};

use crate::sf_api::{bad, ApiOut, SfApi};
use crate::sf_data::{object, ObjectDef, Record};
use crate::soql::{self, Expr, Op};

impl SfApi {
    /// `?explain=`: a query plan per usable index plus the table scan, cheapest first.
    pub(crate) fn explain(&self, q: &str) -> ApiOut {
        let mut parsed = match soql::parse(q) {
            Ok(p) => p,
            Err(e) => return bad(e.code, &e.message),
        };
        let Some(obj) = object(&parsed.object) else {
            return bad(
                "INVALID_TYPE",
                &format!("sObject type '{}' is not supported.", parsed.object),
            );
        };
        if let Err(e) = soql::check(&mut parsed, obj) {
            return bad(e.code, &e.message);
        }
        let recs = self.store.records.read();
        let live: Vec<&Record> = recs
            .get(obj.name)
            .map(|v| {
                v.iter()
                    .filter(|r| r.get("IsDeleted") != Some(&Value::Bool(true)))
                    .collect()
            })
            .unwrap_or_default();
        let total = live.len().max(1) as f64;
        let mut plans = Vec::new();
        let mut unindexed = Vec::new();
        if let Some(filter) = &parsed.filter {
            let top: Vec<&Expr> = match filter {
                Expr::And(v) => v.iter().collect(),
                e => vec![e],
            };
            for term in top {
                match indexable(term, obj) {
                    Some(field) => {
                        let card = live.iter().filter(|r| soql::matches(term, r, obj)).count();
                        plans.push(json!({
                            "cardinality": card,
                            "fields": [field],
                            "leadingOperationType": "Index",
                            "notes": [],
                            "relativeCost": round3(card as f64 / (0.3 * total)),
                            "sobjectCardinality": live.len(),
                            "sobjectType": obj.name,
                        }));
                    }
                    None => unindexed.extend(fields_of(term)),
                }
            }
        }
        let matched = match &parsed.filter {
            Some(f) => live.iter().filter(|r| soql::matches(f, r, obj)).count(),
            None => live.len(),
        };
        let scan_cost = if parsed.filter.is_some() {
            1.0 + total / 2000.0
        } else {
            total / 1000.0
        };
        let notes: Vec<Value> = if unindexed.is_empty() {
            Vec::new()
        } else {
            unindexed.sort();
            unindexed.dedup();
            vec![
                json!({"description": "Not considering filter for optimization because unindexed", "fields": unindexed, "tableEnumOrId": obj.name}),
            ]
        };
        plans.push(json!({
            "cardinality": matched,
            "fields": [],
            "leadingOperationType": "TableScan",
            "notes": notes,
            "relativeCost": round3(scan_cost),
            "sobjectCardinality": live.len(),
            "sobjectType": obj.name,
        }));
        plans.sort_by(|a, b| {
            let (x, y) = (
                a["relativeCost"].as_f64().unwrap_or(0.0),
                b["relativeCost"].as_f64().unwrap_or(0.0),
            );
            x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
        });
        ApiOut::Json(200, json!({"plans": plans, "sourceQuery": q}))
    }
}

/// The indexed field a top-level filter term can lead with (=, <, >, IN on an indexed field).
fn indexable(e: &Expr, obj: &ObjectDef) -> Option<String> {
    match e {
        Expr::Cmp(f, op, _) if *op != Op::Ne && *op != Op::Like => obj
            .field(f)
            .filter(|d| d.indexed)
            .map(|d| d.name.to_owned()),
        Expr::Cmp(f, Op::Like, soql::Lit::Str(p)) if !p.starts_with('%') => obj
            .field(f)
            .filter(|d| d.indexed)
            .map(|d| d.name.to_owned()),
        Expr::In(f, _, false) => obj
            .field(f)
            .filter(|d| d.indexed)
            .map(|d| d.name.to_owned()),
        _ => None,
    }
}

fn fields_of(e: &Expr) -> Vec<String> {
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().flat_map(fields_of).collect(),
        Expr::Not(x) => fields_of(x),
        Expr::Cmp(f, _, _) | Expr::In(f, _, _) => vec![f.clone()],
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
