//! CORS through the real gateway: preflight answered, actual responses carry the headers,
//! unlisted origins get none.

mod support;

use support::{Options, start_with};

const ORIGIN: &str = "https://dashboard.example";

fn listed_origin(config: &mut gateway::Config) {
    config.cors_allow_origins = vec![ORIGIN.into()];
    config.cors_allow_credentials = true;
}

#[tokio::test]
async fn preflight_is_answered_for_a_listed_origin() {
    let stack = start_with(Options {
        configure: listed_origin,
        ..Options::default()
    })
    .await;
    let response = stack
        .http
        .request(reqwest::Method::OPTIONS, stack.url())
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight");
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    assert!(allowed.contains("content-type"), "{allowed}");
    let methods = headers["access-control-allow-methods"]
        .to_str()
        .expect("ascii");
    assert!(methods.contains("POST"), "{methods}");
    assert_eq!(headers["access-control-max-age"], "600");
}

#[tokio::test]
async fn actual_request_carries_cors_headers_and_others_get_none() {
    let stack = start_with(Options {
        configure: listed_origin,
        ..Options::default()
    })
    .await;
    let query = serde_json::json!({ "query": "{ topProducts(first: 1) { upc } }" });
    let response = stack
        .http
        .post(stack.url())
        .header("origin", ORIGIN)
        .json(&query)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(
        response.headers()["access-control-allow-credentials"],
        "true"
    );

    let response = stack
        .http
        .post(stack.url())
        .header("origin", "https://evil.example")
        .json(&query)
        .send()
        .await
        .expect("request");
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn wildcard_allows_any_origin() {
    let stack = start_with(Options {
        configure: |config| config.cors_allow_origins = vec!["*".into()],
        ..Options::default()
    })
    .await;
    let response = stack
        .http
        .request(reqwest::Method::OPTIONS, stack.url())
        .header("origin", "https://anywhere.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("preflight");
    assert!(response.status().is_success());
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(
        response
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
}

#[tokio::test]
async fn no_cors_by_default() {
    let stack = start_with(Options::default()).await;
    let response = stack
        .http
        .get(format!("http://{}/health", stack.gateway))
        .header("origin", ORIGIN)
        .send()
        .await
        .expect("request");
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
