//! `gatehouse demo`: every provider simulator, a Gatehouse in front of them on a generated
//! config, and a traffic generator — one command, no configuration, no external service.
//! The world (simulators, config, traffic) comes from `gatehouse_sim::demo`; this file only
//! runs it and tells the newcomer where to look.

use crate::config::Config;
use crate::listen::server::{shutdown_signal, Server};
use crate::state::AppState;
use gatehouse_sim::demo::{run_traffic, DemoWorld, TrafficStats, CRM_SYNC};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(listen: SocketAddr, admin: SocketAddr, seconds: Option<u64>) -> ExitCode {
    match run_inner(listen, admin, seconds).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

async fn run_inner(
    listen: SocketAddr,
    admin: SocketAddr,
    seconds: Option<u64>,
) -> Result<(), String> {
    let world = DemoWorld::start()
        .await
        .map_err(|e| format!("starting the simulators: {e}"))?;
    let dir = std::env::temp_dir().join(format!("gatehouse-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let ca_file = dir.join("simulators-ca.pem");
    std::fs::write(&ca_file, world.ca_pem())
        .map_err(|e| format!("writing {}: {e}", ca_file.display()))?;
    let config_file = dir.join("gatehouse.toml");
    let text = world.gatehouse_config(
        &listen.to_string(),
        &admin.to_string(),
        &dir.join("data"),
        &ca_file,
    );
    std::fs::write(&config_file, text)
        .map_err(|e| format!("writing {}: {e}", config_file.display()))?;
    // The demo's store key lives in its own temporary directory, never in the environment.
    if std::env::var_os("GATEHOUSE_STORE_KEY").is_none() {
        let key_file = dir.join("store.key");
        if !key_file.exists() {
            let key: [u8; 32] = rand::random();
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(key);
            std::fs::write(&key_file, encoded)
                .map_err(|e| format!("writing {}: {e}", key_file.display()))?;
        }
    }
    let config = Config::load(&config_file).map_err(|e| format!("demo config: {e}"))?;
    let state = AppState::build(config).await.map_err(|e| e.to_string())?;
    let server = Server::bind(state).await.map_err(|e| e.to_string())?;
    let data_addr = server.data_addr().unwrap_or(listen);
    let admin_addr = server.admin_addr().unwrap_or(admin);
    let data_url = format!("http://{data_addr}");
    println!("Gatehouse demo is running.");
    println!("  data plane:  {data_url}");
    println!("  admin:       http://{admin_addr}   (/healthz /readyz /metrics)");
    println!("  dashboard:   http://{admin_addr}/dashboard");
    println!("  config:      {}", config_file.display());
    println!(
        "  simulators:  salesforce {}  hubspot {}  greenhouse {}  lever {}  ashby {}",
        world.salesforce.https_base_url(),
        world.hubspot.https_base_url(),
        world.greenhouse.https_base_url(),
        world.lever.https_base_url(),
        world.ashby.https_base_url()
    );
    println!("Try:");
    println!(
        "  curl -s -H 'Proxy-Authorization: Bearer {}' '{data_url}/acme-sf/services/data/v60.0/query?q=SELECT+Id,Name+FROM+Account+WHERE+CreatedDate=LAST_N_DAYS:30+LIMIT+5'",
        CRM_SYNC.token
    );
    println!("  curl -s -H 'Proxy-Authorization: Bearer {}' '{data_url}/acme-sf/services/data/v60.0/query?q=SELECT+Id+FROM+Account'   # blocked by the SOQL guard", CRM_SYNC.token);
    println!("Traffic from crm-sync, recruiting and ai-agent is running; Ctrl-C stops everything.");

    let stats = Arc::new(TrafficStats::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let traffic = tokio::spawn(run_traffic(data_url, stats.clone(), stop_rx));
    let reporter = {
        let stats = stats.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(15)).await;
                println!("traffic so far (status x count):");
                for line in stats.summary() {
                    println!("  {line}");
                }
            }
        })
    };
    let stop = async move {
        match seconds {
            Some(s) => tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(s)) => {}
                _ = shutdown_signal() => {}
            },
            None => shutdown_signal().await,
        }
    };
    server.run(stop).await;
    let _ = stop_tx.send(true);
    reporter.abort();
    let _ = traffic.await;
    println!("final traffic (status x count):");
    for line in stats.summary() {
        println!("  {line}");
    }
    world.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
