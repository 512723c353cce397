//! Live ticket events through the gateway, enriched with the sponsor from the CRM, on each
//! transport a dashboard may use. The gateway subscribes to ticketing upstream and fetches each
//! event's `sponsor` from the CRM, with the client's token on every fetch. `sponsor` requires
//! the purchase's `externalReference`, which the gateway takes from ticketing's event and hands
//! to the CRM: so even the booking's own announcement, which usually outruns the CRM's record
//! of the purchase id, names the sponsor.

use serde_json::{Value, json};
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
