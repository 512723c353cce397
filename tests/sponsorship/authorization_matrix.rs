//! The authorization matrix, driven by the CRM's policy table (`crm::api::policy::POLICY`)
//! and by the schema the server serves: every field of `Query`, `Mutation` and
//! `Subscription` (read by introspection from the running CRM) must have a row, and every row
//! is run for every kind of caller against a real CRM, which books through a real ticketing.
//! A caller the row admits must succeed; any other gets exactly the refusal the row
//! prescribes (`UNAUTHENTICATED` without a token, `FORBIDDEN` with one, or `null`), with
//! nothing written, and the same refusal for an id that exists as for one that does not.
//!
//! The CRM has no notion of an object's owner (see the policy's docs), so "another client
//! with the same scopes" is a caller of its own: it must be treated exactly like the first.

use std::collections::BTreeSet;

use crm::api::policy::{Denial, POLICY, Rule};
use serde_json::{Value, json};

use crate::support::*;

/// A kind of caller, and the scopes it holds once implications are applied, written out here
/// (not computed by the CRM's code) so the test checks the implications too.
struct Profile {
    name: &'static str,
    subject: &'static str,
    /// `None`: no bearer token at all.
    scopes: Option<&'static [&'static str]>,
    effective: &'static [&'static str],
}

const PROFILES: &[Profile] = &[
    Profile {
        name: "anonymous",
        subject: "",
        scopes: None,
        effective: &[],
    },
    Profile {
        name: "another service's admin",
        subject: "box-office",
        scopes: Some(&["tickets:admin", "tickets:read", "events:read"]),
        effective: &[],
    },
    Profile {
        name: "crm:read",
        subject: "dashboard",
        scopes: Some(&["crm:read"]),
        effective: &["crm:read"],
    },
    Profile {
        name: "crm:write",
        subject: "sales-1",
        scopes: Some(&["crm:write"]),
        effective: &["crm:read", "crm:write"],
    },
    Profile {
        name: "crm:write, another client",
        subject: "sales-2",
        scopes: Some(&["crm:write"]),
        effective: &["crm:read", "crm:write"],
    },
    Profile {
        name: "crm:admin",
        subject: "crm-admin",
        scopes: Some(&["crm:admin"]),
        effective: &["crm:read", "crm:write", "crm:admin"],
    },
    Profile {
        name: "crm:read crm:write crm:admin",
        subject: "launcher-admin",
        scopes: Some(&["crm:read", "crm:write", "crm:admin"]),
        effective: &["crm:read", "crm:write", "crm:admin"],
    },
];

impl Profile {
    fn token(&self) -> Option<String> {
        self.scopes.map(|scopes| token(self.subject, scopes))
    }

    /// What the table says for this caller: admitted, or the refusal expected.
    fn verdict(&self, rule: &Rule) -> Result<(), &'static str> {
        if rule.admits_anyone() || rule.scopes().any(|s| self.effective.contains(&s)) {
            Ok(())
        } else if self.scopes.is_none() {
            Err("UNAUTHENTICATED")
        } else {
            Err("FORBIDDEN")
        }
    }
}

/// The CRM under test and the objects the calls act on. One conference where bookings work
/// (with one sponsor booked, whose purchase the federation rows resolve) and one whose sponsor
/// ticket type is sold out, so bookings there fail and can be retried.
struct Env {
    w: World,
    /// When set, every call goes through a gateway composing ticketing and the CRM.
    via_gateway: Option<Gateway>,
    failing_conference: String,
    booked_sponsor: String,
    booked_purchase: String,
    /// The cursor of the first event: a subscriber resuming after it has something to read.
    first_cursor: String,
}

impl Env {
    async fn new() -> Self {
        let w = World::new(10).await;
        let (failing_conference, sold_out) = w.ticketing.conference_with_sponsor_tickets(0).await;
        w.crm
            .configure_sponsor_tickets(&failing_conference, &sold_out)
            .await;
        let booked_sponsor = w
            .crm
            .create_sponsor("Booked", "Bronze", Some(&w.conference))
            .await;
        w.crm.onboard(&booked_sponsor).await;
        let booked = w.crm.wait_until_booked(&booked_sponsor).await;
        let booked_purchase = booked["purchaseIds"][0]
            .as_str()
            .expect("purchase")
            .to_owned();
        let page = w
            .crm
            .ok(
                Some(&w.crm.reader()),
                "{ sponsorEvents(first: 1) { pageInfo { endCursor } } }",
                json!({}),
            )
            .await;
        let first_cursor = page["sponsorEvents"]["pageInfo"]["endCursor"]
            .as_str()
            .expect("cursor")
            .to_owned();
        Self {
            w,
            via_gateway: None,
            failing_conference,
            booked_sponsor,
            booked_purchase,
            first_cursor,
        }
    }

