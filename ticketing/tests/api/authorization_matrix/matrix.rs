//! The authorization matrix, reusable: every operation of the policy table
//! (`ticketing::api::policy::POLICY`) called by every kind of caller against a real server,
//! each outcome compared with what the table says. The operations come from the table and
//! the field list from the served schema (introspection): a field of `Query`, `Mutation` or
//! `Subscription` the table does not list fails the test, and so does a row nobody probes.
//!
//! The expectation is read from the table's data by [`reach`] here, not by calling the
//! service's own `decide`, so a mistake in either shows. A refused or hidden mutation must
//! also have written nothing: the event log is checked after each.
//!
//! [`run_matrix`] takes only a GraphQL URL and a way to mint tokens, so the same matrix runs
//! through the gateway (include this file with `#[path]`; it needs `testkit`, `platform`,
//! `ticketing`, `reqwest`, `serde_json` and `uuid`): probes of root fields the target does
//! not serve (`_entities` and `_service` are subgraph-only) are skipped there.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use platform::JwtKeys;
use serde_json::{Value, json};
use ticketing::api::policy::{ADMIN, Caller, EVENTS_READ, POLICY, Rule, SCOPES};

use testkit::WsSubscription;

/// Where the matrix runs: ticketing itself, or a gateway in front of it.
pub struct Target {
    pub graphql_url: String,
    pub ws_url: String,
    pub keys: Arc<JwtKeys>,
    pub client: reqwest::Client,
}

impl Target {
    fn mint(&self, subject: &str, scopes: &[&str]) -> String {
        self.keys
            .mint(subject, scopes, Duration::from_secs(3600))
            .expect("mint")
    }

    fn admin(&self) -> String {
        self.mint("admin", &[ADMIN, EVENTS_READ])
    }

    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(&self.graphql_url)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("JSON response")
    }

    async fn ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// The fields of the root types, as `Query.ticketPurchase` etc.
    pub async fn root_fields(&self) -> BTreeSet<String> {
        let data = self
            .ok(
                None,
                "{ __schema {
                    queryType { name fields { name } }
                    mutationType { name fields { name } }
                    subscriptionType { name fields { name } }
                } }",
                json!({}),
            )
            .await;
        let mut fields = BTreeSet::new();
        for root in ["queryType", "mutationType", "subscriptionType"] {
            let root = &data["__schema"][root];
            let name = root["name"].as_str().unwrap_or_default();
            for field in root["fields"].as_array().into_iter().flatten() {
                fields.insert(format!(
                    "{name}.{}",
                    field["name"].as_str().unwrap_or_default()
                ));
            }
        }
        fields
    }

    /// The entity types `_entities` resolves, if the target serves it.
    async fn entity_types(&self) -> Vec<String> {
        let data = self
            .ok(
                None,
                "{ __type(name: \"_Entity\") { possibleTypes { name } } }",
                json!({}),
            )
            .await;
        data["__type"]["possibleTypes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Anonymous,
    /// No bearer token; presents the access token of the anonymous purchase it targets.
    Holder,
    /// No bearer token; presents the access token of another anonymous purchase.
    HolderOfAnother,
    /// A client holding exactly this scope, not the owner.
    ScopeAlone(&'static str),
    /// Another client with the owner's scopes.
    Stranger,
    Owner,
    Admin,
}

struct Who {
    kind: Kind,
    bearer: Option<String>,
    scopes: Vec<&'static str>,
}

impl Who {
    fn name(&self) -> String {
        match self.kind {
            Kind::ScopeAlone(scope) => format!("{scope} alone"),
            Kind::Stranger => format!("another client with the owner's scopes {:?}", self.scopes),
            Kind::Owner => format!("the owner {:?}", self.scopes),
            other => format!("{other:?}"),
        }
    }

    fn holds(&self, scope: &str) -> bool {
        self.scopes.contains(&scope)
            || (scope.starts_with("tickets:") && self.scopes.contains(&ADMIN))
    }

    fn presents_token(&self) -> bool {
        matches!(self.kind, Kind::Holder | Kind::HolderOfAnother)
    }

    fn token(&self) -> Option<&str> {
        self.bearer.as_deref()
    }
}

/// What a rule gives a caller, read from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reach {
    Full,
    Held,
    Own,
    Public,
    Refused(&'static str),
}

/// `presents`: the operation takes an `accessToken` and the caller passes one.
fn reach(rule: &Rule, who: &Who, presents: bool) -> Reach {
    let admits = |c: Caller| rule.callers.contains(&c);
    if rule.scopes().any(|s| who.holds(s)) || admits(Caller::Anyone) {
        Reach::Full
    } else if presents && admits(Caller::Holder) {
        Reach::Held
    } else if who.bearer.is_some() && admits(Caller::Owner) {
        Reach::Own
    } else if admits(Caller::Public) {
        Reach::Public
    } else if who.bearer.is_none() {
        Reach::Refused("UNAUTHENTICATED")
    } else {
        Reach::Refused("FORBIDDEN")
    }
}

fn rule(operation: &str) -> &'static Rule {
    POLICY
        .iter()
        .find(|r| r.operation == operation)
        .unwrap_or_else(|| panic!("{operation} is not in the policy table"))
}

/// What a probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// The call touched the target (read it, changed it, listed it, showed the field).
    Allowed,
    /// The target was as good as absent: NOT_FOUND, `null`, missing from a list.
    Hidden,
    /// An error with this code.
    Refused(String),
}

