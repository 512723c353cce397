//! The GraphQL clients frontends actually use, against a real gateway: each client is a Node
//! script in `tests/clients/` (pinned by its package-lock.json, installed with `npm ci` when
//! needed) that queries and subscribes through the gateway as an application would. One
//! system serves every script, one script at a time.
//!
//! The line protocol between this test and a script is described in `tests/clients/lib.mjs`:
//! the script checks the data it got against the fixture passed in `FIXTURE` and prints it;
//! this test makes the purchase a subscription waits for once the script says `ready`, and
//! checks the printed data again, so neither an error nor an empty answer passes.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Stack, admin, token};

/// One script per client. More go here as the gateway learns what they need (`@defer`).
const SCRIPTS: &[&str] = &[
    "apollo.mjs",
    "urql.mjs",
    "graphql-sse.mjs",
    "apollo-batch.mjs",
    "apollo-persisted.mjs",
    "apollo-multipart.mjs",
    "apollo-defer.mjs",
];

/// A script's own deadline is 30 s (lib.mjs); this only catches a script that hangs anyway.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

const PASS_PRICE: i64 = 24_900;
const SEATS: i64 = 2;

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// What the scripts must get: a conference with a public and a restricted ticket type, the
/// CRM's seeded sponsorship levels, and the event of an anonymous purchase of two passes.
struct Fixture {
    conference: String,
    pass: String,
    query: Value,
    event: Value,
}

impl Fixture {
    async fn create(stack: &Stack) -> Self {
        let admin = admin();
        let data = stack
            .ok(
                &admin,
                "mutation($input: CreateConferenceInput!) { createConference(input: $input) { id } }",
                json!({ "input": { "name": "ClientConf", "currency": "EUR", "startsOn": "2027-09-01", "endsOn": "2027-09-03" } }),
            )
            .await;
        let conference = text(&data["createConference"]["id"]);
        let mut ticket_types = Vec::new();
        for (name, price, capacity, visibility) in [
            ("Conference pass", PASS_PRICE, 200, "PUBLIC"),
            ("Speaker", 0, 20, "RESTRICTED"),
        ] {
            let data = stack
                .ok(
                    &admin,
                    "mutation($input: CreateTicketTypeInput!) { createTicketType(input: $input) { id } }",
                    json!({ "input": {
                        "conferenceId": conference, "name": name,
                        "price": { "amount": price, "currency": "EUR" },
                        "capacity": capacity, "visibility": visibility
                    } }),
                )
                .await;
            ticket_types.push(json!({
                "id": text(&data["createTicketType"]["id"]), "name": name,
                "price": { "amount": price, "currency": "EUR" },
                "capacity": capacity, "visibility": visibility
            }));
        }
        let pass = text(&ticket_types[0]["id"]);
        let query = json!({
            "conference": {
                "id": conference, "name": "ClientConf", "currency": "EUR",
                "startsOn": "2027-09-01", "endsOn": "2027-09-03",
                "ticketTypes": ticket_types,
            },
            // The CRM's migrations seed these.
            "sponsorshipLevels": [
                { "name": "Gold", "ticketAllowance": 5, "rank": 1 },
                { "name": "Silver", "ticketAllowance": 3, "rank": 2 },
                { "name": "Bronze", "ticketAllowance": 1, "rank": 3 },
            ],
        });
        let event = json!({
            "__typename": "TicketPurchaseCreated",
            "purchase": {
                "id": null, "status": "PENDING_PAYMENT", "ticketCount": SEATS,
                "total": { "amount": PASS_PRICE * SEATS, "currency": "EUR" },
                "purchaser": { "name": "Ada Lovelace" },
                "lines": [{
                    "ticketTypeId": pass, "quantity": SEATS,
                    "unitPrice": { "amount": PASS_PRICE, "currency": "EUR" },
                    "ticketType": { "name": "Conference pass" },
                }],
            },
        });
        Self {
            conference,
            pass,
            query,
            event,
        }
    }

    fn json(&self) -> String {
        json!({ "conferenceId": self.conference, "query": self.query, "event": self.event })
            .to_string()
    }

    /// What the test buys while a script listens: two passes, without a token, as the public
    /// purchase form does. Returns the purchase id.
    async fn buy(&self, stack: &Stack) -> Result<String, String> {
        let body = stack
            .gql(
                None,
                "mutation($input: CreateTicketPurchaseInput!) { createTicketPurchase(input: $input) { id } }",
                json!({ "input": {
                    "purchaser": { "name": "Ada Lovelace", "email": "ada@example.org" },
                    "lines": [{ "ticketTypeId": self.pass, "quantity": SEATS }]
                } }),
            )
            .await;
        body["data"]["createTicketPurchase"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("the purchase failed: {body}"))
    }
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
        .to_owned()
}

/// What a script did: its exit, the data it reported, the purchase made for it, its output.
#[derive(Default)]
struct Transcript {
    success: bool,
    query: Option<Value>,
    event: Option<Value>,
    purchase: Option<String>,
    output: Vec<String>,
}

