//! `gatehouse demo`: every provider simulator, a Gatehouse in front of them on a generated
//! config, and a traffic generator — one command, no configuration, no external service.
//! The world (simulators, config, traffic) comes from `gatehouse_sim::demo`; this file only
//! runs it and tells the newcomer where to look.

use super::output;
use crate::config::Config;
use crate::listen::server::{shutdown_signal, Server};
use crate::state::AppState;
use gatehouse_sim::demo::{
    examples, run_traffic, unified_examples, unified_page, DemoWorld, TrafficStats,
};
use std::net::SocketAddr;
use std::path::Path;
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
    let admin_token = new_admin_token();
    let mut text = world.gatehouse_config(
        &listen.to_string(),
        &admin.to_string(),
        &dir.join("data"),
        &ca_file,
    );
    text.push_str(&admin_tokens_section(&admin_token));
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
    let simulators = world.simulators();
    let where_to_look = Banner {
        data_url: &data_url,
        admin_addr,
        admin_token: &admin_token,
        config_file: &config_file,
        simulators: &simulators,
    };
    for line in where_to_look.lines() {
        output::line(line);
    }
    // Asked while the server runs (it serves from `server.run` below).
    let unified = tokio::spawn({
        let data_url = data_url.clone();
        async move { show_unified_pages(&data_url).await }
    });
    output::line(
        "Traffic from crm-sync, recruiting and ai-agent is running; Ctrl-C stops everything.",
    );

    let stats = Arc::new(TrafficStats::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let traffic = tokio::spawn(run_traffic(data_url.clone(), stats.clone(), stop_rx));
    let reporter = {
        let stats = stats.clone();
        let where_to_look_again = Reminder {
            data_url: data_url.clone(),
            admin_addr,
        };
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(15)).await;
                output::line("traffic so far (status x count):");
                for line in stats.summary() {
                    output::line(format_args!("  {line}"));
                }
                // The URLs printed at the start have scrolled away by now.
                output::line(where_to_look_again.reminder());
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
    unified.abort();
    let _ = stop_tx.send(true);
    reporter.abort();
    let _ = traffic.await;
    output::line("final traffic (status x count):");
    for line in stats.summary() {
        output::line(format_args!("  {line}"));
    }
    world.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The id of the demo's admin token: the user name at the browser's login prompt.
const DEMO_ADMIN_ID: &str = "demo-admin";

/// A fresh random admin token for this run of the demo (the admin port asks for one beyond
/// its public paths). It is printed, and only its hash is written into the config.
fn new_admin_token() -> String {
    use base64::Engine;
    let bytes: [u8; 24] = rand::random();
    format!(
        "demo-admin-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// `[[admin.tokens]]` for the demo's config: one `admin` token.
fn admin_tokens_section(token: &str) -> String {
    format!(
        "\n[[admin.tokens]]\nid = \"{DEMO_ADMIN_ID}\"\ntoken_sha256 = \"{}\"\nrole = \"admin\"\n",
        crate::stages::caller::hash_token(token)
    )
}

/// What `gatehouse demo` prints first: where everything is and calls to try.
struct Banner<'a> {
    data_url: &'a str,
    admin_addr: SocketAddr,
    /// The admin port's token for this run.
    admin_token: &'a str,
    config_file: &'a Path,
    simulators: &'a [(&'a str, String)],
}

impl Banner<'_> {
    fn lines(&self) -> Vec<String> {
        let admin = self.admin_addr;
        let simulators: Vec<String> = self
            .simulators
            .iter()
            .map(|(name, url)| format!("{name} {url}"))
            .collect();
        let mut lines = vec![
            "Gatehouse demo is running.".to_owned(),
            format!("  data plane:  {}", self.data_url),
            format!("  admin:       http://{admin}   (/healthz /readyz /metrics)"),
            format!(
                "  dashboard:   http://{admin}/dashboard   (log in as {DEMO_ADMIN_ID}, password: the admin token)"
            ),
            format!("  admin token: {}", self.admin_token),
            format!("  config:      {}", self.config_file.display()),
            format!("  simulators:  {}", simulators.join("  ")),
            "Try:".to_owned(),
        ];
        for example in examples() {
            // `-G --data-urlencode` keeps the SOQL readable and lets curl encode it.
            let mut line = format!(
                "  curl -sG -H 'Proxy-Authorization: Bearer {}' '{}{}'",
                example.caller.token, self.data_url, example.path
            );
            if let Some(query) = example.query {
                line.push_str(&format!(" --data-urlencode 'q={query}'"));
            }
            line.push_str(&format!("   # {}", example.outcome));
            lines.push(line);
        }
        lines.push(format!(
            "  curl -s -H 'Authorization: Bearer {}' 'http://{admin}/status'   # the admin port, with the admin token",
            self.admin_token
        ));
        lines
    }
}