    /// The same world, called through a gateway in front of both services.
    async fn through_the_gateway() -> Self {
        let mut env = Self::new().await;
        env.via_gateway = Some(Gateway::compose(&env.w).await);
        env
    }

    fn crm(&self) -> &CrmServer {
        &self.w.crm
    }

    /// A sponsor of the conference where bookings work, never onboarded here: nothing the
    /// calls do to it makes the allocation worker write in the background.
    async fn draft_sponsor(&self) -> String {
        self.crm()
            .create_sponsor("Matrix", "Gold", Some(&self.w.conference))
            .await
    }

    async fn sent_sponsor(&self) -> String {
        let sponsor = self.draft_sponsor().await;
        self.crm()
            .ok(
                Some(&self.crm().admin()),
                "mutation($s: ID!) { sendContract(sponsorId: $s) { id } }",
                json!({ "s": sponsor }),
            )
            .await;
        sponsor
    }

    /// An ISSUED invoice of an unsigned sponsor: paying it onboards nobody.
    async fn open_invoice(&self) -> String {
        let sponsor = self.draft_sponsor().await;
        self.crm().issue_invoice(&sponsor, 100_000).await
    }

    /// A sponsor whose booking failed for good (its ticket type is sold out).
    async fn failed_sponsor(&self) -> String {
        let sponsor = self
            .crm()
            .create_sponsor("Unlucky", "Bronze", Some(&self.failing_conference))
            .await;
        self.crm().onboard(&sponsor).await;
        self.settle(&sponsor).await;
        sponsor
    }

    /// Waits until the allocation worker has nothing left to do for `sponsor`, so nothing is
    /// written in the background while the next call is judged.
    async fn settle(&self, sponsor: &str) {
        self.crm()
            .wait_for_allocation(sponsor, |a| a["status"] == "FAILED")
            .await;
    }
}

/// One request: a query (or subscription) and its variables, and where its answer is.
struct Call {
    query: String,
    variables: Value,
    /// Where in `data` the operation answers (a JSON pointer, e.g. `/sponsor` or
    /// `/_entities/0/sponsor`): present for an admitted caller, `null` for a refused one.
    answer: String,
    subscription: bool,
    /// A sponsor whose booking the call may restart: settled afterwards.
    settles: Option<String>,
}

fn call(query: &str, variables: Value, answer: &str) -> Call {
    Call {
        query: query.to_owned(),
        variables,
        answer: answer.to_owned(),
        subscription: false,
        settles: None,
    }
}

