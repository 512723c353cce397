//! The published schema and the federation contract: `Sponsor` is an entity and the CRM
//! extends ticketing's `TicketPurchase` with `sponsor`.

use serde_json::json;

use crate::support::*;

/// `crm/schema.graphql` is what clients generate code from: it must be what the server serves.
#[test]
fn the_published_schema_file_is_fresh() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crm")
        .join("schema.graphql");
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        published == crm::api::published_sdl(),
        "{} is stale: run `cargo run -p crm -- --print-schema > crm/schema.graphql`",
        path.display()
    );
}

#[tokio::test]
async fn the_federation_sdl_declares_the_sponsor_entity_and_extends_ticket_purchase() {
    let crm = CrmServer::spawn(None).await;
    let data = crm.ok(None, "{ _service { sdl } }", json!({})).await;
    let sdl = data["_service"]["sdl"].as_str().unwrap_or_default();
    assert!(sdl.contains("https://specs.apollo.dev/federation/v2"));
    assert!(sdl.contains("type Sponsor @key(fields: \"id\")"), "{sdl}");
    assert!(sdl.contains("type Subscription"));
    // The extension holds the key and the CRM's own field, nothing of ticketing's.
    let start = sdl
        .find("type TicketPurchase @key(fields: \"id\")")
        .expect("TicketPurchase entity");
    let body = &sdl[start..start + sdl[start..].find('}').expect("end of type")];
    let fields: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| l.ends_with(|c: char| c.is_alphanumeric() || c == '!') && l.contains(':'))
        .collect();
    assert_eq!(fields, vec!["id: ID!", "sponsor: Sponsor"], "{body}");
    assert!(sdl.contains("type Money @shareable"));
}

#[tokio::test]
async fn entities_resolve_sponsors_and_the_sponsor_behind_a_purchase() {
    let w = World::new(10).await;
    let sponsor = w.crm.create_sponsor("Acme", "Bronze", None).await;
    w.crm.onboard(&sponsor).await;
    let booked = w.crm.wait_until_booked(&sponsor).await;
    let purchase = booked["purchaseIds"][0]
        .as_str()
        .expect("purchase id")
        .to_owned();
    let data = w
        .crm
        .ok(
            Some(&w.crm.reader()),
            "query($r: [_Any!]!) { _entities(representations: $r) {
                ... on TicketPurchase { id sponsor { id name } }
                ... on Sponsor { name ticketPurchases { id } }
            } }",
            json!({ "r": [
                { "__typename": "TicketPurchase", "id": purchase },
                { "__typename": "TicketPurchase", "id": uuid::Uuid::new_v4().to_string() },
                { "__typename": "Sponsor", "id": sponsor }
            ] }),
        )
        .await;
    assert_eq!(
        data["_entities"][0]["sponsor"],
        json!({ "id": sponsor, "name": "Acme" })
    );
    assert!(data["_entities"][1]["sponsor"].is_null());
    assert_eq!(
        data["_entities"][2]["ticketPurchases"],
        json!([{ "id": purchase }])
    );
}

#[tokio::test]
async fn get_serves_queries_and_health() {
    let crm = CrmServer::spawn(None).await;
    let response = reqwest::Client::new()
        .get(crm.url())
        .bearer_auth(crm.reader())
        .query(&[("query", "{ sponsorshipLevels { name } }")])
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let health = reqwest::Client::new()
        .get(crm.url().replace("/graphql", "/health"))
        .send()
        .await
        .expect("sent");
    assert_eq!(health.status(), 200);
}
