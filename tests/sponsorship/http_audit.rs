//! The GraphQL-over-HTTP audit (`testkit::http_audit`) against the CRM called directly:
//! every MUST and every SHOULD passes, as at ticketing and the gateway.

use crate::support::CrmServer;

#[tokio::test]
async fn graphql_over_http_audit_passes() {
    let crm = CrmServer::spawn(None).await;
    let url = crm.url();
    // The audit is a blocking child process; keep the runtime free to serve it.
    tokio::task::spawn_blocking(move || testkit::http_audit::assert_passes(&url))
        .await
        .expect("audit task");
}
