//! A demo conference for `conftools up --demo`: ticket types, buyers, and sponsors at every step
//! of the pipeline, so the dashboard shows a live system the moment it opens.
//!
//! Everything goes through the gateway's public GraphQL API, as a frontend or an organiser's
//! script would: the organiser's calls with the admin token, the buyers' without any token. So
//! the demo exercises the real paths: ticketing's quotas and events, the CRM's onboarding rules
//! and its booking of sponsor tickets through ticketing.

use std::time::Duration;

use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};

/// The demo conference's name; `seed` finds an earlier demo by it.
pub const CONFERENCE: &str = "RustConf 2027";

/// The sponsor whose last invoice is open: paying it onboards the sponsor and books its tickets.
pub const SPONSOR_AWAITING_PAYMENT: &str = "Crab Cloud";

/// Declares each operation the demo sends as a constant and lists them all in [`DOCUMENTS`]:
/// declared once, an operation cannot be sent without being listed.
macro_rules! documents {
    ($($name:ident = $text:literal;)+) => {
        $(const $name: &str = $text;)+
        /// Every operation the demo sends, as it sends it. Under `up --trusted-documents-only`
        /// the gateway runs nothing else than trusted documents, so the launcher trusts these
        /// beside the dashboard's (see [`crate::trusted_documents`]).
        pub const DOCUMENTS: &[&str] = &[$($name),+];
    };
}

documents! {
    CONFERENCES = "query Conferences { conferences(first: 100) { nodes { id name ticketTypes { id name visibility } } } }";
    CREATE_CONFERENCE = "mutation CreateConference($input: CreateConferenceInput!) { createConference(input: $input) { id } }";
    CREATE_TICKET_TYPE = "mutation CreateTicketType($input: CreateTicketTypeInput!) { createTicketType(input: $input) { id } }";
    CONFIGURE_SPONSOR_TICKETS = "mutation ConfigureSponsorTickets($input: ConfigureSponsorTicketsInput!) { configureSponsorTickets(input: $input) { conferenceId } }";
    LEVELS = "query Levels { sponsorshipLevels { name price { amount } } }";
    BUY_TICKET = "mutation BuyTicket($input: CreateTicketPurchaseInput!) { createTicketPurchase(input: $input) { id } }";
    CONFIRM_PAYMENT = "mutation ConfirmPayment($id: ID!) { confirmTicketPurchasePayment(id: $id) { id } }";
    CREATE_SPONSOR = "mutation CreateSponsor($input: CreateSponsorInput!) { createSponsor(input: $input) { id } }";
    SEND_CONTRACT = "mutation SendContract($s: ID!) { sendContract(sponsorId: $s) { id } }";
    SIGN_CONTRACT = "mutation SignContract($s: ID!) { signContract(sponsorId: $s) { id } }";
    ISSUE_INVOICE = "mutation IssueInvoice($input: IssueInvoiceInput!) { issueInvoice(input: $input) { id } }";
    MARK_INVOICE_PAID = "mutation MarkInvoicePaid($id: ID!) { markInvoicePaid(id: $id) { id } }";
    REMAINING = "query Remaining($id: ID!) { conference(id: $id) { ticketTypes { remaining visibility } } }";
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the gateway at {url} cannot be reached: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{operation} failed: {message}")]
    Rejected { operation: String, message: String },
    #[error(
        "the data directory already holds conferences and none is the demo's ({CONFERENCE}); \
         start with an empty --data-dir to get the demo"
    )]
    NotEmpty,
}

/// What the demo created (or found from an earlier `--demo` start).
#[derive(Debug, Clone)]
pub struct Demo {
    pub conference_id: String,
    /// The public ticket types: `(id, name)`.
    pub public_ticket_types: Vec<(String, String)>,
    /// Whether this call created it; `false` when an earlier demo was found.
    pub created: bool,
}

/// GraphQL over HTTP to the gateway.
#[derive(Clone)]
pub struct Gateway {
    http: reqwest::Client,
    url: String,
    admin_token: String,
}