fn unknown_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The request that exercises `operation`; with `unknown`, the same request about objects
/// that do not exist (for the rows whose refusal must not tell the two apart).
async fn case(env: &Env, operation: &str, unknown: bool) -> Call {
    let crm = env.crm();
    let pick = |known: String| if unknown { unknown_id() } else { known };
    match operation {
        "Query.sponsor" => call(
            "query($id: ID!) { sponsor(id: $id) { id name } }",
            json!({ "id": pick(env.booked_sponsor.clone()) }),
            "/sponsor",
        ),
        "Query.sponsors" => call("{ sponsors { nodes { id } } }", json!({}), "/sponsors"),
        "Query.sponsorshipLevels" => call(
            "{ sponsorshipLevels { name price { amount currency } } }",
            json!({}),
            "/sponsorshipLevels",
        ),
        "Query.invoice" => {
            let invoice = if unknown {
                unknown_id()
            } else {
                env.open_invoice().await
            };
            call(
                "query($id: ID!) { invoice(id: $id) { id status } }",
                json!({ "id": invoice }),
                "/invoice",
            )
        }
        "Query.sponsorConferences" => call(
            "{ sponsorConferences { conferenceId currency } }",
            json!({}),
            "/sponsorConferences",
        ),
        "Query.sponsorEvents" => call(
            "{ sponsorEvents(first: 3) { nodes { __typename } } }",
            json!({}),
            "/sponsorEvents",
        ),
        "Query._service" => call("{ _service { sdl } }", json!({}), "/_service"),
        "Query._entities" => call(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on TicketPurchase { id } } }",
            json!({ "r": [{ "__typename": "TicketPurchase", "id": unknown_id() }] }),
            "/_entities/0",
        ),
        "Entity.Sponsor" => call(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Sponsor { id name } } }",
            json!({ "r": [{ "__typename": "Sponsor", "id": pick(env.booked_sponsor.clone()) }] }),
            "/_entities/0",
        ),
        "Entity.TicketPurchase" => call(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on TicketPurchase { id } } }",
            json!({ "r": [{ "__typename": "TicketPurchase", "id": pick(env.booked_purchase.clone()) }] }),
            "/_entities/0",
        ),
        "TicketPurchase.sponsor" => call(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on TicketPurchase { id sponsor { id } } } }",
            json!({ "r": [{ "__typename": "TicketPurchase", "id": pick(env.booked_purchase.clone()) }] }),
            "/_entities/0/sponsor",
        ),
        "Sponsor.contactName" | "Sponsor.contactEmail" => {
            let field = operation.trim_start_matches("Sponsor.");
            call(
                &format!("query($id: ID!) {{ sponsor(id: $id) {{ id {field} }} }}"),
                json!({ "id": env.booked_sponsor }),
                &format!("/sponsor/{field}"),
            )
        }
        "Subscription.sponsorEvents" => Call {
            query: "subscription($after: String) { sponsorEvents(after: $after) { __typename cursor } }"
                .to_owned(),
            variables: json!({ "after": env.first_cursor }),
            answer: "/sponsorEvents".to_owned(),
            subscription: true,
            settles: None,
        },
        "Mutation.createSponsor" => call(
            "mutation($input: CreateSponsorInput!) { createSponsor(input: $input) { id } }",
            json!({ "input": {
                "name": "Matrix", "level": "Silver", "conferenceId": env.w.conference,
                "contactName": "Grace Hopper", "contactEmail": "grace@acme.example.org"
            } }),
            "/createSponsor",
        ),
        "Mutation.sendContract" | "Mutation.cancelContract" => {
            let name = if operation.ends_with("sendContract") {
                "sendContract"
            } else {
                "cancelContract"
            };
            let sponsor = if unknown {
                unknown_id()
            } else {
                env.draft_sponsor().await
            };
            call(
                &format!("mutation($s: ID!) {{ {name}(sponsorId: $s) {{ contract {{ status }} }} }}"),
                json!({ "s": sponsor }),
                &format!("/{name}"),
            )
        }
        "Mutation.signContract" => {
            let sponsor = if unknown {
                unknown_id()
            } else {
                env.sent_sponsor().await
            };
            call(
                "mutation($s: ID!) { signContract(sponsorId: $s) { contract { status } } }",
                json!({ "s": sponsor }),
                "/signContract",
            )
        }
        "Mutation.issueInvoice" => {
            let sponsor = if unknown {
                unknown_id()
            } else {
                env.draft_sponsor().await
            };
            call(
                "mutation($input: IssueInvoiceInput!) { issueInvoice(input: $input) { id } }",
                json!({ "input": {
                    "sponsorId": sponsor, "amount": { "amount": 250_000, "currency": "EUR" },
                    "dueOn": due_on()
                } }),
                "/issueInvoice",
            )
        }
        "Mutation.markInvoicePaid" | "Mutation.voidInvoice" => {
            let name = if operation.ends_with("markInvoicePaid") {
                "markInvoicePaid"
            } else {
                "voidInvoice"
            };
            let invoice = if unknown {
                unknown_id()
            } else {
                env.open_invoice().await
            };
            call(
                &format!("mutation($id: ID!) {{ {name}(id: $id) {{ status }} }}"),
                json!({ "id": invoice }),
                &format!("/{name}"),
            )
        }
        "Mutation.changeSponsorLevel" => {
            let sponsor = if unknown {
                unknown_id()
            } else {
                env.draft_sponsor().await
            };
            call(
                "mutation($s: ID!) { changeSponsorLevel(sponsorId: $s, level: \"Silver\") { id } }",
                json!({ "s": sponsor }),
                "/changeSponsorLevel",
            )
        }
        // Today's price again: an event is logged, no sponsor is topped up.
        "Mutation.updateSponsorshipLevel" => call(
            "mutation { updateSponsorshipLevel(name: \"Gold\", input: { price: { amount: 1000000, currency: \"EUR\" } }) { name } }",
            json!({}),
            "/updateSponsorshipLevel",
        ),
        "Mutation.setTicketAllowanceOverride" => {
            let sponsor = if unknown {
                unknown_id()
            } else {
                env.draft_sponsor().await
            };
            call(
                "mutation($s: ID!) { setTicketAllowanceOverride(sponsorId: $s, tickets: 2) { id } }",
                json!({ "s": sponsor }),
                "/setTicketAllowanceOverride",
            )
        }
        "Mutation.configureSponsorTickets" => call(
            "mutation($input: ConfigureSponsorTicketsInput!) { configureSponsorTickets(input: $input) { conferenceId } }",
            json!({ "input": { "conferenceId": env.w.conference, "ticketTypeId": env.w.ticket_type } }),
            "/configureSponsorTickets",
        ),
        // The conference whose sponsors are never onboarded here: nothing is topped up.
        "Mutation.setEarlySigningRule" => call(
            "mutation($input: SetEarlySigningRuleInput!) { setEarlySigningRule(input: $input) { conferenceId } }",
            json!({ "input": {
                "conferenceId": env.w.conference, "signedBefore": day_from_today(-400), "extraTickets": 1
            } }),
            "/setEarlySigningRule",
        ),
        "Mutation.retryTicketAllocation" => {
            let sponsor = if unknown {
                unknown_id()
            } else {
                env.failed_sponsor().await
            };
            let mut c = call(
                "mutation($s: ID!) { retryTicketAllocation(sponsorId: $s) { id } }",
                json!({ "s": sponsor }),
                "/retryTicketAllocation",
            );
            c.settles = (!unknown).then_some(sponsor);
            c
        }
        other => panic!(
            "the policy has a row for {other} but this test has no request for it: add one to `case` ({crm_url})",
            crm_url = crm.url()
        ),
    }
}

