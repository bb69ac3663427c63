//! Harness for end-to-end tests: runs the real `gatehouse` binary as a child process, plus a
//! loopback upstream that records what it received.
//!
//! The binary is built on first use with `cargo build -p gatehouse` (or taken from
//! `GATEHOUSE_BIN`), so `cargo test --workspace` alone runs everything.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

pub mod configs;
pub mod demo;
pub mod provider_auth;
pub mod raw_provider;
pub mod unified;
pub mod upstream;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Path of the `gatehouse` binary, built once per test process.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(path) = std::env::var("GATEHOUSE_BIN") {
            return PathBuf::from(path);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let output = Command::new(cargo)
            .args([
                "build",
                "-p",
                "gatehouse",
                "--bin",
                "gatehouse",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("cargo build -p gatehouse runs");
        assert!(output.status.success(), "building gatehouse failed");
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|msg| msg["target"]["name"] == "gatehouse" && msg["executable"].is_string())
            .filter_map(|msg| msg["executable"].as_str().map(PathBuf::from))
            .next_back()
            .expect("cargo reported the gatehouse executable")
    })
}

/// SHA-256 hex of a caller token, as the policy stores it.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// The admin token the harness adds (role `admin`, id [`ADMIN_TOKEN_ID`]) to every config it
/// writes that has no `[admin]` of its own; [`Gatehouse::admin_get`] sends it.
pub const ADMIN_TOKEN: &str = "e2e-harness-admin-token-7c3e91d04b5a";
pub const ADMIN_TOKEN_ID: &str = "e2e-harness";

/// `config` with the harness's admin token, unless it configures the admin port itself.
fn with_admin_token(config: &str) -> String {
    if config.contains("[admin") {
        return config.to_owned();
    }
    format!(
        "{config}\n[[admin.tokens]]\nid = \"{ADMIN_TOKEN_ID}\"\ntoken_sha256 = \"{}\"\nrole = \"admin\"\n",
        token_hash(ADMIN_TOKEN)
    )
}

/// A running `gatehouse run` process.
pub struct Gatehouse {
    dir: Arc<tempfile::TempDir>,
    child: Option<Child>,
    logs: Arc<parking_lot::Mutex<Vec<String>>>,
    data: String,
    admin: String,
    env: Vec<(String, String)>,
}

impl Gatehouse {
    /// Writes `config` as `gatehouse.toml` in a fresh directory and starts Gatehouse on it. The
    /// config should listen on port 0 (`listen = "127.0.0.1:0"`); the real ports are read from
    /// the start-up log line.
    pub fn start(config: &str) -> Gatehouse {
        Self::start_with(config, &[], &[])
    }

    /// As [`Gatehouse::start`], with extra files written beside the config and extra env vars.
    /// The config gets the harness's admin token unless it has an `[admin]` of its own.
    pub fn start_with(config: &str, files: &[(&str, &str)], env: &[(&str, &str)]) -> Gatehouse {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        std::fs::write(dir.path().join("gatehouse.toml"), with_admin_token(config))
            .expect("write config");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write file");
        }
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::spawn(dir, env)
    }

    /// Starts another process on the same directory (same config, same data dir).
    pub fn spawn_sibling(&self) -> Gatehouse {
        Self::spawn(self.dir.clone(), self.env.clone())
    }

    fn spawn(dir: Arc<tempfile::TempDir>, env: Vec<(String, String)>) -> Gatehouse {
        let mut command = Command::new(binary());
        command
            .arg("run")
            .arg("--config")
            .arg(dir.path().join("gatehouse.toml"))
            .current_dir(dir.path())
            .env("GATEHOUSE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start gatehouse");
        let logs = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = std::sync::mpsc::channel::<(String, String)>();
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                        if v["message"] == "gatehouse listening" {
                            let _ = tx.send((
                                v["data"].as_str().unwrap_or_default().to_owned(),
                                v["admin"].as_str().unwrap_or_default().to_owned(),
                            ));
                        }
                    }
                    logs.lock().push(line);
                }
            });
        }
        let (data, admin) = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(addrs) => addrs,
            Err(_) => {
                let _ = child.kill();
                panic!("gatehouse did not start; log:\n{}", logs.lock().join("\n"));
            }
        };
        let gatehouse = Gatehouse {
            dir,
            child: Some(child),
            logs,
            data: format!("http://{data}"),
            admin: format!("http://{admin}"),
            env,
        };
        gatehouse.wait_ready();
        gatehouse
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(status) = blocking_get_status(&format!("{}/readyz", self.admin)) {
                if status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "gatehouse never became ready; log:\n{}",
            self.logs().join("\n")
        );
    }

    pub fn data_url(&self) -> &str {
        &self.data
    }
    pub fn admin_url(&self) -> &str {
        &self.admin
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().clone()
    }
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends a signal (`"TERM"`, `"HUP"`, `"KILL"`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the process to exit (after a signal), up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// GETs an admin-port path (`/status`, `/connect/sf?replace=true`) with the harness's admin
    /// token, following no redirect.
    pub async fn admin_get(&self, path_and_query: &str) -> reqwest::Response {
        self.admin_get_as(path_and_query, Some(ADMIN_TOKEN)).await
    }

    /// As [`Gatehouse::admin_get`] with `token` as the bearer token (`None`: no credential).
    pub async fn admin_get_as(
        &self,
        path_and_query: &str,
        token: Option<&str>,
    ) -> reqwest::Response {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let mut request = client.get(format!("{}{path_and_query}", self.admin));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("admin port reachable")
    }

    /// Scrapes `/metrics` (with the harness's admin token, for configs that lock it).
    pub async fn metrics(&self) -> String {
        self.admin_get("/metrics")
            .await
            .text()
            .await
            .unwrap_or_default()
    }
}

impl Drop for Gatehouse {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `gatehouse <args>` to completion: (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let output = Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("gatehouse runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `gatehouse <args>` with `stdin` as its input: (exit code, stdout, stderr).
pub fn run_cli_with_stdin(args: &[&str], cwd: &Path, stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gatehouse runs");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    let output = child.wait_with_output().expect("gatehouse finishes");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn blocking_get_status(url: &str) -> Result<u16, ()> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").ok_or(())?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .ok_or(())?;
    let mut stream = std::net::TcpStream::connect(host).map_err(|_| ())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|_| ())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|_| ())?;
    let mut buf = String::new();
    let _ = stream.read_to_string(&mut buf);
    buf.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(())
}

/// Sends raw bytes to `addr` (host:port) and returns the raw response (for request shapes an
/// HTTP client refuses to produce: absolute-form targets, odd Host headers).
pub async fn raw_request(addr: &str, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = addr.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The top-level keys of a JSON log line that appear more than once (a log pipeline keeps one
/// of them, so an alert on the other never fires). Empty for a line that is not a JSON object.
pub fn duplicate_keys(line: &str) -> Vec<String> {
    struct Keys(Vec<String>);
    struct KeysVisitor;
    impl<'de> serde::de::Visitor<'de> for KeysVisitor {
        type Value = Keys;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
            let mut keys = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                keys.push(key);
            }
            Ok(Keys(keys))
        }
    }
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
            d.deserialize_map(KeysVisitor)
        }
    }
    let Ok(Keys(mut keys)) = serde_json::from_str::<Keys>(line) else {
        return Vec::new();
    };
    keys.sort();
    let mut duplicates: Vec<String> = keys
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0].clone())
        .collect();
    duplicates.dedup();
    duplicates
}
