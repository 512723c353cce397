//! The outbox relay's lease: on PostgreSQL one instance relays a log at a time, and the lease
//! passes on when its holder's session ends.

use std::time::Duration;

use platform::event_log::{EventTables, RelayLeasing};

const TABLES: EventTables = EventTables {
    events: "test_events",
    head: "test_event_head",
    outbox_offset: "test_outbox_offset",
};

#[tokio::test]
async fn one_relay_leads_at_a_time_and_the_lease_passes_on() {
    let (url, _dir) = testkit::fresh_database_url("platform").await;
    if !url.starts_with("postgres") {
        // SQLite has no advisory locks: every relay leads, the bus drops repeats by id.
        let pool = sqlx::SqlitePool::connect(&format!("{url}?mode=rwc"))
            .await
            .expect("SQLite");
        assert!(pool.lead_relay(&TABLES).await.expect("lease").is_some());
        assert!(pool.lead_relay(&TABLES).await.expect("lease").is_some());
        eprintln!("relay lease exclusivity is checked on PostgreSQL only (TEST_DATABASE_URL)");
        return;
    }
    let a = sqlx::PgPool::connect(&url).await.expect("PostgreSQL");
    let b = sqlx::PgPool::connect(&url).await.expect("PostgreSQL");
    let held = a
        .lead_relay(&TABLES)
        .await
        .expect("asked")
        .expect("granted");
    assert!(b.lead_relay(&TABLES).await.expect("asked").is_none());
    assert!(
        a.lead_relay(&TABLES).await.expect("asked").is_none(),
        "one per log, even in one process"
    );
    let other_log = EventTables {
        outbox_offset: "other_outbox_offset",
        ..TABLES
    };
    assert!(b.lead_relay(&other_log).await.expect("asked").is_some());

    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if b.lead_relay(&TABLES).await.expect("asked").is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lease never passed on"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
