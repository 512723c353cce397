//! Ticketing's authorization matrix, driven by its policy table, run again through the gateway:
//! every caller gets the same answer from the gateway as from ticketing itself (the gateway
//! forwards the caller's token and adds no authority of its own).

#[allow(dead_code)]
#[path = "../../ticketing/tests/api/authorization_matrix/matrix.rs"]
mod ticketing_matrix;

use ticketing_matrix::{Probe, Target, run_matrix};

use crate::support::{Stack, keys};

#[tokio::test]
async fn ticketing_policy_holds_through_the_gateway() {
    let stack = Stack::start().await;
    let target = Target {
        graphql_url: stack.url(),
        ws_url: stack.url().replace("http://", "ws://"),
        keys: keys(),
        client: reqwest::Client::new(),
    };
    // Probes of `_entities` and `_service` are skipped where the target does not serve them:
    // the gateway's public schema has neither.
    run_matrix(&target, &[])
        .await
        .assert_clean(Probe::ALL.len() * 8);
}
