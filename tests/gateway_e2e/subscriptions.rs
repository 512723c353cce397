//! Live ticket events through the gateway, enriched with the sponsor from the CRM, on each
//! transport a dashboard may use. The gateway subscribes to ticketing upstream and fetches each
//! event's `sponsor` from the CRM, with the client's token on every fetch. `sponsor` requires
//! the purchase's `externalReference`, which the gateway takes from ticketing's event and hands
//! to the CRM: so even the booking's own announcement, which usually outruns the CRM's record
//! of the purchase id, names the sponsor.

use serde_json::{Value, json};
use std::time::Duration;

use testkit::{SseSubscription, WsSubscription};

use crate::support::{Stack, WAIT, admin, token};

const EVENTS: &str = "subscription($after: String) { ticketEvents(after: $after) {
    __typename cursor
    ... on TicketPurchaseCreated { purchase { id ticketCount sponsor { name } } }
    ... on TicketAssigned { ticket { id attendee { name } purchase { id sponsor { name } } } }
} }";

enum Subscriber {
    Ws(WsSubscription),
    Sse(SseSubscription),
}

impl Subscriber {
    /// Subscribes through the gateway with a dashboard's token: events and both services'
    /// read scopes, nothing more.
    async fn open(stack: &Stack, transport: &str, after: &str) -> Self {
        let dashboard = token("dashboard", &["events:read", "tickets:read", "crm:read"]);
        let variables = json!({ "after": after });
        match transport {
            "sse" => Self::Sse(
                SseSubscription::open(&stack.url(), Some(&dashboard), EVENTS, variables)
                    .await
                    .expect("SSE subscription opens"),
            ),
            protocol => Self::Ws(
                WsSubscription::open(
                    &stack.ws_url(),
                    protocol,
                    json!({ "Authorization": format!("Bearer {dashboard}") }),
                    EVENTS,
                    variables,
                )
                .await
                .expect("WebSocket subscription opens"),
            ),
        }
    }

    /// The next event of the given type, skipping others; fails on any GraphQL error.
    async fn next_of(&mut self, typename: &str) -> Value {
        loop {
            let payload = match self {
                Self::Ws(ws) => ws.next_payload(WAIT).await,
                Self::Sse(sse) => sse.next_payload(WAIT).await,
            }
            .unwrap_or_else(|e| panic!("waiting for {typename}: {e}"));
            assert!(payload.get("errors").is_none(), "errors: {payload:#}");
            let event = &payload["data"]["ticketEvents"];
            if event["__typename"] == typename {
                return event.clone();
            }
        }
    }
}

async fn events_are_enriched_with_the_sponsor(transport: &str) {
    let stack = Stack::start().await;
    let conference = stack.conference().await;
    let sponsor = stack.create_sponsor(&conference, "Acme", "Bronze").await;
    let start = stack.last_ticket_event_cursor().await;
    let mut live = Subscriber::open(&stack, transport, &start).await;

    // The CRM books the sponsor's ticket through ticketing while the dashboard watches.
    stack.onboard(&sponsor).await;
    let purchases = stack.booked_purchases(&sponsor).await;
    let created = live.next_of("TicketPurchaseCreated").await;
    assert_eq!(created["purchase"]["id"], purchases[0].as_str());
    assert_eq!(created["purchase"]["ticketCount"], 1);
    assert_eq!(created["purchase"]["sponsor"], json!({ "name": "Acme" }));

    // Later events about the sponsor's tickets carry the sponsor, three hops away: ticket and
    // purchase from ticketing, sponsor from the CRM.
    let data = stack
        .ok(
            &admin(),
            "query($id: ID!) { ticketPurchase(id: $id) { tickets { id } } }",
            json!({ "id": purchases[0] }),
        )
        .await;
    let ticket = data["ticketPurchase"]["tickets"][0]["id"].clone();
    stack
        .ok(
            &admin(),
            "mutation($t: ID!) { assignTicket(ticketId: $t, attendee: { name: \"Ada Lovelace\", email: \"ada@example.org\" }) { id } }",
            json!({ "t": ticket }),
        )
        .await;
    let assigned = live.next_of("TicketAssigned").await;
    assert_eq!(assigned["ticket"]["id"], ticket);
    assert_eq!(assigned["ticket"]["attendee"]["name"], "Ada Lovelace");
    assert_eq!(assigned["ticket"]["purchase"]["id"], purchases[0].as_str());
    assert_eq!(
        assigned["ticket"]["purchase"]["sponsor"],
        json!({ "name": "Acme" })
    );

    // A dashboard that reconnects with its last cursor gets the booking again, with the
    // sponsor.
    let mut replay = Subscriber::open(&stack, transport, &start).await;
    let created = replay.next_of("TicketPurchaseCreated").await;
    assert_eq!(created["purchase"]["id"], purchases[0].as_str());
    assert_eq!(created["purchase"]["sponsor"], json!({ "name": "Acme" }));
}

