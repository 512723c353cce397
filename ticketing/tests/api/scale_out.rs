//! Several instances of ticketing on one database, and the bus at scale: nothing that lives
//! in one process may lose or double an event, a seat or an expiry.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(15);

const PURCHASES: &str = "subscription {
  ticketEvents { __typename cursor ... on TicketPurchaseCreated { purchase { id } } }
}";

async fn buy(app: &TestApp, ticket_type: &str, name: &str) -> String {
    let input = json!({
        "purchaser": { "name": name, "email": "someone@example.org" },
        "lines": [{ "ticketTypeId": ticket_type, "quantity": 1 }]
    });
    app.ok(None, BUY, json!({ "input": input })).await["createTicketPurchase"]["id"]
        .as_str()
        .expect("purchase id")
        .to_owned()
}

/// The subscription is fed from the database, not from the instance's in-process wake-ups
/// alone: purchases committed through B reach a subscriber on A, in order, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_instance_sees_purchases_made_through_another_exactly_once() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_on(&a.database_url).await;
    let conference = b.create_conference().await;
    let standard = b
        .create_ticket_type(&conference, "Standard", 1_000, 100, "PUBLIC")
        .await;
    let init =
        json!({ "Authorization": format!("Bearer {}", a.token("dashboard", &["events:read"])) });
    let mut on_a = WsSubscription::open(
        &a.ws_url(),
        "graphql-transport-ws",
        init,
        PURCHASES,
        json!({}),
    )
    .await
    .expect("subscribed on A");
    // Let the subscription join the live feed before the first commit.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut bought = Vec::new();
    for i in 0..10 {
        bought.push(buy(&b, &standard, &format!("Buyer {i}")).await);
    }
    let mut seen = Vec::new();
    let mut cursors = HashSet::new();
    while seen.len() < bought.len() {
        let payload = on_a.next_payload(WAIT).await.expect("an event on A");
        let event = &payload["data"]["ticketEvents"];
        assert!(
            cursors.insert(event["cursor"].clone()),
            "delivered twice: {event}"
        );
        assert_eq!(event["__typename"], "TicketPurchaseCreated", "{event}");
        seen.push(event["purchase"]["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(seen, bought, "every purchase through B, in commit order");
    assert!(
        on_a.next_payload(Duration::from_millis(1_000))
            .await
            .is_err(),
        "no event may arrive twice"
    );
}

/// The seat count is checked inside the write transaction, so two instances selling the same
/// fifty seats to two hundred buyers at once still sell exactly fifty.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_never_oversell_fifty_seats_to_two_hundred_buyers() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_on(&a.database_url).await;
    let conference = a.create_conference().await;
    let hot = a
        .create_ticket_type(&conference, "Hot", 5_000, 50, "PUBLIC")
        .await;

    let buyers = (0..200).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        let hot = hot.clone();
        async move {
            let input = json!({
                "purchaser": { "name": format!("Buyer {i}"), "email": format!("buyer{i}@example.org") },
                "lines": [{ "ticketTypeId": hot, "quantity": 1 }]
            });
            app.gql(None, BUY, json!({ "input": input })).await
        }
    });
    let results = futures_util::future::join_all(buyers).await;
    let mut bought = 0;
    for body in &results {
        if body.get("errors").is_some() {
            assert_eq!(error_code(body), "SOLD_OUT", "{body:#}");
        } else {
            bought += 1;
        }
    }
    assert_eq!(bought, 50);
    for app in [&a, &b] {
        let stock = app.ticket_type(&hot).await;
        assert_eq!(stock["sold"], 50);
        assert_eq!(stock["remaining"], 0);
    }
    let sold_out = b
        .event_types()
        .await
        .into_iter()
        .filter(|t| t == "TicketTypeSoldOut")
        .count();
    assert_eq!(sold_out, 1);
}