impl Transcript {
    fn log(&self) -> String {
        self.output.join("\n")
    }
}

/// Runs one script to its end, answering its `ready` with a purchase.
async fn run_script(stack: &Stack, fixture: &Fixture, script: &str) -> Transcript {
    let after = stack.last_ticket_event_cursor().await;
    let organiser = token("organiser", &["events:read", "tickets:read", "crm:read"]);
    let mut node = Command::new("node")
        .arg(script)
        .current_dir(clients_dir())
        .env("GATEWAY_URL", stack.url())
        .env("ORGANISER_TOKEN", organiser)
        .env("FIXTURE", fixture.json())
        .env("AFTER_CURSOR", after)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node ({e}); Node.js 20.19+ is required"));
    let mut stdin = node.stdin.take();
    // Both pipes are drained by threads so a chatty script never blocks on a full pipe.
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    if let Some(stdout) = node.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let stderr = node.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        })
    });

    let mut transcript = Transcript::default();
    let converse = async {
        while let Some(line) = lines.recv().await {
            let (kind, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            match kind {
                "ready" => match fixture.buy(stack).await {
                    Ok(id) => {
                        if let Some(stdin) = stdin.as_mut() {
                            let _ = writeln!(stdin, "purchase {id}");
                        }
                        transcript.purchase = Some(id);
                    }
                    Err(e) => {
                        transcript.output.push(e);
                        // A closed stdin fails the script now rather than at its deadline.
                        stdin = None;
                    }
                },
                "query" | "event" => match serde_json::from_str::<Value>(rest) {
                    Ok(value) if kind == "query" => transcript.query = Some(value),
                    Ok(value) => transcript.event = Some(value),
                    Err(e) => transcript
                        .output
                        .push(format!("unreadable {kind} ({e}): {rest}")),
                },
                _ => {}
            }
            transcript.output.push(line);
        }
    };
    let finished = tokio::time::timeout(SCRIPT_TIMEOUT, converse).await.is_ok();
    drop(stdin);
    if !finished {
        let _ = node.kill();
    }
    transcript.success = exited_successfully(&mut node).await && finished;
    if !finished {
        transcript
            .output
            .push(format!("no end within {SCRIPT_TIMEOUT:?}: killed"));
    }
    if let Some(stderr) = stderr.and_then(|thread| thread.join().ok()) {
        transcript.output.extend(stderr.lines().map(str::to_owned));
    }
    transcript
}

/// Waits for the script's exit (its stdout is closed, so it is ending), killing it if it does
/// not end within a few seconds.
async fn exited_successfully(node: &mut Child) -> bool {
    for _ in 0..100 {
        match node.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => break,
        }
    }
    let _ = node.kill();
    let _ = node.wait();
    false
}

/// What is wrong with a script's run; empty when it did everything right.
async fn problems(stack: &Stack, fixture: &Fixture, transcript: &Transcript) -> Vec<String> {
    let mut problems = Vec::new();
    if !transcript.success {
        problems.push("did not exit 0".to_owned());
    }
    if transcript.query.as_ref() != Some(&fixture.query) {
        problems.push(format!(
            "query data {:?}, expected {}",
            transcript.query, fixture.query
        ));
    }
    let Some(purchase) = &transcript.purchase else {
        problems.push("never subscribed (no `ready`), so nothing was bought".to_owned());
        return problems;
    };
    let mut expected = fixture.event.clone();
    expected["purchase"]["id"] = json!(purchase);
    match &transcript.event {
        None => problems.push(format!("no event for purchase {purchase}")),
        Some(event) => {
            // The purchase's event is the newest one: its cursor is the log's last.
            let cursor = stack.last_ticket_event_cursor().await;
            if event["cursor"] != cursor.as_str() {
                problems.push(format!(
                    "event cursor {}, expected {cursor}",
                    event["cursor"]
                ));
            }
            let mut without_cursor = event.clone();
            if let Some(object) = without_cursor.as_object_mut() {
                object.remove("cursor");
            }
            if without_cursor != expected {
                problems.push(format!("event {event}, expected {expected}"));
            }
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mainstream_clients_query_and_subscribe_through_the_gateway() {
    let dir = clients_dir();
    tokio::task::spawn_blocking(move || testkit::npm::ensure_installed(&dir))
        .await
        .expect("npm ci task");
    let stack = Stack::start().await;
    let fixture = Fixture::create(&stack).await;

    let mut failures = Vec::new();
    for script in SCRIPTS {
        let transcript = run_script(&stack, &fixture, script).await;
        let problems = problems(&stack, &fixture, &transcript).await;
        if problems.is_empty() {
            eprintln!("{script}: ok\n{}", transcript.log());
        } else {
            failures.push(format!(
                "{script}:\n  {}\n  output:\n{}",
                problems.join("\n  "),
                transcript.log()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "clients failed against the gateway:\n{}",
        failures.join("\n\n")
    );
}
