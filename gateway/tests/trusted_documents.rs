//! Trusted documents enforced (`--trusted-documents-only`): the operations of the manifest
//! run, by text or by id; anything else, introspection included, is refused with
//! `PERSISTED_QUERY_NOT_IN_LIST` before any subgraph is asked.

mod support;

use gateway::Config;
use serde_json::{Value, json};

const TRUSTED: &str = "query TopProducts { topProducts { upc name } }";

async fn post(stack: &support::Stack, body: Value) -> (u16, Value) {
    stack.post_body(&body, "application/json").await
}

#[tokio::test]
async fn only_the_manifests_operations_run() {
    let stack = support::start_with(support::Options {
        configure: |config: &mut Config| {
            config.trusted_documents = Some(support::fixture("trusted-documents.json"));
            config.trusted_documents_only = true;
        },
        ..support::Options::default()
    })
    .await;
    let (status, by_text) = post(&stack, json!({ "query": TRUSTED })).await;
    assert_eq!(status, 200, "{by_text:#}");
    assert!(by_text["data"]["topProducts"].is_array(), "{by_text:#}");

    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(support::fixture("trusted-documents.json")).expect("manifest"),
    )
    .expect("JSON manifest");
    let id = manifest["operations"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (_, by_id) = post(&stack, json!({ "documentId": id })).await;
    assert_eq!(by_id["data"], by_text["data"]);
    let (_, by_hash) = post(
        &stack,
        json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": id } } }),
    )
    .await;
    assert_eq!(by_hash["data"], by_text["data"]);

    let before = stack.products.requests().len();
    for ad_hoc in [
        "{ topProducts { upc name } }",
        "{ __schema { types { name } } }",
    ] {
        let (_, body) = post(&stack, json!({ "query": ad_hoc })).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_IN_LIST",
            "{body:#}"
        );
        assert!(body.get("data").is_none(), "{body:#}");
    }
    // Registering a new document as an automatic persisted query does not get around it.
    let (_, body) = post(
        &stack,
        json!({
            "query": "{ topProducts { upc } }",
            "extensions": { "persistedQuery": { "version": 1, "sha256Hash":
                "a4d1f9bb7f6bc6e5f0a2c8e6f0f7d2c0a1b3e5d7f9a1c3e5b7d9f1a3c5e7b9d1" } }
        }),
    )
    .await;
    assert!(body.get("data").is_none(), "{body:#}");
    assert_eq!(
        stack.products.requests().len(),
        before,
        "nothing reached a subgraph"
    );
}
