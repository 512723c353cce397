use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn the_same_key_and_input_replays_the_first_result_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let conference = app.create_conference().await;
    let standard = app
        .create_ticket_type(&conference, "Standard", 10_000, 10, "PUBLIC")
        .await;
    let client = app.token("shop", &[]);
    let vars = json!({ "input": purchase_input(&standard, 2), "key": "order-1" });

    let first = app.ok(Some(&client), BUY, vars.clone()).await;
    let again = app.ok(Some(&client), BUY, vars.clone()).await;
    assert_eq!(
        first["createTicketPurchase"]["id"],
        again["createTicketPurchase"]["id"]
    );
    assert_eq!(app.ticket_type(&standard).await["sold"], 2);

    // Same key, different request: refused, nothing written.
    let head = app.event_types().await.len();
    let changed = app
        .gql(
            Some(&client),
            BUY,
            json!({ "input": purchase_input(&standard, 3), "key": "order-1" }),
        )
        .await;
    assert_eq!(error_code(&changed), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(app.ticket_type(&standard).await["sold"], 2);
    assert_eq!(app.event_types().await.len(), head);

    // Keys belong to a client: another client's "order-1" is its own purchase.
    let other = app.token("another-shop", &[]);
    let theirs = app.ok(Some(&other), BUY, vars).await;
    assert_ne!(
        theirs["createTicketPurchase"]["id"],
        first["createTicketPurchase"]["id"]
    );
    assert_eq!(app.ticket_type(&standard).await["sold"], 4);
}

#[tokio::test]
async fn concurrent_repeats_of_one_key_create_one_purchase() {
    let app = TestApp::spawn().await;
    let conference = app.create_conference().await;
    let standard = app
        .create_ticket_type(&conference, "Standard", 10_000, 100, "PUBLIC")
        .await;
    let client = app.token("retrying-client", &[]);
    let vars = json!({ "input": purchase_input(&standard, 1), "key": "same-every-time" });

    let attempts = (0..25).map(|_| app.ok(Some(&client), BUY, vars.clone()));
    let results = futures_util::future::join_all(attempts).await;
    let ids: std::collections::HashSet<_> = results
        .iter()
        .map(|d| d["createTicketPurchase"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "one purchase for one key: {ids:?}");
    assert_eq!(app.ticket_type(&standard).await["sold"], 1);
}

#[tokio::test]
async fn an_external_reference_books_once_per_client_even_without_a_key() {
    let app = TestApp::spawn().await;
    let conference = app.create_conference().await;
    let guest = app
        .create_ticket_type(&conference, "Guest", 0, 20, "RESTRICTED")
        .await;
    let issuer = app.token("crm", &["tickets:issue-complimentary"]);
    let mut input = purchase_input(&guest, 2);
    input["complimentary"] = json!(true);
    input["externalReference"] = json!("partner-7/allocation-1");

    let first = app
        .ok(
            Some(&issuer),
            BUY,
            json!({ "input": input.clone(), "key": "k1" }),
        )
        .await;
    // A retry after its key is gone (another key here) still cannot book twice.
    let retry = app
        .gql(
            Some(&issuer),
            BUY,
            json!({ "input": input.clone(), "key": "k2" }),
        )
        .await;
    assert_eq!(error_code(&retry), "DUPLICATE_EXTERNAL_REFERENCE");
    assert_eq!(
        retry["errors"][0]["extensions"]["ticketPurchaseId"],
        first["createTicketPurchase"]["id"]
    );
    let concurrent = (0..10).map(|i| {
        app.gql(
            Some(&issuer),
            BUY,
            json!({ "input": input.clone(), "key": format!("c{i}") }),
        )
    });
    for body in futures_util::future::join_all(concurrent).await {
        assert_eq!(error_code(&body), "DUPLICATE_EXTERNAL_REFERENCE");
    }
    assert_eq!(app.ticket_type(&guest).await["sold"], 2);

    // Another client may use the same reference for its own purchase.
    let other = app.token("speaker-crm", &["tickets:issue-complimentary"]);
    app.ok(Some(&other), BUY, json!({ "input": input })).await;
    assert_eq!(app.ticket_type(&guest).await["sold"], 4);
}
