//! The launcher as a user runs it: `conftools up` in a fresh data directory, then a token
//! from `conftools token` used against the running services and the gateway in front of them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use testkit::ServiceProcess as Running;

fn conftools() -> Command {
    Command::new(env!("CARGO_BIN_EXE_conftools"))
}

struct Launched {
    _process: Running,
    gateway: String,
    /// The service `up` lists first: the gateway, since frontends use it.
    first_listed: String,
    ticketing: String,
    crm: String,
    admin: String,
    /// The dashboard URL, printed when `up` serves one.
    dashboard: Option<String>,
}

/// Starts `conftools up` on ephemeral ports; returns the URLs and the admin token it printed.
/// Without the dashboard: parallel tests must not build `web/` at once.
fn start(data_dir: &std::path::Path) -> Launched {
    start_with(data_dir, &["--no-web".as_ref()])
}

fn start_with(data_dir: &std::path::Path, extra: &[&std::ffi::OsStr]) -> Launched {
    let mut child = conftools()
        .args([
            "up",
            "--ticketing-addr",
            "127.0.0.1:0",
            "--crm-addr",
            "127.0.0.1:0",
            "--gateway-addr",
            "127.0.0.1:0",
        ])
        .args(extra)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("CONFTOOLS_JWT_SECRET")
        .env_remove("CONFTOOLS_WEB_DIR")
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
    let (mut url, mut crm, mut token, mut token_next) = (None, None, None, false);
    let (mut gateway, mut first_listed, mut dashboard) = (None, None, None);
    while url.is_none() || crm.is_none() || gateway.is_none() || token.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("conftools up printed its URLs and token in time");
        let service = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        if line.contains("http://") && first_listed.is_none() {
            first_listed = Some(service);
        }
        if token_next {
            token = Some(line.trim().to_owned());
            token_next = false;
        } else if let Some(rest) = line.trim().strip_prefix("dashboard") {
            dashboard = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.trim().strip_prefix("gateway") {
            gateway = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.trim().strip_prefix("ticketing") {
            url = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.trim().strip_prefix("crm") {
            crm = Some(rest.trim().to_owned());
        } else if line.contains("admin token") {
            token_next = true;
        }
    }
    Launched {
        _process: running,
        gateway: gateway.unwrap_or_default(),
        first_listed: first_listed.unwrap_or_default(),
        ticketing: url.unwrap_or_default(),
        crm: crm.unwrap_or_default(),
        admin: token.unwrap_or_default(),
        dashboard,
    }
}

async fn post(url: &str, token: &str, query: &str) -> Value {
    post_with(url, token, query, json!({})).await
}

async fn post_with(url: &str, token: &str, query: &str, variables: Value) -> Value {
    reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
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
    let launched = start(dir.path());
    let (url, admin) = (launched.ticketing.clone(), launched.admin.clone());
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(
        dir.path().join("jwt-secret").exists(),
        "the secret is generated on first start"
    );

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
    let script_token = String::from_utf8(output.stdout)
        .expect("utf8")
        .trim()
        .to_owned();
    let events = post(
        &url,
        &script_token,
        "{ ticketEvents { edges { node { __typename } } } }",
    )
    .await;
    assert_eq!(
        events["data"]["ticketEvents"]["edges"][0]["node"]["__typename"],
        "ConferenceCreated"
    );
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

/// The whole sponsorship flow through the launcher's wiring: the CRM books a Gold sponsor's
/// five tickets in ticketing on its own, with the token it mints; the gateway shows the sponsor
/// with its purchases from both services in one request.
#[tokio::test]
async fn up_wires_the_crm_to_ticketing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let launched = start(dir.path());
    let (ticketing, crm, admin) = (&launched.ticketing, &launched.crm, &launched.admin);
    assert!(crm.starts_with("http://127.0.0.1:"), "{crm}");
    let gateway = &launched.gateway;
    assert!(
        gateway.starts_with("http://127.0.0.1:") && gateway.ends_with("/graphql"),
        "{gateway}"
    );
    assert_eq!(
        launched.first_listed, "gateway",
        "frontends' URL comes first"
    );
    let ok = |body: Value| {
        assert!(body["errors"].is_null(), "{body:#}");
        body["data"].clone()
    };

    let conference = ok(post(ticketing, admin,
        "mutation { createConference(input: { name: \"Launch\", currency: \"EUR\", startsOn: \"2027-01-01\", endsOn: \"2027-01-02\" }) { id } }").await)
        ["createConference"]["id"].as_str().unwrap_or_default().to_owned();
    let sponsor_tickets = ok(post_with(ticketing, admin,
        "mutation($c: ID!) { createTicketType(input: { conferenceId: $c, name: \"Sponsor\", price: { amount: 0, currency: \"EUR\" }, capacity: 50, visibility: RESTRICTED }) { id } }",
        json!({ "c": conference })).await)["createTicketType"]["id"].as_str().unwrap_or_default().to_owned();
    ok(post_with(crm, admin,
        "mutation($input: ConfigureSponsorTicketsInput!) { configureSponsorTickets(input: $input) { conferenceId } }",
        json!({ "input": { "conferenceId": conference, "ticketTypeId": sponsor_tickets } })).await);
    let sponsor = ok(post_with(crm, admin,
        "mutation($input: CreateSponsorInput!) { createSponsor(input: $input) { id } }",
        json!({ "input": { "name": "Acme", "level": "Gold", "contactName": "Grace Hopper", "contactEmail": "grace@acme.example.org" } })).await)
        ["createSponsor"]["id"].as_str().unwrap_or_default().to_owned();
    ok(post_with(
        crm,
        admin,
        "mutation($s: ID!) { sendContract(sponsorId: $s) { id } }",
        json!({ "s": sponsor }),
    )
    .await);
    ok(post_with(
        crm,
        admin,
        "mutation($s: ID!) { signContract(sponsorId: $s) { id } }",
        json!({ "s": sponsor }),
    )
    .await);
    let invoice = ok(post_with(crm, admin,
        "mutation($input: IssueInvoiceInput!) { issueInvoice(input: $input) { id } }",
        json!({ "input": { "sponsorId": sponsor, "amount": { "amount": 1_000_000, "currency": "EUR" }, "dueOn": due_in_a_month() } })).await)
        ["issueInvoice"]["id"].as_str().unwrap_or_default().to_owned();
    ok(post_with(
        crm,
        admin,
        "mutation($id: ID!) { markInvoicePaid(id: $id) { status } }",
        json!({ "id": invoice }),
    )
    .await);

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let allocation = ok(post_with(crm, admin,
            "query($id: ID!) { sponsor(id: $id) { ticketAllocation { status ticketsBooked reason } } }",
            json!({ "id": sponsor })).await)["sponsor"]["ticketAllocation"].clone();
        if allocation["status"] == "BOOKED" {
            assert_eq!(allocation["ticketsBooked"], 5);
            break;
        }
        assert!(Instant::now() < deadline, "never booked: {allocation:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let purchases = ok(post_with(ticketing, admin,
        "query($c: ID!) { ticketPurchases(conferenceId: $c) { edges { node { status complimentary ticketCount } } } }",
        json!({ "c": conference })).await);
    assert_eq!(
        purchases["ticketPurchases"]["edges"],
        json!([{ "node": { "status": "PAID", "complimentary": true, "ticketCount": 5 } }])
    );

    let through_gateway = ok(post_with(
        gateway,
        admin,
        "query($id: ID!) { sponsor(id: $id) { name ticketPurchases { status ticketCount sponsor { name } } } }",
        json!({ "id": sponsor }),
    )
    .await);
    assert_eq!(
        through_gateway["sponsor"],
        json!({ "name": "Acme", "ticketPurchases": [{ "status": "PAID", "ticketCount": 5, "sponsor": { "name": "Acme" } }] })
    );
}

/// `up --demo` seeds a conference with sponsors at every step into the empty data directory,
/// serves the dashboard beside the API, and prints a dashboard URL that carries the admin token.
#[tokio::test]
async fn up_demo_seeds_a_live_conference_and_prints_the_dashboard_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let web = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        web.path().join("index.html"),
        "<!doctype html><title>dashboard fixture</title>",
    )
    .expect("index.html");
    let launched = start_with(
        dir.path(),
        &[
            "--demo".as_ref(),
            "--web-dir".as_ref(),
            web.path().as_os_str(),
        ],
    );
    let dashboard = launched
        .dashboard
        .clone()
        .expect("a dashboard URL is printed");
    let origin = launched.gateway.trim_end_matches("/graphql");
    assert_eq!(dashboard, format!("{origin}/?token={}", launched.admin));
    let page = reqwest::get(&dashboard)
        .await
        .expect("GET dashboard")
        .text()
        .await
        .expect("body");
    assert!(page.contains("dashboard fixture"), "{page}");

    let data = post(
        &launched.gateway,
        &launched.admin,
        "{ conferences { nodes { name ticketTypes { name sold capacity visibility } } }
           sponsors(first: 50) { nodes { name onboarded contract { status } invoices { status } } } }",
    )
    .await;
    assert!(data["errors"].is_null(), "{data:#}");
    let conferences = data["data"]["conferences"]["nodes"]
        .as_array()
        .expect("conferences");
    assert_eq!(conferences.len(), 1);
    assert_eq!(conferences[0]["name"], conftools::demo::CONFERENCE);
    let types = conferences[0]["ticketTypes"]
        .as_array()
        .expect("ticket types");
    assert!(types.iter().any(|t| t["visibility"] == "RESTRICTED"));
    assert!(
        types.iter().any(|t| t["sold"].as_i64() > Some(0)),
        "some tickets are sold: {types:?}"
    );
    assert!(
        types.iter().any(|t| t["sold"] == t["capacity"]),
        "one type is sold out: {types:?}"
    );
    let sponsors = data["data"]["sponsors"]["nodes"]
        .as_array()
        .expect("sponsors");
    let contracts: Vec<&str> = sponsors
        .iter()
        .filter_map(|s| s["contract"]["status"].as_str())
        .collect();
    for status in ["DRAFT", "SENT", "SIGNED"] {
        assert!(
            contracts.contains(&status),
            "no {status} contract: {contracts:?}"
        );
    }
    assert!(sponsors.iter().any(|s| s["onboarded"] == true));
    let awaiting = sponsors
        .iter()
        .find(|s| s["name"] == conftools::demo::SPONSOR_AWAITING_PAYMENT)
        .expect("the sponsor with an open invoice");
    assert_eq!(awaiting["onboarded"], false);
    assert_eq!(
        awaiting["invoices"],
        json!([{ "status": "PAID" }, { "status": "ISSUED" }])
    );
}

