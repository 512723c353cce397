//! A built frontend served by the gateway (`--web-dir`): files at `/`, `index.html` for
//! client-side routes, and `/graphql` still the API.

mod support;

use support::{Options, fixture, start_with};

fn with_frontend(config: &mut gateway::Config) {
    config.web_dir = Some(fixture("web"));
}

#[tokio::test]
async fn serves_the_frontend_beside_the_api() {
    let stack = start_with(Options {
        configure: with_frontend,
        ..Options::default()
    })
    .await;
    let base = format!("http://{}", stack.gateway);

    let index = stack
        .http
        .get(format!("{base}/"))
        .send()
        .await
        .expect("GET /");
    assert_eq!(index.status(), 200);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert!(
        index
            .text()
            .await
            .expect("body")
            .contains("fixture frontend")
    );

    let script = stack
        .http
        .get(format!("{base}/assets/app.js"))
        .send()
        .await
        .expect("GET asset");
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .contains("javascript")
    );

    // A client-side route (reloaded in the browser) gets the app, not a 404.
    let route = stack
        .http
        .get(format!("{base}/sponsors/42"))
        .send()
        .await
        .expect("GET route");
    assert_eq!(route.status(), 200);
    assert!(
        route
            .text()
            .await
            .expect("body")
            .contains("fixture frontend")
    );

    let (status, body) = stack
        .post("{ topProducts(first: 1) { upc } }", serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["topProducts"][0]["upc"], "1", "{body}");
}

#[tokio::test]
async fn without_a_web_dir_the_root_is_not_found() {
    let stack = start_with(Options::default()).await;
    let response = stack
        .http
        .get(format!("http://{}/", stack.gateway))
        .send()
        .await
        .expect("GET /");
    assert_eq!(response.status(), 404);
}

/// The frontend is served with headers that keep its admin token in it: a strict content
/// security policy (own scripts, styles and connections only; never framed), no sniffing, no
/// referrer. The API itself is not a page and does not need them.
#[tokio::test]
async fn the_frontend_comes_with_a_strict_content_security_policy() {
    let stack = start_with(Options {
        configure: with_frontend,
        ..Options::default()
    })
    .await;
    let base = format!("http://{}", stack.gateway);
    for path in ["/", "/sales", "/index.html"] {
        let page = stack
            .http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("GET");
        let header = |name: &str| {
            page.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} missing from {csp}"
            );
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
    }
}

/// With a web dir, a browser opening `/graphql` gets the GraphiQL page web/'s build bundled
/// (`graphiql/index.html`, which loads nothing from elsewhere) under a policy of its own that
/// still allows only the page's own scripts and connections; API clients still get the API.
/// Without a web dir it is the CDN page (`federation.rs`).
#[tokio::test]
async fn a_browser_opening_the_endpoint_gets_the_bundled_graphiql() {
    let stack = start_with(Options {
        configure: with_frontend,
        ..Options::default()
    })
    .await;
    let url = format!("http://{}/graphql", stack.gateway);
    let page = stack
        .http
        .get(&url)
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("GET /graphql");
    assert_eq!(page.status(), 200);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header("content-type").starts_with("text/html"));
    let csp = header("content-security-policy");
    for directive in [
        "default-src 'self'",
        "script-src 'self';",
        "style-src 'self' 'unsafe-inline'",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("x-content-type-options"), "nosniff");
    let body = page.text().await.expect("body");
    assert!(body.contains("fixture graphiql"), "{body}");
    assert!(!body.contains("unpkg.com"), "{body}");

    let query = stack
        .http
        .get(&url)
        .query(&[("query", "{ __typename }")])
        .header("accept", "application/json")
        .send()
        .await
        .expect("GET query");
    assert_eq!(query.status(), 200);
    let body: serde_json::Value = query.json().await.expect("JSON");
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
}

/// A web dir built before GraphiQL was bundled has no `graphiql/index.html`: the browser gets
/// the CDN page rather than nothing.
#[tokio::test]
async fn a_web_dir_without_graphiql_falls_back_to_the_cdn_page() {
    let stack = start_with(Options {
        configure: |config| config.web_dir = Some(fixture("web-before-graphiql")),
        ..Options::default()
    })
    .await;
    let page = stack
        .http
        .get(format!("http://{}/graphql", stack.gateway))
        .header("accept", "text/html")
        .send()
        .await
        .expect("GET /graphql");
    assert_eq!(page.status(), 200);
    let body = page.text().await.expect("body");
    assert!(body.contains("GraphiQL.createFetcher"), "{body}");
}
