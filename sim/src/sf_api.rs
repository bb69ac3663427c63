//! Salesforce REST resources under `/services/data/vXX.X/`: query/queryAll with
//! `nextRecordsUrl` paging and `Sforce-Query-Options: batchSize`, `?explain=`, sObject
//! rows (get/create/update/delete), describe, Get Updated, `/limits`; composite lives in
//! `sf_composite.rs`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use crate::data::{parse_datetime, sf_datetime};
use crate::http::{now_ms, Resp, SimRequest};
use crate::salesforce::sf_error;
use crate::server::Ctx;
use crate::sf_data::{object, FieldType, ObjectDef, Record, Store, OBJECTS};
use crate::soql::{self, Sel};

const MAX_CURSORS: usize = 500;

pub(crate) enum ApiOut {
    Json(u16, Value),
    Empty(u16),
    #[allow(dead_code)]
    Raw(Resp),
}

impl ApiOut {
    pub(crate) fn status(&self) -> u16 {
        match self {
            ApiOut::Json(s, _) | ApiOut::Empty(s) => *s,
            ApiOut::Raw(r) => r.status().as_u16(),
        }
    }

    pub(crate) fn body(&self) -> Value {
        match self {
            ApiOut::Json(_, v) => v.clone(),
            ApiOut::Empty(_) => Value::Null,
            ApiOut::Raw(r) => serde_json::from_slice(r.body()).unwrap_or(Value::Null),
        }
    }
}

pub(crate) fn not_found() -> ApiOut {
    ApiOut::Json(
        404,
        sf_error("NOT_FOUND", "The requested resource does not exist"),
    )
}

pub(crate) fn bad(code: &str, msg: &str) -> ApiOut {
    ApiOut::Json(400, sf_error(code, msg))
}

/// One REST call, from the wire or from a composite subrequest.
pub(crate) struct Call<'a> {
    pub method: &'a str,
    pub version: &'a str,
    pub rest: &'a str,
    pub query: Option<&'a str>,
    pub batch_size: Option<usize>,
    pub body: &'a [u8],
}

struct Cursor {
    records: Arc<Vec<Value>>,
    batch: usize,
}

pub(crate) struct SfApi {
    pub(crate) store: Store,
    cursors: Mutex<(HashMap<String, Cursor>, VecDeque<String>)>,
    next_cursor: AtomicU64,
}

impl SfApi {
    pub(crate) fn new(seed: u64, count: usize) -> Self {
        Self {
            store: Store::generate(seed, count),
            cursors: Mutex::new((HashMap::new(), VecDeque::new())),
            next_cursor: AtomicU64::new(1),
        }
    }

