//! A service down takes only its own fields with it: the gateway answers with what the others
//! returned and an error naming the missing service, never an empty failure.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Stack, WAIT, admin, error_codes};

#[tokio::test]
async fn with_the_crm_down_ticketing_data_comes_back_with_an_error_for_the_sponsor() {
    let mut stack = Stack::start().await;
    let (_, purchase) = stack.booked_sponsor("Acme", "Bronze").await;
    stack.services.crm.stop().await;

    let query = "query($id: ID!) { ticketPurchase(id: $id) {
        id status ticketCount tickets { id } sponsor { name }
    } }";
    // A kept-alive connection to the stopped CRM closes a moment after it stops; until then the
    // gateway may still reach it. Ask until the outage shows.
    let deadline = tokio::time::Instant::now() + WAIT;
    let body: Value = loop {
        let response = reqwest::Client::new()
            .post(stack.url())
            .bearer_auth(admin())
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": query, "variables": { "id": purchase } }))
            .send()
            .await
            .expect("the gateway answers");
        // Partial data is a successful response, not a server error.
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("JSON body");
        if body.get("errors").is_some() || tokio::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let found = &body["data"]["ticketPurchase"];
    assert_eq!(found["id"], purchase.as_str(), "{body:#}");
    assert_eq!(found["status"], "PAID");
    assert_eq!(found["ticketCount"], 1);
    assert_eq!(found["tickets"].as_array().map(Vec::len), Some(1));
    assert!(found["sponsor"].is_null(), "{body:#}");
    assert_eq!(error_codes(&body), ["SUBGRAPH_REQUEST_FAILED"], "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["service"], "crm");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("'crm'")),
        "the error names the service: {body:#}"
    );

    // Ticketing alone answers as before.
    let data = stack
        .ok(
            &admin(),
            "query($id: ID!) { ticketPurchase(id: $id) { id status } }",
            json!({ "id": purchase }),
        )
        .await;
    assert_eq!(data["ticketPurchase"]["status"], "PAID");
}
