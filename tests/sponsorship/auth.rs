//! Scopes: `crm:read` to look, `crm:write` for the sales steps, `crm:admin` for the rules.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn each_operation_needs_its_scope() {
    let crm = CrmServer::spawn(None).await;
    let conference = uuid::Uuid::new_v4().to_string();
    crm.configure_sponsor_tickets(&conference, &uuid::Uuid::new_v4().to_string())
        .await;
    let sponsor = crm.create_sponsor("Acme", "Gold", None).await;

    let list = "{ sponsors { nodes { id } } }";
    let body = crm.gql(None, list, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let body = crm
        .gql(Some(&token("shop", &["tickets:read"])), list, json!({}))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    crm.ok(Some(&crm.reader()), list, json!({})).await;

    let send = "mutation($s: ID!) { sendContract(sponsorId: $s) { id } }";
    let body = crm
        .gql(Some(&crm.reader()), send, json!({ "s": sponsor }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    crm.ok(Some(&crm.writer()), send, json!({ "s": sponsor }))
        .await;

    let admin_only = [
        (
            "mutation { updateSponsorshipLevel(name: \"Gold\", input: { ticketAllowance: 6 }) { name } }",
            json!({}),
        ),
        (
            "mutation($s: ID!) { setTicketAllowanceOverride(sponsorId: $s, tickets: 9) { id } }",
            json!({ "s": sponsor }),
        ),
        (
            "mutation($s: ID!) { retryTicketAllocation(sponsorId: $s) { id } }",
            json!({ "s": sponsor }),
        ),
        (
            "mutation($c: ID!) { configureSponsorTickets(input: { conferenceId: $c, ticketTypeId: $c }) { conferenceId } }",
            json!({ "c": conference }),
        ),
    ];
    for (query, variables) in admin_only {
        let body = crm.gql(Some(&crm.writer()), query, variables).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{query}");
    }
    // Admin implies write and read.
    crm.ok(Some(&crm.admin()), list, json!({})).await;
    crm.ok(
        Some(&crm.admin()),
        "mutation($s: ID!) { setTicketAllowanceOverride(sponsorId: $s, tickets: 2) { ticketAllowanceOverride } }",
        json!({ "s": sponsor }),
    )
    .await;
}

#[tokio::test]
async fn a_bad_token_is_refused_not_treated_as_anonymous() {
    let crm = CrmServer::spawn(None).await;
    let response = reqwest::Client::new()
        .post(crm.url())
        .bearer_auth("not-a-token")
        .json(&json!({ "query": "{ sponsorshipLevels { name } }" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let foreign = foreign_token();
    let body = crm
        .gql(Some(&foreign), "{ sponsorshipLevels { name } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

/// A well-formed token signed with another secret.
fn foreign_token() -> String {
    platform::JwtKeys::from_secret(b"someone-else")
        .mint(
            "intruder",
            &["crm:admin"],
            std::time::Duration::from_secs(60),
        )
        .expect("mint")
}