    pub(crate) fn dispatch(
        &self,
        ctx: &Ctx,
        req: &SimRequest,
        version: &str,
        rest: &str,
    ) -> ApiOut {
        let batch_size = req.header("sforce-query-options").and_then(|v| {
            v.split([',', ';'])
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("batchSize"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        });
        let call = Call {
            method: req.method.as_str(),
            version,
            rest,
            query: req.query.as_deref(),
            batch_size,
            body: &req.body,
        };
        self.route(ctx, &call, true)
    }

    /// Routes a call; `top` is false for composite subrequests (no nested composite).
    pub(crate) fn route(&self, ctx: &Ctx, call: &Call, top: bool) -> ApiOut {
        let rest = call.rest.trim_end_matches('/');
        let segs: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let qp: Vec<(String, String)> = call
            .query
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let param = |k: &str| qp.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let v = call.version;
        match (call.method, segs.as_slice()) {
            ("GET", []) => ApiOut::Json(
                200,
                json!({
                    "limits": format!("/services/data/v{v}/limits"),
                    "query": format!("/services/data/v{v}/query"),
                    "queryAll": format!("/services/data/v{v}/queryAll"),
                    "sobjects": format!("/services/data/v{v}/sobjects"),
                    "composite": format!("/services/data/v{v}/composite"),
                }),
            ),
            ("GET", ["limits"]) => self.limits(ctx),
            ("GET", [kind @ ("query" | "queryAll")]) => {
                if let Some(q) = param("explain") {
                    return self.explain(&q);
                }
                match param("q") {
                    Some(q) => self.query(&q, *kind == "queryAll", call.batch_size, v),
                    None => bad("MALFORMED_QUERY", "A query string has to be specified"),
                }
            }
            ("GET", ["query" | "queryAll", locator]) => self.next_page(locator, v),
            (_, ["composite", ..]) if !top => {
                bad("INVALID_API_INPUT", "Composite requests cannot be nested")
            }
            ("POST", ["composite"]) => crate::sf_composite::composite(self, ctx, call),
            ("POST", ["composite", "batch"]) => crate::sf_composite::batch(self, ctx, call),
            ("GET", ["sobjects"]) => ApiOut::Json(
                200,
                json!({
                    "encoding": "UTF-8",
                    "maxBatchSize": 200,
                    "sobjects": OBJECTS.iter().map(|o| json!({
                        "name": o.name, "label": o.name, "keyPrefix": o.prefix, "queryable": true,
                        "urls": {"sobject": format!("/services/data/v{v}/sobjects/{}", o.name)},
                    })).collect::<Vec<_>>(),
                }),
            ),
            (m, ["sobjects", obj, rest @ ..]) => match object(obj) {
                None => ApiOut::Json(
                    404,
                    sf_error("NOT_FOUND", "The requested resource does not exist"),
                ),
                Some(o) => self.sobject(m, o, rest, &param("fields"), call, &qp),
            },
            (m, _) if m != "GET" && m != "POST" && m != "PATCH" && m != "DELETE" => ApiOut::Json(
                405,
                sf_error(
                    "METHOD_NOT_ALLOWED",
                    &format!("HTTP Method '{m}' not allowed. Allowed are GET,POST,PATCH,DELETE"),
                ),
            ),
            _ => not_found(),
        }
    }

    fn limits(&self, ctx: &Ctx) -> ApiOut {
        let q = ctx.quota.peek();
        ApiOut::Json(
            200,
            json!({
                "DailyApiRequests": {"Max": q.limit, "Remaining": q.remaining()},
                "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                "DataStorageMB": {"Max": 5120, "Remaining": 5100},
                "FileStorageMB": {"Max": 20480, "Remaining": 20480},
                "ConcurrentSyncLongRunningRequests": {"Max": 25, "Remaining": 25},
            }),
        )
    }

    fn attributes(o: &ObjectDef, id: &str, version: &str) -> Value {
        json!({"type": o.name, "url": format!("/services/data/v{version}/sobjects/{}/{id}", o.name)})
    }

    /// Runs a query and returns the first page; the rest stays behind a query locator.
    fn query(&self, q: &str, all: bool, batch_size: Option<usize>, version: &str) -> ApiOut {
        let mut parsed = match soql::parse(q) {
            Ok(p) => p,
            Err(e) => return bad(e.code, &e.message),
        };
        let Some(obj) = object(&parsed.object) else {
            return bad(
                "INVALID_TYPE",
                &format!(
                    "\n{q}\n^\nERROR at Row:1:Column:1\nsObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
                    parsed.object
                ),
            );
        };
        if let Err(e) = soql::check(&mut parsed, obj) {
            return bad(e.code, &e.message);
        }
        let mut rows: Vec<Record> = {
            let recs = self.store.records.read();
            recs.get(obj.name)
                .map(|v| {
                    v.iter()
                        .filter(|r| all || r.get("IsDeleted") != Some(&Value::Bool(true)))
                        .filter(|r| {
                            parsed
                                .filter
                                .as_ref()
                                .is_none_or(|f| soql::matches(f, r, obj))
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        };
        if parsed.fields.iter().any(|s| matches!(s, Sel::Count)) {
            let n = rows.len().saturating_sub(parsed.offset.unwrap_or(0));
            let n = parsed.limit.map_or(n, |l| n.min(l));
            return ApiOut::Json(200, json!({"totalSize": n, "done": true, "records": []}));
        }
        soql::sort(&mut rows, &parsed.order, obj);
        let rows = rows
            .into_iter()
            .skip(parsed.offset.unwrap_or(0))
            .take(parsed.limit.unwrap_or(usize::MAX));
        let records: Vec<Value> = rows
            .map(|r| {
                let id = r.get("Id").and_then(Value::as_str).unwrap_or_default();
                let mut m = Map::new();
                m.insert("attributes".into(), Self::attributes(obj, id, version));
                for s in &parsed.fields {
                    if let Sel::Field(f) = s {
                        m.insert(f.clone(), r.get(f).cloned().unwrap_or(Value::Null));
                    }
                }
                Value::Object(m)
            })
            .collect();
        let batch = batch_size.unwrap_or(2000).clamp(200, 2000);
        let records = Arc::new(records);
        let locator = if records.len() > batch {
            let n = self.next_cursor.fetch_add(1, Ordering::Relaxed);
            let id = format!("01g5g{n:010}AAA");
            let mut c = self.cursors.lock();
            c.0.insert(
                id.clone(),
                Cursor {
                    records: records.clone(),
                    batch,
                },
            );
            c.1.push_back(id.clone());
            while c.1.len() > MAX_CURSORS {
                if let Some(old) = c.1.pop_front() {
                    c.0.remove(&old);
                }
            }
            Some(id)
        } else {
            None
        };
        ApiOut::Json(200, page(&records, 0, batch, locator.as_deref(), version))
    }

    fn next_page(&self, locator: &str, version: &str) -> ApiOut {
        let invalid = || bad("INVALID_QUERY_LOCATOR", "invalid query locator");
        let Some((id, offset)) = locator.rsplit_once('-') else {
            return invalid();
        };
        let Ok(offset) = offset.parse::<usize>() else {
            return invalid();
        };
        let c = self.cursors.lock();
        match c.0.get(id) {
            Some(cur) if offset < cur.records.len() => ApiOut::Json(
                200,
                page(&cur.records, offset, cur.batch, Some(id), version),
            ),
            _ => invalid(),
        }
    }

    fn sobject(
        &self,
        method: &str,
        o: &'static ObjectDef,
        rest: &[&str],
        fields: &Option<String>,
        call: &Call,
        qp: &[(String, String)],
    ) -> ApiOut {
        let v = call.version;
        match (method, rest) {
            ("GET", []) => ApiOut::Json(
                200,
                json!({"objectDescribe": {"name": o.name, "keyPrefix": o.prefix, "queryable": true}, "recentItems": []}),
            ),
            ("GET", ["describe"]) => ApiOut::Json(
                200,
                json!({
                    "name": o.name, "keyPrefix": o.prefix,
                    "fields": o.fields.iter().map(|f| json!({"name": f.name, "type": field_type_name(f.ty), "filterable": true})).collect::<Vec<_>>(),
                }),
            ),
            ("GET", ["updated"]) => self.updated(o, qp),
            ("POST", []) => self.create(o, call.body),
            ("GET", [id]) => match self.store.get(o, id) {
                Some(r) if r.get("IsDeleted") != Some(&Value::Bool(true)) => {
                    let id = r
                        .get("Id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let mut m = Map::new();
                    m.insert("attributes".into(), Self::attributes(o, &id, v));
                    let wanted: Option<Vec<&str>> = fields
                        .as_deref()
                        .map(|f| f.split(',').map(str::trim).collect());
                    if let Some(w) = &wanted {
                        if let Some(bad_f) = w.iter().find(|f| o.field(f).is_none()) {
                            return bad(
                                "INVALID_FIELD",
                                &format!("No such column '{bad_f}' on sobject of type {}", o.name),
                            );
                        }
                    }
                    for f in o.fields {
                        if wanted
                            .as_ref()
                            .is_none_or(|w| w.iter().any(|x| x.eq_ignore_ascii_case(f.name)))
                        {
                            m.insert(
                                f.name.to_owned(),
                                r.get(f.name).cloned().unwrap_or(Value::Null),
                            );
                        }
                    }
                    ApiOut::Json(200, Value::Object(m))
                }
                _ => not_found(),
            },
            ("PATCH", [id]) => self.update(o, id, call.body),
            ("DELETE", [id]) => {
                let Some(id18) = crate::sf_data::normalise_id(id) else {
                    return not_found();
                };
                let mut recs = self.store.records.write();
                match recs.get_mut(o.name).and_then(|v| {
                    v.iter_mut()
                        .find(|r| r.get("Id").and_then(Value::as_str) == Some(id18.as_str()))
                }) {
                    Some(r) if r.get("IsDeleted") != Some(&Value::Bool(true)) => {
                        r.insert("IsDeleted".into(), json!(true));
                        touch(r);
                        ApiOut::Empty(204)
                    }
                    _ => ApiOut::Json(404, sf_error("ENTITY_IS_DELETED", "entity is deleted")),
                }
            }
            (m, [_]) | (m, []) => ApiOut::Json(
                405,
                sf_error(
                    "METHOD_NOT_ALLOWED",
                    &format!("HTTP Method '{m}' not allowed. Allowed are GET,PATCH,DELETE"),
                ),
            ),
            _ => not_found(),
        }
    }

    fn fields_from_body(o: &ObjectDef, body: &[u8]) -> Result<Map<String, Value>, ApiOut> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|_| bad("JSON_PARSER_ERROR", "Unexpected character in request body"))?;
        let Value::Object(m) = v else {
            return Err(bad("JSON_PARSER_ERROR", "Expected a JSON object"));
        };
        let mut out = Map::new();
        for (k, val) in m {
            if k == "attributes" {
                continue;
            }
            let Some(f) = o.field(&k) else {
                return Err(ApiOut::Json(
                    400,
                    json!([{"message": format!("No such column '{k}' on sobject of type {}", o.name), "errorCode": "INVALID_FIELD", "fields": []}]),
                ));
            };
            if matches!(
                f.name,
                "Id" | "CreatedDate" | "LastModifiedDate" | "SystemModstamp" | "IsDeleted"
            ) {
                return Err(ApiOut::Json(
                    400,
                    json!([{"message": format!("Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", f.name), "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE", "fields": [f.name]}]),
                ));
            }
            out.insert(f.name.to_owned(), val);
        }
        Ok(out)
    }

    fn create(&self, o: &'static ObjectDef, body: &[u8]) -> ApiOut {
        let fields = match Self::fields_from_body(o, body) {
            Ok(f) => f,
            Err(e) => return e,
        };
        let missing: Vec<&str> = o
            .required
            .iter()
            .copied()
            .filter(|r| fields.get(*r).is_none_or(Value::is_null))
            .collect();
        if !missing.is_empty() {
            return ApiOut::Json(
                400,
                json!([{"message": format!("Required fields are missing: [{}]", missing.join(", ")), "errorCode": "REQUIRED_FIELD_MISSING", "fields": missing}]),
            );
        }
        let id = self.store.new_id(o);
        let mut r = Record::new();
        for f in o.fields {
            r.insert(f.name.to_owned(), Value::Null);
        }
        r.extend(fields);
        r.insert("Id".into(), json!(id));
        let now = sf_datetime((now_ms() / 1000) as i64);
        r.insert("CreatedDate".into(), json!(now));
        r.insert("IsDeleted".into(), json!(false));
        touch(&mut r);
        self.store
            .records
            .write()
            .entry(o.name)
            .or_default()
            .push(r);
        ApiOut::Json(201, json!({"id": id, "success": true, "errors": []}))
    }

    fn update(&self, o: &'static ObjectDef, id: &str, body: &[u8]) -> ApiOut {
        let fields = match Self::fields_from_body(o, body) {
            Ok(f) => f,
            Err(e) => return e,
        };
        let Some(id18) = crate::sf_data::normalise_id(id) else {
            return not_found();
        };
        let mut recs = self.store.records.write();
        match recs.get_mut(o.name).and_then(|v| {
            v.iter_mut()
                .find(|r| r.get("Id").and_then(Value::as_str) == Some(id18.as_str()))
        }) {
            Some(r) if r.get("IsDeleted") != Some(&Value::Bool(true)) => {
                r.extend(fields);
                touch(r);
                ApiOut::Empty(204)
            }
            _ => not_found(),
        }
    }

    /// Get Updated: ids whose SystemModstamp is in [start, end], start at most 30 days back.
    fn updated(&self, o: &ObjectDef, qp: &[(String, String)]) -> ApiOut {
        let get = |k: &str| {
            qp.iter()
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| parse_datetime(v))
        };
        let (Some(start), Some(end)) = (get("start"), get("end")) else {
            return bad(
                "INVALID_REPLICATION_DATE",
                "start and end must be valid dateTime values",
            );
        };
        let now = (now_ms() / 1000) as i64;
        if start < now - 30 * 86_400 || end < start {
            return bad(
                "INVALID_REPLICATION_DATE",
                "startDate before org replication enabled date or more than 30 days ago",
            );
        }
        let recs = self.store.records.read();
        let ids: Vec<Value> = recs
            .get(o.name)
            .map(|v| {
                v.iter()
                    .filter(|r| {
                        r.get("SystemModstamp")
                            .and_then(Value::as_str)
                            .and_then(parse_datetime)
                            .is_some_and(|t| t >= start && t <= end)
                    })
                    .filter_map(|r| r.get("Id").cloned())
                    .collect()
            })
            .unwrap_or_default();
        if ids.len() > 600_000 {
            return bad("EXCEEDED_ID_LIMIT", "too many ids");
        }
        ApiOut::Json(
            200,
            json!({"ids": ids, "latestDateCovered": sf_datetime(end.min(now))}),
        )
    }
}

fn touch(r: &mut Record) {
    let now = sf_datetime((now_ms() / 1000) as i64);
    r.insert("LastModifiedDate".into(), json!(now));
    r.insert("SystemModstamp".into(), json!(now));
}

fn page(
    records: &Arc<Vec<Value>>,
    offset: usize,
    batch: usize,
    locator: Option<&str>,
    version: &str,
) -> Value {
    let end = (offset + batch).min(records.len());
    let done = end >= records.len();
    let mut v = json!({
        "totalSize": records.len(),
        "done": done,
        "records": records.get(offset..end).unwrap_or(&[]),
    });
    if let (false, Some(id), Some(o)) = (done, locator, v.as_object_mut()) {
        o.insert(
            "nextRecordsUrl".into(),
            json!(format!("/services/data/v{version}/query/{id}-{end}")),
        );
    }
    v
}

fn field_type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::Id => "id",
        FieldType::Ref => "reference",
        FieldType::Str => "string",
        FieldType::DateTime => "datetime",
        FieldType::Date => "date",
        FieldType::Bool => "boolean",
        FieldType::Num => "double",
    }
}