/// `up --trusted-documents-only` enforces the manifest beside the served dashboard, with the
/// demo's operations added so the demo still seeds through the gateway; anything else is
/// refused.
#[tokio::test]
async fn up_trusted_documents_only_runs_the_dashboards_and_the_demos_documents_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let web = tempfile::tempdir().expect("tempdir");
    std::fs::write(web.path().join("index.html"), "<!doctype html>").expect("index.html");
    let dashboard_document = "query Levels { sponsorshipLevels { name } }";
    std::fs::write(
        web.path()
            .join(conftools::trusted_documents::MANIFEST_FILE),
        json!({ conftools::trusted_documents::document_id(dashboard_document): dashboard_document })
            .to_string(),
    )
    .expect("manifest");
    // Seeding goes through the enforcing gateway: `up` prints its URLs only once it succeeded.
    let launched = start_with(
        dir.path(),
        &[
            "--demo".as_ref(),
            "--trusted-documents-only".as_ref(),
            "--web-dir".as_ref(),
            web.path().as_os_str(),
        ],
    );
    let trusted = post(&launched.gateway, &launched.admin, dashboard_document).await;
    assert!(
        trusted["data"]["sponsorshipLevels"].is_array(),
        "{trusted:#}"
    );
    let ad_hoc = post(
        &launched.gateway,
        &launched.admin,
        "{ conferences { nodes { name } } }",
    )
    .await;
    assert_eq!(
        ad_hoc["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_IN_LIST",
        "{ad_hoc:#}"
    );
    // The demo's documents run: the seeded conference is there.
    let conferences = conftools::demo::DOCUMENTS
        .iter()
        .find(|document| document.starts_with("query Conferences"))
        .expect("the demo looks for its conference");
    let seeded = post(&launched.gateway, &launched.admin, conferences).await;
    assert_eq!(
        seeded["data"]["conferences"]["nodes"][0]["name"],
        conftools::demo::CONFERENCE,
        "{seeded:#}"
    );
}

