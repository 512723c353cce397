//! The allocation queue under several workers (the multi-instance set-up): a request is
//! leased to one worker at a time, a lapsed lease passes it on, and a worker that lost its
//! lease cannot record anything.

use std::time::Duration;

use crm::store::AttemptOutcome;
use platform::CommitSignal;
use uuid::Uuid;

use crate::support::*;

#[tokio::test]
async fn two_workers_never_hold_the_same_request_and_a_lapsed_lease_moves_on() {
    // No ticketing URL once the conference is registered: this CRM queues bookings but runs
    // no worker, so the test is the only one claiming.
    let crm = World::new(10).await.crm.without_ticketing().await;
    for name in ["A", "B", "C"] {
        let sponsor = crm.create_sponsor(name, "Gold", None).await;
        crm.onboard(&sponsor).await;
    }
    let one = crm::store::connect(&crm.database_url, 4, CommitSignal::new())
        .await
        .expect("first worker's store");
    let two = crm::store::connect(&crm.database_url, 4, CommitSignal::new())
        .await
        .expect("second worker's store");
    let (owner_one, owner_two) = (Uuid::new_v4(), Uuid::new_v4());
    let lease = Duration::from_millis(600);
    let (a, b) = tokio::join!(
        one.claim_due_requests(owner_one, lease, 10),
        two.claim_due_requests(owner_two, lease, 10)
    );
    let (a, b) = (a.expect("claim"), b.expect("claim"));
    let mut ids: Vec<Uuid> = a.iter().chain(b.iter()).map(|r| r.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(a.len() + b.len(), 3, "every due request is claimed once");
    assert_eq!(ids.len(), 3, "no request is claimed twice");

    // While leased, nobody else gets them.
    assert!(
        two.claim_due_requests(owner_two, lease, 10)
            .await
            .expect("claim")
            .is_empty()
    );

    // The lease lapses (a crashed worker): a new claim takes over, and the first claim can
    // no longer record an outcome. Each claim has its own lease id.
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let takeover = Uuid::new_v4();
    let taken_over = two
        .claim_due_requests(takeover, lease, 10)
        .await
        .expect("claim");
    assert_eq!(taken_over.len(), 3);
    assert!(taken_over.iter().all(|r| r.attempts == 2));
    let (stale_owner, stale) = match a.first() {
        Some(r) => (owner_one, r),
        None => (owner_two, &b[0]),
    };
    let recorded = one
        .finish_attempt(
            stale.id,
            stale_owner,
            AttemptOutcome::Booked {
                purchase_id: Uuid::new_v4(),
            },
        )
        .await
        .expect("finish");
    assert!(
        !recorded,
        "a claim whose lease lapsed and was taken over must not record"
    );
    let recorded = two
        .finish_attempt(
            stale.id,
            takeover,
            AttemptOutcome::Failed {
                reason: "test".into(),
            },
        )
        .await
        .expect("finish");
    assert!(recorded);
}