/// How a probe's request differs from the plain call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Plain,
    /// Reaches a restricted ticket type: needs full access.
    Restricted,
    /// A complimentary purchase: needs full access.
    Complimentary,
    /// The target purchase is paid: owners and holders may not cancel it.
    Paid,
}

/// The probes, each one call of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Conference,
    Conferences,
    TicketType(Variant),
    ConferenceTicketTypes(Variant),
    TicketPurchase,
    TicketPurchases,
    Ticket,
    Purchaser,
    Attendee,
    AccessToken,
    TicketEventsQuery,
    Service,
    Entity(&'static str, Variant),
    CreateConference,
    CreateTicketType,
    UpdateTicketType,
    CreateTicketPurchase(Variant),
    ConfirmPayment,
    Cancel(Variant),
    Assign,
    TicketEventsSubscription,
}

impl Probe {
    pub const ALL: &'static [Probe] = &[
        Probe::Conference,
        Probe::Conferences,
        Probe::TicketType(Variant::Plain),
        Probe::TicketType(Variant::Restricted),
        Probe::ConferenceTicketTypes(Variant::Plain),
        Probe::ConferenceTicketTypes(Variant::Restricted),
        Probe::TicketPurchase,
        Probe::TicketPurchases,
        Probe::Ticket,
        Probe::Purchaser,
        Probe::Attendee,
        Probe::AccessToken,
        Probe::TicketEventsQuery,
        Probe::Service,
        Probe::Entity("Conference", Variant::Plain),
        Probe::Entity("TicketType", Variant::Plain),
        Probe::Entity("TicketType", Variant::Restricted),
        Probe::Entity("TicketPurchase", Variant::Plain),
        Probe::Entity("Ticket", Variant::Plain),
        Probe::CreateConference,
        Probe::CreateTicketType,
        Probe::UpdateTicketType,
        Probe::CreateTicketPurchase(Variant::Plain),
        Probe::CreateTicketPurchase(Variant::Complimentary),
        Probe::CreateTicketPurchase(Variant::Restricted),
        Probe::ConfirmPayment,
        Probe::Cancel(Variant::Plain),
        Probe::Cancel(Variant::Paid),
        Probe::Assign,
        Probe::TicketEventsSubscription,
    ];

    fn operation(&self) -> String {
        match self {
            Self::Conference => "Query.conference".into(),
            Self::Conferences => "Query.conferences".into(),
            Self::TicketType(_) => "Query.ticketType".into(),
            Self::ConferenceTicketTypes(_) => "Conference.ticketTypes".into(),
            Self::TicketPurchase => "Query.ticketPurchase".into(),
            Self::TicketPurchases => "Query.ticketPurchases".into(),
            Self::Ticket => "Query.ticket".into(),
            Self::Purchaser => "TicketPurchase.purchaser".into(),
            Self::Attendee => "Ticket.attendee".into(),
            Self::AccessToken => "TicketPurchase.accessToken".into(),
            Self::TicketEventsQuery => "Query.ticketEvents".into(),
            Self::Service => "Query._service".into(),
            Self::Entity(t, _) => format!("Entity.{t}"),
            Self::CreateConference => "Mutation.createConference".into(),
            Self::CreateTicketType => "Mutation.createTicketType".into(),
            Self::UpdateTicketType => "Mutation.updateTicketType".into(),
            Self::CreateTicketPurchase(_) => "Mutation.createTicketPurchase".into(),
            Self::ConfirmPayment => "Mutation.confirmTicketPurchasePayment".into(),
            Self::Cancel(_) => "Mutation.cancelTicketPurchase".into(),
            Self::Assign => "Mutation.assignTicket".into(),
            Self::TicketEventsSubscription => "Subscription.ticketEvents".into(),
        }
    }

    /// The root field the probe needs the target to serve.
    fn root_field(&self) -> &'static str {
        match self {
            Self::Conference | Self::ConferenceTicketTypes(_) => "Query.conference",
            Self::Conferences => "Query.conferences",
            Self::TicketType(_) => "Query.ticketType",
            Self::TicketPurchase | Self::Purchaser | Self::AccessToken => "Query.ticketPurchase",
            Self::TicketPurchases => "Query.ticketPurchases",
            Self::Ticket | Self::Attendee => "Query.ticket",
            Self::TicketEventsQuery => "Query.ticketEvents",
            Self::Service => "Query._service",
            Self::Entity(..) => "Query._entities",
            Self::CreateConference => "Mutation.createConference",
            Self::CreateTicketType => "Mutation.createTicketType",
            Self::UpdateTicketType => "Mutation.updateTicketType",
            Self::CreateTicketPurchase(_) => "Mutation.createTicketPurchase",
            Self::ConfirmPayment => "Mutation.confirmTicketPurchasePayment",
            Self::Cancel(_) => "Mutation.cancelTicketPurchase",
            Self::Assign => "Mutation.assignTicket",
            Self::TicketEventsSubscription => "Subscription.ticketEvents",
        }
    }

    fn takes_access_token(&self) -> bool {
        matches!(
            self,
            Self::TicketPurchase | Self::Ticket | Self::Cancel(_) | Self::Assign
        )
    }

    fn is_mutation(&self) -> bool {
        self.operation().starts_with("Mutation.")
    }

    /// Where the refusal is a `null` rather than an error.
    fn answers_with_null(&self) -> bool {
        matches!(
            self,
            Self::Entity(..) | Self::Purchaser | Self::Attendee | Self::AccessToken
        )
    }

    /// The read operation whose full access lets a mutation say FORBIDDEN instead of
    /// NOT_FOUND (`policy::conceal`).
    fn conceal_read(&self) -> Option<&'static str> {
        match self {
            Self::Cancel(_) => Some("Query.ticketPurchase"),
            Self::Assign => Some("Query.ticket"),
            _ => None,
        }
    }

    fn variant(&self) -> Variant {
        match self {
            Self::TicketType(v)
            | Self::ConferenceTicketTypes(v)
            | Self::Entity(_, v)
            | Self::CreateTicketPurchase(v)
            | Self::Cancel(v) => *v,
            _ => Variant::Plain,
        }
    }

    /// What the table says this caller sees.
    fn expected(&self, who: &Who) -> Seen {
        let rule = rule(&self.operation());
        let presents = match self {
            // Reading the field through the purchase the holder reached with its token, or
            // being handed the token at creation (anyone without a bearer token).
            Self::Purchaser | Self::Attendee => who.presents_token(),
            Self::AccessToken => who.bearer.is_none(),
            _ => self.takes_access_token() && who.presents_token(),
        };
        let is_target_holder = match self {
            Self::AccessToken => who.bearer.is_none(),
            _ => who.kind == Kind::Holder,
        };
        let hidden_or_forbidden = || match self.conceal_read() {
            Some(read) if reach(self::rule(read), who, false) == Reach::Full => {
                Seen::Refused("FORBIDDEN".into())
            }
            _ => Seen::Hidden,
        };
        let seen = match reach(rule, who, presents) {
            Reach::Full => Seen::Allowed,
            Reach::Held if !is_target_holder => hidden_or_forbidden(),
            Reach::Own if who.kind != Kind::Owner => hidden_or_forbidden(),
            Reach::Held | Reach::Own if self.variant() == Variant::Paid => {
                Seen::Refused("FORBIDDEN".into())
            }
            Reach::Held | Reach::Own => Seen::Allowed,
            Reach::Public => match self.variant() {
                Variant::Plain | Variant::Paid => Seen::Allowed,
                Variant::Complimentary => Seen::Refused(
                    if who.bearer.is_none() {
                        "UNAUTHENTICATED"
                    } else {
                        "FORBIDDEN"
                    }
                    .into(),
                ),
                // A restricted type the caller may see is FORBIDDEN to buy; one it may not
                // see does not exist.
                Variant::Restricted => {
                    if matches!(self, Self::CreateTicketPurchase(_))
                        && reach(self::rule("Query.ticketType"), who, false) == Reach::Full
                    {
                        Seen::Refused("FORBIDDEN".into())
                    } else {
                        Seen::Hidden
                    }
                }
            },
            Reach::Refused(code) => Seen::Refused(code.into()),
        };
        match seen {
            Seen::Refused(_) if self.answers_with_null() => Seen::Hidden,
            other => other,
        }
    }
}

