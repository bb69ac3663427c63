//! HubSpot CRM records (contacts, companies, deals) and the list/get/search/batch-read logic.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};

use crate::data::{iso_millis, parse_datetime, slug, Gen, INDUSTRIES, OFFICES};
use crate::http::{correlation_id, json, Resp, SimRequest};
use crate::hubspot::hs_error;

const SEARCH_CAP: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HsType {
    Contacts,
    Companies,
    Deals,
}

impl HsType {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "contacts" | "contact" | "0-1" => Some(HsType::Contacts),
            "companies" | "company" | "0-2" => Some(HsType::Companies),
            "deals" | "deal" | "0-3" => Some(HsType::Deals),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            HsType::Contacts => "contacts",
            HsType::Companies => "companies",
            HsType::Deals => "deals",
        }
    }

    pub(crate) fn read_scope(self) -> &'static str {
        match self {
            HsType::Contacts => "crm.objects.contacts.read",
            HsType::Companies => "crm.objects.companies.read",
            HsType::Deals => "crm.objects.deals.read",
        }
    }

    pub(crate) fn allowed(self, scopes: &[String]) -> bool {
        let read = self.read_scope();
        let write = read.replace(".read", ".write");
        scopes.iter().any(|s| s == read || *s == write)
    }

    fn default_properties(self) -> &'static [&'static str] {
        match self {
            HsType::Contacts => &[
                "createdate",
                "email",
                "firstname",
                "hs_object_id",
                "lastmodifieddate",
                "lastname",
            ],
            HsType::Companies => &[
                "createdate",
                "domain",
                "hs_lastmodifieddate",
                "hs_object_id",
                "name",
            ],
            HsType::Deals => &[
                "amount",
                "closedate",
                "createdate",
                "dealname",
                "dealstage",
                "hs_lastmodifieddate",
                "hs_object_id",
                "pipeline",
            ],
        }
    }
}

struct HsRecord {
    id: u64,
    properties: Map<String, Value>,
    created: i64,
    updated: i64,
    archived: bool,
}

pub(crate) struct HsStore {
    contacts: Vec<HsRecord>,
    companies: Vec<HsRecord>,
    deals: Vec<HsRecord>,
}

const STAGES: &[&str] = &[
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
];
const LIFECYCLE: &[&str] = &[
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
];

fn rec(g: &mut Gen, id: u64, props: Vec<(&str, String)>, modified_key: &str) -> HsRecord {
    let (created, updated) = g.created_modified();
    let mut properties = Map::new();
    for (k, v) in props {
        properties.insert(k.to_owned(), json!(v));
    }
    properties.insert("hs_object_id".into(), json!(id.to_string()));
    properties.insert("createdate".into(), json!(iso_millis(created)));
    properties.insert(modified_key.to_owned(), json!(iso_millis(updated)));
    HsRecord {
        id,
        properties,
        created,
        updated,
        archived: g.chance(0.03),
    }
}

impl HsStore {
    pub(crate) fn generate(seed: u64, count: usize) -> Self {
        let mut g = Gen::new(seed, 2);
        let contacts = (0..count as u64)
            .map(|i| {
                let (first, last) = g.person();
                let company = g.company();
                let props = vec![
                    (
                        "email",
                        format!(
                            "{}.{}{}@{}.example.com",
                            slug(&first),
                            slug(&last),
                            i,
                            slug(&company)
                        ),
                    ),
                    ("firstname", first),
                    ("lastname", last),
                    ("phone", g.phone()),
                    ("company", company),
                    ("lifecyclestage", g.pick(LIFECYCLE).to_owned()),
                ];
                rec(&mut g, 101 + i * 2, props, "lastmodifieddate")
            })
            .collect();
        let companies = (0..count as u64)
            .map(|i| {
                let name = g.company();
                let props = vec![
                    ("domain", format!("{}{}.example.com", slug(&name), i)),
                    ("name", name),
                    ("industry", g.pick(INDUSTRIES).to_uppercase()),
                    ("city", g.pick(OFFICES).to_owned()),
                    ("numberofemployees", g.range(1, 20_000).to_string()),
                ];
                rec(&mut g, 5001 + i * 3, props, "hs_lastmodifieddate")
            })
            .collect();
        let deals = (0..count as u64)
            .map(|_| 0)
            .enumerate()
            .map(|(i, _)| {
                let (_, closedate) = g.created_modified();
                let props = vec![
                    ("dealname", format!("{} deal", g.company())),
                    ("amount", (g.range(1, 500) * 100).to_string()),
                    ("dealstage", g.pick(STAGES).to_owned()),
                    ("pipeline", "default".to_owned()),
                    ("closedate", iso_millis(closedate)),
                ];
                rec(&mut g, 90_001 + i as u64 * 5, props, "hs_lastmodifieddate")
            })
            .collect();
        Self {
            contacts,
            companies,
            deals,
        }
    }

