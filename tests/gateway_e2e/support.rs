//! A running system per test: ticketing and the CRM (temporary SQLite files, or fresh
//! PostgreSQL databases with `TEST_DATABASE_URL`), and the gateway composed in front of them.
//! Every service verifies tokens with one shared secret, as under `conftools up`. The
//! domain set-up (a conference, onboarded sponsors) goes through the gateway too: it is the one
//! API frontends use.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::ServerTask;

#[path = "../common/services.rs"]
mod services;

pub use services::Services;
use services::local;
pub use services::{admin, keys, token};

pub const WAIT: Duration = Duration::from_secs(15);

/// Codes of all errors, in order.
pub fn error_codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub struct Stack {
    pub services: Services,
    pub gateway: ServerTask,
    http: reqwest::Client,
}

impl Stack {
    pub async fn start() -> Self {
        let services = Services::start().await;
        // The gateway as the binary and `conftools up` run it; it composes from the two
        // services before it answers, and requests wait in the listener's backlog meanwhile.
        let config = services.gateway_config();
        let gateway = ServerTask::spawn(local(), |listener, shutdown| async move {
            if let Err(error) = gateway::run(listener, config, shutdown).await {
                panic!("the gateway failed: {error}");
            }
        })
        .await;

        Self {
            services,
            gateway,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self) -> String {
        self.gateway.graphql_url()
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql", self.gateway.addr())
    }

    /// A request through the gateway; the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        testkit::gql(&self.http, &self.url(), token, query, variables).await
    }

    /// A request through the gateway that must succeed; its `data`.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.gql(Some(token), query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// A conference with a restricted sponsor ticket type, configured in the CRM. Returns the
    /// conference id.
    pub async fn conference(&self) -> String {
        let admin = admin();
        let data = self
            .ok(
                &admin,
                "mutation($input: CreateConferenceInput!) { createConference(input: $input) { id } }",
                json!({ "input": { "name": "RustConf", "currency": "EUR", "startsOn": "2027-05-01", "endsOn": "2027-05-03" } }),
            )
            .await;
        let conference = id(&data["createConference"]);
        let data = self
            .ok(
                &admin,
                "mutation($input: CreateTicketTypeInput!) { createTicketType(input: $input) { id } }",
                json!({ "input": {
                    "conferenceId": conference, "name": "Sponsor",
                    "price": { "amount": 0, "currency": "EUR" },
                    "capacity": 50, "visibility": "RESTRICTED"
                } }),
            )
            .await;
        let ticket_type = id(&data["createTicketType"]);
        self.ok(
            &admin,
            "mutation($input: ConfigureSponsorTicketsInput!) { configureSponsorTickets(input: $input) { conferenceId } }",
            json!({ "input": { "conferenceId": conference, "ticketTypeId": ticket_type } }),
        )
        .await;
        conference
    }

    pub async fn create_sponsor(&self, conference: &str, name: &str, level: &str) -> String {
        let data = self
            .ok(
                &admin(),
                "mutation($input: CreateSponsorInput!) { createSponsor(input: $input) { id } }",
                json!({ "input": {
                    "name": name, "level": level, "conferenceId": conference,
                    "contactName": "Grace Hopper", "contactEmail": "grace@example.org"
                } }),
            )
            .await;
        id(&data["createSponsor"])
    }

    /// Signs the sponsor's contract and pays its invoice: the CRM then books its tickets.
    pub async fn onboard(&self, sponsor: &str) {
        let admin = admin();
        for mutation in [
            "mutation($s: ID!) { sendContract(sponsorId: $s) { id } }",
            "mutation($s: ID!) { signContract(sponsorId: $s) { id } }",
        ] {
            self.ok(&admin, mutation, json!({ "s": sponsor })).await;
        }
        let data = self
            .ok(
                &admin,
                "mutation($input: IssueInvoiceInput!) { issueInvoice(input: $input) { id } }",
                json!({ "input": { "sponsorId": sponsor, "amount": { "amount": 500_000, "currency": "EUR" }, "dueOn": due_in_a_month() } }),
            )
            .await;
        let invoice = id(&data["issueInvoice"]);
        self.ok(
            &admin,
            "mutation($id: ID!) { markInvoicePaid(id: $id) { status } }",
            json!({ "id": invoice }),
        )
        .await;
    }

    /// Waits until the CRM has booked the sponsor's tickets; returns the purchase ids.
    pub async fn booked_purchases(&self, sponsor: &str) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let data = self
                .ok(
                    &admin(),
                    "query($id: ID!) { sponsor(id: $id) { ticketAllocation { status purchaseIds } } }",
                    json!({ "id": sponsor }),
                )
                .await;
            let allocation = &data["sponsor"]["ticketAllocation"];
            if allocation["status"] == "BOOKED" {
                return allocation["purchaseIds"]
                    .as_array()
                    .expect("purchaseIds")
                    .iter()
                    .map(|p| p.as_str().expect("purchase id").to_owned())
                    .collect();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the sponsor's tickets were never booked; last seen {allocation:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A conference with one onboarded sponsor whose tickets are booked: (sponsor, purchase).
    pub async fn booked_sponsor(&self, name: &str, level: &str) -> (String, String) {
        let conference = self.conference().await;
        let sponsor = self.create_sponsor(&conference, name, level).await;
        self.onboard(&sponsor).await;
        let purchases = self.booked_purchases(&sponsor).await;
        assert_eq!(
            purchases.len(),
            1,
            "one purchase per booking: {purchases:?}"
        );
        (sponsor, purchases[0].clone())
    }

    /// The cursor of the newest ticket event: subscribing after it misses nothing that follows,
    /// however long the upstream subscription takes to open.
    pub async fn last_ticket_event_cursor(&self) -> String {
        let data = self
            .ok(
                &admin(),
                "{ ticketEvents(first: 100) { edges { cursor } pageInfo { hasNextPage } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["ticketEvents"]["pageInfo"]["hasNextPage"], false);
        let edges = data["ticketEvents"]["edges"].as_array().expect("edges");
        edges
            .last()
            .and_then(|e| e["cursor"].as_str())
            .expect("at least one ticket event")
            .to_owned()
    }
}

fn id(object: &Value) -> String {
    object["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {object}"))
        .to_owned()
}

/// An invoice due date the CRM accepts whenever this runs (it refuses dates far in the past).
fn due_in_a_month() -> String {
    (chrono::Utc::now().date_naive() + chrono::Days::new(30)).to_string()
}
