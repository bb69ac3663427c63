//! `gatehouse.toml`: typed configuration, loaded once at start and checked whole.
//!
//! Loading goes: read file → parse TOML → interpolate `${ENV_VAR}` in string values → deserialise
//! into typed structs (unknown keys are errors) → semantic checks. Every problem is reported
//! with its location (`file:line:col` for a syntax error, a key path such as
//! `connections[1].base_url` otherwise, both for the first type error), and all of them are
//! reported, not only the first: every unset variable, one type error per table or
//! `[[connections]]` entry, and every semantic problem once the types are right. A syntax error
//! is the exception: the TOML parser stops at it, and the message says so.

pub(crate) mod admin;
mod credentials;
mod duration;
mod interpolate;
mod parse;
pub(crate) mod reload;

pub use admin::{AdminConfig, AdminConfigError, AdminRole, AdminToken};
pub use credentials::CredentialsConfig;
use gatehouse_adapters::{CustomProfile, Provider};
use gatehouse_guards::policy::{Policy, PolicyDocument};
use gatehouse_store::StoreConfig;
use parse::parse_toml;
use serde::Deserialize;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The data directory used when `[store] data_dir` is not set (the container image sets it to
/// its writable volume). Without it, the default is `data` beside the config file.
pub const DATA_DIR_ENV: &str = "GATEHOUSE_DATA_DIR";

/// One problem in a config or policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `path/to/file.toml:12:5` or `path/to/file.toml: connections[1].base_url`.
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found in one load.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    /// Where tokens and audit records are kept.
    #[serde(default)]
    pub store: StoreConfig,
    /// A separate policy file (relative to this file) owned by security; hot-reloaded.
    /// When set, `[[callers]]` must not appear in this file.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    #[serde(default)]
    pub connections: Vec<ConnectionConfig>,
    /// Callers and their grants, when no separate policy file is used.
    #[serde(default)]
    pub callers: Vec<gatehouse_guards::policy::CallerPolicy>,
    /// Who may use the admin port (`[admin]`, `[[admin.tokens]]`).
    #[serde(default)]
    pub admin: AdminConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Data-plane listen address.
    pub listen: SocketAddr,
    /// Admin listen address (health, readiness, metrics). Keep it off the service network.
    pub admin_listen: SocketAddr,
    /// Connecting to a provider (TCP + TLS) may take at most this long.
    #[serde(with = "duration::serde_secs")]
    pub connect_timeout: Duration,
    /// From sending the request to the provider's response headers.
    #[serde(with = "duration::serde_secs")]
    pub request_timeout: Duration,
    /// Idle pooled connections to providers are closed after this long.
    #[serde(with = "duration::serde_secs")]
    pub pool_idle_timeout: Duration,
    /// A provider response body that brings nothing for this long is cut off (the caller's
    /// response ends in an error, the provider connection is closed).
    #[serde(with = "duration::serde_secs")]
    pub response_body_idle_timeout: Duration,
    /// A caller's request body that brings nothing for this long while Gatehouse waits for it
    /// (buffering it, or streaming it to the provider) ends the request as the caller's fault:
    /// `bad_request`/`body_read_timeout`, never an upstream timeout.
    #[serde(with = "duration::serde_secs")]
    pub body_read_timeout: Duration,
    /// Largest request body accepted from a caller (a grant may set a lower one).
    pub max_body_bytes: u64,
    /// Largest request head accepted from a caller, in bytes as sent: the request line and
    /// every header line with their line ends, up to and including the empty line. One byte
    /// more is answered with 431 and the connection closed. On HTTP/2 it is the header list
    /// size as HTTP/2 counts it (each field's name and value plus 32 bytes).
    pub max_header_bytes: usize,
    /// Request bodies up to this size are kept in memory so they can be replayed once after a
    /// 401 and a token refresh; larger bodies stream through and are not replayed.
    pub replay_buffer_bytes: u64,
    /// On SIGTERM, in-flight requests get this long to finish.
    #[serde(with = "duration::serde_secs")]
    pub shutdown_grace: Duration,
    /// How often the policy file is checked for changes (SIGHUP reloads at once).
    #[serde(with = "duration::serde_secs")]
    pub policy_poll_interval: Duration,
    /// Optional TLS on the data plane; with `client_ca`, callers may prove who they are by
    /// client certificate.
    pub tls: Option<TlsConfig>,
    /// Data-plane worker threads, each with its own event loop and provider connection pool
    /// (0: one per CPU core).
    pub workers: usize,
    /// Caller connections open at once, at most, over all workers; one more is closed as soon
    /// as it is accepted (and counted in `gatehouse_connections_refused`). Lowered at start
    /// to what the open-file limit leaves room for (each caller connection may hold a
    /// provider connection too). The admin port has an allowance of its own.
    pub max_connections: usize,
    /// A new plain-text connection (or a TLS one that negotiated no ALPN protocol) must send
    /// enough to tell HTTP/1.1 from the HTTP/2 preface within this long, or it is closed.
    #[serde(with = "duration::serde_secs")]
    pub protocol_detect_timeout: Duration,
    /// The TLS handshake of a caller connection must finish within this long.
    #[serde(with = "duration::serde_secs")]
    pub tls_handshake_timeout: Duration,
    /// An HTTP/1.1 request head must arrive within this long of the connection starting to
    /// wait for it; it is also how long a keep-alive connection may sit idle between requests.
    #[serde(with = "duration::serde_secs")]
    pub header_read_timeout: Duration,
    /// An HTTP/2 connection from which nothing has been received for this long is pinged.
    #[serde(with = "duration::serde_secs")]
    pub http2_keep_alive_interval: Duration,
    /// An HTTP/2 ping not answered within this long closes the connection.
    #[serde(with = "duration::serde_secs")]
    pub http2_keep_alive_timeout: Duration,
    /// An HTTP/2 connection with no open stream for this long is sent GOAWAY and closed
    /// (pings alone do not keep it open).
    #[serde(with = "duration::serde_secs")]
    pub http2_idle_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            pool_idle_timeout: Duration::from_secs(90),
            response_body_idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            max_body_bytes: 10 * 1024 * 1024,
            max_header_bytes: 64 * 1024,
            replay_buffer_bytes: 1024 * 1024,
            shutdown_grace: Duration::from_secs(30),
            policy_poll_interval: Duration::from_secs(2),
            tls: None,
            workers: 0,
            max_connections: 10_000,
            protocol_detect_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            http2_keep_alive_interval: Duration::from_secs(20),
            http2_keep_alive_timeout: Duration::from_secs(20),
            http2_idle_timeout: Duration::from_secs(60),
        }
    }
}

