//! End to end: the CRM books its sponsors' complimentary tickets in a real ticketing server,
//! over HTTP, exactly as much as the rules say, once.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_gold_sponsor_that_signs_and_pays_both_invoices_gets_five_tickets_booked_once() {
    let w = World::new(50).await;
    let sponsor = w.crm.create_sponsor("Acme", "Gold", None).await;
    w.crm.sign(&sponsor, None).await;
    let first = w.crm.issue_invoice(&sponsor, 600_000).await;
    let second = w.crm.issue_invoice(&sponsor, 400_000).await;
    w.crm.pay(&first).await;
    // One invoice still open: not onboarded, nothing due.
    let before = w.crm.allocation(&sponsor).await;
    assert_eq!(before["status"], "NOT_DUE");
    assert_eq!(before["ticketsRequested"], 0);
    w.crm.pay(&second).await;

    let allocation = w.crm.wait_until_booked(&sponsor).await;
    assert_eq!(allocation["ticketsAllowed"], 5);
    assert_eq!(allocation["ticketsBooked"], 5);
    let reference = format!("sponsor-allocation:{sponsor}:1");
    assert_eq!(
        allocation["requests"][0]["externalReference"],
        reference.as_str()
    );

    let purchases = w.ticketing.purchases(&w.conference).await;
    assert_eq!(purchases.len(), 1, "{purchases:#?}");
    let purchase = &purchases[0];
    assert_eq!(purchase["complimentary"], true);
    assert_eq!(purchase["status"], "PAID");
    assert_eq!(purchase["ticketCount"], 5);
    assert_eq!(purchase["externalReference"], reference.as_str());
    assert_eq!(purchase["purchaser"]["email"], "grace@acme.example.org");
    assert_eq!(allocation["purchaseIds"], json!([purchase["id"]]));

    // Paying again, or any later change that does not grow the allowance, books nothing more.
    w.crm.pay(&second).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(w.ticketing.purchases(&w.conference).await.len(), 1);
    let events = w.crm.event_types().await;
    for expected in [
        "SponsorOnboarded",
        "TicketAllocationRequested",
        "TicketAllocationBooked",
    ] {
        assert_eq!(
            events.iter().filter(|e| *e == expected).count(),
            1,
            "{events:?}"
        );
    }
}

#[tokio::test]
async fn a_silver_sponsor_upgraded_to_gold_after_booking_gets_exactly_two_more() {
    let w = World::new(50).await;
    let sponsor = w.crm.create_sponsor("Initech", "silver", None).await;
    w.crm.onboard(&sponsor).await;
    let booked = w.crm.wait_until_booked(&sponsor).await;
    assert_eq!(booked["ticketsBooked"], 3);

    w.crm
        .ok(
            Some(&w.crm.writer()),
            "mutation($s: ID!) { changeSponsorLevel(sponsorId: $s, level: \"Gold\") { level { name } } }",
            json!({ "s": sponsor }),
        )
        .await;
    let allocation = w
        .crm
        .wait_for_allocation(&sponsor, |a| {
            a["status"] == "BOOKED" && a["ticketsBooked"] == 5
        })
        .await;
    assert_eq!(allocation["requests"][1]["quantity"], 2);
    let purchases = w.ticketing.purchases(&w.conference).await;
    let mut counts: Vec<i64> = purchases
        .iter()
        .filter_map(|p| p["ticketCount"].as_i64())
        .collect();
    counts.sort();
    assert_eq!(counts, vec![2, 3]);
    assert_eq!(w.ticketing.tickets_issued(&w.conference).await, 5);
}