    fn records(&self, ty: HsType) -> &[HsRecord] {
        match ty {
            HsType::Contacts => &self.contacts,
            HsType::Companies => &self.companies,
            HsType::Deals => &self.deals,
        }
    }

    fn render(r: &HsRecord, props: &[String]) -> Value {
        let mut p = Map::new();
        for k in props {
            p.insert(
                k.clone(),
                r.properties.get(k).cloned().unwrap_or(Value::Null),
            );
        }
        let mut v = json!({
            "id": r.id.to_string(),
            "properties": p,
            "createdAt": iso_millis(r.created),
            "updatedAt": iso_millis(r.updated),
            "archived": r.archived,
        });
        if let (true, Some(o)) = (r.archived, v.as_object_mut()) {
            o.insert("archivedAt".into(), json!(iso_millis(r.updated)));
        }
        v
    }

    fn wanted(ty: HsType, requested: Option<Vec<String>>) -> Vec<String> {
        match requested {
            Some(v) if !v.is_empty() => v,
            _ => ty
                .default_properties()
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }

    /// `GET /crm/v3/objects/{type}?limit&after&properties&archived`
    pub(crate) fn list(&self, req: &SimRequest, ty: HsType) -> Resp {
        let q = req.query_pairs();
        let limit = match q
            .iter()
            .find(|(k, _)| k == "limit")
            .map(|(_, v)| v.parse::<usize>())
        {
            None => 10,
            Some(Ok(n)) if n >= 1 => n.min(100),
            Some(_) => {
                return hs_error(
                    400,
                    "VALIDATION_ERROR",
                    "Invalid input: limit must be a positive integer",
                )
            }
        };
        let archived = q.iter().any(|(k, v)| k == "archived" && v == "true");
        let props: Vec<String> = q
            .iter()
            .filter(|(k, _)| k == "properties")
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        let props = Self::wanted(ty, Some(props));
        let after: u64 = match q
            .iter()
            .find(|(k, _)| k == "after")
            .map(|(_, v)| v.parse::<u64>())
        {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                return hs_error(
                    400,
                    "VALIDATION_ERROR",
                    "Invalid input: after must be a valid cursor",
                )
            }
        };
        let mut it = self
            .records(ty)
            .iter()
            .filter(|r| r.archived == archived && r.id >= after);
        let page: Vec<&HsRecord> = it.by_ref().take(limit).collect();
        let next = it.next();
        let results: Vec<Value> = page.iter().map(|r| Self::render(r, &props)).collect();
        let mut body = json!({"results": results});
        if let (Some(n), Some(o)) = (next, body.as_object_mut()) {
            let mut link = format!(
                "{}/crm/v3/objects/{}?after={}&limit={}",
                req.base_url,
                ty.name(),
                n.id,
                limit
            );
            if archived {
                link.push_str("&archived=true");
            }
            o.insert(
                "paging".into(),
                json!({"next": {"after": n.id.to_string(), "link": link}}),
            );
        }
        json(200, &body)
    }

