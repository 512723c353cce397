//! Clients that give up mid-request: a closed tab, a lost phone signal, a gateway timeout.
//! Hundreds of mutations of every kind are sent by clients that hang up after 0-5 ms, so the
//! server sees its request futures dropped at every point of a write. Afterwards the service
//! must write normally at once, and the database must hold only whole changes: each purchase
//! with its lines, tickets, event and idempotency record, each cancelled request either
//! complete or without a trace, and sold counts equal to the seats of live purchases.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::support::*;
use testkit::{Dice, hang_up_after};

const REQUESTS: usize = 400;
const AT_ONCE: usize = 32;

/// One mutation a hanging-up client sends.
#[derive(Clone)]
struct Call {
    query: &'static str,
    variables: Value,
    /// `Some(reference)` for purchases: retried with the same key afterwards.
    reference: Option<String>,
    hang_up_after: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mutations_cut_off_at_random_points_leave_only_whole_changes() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let conference = app.create_conference().await;
    let main = app
        .create_ticket_type(&conference, "Main", 1_000, 100_000, "PUBLIC")
        .await;
    let side = app
        .create_ticket_type(&conference, "Side", 2_000, 100_000, "PUBLIC")
        .await;

    // Purchases that the hanging-up clients pay, cancel and assign.
    let mut targets = Vec::new();
    for i in 0..40 {
        let body = app
            .ok(
                Some(&admin),
                BUY,
                json!({ "input": purchase_input(&main, 2), "key": format!("setup-{i}") }),
            )
            .await;
        let purchase = &body["createTicketPurchase"];
        targets.push((
            purchase["id"].as_str().expect("id").to_owned(),
            purchase["tickets"][0]["id"]
                .as_str()
                .expect("ticket")
                .to_owned(),
        ));
    }

