//! End-to-end: real async-graphql subgraphs, the real gateway, real HTTP.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Options, start, start_with};

fn get_url(base: &str, params: &[(&str, &str)]) -> reqwest::Url {
    reqwest::Url::parse_with_params(base, params).expect("valid URL")
}

#[tokio::test]
async fn single_subgraph_query() {
    let stack = start().await;
    let body = stack
        .query("{ topProducts(first: 2) { upc name price } }")
        .await;
    assert_eq!(
        body,
        json!({ "data": { "topProducts": [
            { "upc": "1", "name": "Table", "price": 899 },
            { "upc": "2", "name": "Couch", "price": 1299 }
        ]}})
    );
    assert_eq!(stack.products.requests().len(), 1);
    assert!(stack.reviews.requests().is_empty());
}

#[tokio::test]
async fn cross_subgraph_entities_are_batched() {
    let stack = start().await;
    let body = stack
        .query("{ topProducts { name reviews { body } } }")
        .await;
    assert_eq!(
        body,
        json!({ "data": { "topProducts": [
            { "name": "Table", "reviews": [{ "body": "Love it!" }, { "body": "Prefer something else." }] },
            { "name": "Couch", "reviews": [{ "body": "Too expensive." }] },
            { "name": "Chair", "reviews": [{ "body": "Could be better." }] }
        ]}})
    );
    // Three products, one `_entities` request carrying three representations.
    let entity_requests = stack.reviews.entity_requests();
    assert_eq!(entity_requests.len(), 1, "{entity_requests:?}");
    let representations = &entity_requests[0].variables["representations"];
    assert_eq!(representations.as_array().map(Vec::len), Some(3));
    assert_eq!(
        representations[0],
        json!({ "__typename": "Product", "upc": "1" })
    );
}

#[tokio::test]
async fn entity_fetches_to_one_subgraph_at_one_depth_share_a_request() {
    let stack = start().await;
    // The reviews of a user and the reviews of products, reached from two root fields on two
    // subgraphs: one request to the reviews subgraph with an aliased `_entities` for each.
    let body = stack
        .query("{ me { name reviews { body } } topProducts(first: 2) { name reviewSummary } }")
        .await;
    assert_eq!(
        body["data"],
        json!({
            "me": { "name": "Ada Lovelace", "reviews": [{ "body": "Love it!" }, { "body": "Too expensive." }] },
            "topProducts": [
                { "name": "Table", "reviewSummary": "2 reviews" },
                { "name": "Couch", "reviewSummary": null }
            ]
        }),
        "{body}"
    );
    // The subgraph's error inside the second `_entities` lands where that entity sits.
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["message"], "summary unavailable");
    assert_eq!(
        errors[0]["path"],
        json!(["topProducts", 1, "reviewSummary"])
    );
    let requests = stack.reviews.requests();
    assert_eq!(requests.len(), 1, "{:?}", requests);
    assert!(
        requests[0].query.contains("_gw_batch_e1: _entities("),
        "{}",
        requests[0].query
    );
    assert_eq!(
        requests[0].variables["_gw_batch_r0"],
        json!([{ "__typename": "User", "id": "1" }])
    );

    // With entities for only one of them, the fetch goes alone, as it would unbatched.
    let body = stack
        .query("{ me { name reviews { body } } topProducts(first: 0) { name reviewSummary } }")
        .await;
    assert_eq!(body["data"]["topProducts"], json!([]), "{body}");
    let requests = stack.reviews.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests[1].variables.get("representations").is_some(),
        "{:?}",
        requests[1]
    );
}

#[tokio::test]
async fn nested_hops_and_deduplicated_representations() {
    let stack = start().await;
    let body = stack
        .query("{ me { name reviews { body product { name reviews { author { name } } } } } }")
        .await;
    let reviews = &body["data"]["me"]["reviews"];
    assert_eq!(reviews[0]["product"]["name"], "Table");
    assert_eq!(reviews[1]["product"]["name"], "Couch");
    assert_eq!(
        reviews[0]["product"]["reviews"],
        json!([{ "author": { "name": "Ada Lovelace" } }, { "author": { "name": "Alan Turing" } }])
    );
    assert!(body.get("errors").is_none(), "{body}");
    // Authors repeat across reviews; each user is sent once.
    let last = stack.accounts.entity_requests();
    let reps = last.last().map(|r| r.variables["representations"].clone());
    assert_eq!(reps.and_then(|r| r.as_array().map(Vec::len)), Some(2));
}

