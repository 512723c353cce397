//! The GraphQL-over-HTTP audit (`testkit::http_audit`) against a real gateway in front of
//! real subgraphs: every MUST and every SHOULD passes.

mod support;

#[tokio::test]
async fn graphql_over_http_audit_passes() {
    let stack = support::start().await;
    let url = stack.url();
    // The audit is a blocking child process; keep the runtime free to serve it.
    tokio::task::spawn_blocking(move || testkit::http_audit::assert_passes(&url))
        .await
        .expect("audit task");
}
