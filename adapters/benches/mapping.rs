//! Mapping cost per record: each provider's `read_page` on a realistic full page (its largest
//! page size, records shaped like the golden payloads), parsing included. Criterion reports
//! records per second; the time per record is the inverse.
//!
//! `cargo bench -p gatehouse-adapters --bench mapping -- --quick`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use gatehouse_adapters::builtin;
use gatehouse_adapters::models::Model;
use gatehouse_adapters::unified::{Answer, ListAsk};
use serde_json::{json, Value};

fn golden(path: &str) -> Value {
    let full = format!("{}/tests/golden/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(full).unwrap()).unwrap()
}

/// `count` copies of `record`, each with its own id at `id_key`.
fn copies(record: &Value, id_key: &str, count: usize, id: impl Fn(usize) -> Value) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let mut r = record.clone();
            r[id_key] = id(i);
            r
        })
        .collect()
}

struct Case {
    provider: &'static str,
    model: Model,
    records: usize,
    body: Vec<u8>,
    headers: http::HeaderMap,
}

fn cases() -> Vec<Case> {
    let sf = golden("salesforce/accounts_page.json")["records"][0].clone();
    let hs = golden("hubspot/companies_page.json")["results"][0].clone();
    let gh = golden("greenhouse/candidates_page.json")[0].clone();
    let lv = golden("lever/opportunities_page.json")["data"][0].clone();
    let ab = golden("ashby/candidates_page.json")["results"][0].clone();
    let mut link = http::HeaderMap::new();
    link.insert(
        http::header::LINK,
        http::HeaderValue::from_static(
            "<https://harvest.greenhouse.io/v1/candidates?page=2&per_page=500>; rel=\"next\"",
        ),
    );
    let page = |v: Value| serde_json::to_vec(&v).unwrap();
    vec![
        Case {
            provider: "salesforce",
            model: Model::Account,
            records: 2000,
            body: page(json!({"totalSize": 9000, "done": true, "records":
                copies(&sf, "Id", 2000, |i| json!(format!("0015g0000{i:06}AAAA")))})),
            headers: http::HeaderMap::new(),
        },
        Case {
            provider: "hubspot",
            model: Model::Account,
            records: 100,
            body: page(
                json!({"results": copies(&hs, "id", 100, |i| json!((5000 + i).to_string())),
                "paging": {"next": {"after": "9999"}}}),
            ),
            headers: http::HeaderMap::new(),
        },
        Case {
            provider: "greenhouse",
            model: Model::Candidate,
            records: 500,
            body: page(json!(copies(&gh, "id", 500, |i| json!(10_000_000 + i)))),
            headers: link,
        },
        Case {
            provider: "lever",
            model: Model::Candidate,
            records: 100,
            body: page(
                json!({"data": copies(&lv, "id", 100, |i| json!(format!("opp-{i}"))),
                "hasNext": true, "next": "WzEwMF0"}),
            ),
            headers: http::HeaderMap::new(),
        },
        Case {
            provider: "ashby",
            model: Model::Candidate,
            records: 100,
            body: page(
                json!({"success": true, "results": copies(&ab, "id", 100, |i| json!(format!("cand-{i}"))),
                "moreDataAvailable": true, "nextCursor": "Y3Vyc29y"}),
            ),
            headers: http::HeaderMap::new(),
        },
    ]
}

fn mapping(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_page");
    for case in cases() {
        let provider = builtin(case.provider).unwrap();
        let api = provider.unified().unwrap();
        let ask = ListAsk {
            page_size: api.max_page_size(case.model),
            ..ListAsk::default()
        };
        let answer = Answer {
            status: 200,
            headers: &case.headers,
            body: &case.body,
        };
        let read = api.read_page(case.model, &ask, &answer).unwrap();
        assert_eq!(read.records.len(), case.records);
        group.throughput(Throughput::Elements(case.records as u64));
        group.bench_function(
            format!("{}/{}", case.provider, case.model.collection()),
            |b| b.iter(|| black_box(api.read_page(case.model, &ask, &answer).unwrap())),
        );
    }
    group.finish();
}

criterion_group!(benches, mapping);
criterion_main!(benches);
