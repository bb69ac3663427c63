//! Parse + check throughput over the corpus. Prints queries/second and ns/query first (a
//! plain timed loop, so the figures are easy to quote), then runs the criterion groups.

use criterion::{black_box, Criterion, Throughput};
use gatehouse_soql::{analyze, parse, IndexCatalog, SelectivityOptions};
use std::time::{Duration, Instant};

const TYPICAL: &str = "SELECT Id, Name, Account.Name FROM Contact WHERE Email = 'a@b.c' AND CreatedDate = LAST_N_DAYS:30 LIMIT 100";

fn corpus() -> Vec<&'static str> {
    include_str!("../tests/corpus/valid_handwritten.soql")
        .lines()
        .chain(include_str!("../tests/corpus/valid_generated.soql").lines())
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect()
}

fn check(q: &str, catalog: &IndexCatalog, options: &SelectivityOptions) -> usize {
    match parse(q) {
        Ok(ast) => analyze(&ast, catalog, options, Some(20_000))
            .main
            .filters
            .len(),
        Err(_) => 0,
    }
}

/// Runs `f` over `queries` for about `budget`, returns (queries/second, ns/query).
fn measure(queries: &[&str], budget: Duration, f: impl Fn(&str) -> usize) -> (f64, f64) {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for q in queries {
            black_box(f(black_box(q)));
        }
        n += queries.len() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    (n as f64 / secs, secs * 1e9 / n as f64)
}

fn report() {
    let queries = corpus();
    let catalog = IndexCatalog::standard();
    let options = SelectivityOptions::default();
    let budget = Duration::from_secs(2);
    let rows = [
        (
            "parse, corpus",
            measure(&queries, budget, |q| parse(q).map_or(0, |a| a.select.len())),
        ),
        (
            "parse + check, corpus",
            measure(&queries, budget, |q| check(q, &catalog, &options)),
        ),
        (
            "parse + check, typical query",
            measure(&[TYPICAL], budget, |q| check(q, &catalog, &options)),
        ),
    ];
    println!("corpus: {} queries", queries.len());
    for (name, (qps, ns)) in rows {
        println!("{name:32} {qps:>12.0} queries/s {ns:>9.0} ns/query");
    }
}

fn main() {
    report();
    let queries = corpus();
    let catalog = IndexCatalog::standard();
    let options = SelectivityOptions::default();
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("corpus");
    g.throughput(Throughput::Elements(queries.len() as u64));
    g.bench_function("parse", |b| {
        b.iter(|| {
            for q in &queries {
                black_box(parse(black_box(q)).is_ok());
            }
        })
    });
    g.bench_function("parse_check", |b| {
        b.iter(|| {
            for q in &queries {
                black_box(check(black_box(q), &catalog, &options));
            }
        })
    });
    g.finish();
    let mut g = c.benchmark_group("typical");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_check", |b| {
        b.iter(|| black_box(check(black_box(TYPICAL), &catalog, &options)))
    });
    g.finish();
    c.final_summary();
}
