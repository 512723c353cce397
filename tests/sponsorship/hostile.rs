//! The CRM under a client that sends mutations as fast as it can: past its burst it gets 429
//! with `Retry-After` and `RATE_LIMITED`, nothing is written, and every other client is served
//! at once. And the other side: the CRM's own bookings at ticketing draw from the bucket of
//! its token's subject, so an anonymous flood from the same machine cannot stop them.

use std::time::{Duration, Instant};

use platform::rate_limit::RateLimits;
use serde_json::{Value, json};

use crate::support::*;

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

async fn post(url: &str, token: Option<&str>, query: &str, variables: Value) -> Answer {
    let mut request = reqwest::Client::new()
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("text").parse().expect("whole seconds"));
    Answer {
        status,
        retry_after,
        body: response.json().await.unwrap_or(Value::Null),
    }
}

const CREATE_SPONSOR: &str =
    "mutation($input: CreateSponsorInput!) { createSponsor(input: $input) { id } }";

fn sponsor_input(name: &str) -> Value {
    json!({ "input": {
        "name": name, "level": "Bronze",
        "contactName": "Grace Hopper", "contactEmail": "grace@acme.example.org"
    } })
}

#[tokio::test]
async fn crm_mutations_past_a_clients_burst_get_429_and_other_clients_are_served() {
    let ticketing = TicketingServer::spawn().await;
    let (conference, ticket_type) = ticketing.conference_with_sponsor_tickets(100).await;
    let crm = CrmServer::spawn_with(Some(ticketing.url()), |s| {
        s.rate_limits = RateLimits {
            mutations_per_minute: 30,
            mutation_burst: 4,
        };
    })
    .await;
    crm.configure_sponsor_tickets(&conference, &ticket_type)
        .await;

    let writer = crm.writer();
    for i in 0..4 {
        let answer = post(
            &crm.url(),
            Some(&writer),
            CREATE_SPONSOR,
            sponsor_input(&format!("Sponsor {i}")),
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.body.get("errors").is_none(), "{}", answer.body);
    }
    let before = footprint(&crm.database_url).await;
    let started = Instant::now();
    let refused = post(
        &crm.url(),
        Some(&writer),
        CREATE_SPONSOR,
        sponsor_input("One too many"),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(error_code(&refused.body), "RATE_LIMITED");
    let wait = refused.retry_after.expect("Retry-After");
    assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    assert_eq!(
        footprint(&crm.database_url).await,
        before,
        "a refused mutation wrote"
    );

    // Reading is not limited; another client (the admin) writes at once.
    let sponsors = post(
        &crm.url(),
        Some(&crm.reader()),
        "{ sponsors(first: 50) { nodes { id } } }",
        json!({}),
    )
    .await;
    assert_eq!(sponsors.status, 200, "{}", sponsors.body);
    assert_eq!(
        sponsors.body["data"]["sponsors"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(4),
        "{}",
        sponsors.body
    );
    let admin = post(
        &crm.url(),
        Some(&crm.admin()),
        "mutation($n: String!, $input: UpdateSponsorshipLevelInput!) { updateSponsorshipLevel(name: $n, input: $input) { ticketAllowance } }",
        json!({ "n": "Gold", "input": { "ticketAllowance": 6 } }),
    )
    .await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    assert!(admin.body.get("errors").is_none(), "{}", admin.body);
    // The writer, having waited as told, writes again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let again = post(
        &crm.url(),
        Some(&writer),
        CREATE_SPONSOR,
        sponsor_input("Patient"),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body.get("errors").is_none(), "{}", again.body);
}

/// Ticketing with its default limits: an anonymous flood from this machine uses up the
/// address's bucket; the CRM, on the same machine, still books, from its subject's bucket.
#[tokio::test]
async fn the_crms_bookings_are_not_stopped_by_an_anonymous_flood_at_ticketing() {
    let w = World::new(50).await;
    let mut refused = None;
    // The burst, and the few more the bucket refills while they are sent.
    for attempt in 0..RateLimits::default().mutation_burst * 2 {
        let answer = post(
            &w.ticketing.url(),
            None,
            "mutation($id: ID!) { cancelTicketPurchase(id: $id, accessToken: \"forged\") { id } }",
            json!({ "id": uuid::Uuid::new_v4() }),
        )
        .await;
        if answer.status == 429 {
            refused = Some((attempt, answer));
            break;
        }
    }
    let (attempt, answer) = refused.expect("the flood was never refused");
    assert!(
        attempt >= RateLimits::default().mutation_burst,
        "refused after {attempt}"
    );
    assert_eq!(error_code(&answer.body), "RATE_LIMITED");

    let sponsor = w.crm.create_sponsor("Acme", "Gold", None).await;
    w.crm.onboard(&sponsor).await;
    let allocation = w.crm.wait_until_booked(&sponsor).await;
    assert_eq!(allocation["ticketsBooked"], 5, "{allocation:#}");
    // Booked at the first try: never refused.
    assert_eq!(allocation["requests"][0]["attempts"], 1, "{allocation:#}");
}

/// `levels` nested `invoices { sponsor { … } }` lists under a page of 100 sponsors.
fn invoice_walk(levels: usize) -> String {
    let mut inner = String::from("id");
    for _ in 0..levels - 1 {
        inner = format!("id sponsor {{ invoices {{ {inner} }} }}");
    }
    format!("{{ sponsors(first: 100) {{ nodes {{ invoices {{ {inner} }} }} }} }}")
}

/// Issue 14 at the CRM: the dashboard's sponsor board passes every limit; a deep walk through
/// sponsors and invoices is refused by its cost, and documents over the token, directive,
/// alias and root field limits get one error each; after each the CRM serves as usual.
#[tokio::test]
async fn the_crm_refuses_dear_and_oversized_documents_and_serves_the_board() {
    let crm = CrmServer::spawn(None).await;
    let reader = crm.writer();
    let board = "query SponsorBoard($conferenceId: ID!) {
      sponsorshipLevels { name rank ticketAllowance price { amount currency } }
      sponsors(conferenceId: $conferenceId, first: 100) { nodes { ...BoardSponsor } }
    }
    fragment BoardSponsor on Sponsor {
      id name contactName onboarded
      level { name price { amount currency } }
      contract { status }
      invoices { id status dueOn amount { amount currency } }
      ticketAllocation { status ticketsAllowed ticketsBooked attempts reason }
      ticketPurchases { id }
    }";
    let normal = |answer: &Answer| {
        assert_eq!(answer.status, 200, "{:#}", answer.body);
        assert!(answer.body.get("errors").is_none(), "{:#}", answer.body);
    };
    normal(
        &post(
            &crm.url(),
            Some(&reader),
            board,
            json!({ "conferenceId": "00000000-0000-0000-0000-000000000000" }),
        )
        .await,
    );
    // Four levels of invoices (declared 4 per sponsor): 100 x 425 = 42,500, under 50,000.
    normal(&post(&crm.url(), Some(&reader), &invoice_walk(4), json!({})).await);

    let aliases: String = (0..65).map(|i| format!("a{i}: __typename ")).collect();
    let roots: String = (0..21)
        .map(|i| format!("l{i}: sponsorshipLevels {{ name }} "))
        .collect();
    for (document, code) in [
        (invoice_walk(5), "COST_LIMIT_EXCEEDED"),
        (
            format!(
                "{{ sponsorshipLevels {{ name {} }} }}",
                "@unknown ".repeat(5_000)
            ),
            "DIRECTIVE_LIMIT_EXCEEDED",
        ),
        (
            format!("{{ {} }}", "a ".repeat(100_000)),
            "TOKEN_LIMIT_EXCEEDED",
        ),
        (format!("{{ {aliases} }}"), "MAX_ALIASES_EXCEEDED"),
        (format!("{{ {roots} }}"), "ROOT_FIELD_LIMIT_EXCEEDED"),
    ] {
        let started = Instant::now();
        let answer = post(&crm.url(), Some(&reader), &document, json!({})).await;
        assert!(started.elapsed() < Duration::from_secs(1), "{code}");
        assert_eq!(
            answer.body["errors"].as_array().map(Vec::len),
            Some(1),
            "{code}: {:#}",
            answer.body
        );
        assert_eq!(error_code(&answer.body), code);
        if code == "COST_LIMIT_EXCEEDED" {
            let cost = &answer.body["errors"][0]["extensions"]["cost"];
            assert_eq!(cost["limit"], 50_000);
            assert!(
                cost["estimated"].as_u64().expect("estimated") > 50_000,
                "{cost}"
            );
        }
        normal(
            &post(
                &crm.url(),
                Some(&reader),
                "{ sponsorshipLevels { name } }",
                json!({}),
            )
            .await,
        );
    }
}