/// The answer of one call: the whole response (for a subscription, its first payload).
async fn run(env: &Env, profile: &Profile, call: &Call) -> Value {
    let token = profile.token();
    if !call.subscription {
        if let Some(gateway) = &env.via_gateway {
            return testkit::gql(
                &reqwest::Client::new(),
                &gateway.task.graphql_url(),
                token.as_deref(),
                &call.query,
                call.variables.clone(),
            )
            .await;
        }
        return env
            .crm()
            .gql(token.as_deref(), &call.query, call.variables.clone())
            .await;
    }
    let ws_url = match &env.via_gateway {
        Some(gateway) => gateway.task.graphql_url().replace("http://", "ws://"),
        None => env.crm().ws_url(),
    };
    let init = match &token {
        Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
        None => json!({}),
    };
    let mut subscription = WsSubscription::open(
        &ws_url,
        "graphql-transport-ws",
        init,
        &call.query,
        call.variables.clone(),
    )
    .await
    .expect("the socket is accepted; the subscription decides");
    let payload = subscription
        .next_payload(WAIT)
        .await
        .unwrap_or_else(|e| panic!("{}: no payload: {e}", profile.name));
    subscription.close().await;
    payload
}

fn codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            e["extensions"]["code"]
                .as_str()
                .unwrap_or("(none)")
                .to_owned()
        })
        .collect()
}

/// The operations the running CRM's schema has, by introspection, and the entity types it
/// resolves.
async fn schema_operations(crm: &CrmServer) -> (BTreeSet<String>, BTreeSet<String>) {
    let data = crm
        .ok(
            None,
            "{ __schema {
                queryType { fields { name } }
                mutationType { fields { name } }
                subscriptionType { fields { name } }
              }
              entity: __type(name: \"_Entity\") { possibleTypes { name } } }",
            json!({}),
        )
        .await;
    let mut operations = BTreeSet::new();
    for (root, key) in [
        ("Query", "queryType"),
        ("Mutation", "mutationType"),
        ("Subscription", "subscriptionType"),
    ] {
        for field in data["__schema"][key]["fields"].as_array().expect("fields") {
            let name = field["name"].as_str().expect("name");
            operations.insert(format!("{root}.{name}"));
        }
    }
    let entities = data["entity"]["possibleTypes"]
        .as_array()
        .expect("entity types")
        .iter()
        .map(|t| format!("Entity.{}", t["name"].as_str().expect("name")))
        .collect();
    (operations, entities)
}

