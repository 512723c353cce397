//! A writer that cannot commit: another holder of SQLite's write lock, or a PostgreSQL
//! transaction sitting on the lock every write needs. `/ready` must say so, so an orchestrator
//! replaces the instance, and SIGTERM must still stop the process within its grace period.

use std::time::{Duration, Instant};

use platform::JwtKeys;
use serde_json::json;
use testkit::WedgedWriter;

use crate::support::*;

const HEAD: &str = "ticket_event_head";

async fn ready_status(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.expect("/ready answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_stuck_writer_makes_ready_fail_until_it_is_released() {
    let app = TestApp::spawn().await;
    let ready = app.http_url("/ready");
    assert_eq!(ready_status(&ready).await.0, 200);

    let wedge = WedgedWriter::hold(&app.database_url, HEAD).await;
    let (status, body) = ready_status(&ready).await;
    assert_eq!(status, 503, "{body}");
    assert_ne!(body["checks"]["database"], "ok", "{body}");
    // Reads still work: the service is up, only unable to write.
    assert!(
        app.gql(
            None,
            "{ conferences(first: 1) { edges { node { id } } } }",
            json!({})
        )
        .await
        .get("errors")
        .is_none()
    );

    wedge.release().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = ready_status(&ready).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still not ready after the writer was released: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.create_conference().await;
}

/// The `ticketing` binary itself, as an orchestrator runs it, with a write stuck on the
/// database when SIGTERM arrives.
#[tokio::test]
async fn sigterm_stops_the_binary_within_its_grace_period_with_a_write_in_flight() {
    let (database_url, _dir) = testkit::fresh_database_url("ticketing").await;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let secret = "sigterm-test-secret";
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &database_url,
            "--jwt-secret",
            secret,
            "--shutdown-grace-secs",
            "2",
        ])
        .env_remove("NATS_URL")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("the ticketing binary starts");
    let mut child = testkit::ServiceProcess(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client
        .get(format!("{base}/health"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "ticketing never became healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admin = JwtKeys::from_secret(secret.as_bytes())
        .mint("admin", ADMIN, Duration::from_secs(600))
        .expect("mint");
    let create = json!({
        "query": "mutation($input: CreateConferenceInput!) { createConference(input: $input) { id } }",
        "variables": { "input": { "name": "Stuck", "currency": "EUR", "startsOn": "2027-05-01", "endsOn": "2027-05-03" } }
    });

    let wedge = WedgedWriter::hold(&database_url, HEAD).await;
    let in_flight = tokio::spawn({
        let request = client
            .post(format!("{base}/graphql"))
            .bearer_auth(&admin)
            .json(&create);
        async move { request.send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!in_flight.is_finished(), "the write should be stuck");

    let (exit, took) = child.terminate(Duration::from_secs(8)).await;
    assert!(exit.success(), "exit status {exit}");
    assert!(
        took < Duration::from_secs(5),
        "stopping took {took:?} with a 2 s grace period"
    );
    in_flight.abort();
    wedge.release().await;

    // What the stuck write did, it did whole: a service restarted on the same database
    // writes, and its log has one ConferenceCreated per conference and no gap.
    let restarted = TestApp::spawn_on(&database_url).await;
    restarted.create_conference().await;
    let database = testkit::TestDatabase::open(&database_url).await;
    for sql in [
        "SELECT ABS((SELECT COUNT(*) FROM conferences) - (SELECT COUNT(*) FROM ticket_events WHERE event_type = 'ConferenceCreated'))",
        "SELECT (SELECT position FROM ticket_event_head) - (SELECT COUNT(*) FROM ticket_events)",
    ] {
        assert_eq!(database.count(sql).await, 0, "{sql}");
    }
    database.close().await;
}
