//! Failures on either side: ticketing down, the CRM killed, a crash between ticketing's
//! commit and the CRM's, permanent refusals. Each ends with the tickets booked exactly once.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn ticketing_down_when_the_last_invoice_is_paid_keeps_retrying_then_books_once() {
    let w = World::new(50).await;
    let sponsor = w.crm.create_sponsor("Acme", "Gold", None).await;
    w.crm.sign(&sponsor, None).await;
    let invoice = w.crm.issue_invoice(&sponsor, 1_000_000).await;
    let stopped = w.ticketing.stop().await;

    w.crm.pay(&invoice).await;
    let first = w
        .crm
        .wait_for_allocation(&sponsor, |a| {
            a["status"] == "PENDING" && a["attempts"].as_i64() >= Some(2)
        })
        .await;
    assert!(
        first["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("unreachable"),
        "{first:#}"
    );
    let attempts = first["attempts"].as_i64().unwrap_or_default();
    let later = w
        .crm
        .wait_for_allocation(&sponsor, |a| a["attempts"].as_i64() > Some(attempts))
        .await;
    assert_eq!(later["status"], "PENDING");

    let ticketing = stopped.restart().await;
    let booked = w.crm.wait_until_booked(&sponsor).await;
    assert_eq!(booked["ticketsBooked"], 5);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let purchases = ticketing.purchases(&w.conference).await;
    assert_eq!(purchases.len(), 1, "{purchases:#?}");
    assert_eq!(purchases[0]["ticketCount"], 5);
}

#[tokio::test]
async fn a_crm_killed_while_an_allocation_is_pending_books_it_once_after_restart() {
    let w = World::new(50).await;
    let sponsor = w.crm.create_sponsor("Acme", "Silver", None).await;
    let stopped = w.ticketing.stop().await;
    w.crm.onboard(&sponsor).await;
    w.crm
        .wait_for_allocation(&sponsor, |a| {
            a["status"] == "PENDING" && a["attempts"].as_i64() >= Some(1)
        })
        .await;
    let (database_url, ticketing_url, dir) = w.crm.kill().await;

    let ticketing = stopped.restart().await;
    // Nobody books while the CRM is down: the request sits in the CRM's database.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(ticketing.purchases(&w.conference).await.is_empty());

    let crm = CrmServer::start(crm_settings(&database_url, ticketing_url)).await;
    let booked = crm.wait_until_booked(&sponsor).await;
    assert_eq!(booked["ticketsBooked"], 3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let purchases = ticketing.purchases(&w.conference).await;
    assert_eq!(purchases.len(), 1, "{purchases:#?}");
    drop(dir);
}

/// Ticketing committed the purchase but the CRM died before recording it: on restart the
/// retry meets `DUPLICATE_EXTERNAL_REFERENCE` and adopts the existing purchase.
#[tokio::test]
async fn a_purchase_ticketing_committed_before_the_crm_crashed_is_adopted_not_repeated() {
    let w = World::new(50).await;
    let sponsor = w.crm.create_sponsor("Acme", "Gold", None).await;
    let stopped = w.ticketing.stop().await;
    w.crm.onboard(&sponsor).await;
    w.crm
        .wait_for_allocation(&sponsor, |a| a["attempts"].as_i64() >= Some(1))
        .await;
    let (database_url, ticketing_url, _dir) = w.crm.kill().await;
    let ticketing = stopped.restart().await;

    // What the lost attempt did in ticketing, under the CRM's own credentials.
    let reference = format!("sponsor-allocation:{sponsor}:1");
    let body = Http::new()
        .gql(
            &ticketing.url(),
            Some(&crm_service_token()),
            "mutation($input: CreateTicketPurchaseInput!) { createTicketPurchase(input: $input, idempotencyKey: \"lost-attempt\") { id } }",
            json!({ "input": {
                "purchaser": { "name": "Grace Hopper", "email": "grace@acme.example.org" },
                "lines": [{ "ticketTypeId": w.ticket_type, "quantity": 5 }],
                "complimentary": true, "externalReference": reference
            } }),
        )
        .await;
    let existing = body["data"]["createTicketPurchase"]["id"].clone();
    assert!(existing.is_string(), "{body:#}");

    let crm = CrmServer::start(crm_settings(&database_url, ticketing_url)).await;
    let booked = crm.wait_until_booked(&sponsor).await;
    assert_eq!(booked["purchaseIds"], json!([existing]));
    let purchases = ticketing.purchases(&w.conference).await;
    assert_eq!(purchases.len(), 1, "{purchases:#?}");
}

#[tokio::test]
async fn a_sold_out_sponsor_ticket_type_fails_with_the_reason_until_retried_after_more_capacity() {
    let w = World::new(2).await;
    let sponsor = w.crm.create_sponsor("Acme", "Gold", None).await;
    w.crm.onboard(&sponsor).await;
    let failed = w
        .crm
        .wait_for_allocation(&sponsor, |a| a["status"] == "FAILED")
        .await;
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("SOLD_OUT"), "{failed:#}");
    assert_eq!(failed["attempts"], 1, "a permanent refusal is not retried");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.crm.allocation(&sponsor).await["attempts"], 1);
    let sponsors = w
        .crm
        .ok(
            Some(&w.crm.reader()),
            "{ sponsors(allocationStatus: FAILED) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(sponsors["sponsors"]["nodes"], json!([{ "id": sponsor }]));

    w.ticketing.set_capacity(&w.ticket_type, 10).await;
    w.crm
        .ok(
            Some(&w.crm.admin()),
            "mutation($s: ID!) { retryTicketAllocation(sponsorId: $s) { id } }",
            json!({ "s": sponsor }),
        )
        .await;
    let booked = w.crm.wait_until_booked(&sponsor).await;
    assert_eq!(booked["ticketsBooked"], 5);
    assert_eq!(w.ticketing.purchases(&w.conference).await.len(), 1);

    // Nothing left to retry.
    let body = w
        .crm
        .gql(
            Some(&w.crm.admin()),
            "mutation($s: ID!) { retryTicketAllocation(sponsorId: $s) { id } }",
            json!({ "s": sponsor }),
        )
        .await;
    assert_eq!(error_code(&body), "INVALID_STATE");
}