/// Objects the probes act on.
struct Fixture<'t> {
    target: &'t Target,
    admin: String,
    owner: String,
    conference: String,
    public_type: String,
    restricted_type: String,
}

struct Purchase {
    id: String,
    ticket: String,
    access_token: Option<String>,
}

const PURCHASE: &str = "mutation($input: CreateTicketPurchaseInput!) {
  createTicketPurchase(input: $input) { id accessToken tickets { id } }
}";

impl<'t> Fixture<'t> {
    async fn new(target: &'t Target, owner_scopes: &[&str]) -> Self {
        let admin = target.admin();
        let conference = target
            .ok(
                Some(&admin),
                "mutation { createConference(input: { name: \"Matrix\", currency: \"EUR\", startsOn: \"2027-05-01\", endsOn: \"2027-05-03\" }) { id } }",
                json!({}),
            )
            .await["createConference"]["id"]
            .as_str()
            .expect("conference")
            .to_owned();
        let ticket_type = |name: &str, price: i64, visibility: &str| {
            json!({ "input": {
                "conferenceId": conference, "name": name,
                "price": { "amount": price, "currency": "EUR" },
                "capacity": 100_000, "visibility": visibility
            } })
        };
        let create_type =
            "mutation($input: CreateTicketTypeInput!) { createTicketType(input: $input) { id } }";
        let public_type = target
            .ok(
                Some(&admin),
                create_type,
                ticket_type("Standard", 1_000, "PUBLIC"),
            )
            .await["createTicketType"]["id"]
            .as_str()
            .expect("type")
            .to_owned();
        let restricted_type = target
            .ok(
                Some(&admin),
                create_type,
                ticket_type("Guest", 0, "RESTRICTED"),
            )
            .await["createTicketType"]["id"]
            .as_str()
            .expect("type")
            .to_owned();
        Self {
            target,
            owner: target.mint("owner", owner_scopes),
            admin,
            conference,
            public_type,
            restricted_type,
        }
    }

