//! The SQL implementation of [`CrmStore`], written once and instantiated for SQLite and
//! PostgreSQL by `crm_store_for!`, as in ticketing: statements both dialects accept (`$n`
//! placeholders, `RETURNING`, `ON CONFLICT`), the few differences passed as macro arguments.
//!
//! Concurrency rules, the same in both dialects:
//! - Every transaction that changes a sponsor, its invoices or its allocation requests first
//!   touches the sponsor row (`UPDATE sponsors SET updated_at …`), which locks it until
//!   commit: two admins topping up one sponsor at once serialise, and the second sees the
//!   first's request, so a difference is never booked twice.
//! - Allocation requests are claimed with a conditional `UPDATE` that sets a lease; results
//!   are written only by the lease holder.
//! - Event positions come from a one-row counter updated last in each transaction.
//! - SQLite writes go through a one-connection pool and queue there instead of failing with
//!   `SQLITE_BUSY`; reads use their own pool.
//! - Every method that writes runs in a task of its own once it has its writer connection
//!   (`SqlStore::write`): sqlx's transactions are not safe to drop at every `.await`, and the
//!   futures that call the store are dropped whenever a client hangs up or a worker is stopped.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use platform::database::{Database, Migrations, Pools};
use platform::event_log::EventLogPool;
use platform::{CommitSignal, EventKind};
use sqlx::pool::PoolConnection;
use sqlx::types::Json;
use sqlx::{Connection, Pool, Postgres, QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use super::{AttemptOutcome, CrmStore, Page, SponsorFilter, StoreError};
use crate::domain::allocation::{RequestStatus, TopUp};
use crate::domain::sponsor::Transition;
use crate::domain::{
    self, AllocationReference, AllocationStatus, CompanyName, ConferenceSetup, Contract,
    ContractStatus, Currency, DomainError, EarlySigningRule, EmailAddress, Invoice, InvoiceStatus,
    LevelChanges, LevelName, Money, NewInvoice, NewSponsor, PersonName, Sponsor,
    SponsorTicketSource, SponsorshipLevel, TicketAllocation, TicketAllocationRequest,
    TicketAllowance, TicketCount,
};
use crate::events::{SponsorEvent, SponsorEventKind};

/// Cheap to clone (the pools and the commit signal are shared), so that each write can run
/// on a clone in a task of its own.
pub struct SqlStore<DB: sqlx::Database> {
    writer: Pool<DB>,
    reader: Pool<DB>,
    commits: CommitSignal,
}

impl<DB: sqlx::Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self {
            writer: self.writer.clone(),
            reader: self.reader.clone(),
            commits: self.commits.clone(),
        }
    }
}

impl<DB: sqlx::Database> SqlStore<DB> {
    /// Runs a write on a connection of the writer pool, to completion whoever stops waiting
    /// for it. The connection is taken here, in the caller's future: a caller that gives up
    /// while waiting for one (a client that hung up while its request queued behind others)
    /// leaves no write behind to run later. From the moment the write has its connection it
    /// runs in a task of its own ([`platform::database::run_to_completion`]), on a clone of
    /// the store, and commits or rolls back whole: no request future ever owns a transaction.
    async fn write<T, W>(
        &self,
        write: impl FnOnce(Self, PoolConnection<DB>) -> W,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        W: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let connection = self.writer.acquire().await?;
        platform::database::run_to_completion(write(self.clone(), connection)).await
    }

    /// Like [`Self::write`], for the event log's writes: the platform's helpers for them take
    /// the pool, so the connection is taken inside the task.
    async fn detached<T, W>(&self, write: impl FnOnce(Self) -> W) -> Result<T, StoreError>
    where
        T: Send + 'static,
        W: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        platform::database::run_to_completion(write(self.clone())).await
    }
}

static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("./migrations/sqlite"),
    postgres: sqlx::migrate!("./migrations/postgres"),
};

const EVENT_TABLES: platform::event_log::EventTables = platform::event_log::EventTables {
    events: "sponsor_events",
    head: "sponsor_event_head",
    outbox_offset: "sponsor_outbox_offset",
};

/// Opens (creating and migrating as needed) the database the URL names.
pub async fn connect(
    url: &str,
    max_connections: u32,
    commits: CommitSignal,
) -> Result<Arc<dyn CrmStore>, StoreError> {
    Ok(
        match Database::open(url, max_connections, &MIGRATIONS).await? {
            Database::Sqlite(Pools { writer, reader }) => Arc::new(SqlStore::<Sqlite> {
                writer,
                reader,
                commits,
            }),
            Database::Postgres(Pools { writer, reader }) => Arc::new(SqlStore::<Postgres> {
                writer,
                reader,
                commits,
            }),
        },
    )
}

const LEVEL_COLUMNS: &str =
    "name, price_amount, price_currency, ticket_allowance, rank, updated_at";
const CONFERENCE_COLUMNS: &str = "conference_id, sponsor_ticket_type_id, currency, early_signing_before, early_signing_extra, updated_at";
const SPONSOR_COLUMNS: &str = "id, conference_id, company, contact_name, contact_email, level_name, ticket_allowance_override, contract_status, contract_sent_at, contract_signed_at, contract_signed_on, contract_cancelled_at, onboarded_at, allocation_status, created_at";
const INVOICE_COLUMNS: &str =
    "id, sponsor_id, amount, currency, due_on, status, issued_at, paid_at, voided_at";
const REQUEST_COLUMNS: &str = "id, sponsor_id, seq, quantity, external_reference, status, attempts, next_attempt_at, last_attempt_at, last_error, purchase_id, created_at, booked_at, purchase_cancelled_at";
const PAGE_MAX: i64 = 100;

fn currency(value: &str) -> Result<Currency, StoreError> {
    Currency::from_stored(value)
        .ok_or_else(|| StoreError::Corrupt(format!("{value:?} is not a currency code")))
}

fn sponsor_not_found(id: Uuid) -> StoreError {
    DomainError::NotFound(format!("sponsor {id} does not exist")).into()
}

/// Which onboarded sponsors a rule change can touch.
enum RuleScope {
    Level(String),
    Conference(Uuid),
}

fn invoice_not_found(id: Uuid) -> StoreError {
    DomainError::NotFound(format!("invoice {id} does not exist")).into()
}

