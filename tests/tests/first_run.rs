//! End-to-end: a newcomer's first run. The demo's printed example call returns records and
//! the demo's own traffic does not push the printed URLs off the screen; the commands a script
//! pipes into `head` end quietly when the reader goes.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use gatehouse_e2e::binary;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

/// `(header, url, query)` of a printed `curl -sG -H '...' 'URL' --data-urlencode 'q=...'` line
/// (or of `curl -H '...' 'URL?q=...'`, with the query encoded in the URL).
fn parse_curl(line: &str) -> (String, String, String) {
    let quoted: Vec<&str> = line.split('\'').skip(1).step_by(2).collect();
    assert!(
        quoted.len() >= 2,
        "not a curl line with a header and a URL: {line}"
    );
    if let Some(query) = quoted.get(2).and_then(|q| q.strip_prefix("q=")) {
        return (quoted[0].to_owned(), quoted[1].to_owned(), query.to_owned());
    }
    let mut url = reqwest::Url::parse(quoted[1]).unwrap_or_else(|e| panic!("{line}: {e}"));
    let query = url
        .query_pairs()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no query in {line}"));
    url.set_query(None);
    (quoted[0].to_owned(), url.to_string(), query)
}

async fn call(header: &str, url: &str, query: &str) -> (u16, serde_json::Value) {
    let (name, value) = header.split_once(": ").expect("Name: value");
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .header(name, value)
        .query(&[("q", query)])
        .send()
        .await
        .expect("the demo answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[test]
fn the_demos_first_example_returns_records_and_its_urls_stay_in_view() {
    let mut child = gatehouse_e2e::demo::command(17)
        .env_remove("GATEHOUSE_LOG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("demo starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut banner = Vec::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            panic!("the demo stopped before printing its examples: {banner:?}");
        }
        let done = line.starts_with("Traffic from");
        banner.push(line.trim_end().to_owned());
        if done {
            break;
        }
    }
    let examples: Vec<&String> = banner
        .iter()
        .filter(|l| l.trim_start().starts_with("curl "))
        .collect();
    assert!(examples.len() >= 2, "{banner:#?}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (header, url, query) = parse_curl(examples[0]);
    let (status, body) = runtime.block_on(call(&header, &url, &query));
    assert_eq!(status, 200, "{query}: {body}");
    let records = body["records"].as_array().map(Vec::len).unwrap_or(0);
    assert!(
        records > 0 && body["totalSize"].as_u64().unwrap_or(0) > 0,
        "the first example finds records: {query}: {body}"
    );
    let (header, url, query) = parse_curl(examples[1]);
    let (status, body) = runtime.block_on(call(&header, &url, &query));
    assert_eq!(
        status, 403,
        "the second example is blocked: {query}: {body}"
    );
    assert!(examples[1].contains("blocked"), "{}", examples[1]);

    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{rest}");
    let logs = stderr_reader.join().unwrap();

    // The reminder under the periodic summary repeats the data-plane URL the banner printed.
    let data_plane = banner
        .iter()
        .find_map(|l| l.trim_start().strip_prefix("data plane:"))
        .map(str::trim)
        .expect("banner names the data plane")
        .to_owned();
    let summary_at = rest
        .find("traffic so far")
        .unwrap_or_else(|| panic!("a summary within 17 s:\n{rest}"));
    assert!(
        rest[summary_at..].contains(&format!("data plane {data_plane}")),
        "{rest}"
    );
    // About 900 requests ran; with the demo's default log level none wrote an access line.
    let access_lines = logs
        .lines()
        .filter(|l| l.contains("gatehouse::access"))
        .count();
    assert_eq!(access_lines, 0, "{}", &logs[..logs.len().min(2000)]);
}

/// Runs `gatehouse <args>` with its standard output closed before it writes (and `input` on
/// standard input after that): (exit code, stderr).
fn run_into_closed_pipe(args: &[&str], dir: &std::path::Path, input: &str) -> (i32, String) {
    let mut child = Command::new(binary())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gatehouse runs");
    drop(child.stdout.take());
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let output = child.wait_with_output().expect("gatehouse finishes");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn commands_piped_into_a_reader_that_stops_end_quietly() {
    let dir = tempfile::tempdir().unwrap();
    // More errors than a pipe buffer holds, so some are written after the reader has gone
    // whenever the process gets to run.
    let mut config = String::new();
    for i in 0..3000 {
        config.push_str(&format!(
            "[[connections]]\nid = \"c{i}\"\nprovider = \"nope\"\nbase_url = \"https://x.example\"\n"
        ));
    }
    std::fs::write(dir.path().join("gatehouse.toml"), config).unwrap();
    let (code, stderr) = run_into_closed_pipe(&["check"], dir.path(), "");
    assert_eq!(code, 1, "the config's verdict, not a crash: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let (code, stderr) = run_into_closed_pipe(&["hash-token"], dir.path(), "a-token\n");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");

    let queries = "SELECT Id FROM Account\n".repeat(2000);
    let (code, stderr) = run_into_closed_pipe(&["soql", "check"], dir.path(), &queries);
    assert_eq!(
        code, 1,
        "blocked queries exit 1, not a usage error: {stderr}"
    );
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn check_reports_errors_of_every_kind_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gatehouse.toml"),
        r#"
[server]
listen = "nowhere"

[[connections]]
id = "crm"
provider = "hubspot"
base_url = "http://api.hubapi.com"
credentials = { type = "bearer", token = "${GATEHOUSE_FIRST_RUN_UNSET}" }

[[connections]]
id = "ats"
provider = "lever"
"#,
    )
    .unwrap();
    let output = Command::new(binary())
        .args(["check", "-c", "gatehouse.toml"])
        .current_dir(dir.path())
        .env_remove("GATEHOUSE_FIRST_RUN_UNSET")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{out}");
    for expected in [
        "connections[0].credentials.token: environment variable GATEHOUSE_FIRST_RUN_UNSET is not set",
        ": server: ",
        "connections[1]: missing field `base_url`",
        "3 error(s)",
    ] {
        assert!(out.contains(expected), "{expected}:\n{out}");
    }
}