/// Asks the unified API for a page of CRM accounts and of ATS candidates, and says what came
/// back: one interface over two providers, each page with the cursor to the next.
async fn show_unified_pages(data_url: &str) {
    for example in unified_examples() {
        let said = match unified_page(data_url, &example).await {
            Ok(page) if page.status == 200 => format!(
                "{} records (first: {}), next_cursor: {}",
                page.records,
                page.first.as_deref().unwrap_or("none"),
                page.next_cursor
                    .as_deref()
                    .map_or("null".to_owned(), |c| format!(
                        "{}…",
                        c.chars().take(24).collect::<String>()
                    ))
            ),
            Ok(page) => format!("status {}", page.status),
            Err(error) => format!("failed: {error}"),
        };
        output::line(format_args!("Unified API: {}: {said}", example.what));
        output::line(format_args!(
            "    curl -s -H 'Proxy-Authorization: Bearer {}' '{data_url}{}'",
            example.caller.token, example.path_and_query
        ));
    }
}

/// One line with the URLs, repeated under each traffic summary.
struct Reminder {
    data_url: String,
    admin_addr: SocketAddr,
}

impl Reminder {
    fn reminder(&self) -> String {
        format!(
            "(data plane {}  dashboard http://{}/dashboard  metrics http://{}/metrics)",
            self.data_url, self.admin_addr, self.admin_addr
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn banner_text() -> String {
        let simulators = [("salesforce", "https://127.0.0.1:4443".to_owned())];
        Banner {
            data_url: "http://127.0.0.1:8080",
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            admin_token: "demo-admin-TOKEN",
            config_file: Path::new("/tmp/demo/gatehouse.toml"),
            simulators: &simulators,
        }
        .lines()
        .join("\n")
    }

    #[test]
    fn the_banner_shows_where_to_look_and_calls_that_run_as_printed() {
        let text = banner_text();
        for expected in [
            "data plane:  http://127.0.0.1:8080",
            "dashboard:   http://127.0.0.1:9090/dashboard",
            "simulators:  salesforce https://127.0.0.1:4443",
            "config:      /tmp/demo/gatehouse.toml",
        ] {
            assert!(text.contains(expected), "{expected}:\n{text}");
        }
        let first = text
            .lines()
            .find(|l| l.trim_start().starts_with("curl"))
            .unwrap_or_default();
        assert!(
            first.contains("'http://127.0.0.1:8080/acme-sf/services/data/v60.0/query'")
                && first.contains("--data-urlencode 'q=SELECT "),
            "{first}"
        );
        // The line must paste into a POSIX shell: single quotes around each argument, none inside.
        let command = first.split("   #").next().unwrap_or_default();
        assert_eq!(command.matches('\'').count() % 2, 0, "{command}");
        // The admin port asks for the token: the banner gives it, and a call that sends it.
        assert!(text.contains("admin token: demo-admin-TOKEN"), "{text}");
        assert!(text.contains("log in as demo-admin"), "{text}");
        let admin_call = text
            .lines()
            .find(|l| l.contains("http://127.0.0.1:9090/status"))
            .unwrap_or_default();
        assert!(
            admin_call.contains("curl -s -H 'Authorization: Bearer demo-admin-TOKEN'"),
            "{text}"
        );
    }

    #[test]
    fn the_demo_config_gets_an_admin_token_that_opens_the_dashboard() {
        let token = new_admin_token();
        assert!(token.len() > 40, "{token}");
        assert_ne!(token, new_admin_token(), "a new token each run");
        let config =
            crate::config::Config::from_str(Path::new("demo.toml"), &admin_tokens_section(&token))
                .unwrap();
        assert!(config.admin.warnings().is_empty());
        let auth = crate::admin::auth::AdminAuth::from_config(&config.admin).unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        assert!(matches!(
            auth.authorize(&http::Method::GET, "/dashboard", &headers),
            Ok(crate::admin::auth::Access::Granted(_))
        ));
    }

    #[test]
    fn the_reminder_repeats_the_urls() {
        let reminder = Reminder {
            data_url: "http://127.0.0.1:8080".into(),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
        }
        .reminder();
        assert!(reminder.contains("http://127.0.0.1:8080"), "{reminder}");
        assert!(
            reminder.contains("http://127.0.0.1:9090/dashboard"),
            "{reminder}"
        );
    }
}
