//! Parse + check throughput over the corpus, and the parse time of queries at Salesforce's
//! 100,000-character maximum in the shapes that stress a parser (many fields, a long IN
//! list, deep nesting, a long OR chain). Prints plain timed figures first (easy to quote),
//! then runs the criterion groups.

// A benchmark measures the wall clock; a failed setup may panic.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, Criterion, Throughput};
use gatehouse_soql::{analyze, parse, IndexCatalog, SelectivityOptions};
use std::time::{Duration, Instant};

const TYPICAL: &str = "SELECT Id, Name, Account.Name FROM Contact WHERE Email = 'a@b.c' AND CreatedDate = LAST_N_DAYS:30 LIMIT 100";

fn corpus() -> Vec<&'static str> {
    include_str!("../tests/corpus/valid_handwritten.soql")
        .lines()
        .chain(include_str!("../tests/corpus/valid_generated.soql").lines())
        .chain(include_str!("../tests/corpus/valid_reference.soql").lines())
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect()
}

/// The length of Salesforce's longest accepted statement, in characters.
const CAP: usize = 100_000;

/// Repeats `item(i)` joined by `sep` between `head` and `tail` while the whole stays within
/// the cap, then pads with spaces to exactly `CAP` characters.
fn fill(head: &str, sep: &str, tail: &str, item: impl Fn(usize) -> String) -> String {
    let mut body = String::new();
    let mut i = 0;
    loop {
        let next = item(i);
        let extra = if i == 0 { 0 } else { sep.len() } + next.len();
        if head.len() + body.len() + extra + tail.len() > CAP {
            break;
        }
        if i > 0 {
            body.push_str(sep);
        }
        body.push_str(&next);
        i += 1;
    }
    let pad = CAP - head.len() - body.len() - tail.len();
    format!("{head}{body}{}{tail}", " ".repeat(pad))
}

/// One condition nested `depth` groups deep, alternating AND and OR at each level (AND and
/// OR cannot be mixed without parentheses, so every level is a group).
fn nested(i: usize, depth: usize) -> String {
    let mut c = format!("Name = 'n{i}'");
    for level in 0..depth {
        let op = if level % 2 == 0 { "AND" } else { "OR" };
        c = format!("(Id = '001000000000001' {op} {c})");
    }
    c
}

/// (name, query) for each shape, every query exactly `CAP` characters.
fn cap_shapes() -> Vec<(&'static str, String)> {
    vec![
        (
            "many fields",
            fill("SELECT ", ", ", " FROM Account LIMIT 1", |i| {
                format!("Field{i}__c")
            }),
        ),
        (
            "long IN list",
            fill(
                "SELECT Id FROM Account WHERE Name IN (",
                ", ",
                ") LIMIT 5",
                |i| format!("'name {i}'"),
            ),
        ),
        (
            "deep nesting (40 levels, repeated)",
            fill("SELECT Id FROM Account WHERE ", " OR ", " LIMIT 5", |i| {
                nested(i, 40)
            }),
        ),
        (
            "long OR chain",
            fill("SELECT Id FROM Account WHERE ", " OR ", " LIMIT 5", |i| {
                format!("Name = 'n{i}'")
            }),
        ),
        (
            "deeper than allowed (refused)",
            fill("SELECT Id FROM Account WHERE ", "", "", |_| "(".to_string()),
        ),
    ]
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

/// CPU time this thread has run, in ns (Linux `/proc/thread-self/schedstat`). On a shared
/// machine wall time also counts the time other processes hold the cores; CPU time does
/// not, so both are printed.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Like `measure`, also returning CPU ns per query when the platform tells.
fn measure_cpu(
    queries: &[&str],
    budget: Duration,
    f: impl Fn(&str) -> usize,
) -> (f64, Option<f64>) {
    let cpu_start = thread_cpu_ns();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for q in queries {
            black_box(f(black_box(q)));
        }
        n += queries.len() as u64;
    }
    let wall = start.elapsed().as_secs_f64() * 1e9 / n as f64;
    let cpu = match (cpu_start, thread_cpu_ns()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / n as f64),
        _ => None,
    };
    (wall, cpu)
}

/// Runs `f` over `queries` for about `budget`, returns (queries/second, ns/query).
fn measure(queries: &[&str], budget: Duration, f: impl Fn(&str) -> usize) -> (f64, f64) {
    let (wall_ns, _) = measure_cpu(queries, budget, f);
    (1e9 / wall_ns, wall_ns)
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
    println!("queries of {CAP} characters (Salesforce's maximum); the budget is 5 ms each");
    println!("  (ms per query: wall clock, and in brackets this thread's CPU time)");
    let ms = |(wall, cpu): (f64, Option<f64>)| match cpu {
        Some(cpu) => format!("{:>7.3} [{:>6.3}]", wall / 1e6, cpu / 1e6),
        None => format!("{:>7.3}", wall / 1e6),
    };
    for (name, q) in cap_shapes() {
        assert_eq!(q.chars().count(), CAP, "{name}");
        let budget = Duration::from_millis(1500);
        let parse_only = measure_cpu(&[q.as_str()], budget, |q| {
            parse(q).map_or(0, |a| a.select.len())
        });
        let with_analysis = measure_cpu(&[q.as_str()], budget, |q| check(q, &catalog, &options));
        let outcome = match parse(&q) {
            Ok(_) => "parses",
            Err(_) => "refused",
        };
        println!(
            "  {name:36} {outcome:8} parse {}   parse + analysis {}",
            ms(parse_only),
            ms(with_analysis)
        );
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
    let mut g = c.benchmark_group("cap_shapes");
    g.sample_size(20);
    for (name, q) in cap_shapes() {
        g.bench_function(name, |b| b.iter(|| black_box(parse(black_box(&q)).is_ok())));
    }
    g.finish();
    c.final_summary();
}
