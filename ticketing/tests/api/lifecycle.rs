use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_purchase_goes_from_pending_to_paid_to_cancelled_and_returns_its_seats() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let conference = app.create_conference().await;
    let early_bird = app
        .create_ticket_type(&conference, "Early bird", 19_900, 10, "PUBLIC")
        .await;

    // Anyone may buy a public, paid ticket.
    let bought = app
        .ok(
            None,
            BUY,
            json!({ "input": purchase_input(&early_bird, 3) }),
        )
        .await;
    let purchase = &bought["createTicketPurchase"];
    assert_eq!(purchase["status"], "PENDING_PAYMENT");
    assert_eq!(
        purchase["total"],
        json!({ "amount": 59_700, "currency": "EUR" })
    );
    assert_eq!(purchase["ticketCount"], 3);
    assert_eq!(purchase["tickets"].as_array().unwrap().len(), 3);
    assert_eq!(purchase["lines"][0]["unitPrice"]["amount"], 19_900);
    let id = purchase["id"].as_str().unwrap().to_owned();
    let access_token = purchase["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(app.ticket_type(&early_bird).await["sold"], 3);
    assert_eq!(app.ticket_type(&early_bird).await["remaining"], 7);

    let paid = app
        .ok(
            Some(&admin),
            "mutation($id: ID!) { confirmTicketPurchasePayment(id: $id) { status paidAt expiresAt } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(paid["confirmTicketPurchasePayment"]["status"], "PAID");
    assert!(paid["confirmTicketPurchasePayment"]["paidAt"].is_string());
    assert!(paid["confirmTicketPurchasePayment"]["expiresAt"].is_null());

    // Confirming again changes nothing and is not an error.
    app.ok(
        Some(&admin),
        "mutation($id: ID!) { confirmTicketPurchasePayment(id: $id) { status } }",
        json!({ "id": id }),
    )
    .await;

    // The buyer names the attendee of one ticket with the purchase's access token.
    let ticket_id = purchase["tickets"][0]["id"].as_str().unwrap();
    let assigned = app
        .ok(
            None,
            "mutation($t: ID!, $token: String) { assignTicket(ticketId: $t, accessToken: $token, attendee: { name: \"Grace Hopper\", email: \"grace@example.org\" }) { attendee { name email } assignedAt } }",
            json!({ "t": ticket_id, "token": access_token }),
        )
        .await;
    assert_eq!(assigned["assignTicket"]["attendee"]["name"], "Grace Hopper");

    // A paid purchase can only be cancelled by an admin, not by its buyer.
    let refused = app
        .gql(
            None,
            "mutation($id: ID!, $token: String) { cancelTicketPurchase(id: $id, accessToken: $token) { status } }",
            json!({ "id": id, "token": access_token }),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    let cancelled = app
        .ok(
            Some(&admin),
            "mutation($id: ID!) { cancelTicketPurchase(id: $id) { status cancelledAt } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(cancelled["cancelTicketPurchase"]["status"], "CANCELLED");
    assert_eq!(app.ticket_type(&early_bird).await["sold"], 0);

    // Paying a cancelled purchase is refused.
    let late = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { confirmTicketPurchasePayment(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&late), "INVALID_STATE");

    assert_eq!(
        app.event_types().await,
        [
            "ConferenceCreated",
            "TicketTypeCreated",
            "TicketPurchaseCreated",
            "TicketPurchasePaid",
            "TicketAssigned",
            "TicketPurchaseCancelled",
        ]
    );
}

#[tokio::test]
async fn complimentary_purchases_are_paid_at_zero_and_restricted_types_stay_out_of_public_view() {
    let app = TestApp::spawn().await;
    let conference = app.create_conference().await;
    let guest = app
        .create_ticket_type(&conference, "Guest", 50_000, 5, "RESTRICTED")
        .await;
    let issuer = app.token("partner-crm", &["tickets:issue-complimentary"]);

    let mut input = purchase_input(&guest, 5);
    input["complimentary"] = json!(true);
    input["externalReference"] = json!("allocation-42");
    let data = app.ok(Some(&issuer), BUY, json!({ "input": input })).await;
    let purchase = &data["createTicketPurchase"];
    assert_eq!(purchase["status"], "PAID");
    assert_eq!(purchase["complimentary"], true);
    assert_eq!(purchase["total"]["amount"], 0);
    assert_eq!(purchase["externalReference"], "allocation-42");

    // The issuing client finds its own purchase by its reference.
    let found = app
        .ok(
            Some(&issuer),
            "{ ticketPurchases(externalReference: \"allocation-42\") { edges { node { id ticketCount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        found["ticketPurchases"]["edges"][0]["node"]["ticketCount"],
        5
    );

    // The public sees neither the restricted type nor its stock.
    let public = app
        .ok(
            None,
            "query($id: ID!) { conference(id: $id) { ticketTypes { name } } }",
            json!({ "id": conference }),
        )
        .await;
    assert_eq!(public["conference"]["ticketTypes"], json!([]));
    let hidden = app
        .gql(
            None,
            "query($id: ID!) { ticketType(id: $id) { name } }",
            json!({ "id": guest }),
        )
        .await;
    assert_eq!(error_code(&hidden), "NOT_FOUND");

    // Sold out: the last seat went, and the event says so.
    let types = app.event_types().await;
    assert!(types.ends_with(&[
        "TicketPurchaseCreated".to_owned(),
        "TicketPurchasePaid".to_owned(),
        "TicketTypeSoldOut".to_owned()
    ]));
}

#[tokio::test]
async fn unpaid_reservations_expire_and_their_seats_return() {
    let app = TestApp::spawn_with(|s| {
        s.reservation_ttl = Duration::from_millis(300);
        s.expiry_interval = Duration::from_millis(100);
    })
    .await;
    let conference = app.create_conference().await;
    let standard = app
        .create_ticket_type(&conference, "Standard", 10_000, 2, "PUBLIC")
        .await;
    let data = app
        .ok(None, BUY, json!({ "input": purchase_input(&standard, 2) }))
        .await;
    let id = data["createTicketPurchase"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let access_token = data["createTicketPurchase"]["accessToken"].clone();
    assert_eq!(app.ticket_type(&standard).await["remaining"], 0);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = app
            .ok(
                None,
                "query($id: ID!, $token: String) { ticketPurchase(id: $id, accessToken: $token) { status } }",
                json!({ "id": id, "token": access_token }),
            )
            .await["ticketPurchase"]["status"]
            .clone();
        if status == "EXPIRED" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "purchase never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.ticket_type(&standard).await["remaining"], 2);
    let types = app.event_types().await;
    assert!(
        types.contains(&"TicketPurchaseExpired".to_owned()),
        "{types:?}"
    );
    assert!(
        types.contains(&"TicketTypeAvailableAgain".to_owned()),
        "{types:?}"
    );

    // Payment that arrives after expiry is refused.
    let late = app
        .gql(
            Some(&app.admin()),
            "mutation($id: ID!) { confirmTicketPurchasePayment(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&late), "INVALID_STATE");
}

#[tokio::test]
async fn events_reach_the_bus_through_the_outbox() {
    let app = TestApp::spawn().await;
    let Some(in_process) = &app.bus else {
        return events_reach_jetstream_with_their_id_as_message_id(&app).await;
    };
    let mut bus = in_process.subscribe();
    let conference = app.create_conference().await;
    let message = tokio::time::timeout(Duration::from_secs(5), bus.recv())
        .await
        .expect("a bus message in time")
        .expect("bus open");
    assert_eq!(message.subject, "ticketing.events.ConferenceCreated");
    assert_eq!(message.payload["data"]["conference"]["id"], conference);
    assert_eq!(message.payload["position"], 1);
}

/// With `NATS_URL` the relay publishes to JetStream; the stream is shared with other tests, so
/// this one looks for its own conference among the stored messages.
async fn events_reach_jetstream_with_their_id_as_message_id(app: &TestApp) {
    let url = testkit::nats::shared_nats_url().await.expect("NATS_URL");
    let durable = format!("test-{}", uuid::Uuid::new_v4().simple());
    let reader =
        testkit::nats::DurableReader::attach(&url, "TICKETING_EVENTS", &durable, true).await;
    let conference = app.create_conference().await;
    let received = reader
        .read_until(Duration::from_secs(20), |seen| {
            seen.iter()
                .any(|m| m.payload["data"]["conference"]["id"] == conference.as_str())
        })
        .await;
    let message = received
        .iter()
        .find(|m| m.payload["data"]["conference"]["id"] == conference.as_str())
        .expect("the ConferenceCreated event on JetStream");
    assert_eq!(message.subject, "ticketing.events.ConferenceCreated");
    assert_eq!(message.payload["type"], "ConferenceCreated");
    assert_eq!(message.payload["position"], 1);
    assert_eq!(message.payload["id"], message.message_id.as_str());
}

#[tokio::test]
async fn a_purchase_of_several_types_takes_all_seats_or_none() {
    let app = TestApp::spawn().await;
    let conference = app.create_conference().await;
    let workshop = app
        .create_ticket_type(&conference, "Workshop", 30_000, 5, "PUBLIC")
        .await;
    let talks = app
        .create_ticket_type(&conference, "Talks", 10_000, 2, "PUBLIC")
        .await;
    let both = |w: i64, t: i64| {
        json!({ "input": {
            "purchaser": { "name": "Ada", "email": "ada@example.org" },
            "lines": [
                { "ticketTypeId": workshop, "quantity": w },
                { "ticketTypeId": talks, "quantity": t }
            ]
        } })
    };
    let data = app.ok(None, BUY, both(2, 1)).await;
    let purchase = &data["createTicketPurchase"];
    assert_eq!(purchase["total"]["amount"], 70_000);
    assert_eq!(purchase["ticketCount"], 3);
    assert_eq!(purchase["lines"].as_array().unwrap().len(), 2);
    assert_eq!(app.ticket_type(&talks).await["sold"], 1);

    // The second line cannot be served: the first line's seats are not taken either.
    let refused = app.gql(None, BUY, both(1, 2)).await;
    assert_eq!(error_code(&refused), "SOLD_OUT");
    assert_eq!(refused["errors"][0]["extensions"]["remaining"], 1);
    assert_eq!(app.ticket_type(&workshop).await["sold"], 2);
    assert_eq!(app.ticket_type(&talks).await["sold"], 1);

    // The last seat of one type goes with a multi-line purchase: one sold-out event.
    app.ok(None, BUY, both(1, 1)).await;
    let types = app.event_types().await;
    assert_eq!(types.last().map(String::as_str), Some("TicketTypeSoldOut"));
}

/// Another instance changes a ticket type this one has validated purchases against: the next
/// purchase here follows the change (price, visibility) instead of the remembered state.
#[tokio::test]
async fn purchases_follow_ticket_type_changes_made_through_another_instance() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_on(&a.database_url).await;
    let conference = a.create_conference().await;
    let standard = a
        .create_ticket_type(&conference, "Standard", 10_000, 10, "PUBLIC")
        .await;
    let guest = a
        .create_ticket_type(&conference, "Guest", 5_000, 10, "RESTRICTED")
        .await;
    a.ok(None, BUY, json!({ "input": purchase_input(&standard, 1) }))
        .await;
    // A restricted type does not exist for the public.
    let refused = a
        .gql(None, BUY, json!({ "input": purchase_input(&guest, 1) }))
        .await;
    assert_eq!(error_code(&refused), "NOT_FOUND");

    let update = "mutation($id: ID!, $input: UpdateTicketTypeInput!) { updateTicketType(id: $id, input: $input) { id } }";
    b.ok(Some(&b.admin()), update, json!({ "id": standard, "input": { "price": { "amount": 12_000, "currency": "EUR" }, "visibility": "PUBLIC" } })).await;
    b.ok(
        Some(&b.admin()),
        update,
        json!({ "id": guest, "input": { "visibility": "PUBLIC" } }),
    )
    .await;

    let repriced = a
        .ok(None, BUY, json!({ "input": purchase_input(&standard, 1) }))
        .await;
    assert_eq!(repriced["createTicketPurchase"]["total"]["amount"], 12_000);
    a.ok(None, BUY, json!({ "input": purchase_input(&guest, 1) }))
        .await;

    b.ok(
        Some(&b.admin()),
        update,
        json!({ "id": standard, "input": { "visibility": "RESTRICTED" } }),
    )
    .await;
    let hidden = a
        .gql(None, BUY, json!({ "input": purchase_input(&standard, 1) }))
        .await;
    assert_eq!(error_code(&hidden), "NOT_FOUND");
    assert_eq!(a.ticket_type(&standard).await["sold"], 2);
}
