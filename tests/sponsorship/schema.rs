//! The published schema and the federation contract: `Sponsor` is an entity and the CRM
//! extends ticketing's `TicketPurchase` with `sponsor`.

use serde_json::{Value, json};

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
    // The extension holds the key and the CRM's own field; of ticketing's, only the reference
    // `sponsor` requires, declared external so the gateway fetches it from ticketing.
    let start = sdl
        .find("type TicketPurchase @key(fields: \"id\")")
        .expect("TicketPurchase entity");
    let body = &sdl[start..start + sdl[start..].find('}').expect("end of type")];
    let fields: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.split(':')
                .next()
                .is_some_and(|name| name.chars().all(char::is_alphanumeric))
                && l.contains(": ")
        })
        .collect();
    assert_eq!(
        fields,
        vec![
            "id: ID!",
            "externalReference: String @external",
            "sponsor: Sponsor @requires(fields: \"externalReference\")"
        ],
        "{body}"
    );
    assert!(sdl.contains("type Money @shareable"));
    // Money as ticketing publishes it: the same scalar, so the gateway composes the two.
    assert!(sdl.contains("scalar MinorUnits"), "{sdl}");
    assert!(sdl.contains("amount: MinorUnits!"), "{sdl}");
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

const PURCHASE_SPONSOR: &str = "query($r: [_Any!]!) { _entities(representations: $r) {
    ... on TicketPurchase { id sponsor { id name } }
} }";

/// Ticketing announces a purchase before the CRM has recorded its id from ticketing's reply;
/// the reference the CRM chose for it, which the gateway hands over because `sponsor`
/// requires it, names the sponsor from the start. A reference the CRM did not write, or none,
/// leaves only the recorded id, which a purchase that new does not have yet.
#[tokio::test]
async fn the_sponsor_behind_a_purchase_is_known_from_its_reference_before_the_id_is_recorded() {
    // Without ticketing the request stays PENDING, with no purchase id recorded: the state
    // the CRM is in while ticketing's reply is still on its way.
    let w = World::new(10).await;
    let conference = w.conference.clone();
    let crm = w.crm.without_ticketing().await;
    let sponsor = crm
        .create_sponsor("Acme", "Bronze", Some(&conference))
        .await;
    crm.onboard(&sponsor).await;
    let allocation = crm.allocation(&sponsor).await;
    let request = &allocation["requests"][0];
    assert!(request["purchase"].is_null(), "{allocation:#}");
    let reference = request["externalReference"]
        .as_str()
        .expect("reference")
        .to_owned();
    let purchase = uuid::Uuid::new_v4().to_string();
    let entity = |external_reference: Value| {
        let mut representation = json!({ "__typename": "TicketPurchase", "id": purchase });
        if !external_reference.is_null() {
            representation["externalReference"] = external_reference;
        }
        representation
    };

    let data = crm
        .ok(
            Some(&crm.reader()),
            PURCHASE_SPONSOR,
            json!({ "r": [
                entity(json!(reference)),
                entity(json!("order-42")),
                entity(json!(format!("sponsor-allocation:{sponsor}:2"))),
                entity(json!(format!("sponsor-allocation:{}:1", uuid::Uuid::new_v4()))),
                entity(Value::Null),
                { "__typename": "TicketPurchase", "id": purchase, "externalReference": null },
            ] }),
        )
        .await;
    let entities = data["_entities"].as_array().expect("entities");
    assert_eq!(entities.len(), 6, "{data:#}");
    assert_eq!(entities[0]["id"], purchase.as_str());
    assert_eq!(
        entities[0]["sponsor"],
        json!({ "id": sponsor, "name": "Acme" })
    );
    // Foreign, for a request that does not exist, absent, null: nothing to go on yet.
    for entity in &entities[1..] {
        assert_eq!(entity["id"], purchase.as_str());
        assert!(entity["sponsor"].is_null(), "{data:#}");
    }
}

/// Once a purchase id is recorded it is the authority: the reference presented with another
/// purchase is not believed (any ticketing client may pick any reference), and a purchase
/// reached without its reference still finds its sponsor through the recorded id.
#[tokio::test]
async fn a_recorded_purchase_id_outranks_a_reference_presented_with_another_purchase() {
    let w = World::new(10).await;
    let sponsor = w.crm.create_sponsor("Acme", "Bronze", None).await;
    w.crm.onboard(&sponsor).await;
    let booked = w.crm.wait_until_booked(&sponsor).await;
    let purchase = booked["purchaseIds"][0]
        .as_str()
        .expect("purchase id")
        .to_owned();
    let reference = booked["requests"][0]["externalReference"]
        .as_str()
        .expect("reference")
        .to_owned();
    let data = w
        .crm
        .ok(
            Some(&w.crm.reader()),
            PURCHASE_SPONSOR,
            json!({ "r": [
                { "__typename": "TicketPurchase", "id": purchase, "externalReference": reference },
                { "__typename": "TicketPurchase", "id": purchase, "externalReference": "order-42" },
                { "__typename": "TicketPurchase", "id": uuid::Uuid::new_v4().to_string(), "externalReference": reference },
            ] }),
        )
        .await;
    let acme = json!({ "id": sponsor, "name": "Acme" });
    assert_eq!(data["_entities"][0]["sponsor"], acme);
    assert_eq!(data["_entities"][1]["sponsor"], acme);
    assert!(data["_entities"][2]["sponsor"].is_null(), "{data:#}");
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

/// With introspection off the schema stays private: no `__schema`, and no "Did you mean …?"
/// in validation errors, which would spell out field names one typo at a time.
#[tokio::test]
async fn introspection_off_also_hides_suggestions() {
    let typo = "{ sponsorshipLevel { name } }";
    let open = CrmServer::spawn(None).await;
    let body = open.gql(Some(&open.reader()), typo, json!({})).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Did you mean"),
        "with introspection on, suggestions help: {body:#}"
    );

    let closed = CrmServer::spawn_with(None, |s| s.limits.introspection = false).await;
    for query in [
        typo,
        "{ sponsors { nodes { nam } } }",
        "mutation { createSponsr(input: {}) { id } }",
    ] {
        let body = closed.gql(Some(&closed.admin()), query, json!({})).await;
        assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body:#}");
        let text = body["errors"].to_string();
        assert!(!text.contains("Did you mean"), "{query}: {body:#}");
    }
    // async-graphql answers a disabled `__schema` with null rather than an error.
    let body = closed
        .gql(
            Some(&closed.admin()),
            "{ __schema { types { name } } }",
            json!({}),
        )
        .await;
    assert!(body["data"]["__schema"].is_null(), "{body:#}");
}
