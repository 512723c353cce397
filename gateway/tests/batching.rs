//! Batches (a JSON array of operations, as Apollo Client's `BatchHttpLink` sends): run
//! concurrently, answered in order, each with its own errors; over the cap, nothing runs.

mod support;

use serde_json::{Value, json};

async fn post(stack: &support::Stack, body: Value) -> (u16, Value) {
    stack.post_body(&body, "application/json").await
}

#[tokio::test]
async fn a_batch_is_answered_in_order_each_operation_with_its_own_errors() {
    let stack = support::start().await;
    let products = stack.query("{ topProducts { upc name } }").await;
    let (status, body) = post(
        &stack,
        json!([
            { "query": "{ topProducts { upc name } }" },
            { "query": "{ nope }" },
            { "query": "query($n: Int) { topProducts(first: $n) { upc } }", "variables": { "n": 1 } },
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body:#}");
    let answers = body.as_array().expect("an array");
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0]["data"], products["data"]);
    assert!(answers[0].get("errors").is_none(), "{body:#}");
    assert_eq!(
        answers[1]["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert!(answers[1].get("data").is_none(), "{body:#}");
    assert_eq!(
        answers[2]["data"]["topProducts"].as_array().map(Vec::len),
        Some(1),
        "{body:#}"
    );
}

#[tokio::test]
async fn a_batch_over_the_cap_runs_nothing() {
    let stack = support::start().await;
    let before = stack.products.requests().len();
    let operations: Vec<Value> = (0..11)
        .map(|_| json!({ "query": "{ topProducts { upc } }" }))
        .collect();
    let (status, body) = post(&stack, Value::Array(operations)).await;
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "BATCH_LIMIT_EXCEEDED"
    );
    assert_eq!(stack.products.requests().len(), before, "nothing ran");
    let (status, body) = post(&stack, json!([])).await;
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "BATCH_LIMIT_EXCEEDED"
    );
}