impl Gateway {
    pub fn new(graphql_url: impl Into<String>, admin_token: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            url: graphql_url.into(),
            admin_token: admin_token.into(),
        }
    }

    /// As the organiser: with the admin token.
    async fn admin(&self, query: &str, variables: Value) -> Result<Value, DemoError> {
        self.call(Some(&self.admin_token), None, query, variables)
            .await
    }

    /// As a member of the public: no token at all.
    async fn public(&self, query: &str, variables: Value) -> Result<Value, DemoError> {
        self.call(None, None, query, variables).await
    }

    /// As a member of the public at `address`: each walk-in comes from an address of its own
    /// (from a documentation range), as visitors do, so the services' per-buyer limits count
    /// them apart, which they can because they trust the gateway's `X-Forwarded-For`.
    async fn public_from(
        &self,
        address: std::net::Ipv4Addr,
        query: &str,
        variables: Value,
    ) -> Result<Value, DemoError> {
        self.call(None, Some(address), query, variables).await
    }

    async fn call(
        &self,
        token: Option<&str>,
        forwarded_for: Option<std::net::Ipv4Addr>,
        query: &str,
        variables: Value,
    ) -> Result<Value, DemoError> {
        let unreachable = |source| DemoError::Unreachable {
            url: self.url.clone(),
            source,
        };
        let mut request = self
            .http
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(address) = forwarded_for {
            request = request.header("x-forwarded-for", address.to_string());
        }
        let body: Value = request
            .send()
            .await
            .map_err(unreachable)?
            .json()
            .await
            .map_err(unreachable)?;
        if let Some(error) = body["errors"].as_array().and_then(|errors| errors.first()) {
            return Err(DemoError::Rejected {
                operation: operation_name(query),
                message: error["message"].as_str().unwrap_or("no message").to_owned(),
            });
        }
        Ok(body["data"].clone())
    }
}

fn operation_name(query: &str) -> String {
    query
        .split(['(', '{'])
        .next()
        .unwrap_or(query)
        .trim()
        .to_owned()
}

fn id_of(value: &Value) -> Result<String, DemoError> {
    value["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| DemoError::Rejected {
            operation: "reading an id".into(),
            message: format!("no id in {value}"),
        })
}

struct TicketTypeSpec {
    name: &'static str,
    price: i64,
    capacity: i64,
    public: bool,
}

const TICKET_TYPES: &[TicketTypeSpec] = &[
    TicketTypeSpec {
        name: "Early bird",
        price: 19_900,
        capacity: 60,
        public: true,
    },
    TicketTypeSpec {
        name: "Regular",
        price: 34_900,
        capacity: 200,
        public: true,
    },
    TicketTypeSpec {
        name: "Workshop day",
        price: 14_900,
        capacity: 40,
        public: true,
    },
    // Small on purpose: it sells out during seeding, so a buyer can meet "sold out".
    TicketTypeSpec {
        name: "Speakers' dinner",
        price: 5_000,
        capacity: 4,
        public: true,
    },
    TicketTypeSpec {
        name: "Sponsor",
        price: 0,
        capacity: 40,
        public: false,
    },
];

/// `(type index, quantity, buyer, pays)`: the purchases made before the dashboard opens.
const PURCHASES: &[(usize, i64, &str, bool)] = &[
    (0, 4, "Ada Lovelace", true),
    (0, 3, "Alan Turing", true),
    (0, 6, "Grace Hopper", true),
    (0, 5, "Edsger Dijkstra", true),
    (0, 8, "Barbara Liskov", true),
    (0, 6, "Niklaus Wirth", true),
    (0, 5, "Frances Allen", false),
    (1, 2, "Donald Knuth", true),
    (1, 4, "Margaret Hamilton", true),
    (1, 3, "Ken Thompson", false),
    (1, 6, "Radia Perlman", true),
    (1, 2, "John McCarthy", true),
    (2, 3, "Leslie Lamport", true),
    (2, 2, "Katherine Johnson", false),
    (3, 2, "Tony Hoare", true),
    (3, 2, "Hedy Lamarr", true),
];

/// How far each demo sponsor gets: one at every step of the pipeline.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Step {
    New,
    ContractSent,
    Signed,
    /// Paid, but the contract is still unsigned: onboarding waits for the signature.
    PaidUnsigned,
    /// One invoice paid, the last one open.
    Invoiced,
    TicketsBooked,
}

const SPONSORS: &[(&str, &str, &str, Step)] = &[
    ("Ferris Labs", "Gold", "Ferris Crab", Step::TicketsBooked),
    ("Tokio Works", "Bronze", "Alice Ryhl", Step::TicketsBooked),
    (
        SPONSOR_AWAITING_PAYMENT,
        "Silver",
        "Carol Nichols",
        Step::Invoiced,
    ),
    (
        "Unsafe Industries",
        "Silver",
        "Ralf Jung",
        Step::PaidUnsigned,
    ),
    ("Borrow & Co", "Bronze", "Niko Matsakis", Step::Signed),
    ("Lifetime Labs", "Bronze", "Mara Bos", Step::ContractSent),
    ("Async Arena", "Gold", "Yosh Wuyts", Step::New),
];