macro_rules! crm_store_for {
    ($db:ty, begin = $begin:literal, skip_locked = $skip_locked:literal) => {
        type Db = $db;
        type DbRow = <$db as sqlx::Database>::Row;
        type Tx<'a> = sqlx::Transaction<'a, $db>;

        fn level_from(row: &DbRow) -> Result<SponsorshipLevel, StoreError> {
            Ok(SponsorshipLevel {
                name: LevelName::trusted(row.try_get("name")?),
                price: Money {
                    amount: row.try_get("price_amount")?,
                    currency: currency(row.try_get("price_currency")?)?,
                },
                ticket_allowance: TicketCount::trusted(row.try_get("ticket_allowance")?),
                rank: row.try_get("rank")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn conference_from(row: &DbRow) -> Result<ConferenceSetup, StoreError> {
            let before: Option<NaiveDate> = row.try_get("early_signing_before")?;
            let extra: Option<i64> = row.try_get("early_signing_extra")?;
            Ok(ConferenceSetup {
                conference_id: row.try_get("conference_id")?,
                sponsor_ticket_type_id: row.try_get("sponsor_ticket_type_id")?,
                currency: row.try_get::<Option<&str>, _>("currency")?.map(currency).transpose()?,
                early_signing: match (before, extra) {
                    (Some(signed_before), Some(extra)) => Some(EarlySigningRule {
                        signed_before,
                        extra_tickets: TicketCount::trusted(extra),
                    }),
                    _ => None,
                },
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn sponsor_from(row: &DbRow) -> Result<Sponsor, StoreError> {
            Ok(Sponsor {
                id: row.try_get("id")?,
                conference_id: row.try_get("conference_id")?,
                company: CompanyName::trusted(row.try_get("company")?),
                contact_name: PersonName::trusted(row.try_get("contact_name")?),
                contact_email: EmailAddress::trusted(row.try_get("contact_email")?),
                level: LevelName::trusted(row.try_get("level_name")?),
                ticket_allowance_override: row
                    .try_get::<Option<i64>, _>("ticket_allowance_override")?
                    .map(TicketCount::trusted),
                contract: Contract {
                    status: ContractStatus::from_stored(row.try_get("contract_status")?),
                    sent_at: row.try_get("contract_sent_at")?,
                    signed_at: row.try_get("contract_signed_at")?,
                    signed_on: row.try_get("contract_signed_on")?,
                    cancelled_at: row.try_get("contract_cancelled_at")?,
                },
                onboarded_at: row.try_get("onboarded_at")?,
                allocation_status: AllocationStatus::from_stored(row.try_get("allocation_status")?),
                created_at: row.try_get("created_at")?,
            })
        }

        fn invoice_from(row: &DbRow) -> Result<Invoice, StoreError> {
            Ok(Invoice {
                id: row.try_get("id")?,
                sponsor_id: row.try_get("sponsor_id")?,
                amount: Money {
                    amount: row.try_get("amount")?,
                    currency: currency(row.try_get("currency")?)?,
                },
                due_on: row.try_get("due_on")?,
                status: InvoiceStatus::from_stored(row.try_get("status")?),
                issued_at: row.try_get("issued_at")?,
                paid_at: row.try_get("paid_at")?,
                voided_at: row.try_get("voided_at")?,
            })
        }

        fn request_from(row: &DbRow) -> Result<TicketAllocationRequest, StoreError> {
            Ok(TicketAllocationRequest {
                id: row.try_get("id")?,
                sponsor_id: row.try_get("sponsor_id")?,
                seq: row.try_get("seq")?,
                quantity: row.try_get("quantity")?,
                external_reference: row.try_get("external_reference")?,
                status: RequestStatus::from_stored(row.try_get("status")?),
                attempts: row.try_get("attempts")?,
                next_attempt_at: row.try_get("next_attempt_at")?,
                last_attempt_at: row.try_get("last_attempt_at")?,
                last_error: row.try_get("last_error")?,
                purchase_id: row.try_get("purchase_id")?,
                created_at: row.try_get("created_at")?,
                booked_at: row.try_get("booked_at")?,
                purchase_cancelled_at: row.try_get("purchase_cancelled_at")?,
            })
        }

        /// Locks the sponsor row until commit (see the module docs) and returns it.
        async fn lock_sponsor(tx: &mut Tx<'_>, id: Uuid, now: DateTime<Utc>) -> Result<Sponsor, StoreError> {
            let row = sqlx::query(&format!(
                "UPDATE sponsors SET updated_at = $1 WHERE id = $2 RETURNING {SPONSOR_COLUMNS}"
            ))
            .bind(now)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
            row.as_ref().map(sponsor_from).transpose()?.ok_or_else(|| sponsor_not_found(id))
        }

        async fn reload_sponsor(tx: &mut Tx<'_>, id: Uuid) -> Result<Sponsor, StoreError> {
            let row = sqlx::query(&format!("SELECT {SPONSOR_COLUMNS} FROM sponsors WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
            row.as_ref().map(sponsor_from).transpose()?.ok_or_else(|| sponsor_not_found(id))
        }

        /// A level by name in any letter case.
        async fn find_level<'e, E>(executor: E, name: &str) -> Result<Option<SponsorshipLevel>, StoreError>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            let row = sqlx::query(&format!(
                "SELECT {LEVEL_COLUMNS} FROM sponsorship_levels WHERE lower(name) = lower($1)"
            ))
            .bind(name.trim())
            .fetch_optional(executor)
            .await?;
            row.as_ref().map(level_from).transpose()
        }

        async fn known_level(tx: &mut Tx<'_>, name: &str) -> Result<SponsorshipLevel, StoreError> {
            if let Some(level) = find_level(&mut **tx, name).await? {
                return Ok(level);
            }
            let names: Vec<String> = sqlx::query_scalar("SELECT name FROM sponsorship_levels ORDER BY rank")
                .fetch_all(&mut **tx)
                .await?;
            Err(DomainError::invalid(format!(
                "there is no sponsorship level {:?}; the levels are {}",
                name.trim(),
                names.join(", ")
            ))
            .into())
        }

        async fn load_setup<'e, E>(executor: E, conference_id: Uuid) -> Result<Option<ConferenceSetup>, StoreError>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            let row = sqlx::query(&format!(
                "SELECT {CONFERENCE_COLUMNS} FROM sponsor_conferences WHERE conference_id = $1"
            ))
            .bind(conference_id)
            .fetch_optional(executor)
            .await?;
            row.as_ref().map(conference_from).transpose()
        }

        async fn load_requests<'e, E>(executor: E, sponsor_id: Uuid) -> Result<Vec<TicketAllocationRequest>, StoreError>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            let rows = sqlx::query(&format!(
                "SELECT {REQUEST_COLUMNS} FROM ticket_allocation_requests WHERE sponsor_id = $1 ORDER BY seq"
            ))
            .bind(sponsor_id)
            .fetch_all(executor)
            .await?;
            rows.iter().map(request_from).collect()
        }

        async fn load_invoices<'e, E>(executor: E, sponsor_id: Uuid) -> Result<Vec<Invoice>, StoreError>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            let rows = sqlx::query(&format!(
                "SELECT {INVOICE_COLUMNS} FROM invoices WHERE sponsor_id = $1 ORDER BY id"
            ))
            .bind(sponsor_id)
            .fetch_all(executor)
            .await?;
            rows.iter().map(invoice_from).collect()
        }

        async fn allowance_in(tx: &mut Tx<'_>, sponsor: &Sponsor) -> Result<TicketAllowance, StoreError> {
            let level = known_level(tx, sponsor.level.as_str()).await?;
            let setup = load_setup(&mut **tx, sponsor.conference_id).await?;
            Ok(TicketAllowance::for_sponsor(sponsor, &level, setup.as_ref()))
        }

        /// Keeps the sponsor's denormalised allocation status in step with its requests.
        async fn refresh_allocation_status(tx: &mut Tx<'_>, sponsor_id: Uuid) -> Result<(), StoreError> {
            let requests = load_requests(&mut **tx, sponsor_id).await?;
            sqlx::query("UPDATE sponsors SET allocation_status = $1 WHERE id = $2")
                .bind(AllocationStatus::summarize(&requests).as_str())
                .bind(sponsor_id)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// Compares an onboarded sponsor's allowance with what was already requested and
        /// queues a booking for the difference, or flags an excess. Runs inside the
        /// transaction that changed the allowance, with the sponsor row locked.
        async fn reconcile(tx: &mut Tx<'_>, sponsor: &Sponsor, now: DateTime<Utc>) -> Result<Vec<SponsorEventKind>, StoreError> {
            if !sponsor.is_onboarded() {
                return Ok(Vec::new());
            }
            let allowance = allowance_in(tx, sponsor).await?;
            let requests = load_requests(&mut **tx, sponsor.id).await?;
            let requested: i64 = requests.iter().map(|r| r.quantity).sum();
            let mut seq = requests.iter().map(|r| r.seq).max().unwrap_or(0);
            let mut events = Vec::new();
            match TopUp::plan(allowance.total, requested) {
                TopUp::Nothing => {}
                TopUp::Excess(excess_tickets) => {
                    events.push(SponsorEventKind::TicketAllowanceExceeded {
                        sponsor: reload_sponsor(tx, sponsor.id).await?,
                        excess_tickets,
                    });
                }
                TopUp::Book(quantities) => {
                    for quantity in quantities {
                        seq += 1;
                        let row = sqlx::query(&format!(
                            "INSERT INTO ticket_allocation_requests (id, sponsor_id, seq, quantity, external_reference, status, attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 'PENDING', 0, $6, $6) RETURNING {REQUEST_COLUMNS}"
                        ))
                        .bind(domain::new_id())
                        .bind(sponsor.id)
                        .bind(seq)
                        .bind(quantity)
                        .bind(TicketAllocationRequest::reference_for(sponsor.id, seq))
                        .bind(now)
                        .fetch_one(&mut **tx)
                        .await?;
                        events.push(SponsorEventKind::TicketAllocationRequested { request: request_from(&row)? });
                    }
                    refresh_allocation_status(tx, sponsor.id).await?;
                }
            }
            Ok(events)
        }

        /// Onboards the sponsor if this transaction completed the conditions; the first
        /// booking is queued in the same transaction as `SponsorOnboarded`.
        async fn maybe_onboard(tx: &mut Tx<'_>, sponsor_id: Uuid, now: DateTime<Utc>) -> Result<Vec<SponsorEventKind>, StoreError> {
            let sponsor = reload_sponsor(tx, sponsor_id).await?;
            let invoices = load_invoices(&mut **tx, sponsor_id).await?;
            if !sponsor.is_ready_for_onboarding(&invoices) {
                return Ok(Vec::new());
            }
            sqlx::query("UPDATE sponsors SET onboarded_at = $1 WHERE id = $2 AND onboarded_at IS NULL")
                .bind(now)
                .bind(sponsor_id)
                .execute(&mut **tx)
                .await?;
            let onboarded = reload_sponsor(tx, sponsor_id).await?;
            let mut events = vec![SponsorEventKind::SponsorOnboarded { sponsor: onboarded.clone() }];
            events.extend(reconcile(tx, &onboarded, now).await?);
            Ok(events)
        }

        /// Appends events at the next positions. Called last in a transaction: the head row
        /// stays locked until commit, which keeps positions and visibility in the same order.
        async fn append_events(tx: &mut Tx<'_>, kinds: Vec<SponsorEventKind>, at: DateTime<Utc>) -> Result<(), StoreError> {
            if kinds.is_empty() {
                return Ok(());
            }
            let count = kinds.len() as i64;
            let end: i64 = sqlx::query_scalar(
                "UPDATE sponsor_event_head SET position = position + $1 RETURNING position",
            )
            .bind(count)
            .fetch_one(&mut **tx)
            .await?;
            let mut stored = Vec::with_capacity(kinds.len());
            for kind in &kinds {
                stored.push(kind.to_stored()?);
            }
            let mut query = QueryBuilder::<Db>::new(
                "INSERT INTO sponsor_events (position, id, event_type, payload, occurred_at) ",
            );
            query.push_values(stored.into_iter().enumerate(), |mut b, (i, (event_type, data))| {
                b.push_bind(end - count + 1 + i as i64)
                    .push_bind(Uuid::now_v7())
                    .push_bind(event_type)
                    .push_bind(Json(data))
                    .push_bind(at);
            });
            query.build().execute(&mut **tx).await?;
            Ok(())
        }

        impl SqlStore<Db> {
            async fn commit(&self, mut tx: Tx<'_>, events: Vec<SponsorEventKind>, now: DateTime<Utc>) -> Result<(), StoreError> {
                append_events(&mut tx, events, now).await?;
                tx.commit().await?;
                self.commits.notify();
                Ok(())
            }

            /// Re-reconciles every onboarded sponsor a rule change may affect, in id order.
            async fn reconcile_all(tx: &mut Tx<'_>, scope: RuleScope, now: DateTime<Utc>) -> Result<Vec<SponsorEventKind>, StoreError> {
                let ids: Vec<Uuid> = match scope {
                    RuleScope::Level(name) => sqlx::query_scalar(
                        "SELECT id FROM sponsors WHERE onboarded_at IS NOT NULL AND level_name = $1 ORDER BY id",
                    )
                    .bind(name)
                    .fetch_all(&mut **tx)
                    .await?,
                    RuleScope::Conference(conference_id) => sqlx::query_scalar(
                        "SELECT id FROM sponsors WHERE onboarded_at IS NOT NULL AND conference_id = $1 ORDER BY id",
                    )
                    .bind(conference_id)
                    .fetch_all(&mut **tx)
                    .await?,
                };
                let mut events = Vec::new();
                for id in ids {
                    let sponsor = lock_sponsor(tx, id, now).await?;
                    events.extend(reconcile(tx, &sponsor, now).await?);
                }
                Ok(events)
            }

            async fn contract_step(
                &self,
                sponsor_id: Uuid,
                decide: impl FnOnce(&Contract) -> Result<Transition<ContractStatus>, DomainError> + Send + 'static,
                signed_on: Option<NaiveDate>,
            ) -> Result<Sponsor, StoreError> {
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut tx = connection.begin_with($begin).await?;
                    let sponsor = lock_sponsor(&mut tx, sponsor_id, now).await?;
                    let Transition::To(status) = decide(&sponsor.contract)? else {
                        tx.rollback().await?;
                        return Ok(sponsor);
                    };
                    let column = match status {
                        ContractStatus::Sent => "contract_sent_at",
                        ContractStatus::Signed => "contract_signed_at",
                        ContractStatus::Cancelled => "contract_cancelled_at",
                        ContractStatus::Draft => {
                            return Err(DomainError::InvalidState("a contract cannot go back to DRAFT".into()).into());
                        }
                    };
                    // The state decided from is part of the UPDATE: the row lock already keeps it,
                    // and the statement says so itself.
                    let changed = sqlx::query(&format!(
                        "UPDATE sponsors SET contract_status = $1, {column} = $2, contract_signed_on = COALESCE($3, contract_signed_on) WHERE id = $4 AND contract_status = $5"
                    ))
                    .bind(status.as_str())
                    .bind(now)
                    .bind(signed_on.filter(|_| status == ContractStatus::Signed))
                    .bind(sponsor_id)
                    .bind(sponsor.contract.status.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if changed != 1 {
                        return Err(DomainError::InvalidState(format!(
                            "the contract of sponsor {sponsor_id} changed meanwhile; try again"
                        ))
                        .into());
                    }
                    let updated = reload_sponsor(&mut tx, sponsor_id).await?;
                    let mut events = vec![match status {
                        ContractStatus::Sent => SponsorEventKind::ContractSent { sponsor: updated },
                        ContractStatus::Signed => SponsorEventKind::ContractSigned { sponsor: updated },
                        _ => SponsorEventKind::ContractCancelled { sponsor: updated },
                    }];
                    events.extend(maybe_onboard(&mut tx, sponsor_id, now).await?);
                    let result = reload_sponsor(&mut tx, sponsor_id).await?;
                    store.commit(tx, events, now).await?;
                    Ok(result)
                })
                .await
            }

            async fn invoice_step(
                &self,
                id: Uuid,
                decide: impl FnOnce(&Invoice) -> Result<Transition<InvoiceStatus>, DomainError> + Send + 'static,
            ) -> Result<Invoice, StoreError> {
                // Read before the writer is taken: it is not held for a lookup.
                let sponsor_id: Option<Uuid> = sqlx::query_scalar("SELECT sponsor_id FROM invoices WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.reader)
                    .await?;
                let sponsor_id = sponsor_id.ok_or_else(|| invoice_not_found(id))?;
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut tx = connection.begin_with($begin).await?;
                    // The sponsor first, as everywhere, then the invoice as it is now.
                    lock_sponsor(&mut tx, sponsor_id, now).await?;
                    let row = sqlx::query(&format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = $1"))
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let invoice = row.as_ref().map(invoice_from).transpose()?.ok_or_else(|| invoice_not_found(id))?;
                    let Transition::To(status) = decide(&invoice)? else {
                        tx.rollback().await?;
                        return Ok(invoice);
                    };
                    let column = if status == InvoiceStatus::Paid { "paid_at" } else { "voided_at" };
                    // The state decided from is part of the UPDATE, as for contracts.
                    let row = sqlx::query(&format!(
                        "UPDATE invoices SET status = $1, {column} = $2 WHERE id = $3 AND status = $4 RETURNING {INVOICE_COLUMNS}"
                    ))
                    .bind(status.as_str())
                    .bind(now)
                    .bind(id)
                    .bind(invoice.status.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else {
                        return Err(DomainError::InvalidState(format!("invoice {id} changed meanwhile; try again")).into());
                    };
                    let updated = invoice_from(&row)?;
                    let mut events = vec![if status == InvoiceStatus::Paid {
                        SponsorEventKind::InvoicePaid { invoice: updated.clone() }
                    } else {
                        SponsorEventKind::InvoiceVoided { invoice: updated.clone() }
                    }];
                    events.extend(maybe_onboard(&mut tx, sponsor_id, now).await?);
                    store.commit(tx, events, now).await?;
                    Ok(updated)
                })
                .await
            }
        }

        #[async_trait]
        impl CrmStore for SqlStore<Db> {
            async fn levels(&self) -> Result<Vec<SponsorshipLevel>, StoreError> {
                let rows = sqlx::query(&format!("SELECT {LEVEL_COLUMNS} FROM sponsorship_levels ORDER BY rank, name"))
                    .fetch_all(&self.reader)
                    .await?;
                rows.iter().map(level_from).collect()
            }

            async fn update_level(&self, name: &str, changes: LevelChanges) -> Result<SponsorshipLevel, StoreError> {
                let name = name.to_owned();
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut tx = connection.begin_with($begin).await?;
                    let Some(current) = find_level(&mut *tx, &name).await? else {
                        return Err(DomainError::NotFound(format!("there is no sponsorship level {:?}", name.trim())).into());
                    };
                    if changes.is_empty() {
                        tx.rollback().await?;
                        return Ok(current);
                    }
                    let price = changes.price.unwrap_or(current.price);
                    let allowance = changes.ticket_allowance.unwrap_or(current.ticket_allowance);
                    let row = sqlx::query(&format!(
                        "UPDATE sponsorship_levels SET price_amount = $1, price_currency = $2, ticket_allowance = $3, updated_at = $4 WHERE name = $5 RETURNING {LEVEL_COLUMNS}"
                    ))
                    .bind(price.amount)
                    .bind(price.currency.as_str())
                    .bind(allowance.get())
                    .bind(now)
                    .bind(current.name.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                    let level = level_from(&row)?;
                    let mut events = vec![SponsorEventKind::SponsorshipLevelUpdated { level: level.clone() }];
                    if allowance != current.ticket_allowance {
                        events.extend(
                            Self::reconcile_all(&mut tx, RuleScope::Level(current.name.as_str().to_owned()), now).await?,
                        );
                    }
                    store.commit(tx, events, now).await?;
                    Ok(level)
                })
                .await
            }

            async fn conferences(&self) -> Result<Vec<ConferenceSetup>, StoreError> {
                let rows = sqlx::query(&format!("SELECT {CONFERENCE_COLUMNS} FROM sponsor_conferences ORDER BY conference_id"))
                    .fetch_all(&self.reader)
                    .await?;
                rows.iter().map(conference_from).collect()
            }

            async fn conference(&self, id: Uuid) -> Result<Option<ConferenceSetup>, StoreError> {
                load_setup(&self.reader, id).await
            }

            async fn configure_sponsor_tickets(&self, source: SponsorTicketSource) -> Result<ConferenceSetup, StoreError> {
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut tx = connection.begin_with($begin).await?;
                    // Registers the conference, or refreshes what ticketing vouched for.
                    let row = sqlx::query(&format!(
                        "INSERT INTO sponsor_conferences (conference_id, sponsor_ticket_type_id, currency, updated_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (conference_id) DO UPDATE SET sponsor_ticket_type_id = $2, currency = $3, updated_at = $4 \
                         RETURNING {CONFERENCE_COLUMNS}"
                    ))
                    .bind(source.conference_id)
                    .bind(source.ticket_type_id)
                    .bind(source.currency.as_str())
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    let setup = conference_from(&row)?;
                    store.commit(tx, vec![SponsorEventKind::SponsorConferenceConfigured { conference: setup.clone() }], now).await?;
                    Ok(setup)
                })
                .await
            }

            async fn set_early_signing_rule(&self, conference_id: Uuid, rule: Option<EarlySigningRule>) -> Result<ConferenceSetup, StoreError> {
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut tx = connection.begin_with($begin).await?;
                    // Only a served conference has rules: the condition is part of the UPDATE.
                    let row = sqlx::query(&format!(
                        "UPDATE sponsor_conferences SET early_signing_before = $1, early_signing_extra = $2, updated_at = $3 WHERE conference_id = $4 AND currency IS NOT NULL RETURNING {CONFERENCE_COLUMNS}"
                    ))
                    .bind(rule.map(|r| r.signed_before))
                    .bind(rule.map(|r| r.extra_tickets.get()))
                    .bind(now)
                    .bind(conference_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else {
                        return Err(domain::conference::not_served(conference_id).into());
                    };
                    let setup = conference_from(&row)?;
                    let mut events = vec![SponsorEventKind::SponsorConferenceConfigured { conference: setup.clone() }];
                    events.extend(Self::reconcile_all(&mut tx, RuleScope::Conference(conference_id), now).await?);
                    store.commit(tx, events, now).await?;
                    Ok(setup)
                })
                .await
            }

            async fn create_sponsor(&self, new: NewSponsor) -> Result<Sponsor, StoreError> {
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut tx = connection.begin_with($begin).await?;
                    let conference_id = match new.conference_id {
                        Some(id) => id,
                        None => {
                            let known: Vec<Uuid> = sqlx::query_scalar("SELECT conference_id FROM sponsor_conferences WHERE currency IS NOT NULL ORDER BY conference_id LIMIT 2")
                                .fetch_all(&mut *tx)
                                .await?;
                            match known.as_slice() {
                                [only] => *only,
                                [] => return Err(DomainError::invalid(
                                    "conferenceId is required: the CRM serves no conference yet (configureSponsorTickets registers one)",
                                ).into()),
                                _ => return Err(DomainError::invalid(
                                    "conferenceId is required: the CRM serves more than one conference",
                                ).into()),
                            }
                        }
                    };
                    let level = known_level(&mut tx, &new.level).await?;
                    // Only for a conference the CRM serves, decided by the INSERT itself.
                    let row = sqlx::query(&format!(
                        "INSERT INTO sponsors (id, conference_id, company, contact_name, contact_email, level_name, contract_status, allocation_status, created_at, updated_at) \
                         SELECT $1, conference_id, $3, $4, $5, $6, $7, $8, $9, $9 FROM sponsor_conferences WHERE conference_id = $2 AND currency IS NOT NULL \
                         RETURNING {SPONSOR_COLUMNS}"
                    ))
                    .bind(domain::new_id())
                    .bind(conference_id)
                    .bind(new.company.as_str())
                    .bind(new.contact_name.as_str())
                    .bind(new.contact_email.as_str())
                    .bind(level.name.as_str())
                    .bind(ContractStatus::Draft.as_str())
                    .bind(AllocationStatus::NotDue.as_str())
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else {
                        return Err(domain::conference::not_served(conference_id).into());
                    };
                    let sponsor = sponsor_from(&row)?;
                    store.commit(tx, vec![SponsorEventKind::SponsorCreated { sponsor: sponsor.clone() }], now).await?;
                    Ok(sponsor)
                })
                .await
            }

            async fn sponsor(&self, id: Uuid) -> Result<Option<Sponsor>, StoreError> {
                let row = sqlx::query(&format!("SELECT {SPONSOR_COLUMNS} FROM sponsors WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.reader)
                    .await?;
                row.as_ref().map(sponsor_from).transpose()
            }

            async fn sponsors(&self, filter: SponsorFilter, after: Option<Uuid>, first: i64) -> Result<Page<Sponsor>, StoreError> {
                let first = first.clamp(0, PAGE_MAX);
                let mut query = QueryBuilder::<Db>::new(format!("SELECT {SPONSOR_COLUMNS} FROM sponsors WHERE 1 = 1"));
                if let Some(conference_id) = filter.conference_id {
                    query.push(" AND conference_id = ").push_bind(conference_id);
                }
                if let Some(level) = filter.level {
                    query.push(" AND lower(level_name) = lower(").push_bind(level.trim().to_owned()).push(")");
                }
                match filter.onboarded {
                    Some(true) => { query.push(" AND onboarded_at IS NOT NULL"); }
                    Some(false) => { query.push(" AND onboarded_at IS NULL"); }
                    None => {}
                }
                if let Some(status) = filter.allocation_status {
                    query.push(" AND allocation_status = ").push_bind(status.as_str());
                }
                if let Some(after) = after {
                    query.push(" AND id > ").push_bind(after);
                }
                query.push(" ORDER BY id LIMIT ").push_bind(first + 1);
                let rows = query.build().fetch_all(&self.reader).await?;
                let items = rows.iter().map(sponsor_from).collect::<Result<Vec<_>, _>>()?;
                Ok(Page::from_lookahead(items, first))
            }

            async fn send_contract(&self, sponsor_id: Uuid) -> Result<Sponsor, StoreError> {
                self.contract_step(sponsor_id, Contract::send, None).await
            }

            async fn sign_contract(&self, sponsor_id: Uuid, signed_on: NaiveDate) -> Result<Sponsor, StoreError> {
                self.contract_step(sponsor_id, Contract::sign, Some(signed_on)).await
            }

            async fn cancel_contract(&self, sponsor_id: Uuid) -> Result<Sponsor, StoreError> {
                self.contract_step(sponsor_id, Contract::cancel, None).await
            }

            async fn change_level(&self, sponsor_id: Uuid, level: &str) -> Result<Sponsor, StoreError> {
                let level = level.to_owned();
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut tx = connection.begin_with($begin).await?;
                    let sponsor = lock_sponsor(&mut tx, sponsor_id, now).await?;
                    let level = known_level(&mut tx, &level).await?;
                    if level.name == sponsor.level {
                        tx.rollback().await?;
                        return Ok(sponsor);
                    }
                    sqlx::query("UPDATE sponsors SET level_name = $1 WHERE id = $2")
                        .bind(level.name.as_str())
                        .bind(sponsor_id)
                        .execute(&mut *tx)
                        .await?;
                    let updated = reload_sponsor(&mut tx, sponsor_id).await?;
                    let mut events = vec![SponsorEventKind::SponsorLevelChanged { sponsor: updated.clone() }];
                    events.extend(reconcile(&mut tx, &updated, now).await?);
                    let result = reload_sponsor(&mut tx, sponsor_id).await?;
                    store.commit(tx, events, now).await?;
                    Ok(result)
                })
                .await
            }

            async fn set_allowance_override(&self, sponsor_id: Uuid, tickets: Option<TicketCount>) -> Result<Sponsor, StoreError> {
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut tx = connection.begin_with($begin).await?;
                    let sponsor = lock_sponsor(&mut tx, sponsor_id, now).await?;
                    if sponsor.ticket_allowance_override == tickets {
                        tx.rollback().await?;
                        return Ok(sponsor);
                    }
                    sqlx::query("UPDATE sponsors SET ticket_allowance_override = $1 WHERE id = $2")
                        .bind(tickets.map(TicketCount::get))
                        .bind(sponsor_id)
                        .execute(&mut *tx)
                        .await?;
                    let updated = reload_sponsor(&mut tx, sponsor_id).await?;
                    let mut events = vec![SponsorEventKind::TicketAllowanceOverrideSet { sponsor: updated.clone() }];
                    events.extend(reconcile(&mut tx, &updated, now).await?);
                    let result = reload_sponsor(&mut tx, sponsor_id).await?;
                    store.commit(tx, events, now).await?;
                    Ok(result)
                })
                .await
            }

            async fn issue_invoice(&self, new: NewInvoice) -> Result<Invoice, StoreError> {
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut tx = connection.begin_with($begin).await?;
                    let sponsor = lock_sponsor(&mut tx, new.sponsor_id, now).await?;
                    // The INSERT itself requires a live contract and a served conference that
                    // sells in the invoice's currency; the reads below only explain a refusal.
                    let row = sqlx::query(&format!(
                        "INSERT INTO invoices (id, sponsor_id, amount, currency, due_on, status, issued_at) \
                         SELECT $1, s.id, $3, $4, $5, $6, $7 FROM sponsors s JOIN sponsor_conferences c ON c.conference_id = s.conference_id \
                         WHERE s.id = $2 AND s.contract_status <> $8 AND c.currency = $4 \
                         RETURNING {INVOICE_COLUMNS}"
                    ))
                    .bind(domain::new_id())
                    .bind(new.sponsor_id)
                    .bind(new.amount.amount)
                    .bind(new.amount.currency.as_str())
                    .bind(new.due_on)
                    .bind(InvoiceStatus::Issued.as_str())
                    .bind(now)
                    .bind(ContractStatus::Cancelled.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else {
                        if sponsor.contract.status == ContractStatus::Cancelled {
                            return Err(DomainError::InvalidState(format!(
                                "sponsor {} has a CANCELLED contract: no invoices can be issued",
                                sponsor.id
                            ))
                            .into());
                        }
                        return Err(match load_setup(&mut *tx, sponsor.conference_id).await? {
                            Some(setup) => setup.check_invoice(&new.amount).err(),
                            None => Some(domain::conference::not_served(sponsor.conference_id)),
                        }
                        .unwrap_or_else(|| DomainError::InvalidState("the invoice could not be issued; try again".into()))
                        .into());
                    };
                    let invoice = invoice_from(&row)?;
                    store.commit(tx, vec![SponsorEventKind::InvoiceIssued { invoice: invoice.clone() }], now).await?;
                    Ok(invoice)
                })
                .await
            }

            async fn mark_invoice_paid(&self, id: Uuid) -> Result<Invoice, StoreError> {
                self.invoice_step(id, Invoice::mark_paid).await
            }

            async fn void_invoice(&self, id: Uuid) -> Result<Invoice, StoreError> {
                self.invoice_step(id, Invoice::void).await
            }

            async fn invoice(&self, id: Uuid) -> Result<Option<Invoice>, StoreError> {
                let row = sqlx::query(&format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.reader)
                    .await?;
                row.as_ref().map(invoice_from).transpose()
            }

            async fn invoices_of(&self, sponsor_id: Uuid) -> Result<Vec<Invoice>, StoreError> {
                load_invoices(&self.reader, sponsor_id).await
            }

            async fn allocation_of(&self, sponsor: &Sponsor) -> Result<TicketAllocation, StoreError> {
                let level = find_level(&self.reader, sponsor.level.as_str())
                    .await?
                    .ok_or_else(|| StoreError::Corrupt(format!("sponsor {} has unknown level {}", sponsor.id, sponsor.level)))?;
                let setup = load_setup(&self.reader, sponsor.conference_id).await?;
                let requests = load_requests(&self.reader, sponsor.id).await?;
                Ok(TicketAllocation {
                    status: AllocationStatus::summarize(&requests),
                    allowance: TicketAllowance::for_sponsor(sponsor, &level, setup.as_ref()),
                    requests,
                })
            }

            async fn sponsor_for_purchase(&self, purchase_id: Uuid) -> Result<Option<Sponsor>, StoreError> {
                let row = sqlx::query(&format!(
                    "SELECT {SPONSOR_COLUMNS} FROM sponsors WHERE id IN (SELECT sponsor_id FROM ticket_allocation_requests WHERE purchase_id = $1)"
                ))
                .bind(purchase_id)
                .fetch_optional(&self.reader)
                .await?;
                row.as_ref().map(sponsor_from).transpose()
            }

            async fn sponsor_for_reference(
                &self,
                reference: AllocationReference,
                purchase_id: Uuid,
            ) -> Result<Option<Sponsor>, StoreError> {
                let row = sqlx::query(&format!(
                    "SELECT {SPONSOR_COLUMNS} FROM sponsors WHERE id IN (SELECT sponsor_id FROM ticket_allocation_requests WHERE sponsor_id = $1 AND seq = $2 AND (purchase_id IS NULL OR purchase_id = $3))"
                ))
                .bind(reference.sponsor_id)
                .bind(reference.seq)
                .bind(purchase_id)
                .fetch_optional(&self.reader)
                .await?;
                row.as_ref().map(sponsor_from).transpose()
            }

            async fn retry_allocation(&self, sponsor_id: Uuid) -> Result<Sponsor, StoreError> {
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut tx = connection.begin_with($begin).await?;
                    lock_sponsor(&mut tx, sponsor_id, now).await?;
                    let rows = sqlx::query(&format!(
                        "UPDATE ticket_allocation_requests SET status = 'PENDING', attempts = 0, next_attempt_at = $1, last_error = NULL WHERE sponsor_id = $2 AND status = 'FAILED' RETURNING {REQUEST_COLUMNS}"
                    ))
                    .bind(now)
                    .bind(sponsor_id)
                    .fetch_all(&mut *tx)
                    .await?;
                    // Requests waiting out a backoff are made due now too: an admin who just fixed
                    // ticketing should not wait for the timer.
                    let hurried = sqlx::query(
                        "UPDATE ticket_allocation_requests SET next_attempt_at = $1 WHERE sponsor_id = $2 AND status = 'PENDING' AND next_attempt_at > $1 AND (locked_until IS NULL OR locked_until <= $1)",
                    )
                    .bind(now)
                    .bind(sponsor_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if rows.is_empty() && hurried == 0 {
                        let status = AllocationStatus::summarize(&load_requests(&mut *tx, sponsor_id).await?);
                        return Err(DomainError::InvalidState(format!(
                            "sponsor {sponsor_id} has no failed or waiting ticket allocation to retry (allocation is {})",
                            status.as_str()
                        ))
                        .into());
                    }
                    let events = rows
                        .iter()
                        .map(|r| request_from(r).map(|request| SponsorEventKind::TicketAllocationRetried { request }))
                        .collect::<Result<Vec<_>, _>>()?;
                    refresh_allocation_status(&mut tx, sponsor_id).await?;
                    let sponsor = reload_sponsor(&mut tx, sponsor_id).await?;
                    store.commit(tx, events, now).await?;
                    Ok(sponsor)
                })
                .await
            }

            async fn claim_due_requests(&self, owner: Uuid, lease: Duration, limit: i64) -> Result<Vec<TicketAllocationRequest>, StoreError> {
                self.write(move |_, mut connection| async move {
                    let now = domain::now();
                    let until = now + chrono::Duration::from_std(lease).unwrap_or_else(|_| chrono::Duration::seconds(30));
                    let rows = sqlx::query(&format!(
                        "UPDATE ticket_allocation_requests SET locked_until = $1, lease_owner = $2, attempts = attempts + 1, last_attempt_at = $3 \
                         WHERE id IN (SELECT id FROM ticket_allocation_requests WHERE status = 'PENDING' AND next_attempt_at <= $3 AND (locked_until IS NULL OR locked_until <= $3) ORDER BY next_attempt_at LIMIT $4{skip_locked}) \
                         AND status = 'PENDING' AND (locked_until IS NULL OR locked_until <= $3) RETURNING {REQUEST_COLUMNS}",
                        skip_locked = $skip_locked
                    ))
                    .bind(until)
                    .bind(owner)
                    .bind(now)
                    .bind(limit.max(1))
                    .fetch_all(&mut *connection)
                    .await?;
                    rows.iter().map(request_from).collect()
                })
                .await
            }

            async fn finish_attempt(&self, request_id: Uuid, owner: Uuid, outcome: AttemptOutcome) -> Result<bool, StoreError> {
                if let AttemptOutcome::Retry { reason, next_attempt_at } = outcome {
                    // Still PENDING: nothing the sponsor's status or the event log shows changes.
                    return self
                        .write(move |_, mut connection| async move {
                            let changed = sqlx::query(
                                "UPDATE ticket_allocation_requests SET last_error = $1, next_attempt_at = $2, locked_until = NULL, lease_owner = NULL WHERE id = $3 AND lease_owner = $4 AND status = 'PENDING'",
                            )
                            .bind(reason)
                            .bind(next_attempt_at)
                            .bind(request_id)
                            .bind(owner)
                            .execute(&mut *connection)
                            .await?
                            .rows_affected();
                            Ok(changed == 1)
                        })
                        .await;
                }
                // Read before the writer is taken: it is not held for a lookup.
                let sponsor_id: Option<Uuid> = sqlx::query_scalar("SELECT sponsor_id FROM ticket_allocation_requests WHERE id = $1")
                    .bind(request_id)
                    .fetch_optional(&self.reader)
                    .await?;
                let Some(sponsor_id) = sponsor_id else { return Ok(false) };
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut tx = connection.begin_with($begin).await?;
                    lock_sponsor(&mut tx, sponsor_id, now).await?;
                    let row = match &outcome {
                        AttemptOutcome::Booked { purchase_id } => sqlx::query(&format!(
                            "UPDATE ticket_allocation_requests SET status = 'BOOKED', purchase_id = $1, booked_at = $2, last_error = NULL, locked_until = NULL, lease_owner = NULL WHERE id = $3 AND lease_owner = $4 AND status = 'PENDING' RETURNING {REQUEST_COLUMNS}"
                        ))
                        .bind(purchase_id)
                        .bind(now)
                        .bind(request_id)
                        .bind(owner)
                        .fetch_optional(&mut *tx)
                        .await?,
                        AttemptOutcome::Failed { reason } => sqlx::query(&format!(
                            "UPDATE ticket_allocation_requests SET status = 'FAILED', last_error = $1, locked_until = NULL, lease_owner = NULL WHERE id = $2 AND lease_owner = $3 AND status = 'PENDING' RETURNING {REQUEST_COLUMNS}"
                        ))
                        .bind(reason)
                        .bind(request_id)
                        .bind(owner)
                        .fetch_optional(&mut *tx)
                        .await?,
                        AttemptOutcome::Retry { .. } => None,
                    };
                    let Some(row) = row else {
                        tx.rollback().await?;
                        return Ok(false);
                    };
                    let request = request_from(&row)?;
                    refresh_allocation_status(&mut tx, sponsor_id).await?;
                    let event = match outcome {
                        AttemptOutcome::Booked { .. } => SponsorEventKind::TicketAllocationBooked { request },
                        _ => SponsorEventKind::TicketAllocationFailed { request },
                    };
                    store.commit(tx, vec![event], now).await?;
                    Ok(true)
                })
                .await
            }

            async fn next_attempt_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
                let rows = sqlx::query(
                    "SELECT next_attempt_at, locked_until FROM ticket_allocation_requests WHERE status = 'PENDING' ORDER BY next_attempt_at LIMIT 100",
                )
                .fetch_all(&self.reader)
                .await?;
                let mut earliest: Option<DateTime<Utc>> = None;
                for row in rows {
                    let next: DateTime<Utc> = row.try_get("next_attempt_at")?;
                    let locked: Option<DateTime<Utc>> = row.try_get("locked_until")?;
                    let due = locked.map_or(next, |l| l.max(next));
                    earliest = Some(earliest.map_or(due, |e| e.min(due)));
                }
                Ok(earliest)
            }

            async fn record_purchase_cancelled(
                &self,
                purchase_id: Uuid,
                reference: Option<AllocationReference>,
                cancelled_at: DateTime<Utc>,
            ) -> Result<Option<TicketAllocationRequest>, StoreError> {
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut tx = connection.begin_with($begin).await?;
                    // The recorded purchase id decides; a reference counts only while no id is
                    // recorded (ticketing's answer not yet written), as in `sponsor_for_reference`.
                    // Already flagged: nothing to do, which makes a redelivery harmless.
                    let row = sqlx::query(&format!(
                        "UPDATE ticket_allocation_requests SET purchase_cancelled_at = $1 \
                         WHERE purchase_cancelled_at IS NULL \
                         AND (purchase_id = $2 OR (purchase_id IS NULL AND sponsor_id = $3 AND seq = $4)) \
                         RETURNING {REQUEST_COLUMNS}"
                    ))
                    .bind(cancelled_at)
                    .bind(purchase_id)
                    .bind(reference.map(|r| r.sponsor_id).unwrap_or_else(Uuid::nil))
                    .bind(reference.map_or(-1, |r| r.seq))
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else {
                        tx.rollback().await?;
                        return Ok(None);
                    };
                    let mut request = request_from(&row)?;
                    if request.purchase_id.is_none() {
                        request.purchase_id = Some(purchase_id);
                    }
                    append_events(
                        &mut tx,
                        vec![SponsorEventKind::TicketAllocationCancelled { request: request.clone() }],
                        now,
                    )
                    .await?;
                    tx.commit().await?;
                    store.commits.notify();
                    Ok(Some(request))
                })
                .await
            }

            async fn allocation_queue_depth(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM ticket_allocation_requests WHERE status = 'PENDING'",
                )
                .fetch_one(&self.reader)
                .await?)
            }

        }

        #[async_trait]
        impl platform::EventStorage for SqlStore<Db> {
            type Kind = SponsorEventKind;
            type Error = StoreError;

            async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<SponsorEvent>, StoreError> {
                Ok(self.reader.logged_events_after(&EVENT_TABLES, after, limit).await?)
            }

            async fn event_head(&self) -> Result<i64, StoreError> {
                Ok(self.reader.logged_head(&EVENT_TABLES).await?)
            }

            async fn outbox_offset(&self) -> Result<i64, StoreError> {
                Ok(self.reader.logged_outbox_offset(&EVENT_TABLES).await?)
            }

            async fn set_outbox_offset(&self, position: i64) -> Result<(), StoreError> {
                self.detached(move |store| async move { Ok(store.writer.advance_outbox_offset(&EVENT_TABLES, position).await?) })
                    .await
            }

            async fn probe_writer(&self) -> Result<(), StoreError> {
                self.detached(|store| async move { Ok(store.writer.probe_writer(&EVENT_TABLES).await?) })
                    .await
            }

            async fn lead_relay(&self) -> Result<Option<platform::RelayLease>, StoreError> {
                Ok(platform::event_log::RelayLeasing::lead_relay(&self.writer, &EVENT_TABLES).await?)
            }
        }
    };
}

mod sqlite_dialect {
    use super::*;
    // BEGIN IMMEDIATE takes the write lock up front: with several processes on one file, a
    // deferred transaction that read first fails with SQLITE_BUSY_SNAPSHOT instead of waiting.
    crm_store_for!(Sqlite, begin = "BEGIN IMMEDIATE", skip_locked = "");
}

mod postgres_dialect {
    use super::*;
    crm_store_for!(
        Postgres,
        begin = "BEGIN",
        skip_locked = " FOR UPDATE SKIP LOCKED"
    );
}
