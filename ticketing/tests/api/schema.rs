use serde_json::json;

use crate::support::*;

/// `ticketing/schema.graphql` is the published language clients generate code from: it must
/// be exactly what the server serves.
#[test]
fn the_published_schema_file_is_fresh() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    let current = ticketing::api::published_sdl();
    assert!(
        published == current,
        "{} is stale: run `cargo run -p ticketing -- --print-schema > ticketing/schema.graphql`",
        path.display()
    );
}

#[tokio::test]
async fn the_federation_sdl_declares_entities_and_the_subscription() {
    let app = TestApp::spawn().await;
    let data = app.ok(None, "{ _service { sdl } }", json!({})).await;
    let sdl = data["_service"]["sdl"].as_str().unwrap();
    for entity in ["Conference", "TicketType", "TicketPurchase", "Ticket"] {
        assert!(
            sdl.contains(&format!("type {entity} @key(fields: \"id\")")),
            "{entity} should be an entity keyed by id"
        );
    }
    assert!(sdl.contains("type Subscription"));
    assert!(sdl.contains("https://specs.apollo.dev/federation/v2"));
}

#[tokio::test]
async fn entities_resolve_by_reference() {
    let app = TestApp::spawn().await;
    let conference = app.create_conference().await;
    let standard = app
        .create_ticket_type(&conference, "Standard", 100, 5, "PUBLIC")
        .await;
    let data = app
        .ok(
            Some(&app.admin()),
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on TicketType { name remaining } ... on Conference { name } } }",
            json!({ "r": [
                { "__typename": "TicketType", "id": standard },
                { "__typename": "Conference", "id": conference }
            ] }),
        )
        .await;
    assert_eq!(data["_entities"][0]["name"], "Standard");
    assert_eq!(data["_entities"][1]["name"], "RustConf");
}

#[tokio::test]
async fn get_serves_queries_graphiql_and_refuses_mutations() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url())
        .query(&[("query", "{ conferences { edges { cursor } } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["data"]["conferences"]["edges"], json!([]));

    let mutation = app
        .client
        .get(app.url())
        .query(&[(
            "query",
            "mutation { cancelTicketPurchase(id: \"x\") { id } }",
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(mutation.status(), 405);

    let page = app
        .client
        .get(app.url())
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("graphiql"));

    let health = app
        .client
        .get(format!("http://{}/health", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

/// With introspection off, validation errors do not name the fields a caller guessed at.
#[tokio::test]
async fn without_introspection_errors_suggest_no_field_names() {
    let app = TestApp::spawn_with(|s| s.limits.introspection = false).await;
    let body = app
        .gql(
            None,
            "{ conferencs(first: 1) { edges { node { id } } } }",
            serde_json::json!({}),
        )
        .await;
    let text = body.to_string();
    assert!(body["errors"].is_array(), "{text}");
    assert!(!text.contains("Did you mean"), "{text}");
    assert!(!text.contains("\"conferences\""), "{text}");
    let body = app
        .gql(
            None,
            "{ __schema { queryType { name } } }",
            serde_json::json!({}),
        )
        .await;
    assert!(
        body["data"]["__schema"].is_null() || body["errors"].is_array(),
        "{body}"
    );
}