    let mut dice = Dice::seeded();
    let mut calls = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        let hang_up_after = Duration::from_micros(dice.below(5_000));
        let (purchase, ticket) = targets[dice.below(targets.len() as u64) as usize].clone();
        let call = match dice.below(10) {
            0..=4 => {
                let reference = format!("hang-up-{i}");
                let ticket_type = if dice.below(4) == 0 { &side } else { &main };
                let mut input = purchase_input(ticket_type, 1 + dice.below(3) as i64);
                input["externalReference"] = json!(reference);
                Call {
                    query: BUY,
                    variables: json!({ "input": input, "key": reference }),
                    reference: Some(reference),
                    hang_up_after,
                }
            }
            5 => Call {
                query: "mutation($id: ID!) { confirmTicketPurchasePayment(id: $id) { id status } }",
                variables: json!({ "id": purchase }),
                reference: None,
                hang_up_after,
            },
            6 => Call {
                query: "mutation($id: ID!) { cancelTicketPurchase(id: $id) { id status } }",
                variables: json!({ "id": purchase }),
                reference: None,
                hang_up_after,
            },
            7 => Call {
                query: "mutation($t: ID!, $a: PersonInput!) { assignTicket(ticketId: $t, attendee: $a) { id } }",
                variables: json!({ "t": ticket, "a": { "name": format!("Guest {i}"), "email": format!("guest{i}@example.org") } }),
                reference: None,
                hang_up_after,
            },
            8 => Call {
                query: "mutation($input: UpdateTicketTypeInput!, $id: ID!) { updateTicketType(id: $id, input: $input) { id } }",
                variables: json!({ "id": side, "input": { "name": format!("Side {i}") } }),
                reference: None,
                hang_up_after,
            },
            _ => Call {
                query: "mutation($input: CreateConferenceInput!) { createConference(input: $input) { id } }",
                variables: json!({ "input": { "name": format!("Conf {i}"), "currency": "EUR", "startsOn": "2027-05-01", "endsOn": "2027-05-03" } }),
                reference: None,
                hang_up_after,
            },
        };
        calls.push(call);
    }

    // The admin token for every call, so every mutation is allowed and reaches the store.
    let outcomes: Vec<bool> = futures_util::stream::iter(calls.clone())
        .map(|call| {
            let body = json!({ "query": call.query, "variables": call.variables });
            hang_up_after(app.addr, &admin, body, call.hang_up_after)
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let hung_up = outcomes.iter().filter(|answered| !**answered).count();
    eprintln!("{hung_up} of {REQUESTS} clients hung up before an answer");
    assert!(
        hung_up > REQUESTS / 4,
        "too few requests were cut off ({hung_up}) for the test to mean anything"
    );

    // The service writes normally straight away.
    let started = Instant::now();
    let fresh = tokio::time::timeout(Duration::from_secs(1), async {
        app.create_conference().await;
        app.ok(
            None,
            BUY,
            json!({ "input": purchase_input(&main, 1), "key": "after-the-storm" }),
        )
        .await
    })
    .await;
    assert!(
        fresh.is_ok(),
        "no write completed within a second of the storm ({:?})",
        started.elapsed()
    );

    // Every purchase request, retried with its key, now answers with one whole purchase:
    // the first result when the cut-off request had completed, a new one when it had left
    // nothing behind.
    for call in calls.iter().filter(|c| c.reference.is_some()) {
        let body = app
            .gql(Some(&admin), call.query, call.variables.clone())
            .await;
        assert!(
            body.get("errors").is_none(),
            "retrying {:?} failed: {body:#}",
            call.reference
        );
        assert_eq!(
            body["data"]["createTicketPurchase"]["externalReference"],
            json!(call.reference)
        );
    }

    let database = testkit::TestDatabase::open(&app.database_url).await;
    let broken = [
        (
            "purchases without lines",
            "SELECT COUNT(*) FROM ticket_purchases p WHERE NOT EXISTS (SELECT 1 FROM ticket_purchase_lines l WHERE l.purchase_id = p.id)",
        ),
        (
            "purchases whose tickets do not match their lines",
            "SELECT COUNT(*) FROM ticket_purchases p WHERE (SELECT COUNT(*) FROM tickets t WHERE t.purchase_id = p.id) <> (SELECT COALESCE(SUM(l.quantity), 0) FROM ticket_purchase_lines l WHERE l.purchase_id = p.id)",
        ),
        (
            "purchases without their idempotency record",
            "SELECT COUNT(*) FROM ticket_purchases p WHERE p.purchaser_name = 'Ada Lovelace' AND NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.purchase_id = p.id)",
        ),
        (
            "idempotency records without their purchase",
            "SELECT COUNT(*) FROM idempotency_keys k WHERE NOT EXISTS (SELECT 1 FROM ticket_purchases p WHERE p.id = k.purchase_id)",
        ),
        (
            "external references used twice",
            "SELECT COUNT(*) FROM (SELECT external_reference FROM ticket_purchases WHERE external_reference IS NOT NULL GROUP BY client_key, external_reference HAVING COUNT(*) > 1) AS twice",
        ),
        (
            "ticket types whose sold count is not the seats of live purchases",
            "SELECT COUNT(*) FROM ticket_types tt WHERE tt.sold <> (SELECT COALESCE(SUM(l.quantity), 0) FROM ticket_purchase_lines l JOIN ticket_purchases p ON p.id = l.purchase_id WHERE l.ticket_type_id = tt.id AND p.status IN ('PENDING_PAYMENT', 'PAID'))",
        ),
        (
            "purchases without exactly one TicketPurchaseCreated event",
            "SELECT ABS((SELECT COUNT(*) FROM ticket_purchases) - (SELECT COUNT(*) FROM ticket_events WHERE event_type = 'TicketPurchaseCreated'))",
        ),
        (
            "paid purchases without exactly one TicketPurchasePaid event",
            "SELECT ABS((SELECT COUNT(*) FROM ticket_purchases WHERE paid_at IS NOT NULL AND complimentary = FALSE) - (SELECT COUNT(*) FROM ticket_events WHERE event_type = 'TicketPurchasePaid'))",
        ),
        (
            "cancelled purchases without exactly one TicketPurchaseCancelled event",
            "SELECT ABS((SELECT COUNT(*) FROM ticket_purchases WHERE status = 'CANCELLED') - (SELECT COUNT(*) FROM ticket_events WHERE event_type = 'TicketPurchaseCancelled'))",
        ),
        (
            "conferences without exactly one ConferenceCreated event",
            "SELECT ABS((SELECT COUNT(*) FROM conferences) - (SELECT COUNT(*) FROM ticket_events WHERE event_type = 'ConferenceCreated'))",
        ),
        (
            "gaps in the event log",
            "SELECT (SELECT position FROM ticket_event_head) - (SELECT COUNT(*) FROM ticket_events)",
        ),
    ];
    for (what, sql) in broken {
        assert_eq!(database.count(sql).await, 0, "{what}");
    }
    database.close().await;

    // And the API agrees with the database.
    let stock = app.ticket_type(&main).await;
    let live = app
        .ok(
            Some(&admin),
            "query($c: ID!) { ticketPurchases(conferenceId: $c, first: 1) { edges { node { id } } } }",
            json!({ "c": conference }),
        )
        .await;
    assert!(live["ticketPurchases"]["edges"].is_array());
    assert_eq!(
        stock["capacity"].as_i64().unwrap_or_default() - stock["sold"].as_i64().unwrap_or_default(),
        stock["remaining"].as_i64().unwrap_or(-1)
    );
}
