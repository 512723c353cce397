//! Automatic persisted queries as Apollo Client's persisted-queries link uses them: a hash
//! alone misses (HTTP 200, so the link retries rather than giving up), the document with its
//! hash is checked and remembered, then the hash alone is enough, over POST and over GET.

mod support;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const QUERY: &str = "{ topProducts { upc name } }";

fn extensions(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn post(stack: &support::Stack, body: Value) -> (u16, Value) {
    stack
        .post_body(&body, "application/graphql-response+json")
        .await
}

#[tokio::test]
async fn a_hash_misses_then_the_document_is_remembered_and_the_hash_suffices() {
    let stack = support::start().await;
    let hash = hex::encode(Sha256::digest(QUERY.as_bytes()));
    let expected = stack.query(QUERY).await;
    assert!(expected["data"]["topProducts"].is_array(), "{expected:#}");

    let (status, miss) = post(&stack, json!({ "extensions": extensions(&hash) })).await;
    assert_eq!(status, 200, "{miss:#}");
    assert_eq!(miss["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(
        miss["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    assert!(miss.get("data").is_none(), "{miss:#}");

    let (status, full) = post(
        &stack,
        json!({ "query": QUERY, "extensions": extensions(&hash) }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(full["data"], expected["data"]);

    let (status, hit) = post(&stack, json!({ "extensions": extensions(&hash) })).await;
    assert_eq!(status, 200);
    assert_eq!(hit["data"], expected["data"], "{hit:#}");

    // The hash alone over GET: a URL the same for every client, which a CDN can cache.
    let response = stack
        .http
        .get(stack.url())
        .query(&[("extensions", extensions(&hash).to_string())])
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    let got: Value = response.json().await.expect("JSON body");
    assert_eq!(got["data"], expected["data"], "{got:#}");
}

#[tokio::test]
async fn a_document_sent_with_another_documents_hash_is_refused() {
    let stack = support::start().await;
    let other = hex::encode(Sha256::digest(b"{ topProducts { upc } }"));
    let (status, body) = post(
        &stack,
        json!({ "query": QUERY, "extensions": extensions(&other) }),
    )
    .await;
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_HASH_MISMATCH"
    );
    assert!(body.get("data").is_none());
    // Nothing was remembered under the wrong hash.
    let (_, miss) = post(&stack, json!({ "extensions": extensions(&other) })).await;
    assert_eq!(
        miss["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
}
