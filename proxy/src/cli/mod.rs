//! The `gatehouse` command line: `run`, `check`, `hash-token`, `soql`, and (with the default
//! `demo` feature) `demo`.

#[cfg(feature = "demo")]
mod demo;
mod output;
mod soql;

use crate::config::Config;
use crate::listen::server::{shutdown_signal, Server};
use crate::state::AppState;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Outbound guardrail proxy for SaaS provider APIs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--config`, shared by every subcommand that reads one.
#[derive(clap::Args)]
struct ConfigArg {
    /// The config file; relative paths in it are relative to its directory.
    #[arg(
        long,
        short,
        env = "GATEHOUSE_CONFIG",
        default_value = "gatehouse.toml"
    )]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the data plane and the admin port.
    Run {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Validate a config (and its policy file) and print every error with its location.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Start simulated providers, a Gatehouse in front of them and some traffic. No setup.
    #[cfg(feature = "demo")]
    Demo {
        /// Data-plane address of the demo Gatehouse.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Admin address of the demo Gatehouse.
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin: std::net::SocketAddr,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Print the SHA-256 of a caller token read from stdin, for the policy's `token_sha256`.
    HashToken,
    /// Keys that encrypt tokens at rest.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// SOQL tools for CI pipelines that generate queries.
    Soql {
        #[command(subcommand)]
        command: SoqlCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new random key (base64 of 32 bytes) for `[store] key_env` / `key_file`.
    Generate,
    /// Re-encrypt every stored record under a new key. The new key is read from an
    /// environment variable (never from the command line, so it stays out of `ps` and shell
    /// history); the current key must still be configured.
    Rotate {
        #[command(flatten)]
        config: ConfigArg,
        /// Environment variable holding the new key.
        #[arg(long, default_value = "GATEHOUSE_NEW_STORE_KEY")]
        new_key_env: String,
    },
}

#[derive(Subcommand)]
enum SoqlCommand {
    /// Check queries (arguments, or one per line on stdin) against the SOQL guard.
    /// Exit code 0: all allowed; 1: any blocked; 2: usage error.
    Check(SoqlCheck),
}

#[derive(clap::Args)]
struct SoqlCheck {
    /// A SOQL policy file, or a gatehouse config (its connections' and callers' `soql` tables).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Apply this caller's allow-lists and rule overrides.
    #[arg(long)]
    caller: Option<String>,
    /// Apply this connection's settings.
    #[arg(long)]
    connection: Option<String>,
    /// One JSON object per query.
    #[arg(long)]
    json: bool,
    /// Accept Apex bind syntax (`:ids`, `:ids.keySet()`, `ALL ROWS`) for SOQL taken from Apex.
    #[arg(long)]
    apex: bool,
    queries: Vec<String>,
}

impl From<SoqlCheck> for crate::cli::soql::SoqlCheckArgs {
    fn from(c: SoqlCheck) -> Self {
        Self {
            policy: c.policy,
            caller: c.caller,
            connection: c.connection,
            json: c.json,
            apex: c.apex,
            queries: c.queries,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config.config),
        Command::HashToken => hash_token(),
        Command::Keys {
            command: KeysCommand::Generate,
        } => {
            output::line(crate::credentials::generate_key().expose());
            ExitCode::SUCCESS
        }
        Command::Keys {
            command:
                KeysCommand::Rotate {
                    config,
                    new_key_env,
                },
        } => {
            crate::telemetry::log::init();
            let Some(config) = load_or_report(&config.config) else {
                return ExitCode::from(2);
            };
            let Ok(new_key) = std::env::var(&new_key_env) else {
                eprintln!("error: set {new_key_env} to the new key (gatehouse keys generate)");
                return ExitCode::from(2);
            };
            let new_key = crate::secret::Secret::new(new_key);
            runtime(|| async move {
                match crate::credentials::rotate_keys(&config, &new_key).await {
                    Ok(report) => {
                        output::line(format_args!(
                            "re-encrypted {} records: key {} -> {}; now configure the new key as current and the old one as previous_key_* until every process has restarted",
                            report.records, report.old_key_id, report.new_key_id
                        ));
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::from(1)
                    }
                }
            })
        }
        Command::Soql {
            command: SoqlCommand::Check(check),
        } => {
            let args = check.into();
            let stdin = std::io::stdin();
            // A reader that stops early (`| head`) does not turn the verdict into a usage error.
            let mut stdout = output::stdout();
            let code = crate::cli::soql::run(args, stdin.lock(), &mut stdout);
            ExitCode::from(u8::try_from(code).unwrap_or(2))
        }
        Command::Run { config } => {
            crate::telemetry::log::init();
            let Some(config) = load_or_report(&config.config) else {
                return ExitCode::from(2);
            };
            runtime(|| run(config))
        }
        #[cfg(feature = "demo")]
        Command::Demo {
            listen,
            admin,
            seconds,
        } => {
            // At `info` the demo's own traffic writes an access line per request and pushes the
            // printed URLs off the screen within a second; problems (warn) still show.
            if std::env::var_os("GATEHOUSE_LOG").is_none() && std::env::var_os("RUST_LOG").is_none()
            {
                std::env::set_var("GATEHOUSE_LOG", "warn");
            }
            crate::telemetry::log::init();
            runtime(|| crate::cli::demo::run(listen, admin, seconds))
        }
    }
}

/// Loads a config, printing every error (with its location) on failure.
fn load_or_report(path: &std::path::Path) -> Option<Config> {
    match Config::load(path) {
        Ok(config) => Some(config),
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            None
        }
    }
}

fn runtime<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(config: Config) -> ExitCode {
    let state = match AppState::build(config).await {
        Ok(state) => state,
        Err(e) => {
            tracing::error!(error = %e, "start-up failed");
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let server = match Server::bind(state).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(
        data = %server.data_addr().map(|a| a.to_string()).unwrap_or_default(),
        admin = %server.admin_addr().map(|a| a.to_string()).unwrap_or_default(),
        "gatehouse listening"
    );
    server.run(shutdown_signal()).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

fn check(path: &std::path::Path) -> ExitCode {
    let mut out = output::stdout();
    match write_check(path, &mut out).and_then(|code| out.flush().map(|()| code)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: writing standard output: {e}");
            ExitCode::from(1)
        }
    }
}

/// The report of `gatehouse check`; exit code 0 when the config is valid, 1 otherwise.
fn write_check(path: &std::path::Path, out: &mut impl Write) -> std::io::Result<ExitCode> {
    match Config::load(path) {
        Ok(config) => {
            let callers = config.load_policy().map(|p| p.caller_count()).unwrap_or(0);
            writeln!(
                out,
                "{}: ok ({} connections, {} callers)",
                path.display(),
                config.connections.len(),
                callers
            )?;
            for warning in config.admin.warnings() {
                writeln!(out, "warning: {warning}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors.0 {
                writeln!(out, "error: {e}")?;
            }
            writeln!(out, "{} error(s)", errors.0.len())?;
            Ok(ExitCode::from(1))
        }
    }
}

fn hash_token() -> ExitCode {
    let mut token = String::new();
    if std::io::stdin().read_line(&mut token).is_err() || token.trim().is_empty() {
        eprintln!("error: give the token on stdin");
        return ExitCode::from(2);
    }
    output::line(crate::stages::caller::hash_token(&token));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_config_flag_has_help_text() {
        fn walk(
            command: &clap::Command,
            path: String,
            missing: &mut Vec<String>,
            seen: &mut usize,
        ) {
            for arg in command.get_arguments() {
                if arg.get_id() == "config" {
                    *seen += 1;
                    if arg.get_help().is_none() {
                        missing.push(path.clone());
                    }
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, format!("{path} {}", sub.get_name()), missing, seen);
            }
        }
        let mut missing = Vec::new();
        let mut seen = 0;
        walk(&Cli::command(), "gatehouse".into(), &mut missing, &mut seen);
        assert_eq!(seen, 3, "run, check and keys rotate take --config");
        assert!(missing.is_empty(), "--config without help on {missing:?}");
    }

    /// `gatehouse check` on a file holding `config`: its exit code and report.
    fn check_report(config: &str) -> (ExitCode, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatehouse.toml");
        std::fs::write(&path, config).unwrap();
        let mut out = Vec::new();
        let code = write_check(&path, &mut out).unwrap();
        (code, String::from_utf8(out).unwrap())
    }

    #[test]
    fn check_lists_every_error_and_counts_them() {
        let (code, text) = check_report(
            "[server]\nlisten = \"nowhere\"\n[[connections]]\nid = \"a\"\nprovider = \"hubspot\"\n",
        );
        assert_eq!(code, ExitCode::from(1));
        assert!(text.contains(": server: "), "{text}");
        assert!(
            text.contains(": connections[0]: missing field `base_url`"),
            "{text}"
        );
        assert!(text.ends_with("2 error(s)\n"), "{text}");
    }

    #[test]
    fn check_reports_admin_errors_with_the_others_and_warns_when_the_admin_port_is_locked() {
        let (code, text) = check_report(
            "[[connections]]\nid = \"Bad Id\"\nprovider = \"hubspot\"\nbase_url = \"https://api.hubapi.com\"\n[[admin.tokens]]\nid = \"ops\"\ntoken_sha256 = \"abc\"\nrole = \"owner\"\n",
        );
        assert_eq!(code, ExitCode::from(1));
        for expected in [
            ": connections[0].id: ",
            ": admin.tokens[0].role: unknown role",
            ": admin.tokens[0].token_sha256: ",
            "3 error(s)\n",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }

        let (code, text) = check_report("[server]\nlisten = \"127.0.0.1:8080\"\n");
        assert_eq!(code, ExitCode::SUCCESS);
        assert!(
            text.contains("warning: the admin port is locked")
                && text.contains("/healthz, /readyz, /metrics"),
            "{text}"
        );
    }
}
