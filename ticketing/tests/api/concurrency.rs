use serde_json::json;

use crate::support::*;

/// 200 buyers at once for 50 seats: exactly 50 get one, every other one a clean SOLD_OUT.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_buyers_never_oversell_fifty_seats() {
    let app = TestApp::spawn().await;
    let conference = app.create_conference().await;
    let hot = app
        .create_ticket_type(&conference, "Hot", 5_000, 50, "PUBLIC")
        .await;

    let buyers = (0..200).map(|i| {
        let app = &app;
        let hot = hot.clone();
        async move {
            let input = json!({
                "purchaser": { "name": format!("Buyer {i}"), "email": format!("buyer{i}@example.org") },
                "lines": [{ "ticketTypeId": hot, "quantity": 1 }]
            });
            app.gql(None, BUY, json!({ "input": input })).await
        }
    });
    let results = futures_util::future::join_all(buyers).await;
    let mut bought = 0;
    for body in &results {
        if body.get("errors").is_some() {
            assert_eq!(error_code(body), "SOLD_OUT", "{body:#}");
            assert!(body["data"].is_null() || body["data"]["createTicketPurchase"].is_null());
        } else {
            bought += 1;
        }
    }
    assert_eq!(bought, 50);
    let stock = app.ticket_type(&hot).await;
    assert_eq!(stock["sold"], 50);
    assert_eq!(stock["remaining"], 0);
    let all = app
        .ok(
            Some(&app.admin()),
            "query($c: ID!) { ticketPurchases(conferenceId: $c, first: 100) { edges { node { ticketCount } } } }",
            json!({ "c": conference }),
        )
        .await;
    assert_eq!(
        all["ticketPurchases"]["edges"].as_array().unwrap().len(),
        50
    );
    let sold_out_events = app
        .event_types()
        .await
        .into_iter()
        .filter(|t| t == "TicketTypeSoldOut")
        .count();
    assert_eq!(sold_out_events, 1);
}