/// Seeds the demo into an empty system, or finds the one an earlier `--demo` start made.
pub async fn seed(gateway: &Gateway) -> Result<Demo, DemoError> {
    let data = gateway.admin(CONFERENCES, json!({})).await?;
    let conferences = data["conferences"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(existing) = conferences.iter().find(|c| c["name"] == CONFERENCE) {
        let public_ticket_types = existing["ticketTypes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["visibility"] == "PUBLIC")
            .filter_map(|t| Some((t["id"].as_str()?.to_owned(), t["name"].as_str()?.to_owned())))
            .collect();
        return Ok(Demo {
            conference_id: id_of(existing)?,
            public_ticket_types,
            created: false,
        });
    }
    if !conferences.is_empty() {
        return Err(DemoError::NotEmpty);
    }

    let conference = id_of(
        &gateway
            .admin(
                CREATE_CONFERENCE,
                json!({ "input": { "name": CONFERENCE, "currency": "EUR", "startsOn": "2027-09-08", "endsOn": "2027-09-10" } }),
            )
            .await?["createConference"],
    )?;

    let mut type_ids = Vec::with_capacity(TICKET_TYPES.len());
    for spec in TICKET_TYPES {
        let data = gateway
            .admin(
                CREATE_TICKET_TYPE,
                json!({ "input": {
                    "conferenceId": conference, "name": spec.name,
                    "price": { "amount": spec.price, "currency": "EUR" },
                    "capacity": spec.capacity,
                    "visibility": if spec.public { "PUBLIC" } else { "RESTRICTED" },
                } }),
            )
            .await?;
        type_ids.push(id_of(&data["createTicketType"])?);
    }
    // The CRM books sponsors' tickets of the restricted type.
    let sponsor_type = TICKET_TYPES
        .iter()
        .position(|t| !t.public)
        .map(|i| type_ids[i].clone());
    gateway
        .admin(
            CONFIGURE_SPONSOR_TICKETS,
            json!({ "input": { "conferenceId": conference, "ticketTypeId": sponsor_type } }),
        )
        .await?;

    for &(type_index, quantity, buyer, pays) in PURCHASES {
        buy(gateway, &type_ids[type_index], quantity, buyer, pays).await?;
    }

    // Invoices are for the level's price, as the CRM has it.
    let levels = gateway.admin(LEVELS, json!({})).await?;
    let price_of = |level: &str| {
        levels["sponsorshipLevels"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["name"] == level)
            .and_then(|l| l["price"]["amount"].as_i64())
            .unwrap_or(100_000)
    };
    for &(name, level, contact, step) in SPONSORS {
        let sponsorship = Sponsorship {
            name,
            level,
            contact,
            step,
            price: price_of(level),
        };
        sponsor(gateway, &conference, &sponsorship).await?;
    }

    let public_ticket_types = TICKET_TYPES
        .iter()
        .zip(&type_ids)
        .filter(|(spec, _)| spec.public)
        .map(|(spec, id)| (id.clone(), spec.name.to_owned()))
        .collect();
    Ok(Demo {
        conference_id: conference,
        public_ticket_types,
        created: true,
    })
}

/// A public purchase, paid at once (as a payment provider's callback would confirm it) or left
/// awaiting payment.
async fn buy(
    gateway: &Gateway,
    ticket_type: &str,
    quantity: i64,
    buyer: &str,
    pays: bool,
) -> Result<(), DemoError> {
    let email = format!(
        "{}@example.org",
        buyer
            .to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), ".")
    );
    // TEST-NET-2 (RFC 5737): addresses that belong to nobody.
    let address = std::net::Ipv4Addr::new(198, 51, 100, rand::rng().random_range(1..=254));
    let data = gateway
        .public_from(
            address,
            BUY_TICKET,
            json!({ "input": {
                "purchaser": { "name": buyer, "email": email },
                "lines": [{ "ticketTypeId": ticket_type, "quantity": quantity }],
            } }),
        )
        .await?;
    if pays {
        gateway
            .admin(
                CONFIRM_PAYMENT,
                json!({ "id": id_of(&data["createTicketPurchase"])? }),
            )
            .await?;
    }
    Ok(())
}

