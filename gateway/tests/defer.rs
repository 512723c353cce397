//! `@defer` through the gateway: real subgraphs, real HTTP, the multipart answer read as a
//! client reads it.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Options, Stack, dead_url, start, start_with};

/// Apollo Client's `Accept` for an operation with `@defer`.
const APOLLO_DEFER_ACCEPT: &str = "multipart/mixed;deferSpec=20220824,application/json";

/// One multipart answer: each payload, and when it arrived.
struct Parts {
    content_type: String,
    payloads: Vec<(Duration, Value)>,
}

async fn post_deferred(stack: &Stack, query: &str, accept: &str) -> Parts {
    let started = Instant::now();
    let mut response = stack
        .http
        .post(stack.url())
        .header("accept", accept)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("gateway request");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut text = String::new();
    let mut payloads = Vec::new();
    while let Some(chunk) = response.chunk().await.expect("body chunk") {
        text.push_str(std::str::from_utf8(&chunk).expect("UTF-8 body"));
        // A part is complete once the delimiter after it has arrived.
        while let Some((part, rest)) = complete_part(&text) {
            if let Some(payload) = part {
                payloads.push((started.elapsed(), payload));
            }
            text = rest;
        }
    }
    assert!(text.ends_with("--\r\n") || content_type.starts_with("application/"));
    if !content_type.starts_with("multipart/") {
        payloads.push((
            started.elapsed(),
            serde_json::from_str(&text).expect("JSON"),
        ));
    }
    Parts {
        content_type,
        payloads,
    }
}

/// Splits off the first part that a following delimiter closes: its JSON (`None` for the
/// preamble before the first delimiter) and the text after it.
fn complete_part(text: &str) -> Option<(Option<Value>, String)> {
    const DELIMITER: &str = "\r\n--graphql";
    let start = text.find(DELIMITER)?;
    let after = start + DELIMITER.len();
    if start > 0 {
        return Some((None, text[start..].to_owned()));
    }
    let end = text[after..].find(DELIMITER)? + after;
    let part = &text[after..end];
    let (_, body) = part.split_once("\r\n\r\n")?;
    let payload = serde_json::from_str(body).expect("part JSON");
    Some((Some(payload), text[end..].to_owned()))
}

#[tokio::test]
async fn a_deferred_fragment_from_another_subgraph_arrives_after_the_rest() {
    let stack = start_with(Options {
        inventory_delay: Some(Duration::from_millis(1500)),
        ..Options::default()
    })
    .await;
    let parts = post_deferred(
        &stack,
        "{ topProducts(first: 2) { name ... @defer(label: \"stock\") { inStock } } }",
        APOLLO_DEFER_ACCEPT,
    )
    .await;
    assert_eq!(
        parts.content_type,
        "multipart/mixed; boundary=\"graphql\"; deferSpec=20220824"
    );
    let payloads: Vec<&Value> = parts.payloads.iter().map(|(_, p)| p).collect();
    assert_eq!(
        payloads,
        [
            &json!({ "data": { "topProducts": [{ "name": "Table" }, { "name": "Couch" }] },
                     "hasNext": true }),
            &json!({ "hasNext": false, "incremental": [
                { "data": { "inStock": true }, "path": ["topProducts", 0], "label": "stock" },
                { "data": { "inStock": true }, "path": ["topProducts", 1], "label": "stock" }
            ]}),
        ]
    );
    // The first payload did not wait for the slow subgraph.
    assert!(
        parts.payloads[0].0 < Duration::from_millis(1500),
        "first payload after {:?}",
        parts.payloads[0].0
    );
    assert!(parts.payloads[1].0 >= Duration::from_millis(1500));
    assert_eq!(stack.products.requests().len(), 1);
    assert_eq!(stack.inventory.requests().len(), 1);
}

#[tokio::test]
async fn graphql_js_17s_format_announces_pending_fragments_by_id() {
    let stack = start().await;
    let parts = post_deferred(
        &stack,
        "{ topProducts(first: 2) { name ... @defer(label: \"stock\") { inStock } } }",
        "multipart/mixed;incrementalSpec=v0.2,application/json",
    )
    .await;
    assert_eq!(
        parts.content_type,
        "multipart/mixed; boundary=\"graphql\"; incrementalSpec=v0.2"
    );
    let payloads: Vec<&Value> = parts.payloads.iter().map(|(_, p)| p).collect();
    assert_eq!(
        payloads,
        [
            &json!({
                "data": { "topProducts": [{ "name": "Table" }, { "name": "Couch" }] },
                "pending": [
                    { "id": "0", "path": ["topProducts", 0], "label": "stock" },
                    { "id": "1", "path": ["topProducts", 1], "label": "stock" }
                ],
                "hasNext": true
            }),
            &json!({
                "hasNext": false,
                "incremental": [
                    { "id": "0", "data": { "inStock": true } },
                    { "id": "1", "data": { "inStock": true } }
                ],
                "completed": [{ "id": "0" }, { "id": "1" }]
            }),
        ]
    );
}