/// The fields each object type named in the table has, by introspection.
async fn object_fields(crm: &CrmServer, type_name: &str) -> BTreeSet<String> {
    let data = crm
        .ok(
            None,
            "query($t: String!) { __type(name: $t) { fields { name } } }",
            json!({ "t": type_name }),
        )
        .await;
    data["__type"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| f["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn is_root(operation: &str) -> bool {
    ["Query.", "Mutation.", "Subscription."]
        .iter()
        .any(|p| operation.starts_with(p))
}

/// The table and the schema name the same operations: a field the table forgot fails here
/// (and is refused by the server), as does a row for something the schema no longer has.
#[tokio::test]
async fn the_policy_table_covers_every_operation_the_schema_has() {
    let crm = CrmServer::spawn(None).await;
    let (operations, entities) = schema_operations(&crm).await;
    let listed: BTreeSet<String> = POLICY.iter().map(|r| r.operation.to_owned()).collect();
    let missing: Vec<_> = operations
        .iter()
        .chain(&entities)
        .filter(|o| !listed.contains(*o))
        .collect();
    assert!(missing.is_empty(), "no policy row for {missing:?}");
    for rule in POLICY {
        let operation = rule.operation;
        if is_root(operation) {
            assert!(
                operations.contains(operation),
                "{operation} is not in the schema"
            );
        } else if let Some(entity) = operation.strip_prefix("Entity.") {
            assert!(
                entities.contains(operation),
                "{entity} is not an entity the CRM resolves"
            );
        } else {
            let (type_name, field) = operation.split_once('.').expect("Type.field");
            assert!(
                object_fields(&crm, type_name).await.contains(field),
                "{operation} is not a field of the schema"
            );
        }
    }
}

/// Every row, every caller, against the real CRM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_admits_and_refuses_exactly_the_callers_the_table_names() {
    check_every_row(&Env::new().await).await;
}

/// The same through the gateway: it forwards each caller's token and adds no authority, so
/// every answer is the CRM's own. Federation internals (`_service`, `_entities`, and what is
/// reached only through them) are not part of the gateway's public schema and are left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_holds_through_the_gateway_too() {
    check_every_row(&Env::through_the_gateway().await).await;
}

async fn check_every_row(env: &Env) {
    let mut checked = 0;
    for rule in POLICY {
        if env.via_gateway.is_some()
            && (rule.operation.starts_with("Entity.")
                || rule.operation.starts_with("Query._")
                || rule.operation == "TicketPurchase.sponsor")
        {
            continue;
        }
        for profile in PROFILES {
            let verdict = profile.verdict(rule);
            // A field row is only reached through its object: callers who cannot read the
            // object are refused there, by the object's own row.
            if !is_root(rule.operation) && !rule.operation.starts_with("Entity.") {
                let parent = match rule.operation {
                    "TicketPurchase.sponsor" => "Entity.TicketPurchase",
                    _ => "Query.sponsor",
                };
                let parent = crm::api::policy::rule_for(parent).expect("parent row");
                if profile.verdict(parent).is_err() {
                    continue;
                }
            }
            let call = case(env, rule.operation, false).await;
            let before = footprint(&env.crm().database_url).await;
            let body = run(env, profile, &call).await;
            let context = format!("{} as {}: {body:#}", rule.operation, profile.name);
            let answer = body["data"].pointer(&call.answer).unwrap_or(&Value::Null);
            match (verdict, rule.denial) {
                (Ok(()), _) => {
                    assert!(body.get("errors").is_none(), "refused: {context}");
                    assert!(!answer.is_null(), "no answer: {context}");
                    if let Some(sponsor) = &call.settles {
                        env.settle(sponsor).await;
                    }
                }
                (Err(code), Denial::Error) => {
                    assert_eq!(codes(&body), [code], "{context}");
                    assert!(answer.is_null(), "answered anyway: {context}");
                    assert_eq!(
                        footprint(&env.crm().database_url).await,
                        before,
                        "written anyway: {context}"
                    );
                    // The refusal says nothing about the object: an id that does not exist
                    // gets the very same answer.
                    let unknown = case(env, rule.operation, true).await;
                    let other = run(env, profile, &unknown).await;
                    assert_eq!(
                        other["errors"][0]["message"], body["errors"][0]["message"],
                        "an unknown id is refused differently: {context} vs {other:#}"
                    );
                    assert_eq!(codes(&other), [code], "{context}");
                }
                (Err(_), Denial::Null) => {
                    assert!(body.get("errors").is_none(), "{context}");
                    assert!(
                        answer.is_null(),
                        "shown to a caller the table does not name: {context}"
                    );
                    let object = call
                        .answer
                        .rsplit_once('/')
                        .expect("a field of an object")
                        .0;
                    assert!(
                        body["data"]
                            .pointer(&format!("{object}/id"))
                            .is_some_and(Value::is_string),
                        "the object itself was hidden: {context}"
                    );
                }
            }
            checked += 1;
        }
    }
    eprintln!("{checked} (operation, caller) pairs checked");
    assert!(checked > 100, "only {checked} pairs were checked");
}