impl ServerConfig {
    /// Data-plane worker threads: `workers`, or one per CPU core.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            n => n,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain served to callers.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA bundle that signs caller client certificates (enables mTLS identity).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// Id used in the URL (`/<id>/...`), policy, metrics and logs: `[a-z0-9-_]`.
    pub id: String,
    /// A built-in provider profile (`salesforce`, `hubspot`, `greenhouse`, `greenhouse-v3`,
    /// `lever`, `ashby`) or `custom` with a `[connections.profile]` table.
    pub provider: String,
    /// The provider profile for `provider = "custom"`.
    #[serde(default)]
    pub profile: Option<CustomProfile>,
    /// Scheme, host, port and optional base path of the provider API. The only host this
    /// connection ever contacts (plus `allowed_hosts`).
    pub base_url: String,
    /// Further hosts this connection may be sent to (for example a Salesforce `instance_url`
    /// returned by the token endpoint). Exact host names.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Extra PEM CA bundle trusted for this connection, besides the public web roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub credentials: CredentialsConfig,
    /// SOQL guard settings (connections whose provider speaks SOQL). Absent: the defaults of
    /// the rule catalog, all rules enforced.
    #[serde(default)]
    pub soql: Option<gatehouse_guards::soql_guard::SoqlGuardConfig>,
    /// Ask the provider's query planner before letting a query through (`[connections.soql_explain]`).
    #[serde(default)]
    pub soql_explain: Option<ExplainConfig>,
    /// Allow plain `http://` for `base_url` and the credentials' `token_url` on a host outside
    /// loopback. Off by default: without TLS the injected credential, the tokens and every
    /// record cross the network readable by anyone on the path. Loopback hosts (127.0.0.0/8,
    /// `::1`, `localhost`) need no opt-in, so simulators and local test upstreams work as they are.
    #[serde(default)]
    pub allow_plaintext: bool,
}

/// The explain check: a query whose best plan costs more than `max_relative_cost` (Salesforce:
/// above 1 means not selective) or leads with a table scan is blocked. Plans are cached by
/// query shape; when the planner does not answer within `timeout`, the static verdict stands.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExplainConfig {
    pub enabled: bool,
    #[serde(with = "duration::serde_secs")]
    pub timeout: Duration,
    #[serde(with = "duration::serde_secs")]
    pub cache_ttl: Duration,
    pub max_relative_cost: f64,
    /// Cached shapes per connection, at most.
    pub cache_entries: usize,
}

impl Default for ExplainConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            timeout: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(600),
            max_relative_cost: 1.0,
            cache_entries: 10_000,
        }
    }
}