    fn purchase_input(&self, ticket_type: &str) -> Value {
        json!({
            "purchaser": { "name": "Ada Lovelace", "email": "ada@example.org" },
            "lines": [{ "ticketTypeId": ticket_type, "quantity": 1 }]
        })
    }

    /// A fresh purchase of one public ticket, made by the owner (`anonymous`: without a
    /// token), its ticket assigned, paid if asked.
    async fn purchase(&self, anonymous: bool, paid: bool) -> Purchase {
        let token = (!anonymous).then_some(self.owner.as_str());
        let data = self
            .target
            .ok(
                token,
                PURCHASE,
                json!({ "input": self.purchase_input(&self.public_type) }),
            )
            .await;
        let created = &data["createTicketPurchase"];
        let purchase = Purchase {
            id: created["id"].as_str().expect("id").to_owned(),
            ticket: created["tickets"][0]["id"]
                .as_str()
                .expect("ticket")
                .to_owned(),
            access_token: created["accessToken"].as_str().map(str::to_owned),
        };
        self.target
            .ok(
                Some(&self.admin),
                "mutation($t: ID!) { assignTicket(ticketId: $t, attendee: { name: \"Grace Hopper\", email: \"grace@example.org\" }) { id } }",
                json!({ "t": purchase.ticket }),
            )
            .await;
        if paid {
            self.target
                .ok(
                    Some(&self.admin),
                    "mutation($id: ID!) { confirmTicketPurchasePayment(id: $id) { id } }",
                    json!({ "id": purchase.id }),
                )
                .await;
        }
        purchase
    }