#[tokio::test]
async fn over_graphql_transport_ws() {
    events_are_enriched_with_the_sponsor("graphql-transport-ws").await;
}

#[tokio::test]
async fn over_legacy_graphql_ws() {
    events_are_enriched_with_the_sponsor("graphql-ws").await;
}

#[tokio::test]
async fn over_sse() {
    events_are_enriched_with_the_sponsor("sse").await;
}

const TYPE_EVENTS: &str = "subscription($after: String) { ticketEvents(after: $after) {
    __typename cursor ... on TicketTypeCreated { ticketType { name } }
} }";

/// The cursors of the next `count` events.
async fn cursors(live: &mut WsSubscription, count: usize) -> Vec<String> {
    let mut cursors = Vec::new();
    while cursors.len() < count {
        let payload = live
            .next_payload(WAIT)
            .await
            .unwrap_or_else(|e| panic!("waiting for event {}: {e}", cursors.len() + 1));
        assert!(payload.get("errors").is_none(), "errors: {payload:#}");
        let cursor = payload["data"]["ticketEvents"]["cursor"].as_str();
        cursors.push(cursor.expect("a cursor").to_owned());
    }
    cursors
}

/// Dashboards that open later, each after the last event it saw, share the first one's
/// upstream subscription to ticketing: each gets exactly the events after its cursor, then
/// the live ones, once and in order.
#[tokio::test]
async fn late_dashboards_share_one_upstream_and_resume_exactly() {
    let stack = Stack::start().await;
    let conference = stack.conference().await;
    let start = stack.last_ticket_event_cursor().await;
    // One token for every dashboard: identical subscriptions, apart from the cursor.
    let dashboard = token("dashboard", &["events:read", "tickets:read"]);
    let open = |after: String| {
        let url = stack.ws_url();
        let init = json!({ "Authorization": format!("Bearer {dashboard}") });
        async move {
            WsSubscription::open(
                &url,
                "graphql-transport-ws",
                init,
                TYPE_EVENTS,
                json!({ "after": after }),
            )
            .await
            .expect("subscription opens")
        }
    };
    let create_ticket_types = |names: std::ops::Range<u32>| {
        let stack = &stack;
        let conference = conference.clone();
        async move {
            for n in names {
                stack
                    .ok(
                        &admin(),
                        "mutation($input: CreateTicketTypeInput!) { createTicketType(input: $input) { id } }",
                        json!({ "input": {
                            "conferenceId": conference, "name": format!("Day {n}"),
                            "price": { "amount": 1000, "currency": "EUR" }, "capacity": 10
                        } }),
                    )
                    .await;
            }
        }
    };

    let mut first = open(start.clone()).await;
    create_ticket_types(1..4).await;
    let seen = cursors(&mut first, 3).await;

    // After the first event it saw, and from the very start.
    let mut second = open(seen[0].clone()).await;
    let mut third = open(start).await;
    assert_eq!(cursors(&mut second, 2).await, seen[1..]);
    assert_eq!(cursors(&mut third, 3).await, seen);

    create_ticket_types(4..6).await;
    let live = cursors(&mut first, 2).await;
    assert_eq!(cursors(&mut second, 2).await, live);
    assert_eq!(cursors(&mut third, 2).await, live);
    for dashboard in [&mut first, &mut second, &mut third] {
        let extra = dashboard.next_payload(Duration::from_millis(300)).await;
        assert!(extra.is_err(), "an event twice: {extra:?}");
    }

    let metrics = reqwest::get(format!("http://{}/metrics", stack.gateway.addr()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics
            .lines()
            .any(|l| l == "gateway_subscription_upstreams_active 1"),
        "one upstream subscription for the three dashboards:\n{metrics}"
    );
}
