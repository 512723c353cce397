//! The authorization matrix against ticketing itself: see [`matrix`].

pub mod matrix;

use std::sync::Arc;

use ticketing::api::policy::READ;

use self::matrix::{Probe, Target, assert_table_covers_the_schema, run_matrix};
use crate::support::TestApp;

fn target_of(app: &TestApp) -> Target {
    Target {
        graphql_url: app.url(),
        ws_url: app.ws_url(),
        keys: Arc::clone(&app.keys),
        client: reqwest::Client::new(),
    }
}

#[tokio::test]
async fn every_operation_admits_exactly_the_callers_the_policy_table_names() {
    let app = TestApp::spawn().await;
    let target = target_of(&app);
    assert_table_covers_the_schema(&target).await;
    // Every probe as each of 10 callers (3 without a token, 4 single scopes, the owner, a
    // stranger like it, the admin).
    run_matrix(&target, &[])
        .await
        .assert_clean(Probe::ALL.len() * 10);
}

/// The same with an owner that holds `tickets:read`: reading stays reading, for the owner's
/// peers with the same scope too (they may see the owner's purchases, never change them).
#[tokio::test]
async fn the_matrix_holds_for_an_owner_with_tickets_read() {
    let app = TestApp::spawn().await;
    run_matrix(&target_of(&app), &[READ])
        .await
        .assert_clean(Probe::ALL.len() * 10);
}

/// docs/security.md shows the table the service enforces, not an older one.
#[test]
fn the_security_docs_show_the_policy_table_in_force() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/security.md");
    let docs = std::fs::read_to_string(path).expect("docs/security.md");
    assert!(
        docs.contains(ticketing::api::policy::markdown().trim()),
        "docs/security.md is stale: paste the output of `cargo run -p ticketing -- --print-policy` into its ticketing section"
    );
}