#[tokio::test]
async fn a_shrinking_allowance_is_flagged_for_review_and_books_nothing() {
    let w = World::new(50).await;
    let sponsor = w.crm.create_sponsor("Globex", "Gold", None).await;
    w.crm.onboard(&sponsor).await;
    w.crm.wait_until_booked(&sponsor).await;

    w.crm
        .ok(
            Some(&w.crm.writer()),
            "mutation($s: ID!) { changeSponsorLevel(sponsorId: $s, level: \"Bronze\") { id } }",
            json!({ "s": sponsor }),
        )
        .await;
    let allocation = w.crm.allocation(&sponsor).await;
    assert_eq!(allocation["status"], "BOOKED");
    assert_eq!(allocation["ticketsAllowed"], 1);
    assert_eq!(allocation["ticketsBooked"], 5);
    assert_eq!(allocation["excessTickets"], 4);
    assert_eq!(allocation["needsReview"], true);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(w.ticketing.tickets_issued(&w.conference).await, 5);
    assert!(
        w.crm
            .event_types()
            .await
            .contains(&"TicketAllowanceExceeded".to_owned())
    );
}

#[tokio::test]
async fn early_signers_get_an_extra_ticket_and_an_admin_override_wins() {
    let w = World::new(50).await;
    let cut_off = day_from_today(-30);
    w.crm
        .ok(
            Some(&w.crm.admin()),
            "mutation($input: SetEarlySigningRuleInput!) { setEarlySigningRule(input: $input) { earlySigningRule { signedBefore extraTickets } } }",
            json!({ "input": { "conferenceId": w.conference, "signedBefore": cut_off, "extraTickets": 1 } }),
        )
        .await;
    let early = w.crm.create_sponsor("Early Bird GmbH", "Gold", None).await;
    w.crm.sign(&early, Some(&day_from_today(-31))).await;
    let invoice = w.crm.issue_invoice(&early, 1_000_000).await;
    w.crm.pay(&invoice).await;
    let allocation = w.crm.wait_until_booked(&early).await;
    assert_eq!(allocation["ticketsAllowed"], 6);
    assert_eq!(allocation["ticketsBooked"], 6);

    let late = w.crm.create_sponsor("Late Ltd", "Bronze", None).await;
    w.crm.sign(&late, Some(&cut_off)).await;
    let invoice = w.crm.issue_invoice(&late, 200_000).await;
    w.crm.pay(&invoice).await;
    assert_eq!(w.crm.wait_until_booked(&late).await["ticketsBooked"], 1);

    // The override replaces every rule: 4 in all, so 3 more.
    let data = w
        .crm
        .ok(
            Some(&w.crm.admin()),
            "mutation($s: ID!) { setTicketAllowanceOverride(sponsorId: $s, tickets: 4) { ticketAllowanceOverride ticketAllocation { ticketsAllowed } } }",
            json!({ "s": late }),
        )
        .await;
    assert_eq!(
        data["setTicketAllowanceOverride"]["ticketAllocation"]["ticketsAllowed"],
        4
    );
    let allocation = w
        .crm
        .wait_for_allocation(&late, |a| {
            a["status"] == "BOOKED" && a["ticketsBooked"] == 4
        })
        .await;
    assert_eq!(allocation["requests"][1]["quantity"], 3);
    assert_eq!(w.ticketing.tickets_issued(&w.conference).await, 10);
}

#[tokio::test]
async fn raising_a_levels_allowance_tops_up_its_onboarded_sponsors() {
    let w = World::new(50).await;
    let a = w.crm.create_sponsor("A", "Bronze", None).await;
    let b = w.crm.create_sponsor("B", "Bronze", None).await;
    w.crm.onboard(&a).await;
    w.crm.wait_until_booked(&a).await;
    let data = w
        .crm
        .ok(
            Some(&w.crm.admin()),
            "mutation { updateSponsorshipLevel(name: \"bronze\", input: { ticketAllowance: 2, price: { amount: 250000, currency: \"EUR\" } }) { name ticketAllowance price { amount currency } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["updateSponsorshipLevel"],
        json!({ "name": "Bronze", "ticketAllowance": 2, "price": { "amount": 250000, "currency": "EUR" } })
    );
    w.crm
        .wait_for_allocation(&a, |x| x["status"] == "BOOKED" && x["ticketsBooked"] == 2)
        .await;
    // B is not onboarded: nothing is due for it.
    assert_eq!(w.crm.allocation(&b).await["status"], "NOT_DUE");
    assert_eq!(w.ticketing.tickets_issued(&w.conference).await, 2);

    let levels = w
        .crm
        .ok(
            Some(&w.crm.reader()),
            "{ sponsorshipLevels { name ticketAllowance } }",
            json!({}),
        )
        .await;
    assert_eq!(
        levels["sponsorshipLevels"],
        json!([
            { "name": "Gold", "ticketAllowance": 5 },
            { "name": "Silver", "ticketAllowance": 3 },
            { "name": "Bronze", "ticketAllowance": 2 }
        ])
    );
}

