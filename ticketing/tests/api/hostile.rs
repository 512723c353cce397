//! Requests an attacker sends to the open host service, refused at the door (issue 14's first
//! edge limits, shared by every service through platform::graphql): mutations in bodies a
//! browser posts cross-site without asking (text/plain, forms, multipart, no content type),
//! bodies far over the size limit, batches over the batch limit. Each is refused with its
//! status and code, writes nothing, and the service serves the next normal request at once.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

const CREATE_CONFERENCE: &str = r#"mutation { createConference(input: { name: "Forged", currency: "EUR", startsOn: "2027-05-01", endsOn: "2027-05-03" }) { id } }"#;

async fn conferences(app: &TestApp) -> usize {
    app.ok(
        None,
        "{ conferences(first: 100) { edges { node { id } } } }",
        json!({}),
    )
    .await["conferences"]["edges"]
        .as_array()
        .map_or(0, Vec::len)
}

async fn post_raw(app: &TestApp, content_type: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url())
        .bearer_auth(app.admin())
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn cross_site_content_types_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let before = conferences(&app).await;
    let json_body = json!({ "query": CREATE_CONFERENCE }).to_string();
    let form = format!("query={}", urlencode(CREATE_CONFERENCE));
    let multipart = format!(
        "--b\r\ncontent-disposition: form-data; name=\"operations\"\r\n\r\n{json_body}\r\n--b--\r\n"
    );
    for (content_type, body) in [
        (Some("text/plain"), json_body.clone()),
        (Some("text/plain;charset=UTF-8"), json_body.clone()),
        (Some("application/x-www-form-urlencoded"), form),
        (Some("multipart/form-data; boundary=b"), multipart),
        (None, json_body.clone()),
    ] {
        let (status, body) = post_raw(&app, content_type, body.into_bytes()).await;
        assert_eq!(status, 415, "{content_type:?}: {body}");
        assert_eq!(
            error_code(&body),
            "UNSUPPORTED_MEDIA_TYPE",
            "{content_type:?}"
        );
    }
    assert_eq!(conferences(&app).await, before, "a refused mutation wrote");
    // The JSON media types are served.
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "application/graphql-response+json",
    ] {
        let (status, body) =
            post_raw(&app, Some(content_type), json_body.clone().into_bytes()).await;
        assert_eq!(status, 200, "{content_type}: {body}");
        assert!(body.get("errors").is_none(), "{content_type}: {body}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_cut_off_not_read() {
    let app = TestApp::spawn().await;
    // 50 MB of variables: refused after the first 2 MiB.
    let padding = "x".repeat(50 * 1024 * 1024);
    let body = format!(r#"{{"query":"{{ __typename }}","variables":{{"pad":"{padding}"}}}}"#);
    let started = Instant::now();
    let answer = app
        .client
        .post(app.url())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    // The server answers as soon as the limit is passed and stops reading; a client still
    // writing may see the connection close before it reads that answer. Either way the body
    // was not read in full.
    if let Ok(response) = answer {
        assert_eq!(response.status().as_u16(), 413);
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(error_code(&body), "PAYLOAD_TOO_LARGE", "{body}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refusing took {:?}",
        started.elapsed()
    );
    app.create_conference().await;
}

#[tokio::test]
async fn batches_over_the_limit_execute_nothing() {
    let app = TestApp::spawn_with(|s| s.request_limits.max_batch = 3).await;
    let before = conferences(&app).await;
    let operation = json!({ "query": CREATE_CONFERENCE });
    let (status, body) = post_raw(
        &app,
        Some("application/json"),
        Value::Array(vec![operation.clone(); 4])
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "BATCH_LIMIT_EXCEEDED");
    assert_eq!(
        conferences(&app).await,
        before,
        "part of a refused batch ran"
    );
    // A batch within the limit runs, each operation answered in order.
    let (status, body) = post_raw(
        &app,
        Some("application/json"),
        Value::Array(vec![operation; 3]).to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().map(Vec::len), Some(3), "{body}");
    assert_eq!(conferences(&app).await, before + 3);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
