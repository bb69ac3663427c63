//! Issue 13: the embedded store belongs to one process. Two processes on one SQLite data
//! directory both refresh with the same refresh token, and a provider that rotates refresh
//! tokens revokes the whole grant. A second `gatehouse run` on the directory is refused with a
//! message naming it and pointing at PostgreSQL; the first keeps serving; the files are private.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use gatehouse_e2e::{binary, configs, Gatehouse};
use gatehouse_sim::{Provider, SimConfig, Simulator, DEMO_CLIENT_ID, DEMO_USER};
use std::process::{Command, Stdio};
use std::time::Duration;

const CALLER: &str = "data-dir-caller-token";

fn config(sim_base: &str, token_url: &str, seed: &str) -> String {
    let sf = configs::oauth_refresh_connection("sf", "salesforce", sim_base, token_url, seed, "");
    let svc = configs::caller("svc", CALLER, &["sf"], &["GET"], &["/services/data/**"]);
    // The key's variable is deliberately unset: the store's key file is made in the data dir.
    let store = "[store]\ndata_dir = \"data\"\nkey_env = \"GATEHOUSE_TEST_UNSET_KEY_ENV\"\n";
    format!("{}{store}{sf}{svc}", configs::server(""))
}

async fn get_ok(gh: &Gatehouse) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/sf/services/data/v60.0/limits", gh.data_url()))
        .header("proxy-authorization", format!("Bearer {CALLER}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_one_sqlite_data_dir_is_refused() {
    let sim = Simulator::start(Provider::Salesforce, SimConfig::default())
        .await
        .unwrap();
    let seed = sim.issue_refresh_token(DEMO_CLIENT_ID, DEMO_USER);
    let first = Gatehouse::start(&config(&sim.http_base_url(), &sim.token_url(), &seed));
    get_ok(&first).await;

    let mut second = Command::new(binary())
        .arg("run")
        .arg("--config")
        .arg(first.dir().join("gatehouse.toml"))
        .current_dir(first.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the second gatehouse");
    // Refused at start-up, within the lock's short grace for a holder that is exiting.
    let mut status = None;
    for _ in 0..200 {
        if let Some(exit) = second.try_wait().unwrap() {
            status = Some(exit);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if status.is_none() {
        let _ = second.kill();
        let _ = second.wait();
    }
    let output = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let status = status.unwrap_or_else(|| panic!("the second process kept running:\n{stderr}"));
    assert!(!status.success(), "{stderr}");
    let data = first.dir().join("data");
    assert!(
        stderr.contains(&format!("data directory {} is in use", data.display())),
        "{stderr}"
    );
    assert!(stderr.contains("PostgreSQL"), "{stderr}");

    // The first process never noticed.
    get_ok(&first).await;

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| {
            std::fs::metadata(data.join(name))
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(""), 0o700, "data directory");
        for name in [
            "credentials.db",
            "credentials.db-wal",
            "store.key",
            "gatehouse.lock",
        ] {
            assert_eq!(mode(name), 0o600, "{name}");
        }
    }
}
