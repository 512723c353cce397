//! Scopes: `crm:read` to look, `crm:write` for the sales steps, `crm:admin` for the rules
//! (every operation against every caller: `authorization_matrix`). Tokens: verified, and with
//! audiences configured, only those minted for the service that receives them.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn each_operation_needs_its_scope() {
    let w = World::new(10).await;
    let crm = &w.crm;
    let conference = w.conference.clone();
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

/// `--jwt-audience crm`: a token minted for another service, or for none, does not open the
/// CRM, however good its signature and scopes.
#[tokio::test]
async fn a_crm_with_an_audience_accepts_only_tokens_minted_for_it() {
    let (database_url, _dir) = fresh_database_url("crm").await;
    let crm = CrmServer::start_with_keys(
        crm_settings(&database_url, None),
        std::sync::Arc::new(platform::JwtKeys::from_secret(SECRET).with_audience(Some("crm"))),
    )
    .await;
    let mint = |audiences: &[&str]| {
        keys()
            .mint_for_audiences(
                "dashboard",
                &["crm:read"],
                Duration::from_secs(60),
                audiences,
            )
            .expect("mint")
    };
    let levels = "{ sponsorshipLevels { name } }";
    for refused in [mint(&["ticketing"]), mint(&[])] {
        let response = reqwest::Client::new()
            .post(crm.url())
            .bearer_auth(&refused)
            .json(&json!({ "query": levels }))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 401);
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body:#}");
    }
    crm.ok(Some(&mint(&["crm"])), levels, json!({})).await;
    crm.ok(Some(&mint(&["ticketing", "crm"])), levels, json!({}))
        .await;
}

/// Ticketing with `--jwt-audience ticketing` refuses the CRM's self-signed service tokens
/// unless they name it: `--ticketing-audience` makes them do so, for looking conferences up
/// and for booking alike.
#[tokio::test]
async fn the_tokens_the_crm_signs_for_ticketing_name_its_audience() {
    let (database_url, _dir) = fresh_database_url("ticketing").await;
    let ticketing = TicketingServer::start_for_audience(
        "127.0.0.1:0".parse().expect("addr"),
        &database_url,
        None,
        Some("ticketing"),
    )
    .await;
    let (conference, ticket_type) = ticketing.conference_with_sponsor_tickets(10).await;

    // Without the audience ticketing refuses the CRM's token: nothing is registered.
    let unnamed = CrmServer::spawn_with(Some(ticketing.url()), |s| s.ticketing_token = None).await;
    let body = unnamed
        .gql(
            Some(&unnamed.admin()),
            "mutation($input: ConfigureSponsorTicketsInput!) { configureSponsorTickets(input: $input) { conferenceId } }",
            json!({ "input": { "conferenceId": conference, "ticketTypeId": ticket_type } }),
        )
        .await;
    assert_eq!(error_code(&body), "TICKETING_UNAVAILABLE", "{body:#}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("UNAUTHENTICATED"),
        "{body:#}"
    );

    let crm = CrmServer::spawn_with(Some(ticketing.url()), |s| {
        s.ticketing_token = None;
        s.ticketing_audience = Some("ticketing".into());
    })
    .await;
    crm.configure_sponsor_tickets(&conference, &ticket_type)
        .await;
    let sponsor = crm.create_sponsor("Acme", "Silver", None).await;
    crm.onboard(&sponsor).await;
    assert_eq!(crm.wait_until_booked(&sponsor).await["ticketsBooked"], 3);
    assert_eq!(ticketing.tickets_issued(&conference).await, 3);
}
