use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn admin_operations_need_a_token_with_the_admin_scope() {
    let app = TestApp::spawn().await;
    let create = "mutation { createConference(input: { name: \"X\", currency: \"EUR\", startsOn: \"2027-01-01\", endsOn: \"2027-01-02\" }) { id } }";
    assert_eq!(
        error_code(&app.gql(None, create, json!({})).await),
        "UNAUTHENTICATED"
    );
    let reader = app.token("reader", &["tickets:read"]);
    assert_eq!(
        error_code(&app.gql(Some(&reader), create, json!({})).await),
        "FORBIDDEN"
    );
    app.ok(
        Some(&app.token("ops", &["tickets:admin"])),
        create,
        json!({}),
    )
    .await;
}

#[tokio::test]
async fn bad_and_expired_tokens_are_refused_not_treated_as_anonymous() {
    let app = TestApp::spawn().await;
    let query = json!({ "query": "{ conferences { edges { cursor } } }" });
    let garbage = app
        .client
        .post(app.url())
        .bearer_auth("garbage")
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
    let body: serde_json::Value = garbage.json().await.unwrap();
    assert_eq!(error_code(&body), "UNAUTHENTICATED");

    let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let expired = app
        .keys
        .mint_expiring_at("old", &["tickets:admin"], an_hour_ago)
        .unwrap();
    let body = app
        .gql(
            Some(&expired),
            "{ conferences { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    let foreign = platform::JwtKeys::from_secret(b"someone else")
        .mint("intruder", &["tickets:admin"], Duration::from_secs(60))
        .unwrap();
    let body = app
        .gql(
            Some(&foreign),
            "{ conferences { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

#[tokio::test]
async fn restricted_types_and_complimentary_purchases_need_the_issuing_scope() {
    let app = TestApp::spawn().await;
    let conference = app.create_conference().await;
    let public = app
        .create_ticket_type(&conference, "Standard", 10_000, 10, "PUBLIC")
        .await;
    let guest = app
        .create_ticket_type(&conference, "Guest", 0, 10, "RESTRICTED")
        .await;
    let buyer = app.token("buyer", &["tickets:read"]);

    let restricted = app
        .gql(
            Some(&buyer),
            BUY,
            json!({ "input": purchase_input(&guest, 1) }),
        )
        .await;
    assert_eq!(error_code(&restricted), "FORBIDDEN");

    let mut free = purchase_input(&public, 1);
    free["complimentary"] = json!(true);
    assert_eq!(
        error_code(&app.gql(None, BUY, json!({ "input": free.clone() })).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&app.gql(Some(&buyer), BUY, json!({ "input": free })).await),
        "FORBIDDEN"
    );
    assert_eq!(app.ticket_type(&public).await["sold"], 0);
    assert_eq!(app.ticket_type(&guest).await["sold"], 0);
}

#[tokio::test]
async fn purchases_are_private_to_their_client_and_readers() {
    let app = TestApp::spawn().await;
    let conference = app.create_conference().await;
    let public = app
        .create_ticket_type(&conference, "Standard", 10_000, 10, "PUBLIC")
        .await;
    let shop = app.token("shop", &[]);
    let data = app
        .ok(
            Some(&shop),
            BUY,
            json!({ "input": purchase_input(&public, 1) }),
        )
        .await;
    let id = data["createTicketPurchase"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = "query($id: ID!) { ticketPurchase(id: $id) { id purchaser { email } } }";

    app.ok(Some(&shop), read, json!({ "id": id })).await;
    app.ok(
        Some(&app.token("support", &["tickets:read"])),
        read,
        json!({ "id": id }),
    )
    .await;
    // Someone else's purchase is one that does not exist, word for word.
    let other = app
        .gql(
            Some(&app.token("other-shop", &[])),
            read,
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&other), "NOT_FOUND");
    let missing_id = uuid::Uuid::now_v7().to_string();
    let missing = app
        .gql(
            Some(&app.token("other-shop", &[])),
            read,
            json!({ "id": missing_id }),
        )
        .await;
    let message = |body: &serde_json::Value, id: &str| {
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .replace(id, "<id>")
    };
    assert_eq!(message(&other, &id), message(&missing, &missing_id));
    assert_eq!(
        error_code(&app.gql(None, read, json!({ "id": id })).await),
        "UNAUTHENTICATED"
    );

    // Listing without `tickets:read` shows only one's own.
    let list = "{ ticketPurchases { edges { node { id } } } }";
    let own = app
        .ok(Some(&app.token("other-shop", &[])), list, json!({}))
        .await;
    assert_eq!(own["ticketPurchases"]["edges"], json!([]));
    assert_eq!(
        error_code(&app.gql(None, list, json!({})).await),
        "UNAUTHENTICATED"
    );

    // The event log needs its own scope.
    let events = "{ ticketEvents { edges { cursor } } }";
    assert_eq!(
        error_code(
            &app.gql(
                Some(&app.token("ops", &["tickets:admin"])),
                events,
                json!({})
            )
            .await
        ),
        "FORBIDDEN"
    );
}
