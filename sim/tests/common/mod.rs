#![allow(dead_code)]

use std::time::Duration;

use gatehouse_sim::{Provider, SimConfig, SimHandle, Simulator};

pub async fn start(provider: Provider, config: SimConfig) -> SimHandle {
    Simulator::start(provider, config)
        .await
        .expect("simulator starts")
}

/// A client that trusts the simulator's CA and does not follow redirects.
pub fn client(sim: &SimHandle) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("ca pem");
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

pub fn basic(key: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}