#[tokio::test]
async fn requires_fetches_required_fields_first() {
    let stack = start().await;
    let body = stack
        .query("{ topProducts { name shippingEstimate inStock } }")
        .await;
    assert_eq!(
        body,
        json!({ "data": { "topProducts": [
            { "name": "Table", "shippingEstimate": 50, "inStock": true },
            { "name": "Couch", "shippingEstimate": 0, "inStock": true },
            { "name": "Chair", "shippingEstimate": 25, "inStock": false }
        ]}})
    );
    let requests = stack.inventory.entity_requests();
    assert!(
        requests.iter().any(|r| r.variables["representations"][0]
            == json!({ "__typename": "Product", "upc": "1", "price": 899, "weight": 100 })),
        "{requests:?}"
    );
}

#[tokio::test]
async fn requires_when_entry_point_lacks_required_fields() {
    // reviews -> products (price, weight) -> inventory (shippingEstimate).
    let stack = start().await;
    let body = stack
        .query("{ reviews { product { shippingEstimate } } }")
        .await;
    assert_eq!(
        body["data"]["reviews"][0]["product"]["shippingEstimate"],
        50
    );
    assert_eq!(body["data"]["reviews"][1]["product"]["shippingEstimate"], 0);
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn provides_avoids_a_hop() {
    let stack = start().await;
    let body = stack.query("{ reviews { author { username } } }").await;
    assert_eq!(body["data"]["reviews"][0]["author"]["username"], "ada");
    assert!(stack.accounts.requests().is_empty());

    let body = stack.query("{ reviews { author { name } } }").await;
    assert_eq!(body["data"]["reviews"][2]["author"]["name"], "Alan Turing");
    assert_eq!(stack.accounts.requests().len(), 1);
}

#[tokio::test]
async fn interfaces_and_unions_with_fragments() {
    let stack = start().await;
    let body = stack
        .query(
            "query { media { __typename title ... on Book { pages reviewCount } ...M }
                     search(term: \"x\") { ... on Product { name } ... on Book { title } } }
             fragment M on Movie { minutes }",
        )
        .await;
    assert_eq!(
        body,
        json!({ "data": {
            "media": [
                { "__typename": "Book", "title": "Dune", "pages": 412, "reviewCount": 3 },
                { "__typename": "Movie", "title": "Alien", "minutes": 117 }
            ],
            "search": [{ "name": "Table" }, { "title": "Dune" }]
        }})
    );
    // Only the Book goes to reviews.
    let reps = &stack.reviews.entity_requests()[0].variables["representations"];
    assert_eq!(reps, &json!([{ "__typename": "Book", "id": "b1" }]));
}

#[tokio::test]
async fn aliases_skip_include_and_variables() {
    let stack = start().await;
    let response = stack
        .http
        .post(stack.url())
        .json(&json!({
            "query": "query Q($upc: String!, $withPrice: Boolean!, $skipName: Boolean = true) {
               first: product(upc: $upc) { id: upc title: name @skip(if: $skipName) price @include(if: $withPrice) }
               second: product(upc: \"3\") { title: name }
               __typename
             }",
            "variables": { "upc": "2", "withPrice": true }
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    // Compare the raw text: field order must follow the client's selection.
    assert_eq!(
        response.text().await.unwrap_or_default(),
        r#"{"data":{"first":{"id":"2","price":1299},"second":{"title":"Chair"},"__typename":"Query"}}"#
    );
}

#[tokio::test]
async fn subgraph_error_paths_are_rebased() {
    let stack = start().await;
    let body = stack.query("{ topProducts { name reviewSummary } }").await;
    assert_eq!(body["data"]["topProducts"][0]["reviewSummary"], "2 reviews");
    assert_eq!(body["data"]["topProducts"][1]["reviewSummary"], Value::Null);
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["message"], "summary unavailable");
    assert_eq!(
        errors[0]["path"],
        json!(["topProducts", 1, "reviewSummary"])
    );
}

#[tokio::test]
async fn subgraph_down_gives_partial_data_and_named_error() {
    let stack = start_with(Options {
        accounts_url: Some(support::dead_url().await),
        ..Options::default()
    })
    .await;
    let body = stack
        .query("{ topProducts(first: 1) { name } me { name } }")
        .await;
    assert_eq!(body["data"]["topProducts"], json!([{ "name": "Table" }]));
    assert_eq!(body["data"]["me"], Value::Null);
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED");
    assert_eq!(error["extensions"]["service"], "accounts");
    assert!(error["message"].as_str().unwrap_or("").contains("accounts"));

    // A non-null field owned by the dead subgraph nulls its nullable parent.
    let body = stack.query("{ reviews { body author { name } } }").await;
    // Review.author and User.name are non-null, and so is every list level up to the root.
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["service"], "accounts");
}

#[tokio::test]
async fn subgraph_timeout_is_per_subgraph() {
    let stack = start_with(Options {
        inventory_delay: Some(Duration::from_secs(3)),
        configure: |config| {
            config.subgraph_timeouts = vec![("inventory".into(), Duration::from_millis(200))];
        },
        ..Options::default()
    })
    .await;
    let started = std::time::Instant::now();
    let body = stack
        .query("{ topProducts(first: 1) { name inStock } }")
        .await;
    assert!(started.elapsed() < Duration::from_secs(2));
    // inStock is non-null, so the product becomes null, and the non-null list becomes null.
    assert_eq!(body["data"], Value::Null);
    assert_eq!(body["errors"][0]["extensions"]["service"], "inventory");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("timed out")
    );
}

#[tokio::test]
async fn validation_errors_have_locations() {
    let stack = start().await;
    let (status, body) = stack
        .post("{\n  topProducts { nope }\n}", Value::Null)
        .await;
    assert_eq!(status, 200);
    assert!(body.get("data").is_none());
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    let error = errors
        .iter()
        .find(|e| e["message"].as_str().unwrap_or("").contains("nope"))
        .unwrap_or_else(|| panic!("no error about `nope`: {body}"));
    assert_eq!(error["locations"], json!([{ "line": 2, "column": 17 }]));
    assert_eq!(error["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");

    // @inaccessible fields are not part of the API schema.
    let body = stack.query("{ secret }").await;
    assert!(body.get("data").is_none(), "{body}");

    // graphql-response+json clients get a 4xx for rejected requests.
    let response = stack
        .http
        .post(stack.url())
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": "{ nope }" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/graphql-response+json"
    );
}

#[tokio::test]
async fn get_queries_and_mutations_over_get_rejected() {
    let stack = start().await;
    let response = stack
        .http
        .get(get_url(
            &stack.url(),
            &[
                (
                    "query",
                    "query($n: Int) { topProducts(first: $n) { name } }",
                ),
                ("variables", "{\"n\":1}"),
            ],
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({ "data": { "topProducts": [{ "name": "Table" }] } })
    );

    let response = stack
        .http
        .get(get_url(
            &stack.url(),
            &[(
                "query",
                "mutation { addReview(upc: \"1\", body: \"x\") { id } }",
            )],
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 405);
    assert!(stack.reviews.requests().is_empty());
}

#[tokio::test]
async fn mutation_then_entity_fetch() {
    let stack = start().await;
    let body = stack
        .query("mutation { addReview(upc: \"2\", body: \"Nice\") { id body product { name } } }")
        .await;
    assert_eq!(
        body,
        json!({ "data": { "addReview": { "id": "r-new", "body": "Nice", "product": { "name": "Couch" } } } })
    );
}

#[tokio::test]
async fn authorization_is_forwarded() {
    let stack = start().await;
    let response = stack
        .http
        .post(stack.url())
        .header("authorization", "Bearer secret-token")
        .json(&json!({ "query": "{ topProducts(first: 1) { reviews { body } } }" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    for server in [&stack.products, &stack.reviews] {
        let requests = server.requests();
        assert!(!requests.is_empty());
        assert!(
            requests
                .iter()
                .all(|r| r.authorization.as_deref() == Some("Bearer secret-token"))
        );
    }
}

#[tokio::test]
async fn introspection_is_answered_by_the_gateway_and_can_be_disabled() {
    let stack = start().await;
    let body = stack
        .query("{ __schema { queryType { name } } __type(name: \"Product\") { fields { name } } }")
        .await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    let fields: Vec<&str> = body["data"]["__type"]["fields"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(fields.contains(&"shippingEstimate"));
    assert!(!fields.contains(&"secret"));
    let join_graph = stack
        .query("{ __type(name: \"join__Graph\") { name } }")
        .await;
    assert_eq!(join_graph["data"]["__type"], Value::Null);

    let stack = start_with(Options {
        configure: |config| config.introspection = false,
        ..Options::default()
    })
    .await;
    let body = stack.query("{ __schema { queryType { name } } }").await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "INTROSPECTION_DISABLED"
    );
    assert!(body.get("data").is_none());
}

#[tokio::test]
async fn depth_alias_and_body_limits() {
    let stack = start_with(Options {
        configure: |config| {
            config.max_depth = 3;
            config.max_aliases = 2;
            config.max_body_bytes = 1024;
        },
        ..Options::default()
    })
    .await;
    let body = stack.query("{ me { reviews { product { name } } } }").await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "MAX_DEPTH_EXCEEDED"
    );
    let body = stack
        .query("{ a: me { name } b: me { name } c: me { name } }")
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "MAX_ALIASES_EXCEEDED"
    );
    let huge = format!("{{ me {{ name }} }} # {}", "x".repeat(4096));
    let response = stack
        .http
        .post(stack.url())
        .json(&json!({ "query": huge }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 413);
    assert!(stack.accounts.requests().is_empty());
}

#[tokio::test]
async fn composes_from_subgraph_sdl() {
    let stack = start_with(Options {
        compose: true,
        ..Options::default()
    })
    .await;
    let body = stack
        .query(
            "{ topProducts(first: 2) { name shippingEstimate reviews { body author { username name } } }
               media { title ... on Book { reviewCount } } }",
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["topProducts"][0]["shippingEstimate"], 50);
    assert_eq!(
        body["data"]["topProducts"][0]["reviews"][1]["author"],
        json!({ "username": "alan", "name": "Alan Turing" })
    );
    assert_eq!(
        body["data"]["media"][0],
        json!({ "title": "Dune", "reviewCount": 3 })
    );
}

#[tokio::test]
async fn client_alias_named_like_a_key_field_does_not_collide_with_the_key() {
    // `upc` is Product's key, which the gateway selects to reach the reviews subgraph; the
    // client uses `upc` as the alias of `name`. Both must survive in one products request.
    let stack = start().await;
    let body = stack
        .query("{ topProducts(first: 2) { upc: name reviews { body } } }")
        .await;
    assert_eq!(
        body,
        json!({ "data": { "topProducts": [
            { "upc": "Table", "reviews": [{ "body": "Love it!" }, { "body": "Prefer something else." }] },
            { "upc": "Couch", "reviews": [{ "body": "Too expensive." }] }
        ]}})
    );
    let representations = &stack.reviews.entity_requests()[0].variables["representations"];
    assert_eq!(
        representations[0],
        json!({ "__typename": "Product", "upc": "1" })
    );
}

#[tokio::test]
async fn a_browser_opening_the_endpoint_gets_graphiql() {
    let stack = start().await;
    let response = stack
        .http
        .get(stack.url())
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );
    let page = response.text().await.expect("text");
    assert!(page.contains("GraphiQL.createFetcher"), "{page}");
}
