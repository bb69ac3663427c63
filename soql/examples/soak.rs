//! A fuzz soak that runs on stable Rust (cargo-fuzz needs nightly): mutates the corpus at
//! random for N seconds and checks that the parser never panics, never takes long on one
//! input, and that everything it accepts round-trips through the printer.
//!
//! `cargo run -p gatehouse-soql --release --example soak -- [SECONDS] [SEED]`

// A soak run measures the wall clock and stops at a wall-clock deadline.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use gatehouse_soql::{analyze, parse_with, print, IndexCatalog, ParseOptions, SelectivityOptions};
use std::time::{Duration, Instant};

/// xorshift64*: deterministic for a given seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const TOKENS: &[&str] = &[
    "(",
    ")",
    ",",
    ".",
    ":",
    "'",
    "\\",
    "=",
    "!=",
    "<>",
    "<",
    ">=",
    " AND ",
    " OR ",
    " NOT ",
    "NOT ",
    " IN ",
    " LIKE ",
    "SELECT ",
    " FROM ",
    " WHERE ",
    " LIMIT ",
    " OFFSET ",
    " GROUP BY ",
    " ORDER BY ",
    " HAVING ",
    "TYPEOF ",
    " WHEN ",
    " THEN ",
    " ELSE ",
    " END",
    "FIELDS(ALL)",
    "COUNT()",
    "null",
    "2024-02-29",
    "2024-13-01",
    "2024-05-01T10:00:00Z",
    "T25:",
    "LAST_N_DAYS:",
    "USD",
    "5",
    "-1",
    "99999999999999999999",
    "(SELECT Id FROM Contacts)",
    " IN (SELECT AccountId FROM Contact)",
    "'%x'",
    "é",
    "\u{0}",
    "--",
    "/*",
    "*",
    " WITH SECURITY_ENFORCED",
    " USING SCOPE Mine",
    " FOR UPDATE",
    " ALL ROWS",
    ":x",
    "DISTANCE(",
    "GEOLOCATION(",
    // Forms added with issue 14: binds with brackets, escapes, FROM paths, WITH filters.
    ":ids.keySet()",
    ":a[0].Id",
    ":new Map<Id, Account>(",
    "[",
    "]",
    "<",
    ">",
    "\\u00e9",
    "\\u",
    ", c.Account a",
    "FROM Account.Contacts",
    " WITH UserId = '005000000000001'",
    " WITH RecordVisibilityContext (maxDescriptorPerRecord=1)",
    " USING SCOPE my_territory",
    " n",
];

fn mutate(rng: &mut Rng, seeds: &[&str]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = (rng.next() & 0xff) as u8;
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                v.splice(at..at, t.iter().copied());
            }
            2 if !v.is_empty() => {
                let end = (at + rng.below(12)).min(v.len());
                v.drain(at.min(end)..end);
            }
            3 if !v.is_empty() => {
                let start = rng.below(v.len());
                let end = (start + rng.below(20)).min(v.len());
                let piece: Vec<u8> = v[start..end].to_vec();
                v.splice(at..at, piece);
            }
            4 => {
                let other = seeds[rng.below(seeds.len())].as_bytes();
                let cut = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[cut..]);
            }
            5 => {
                let depth = rng.below(300);
                let mut nested = "(".repeat(depth).into_bytes();
                nested.extend_from_slice(b"Name = 'a'");
                nested.extend(std::iter::repeat_n(b')', depth));
                v.splice(at..at, nested);
            }
            _ => v.truncate(at),
        }
    }
    v
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let seed: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0x005e_ed0f_50c1);
    let corpus: Vec<&str> = include_str!("../tests/corpus/valid_handwritten.soql")
        .lines()
        .chain(include_str!("../tests/corpus/valid_generated.soql").lines())
        .chain(include_str!("../tests/corpus/valid_reference.soql").lines())
        .chain(include_str!("../tests/corpus/invalid.soql").lines())
        .filter(|l| !l.starts_with('#'))
        .collect();
    let catalog = IndexCatalog::standard();
    let options = SelectivityOptions::default();
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut inputs, mut accepted, mut slowest) = (0u64, 0u64, Duration::ZERO);
    let mut slowest_input = String::new();
    while Instant::now() < deadline {
        for _ in 0..1000 {
            let bytes = mutate(&mut rng, &corpus);
            let text = String::from_utf8_lossy(&bytes);
            let started = Instant::now();
            for apex in [false, true] {
                let opts = ParseOptions { apex };
                let outcome = std::panic::catch_unwind(|| {
                    if let Ok(q) = parse_with(&text, opts) {
                        let printed = print(&q);
                        match parse_with(&printed, opts) {
                            Ok(again) if again == q => {}
                            Ok(_) => panic!("round trip changed the tree\n input: {text:?}\n printed: {printed:?}"),
                            Err(e) => panic!("printed query does not parse: {e}\n input: {text:?}\n printed: {printed:?}"),
                        }
                        let _ = analyze(&q, &catalog, &options, Some(20_000));
                        true
                    } else {
                        false
                    }
                });
                match outcome {
                    Ok(ok) => accepted += u64::from(ok),
                    Err(_) => {
                        eprintln!("PANIC on input {text:?} (seed {seed})");
                        std::process::exit(1);
                    }
                }
            }
            let took = started.elapsed();
            if took > slowest {
                slowest = took;
                slowest_input = text.to_string();
            }
            if took > Duration::from_secs(1) {
                eprintln!("SLOW ({took:?}) on input {text:?}");
                std::process::exit(1);
            }
            inputs += 1;
        }
    }
    // On a shared machine one slow input can be a pause of the process, not of the
    // parser: time the slowest input again and report the best of three.
    let retimed = (0..3)
        .map(|_| {
            let started = Instant::now();
            for apex in [false, true] {
                let _ = parse_with(&slowest_input, ParseOptions { apex });
            }
            started.elapsed()
        })
        .min()
        .unwrap_or_default();
    println!(
        "soak: {inputs} inputs in {seconds}s, {accepted} parses accepted (API + Apex modes), no panic, slowest input {slowest:?} ({} bytes; {retimed:?} when timed again), seed {seed}",
        slowest_input.len()
    );
}
