//! One request, two services: the gateway plans root fields to their owner and fetches the
//! other service's fields as entities.

use serde_json::json;

use crate::support::{Stack, admin};

#[tokio::test]
async fn sponsors_with_their_purchases_and_tickets_in_one_request() {
    let stack = Stack::start().await;
    let conference = stack.conference().await;
    let acme = stack.create_sponsor(&conference, "Acme", "Gold").await;
    let globex = stack.create_sponsor(&conference, "Globex", "Bronze").await;
    stack.onboard(&acme).await;
    stack.onboard(&globex).await;
    let acme_purchases = stack.booked_purchases(&acme).await;
    let globex_purchases = stack.booked_purchases(&globex).await;

    // `sponsors` and `ticketPurchases { id }` come from the CRM; `status` and `tickets` from
    // ticketing, in one `_entities` fetch for all sponsors' purchases.
    let data = stack
        .ok(
            &admin(),
            "query($c: ID!) { sponsors(conferenceId: $c) { nodes {
                name level { name }
                ticketPurchases { id status complimentary ticketCount tickets { id purchaseId } }
            } } }",
            json!({ "c": conference }),
        )
        .await;
    let mut sponsors = data["sponsors"]["nodes"].as_array().expect("nodes").clone();
    sponsors.sort_by_key(|s| s["name"].as_str().unwrap_or_default().to_owned());
    assert_eq!(sponsors.len(), 2, "{data:#}");
    for (sponsor, name, purchase_ids, tickets) in [
        (&sponsors[0], "Acme", &acme_purchases, 5),
        (&sponsors[1], "Globex", &globex_purchases, 1),
    ] {
        assert_eq!(sponsor["name"], name);
        let purchases = sponsor["ticketPurchases"].as_array().expect("purchases");
        let ids: Vec<&str> = purchases.iter().filter_map(|p| p["id"].as_str()).collect();
        assert_eq!(&ids, purchase_ids, "{name}'s purchases");
        let purchase = &purchases[0];
        assert_eq!(purchase["status"], "PAID", "{purchase:#}");
        assert_eq!(purchase["complimentary"], true);
        assert_eq!(purchase["ticketCount"], tickets);
        let issued = purchase["tickets"].as_array().expect("tickets");
        assert_eq!(issued.len(), tickets as usize, "{name}'s tickets");
        assert!(issued.iter().all(|t| t["purchaseId"] == purchase["id"]));
    }
}

#[tokio::test]
async fn a_purchase_with_its_sponsor_in_one_request() {
    let stack = Stack::start().await;
    let (_, purchase) = stack.booked_sponsor("Acme", "Silver").await;

    // The other way round: ticketing owns `ticketPurchase`, the CRM adds `sponsor`, and the
    // sponsor's own fields and its purchases (back in ticketing) follow, and their sponsor
    // again: a purchase the CRM names by id only gets the `externalReference` its `sponsor`
    // requires from ticketing before the CRM is asked.
    let data = stack
        .ok(
            &admin(),
            "query($id: ID!) { ticketPurchase(id: $id) {
                id ticketCount purchaser { name }
                sponsor { name level { name } onboarded ticketPurchases { id ticketCount sponsor { name } } }
            } }",
            json!({ "id": purchase }),
        )
        .await;
    let found = &data["ticketPurchase"];
    assert_eq!(found["id"], purchase.as_str());
    assert_eq!(found["ticketCount"], 3);
    assert_eq!(found["sponsor"]["name"], "Acme");
    assert_eq!(found["sponsor"]["level"]["name"], "Silver");
    assert_eq!(found["sponsor"]["onboarded"], true);
    assert_eq!(
        found["sponsor"]["ticketPurchases"],
        json!([{ "id": purchase, "ticketCount": 3, "sponsor": { "name": "Acme" } }])
    );
}

/// A few nested lists ask for objects by the power of their depth: the gateway estimates the
/// cost before planning and refuses, with the estimate, and no subgraph is asked; the same
/// question at a sane depth is answered.
#[tokio::test]
async fn an_operation_over_the_cost_limit_is_refused_before_planning() {
    let stack = Stack::start().await;
    // tickets { purchase { tickets { ... six lists deep ... { id } } } }
    let walk = "tickets { purchase { ".repeat(5) + "tickets { id }" + &" } }".repeat(5);
    let nested = format!("query($id: ID!) {{ ticketPurchase(id: $id) {{ {walk} }} }}");
    let body = stack
        .gql(Some(&admin()), &nested, json!({ "id": "nope" }))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "COST_LIMIT_EXCEEDED",
        "{body:#}"
    );
    let estimated = body["errors"][0]["extensions"]["cost"]["estimated"]
        .as_u64()
        .expect("the estimate");
    assert!(estimated > 50_000, "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["cost"]["limit"], 50_000);
    assert!(body.get("data").is_none(), "nothing executed: {body:#}");

    // Two levels of the same walk cost a few hundred: planned and sent to ticketing, which
    // answers for itself (the id is not one of its ids).
    let body = stack
        .gql(
            Some(&admin()),
            "query($id: ID!) { ticketPurchase(id: $id) { tickets { purchase { tickets { id } } } } }",
            json!({ "id": "nope" }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["service"], "ticketing",
        "{body:#}"
    );
    assert_eq!(body["data"]["ticketPurchase"], serde_json::Value::Null);
}
