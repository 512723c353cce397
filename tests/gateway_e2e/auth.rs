//! The client's token reaches every subgraph a request touches, in root fetches and in entity
//! fetches alike: each service enforces its own scopes behind the gateway.

use serde_json::json;

use crate::support::{Stack, error_codes, token};

#[tokio::test]
async fn a_token_given_to_the_gateway_reaches_both_services() {
    let stack = Stack::start().await;
    let (sponsor, purchase) = stack.booked_sponsor("Acme", "Bronze").await;
    let purchase_with_sponsor =
        "query($id: ID!) { ticketPurchase(id: $id) { id status sponsor { name } } }";
    let sponsor_with_purchases =
        "query($id: ID!) { sponsor(id: $id) { name ticketPurchases { id status } } }";

    // Both scopes: everything, from both services.
    let both = token("dashboard", &["tickets:read", "crm:read"]);
    let data = stack
        .ok(&both, purchase_with_sponsor, json!({ "id": purchase }))
        .await;
    assert_eq!(data["ticketPurchase"]["sponsor"]["name"], "Acme");
    let data = stack
        .ok(&both, sponsor_with_purchases, json!({ "id": sponsor }))
        .await;
    assert_eq!(data["sponsor"]["ticketPurchases"][0]["status"], "PAID");

    // Ticketing's scope only: ticketing answers, and the CRM refuses the sponsor as FORBIDDEN,
    // not UNAUTHENTICATED: it saw the token, and the token lacks `crm:read`.
    let ticketing_only = token("box-office", &["tickets:read"]);
    let body = stack
        .gql(
            Some(&ticketing_only),
            purchase_with_sponsor,
            json!({ "id": purchase }),
        )
        .await;
    assert_eq!(body["data"]["ticketPurchase"]["status"], "PAID", "{body:#}");
    assert!(body["data"]["ticketPurchase"]["sponsor"].is_null());
    assert_eq!(error_codes(&body), ["FORBIDDEN"], "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["service"], "crm");
    assert_eq!(
        body["errors"][0]["path"],
        json!(["ticketPurchase", "sponsor"])
    );

    // The CRM's scope only: the CRM accepts the token (without it, `sponsor` would fail as
    // UNAUTHENTICATED), and ticketing does not show this client other clients' purchases: in
    // the entity fetch they are null, as if they did not exist (nothing reveals them). The
    // list's non-null items then null the sponsor, with the gateway's error saying where.
    let crm_only = token("sales-dashboard", &["crm:read"]);
    let body = stack
        .gql(
            Some(&crm_only),
            sponsor_with_purchases,
            json!({ "id": sponsor }),
        )
        .await;
    assert!(body["data"]["sponsor"].is_null(), "{body:#}");
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body:#}");
    assert_eq!(body["errors"][0]["path"][0], "sponsor", "{body:#}");
    assert!(
        !body.to_string().contains(&purchase),
        "the purchase leaked: {body:#}"
    );

    // No token at all: each service says so itself.
    let body = stack
        .gql(None, sponsor_with_purchases, json!({ "id": sponsor }))
        .await;
    assert!(body["data"]["sponsor"].is_null(), "{body:#}");
    assert_eq!(error_codes(&body), ["UNAUTHENTICATED"], "{body:#}");
}

/// A forged or expired token gets what the services give it, 401 `UNAUTHENTICATED`, from the
/// gateway too, also for what the gateway answers itself (introspection).
#[tokio::test]
async fn forged_and_expired_tokens_are_refused_at_the_gateway() {
    let stack = Stack::start().await;
    let forged = platform::JwtKeys::from_secret(b"not the services' secret")
        .mint(
            "admin",
            &["tickets:admin"],
            std::time::Duration::from_secs(600),
        )
        .expect("mint");
    let expired = crate::support::keys()
        .mint_expiring_at(
            "admin",
            &["tickets:admin"],
            chrono::Utc::now() - chrono::Duration::hours(1),
        )
        .expect("mint");
    for token in [forged, expired] {
        for query in [
            "{ __schema { queryType { name } } }",
            "{ conferences(first: 1) { edges { node { id } } } }",
        ] {
            let response = reqwest::Client::new()
                .post(stack.url())
                .bearer_auth(&token)
                .json(&json!({ "query": query }))
                .send()
                .await
                .expect("gateway answers");
            assert_eq!(response.status().as_u16(), 401, "{query}");
            let body: serde_json::Value = response.json().await.expect("JSON");
            assert_eq!(error_codes(&body), ["UNAUTHENTICATED"], "{body:#}");
        }
    }
}
