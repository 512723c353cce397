//! Several CRM instances on one database: the allocation queue is shared, and each sponsor's
//! tickets are still booked exactly once.

use std::collections::HashSet;
use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_crm_instances_book_each_sponsor_exactly_once() {
    let w = World::new(100).await;
    let second = CrmServer::start(crm_settings(&w.crm.database_url, Some(w.ticketing.url()))).await;
    let mut sponsors = Vec::new();
    for i in 0..8 {
        // Each sponsor's steps go through either instance; both workers see every request.
        let (creating, paying) = if i % 2 == 0 {
            (&w.crm, &second)
        } else {
            (&second, &w.crm)
        };
        let sponsor = creating
            .create_sponsor(&format!("Sponsor {i}"), "Bronze", None)
            .await;
        paying.onboard(&sponsor).await;
        sponsors.push(sponsor);
    }
    for sponsor in &sponsors {
        let allocation = w.crm.wait_until_booked(sponsor).await;
        assert_eq!(allocation["ticketsBooked"], 1, "{allocation:#}");
        assert_eq!(allocation["requests"].as_array().map(Vec::len), Some(1));
    }
    // Give a doubled booking time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let purchases = w.ticketing.purchases(&w.conference).await;
    assert_eq!(purchases.len(), sponsors.len(), "{purchases:#?}");
    let references: HashSet<String> = purchases
        .iter()
        .map(|p| {
            p["externalReference"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let expected: HashSet<String> = sponsors
        .iter()
        .map(|s| format!("sponsor-allocation:{s}:1"))
        .collect();
    assert_eq!(references, expected);
    let booked = second
        .event_types()
        .await
        .into_iter()
        .filter(|t| t == "TicketAllocationBooked")
        .count();
    assert_eq!(booked, sponsors.len());
}

/// The CRM consumes ticketing's stream: when ticketing cancels a purchase booked for a
/// sponsor, the sponsor is flagged for review, once.
#[tokio::test]
async fn a_sponsor_purchase_cancelled_in_ticketing_is_flagged_on_the_sponsor() {
    // The shared NATS when CI gives one, else a NATS of the test's own.
    let mut own_nats = None;
    if testkit::nats::shared_nats_url().await.is_none() {
        own_nats = testkit::nats::NatsServer::start(
            "a_sponsor_purchase_cancelled_in_ticketing_is_flagged_on_the_sponsor",
        )
        .await;
        if own_nats.is_none() {
            return;
        }
    }
    let w = World::on_nats(50, own_nats.as_ref().map(|n| n.url())).await;
    let sponsor = w.crm.create_sponsor("Acme", "Silver", None).await;
    w.crm.onboard(&sponsor).await;
    let booked = w.crm.wait_until_booked(&sponsor).await;
    assert_eq!(booked["needsReview"], false);
    assert_eq!(booked["cancelledPurchaseIds"], serde_json::json!([]));
    let purchase = booked["purchaseIds"][0]
        .as_str()
        .expect("purchase id")
        .to_owned();

    w.ticketing
        .ok(
            "mutation($id: ID!) { cancelTicketPurchase(id: $id) { status } }",
            serde_json::json!({ "id": purchase }),
        )
        .await;
    let flagged = w
        .crm
        .wait_for_allocation(&sponsor, |a| a["needsReview"] == true)
        .await;
    assert_eq!(
        flagged["cancelledPurchaseIds"],
        serde_json::json!([purchase])
    );
    assert_eq!(
        flagged["status"], "BOOKED",
        "nothing is re-booked automatically"
    );
    // A redelivery, or another instance, must not flag it twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cancelled = w
        .crm
        .event_types()
        .await
        .into_iter()
        .filter(|t| t == "TicketAllocationCancelled")
        .count();
    assert_eq!(cancelled, 1);
    assert_eq!(w.ticketing.purchases(&w.conference).await.len(), 1);
}

/// Operators see the CRM's readiness (database and bus) and its allocation queue.
#[tokio::test]
async fn the_crm_reports_readiness_and_its_allocation_queue_depth() {
    let w = World::new(10).await;
    let ready = reqwest::get(w.crm.http_url("/ready")).await.expect("ready");
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("JSON");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["bus"], "ok");

    let sponsor = w.crm.create_sponsor("Acme", "Bronze", None).await;
    w.crm.onboard(&sponsor).await;
    w.crm.wait_until_booked(&sponsor).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let metrics = reqwest::get(w.crm.http_url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if metrics.contains("allocation_queue_depth{service=\"crm\"}")
            && metrics.contains("outbox_lag_events{service=\"crm\"}")
            && metrics.contains("http_requests_total{service=\"crm\",path=\"/graphql\"")
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