impl Config {
    /// Loads and checks a config file (and its policy file, if any). Every problem found is
    /// returned: all missing environment variables, a type error per table (`[server]`, each
    /// `[[connections]]` entry, ...) and, when the types are right, every semantic problem.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                location: path.display().to_string(),
                message: format!("cannot read: {e}"),
            }])
        })?;
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        Self::from_text(path, &text, Some(dir), std::env::var_os(DATA_DIR_ENV))
    }

    /// Parses a config from text (for `gatehouse demo` and tests); `origin` names it in errors.
    #[cfg(test)]
    pub fn from_str(origin: &Path, text: &str) -> Result<Config, ConfigErrors> {
        Self::from_text(origin, text, None, None)
    }

    /// `dir`: the config file's directory, which relative paths are resolved against.
    /// `default_data_dir`: the data directory when `[store] data_dir` is not set (from
    /// [`DATA_DIR_ENV`]), so a container image can point it at a writable volume whatever
    /// directory the config file is mounted in.
    fn from_text(
        origin: &Path,
        text: &str,
        dir: Option<&Path>,
        default_data_dir: Option<std::ffi::OsString>,
    ) -> Result<Config, ConfigErrors> {
        let parsed = parse_toml::<Config>(origin, text);
        let mut errors = parsed.errors;
        let Some(mut config) = parsed.value else {
            return Err(ConfigErrors(errors));
        };
        let data_dir_set = parsed
            .raw
            .get("store")
            .and_then(|store| store.get("data_dir"))
            .is_some();
        if let Some(dir) = dir {
            config.resolve_paths(dir);
        }
        // After resolving: a relative GATEHOUSE_DATA_DIR is relative to the working directory,
        // as any path given in the environment.
        if let (false, Some(data_dir)) = (data_dir_set, default_data_dir) {
            config.store.data_dir = PathBuf::from(data_dir);
        }
        if let Err(semantic) = config.validate(origin) {
            // A value left as `${VAR}` because VAR is unset fails its semantic check too; the
            // missing variable is the problem to show, once.
            let unset: Vec<String> = errors.iter().map(|e| e.location.clone()).collect();
            errors.extend(semantic.0.into_iter().filter(|e| {
                !unset.iter().any(|u| {
                    e.location == *u
                        || e.location.starts_with(&format!("{u}."))
                        || e.location.starts_with(&format!("{u}["))
                })
            }));
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Relative file paths in the config are relative to the config file's directory.
    fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(p) = self.policy.as_mut() {
            fix(p);
        }
        if let Some(tls) = self.server.tls.as_mut() {
            fix(&mut tls.cert);
            fix(&mut tls.key);
            if let Some(ca) = tls.client_ca.as_mut() {
                fix(ca);
            }
        }
        for conn in &mut self.connections {
            if let Some(ca) = conn.ca_file.as_mut() {
                fix(ca);
            }
        }
        fix(&mut self.store.data_dir);
    }

    pub fn connection_ids(&self) -> HashSet<String> {
        self.connections.iter().map(|c| c.id.clone()).collect()
    }

    /// The policy in force at start: from the policy file if set, else from `[[callers]]`.
    pub fn load_policy(&self) -> Result<Policy, ConfigErrors> {
        match &self.policy {
            Some(path) => load_policy_file(path, &self.connection_ids()),
            None => compile_policy(
                Path::new("config"),
                &PolicyDocument {
                    callers: self.callers.clone(),
                },
                &self.connection_ids(),
            ),
        }
    }

    fn validate(&self, origin: &Path) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        let mut push = |key: String, message: String| {
            errors.push(ConfigError {
                location: format!("{}: {key}", origin.display()),
                message,
            })
        };
        if self.server.listen == self.server.admin_listen && self.server.listen.port() != 0 {
            push(
                "server.admin_listen".into(),
                "must differ from server.listen".into(),
            );
        }
        let server = &self.server;
        for (key, value) in [
            ("connect_timeout", server.connect_timeout),
            ("request_timeout", server.request_timeout),
            ("pool_idle_timeout", server.pool_idle_timeout),
            (
                "response_body_idle_timeout",
                server.response_body_idle_timeout,
            ),
            ("body_read_timeout", server.body_read_timeout),
            ("shutdown_grace", server.shutdown_grace),
            ("policy_poll_interval", server.policy_poll_interval),
            ("protocol_detect_timeout", server.protocol_detect_timeout),
            ("tls_handshake_timeout", server.tls_handshake_timeout),
            ("header_read_timeout", server.header_read_timeout),
            (
                "http2_keep_alive_interval",
                server.http2_keep_alive_interval,
            ),
            ("http2_keep_alive_timeout", server.http2_keep_alive_timeout),
            ("http2_idle_timeout", server.http2_idle_timeout),
        ] {
            if value.is_zero() {
                push(format!("server.{key}"), "must be longer than zero".into());
            }
        }
        for (key, value) in [
            ("max_connections", server.max_connections),
            ("max_header_bytes", server.max_header_bytes),
        ] {
            if value == 0 {
                push(format!("server.{key}"), "must be at least 1".into());
            }
        }
        if let Err(admin_errors) = self.admin.tokens() {
            for (key, error) in admin_errors {
                push(key, error.to_string());
            }
        }
        if self.policy.is_some() && !self.callers.is_empty() {
            push("callers".into(), "callers are defined in the policy file; remove [[callers]] here or remove `policy`".into());
        }
        let mut seen = HashSet::new();
        for (i, conn) in self.connections.iter().enumerate() {
            let at = |field: &str| format!("connections[{i}].{field}");
            if conn.id.is_empty()
                || !conn
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                push(
                    at("id"),
                    format!("connection id {:?} must be non-empty [a-z0-9-_]", conn.id),
                );
            }
            if crate::unified::is_reserved(&conn.id) {
                push(
                    at("id"),
                    format!(
                        "connection id {:?} is reserved: the unified API is served under /{}/...; choose another id",
                        conn.id,
                        crate::unified::RESERVED_ID
                    ),
                );
            }
            if !seen.insert(conn.id.clone()) {
                push(at("id"), format!("duplicate connection id {:?}", conn.id));
            }
            if let Err(message) = conn.resolve_provider() {
                push(at("provider"), message);
            }
            match crate::stages::route::UpstreamBase::parse(&conn.base_url) {
                Err(message) => push(at("base_url"), message),
                Ok(_) => {
                    if let Err(message) = check_plaintext(&conn.base_url, conn.allow_plaintext) {
                        push(at("base_url"), message);
                    }
                }
            }
            if let Some(token_url) = token_url_of(&conn.credentials) {
                if let Err(message) = check_plaintext(token_url, conn.allow_plaintext) {
                    push(at("credentials.token_url"), message);
                }
            }
            if let Some(soql) = &conn.soql {
                if let Err(e) = soql.validate() {
                    push(at("soql"), e.to_string());
                }
            }
            if let Some(ca) = &conn.ca_file {
                if !ca.exists() {
                    push(
                        at("ca_file"),
                        format!("file {} does not exist", ca.display()),
                    );
                }
            }
        }
        if let Err(policy_errors) = self.load_policy() {
            errors.extend(policy_errors.0);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

impl ConnectionConfig {
    /// The provider this connection uses.
    pub fn resolve_provider(&self) -> Result<std::sync::Arc<dyn Provider>, String> {
        gatehouse_adapters::resolve(&self.provider, self.profile.as_ref())
            .map_err(|e| e.to_string())
    }
}

/// Loads a policy file (for start-up and hot reload).
pub fn load_policy_file(
    path: &Path,
    connections: &HashSet<String>,
) -> Result<Policy, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            location: path.display().to_string(),
            message: format!("cannot read policy: {e}"),
        }])
    })?;
    let parsed = parse_toml::<PolicyDocument>(path, &text);
    let Some(doc) = parsed.value else {
        return Err(ConfigErrors(parsed.errors));
    };
    let mut errors = parsed.errors;
    match compile_policy(path, &doc, connections) {
        Ok(policy) if errors.is_empty() => Ok(policy),
        Ok(_) => Err(ConfigErrors(errors)),
        Err(compile_errors) => {
            errors.extend(compile_errors.0);
            Err(ConfigErrors(errors))
        }
    }
}

