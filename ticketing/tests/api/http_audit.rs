//! The GraphQL-over-HTTP audit (`testkit::http_audit`) against ticketing called directly, as
//! the open host service it is: every MUST and every SHOULD passes.

use crate::support::TestApp;

#[tokio::test]
async fn graphql_over_http_audit_passes() {
    let app = TestApp::spawn().await;
    let url = app.url();
    // The audit is a blocking child process; keep the runtime free to serve it.
    tokio::task::spawn_blocking(move || testkit::http_audit::assert_passes(&url))
        .await
        .expect("audit task");
}