/// A gateway composing ticketing and the CRM, as `conftools up` runs it.
struct Gateway {
    task: testkit::ServerTask,
}

impl Gateway {
    async fn compose(w: &World) -> Self {
        use clap::Parser;
        let config = gateway::Config::try_parse_from([
            "gateway".to_owned(),
            "--subgraph".to_owned(),
            format!("ticketing={}", w.ticketing.url()),
            "--subgraph".to_owned(),
            format!("crm={}", w.crm.url()),
            "--mutation-rate-per-minute".to_owned(),
            "0".to_owned(),
        ])
        .expect("gateway configuration");
        let task = testkit::ServerTask::spawn(
            "127.0.0.1:0".parse().expect("address"),
            |listener, shutdown| async move {
                let _ = gateway::run(listener, config, shutdown).await;
            },
        )
        .await;
        Self { task }
    }
}

/// Contact details stay hidden from `crm:read` wherever a sponsor appears: in the event log,
/// live events and through federation, not only through `sponsor(id:)`.
#[tokio::test]
async fn contact_details_are_hidden_from_readers_on_every_path() {
    let env = Env::new().await;
    let crm = env.crm();
    let paths = [
        (
            "{ sponsorEvents(first: 100) { nodes { ... on SponsorCreated { sponsor { contactName contactEmail } } } } }",
            json!({}),
        ),
        (
            "{ sponsors { nodes { contactName contactEmail } } }",
            json!({}),
        ),
        (
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Sponsor { contactName contactEmail } ... on TicketPurchase { sponsor { contactName contactEmail } } } }",
            json!({ "r": [
                { "__typename": "Sponsor", "id": env.booked_sponsor },
                { "__typename": "TicketPurchase", "id": env.booked_purchase },
            ] }),
        ),
        (
            "query($id: ID!) { invoice(id: $id) { sponsor { contactName contactEmail } } }",
            json!({ "id": env.open_invoice().await }),
        ),
    ];
    for (query, variables) in paths {
        let shown = crm.ok(Some(&crm.writer()), query, variables.clone()).await;
        let hidden = crm.ok(Some(&crm.reader()), query, variables).await;
        let text = hidden.to_string();
        assert!(
            !text.contains("grace@acme.example.org") && !text.contains("Grace Hopper"),
            "{query}: {hidden:#}"
        );
        assert!(
            shown.to_string().contains("grace@acme.example.org"),
            "{query}: {shown:#}"
        );
    }
    let init = json!({ "Authorization": format!("Bearer {}", crm.reader()) });
    let mut live = WsSubscription::open(
        &crm.ws_url(),
        "graphql-transport-ws",
        init,
        "subscription { sponsorEvents { ... on SponsorCreated { sponsor { name contactName contactEmail } } } }",
        json!({}),
    )
    .await
    .expect("subscribed");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    env.draft_sponsor().await;
    let event = live.next_payload(WAIT).await.expect("live event");
    assert!(event.get("errors").is_none(), "{event:#}");
    assert_eq!(
        event["data"]["sponsorEvents"]["sponsor"],
        json!({ "name": "Matrix", "contactName": null, "contactEmail": null })
    );
}

/// docs/security.md shows the table the CRM enforces, not an older one.
#[test]
fn the_security_docs_show_the_crm_policy_table_in_force() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/security.md");
    let docs = std::fs::read_to_string(path).expect("docs/security.md");
    assert!(
        docs.contains(crm::api::policy::markdown().trim()),
        "docs/security.md is stale: paste the output of `cargo run -p crm -- --print-policy` into its CRM section"
    );
}