/// Both instances run the expiry job; each unpaid reservation still expires exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_expire_each_unpaid_reservation_once() {
    let quick = |s: &mut ticketing::Settings| {
        s.reservation_ttl = Duration::from_millis(500);
        s.expiry_interval = Duration::from_millis(50);
    };
    let a = TestApp::spawn_with(quick).await;
    let b = TestApp::spawn_on_with(&a.database_url, quick).await;
    let conference = a.create_conference().await;
    let standard = a
        .create_ticket_type(&conference, "Standard", 1_000, 100, "PUBLIC")
        .await;
    let mut ids = Vec::new();
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        ids.push(buy(app, &standard, &format!("Late payer {i}")).await);
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if a.ticket_type(&standard).await["remaining"] == 100 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "reservations never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let both instances run their job a few more times.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let data = a
        .ok(
            Some(&a.admin()),
            "{ ticketEvents(first: 100) { nodes { __typename ... on TicketPurchaseExpired { purchase { id } } } } }",
            json!({}),
        )
        .await;
    let mut expired: HashMap<String, usize> = HashMap::new();
    for node in data["ticketEvents"]["nodes"].as_array().expect("nodes") {
        if node["__typename"] == "TicketPurchaseExpired" {
            *expired
                .entry(node["purchase"]["id"].as_str().expect("id").to_owned())
                .or_default() += 1;
        }
    }
    assert_eq!(expired.len(), ids.len(), "{expired:?}");
    assert!(expired.values().all(|&n| n == 1), "{expired:?}");
}

/// NATS goes down while purchases happen, and ticketing restarts meanwhile; when NATS is
/// back every event reaches a durable consumer exactly once and in log order. The test runs
/// its own `nats-server`, never stopping the shared one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_down_during_purchases_every_event_reaches_a_durable_consumer_exactly_once() {
    let Some(mut nats) = testkit::nats::NatsServer::start(
        "with_nats_down_during_purchases_every_event_reaches_a_durable_consumer_exactly_once",
    )
    .await
    else {
        return;
    };
    let (database_url, _dir) = fresh_database_url("ticketing").await;
    let nats_url = nats.url();
    let connect = || async {
        platform::jetstream::event_bus(Some(&nats_url), ticketing::events::SUBJECT_PREFIX)
            .await
            .expect("JetStream bus")
    };
    let first = TestApp::spawn_on_bus(&database_url, connect().await).await;
    let conference = first.create_conference().await;
    let standard = first
        .create_ticket_type(&conference, "Standard", 1_000, 100, "PUBLIC")
        .await;
    for i in 0..5 {
        buy(&first, &standard, &format!("Before {i}")).await;
    }
    let reader =
        testkit::nats::DurableReader::attach(&nats.url(), "TICKETING_EVENTS", "audit", false).await;
    let mut received = reader.read_until(WAIT, |seen| seen.len() >= 7).await;
    assert_eq!(received.len(), 7, "conference, ticket type, five purchases");
    drop(reader);

    // Let the server write the consumer's acks out: this test is about the relay, not about
    // a consumer's acks lost in a crash.
    tokio::time::sleep(Duration::from_secs(1)).await;
    nats.kill();
    for i in 0..5 {
        buy(&first, &standard, &format!("During {i}")).await;
    }
    // The relay restarts too: a new instance on the same database takes over the backlog.
    first.stop().await;
    let second = TestApp::spawn_on_bus(&database_url, connect().await).await;
    for i in 0..5 {
        buy(&second, &standard, &format!("Still down {i}")).await;
    }
    let log = event_log(&second).await;
    assert_eq!(log.len(), 17);

    nats.restart().await;
    let reader =
        testkit::nats::DurableReader::attach(&nats.url(), "TICKETING_EVENTS", "audit", false).await;
    received.extend(
        reader
            .read_until(Duration::from_secs(45), |seen| seen.len() >= 10)
            .await,
    );
    // Anything doubled would arrive now.
    received.extend(reader.read_until(Duration::from_secs(2), |_| false).await);

    let ids: Vec<String> = received.iter().map(|m| m.message_id.clone()).collect();
    let expected: Vec<String> = log.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, expected, "each event once, in log order");
    for (message, (id, position)) in received.iter().zip(&log) {
        assert_eq!(message.payload["id"], id.as_str());
        assert_eq!(message.payload["position"], *position);
        assert_eq!(
            message.subject,
            format!(
                "ticketing.events.{}",
                message.payload["type"].as_str().unwrap_or_default()
            )
        );
    }
    let ready = reqwest::get(second.http_url("/ready"))
        .await
        .expect("ready");
    assert_eq!(ready.status(), 200, "NATS is back: ready again");
}

/// `(event id, position)` of the whole log, oldest first.
async fn event_log(app: &TestApp) -> Vec<(String, i64)> {
    let data = app
        .ok(
            Some(&app.admin()),
            "{ ticketEvents(first: 100) { nodes { id cursor } } }",
            json!({}),
        )
        .await;
    data["ticketEvents"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .enumerate()
        .map(|(i, node): (usize, &Value)| {
            (
                node["id"].as_str().expect("event id").to_owned(),
                i as i64 + 1,
            )
        })
        .collect()
}