struct Sponsorship<'a> {
    name: &'a str,
    level: &'a str,
    contact: &'a str,
    step: Step,
    /// The level's price, in cents.
    price: i64,
}

async fn sponsor(
    gateway: &Gateway,
    conference: &str,
    &Sponsorship {
        name,
        level,
        contact,
        step,
        price,
    }: &Sponsorship<'_>,
) -> Result<(), DemoError> {
    let email = format!("{}@example.org", contact.to_lowercase().replace(' ', "."));
    let sponsor = id_of(
        &gateway
            .admin(
                CREATE_SPONSOR,
                json!({ "input": {
                    "name": name, "level": level, "conferenceId": conference,
                    "contactName": contact, "contactEmail": email,
                } }),
            )
            .await?["createSponsor"],
    )?;
    let by_id = json!({ "s": sponsor });
    if step >= Step::ContractSent {
        gateway.admin(SEND_CONTRACT, by_id.clone()).await?;
    }
    let signs = matches!(step, Step::Signed | Step::Invoiced | Step::TicketsBooked);
    if signs {
        gateway.admin(SIGN_CONTRACT, by_id.clone()).await?;
    }
    // The level's price in one invoice, or in two halves for the sponsor whose second is
    // still open.
    let invoices: &[(i64, bool)] = match step {
        Step::PaidUnsigned | Step::TicketsBooked => &[(price, true)],
        Step::Invoiced => &[(price / 2, true), (price / 2, false)],
        _ => &[],
    };
    // All issued before any is paid: paying the only open invoice of a signed sponsor would
    // onboard it before its second invoice exists.
    let mut to_pay = Vec::new();
    for &(amount, paid) in invoices {
        let invoice = id_of(
            &gateway
                .admin(
                    ISSUE_INVOICE,
                    json!({ "input": { "sponsorId": sponsor, "amount": { "amount": amount, "currency": "EUR" }, "dueOn": due_in_a_month() } }),
                )
                .await?["issueInvoice"],
        )?;
        if paid {
            to_pay.push(invoice);
        }
    }
    for invoice in to_pay {
        gateway
            .admin(MARK_INVOICE_PAID, json!({ "id": invoice }))
            .await?;
    }
    Ok(())
}

const WALK_INS: &[&str] = &[
    "Linus Torvalds",
    "Guido van Rossum",
    "Bjarne Stroustrup",
    "Anders Hejlsberg",
    "Sophie Wilson",
    "Shafi Goldwasser",
    "Whitfield Diffie",
    "Adele Goldberg",
    "Jean Sammet",
    "Dennis Ritchie",
];

/// Buyers arriving every few seconds while `up --demo` runs, so the dashboard's sales move on
/// their own. They buy public tickets only, pay most of the time, and stop once the public
/// ticket types are nearly sold out; a failed purchase (sold out in a race) is just skipped.
pub async fn walk_ins(gateway: Gateway, demo: Demo) {
    if demo.public_ticket_types.is_empty() {
        return;
    }
    loop {
        let (pause, pick, quantity, buyer, pays) = {
            let mut rng = rand::rng();
            (
                Duration::from_millis(rng.random_range(2_500..7_000)),
                rng.random_range(0..demo.public_ticket_types.len()),
                rng.random_range(1..=2),
                WALK_INS.choose(&mut rng).copied().unwrap_or("Walk-in"),
                rng.random_bool(0.75),
            )
        };
        tokio::time::sleep(pause).await;
        let Ok(remaining) = public_seats_left(&gateway, &demo.conference_id).await else {
            continue;
        };
        if remaining <= 10 {
            tracing::info!("demo walk-ins stop: the public tickets are nearly sold out");
            return;
        }
        let (ticket_type, _) = &demo.public_ticket_types[pick];
        if let Err(error) = buy(&gateway, ticket_type, quantity, buyer, pays).await {
            tracing::debug!(%error, "a demo walk-in could not buy");
        }
    }
}

async fn public_seats_left(gateway: &Gateway, conference: &str) -> Result<i64, DemoError> {
    let data = gateway
        .public(REMAINING, json!({ "id": conference }))
        .await?;
    Ok(data["conference"]["ticketTypes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["visibility"] == "PUBLIC")
        .filter_map(|t| t["remaining"].as_i64())
        .sum())
}

/// An invoice due date the CRM accepts whenever this runs (it refuses dates far in the past).
fn due_in_a_month() -> String {
    (chrono::Utc::now().date_naive() + chrono::Days::new(30)).to_string()
}