fn compile_policy(
    origin: &Path,
    doc: &PolicyDocument,
    connections: &HashSet<String>,
) -> Result<Policy, ConfigErrors> {
    Policy::compile(doc, connections).map_err(|errors| {
        ConfigErrors(
            errors
                .into_iter()
                .map(|e| ConfigError {
                    location: format!("{}: {}", origin.display(), e.location),
                    message: e.message,
                })
                .collect(),
        )
    })
}

/// `http://` leaves the host in the clear; refused outside loopback unless the connection
/// opts in. Unparseable URLs are reported by their own checks.
fn check_plaintext(url: &str, allow_plaintext: bool) -> Result<(), String> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Ok(());
    };
    if parsed.scheme() != "http" || allow_plaintext {
        return Ok(());
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if loopback {
        return Ok(());
    }
    Err(format!(
        "{url:?} is plain http:// to a host outside loopback: credentials and data would cross the network unencrypted; use https://, or set allow_plaintext = true on this connection"
    ))
}

/// The token endpoint of an OAuth grant.
fn token_url_of(credentials: &CredentialsConfig) -> Option<&str> {
    match credentials {
        CredentialsConfig::OauthRefreshToken { token_url, .. }
        | CredentialsConfig::ClientCredentials { token_url, .. }
        | CredentialsConfig::JwtBearer { token_url, .. } => Some(token_url),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
