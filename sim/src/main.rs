//! `gatehouse-sim`: starts every provider simulator (one shared test CA) and prints their URLs
//! and demo credentials, for manual poking with curl. Runs until Ctrl-C.
//!
//! Usage: `gatehouse-sim [--records N] [--seed N] [--access-ttl SECS] [--ca-out FILE]`

use std::time::Duration;

use gatehouse_sim::{
    Provider, SimConfig, Simulator, TestCa, DEMO_API_KEY, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET,
    DEMO_PRIVATE_APP_TOKEN, DEMO_REFRESH_TOKEN,
};

struct Args {
    records: Option<usize>,
    seed: u64,
    access_ttl: Option<u64>,
    ca_out: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        records: None,
        seed: 42,
        access_ttl: None,
        ca_out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--records" => {
                a.records = Some(value()?.parse().map_err(|e| format!("--records: {e}"))?)
            }
            "--seed" => a.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--access-ttl" => {
                a.access_ttl = Some(value()?.parse().map_err(|e| format!("--access-ttl: {e}"))?)
            }
            "--ca-out" => a.ca_out = Some(value()?),
            "-h" | "--help" => return Err(
                "usage: gatehouse-sim [--records N] [--seed N] [--access-ttl SECS] [--ca-out FILE]"
                    .into(),
            ),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let ca = match TestCa::generate() {
        Ok(ca) => ca,
        Err(e) => {
            eprintln!("generating the test CA: {e}");
            std::process::exit(1);
        }
    };
    let mut handles = Vec::new();
    for p in Provider::ALL {
        let cfg = SimConfig {
            ca: Some(ca.clone()),
            record_count: args.records,
            seed: args.seed,
            access_token_lifetime: args.access_ttl.map(Duration::from_secs),
            ..SimConfig::default()
        };
        let h = match Simulator::start(p, cfg).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("starting the {p:?} simulator: {e}");
                std::process::exit(1);
            }
        };
        println!(
            "{:<14} http {:<24} https {:<26} token {}",
            p.name(),
            h.http_base_url(),
            h.https_base_url(),
            if p.uses_oauth() {
                h.token_url()
            } else {
                "-".to_owned()
            }
        );
        handles.push(h);
    }
    println!();
    println!("OAuth client:      {DEMO_CLIENT_ID} / {DEMO_CLIENT_SECRET}");
    println!(
        "Refresh token:     {DEMO_REFRESH_TOKEN}  (Salesforce, HubSpot, Greenhouse v3, Lever)"
    );
    println!("HubSpot app token: {DEMO_PRIVATE_APP_TOKEN}");
    println!("API key (Basic):   {DEMO_API_KEY}:  (Greenhouse v1, Lever, Ashby)");
    match &args.ca_out {
        Some(path) => match std::fs::write(path, ca.cert_pem()) {
            Ok(()) => println!("CA certificate written to {path}"),
            Err(e) => eprintln!("could not write {path}: {e}"),
        },
        None => println!(
            "CA certificate (use --ca-out FILE to save it):\n{}",
            ca.cert_pem()
        ),
    }
    println!("Admin: GET/POST <base>/__sim/faults, GET <base>/__sim/received. Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    for h in handles {
        h.shutdown().await;
    }
}