    /// The cursor after the last event in the log.
    async fn log_end(&self) -> Option<String> {
        let mut after: Option<String> = None;
        loop {
            let data = self
                .target
                .ok(
                    Some(&self.admin),
                    "query($after: String) { ticketEvents(after: $after, first: 100) { edges { cursor } pageInfo { hasNextPage } } }",
                    json!({ "after": after }),
                )
                .await;
            let page = &data["ticketEvents"];
            if let Some(last) = page["edges"]
                .as_array()
                .and_then(|e| e.last())
                .and_then(|e| e["cursor"].as_str())
            {
                after = Some(last.to_owned());
            }
            if page["pageInfo"]["hasNextPage"] != true {
                return after;
            }
        }
    }
}

/// Classifies a response: an error's code (NOT_FOUND as hidden), or what `touched` says.
fn classify(body: &Value, touched: impl FnOnce(&Value) -> Seen) -> Seen {
    if let Some(error) = body["errors"].as_array().and_then(|e| e.first()) {
        let code = error["extensions"]["code"]
            .as_str()
            .unwrap_or("<no code>")
            .to_owned();
        return if code == "NOT_FOUND" {
            Seen::Hidden
        } else {
            Seen::Refused(code)
        };
    }
    touched(&body["data"])
}

fn present(value: &Value) -> Seen {
    if value.is_null() {
        Seen::Hidden
    } else {
        Seen::Allowed
    }
}

fn lists(items: &Value, id: &str) -> Seen {
    if items
        .as_array()
        .into_iter()
        .flatten()
        .any(|item| item["id"] == id || item["node"]["id"] == id)
    {
        Seen::Allowed
    } else {
        Seen::Hidden
    }
}

