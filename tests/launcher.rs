//! The launcher as a user runs it: `conftools up` in a fresh data directory, then a token
//! from `conftools token` used against the running services.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn conftools() -> Command {
    Command::new(env!("CARGO_BIN_EXE_conftools"))
}

/// Starts `conftools up` on ephemeral ports; returns the process, the ticketing URL and the
/// admin token it printed.
fn start(data_dir: &std::path::Path) -> (Running, String, String) {
    let mut child = conftools()
        .args(["up", "--ticketing-addr", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("CONFTOOLS_JWT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("conftools starts");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut url, mut token, mut token_next) = (None, None, false);
    while url.is_none() || token.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("conftools up printed its URLs and token in time");
        if token_next {
            token = Some(line.trim().to_owned());
            token_next = false;
        } else if let Some(rest) = line.trim().strip_prefix("ticketing") {
            url = Some(rest.trim().to_owned());
        } else if line.contains("admin token") {
            token_next = true;
        }
    }
    (running, url.unwrap_or_default(), token.unwrap_or_default())
}

async fn post(url: &str, token: &str, query: &str) -> Value {
    reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn up_serves_ticketing_with_a_working_admin_token_and_token_mints_more() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, url, admin) = start(dir.path());
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(dir.path().join("jwt-secret").exists(), "the secret is generated on first start");

    let created = post(
        &url,
        &admin,
        "mutation { createConference(input: { name: \"Launch\", currency: \"EUR\", startsOn: \"2027-01-01\", endsOn: \"2027-01-02\" }) { id } }",
    )
    .await;
    assert!(created["errors"].is_null(), "{created:#}");

    let output = conftools()
        .args(["token", "--scope", "tickets:read events:read", "--data-dir"])
        .arg(dir.path())
        .env_remove("CONFTOOLS_JWT_SECRET")
        .output()
        .expect("conftools token runs");
    assert!(output.status.success());
    let script_token = String::from_utf8(output.stdout).expect("utf8").trim().to_owned();
    let events = post(&url, &script_token, "{ ticketEvents { edges { node { __typename } } } }").await;
    assert_eq!(events["data"]["ticketEvents"]["edges"][0]["node"]["__typename"], "ConferenceCreated");
}

#[test]
fn token_without_a_data_directory_secret_explains_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = conftools()
        .args(["token", "--scope", "tickets:admin", "--data-dir"])
        .arg(dir.path().join("missing"))
        .env_remove("CONFTOOLS_JWT_SECRET")
        .output()
        .expect("conftools token runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("conftools up"), "{stderr}");
}