#[tokio::test]
async fn fields_of_the_same_subgraph_follow_at_once_and_nested_paths_are_exact() {
    let stack = start().await;
    let parts = post_deferred(
        &stack,
        "{ me { name ... @defer { username reviews { body ... @defer { product { name } } } } } }",
        APOLLO_DEFER_ACCEPT,
    )
    .await;
    let payloads: Vec<Value> = parts.payloads.into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        payloads[0],
        json!({ "data": { "me": { "name": "Ada Lovelace" } }, "hasNext": true })
    );
    // The nested `@defer` arrives with the fragment it sits in.
    let last = payloads.last().expect("a last payload");
    assert_eq!(last["hasNext"], false);
    let increments: Vec<&Value> = payloads[1..]
        .iter()
        .flat_map(|p| p["incremental"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(increments.len(), 1, "{payloads:?}");
    assert_eq!(increments[0]["path"], json!(["me"]));
    assert_eq!(increments[0]["data"]["username"], "ada");
    assert_eq!(
        increments[0]["data"]["reviews"][0],
        json!({ "body": "Love it!", "product": { "name": "Table" } })
    );
    assert!(increments[0].get("errors").is_none(), "{payloads:?}");
}

#[tokio::test]
async fn without_multipart_in_accept_the_whole_result_comes_at_once() {
    let stack = start().await;
    let query = "{ topProducts(first: 1) { name ... @defer { inStock } } }";
    let (status, body) = stack
        .post_body(&json!({ "query": query }), "application/json")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({ "data": { "topProducts": [{ "name": "Table", "inStock": true }] } })
    );
    // `if: false` defers nothing, whatever the client accepts.
    let parts = post_deferred(
        &stack,
        "{ topProducts(first: 1) { name ... @defer(if: false) { inStock } } }",
        APOLLO_DEFER_ACCEPT,
    )
    .await;
    assert!(parts.content_type.starts_with("application/json"));
    assert_eq!(
        parts.payloads[0].1,
        json!({ "data": { "topProducts": [{ "name": "Table", "inStock": true }] } })
    );
}

#[tokio::test]
async fn a_failed_deferred_fetch_reports_in_its_increment() {
    let accounts = dead_url().await;
    let stack = start_with(Options {
        accounts_url: Some(accounts),
        ..Options::default()
    })
    .await;
    let parts = post_deferred(
        &stack,
        "{ topProducts(first: 1) { name reviews { body ... @defer { author { name } } } } }",
        APOLLO_DEFER_ACCEPT,
    )
    .await;
    let payloads: Vec<Value> = parts.payloads.into_iter().map(|(_, p)| p).collect();
    assert_eq!(payloads.len(), 2, "{payloads:?}");
    assert!(payloads[0].get("errors").is_none(), "{payloads:?}");
    assert_eq!(
        payloads[0]["data"]["topProducts"][0]["reviews"][0]["body"],
        "Love it!"
    );
    let increments = payloads[1]["incremental"].as_array().expect("increments");
    assert_eq!(
        increments[0]["path"],
        json!(["topProducts", 0, "reviews", 0])
    );
    // `author: User!` and `name: String!`: the null reaches the fragment, whose data is null.
    assert_eq!(increments[0]["data"], Value::Null, "{payloads:?}");
    let errors = increments[0]["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{payloads:?}");
    assert_eq!(errors[0]["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED");
    assert_eq!(payloads[1]["hasNext"], false);
}

#[tokio::test]
async fn hostile_defer_requests_are_refused_or_answered_whole() {
    let stack = start().await;
    // A label must be a literal string.
    let parts = post_deferred(
        &stack,
        "query($l: String) { topProducts { name ... @defer(label: $l) { inStock } } }",
        APOLLO_DEFER_ACCEPT,
    )
    .await;
    assert_eq!(
        parts.payloads[0].1["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{:?}",
        parts.payloads
    );
    // `@defer` where it does not belong.
    let parts = post_deferred(
        &stack,
        "{ topProducts @defer { name } }",
        APOLLO_DEFER_ACCEPT,
    )
    .await;
    assert_eq!(
        parts.payloads[0].1["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    // A mutation runs whole: its result is one response.
    let parts = post_deferred(
        &stack,
        "mutation { addReview(upc: \"1\", body: \"Fine.\") { id ... @defer { body } } }",
        APOLLO_DEFER_ACCEPT,
    )
    .await;
    assert!(
        parts.content_type.starts_with("application/json"),
        "{}",
        parts.content_type
    );
    // A client that leaves mid-answer leaves nothing behind: the next query is served.
    let mut response = stack
        .http
        .post(stack.url())
        .header("accept", APOLLO_DEFER_ACCEPT)
        .json(&json!({ "query": "{ topProducts { name ... @defer { inStock } } }" }))
        .send()
        .await
        .expect("gateway request");
    let _ = response.chunk().await;
    drop(response);
    let body = stack.query("{ topProducts(first: 1) { name } }").await;
    assert_eq!(
        body,
        json!({ "data": { "topProducts": [{ "name": "Table" }] } })
    );
}

#[tokio::test]
async fn introspection_declares_defer() {
    let stack = start().await;
    let body = stack
        .query("{ __schema { directives { name locations args { name } } } }")
        .await;
    let directives = body["data"]["__schema"]["directives"]
        .as_array()
        .expect("directives");
    let defer = directives
        .iter()
        .find(|d| d["name"] == "defer")
        .expect("@defer introspected");
    assert_eq!(
        defer["locations"],
        json!(["FRAGMENT_SPREAD", "INLINE_FRAGMENT"])
    );
    assert_eq!(
        defer["args"],
        json!([{ "name": "label" }, { "name": "if" }])
    );
}