/// Runs one probe as one caller; returns what it saw.
async fn run_probe(f: &Fixture<'_>, probe: Probe, who: &Who) -> Seen {
    let t = f.target;
    let token = who.token();
    // The target: the holder's is an anonymous purchase, everyone else's the owner's.
    let targets_anonymous = matches!(who.kind, Kind::Holder | Kind::HolderOfAnother);
    let fresh = |paid: bool| f.purchase(targets_anonymous, paid);
    let presented = |target: &Purchase, other: &Option<Purchase>| match who.kind {
        Kind::Holder => target.access_token.clone(),
        Kind::HolderOfAnother => other.as_ref().and_then(|o| o.access_token.clone()),
        _ => None,
    };
    let another = || async {
        if who.kind == Kind::HolderOfAnother {
            Some(f.purchase(true, false).await)
        } else {
            None
        }
    };
    match probe {
        Probe::Conference => {
            let body = t
                .gql(
                    token,
                    "query($id: ID!) { conference(id: $id) { id } }",
                    json!({ "id": f.conference }),
                )
                .await;
            classify(&body, |d| present(&d["conference"]))
        }
        Probe::Conferences => {
            let body = t
                .gql(
                    token,
                    "{ conferences(first: 100) { edges { node { id } } } }",
                    json!({}),
                )
                .await;
            classify(&body, |d| lists(&d["conferences"]["edges"], &f.conference))
        }
        Probe::TicketType(variant) => {
            let id = if variant == Variant::Restricted {
                &f.restricted_type
            } else {
                &f.public_type
            };
            let body = t
                .gql(
                    token,
                    "query($id: ID!) { ticketType(id: $id) { id } }",
                    json!({ "id": id }),
                )
                .await;
            classify(&body, |d| present(&d["ticketType"]))
        }
        Probe::ConferenceTicketTypes(variant) => {
            let id = if variant == Variant::Restricted {
                &f.restricted_type
            } else {
                &f.public_type
            };
            let body = t
                .gql(
                    token,
                    "query($id: ID!) { conference(id: $id) { ticketTypes { id } } }",
                    json!({ "id": f.conference }),
                )
                .await;
            classify(&body, |d| lists(&d["conference"]["ticketTypes"], id))
        }
        Probe::TicketPurchase | Probe::Purchaser | Probe::AccessToken => {
            let target = fresh(false).await;
            let other = another().await;
            let body = t
                .gql(
                    token,
                    "query($id: ID!, $token: String) { ticketPurchase(id: $id, accessToken: $token) { id purchaser { email } accessToken } }",
                    json!({ "id": target.id, "token": presented(&target, &other) }),
                )
                .await;
            match probe {
                Probe::TicketPurchase => classify(&body, |d| present(&d["ticketPurchase"])),
                Probe::Purchaser => {
                    field_seen(f, who, &body, "ticketPurchase", "purchaser", &target).await
                }
                _ => {
                    // Never shown on a read; handed out once, on creation.
                    let shown = &body["data"]["ticketPurchase"]["accessToken"];
                    assert!(
                        shown.is_null(),
                        "{}: accessToken shown on a read: {body:#}",
                        who.name()
                    );
                    let created = t
                        .gql(
                            token,
                            PURCHASE,
                            json!({ "input": f.purchase_input(&f.public_type) }),
                        )
                        .await;
                    classify(&created, |d| {
                        present(&d["createTicketPurchase"]["accessToken"])
                    })
                }
            }
        }
        Probe::Ticket | Probe::Attendee => {
            let target = fresh(false).await;
            let other = another().await;
            let body = t
                .gql(
                    token,
                    "query($id: ID!, $token: String) { ticket(id: $id, accessToken: $token) { id attendee { email } } }",
                    json!({ "id": target.ticket, "token": presented(&target, &other) }),
                )
                .await;
            if probe == Probe::Ticket {
                classify(&body, |d| present(&d["ticket"]))
            } else {
                field_seen(f, who, &body, "ticket", "attendee", &target).await
            }
        }
        Probe::TicketPurchases => {
            // The owner's purchase, found by its reference among however many there are.
            let reference = format!("matrix-{}", uuid::Uuid::now_v7());
            let mut input = f.purchase_input(&f.public_type);
            input["externalReference"] = json!(reference);
            let target = t
                .ok(Some(&f.owner), PURCHASE, json!({ "input": input }))
                .await["createTicketPurchase"]["id"]
                .as_str()
                .expect("id")
                .to_owned();
            let body = t
                .gql(
                    token,
                    "query($r: String) { ticketPurchases(first: 100, externalReference: $r) { edges { node { id } } } }",
                    json!({ "r": reference }),
                )
                .await;
            classify(&body, |d| lists(&d["ticketPurchases"]["edges"], &target))
        }
        Probe::TicketEventsQuery => {
            let body = t
                .gql(
                    token,
                    "{ ticketEvents(first: 1) { edges { cursor } } }",
                    json!({}),
                )
                .await;
            classify(&body, |d| present(&d["ticketEvents"]["edges"][0]))
        }
        Probe::Service => {
            let body = t.gql(token, "{ _service { sdl } }", json!({})).await;
            classify(&body, |d| present(&d["_service"]["sdl"]))
        }
        Probe::Entity(typename, variant) => {
            let id = match (typename, variant) {
                ("Conference", _) => f.conference.clone(),
                ("TicketType", Variant::Restricted) => f.restricted_type.clone(),
                ("TicketType", _) => f.public_type.clone(),
                ("TicketPurchase", _) => fresh(false).await.id,
                _ => fresh(false).await.ticket,
            };
            let query = format!(
                "query($r: [_Any!]!) {{ _entities(representations: $r) {{ ... on {typename} {{ id }} }} }}"
            );
            let body = t
                .gql(
                    token,
                    &query,
                    json!({ "r": [{ "__typename": typename, "id": id }] }),
                )
                .await;
            classify(&body, |d| present(&d["_entities"][0]))
        }
        Probe::TicketEventsSubscription => subscription_seen(t, token).await,
        mutation => {
            let (query, variables) = match mutation {
                Probe::CreateConference => (
                    "mutation { createConference(input: { name: \"M\", currency: \"EUR\", startsOn: \"2027-06-01\", endsOn: \"2027-06-02\" }) { id } }".to_owned(),
                    json!({}),
                ),
                Probe::CreateTicketType => (
                    "mutation($c: ID!) { createTicketType(input: { conferenceId: $c, name: \"M\", price: { amount: 100, currency: \"EUR\" }, capacity: 5 }) { id } }".to_owned(),
                    json!({ "c": f.conference }),
                ),
                Probe::UpdateTicketType => (
                    "mutation($id: ID!) { updateTicketType(id: $id, input: { name: \"Standard\" }) { id } }".to_owned(),
                    json!({ "id": f.public_type }),
                ),
                Probe::CreateTicketPurchase(variant) => {
                    let mut input = f.purchase_input(if variant == Variant::Restricted {
                        &f.restricted_type
                    } else {
                        &f.public_type
                    });
                    input["complimentary"] = json!(variant == Variant::Complimentary);
                    (PURCHASE.to_owned(), json!({ "input": input }))
                }
                Probe::ConfirmPayment => {
                    let target = fresh(false).await;
                    (
                        "mutation($id: ID!) { confirmTicketPurchasePayment(id: $id) { id } }".to_owned(),
                        json!({ "id": target.id }),
                    )
                }
                Probe::Cancel(variant) => {
                    let target = fresh(variant == Variant::Paid).await;
                    let other = another().await;
                    (
                        "mutation($id: ID!, $token: String) { cancelTicketPurchase(id: $id, accessToken: $token) { id status } }".to_owned(),
                        json!({ "id": target.id, "token": presented(&target, &other) }),
                    )
                }
                Probe::Assign => {
                    let target = fresh(false).await;
                    let other = another().await;
                    (
                        "mutation($t: ID!, $token: String) { assignTicket(ticketId: $t, accessToken: $token, attendee: { name: \"Mallory\", email: \"mallory@example.org\" }) { id } }".to_owned(),
                        json!({ "t": target.ticket, "token": presented(&target, &other) }),
                    )
                }
                other => unreachable!("{other:?} is not a mutation probe"),
            };
            let log = f.log_end().await;
            let body = t.gql(token, &query, variables).await;
            let seen = classify(&body, |d| {
                present(
                    d.as_object()
                        .and_then(|o| o.values().next())
                        .unwrap_or(&Value::Null),
                )
            });
            if seen != Seen::Allowed {
                assert_eq!(
                    f.log_end().await,
                    log,
                    "{} refused for {} ({seen:?}) but an event was written: {body:#}",
                    mutation.operation(),
                    who.name()
                );
            }
            seen
        }
    }
}