#[tokio::test]
async fn sponsors_filter_by_level_onboarding_and_allocation_status_and_paginate() {
    let w = World::new(50).await;
    let gold = w.crm.create_sponsor("G", "Gold", None).await;
    let _silver = w.crm.create_sponsor("S", "Silver", None).await;
    let _bronze = w.crm.create_sponsor("B", "Bronze", None).await;
    w.crm.onboard(&gold).await;
    w.crm.wait_until_booked(&gold).await;
    let query = "query($level: String, $onboarded: Boolean, $status: TicketAllocationStatus, $after: String, $first: Int) {
        sponsors(level: $level, onboarded: $onboarded, allocationStatus: $status, after: $after, first: $first) {
            pageInfo { hasNextPage endCursor } nodes { name }
        } }";
    let r = w.crm.reader();
    let names = |data: serde_json::Value| data["sponsors"]["nodes"].clone();
    assert_eq!(
        names(w.crm.ok(Some(&r), query, json!({ "level": "gold" })).await),
        json!([{ "name": "G" }])
    );
    assert_eq!(
        names(
            w.crm
                .ok(Some(&r), query, json!({ "onboarded": false }))
                .await
        ),
        json!([{ "name": "S" }, { "name": "B" }])
    );
    assert_eq!(
        names(
            w.crm
                .ok(Some(&r), query, json!({ "status": "BOOKED" }))
                .await
        ),
        json!([{ "name": "G" }])
    );
    let page = w.crm.ok(Some(&r), query, json!({ "first": 2 })).await;
    assert_eq!(page["sponsors"]["pageInfo"]["hasNextPage"], true);
    let cursor = page["sponsors"]["pageInfo"]["endCursor"].clone();
    let rest = w
        .crm
        .ok(Some(&r), query, json!({ "first": 2, "after": cursor }))
        .await;
    assert_eq!(names(rest.clone()), json!([{ "name": "B" }]));
    assert_eq!(rest["sponsors"]["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn without_ticketing_the_crm_tracks_sponsors_and_says_allocations_are_not_configured() {
    // Registered while ticketing was configured; then the CRM runs without it.
    let w = World::new(10).await;
    let conference = w.conference.clone();
    let crm = w.crm.without_ticketing().await;
    let sponsor = crm.create_sponsor("Solo", "Gold", Some(&conference)).await;
    crm.onboard(&sponsor).await;
    let allocation = crm.allocation(&sponsor).await;
    assert_eq!(allocation["status"], "PENDING");
    assert_eq!(allocation["ticketsAllowed"], 5);
    assert_eq!(allocation["attempts"], 0);
    assert!(
        allocation["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("ticketing is not configured"),
        "{allocation:#}"
    );
}

#[tokio::test]
async fn without_a_configured_token_the_crm_signs_its_own_service_token() {
    let ticketing = TicketingServer::spawn().await;
    let (conference, ticket_type) = ticketing.conference_with_sponsor_tickets(10).await;
    let crm = CrmServer::spawn_with(Some(ticketing.url()), |s| s.ticketing_token = None).await;
    crm.configure_sponsor_tickets(&conference, &ticket_type)
        .await;
    let sponsor = crm.create_sponsor("Acme", "Silver", None).await;
    crm.onboard(&sponsor).await;
    assert_eq!(crm.wait_until_booked(&sponsor).await["ticketsBooked"], 3);
    assert_eq!(ticketing.tickets_issued(&conference).await, 3);
}