#[test]
fn up_trusted_documents_only_without_a_dashboard_explains_why_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = conftools()
        .args(["up", "--no-web", "--trusted-documents-only", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("conftools up runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--trusted-documents-only") && stderr.contains("no dashboard"),
        "{stderr}"
    );
}

/// SIGTERM ends `conftools up` within its grace period even with a purchase stuck on a
/// wedged database and a live subscription open through the gateway, both of which would
/// hold a graceful shutdown forever.
#[tokio::test]
async fn sigterm_stops_up_within_its_grace_period_whatever_is_stuck() {
    let dir = tempfile::tempdir().expect("tempdir");
    let launched = start_with(
        dir.path(),
        &[
            "--no-web".as_ref(),
            "--shutdown-grace-secs".as_ref(),
            "2".as_ref(),
        ],
    );
    let subscription = testkit::WsSubscription::open(
        &launched.gateway.replace("http://", "ws://"),
        "graphql-transport-ws",
        json!({ "Authorization": format!("Bearer {}", launched.admin) }),
        "subscription { ticketEvents { __typename } }",
        json!({}),
    )
    .await
    .expect("subscription through the gateway");
    let database = format!("sqlite://{}", dir.path().join("ticketing.db").display());
    let wedge = testkit::WedgedWriter::hold(&database, "ticket_event_head").await;
    let (gateway, admin) = (launched.gateway.clone(), launched.admin.clone());
    let stuck = tokio::spawn(async move {
        post(
            &gateway,
            &admin,
            "mutation { createConference(input: { name: \"Stuck\", currency: \"EUR\", startsOn: \"2027-01-01\", endsOn: \"2027-01-02\" }) { id } }",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!stuck.is_finished(), "the write should be stuck");

    let mut process = launched._process;
    let (exit, took) = process.terminate(Duration::from_secs(8)).await;
    assert!(exit.success(), "exit status {exit}");
    assert!(
        took < Duration::from_secs(5),
        "stopping took {took:?} with a 2 s grace period"
    );
    stuck.abort();
    drop(subscription);
    wedge.release().await;
}

/// An invoice due date the CRM accepts whenever this runs (it refuses dates far in the past).
fn due_in_a_month() -> String {
    (chrono::Utc::now().date_naive() + chrono::Days::new(30)).to_string()
}