/// A private field as a caller sees it: through the root field it reached the object with,
/// or, if it may not reach the object there, through the event log if it reads that; `None`
/// (`Hidden`) when the object is out of its reach altogether, which the table then must say.
async fn field_seen(
    f: &Fixture<'_>,
    who: &Who,
    body: &Value,
    root: &str,
    field: &str,
    target: &Purchase,
) -> Seen {
    let object = &body["data"][root];
    if !object.is_null() {
        return present(&object[field]);
    }
    if !who.holds(EVENTS_READ) {
        return Seen::Hidden;
    }
    // The dashboard's view: the purchase in its TicketPurchaseCreated event.
    let mut after: Option<String> = None;
    loop {
        let data = f
            .target
            .ok(
                who.token(),
                "query($after: String) { ticketEvents(after: $after, first: 100) {
                    edges { cursor node { ... on TicketPurchaseCreated { purchase { id purchaser { email } tickets { id attendee { email } } } } } }
                    pageInfo { hasNextPage } } }",
                json!({ "after": after }),
            )
            .await;
        let edges = data["ticketEvents"]["edges"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for edge in &edges {
            let purchase = &edge["node"]["purchase"];
            if purchase["id"] == target.id.as_str() {
                return present(if field == "purchaser" {
                    &purchase["purchaser"]
                } else {
                    &purchase["tickets"][0]["attendee"]
                });
            }
        }
        after = edges
            .last()
            .and_then(|e| e["cursor"].as_str())
            .map(str::to_owned);
        if data["ticketEvents"]["pageInfo"]["hasNextPage"] != true || after.is_none() {
            panic!("the purchase's event is missing from the log");
        }
    }
}