/// A sponsor ticket type that is sold out refuses the booking for good; once an admin names
/// another restricted type of the conference and retries, the booking goes through there.
#[tokio::test]
async fn a_sold_out_sponsor_ticket_type_fails_until_another_is_configured_and_retried() {
    let ticketing = TicketingServer::spawn().await;
    let (conference, sold_out) = ticketing.conference_with_sponsor_tickets(0).await;
    let crm = CrmServer::spawn(Some(ticketing.url())).await;
    crm.configure_sponsor_tickets(&conference, &sold_out).await;
    let sponsor = crm
        .create_sponsor("Acme", "Bronze", Some(&conference))
        .await;
    crm.onboard(&sponsor).await;
    let failed = crm
        .wait_for_allocation(&sponsor, |a| a["status"] == "FAILED")
        .await;
    assert!(
        failed["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("SOLD_OUT"),
        "{failed:#}"
    );
    let spare = ticketing
        .ticket_type(&conference, "EUR", 10, "RESTRICTED")
        .await;
    crm.configure_sponsor_tickets(&conference, &spare).await;
    crm.ok(
        Some(&crm.admin()),
        "mutation($s: ID!) { retryTicketAllocation(sponsorId: $s) { id } }",
        json!({ "s": sponsor }),
    )
    .await;
    crm.wait_until_booked(&sponsor).await;
    assert_eq!(ticketing.tickets_issued(&conference).await, 1);
}

#[tokio::test]
async fn a_crm_token_without_the_issue_scope_is_refused_for_good() {
    let ticketing = TicketingServer::spawn().await;
    let (conference, ticket_type) = ticketing.conference_with_sponsor_tickets(10).await;
    let crm = CrmServer::spawn_with(Some(ticketing.url()), |s| {
        s.ticketing_token = Some(token("crm", &["tickets:read"]));
    })
    .await;
    crm.configure_sponsor_tickets(&conference, &ticket_type)
        .await;
    let sponsor = crm.create_sponsor("Acme", "Bronze", None).await;
    crm.onboard(&sponsor).await;
    let failed = crm
        .wait_for_allocation(&sponsor, |a| a["status"] == "FAILED")
        .await;
    assert!(
        failed["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("FORBIDDEN"),
        "{failed:#}"
    );
    assert!(ticketing.purchases(&conference).await.is_empty());
}
