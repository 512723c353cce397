//! Requests an attacker sends to the open host service, refused at the door (issue 14's edge
//! limits, shared by every service through platform::graphql): mutations in bodies a browser
//! posts cross-site without asking (text/plain, forms, multipart, no content type), bodies far
//! over the size limit, batches over the batch limit, mutations past a client's rate limit;
//! and the reservation hoarder, refused by the purchase's own write past the cap on unpaid
//! seats. Each is refused with its status and code, writes nothing, and the service serves
//! the next normal request at once.

use std::time::{Duration, Instant};

use platform::client_address::{ProxyRange, TrustedProxies};
use platform::rate_limit::RateLimits;
use serde_json::{Value, json};

use crate::support::*;

const CREATE_CONFERENCE: &str = r#"mutation { createConference(input: { name: "Forged", currency: "EUR", startsOn: "2027-05-01", endsOn: "2027-05-03" }) { id } }"#;

async fn conferences(app: &TestApp) -> usize {
    app.ok(
        None,
        "{ conferences(first: 100) { edges { node { id } } } }",
        json!({}),
    )
    .await["conferences"]["edges"]
        .as_array()
        .map_or(0, Vec::len)
}

async fn post_raw(app: &TestApp, content_type: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url())
        .bearer_auth(app.admin())
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn cross_site_content_types_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let before = conferences(&app).await;
    let json_body = json!({ "query": CREATE_CONFERENCE }).to_string();
    let form = format!("query={}", urlencode(CREATE_CONFERENCE));
    let multipart = format!(
        "--b\r\ncontent-disposition: form-data; name=\"operations\"\r\n\r\n{json_body}\r\n--b--\r\n"
    );
    for (content_type, body) in [
        (Some("text/plain"), json_body.clone()),
        (Some("text/plain;charset=UTF-8"), json_body.clone()),
        (Some("application/x-www-form-urlencoded"), form),
        (Some("multipart/form-data; boundary=b"), multipart),
        (None, json_body.clone()),
    ] {
        let (status, body) = post_raw(&app, content_type, body.into_bytes()).await;
        assert_eq!(status, 415, "{content_type:?}: {body}");
        assert_eq!(
            error_code(&body),
            "UNSUPPORTED_MEDIA_TYPE",
            "{content_type:?}"
        );
    }
    assert_eq!(conferences(&app).await, before, "a refused mutation wrote");
    // The JSON media types are served.
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "application/graphql-response+json",
    ] {
        let (status, body) =
            post_raw(&app, Some(content_type), json_body.clone().into_bytes()).await;
        assert_eq!(status, 200, "{content_type}: {body}");
        assert!(body.get("errors").is_none(), "{content_type}: {body}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_cut_off_not_read() {
    let app = TestApp::spawn().await;
    // 50 MB of variables: refused at the limit (a declared length over it: unread).
    let padding = "x".repeat(50 * 1024 * 1024);
    let body = format!(r#"{{"query":"{{ __typename }}","variables":{{"pad":"{padding}"}}}}"#);
    let started = Instant::now();
    let answer = app
        .client
        .post(app.url())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    // The server answers as soon as the limit is passed and stops reading; a client still
    // writing may see the connection close before it reads that answer. Either way the body
    // was not read in full.
    if let Ok(response) = answer {
        assert_eq!(response.status().as_u16(), 413);
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(error_code(&body), "PAYLOAD_TOO_LARGE", "{body}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refusing took {:?}",
        started.elapsed()
    );
    app.create_conference().await;

    // Declared too large: answered before a byte of the body is sent, so the refusal costs
    // the same whatever the client means to upload.
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("tcp");
    stream
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: ticketing\r\nContent-Type: application/json\r\n\
              Content-Length: 100000000\r\n\r\n",
        )
        .await
        .expect("write");
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("PAYLOAD_TOO_LARGE"), "{answer}");
    app.create_conference().await;
}

#[tokio::test]
async fn batches_over_the_limit_execute_nothing() {
    let app = TestApp::spawn_with(|s| s.request_limits.max_batch = 3).await;
    let before = conferences(&app).await;
    let operation = json!({ "query": CREATE_CONFERENCE });
    let (status, body) = post_raw(
        &app,
        Some("application/json"),
        Value::Array(vec![operation.clone(); 4])
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "BATCH_LIMIT_EXCEEDED");
    assert_eq!(
        conferences(&app).await,
        before,
        "part of a refused batch ran"
    );
    // A batch within the limit runs, each operation answered in order.
    let (status, body) = post_raw(
        &app,
        Some("application/json"),
        Value::Array(vec![operation; 3]).to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().map(Vec::len), Some(3), "{body}");
    assert_eq!(conferences(&app).await, before + 3);
}

/// What the server answered: status, `Retry-After` in seconds, body.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

/// Posts `body` (one operation or a batch) as JSON, optionally with a bearer token and, as a
/// proxy in front of the server would, `X-Forwarded-For: <from>`.
async fn post(app: &TestApp, from: Option<&str>, token: Option<&str>, body: Value) -> Answer {
    let mut request = app.client.post(app.url()).json(&body);
    if let Some(from) = from {
        request = request.header("x-forwarded-for", from);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("text").parse().expect("whole seconds"));
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

fn buy(ticket_type: &str, quantity: i64) -> Value {
    json!({ "query": BUY, "variables": { "input": purchase_input(ticket_type, quantity) } })
}

fn trust_localhost(settings: &mut ticketing::Settings) {
    settings.trusted_proxies =
        TrustedProxies::new([ProxyRange::parse("127.0.0.1").expect("address")]);
}

#[tokio::test]
async fn mutations_past_a_clients_burst_get_429_with_retry_after_and_nothing_is_written() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limits = RateLimits {
            mutations_per_minute: 30,
            mutation_burst: 5,
        }
    })
    .await;
    let conference = app.create_conference().await;
    let hall = app
        .create_ticket_type(&conference, "Hall", 5_000, 100, "PUBLIC")
        .await;

    // An anonymous script (this test's address) buys as fast as it can: its burst goes
    // through, the next mutation is refused before it runs.
    let mut bought = Vec::new();
    for _ in 0..5 {
        let answer = post(&app, None, None, buy(&hall, 1)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.body.get("errors").is_none(), "{}", answer.body);
        bought.push(answer.body["data"]["createTicketPurchase"]["id"].clone());
    }
    let started = Instant::now();
    let refused = post(&app, None, None, buy(&hall, 1)).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(error_code(&refused.body), "RATE_LIMITED");
    // One mutation every two seconds.
    let wait = refused.retry_after.expect("Retry-After");
    assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    // A batch carrying a mutation is refused whole; so is a mutation over the WebSocket.
    let batch = Value::Array(vec![
        json!({ "query": "{ conferences(first: 1) { nodes { id } } }" }),
        buy(&hall, 1),
    ]);
    let refused = post(&app, None, None, batch).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(error_code(&refused.body), "RATE_LIMITED");
    let mut socket = WsSubscription::open(
        &app.ws_url(),
        "graphql-transport-ws",
        json!({}),
        BUY,
        json!({ "input": purchase_input(&hall, 1) }),
    )
    .await
    .expect("socket opens");
    let payload = socket
        .next_payload(Duration::from_secs(5))
        .await
        .expect("an answer");
    assert_eq!(error_code(&payload), "RATE_LIMITED", "{payload}");
    socket.close().await;
    assert_eq!(
        app.ticket_type(&hall).await["sold"],
        5,
        "a refused mutation wrote"
    );

    // Queries are not counted: the same client still reads.
    let read = post(
        &app,
        None,
        None,
        json!({ "query": "{ conferences(first: 10) { nodes { id } } }" }),
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert!(read.body.get("errors").is_none(), "{}", read.body);
    // Another client (a token's subject has its own bucket) is served right away.
    let admin = app.admin();
    let paid = post(
        &app,
        None,
        Some(&admin),
        json!({
            "query": "mutation($id: ID!) { confirmTicketPurchasePayment(id: $id) { status } }",
            "variables": { "id": bought[0] }
        }),
    )
    .await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    assert_eq!(
        paid.body["data"]["confirmTicketPurchasePayment"]["status"],
        "PAID"
    );
    // And the script, once it has waited as it was told, buys again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let again = post(&app, None, None, buy(&hall, 1)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body.get("errors").is_none(), "{}", again.body);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_bucket() {
    let limits = RateLimits {
        mutations_per_minute: 6,
        mutation_burst: 2,
    };
    let app = TestApp::spawn_with(|s| {
        s.rate_limits = limits;
        trust_localhost(s);
    })
    .await;
    let conference = app.create_conference().await;
    let hall = app
        .create_ticket_type(&conference, "Hall", 5_000, 100, "PUBLIC")
        .await;
    for _ in 0..2 {
        let answer = post(&app, Some("203.0.113.1"), None, buy(&hall, 1)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert_eq!(
        post(&app, Some("203.0.113.1"), None, buy(&hall, 1))
            .await
            .status,
        429
    );
    // Writing another address in front of the proxy's entry does not make a new client: the
    // right-most address the proxy did not add is the client.
    let spoofed = post(
        &app,
        Some("198.51.100.99, 203.0.113.1"),
        None,
        buy(&hall, 1),
    )
    .await;
    assert_eq!(spoofed.status, 429, "{}", spoofed.body);
    // Another buyer behind the same proxy is served.
    let other = post(&app, Some("203.0.113.2"), None, buy(&hall, 1)).await;
    assert_eq!(other.status, 200, "{}", other.body);
    assert!(other.body.get("errors").is_none(), "{}", other.body);

    // Without the proxy trusted, X-Forwarded-For is the client's own claim and changes nothing.
    let direct = TestApp::spawn_with(|s| s.rate_limits = limits).await;
    let conference = direct.create_conference().await;
    let hall = direct
        .create_ticket_type(&conference, "Hall", 5_000, 100, "PUBLIC")
        .await;
    for from in ["203.0.113.1", "203.0.113.2"] {
        let answer = post(&direct, Some(from), None, buy(&hall, 1)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let refused = post(&direct, Some("203.0.113.3"), None, buy(&hall, 1)).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
}

/// The code, scope and limit of an `UNPAID_SEAT_LIMIT` refusal.
fn seat_refusal(body: &Value) -> (String, String, i64) {
    let extensions = &body["errors"][0]["extensions"];
    (
        error_code(body),
        extensions["scope"].as_str().unwrap_or_default().to_owned(),
        extensions["limit"].as_i64().unwrap_or_default(),
    )
}

/// An anonymous script tries to hold a whole ticket type without paying: the per-purchase
/// cap and then its address's cap refuse it long before the type is gone, writing nothing,
/// and a normal buyer still buys.
#[tokio::test]
async fn a_script_cannot_hold_a_whole_ticket_type_unpaid() {
    let app = TestApp::spawn_with(|s| {
        default_limits(s);
        trust_localhost(s);
    })
    .await;
    let conference = app.create_conference().await;
    let hall = app
        .create_ticket_type(&conference, "Hall", 5_000, 100, "PUBLIC")
        .await;
    let workshop = app
        .create_ticket_type(&conference, "Workshop", 2_000, 100, "PUBLIC")
        .await;
    const HOARDER: &str = "198.51.100.7";

    // All hundred seats at once: over the per-purchase cap.
    let greedy = post(&app, Some(HOARDER), None, buy(&hall, 100)).await;
    assert_eq!(
        seat_refusal(&greedy.body),
        ("UNPAID_SEAT_LIMIT".into(), "PURCHASE".into(), 10),
        "{}",
        greedy.body
    );
    // Then as many as one purchase may hold, until refused: a one-line purchase, a two-line
    // one with an idempotency key (the write paths differ), and so on.
    let mut held = Vec::new();
    let mut refusal = None;
    for attempt in 0..10 {
        let body = if attempt % 2 == 0 {
            buy(&hall, 10)
        } else {
            json!({ "query": BUY, "variables": {
                "key": format!("hoard-{attempt}"),
                "input": {
                    "purchaser": { "name": "Hoarder", "email": "hoarder@example.org" },
                    "lines": [
                        { "ticketTypeId": hall, "quantity": 5 },
                        { "ticketTypeId": workshop, "quantity": 5 }
                    ]
                }
            } })
        };
        let answer = post(&app, Some(HOARDER), None, body).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        if answer.body.get("errors").is_some() {
            refusal = Some(answer.body);
            break;
        }
        held.push(answer.body["data"]["createTicketPurchase"].clone());
    }
    let refusal = refusal.expect("the hoarder was never refused");
    assert_eq!(held.len(), 2, "purchases before the refusal");
    assert_eq!(
        seat_refusal(&refusal),
        ("UNPAID_SEAT_LIMIT".into(), "BUYER".into(), 20),
        "{refusal}"
    );
    assert_eq!(refusal["errors"][0]["extensions"]["held"], 20, "{refusal}");
    // Not one more seat, and nothing of the refused purchases written.
    let one_more = post(&app, Some(HOARDER), None, buy(&workshop, 1)).await;
    assert_eq!(
        error_code(&one_more.body),
        "UNPAID_SEAT_LIMIT",
        "{}",
        one_more.body
    );
    assert_eq!(app.ticket_type(&hall).await["sold"], 15);
    assert_eq!(app.ticket_type(&workshop).await["sold"], 5);
    let purchases = app
        .ok(
            Some(&app.admin()),
            "query($c: ID!) { ticketPurchases(conferenceId: $c, first: 100) { nodes { id } } }",
            json!({ "c": conference }),
        )
        .await;
    assert_eq!(
        purchases["ticketPurchases"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // A normal buyer, from another address, buys at once.
    let normal = post(&app, Some("203.0.113.50"), None, buy(&hall, 2)).await;
    assert!(normal.body.get("errors").is_none(), "{}", normal.body);
    assert_eq!(
        normal.body["data"]["createTicketPurchase"]["status"],
        "PENDING_PAYMENT"
    );
    // So does a client with a token from the hoarder's address: it answers for its own
    // purchases by its subject, and its rate limit is its own.
    let box_office = app.token("box-office", &[]);
    let with_token = post(&app, Some(HOARDER), Some(&box_office), buy(&hall, 10)).await;
    assert!(
        with_token.body.get("errors").is_none(),
        "{}",
        with_token.body
    );

    // Seats leave the hoarder's count when it cancels a reservation or pays for it.
    let first = &held[0];
    let cancelled = post(
        &app,
        Some(HOARDER),
        None,
        json!({
            "query": "mutation($id: ID!, $token: String) { cancelTicketPurchase(id: $id, accessToken: $token) { status } }",
            "variables": { "id": first["id"], "token": first["accessToken"] }
        }),
    )
    .await;
    assert_eq!(
        cancelled.body["data"]["cancelTicketPurchase"]["status"], "CANCELLED",
        "{}",
        cancelled.body
    );
    let rebought = post(&app, Some(HOARDER), None, buy(&hall, 10)).await;
    assert!(rebought.body.get("errors").is_none(), "{}", rebought.body);
    app.ok(
        Some(&app.admin()),
        "mutation($id: ID!) { confirmTicketPurchasePayment(id: $id) { status } }",
        json!({ "id": held[1]["id"] }),
    )
    .await;
    let after_paying = post(&app, Some(HOARDER), None, buy(&workshop, 10)).await;
    assert!(
        after_paying.body.get("errors").is_none(),
        "{}",
        after_paying.body
    );
    // Now at the cap again.
    let capped = post(&app, Some(HOARDER), None, buy(&workshop, 1)).await;
    assert_eq!(
        error_code(&capped.body),
        "UNPAID_SEAT_LIMIT",
        "{}",
        capped.body
    );
}

/// Forty purchases from one address at once: the cap is decided by each purchase's write,
/// so exactly as many as it allows get through, never more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_purchases_from_one_address_cannot_overshoot_the_cap() {
    let app = TestApp::spawn_with(|s| {
        default_limits(s);
        trust_localhost(s);
    })
    .await;
    let conference = app.create_conference().await;
    let hall = app
        .create_ticket_type(&conference, "Hall", 5_000, 100, "PUBLIC")
        .await;
    let attempts = (0..40).map(|_| post(&app, Some("198.51.100.7"), None, buy(&hall, 1)));
    let answers = futures_util::future::join_all(attempts).await;
    let mut bought = 0;
    for answer in &answers {
        assert_eq!(answer.status, 200, "{}", answer.body);
        if answer.body.get("errors").is_some() {
            assert_eq!(
                error_code(&answer.body),
                "UNPAID_SEAT_LIMIT",
                "{}",
                answer.body
            );
        } else {
            bought += 1;
        }
    }
    assert_eq!(bought, 20);
    assert_eq!(app.ticket_type(&hall).await["sold"], 20);
    let normal = post(&app, Some("203.0.113.50"), None, buy(&hall, 1)).await;
    assert!(normal.body.get("errors").is_none(), "{}", normal.body);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// Issue 14, the document and its cost: what one operation may ask of the service, refused
// before validation with one error and a code, and the next request served as usual.

/// `levels` nested `tickets { purchase { … } }` lists under one purchase.
fn ticket_walk(levels: usize) -> String {
    let mut inner = String::from("id");
    for _ in 0..levels - 1 {
        inner = format!("id purchase {{ tickets {{ {inner} }} }}");
    }
    format!("query($id: ID!) {{ ticketPurchase(id: $id) {{ tickets {{ {inner} }} }} }}")
}

async fn serves_a_normal_request(app: &TestApp) {
    let body = app
        .gql(
            None,
            "{ conferences(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
}

#[tokio::test]
async fn a_deep_walk_through_purchases_and_tickets_is_refused_by_its_cost() {
    let app = TestApp::spawn().await;
    let id = json!({ "id": "00000000-0000-0000-0000-000000000000" });
    // Four levels: 10 + 10 x (1 + 1 + …) ≈ 12,000 objects at most, under the limit.
    // It runs: the purchase does not exist.
    let four = app
        .gql(Some(&app.admin()), &ticket_walk(4), id.clone())
        .await;
    assert_eq!(error_code(&four), "NOT_FOUND", "{four:#}");
    // Five: about 122,000, over the default of 50,000: refused before anything runs.
    let started = Instant::now();
    let five = app.gql(Some(&app.admin()), &ticket_walk(5), id).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(five["errors"].as_array().map(Vec::len), Some(1), "{five:#}");
    assert_eq!(error_code(&five), "COST_LIMIT_EXCEEDED");
    let cost = &five["errors"][0]["extensions"]["cost"];
    assert_eq!(cost["limit"], 50_000);
    assert!(
        cost["estimated"].as_u64().expect("estimated") > 100_000,
        "{cost}"
    );
    assert!(five.get("data").is_none_or(Value::is_null), "{five:#}");
    serves_a_normal_request(&app).await;
}

/// The heaviest reads real clients send ticketing (a live dashboard's event log, purchase and
/// sales pages; a booking client's lookups by conference and by its own reference; a large
/// entity fetch) pass every limit.
#[tokio::test]
async fn the_heaviest_client_operations_pass_every_limit() {
    let app = TestApp::spawn().await;
    let conference = app.create_conference().await;
    let admin = app.admin();
    let operations = [
        (
            "query TicketEventLog($after: String) { ticketEvents(after: $after, first: 100) { pageInfo { hasNextPage } nodes { __typename id cursor occurredAt
              ... on TicketPurchaseCreated { purchase { ...FeedPurchase } }
              ... on TicketPurchasePaid { purchase { ...FeedPurchase } }
              ... on TicketPurchaseCancelled { purchase { ...FeedPurchase } }
              ... on TicketPurchaseExpired { purchase { ...FeedPurchase } }
              ... on TicketAssigned { ticket { id attendee { name } ticketType { name } purchase { id } } }
              ... on TicketTypeCreated { ticketType { id name capacity } }
              ... on TicketTypeUpdated { ticketType { id name capacity } }
              ... on TicketTypeSoldOut { ticketType { id name capacity } }
              ... on TicketTypeAvailableAgain { ticketType { id name remaining } }
              ... on ConferenceCreated { conference { id name } } } } }
            fragment FeedPurchase on TicketPurchase { id status complimentary ticketCount purchaser { name } total { amount currency } lines { quantity ticketType { name } } }",
            json!({}),
        ),
        (
            "query Purchases($conferenceId: ID!, $after: String) { ticketPurchases(conferenceId: $conferenceId, first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { id status complimentary total { amount currency } } } }",
            json!({ "conferenceId": conference }),
        ),
        (
            "query Sales($conferenceId: ID!) { conference(id: $conferenceId) { id name currency ticketTypes { id name capacity sold remaining visibility onSale price { amount currency } } } }",
            json!({ "conferenceId": conference }),
        ),
        (
            "query Conferences { conferences(first: 100) { nodes { id name currency startsOn endsOn } } }",
            json!({}),
        ),
        (
            "query ConferenceLookup($id: ID!) { conference(id: $id) { id currency ticketTypes { id visibility } } }",
            json!({ "id": conference }),
        ),
        (
            "query TicketPurchaseByReference($externalReference: String!) { ticketPurchases(first: 1, externalReference: $externalReference) { nodes { id status complimentary ticketCount externalReference } } }",
            json!({ "externalReference": "client-order-1" }),
        ),
    ];
    for (query, variables) in operations {
        let body = app.gql(Some(&admin), query, variables).await;
        assert!(body.get("errors").is_none(), "{query}: {body:#}");
    }
    // An entity fetch of 1,000 purchases with their tickets, as a composing gateway sends
    // (1,000 x (1 + 10 x 2) = 21,000).
    let representations: Vec<Value> = (0..1_000)
        .map(|i| json!({ "__typename": "TicketPurchase", "id": format!("00000000-0000-0000-0000-{i:012}") }))
        .collect();
    let body = app
        .gql(
            Some(&admin),
            "query($representations: [_Any!]!) { _entities(representations: $representations) { ... on TicketPurchase { id status ticketCount tickets { id attendee { name } } } } }",
            json!({ "representations": representations }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
}

#[tokio::test]
async fn documents_over_the_token_directive_alias_and_root_field_limits_get_one_error() {
    let app = TestApp::spawn().await;
    let directives = format!(
        "{{ conferences(first: 1) {{ nodes {{ id {} }} }} }}",
        "@unknown ".repeat(5_000)
    );
    // 100,000 tokens in 200 KB, within the body limit.
    let tokens = format!("{{ {} }}", "a ".repeat(100_000));
    let aliases: String = (0..65).map(|i| format!("a{i}: __typename ")).collect();
    let roots: String = (0..21)
        .map(|i| format!("c{i}: conference(id: \"{i}\") {{ id }} "))
        .collect();
    for (document, code) in [
        (directives, "DIRECTIVE_LIMIT_EXCEEDED"),
        (tokens, "TOKEN_LIMIT_EXCEEDED"),
        (format!("{{ {aliases} }}"), "MAX_ALIASES_EXCEEDED"),
        (format!("{{ {roots} }}"), "ROOT_FIELD_LIMIT_EXCEEDED"),
    ] {
        let started = Instant::now();
        let body = app.gql(None, &document, json!({})).await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{code}: {:?}",
            started.elapsed()
        );
        assert_eq!(
            body["errors"].as_array().map(Vec::len),
            Some(1),
            "{code}: {body:#}"
        );
        assert_eq!(error_code(&body), code);
        assert!(
            body["errors"][0]["extensions"]["limit"].is_u64(),
            "{body:#}"
        );
        serves_a_normal_request(&app).await;
    }
    // Over GET too, and a mutation over the limits is refused, not counted or parsed.
    let response = app
        .client
        .get(format!(
            "{}?query={}",
            app.url(),
            urlencode(&format!("{{ {aliases} }}"))
        ))
        .send()
        .await
        .expect("answered");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(error_code(&body), "MAX_ALIASES_EXCEEDED");
}

#[tokio::test]
async fn an_operation_past_its_deadline_gets_504_timeout_and_the_next_is_served() {
    let app = TestApp::spawn_with(|settings| {
        settings.request_limits.request_timeout = Some(Duration::from_millis(300));
    })
    .await;
    // A writer that never lets go: the mutation waits on the database past its deadline.
    let wedge = testkit::WedgedWriter::hold(&app.database_url, "ticket_event_head").await;
    let started = Instant::now();
    let answer = post(
        &app,
        None,
        Some(&app.admin()),
        json!({ "query": CREATE_CONFERENCE }),
    )
    .await;
    assert_eq!(answer.status, 504, "{:#}", answer.body);
    assert_eq!(error_code(&answer.body), "TIMEOUT");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Reads are served meanwhile, and once the writer lets go, writes again.
    serves_a_normal_request(&app).await;
    wedge.release().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = post(
            &app,
            None,
            Some(&app.admin()),
            json!({ "query": CREATE_CONFERENCE }),
        )
        .await;
        if answer.status == 200 {
            assert!(answer.body.get("errors").is_none(), "{:#}", answer.body);
            break;
        }
        assert!(Instant::now() < deadline, "{:#}", answer.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_websocket_must_initialise_in_time_and_runs_a_bounded_number_of_operations() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = TestApp::spawn_with(|settings| {
        settings.request_limits.connection_init_timeout = Duration::from_millis(300);
        settings.request_limits.max_operations_per_socket = 1;
    })
    .await;

    // No `connection_init`: closed with 4408 once the timeout has passed.
    let mut request = app.ws_url().into_client_request().expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connected");
    let started = Instant::now();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("closed within the timeout")
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(
        closed.map(|f| u16::from(f.code)),
        Some(4408),
        "closed after {:?}",
        started.elapsed()
    );

    // One subscription runs; a second one on the same socket is refused.
    let init =
        json!({ "Authorization": format!("Bearer {}", app.token("dashboard", &["events:read"])) });
    let subscription = "subscription { ticketEvents { __typename } }";
    let mut socket = testkit::WsSubscription::open(
        &app.ws_url(),
        "graphql-transport-ws",
        init,
        subscription,
        json!({}),
    )
    .await
    .expect("subscribed");
    socket
        .start("2", subscription, json!({}))
        .await
        .expect("sent");
    let refusal = match socket.next_payload(Duration::from_secs(5)).await {
        Ok(payload) => payload.to_string(),
        Err(message) => message,
    };
    assert!(refusal.contains("TOO_MANY_OPERATIONS"), "{refusal}");
    socket.close().await;
    serves_a_normal_request(&app).await;
}

/// Reads until the server closes the connection; what it sent meanwhile.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buffer))
            .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&received).into_owned(),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!("the connection is still open after 5 s"),
        }
    }
}

/// Slow headers, a trickled body and an idle kept-alive connection are closed at the edge
/// (`platform::edge`, which every server of this workspace shares).
#[tokio::test]
async fn slow_headers_slow_bodies_and_idle_connections_are_closed() {
    use std::time::{Duration, Instant};
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn_with(|s| {
        s.request_limits.edge.header_read_timeout = Duration::from_secs(1);
        s.request_limits.edge.body_read_timeout = Duration::from_secs(1);
    })
    .await;
    let address = app.addr;

    let mut slow = tokio::net::TcpStream::connect(address).await.expect("tcp");
    slow.write_all(b"POST /graphql HTTP/1.1\r\nHost: ticketing\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    until_closed(&mut slow).await;
    assert!(started.elapsed() < Duration::from_secs(3));

    let mut trickle = tokio::net::TcpStream::connect(address).await.expect("tcp");
    trickle
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: ticketing\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"query\":",
        )
        .await
        .expect("write");
    let answer = until_closed(&mut trickle).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");

    let mut idle = tokio::net::TcpStream::connect(address).await.expect("tcp");
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: ticketing\r\n\r\n")
        .await
        .expect("write");
    let answer = until_closed(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    serves_a_normal_request(&app).await;
}