    pub(crate) fn get_one(&self, req: &SimRequest, ty: HsType, id: &str) -> Resp {
        let props: Option<Vec<String>> = req.query_param("properties").map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        });
        let found = id
            .parse::<u64>()
            .ok()
            .and_then(|n| self.records(ty).iter().find(|r| r.id == n));
        match found {
            Some(r) => json(200, &Self::render(r, &Self::wanted(ty, props))),
            None => hs_error(
                404,
                "OBJECT_NOT_FOUND",
                "Object not found.  objectId are usually numeric.",
            ),
        }
    }

    pub(crate) fn batch_read(&self, req: &SimRequest, ty: HsType) -> Resp {
        let Some(body) = req.json() else {
            return hs_error(400, "VALIDATION_ERROR", "Invalid input JSON");
        };
        let ids: Vec<String> = body["inputs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| {
                        i["id"]
                            .as_str()
                            .map(str::to_owned)
                            .or_else(|| i["id"].as_u64().map(|n| n.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if ids.len() > 100 {
            return hs_error(
                400,
                "VALIDATION_ERROR",
                "Batch input must contain at most 100 inputs",
            );
        }
        let props = Self::wanted(ty, str_list(&body["properties"]));
        let results: Vec<Value> = ids
            .iter()
            .filter_map(|id| id.parse::<u64>().ok())
            .filter_map(|n| self.records(ty).iter().find(|r| r.id == n))
            .map(|r| Self::render(r, &props))
            .collect();
        let now = iso_millis(crate::http::now_ms() as i64 / 1000);
        json(
            200,
            &json!({"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}),
        )
    }

    /// `POST /crm/v3/objects/{type}/search`: filterGroups (OR of ANDs), sorts, limit ≤ 200,
    /// `after` offset; at most 10,000 results reachable (400 past that).
    pub(crate) fn search(&self, req: &SimRequest, ty: HsType) -> Resp {
        let Some(body) = req.json() else {
            return hs_error(400, "VALIDATION_ERROR", "Invalid input JSON on line 1");
        };
        let limit = body["limit"].as_u64().unwrap_or(10).clamp(1, 200) as usize;
        let after: usize = match &body["after"] {
            Value::Null => 0,
            Value::String(s) => match s.parse() {
                Ok(n) => n,
                Err(_) => {
                    return hs_error(
                        400,
                        "VALIDATION_ERROR",
                        "Invalid input: after must be numeric",
                    )
                }
            },
            Value::Number(n) => n.as_u64().unwrap_or(0) as usize,
            _ => return hs_error(400, "VALIDATION_ERROR", "Invalid input: after"),
        };
        if after >= SEARCH_CAP || after + limit > SEARCH_CAP {
            return json(
                400,
                &json!({
                    "status": "error",
                    "message": "There was a problem with the request.",
                    "correlationId": correlation_id(),
                    "category": "VALIDATION_ERROR",
                    "errors": [{"message": format!("Search results are limited to {SEARCH_CAP}; after + limit must not exceed it."), "code": "INVALID_LIMIT"}],
                }),
            );
        }
        let groups: Vec<Vec<Value>> = body["filterGroups"]
            .as_array()
            .map(|gs| {
                gs.iter()
                    .map(|g| g["filters"].as_array().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        let query = body["query"].as_str().map(str::to_lowercase);
        let mut matched: Vec<&HsRecord> = self
            .records(ty)
            .iter()
            .filter(|r| !r.archived)
            .filter(|r| {
                groups.is_empty()
                    || groups
                        .iter()
                        .any(|g| g.iter().all(|f| filter_matches(r, f)))
            })
            .filter(|r| {
                query.as_ref().is_none_or(|q| {
                    r.properties
                        .values()
                        .filter_map(Value::as_str)
                        .any(|v| v.to_lowercase().contains(q.as_str()))
                })
            })
            .collect();
        if let Some(sorts) = body["sorts"].as_array() {
            let keys: Vec<(String, bool)> = sorts
                .iter()
                .filter_map(|s| match s {
                    Value::String(p) => Some(match p.strip_prefix('-') {
                        Some(p) => (p.to_owned(), false),
                        None => (p.clone(), true),
                    }),
                    Value::Object(_) => Some((
                        s["propertyName"].as_str()?.to_owned(),
                        !s["direction"]
                            .as_str()
                            .unwrap_or("ASCENDING")
                            .eq_ignore_ascii_case("DESCENDING"),
                    )),
                    _ => None,
                })
                .collect();
            matched.sort_by(|a, b| {
                for (k, asc) in &keys {
                    let o = cmp_opt(prop(a, k).as_deref(), prop(b, k).as_deref());
                    let o = if *asc { o } else { o.reverse() };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.id.cmp(&b.id)
            });
        }
        let total = matched.len();
        let props = Self::wanted(ty, str_list(&body["properties"]));
        let results: Vec<Value> = matched
            .iter()
            .skip(after)
            .take(limit)
            .map(|r| Self::render(r, &props))
            .collect();
        let mut out = json!({"total": total, "results": results});
        if after + limit < total {
            if let Some(o) = out.as_object_mut() {
                o.insert(
                    "paging".into(),
                    json!({"next": {"after": (after + limit).to_string()}}),
                );
            }
        }
        json(200, &out)
    }
}

fn str_list(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    })
}

fn prop(r: &HsRecord, k: &str) -> Option<String> {
    match k {
        "hs_object_id" => Some(r.id.to_string()),
        _ => r
            .properties
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

fn value_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Numbers numerically; datetimes against ISO or epoch-millisecond values; else case-insensitive text.
fn cmp_values(a: &str, b: &str) -> Ordering {
    if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
        return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    }
    if let Some(x) = parse_datetime(a) {
        let y = parse_datetime(b)
            .map(|s| s * 1000)
            .or_else(|| b.parse::<i64>().ok());
        if let Some(y) = y {
            return (x * 1000).cmp(&y);
        }
    }
    a.to_lowercase().cmp(&b.to_lowercase())
}

fn cmp_opt(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => cmp_values(a, b),
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
    }
}

fn filter_matches(r: &HsRecord, f: &Value) -> bool {
    let Some(name) = f["propertyName"].as_str() else {
        return false;
    };
    let op = f["operator"].as_str().unwrap_or("EQ");
    let actual = prop(r, name);
    let value = value_str(&f["value"]);
    let values: Vec<String> = f["values"]
        .as_array()
        .map(|a| a.iter().filter_map(value_str).collect())
        .unwrap_or_default();
    let cmp = |v: &Option<String>| match (&actual, v) {
        (Some(a), Some(b)) => Some(cmp_values(a, b)),
        _ => None,
    };
    match op {
        "EQ" => cmp(&value) == Some(Ordering::Equal),
        "NEQ" => cmp(&value) != Some(Ordering::Equal),
        "LT" => cmp(&value) == Some(Ordering::Less),
        "LTE" => matches!(cmp(&value), Some(Ordering::Less | Ordering::Equal)),
        "GT" => cmp(&value) == Some(Ordering::Greater),
        "GTE" => matches!(cmp(&value), Some(Ordering::Greater | Ordering::Equal)),
        "BETWEEN" => {
            let hi = value_str(&f["highValue"]);
            matches!(cmp(&value), Some(Ordering::Greater | Ordering::Equal))
                && matches!(cmp(&hi), Some(Ordering::Less | Ordering::Equal))
        }
        "IN" => actual
            .as_ref()
            .is_some_and(|a| values.iter().any(|v| cmp_values(a, v) == Ordering::Equal)),
        "NOT_IN" => !actual
            .as_ref()
            .is_some_and(|a| values.iter().any(|v| cmp_values(a, v) == Ordering::Equal)),
        "HAS_PROPERTY" => actual.is_some(),
        "NOT_HAS_PROPERTY" => actual.is_none(),
        "CONTAINS_TOKEN" => match (&actual, &value) {
            (Some(a), Some(v)) => {
                let v = v.trim_matches('*').to_lowercase();
                a.to_lowercase().contains(&v)
            }
            _ => false,
        },
        _ => false,
    }
}