async fn subscription_seen(t: &Target, token: Option<&str>) -> Seen {
    let init = match token {
        Some(token) => json!({ "Authorization": format!("Bearer {token}") }),
        None => json!({}),
    };
    let mut sub = WsSubscription::open(
        &t.ws_url,
        "graphql-transport-ws",
        init,
        "subscription($after: String) { ticketEvents(after: $after) { __typename } }",
        json!({ "after": platform::Cursor::encode_position("ticket-event", 0) }),
    )
    .await
    .expect("the connection is accepted");
    let seen = match sub.next_payload(Duration::from_secs(10)).await {
        Ok(payload) => classify(&payload, |d| present(&d["ticketEvents"])),
        Err(message) => {
            let error: Value = serde_json::from_str(&message).unwrap_or_default();
            classify(&json!({ "errors": error["payload"] }), |_| {
                panic!("subscription ended without an answer: {message}")
            })
        }
    };
    sub.close().await;
    seen
}

/// What a run of the matrix found.
pub struct MatrixReport {
    /// (operation, caller) pairs checked.
    pub checked: usize,
    /// Each call whose outcome differs from the table, described.
    pub mismatches: Vec<String>,
}

impl MatrixReport {
    pub fn assert_clean(&self, at_least: usize) {
        assert!(
            self.mismatches.is_empty(),
            "{} of {} calls disagree with the policy table:\n{}",
            self.mismatches.len(),
            self.checked,
            self.mismatches.join("\n")
        );
        assert!(
            self.checked >= at_least,
            "only {} calls were checked",
            self.checked
        );
    }
}

/// Every caller through every probe the target serves.
pub async fn run_matrix(target: &Target, owner_scopes: &[&'static str]) -> MatrixReport {
    let served = target.root_fields().await;
    let f = Fixture::new(target, owner_scopes).await;
    let mut callers = vec![
        Who {
            kind: Kind::Anonymous,
            bearer: None,
            scopes: vec![],
        },
        Who {
            kind: Kind::Holder,
            bearer: None,
            scopes: vec![],
        },
        Who {
            kind: Kind::HolderOfAnother,
            bearer: None,
            scopes: vec![],
        },
    ];
    for scope in SCOPES {
        callers.push(Who {
            kind: Kind::ScopeAlone(scope),
            bearer: Some(target.mint(&format!("only-{scope}"), &[scope])),
            scopes: vec![scope],
        });
    }
    callers.push(Who {
        kind: Kind::Stranger,
        bearer: Some(target.mint("stranger", owner_scopes)),
        scopes: owner_scopes.to_vec(),
    });
    callers.push(Who {
        kind: Kind::Owner,
        bearer: Some(f.owner.clone()),
        scopes: owner_scopes.to_vec(),
    });
    callers.push(Who {
        kind: Kind::Admin,
        bearer: Some(f.admin.clone()),
        scopes: vec![ADMIN, EVENTS_READ],
    });

    let mut mismatches = Vec::new();
    let mut checked = 0;
    for probe in Probe::ALL {
        if !served.contains(probe.root_field()) {
            continue;
        }
        for who in &callers {
            checked += 1;
            let expected = probe.expected(who);
            let seen = run_probe(&f, *probe, who).await;
            if seen != expected {
                mismatches.push(format!(
                    "{} ({probe:?}) as {}: the table says {expected:?}, the server did {seen:?}",
                    probe.operation(),
                    who.name()
                ));
            }
        }
    }
    MatrixReport {
        checked,
        mismatches,
    }
}

/// Every root field the target serves is in the table (`_entities` as one row per entity
/// type), and every row of the table is probed.
pub async fn assert_table_covers_the_schema(target: &Target) {
    let in_table: BTreeSet<&str> = POLICY.iter().map(|r| r.operation).collect();
    let mut missing = Vec::new();
    for field in target.root_fields().await {
        if field == "Query._entities" {
            for entity in target.entity_types().await {
                if !in_table.contains(format!("Entity.{entity}").as_str()) {
                    missing.push(format!("_entities for {entity}"));
                }
            }
        } else if !in_table.contains(field.as_str()) {
            missing.push(field);
        }
    }
    assert!(
        missing.is_empty(),
        "operations the policy table does not list: {missing:?}"
    );
    let probed: BTreeSet<String> = Probe::ALL.iter().map(Probe::operation).collect();
    let unprobed: Vec<&str> = in_table
        .iter()
        .filter(|op| !probed.contains(**op))
        .copied()
        .collect();
    assert!(
        unprobed.is_empty(),
        "rows of the policy table no probe checks: {unprobed:?}"
    );
}
