//! The SQL implementation of [`TicketStore`], written once and instantiated for SQLite and
//! PostgreSQL by `ticket_store_for!`. The statements are plain SQL both dialects accept
//! (`$n` placeholders, `RETURNING`, `ON CONFLICT`), and the few differences are macro
//! arguments, so the two can never drift apart.
//!
//! Concurrency rules, the same in both dialects:
//! - Seats are taken by one conditional `UPDATE … WHERE sold + n <= capacity`: the check and
//!   the decrement are one statement inside the purchase transaction, so nothing oversells.
//!   Ticket types are always locked in id order, so two purchases cannot deadlock.
//! - An anonymous buyer's seats awaiting payment are capped by a condition in the statement
//!   that takes the seats (one-line purchases on PostgreSQL) or records the purchase: the
//!   buyer's pending seats plus this purchase's stay within the cap, or nothing is written.
//!   One buyer's purchases queue for that statement: on SQLite behind its single writer, on
//!   PostgreSQL behind a transaction-scoped advisory lock per buyer, taken before any row
//!   lock, so each statement's snapshot counts every purchase of the buyer committed before.
//! - Event positions come from a one-row counter updated last in each transaction; its lock
//!   is held to commit, so positions become visible in order.
//! - SQLite allows one writer at a time anyway, so writes go through a one-connection pool
//!   and queue in the pool instead of failing with `SQLITE_BUSY`; reads use their own pool.

use std::collections::{BTreeMap, HashMap};
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

use super::{Page, PurchaseFilter, PurchaseOutcome, StoreError, TicketStore};
use crate::domain::purchase::Transition;
use crate::domain::{
    self, Access, Attendee, ClientKey, Conference, Currency, DomainError, EmailAddress,
    ExternalReference, Money, Name, NewConference, NewTicketPurchase, NewTicketType, PurchaseLine,
    PurchaseStatus, Purchaser, Ticket, TicketPurchase, TicketType, TicketTypeChanges,
    UnpaidSeatCap, Visibility,
};
use crate::events::{TicketEvent, TicketEventKind};

/// Cheap to clone (pools and the cache are shared), so that each write can run on a clone in
/// a task of its own.
pub struct SqlStore<DB: sqlx::Database> {
    writer: Pool<DB>,
    reader: Pool<DB>,
    commits: CommitSignal,
    /// Ticket types as last read, for validating purchases without a read per request. An
    /// entry may be stale (another instance changed the type): the seat update compares the
    /// fields validation relied on, so a stale entry costs a retry with a fresh read, and a
    /// refusal based on a cached entry is confirmed against a fresh read before it is given.
    ticket_types: Arc<std::sync::RwLock<HashMap<Uuid, TicketType>>>,
}

impl<DB: sqlx::Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self {
            writer: self.writer.clone(),
            reader: self.reader.clone(),
            commits: self.commits.clone(),
            ticket_types: Arc::clone(&self.ticket_types),
        }
    }
}

impl<DB: sqlx::Database> SqlStore<DB> {
    /// Runs a write on a connection of the writer pool, to completion whoever stops waiting
    /// for it. The connection is taken here, in the caller's future: a caller that gives up
    /// while queued for the writer (a client that hung up behind a burst of others) leaves no
    /// write behind to run later. Once the write has its connection it runs in a task of its
    /// own ([`platform::database::run_to_completion`]), on a clone of the store, and commits
    /// or rolls back whole: no request future ever owns a transaction.
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

    /// Like [`Self::write`], for writes that go through the pool itself (single statements,
    /// the platform's event log helpers): the connection is taken inside the task.
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
    events: "ticket_events",
    head: "ticket_event_head",
    outbox_offset: "ticket_outbox_offset",
};

/// Opens (creating and migrating as needed) the database the URL names.
pub async fn connect(
    url: &str,
    max_connections: u32,
    commits: CommitSignal,
) -> Result<Arc<dyn TicketStore>, StoreError> {
    Ok(
        match Database::open(url, max_connections, &MIGRATIONS).await? {
            Database::Sqlite(Pools { writer, reader }) => Arc::new(SqlStore::<Sqlite> {
                writer,
                reader,
                commits,
                ticket_types: Default::default(),
            }),
            Database::Postgres(Pools { writer, reader }) => Arc::new(SqlStore::<Postgres> {
                writer,
                reader,
                commits,
                ticket_types: Default::default(),
            }),
        },
    )
}

const CONFERENCE_COLUMNS: &str = "id, name, currency, starts_on, ends_on, created_at";
const TICKET_TYPE_COLUMNS: &str = "id, conference_id, name, price_amount, price_currency, capacity, sold, visibility, sale_starts_at, sale_ends_at, created_at, updated_at";
const PURCHASE_COLUMNS: &str = "id, conference_id, client_key, purchaser_name, purchaser_email, status, complimentary, total_amount, currency, external_reference, created_at, expires_at, paid_at, cancelled_at, expired_at, buyer_address";
const TICKET_COLUMNS: &str =
    "id, purchase_id, ticket_type_id, attendee_name, attendee_email, assigned_at";
/// Tickets with the client that made their purchase, which access is judged by, and the
/// purchase's status.
const TICKET_SELECT: &str = "SELECT t.id, t.purchase_id, t.ticket_type_id, t.attendee_name, t.attendee_email, t.assigned_at, p.client_key, p.status AS purchase_status FROM tickets t JOIN ticket_purchases p ON p.id = t.purchase_id";
const PAGE_MAX: i64 = 100;
const EXPIRY_BATCH: i64 = 200;

fn currency(value: &str) -> Result<Currency, StoreError> {
    Currency::from_stored(value)
        .ok_or_else(|| StoreError::Corrupt(format!("{value:?} is not a currency code")))
}

/// Internal signal that a price changed between reading a ticket type and locking it.
struct PriceMoved;

/// A buyer's unpaid seats, a condition's left-hand side (`CAST` because PostgreSQL sums
/// `BIGINT` into `NUMERIC`). Purchases past their expiry count no more, even before the
/// expiry job has marked them.
const UNPAID_SEATS_OF_BUYER: &str = "(SELECT CAST(COALESCE(SUM(l.quantity), 0) AS BIGINT) FROM ticket_purchases p JOIN ticket_purchase_lines l ON l.purchase_id = p.id WHERE p.status = 'PENDING_PAYMENT' AND p.buyer_address = ";

/// The per-buyer cap a purchase's write checks, with what it adds.
struct CapCheck<'a> {
    cap: &'a UnpaidSeatCap,
    seats: i64,
    now: DateTime<Utc>,
}

macro_rules! ticket_store_for {
    ($db:ty, begin = $begin:literal, for_update = $for_update:literal, skip_locked = $skip_locked:literal, writable_ctes = $writable_ctes:literal, lock_buyer = $lock_buyer:expr) => {
        type Db = $db;
        type DbRow = <$db as sqlx::Database>::Row;
        type Tx<'a> = sqlx::Transaction<'a, $db>;

        fn conference_from(row: &DbRow) -> Result<Conference, StoreError> {
            Ok(Conference {
                id: row.try_get("id")?,
                name: Name::trusted(row.try_get("name")?),
                currency: currency(row.try_get("currency")?)?,
                starts_on: row.try_get::<NaiveDate, _>("starts_on")?,
                ends_on: row.try_get::<NaiveDate, _>("ends_on")?,
                created_at: row.try_get("created_at")?,
            })
        }

        fn ticket_type_from(row: &DbRow) -> Result<TicketType, StoreError> {
            Ok(TicketType {
                id: row.try_get("id")?,
                conference_id: row.try_get("conference_id")?,
                name: Name::trusted(row.try_get("name")?),
                price: Money {
                    amount: row.try_get("price_amount")?,
                    currency: currency(row.try_get("price_currency")?)?,
                },
                capacity: row.try_get("capacity")?,
                sold: row.try_get("sold")?,
                visibility: Visibility::from_stored(row.try_get("visibility")?),
                sale_starts_at: row.try_get("sale_starts_at")?,
                sale_ends_at: row.try_get("sale_ends_at")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn purchase_from(row: &DbRow) -> Result<TicketPurchase, StoreError> {
            let currency = currency(row.try_get("currency")?)?;
            Ok(TicketPurchase {
                id: row.try_get("id")?,
                conference_id: row.try_get("conference_id")?,
                client_key: Some(ClientKey::trusted(row.try_get("client_key")?)),
                purchaser: Purchaser {
                    name: Name::trusted(row.try_get("purchaser_name")?),
                    email: EmailAddress::trusted(row.try_get("purchaser_email")?),
                },
                lines: Vec::new(),
                status: PurchaseStatus::from_stored(row.try_get("status")?),
                complimentary: row.try_get("complimentary")?,
                total: Money {
                    amount: row.try_get("total_amount")?,
                    currency,
                },
                external_reference: row
                    .try_get::<Option<String>, _>("external_reference")?
                    .map(ExternalReference::trusted),
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                paid_at: row.try_get("paid_at")?,
                cancelled_at: row.try_get("cancelled_at")?,
                expired_at: row.try_get("expired_at")?,
            })
        }

        /// A ticket from `TICKET_SELECT`, with its purchase's client.
        fn ticket_from(row: &DbRow) -> Result<Ticket, StoreError> {
            let client_key = ClientKey::trusted(row.try_get("client_key")?);
            ticket_row_from(row, Some(client_key))
        }

        /// A ticket from `TICKET_COLUMNS` alone; the caller knows the client, if anyone does.
        fn ticket_row_from(row: &DbRow, client_key: Option<ClientKey>) -> Result<Ticket, StoreError> {
            let name: Option<String> = row.try_get("attendee_name")?;
            let email: Option<String> = row.try_get("attendee_email")?;
            Ok(Ticket {
                id: row.try_get("id")?,
                purchase_id: row.try_get("purchase_id")?,
                client_key,
                ticket_type_id: row.try_get("ticket_type_id")?,
                attendee: match (name, email) {
                    (Some(name), Some(email)) => Some(Attendee {
                        name: Name::trusted(name),
                        email: EmailAddress::trusted(email),
                    }),
                    _ => None,
                },
                assigned_at: row.try_get("assigned_at")?,
            })
        }

        /// Fills in the lines of already loaded purchases with one query.
        async fn attach_lines<'e, E>(
            executor: E,
            purchases: &mut [TicketPurchase],
        ) -> Result<(), StoreError>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            if purchases.is_empty() {
                return Ok(());
            }
            let mut query = QueryBuilder::<Db>::new(
                "SELECT purchase_id, ticket_type_id, quantity, unit_amount FROM ticket_purchase_lines WHERE purchase_id IN (",
            );
            let mut ids = query.separated(", ");
            for p in purchases.iter() {
                ids.push_bind(p.id);
            }
            query.push(") ORDER BY purchase_id, line_no");
            let rows = query.build().fetch_all(executor).await?;
            let mut by_purchase: HashMap<Uuid, Vec<(Uuid, i64, i64)>> = HashMap::new();
            for row in rows {
                let purchase_id: Uuid = row.try_get("purchase_id")?;
                by_purchase.entry(purchase_id).or_default().push((
                    row.try_get("ticket_type_id")?,
                    row.try_get("quantity")?,
                    row.try_get("unit_amount")?,
                ));
            }
            for p in purchases.iter_mut() {
                // A purchase has one currency, stored once on the purchase row.
                let currency = p.total.currency;
                p.lines = by_purchase
                    .remove(&p.id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(ticket_type_id, quantity, amount)| PurchaseLine {
                        ticket_type_id,
                        quantity,
                        unit_price: Money { amount, currency },
                    })
                    .collect();
            }
            Ok(())
        }

        async fn load_purchase(tx: &mut Tx<'_>, id: Uuid) -> Result<Option<TicketPurchase>, StoreError> {
            let row = sqlx::query(&format!("SELECT {PURCHASE_COLUMNS} FROM ticket_purchases WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
            let Some(row) = row else { return Ok(None) };
            let mut purchases = [purchase_from(&row)?];
            attach_lines(&mut **tx, &mut purchases).await?;
            let [purchase] = purchases;
            Ok(Some(purchase))
        }

        /// How a conditional purchase status step went.
        enum StatusStep<'t> {
            /// The row changed; the transaction stays open for the step's events.
            Applied(Tx<'t>, TicketPurchase),
            /// The step had already happened: a repeat, nothing written.
            AlreadyDone(TicketPurchase),
        }

        /// Runs a purchase status step: `statement` is the conditional `UPDATE` of purchase
        /// `id`, whose condition says both which status the step starts from and whom it is
        /// allowed for. When it did not hold the transaction is rolled back and `transition`
        /// (the domain's rule for the step) tells a repeat from a refusal or from a purchase
        /// that another writer moved first; `doing` names the step in that error.
        async fn purchase_status_step<'t>(
            mut tx: Tx<'t>,
            mut statement: QueryBuilder<'_, Db>,
            id: Uuid,
            transition: impl FnOnce(&TicketPurchase) -> Result<Transition, DomainError>,
            doing: &str,
        ) -> Result<StatusStep<'t>, StoreError> {
            let changed = statement
                .build()
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let purchase = load_purchase(&mut tx, id)
                .await?
                .ok_or_else(|| DomainError::NotFound(format!("ticket purchase {id} does not exist")))?;
            if changed > 0 {
                return Ok(StatusStep::Applied(tx, purchase));
            }
            tx.rollback().await?;
            match transition(&purchase)? {
                Transition::Unchanged => Ok(StatusStep::AlreadyDone(purchase)),
                Transition::To(_) => Err(DomainError::InvalidState(format!(
                    "ticket purchase {id} changed while {doing}; try again"
                ))
                .into()),
            }
        }

        /// Pushes ` AND …`: the condition under which `access` reaches a purchase row, given the
        /// SQL expressions of its id and its client key. This is where the policy's decision
        /// meets the data: a read or write with it touches nothing the caller may not.
        fn push_access(query: &mut QueryBuilder<'_, Db>, access: &Access, id: &str, client_key: &str) {
            match access {
                Access::Any => {}
                // No purchase is public.
                Access::Public => {
                    query.push(" AND 1 = 0");
                }
                Access::OwnedBy(client) => {
                    query
                        .push(" AND ")
                        .push(client_key)
                        .push(" = ")
                        .push_bind(client.as_str().to_owned());
                }
                Access::HeldWith(held) => {
                    query
                        .push(" AND ")
                        .push(id)
                        .push(" = ")
                        .push_bind(held.purchase_id())
                        .push(" AND ")
                        .push(client_key)
                        .push(" = ")
                        .push_bind(ClientKey::anonymous().as_str().to_owned());
                }
            }
        }

        /// Pushes ` AND status IN (…)`.
        fn push_statuses(query: &mut QueryBuilder<'_, Db>, column: &str, statuses: &[PurchaseStatus]) {
            query.push(" AND ").push(column).push(" IN (");
            let mut list = query.separated(", ");
            for status in statuses {
                list.push_bind(status.as_str());
            }
            query.push(")");
        }

        /// Pushes `UPDATE ticket_types …`: takes `quantity` seats if they are left and the price
        /// is still the one the purchase was priced at; returns the ticket type as updated.
        fn push_seat_update(
            query: &mut QueryBuilder<'_, Db>,
            expected: &TicketType,
            quantity: i64,
            now: DateTime<Utc>,
            cap: Option<&CapCheck<'_>>,
        ) {
            query
                .push("UPDATE ticket_types SET sold = sold + ")
                .push_bind(quantity)
                .push(", updated_at = ")
                .push_bind(now)
                .push(" WHERE id = ")
                .push_bind(expected.id)
                .push(" AND sold + ")
                .push_bind(quantity)
                // Everything the purchase was validated and priced against, compared and set
                // in one step: a change in between makes this update miss, never misprice.
                .push(" <= capacity AND capacity = ")
                .push_bind(expected.capacity)
                .push(" AND name = ")
                .push_bind(expected.name.as_str().to_owned())
                .push(" AND price_amount = ")
                .push_bind(expected.price.amount)
                .push(" AND visibility = ")
                .push_bind(expected.visibility.as_str())
                .push(" AND sale_starts_at IS NOT DISTINCT FROM ")
                .push_bind(expected.sale_starts_at)
                .push(" AND sale_ends_at IS NOT DISTINCT FROM ")
                .push_bind(expected.sale_ends_at);
            if let Some(cap) = cap {
                // The buyer's cap, in the statement that takes the seats.
                query.push(" AND ");
                push_within_cap(query, cap);
            }
            query.push(" RETURNING ").push(TICKET_TYPE_COLUMNS);
        }

        /// Pushes the condition that the buyer's unpaid seats plus this purchase's stay
        /// within the cap.
        fn push_within_cap(query: &mut QueryBuilder<'_, Db>, check: &CapCheck<'_>) {
            query
                .push(UNPAID_SEATS_OF_BUYER)
                .push_bind(check.cap.buyer.clone())
                .push(" AND p.expires_at > ")
                .push_bind(check.now)
                .push(") + ")
                .push_bind(check.seats)
                .push(" <= ")
                .push_bind(check.cap.max);
        }

        /// The refusal for a purchase its buyer's cap stopped, saying how many are held;
        /// `None` if the cap was not what stopped it.
        async fn over_cap<'e, E>(executor: E, check: &CapCheck<'_>) -> Result<Option<StoreError>, StoreError>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            let mut query = QueryBuilder::<Db>::new("SELECT ");
            query
                .push(UNPAID_SEATS_OF_BUYER)
                .push_bind(check.cap.buyer.clone())
                .push(" AND p.expires_at > ")
                .push_bind(check.now)
                .push(")");
            let held: i64 = query.build_query_scalar().fetch_one(executor).await?;
            Ok((held + check.seats > check.cap.max).then(|| {
                DomainError::UnpaidSeatLimit {
                    max: check.cap.max,
                    held,
                    requested: check.seats,
                }
                .into()
            }))
        }

        /// The values of a purchase row, in `PURCHASE_COLUMNS` order.
        fn push_purchase_values(query: &mut QueryBuilder<'_, Db>, purchase: &TicketPurchase, client: &ClientKey, buyer_address: Option<&str>) {
            let mut values = query.separated(", ");
            values
                .push_bind(purchase.id)
                .push_bind(purchase.conference_id)
                .push_bind(client.as_str().to_owned())
                .push_bind(purchase.purchaser.name.as_str().to_owned())
                .push_bind(purchase.purchaser.email.as_str().to_owned())
                .push_bind(purchase.status.as_str())
                .push_bind(purchase.complimentary)
                .push_bind(purchase.total.amount)
                .push_bind(purchase.total.currency.as_str().to_owned())
                .push_bind(purchase.external_reference.as_ref().map(|r| r.as_str().to_owned()))
                .push_bind(purchase.created_at)
                .push_bind(purchase.expires_at)
                .push_bind(purchase.paid_at)
                .push_bind(purchase.cancelled_at)
                .push_bind(purchase.expired_at)
                .push_bind(buyer_address.map(str::to_owned));
        }

        /// Explains an empty seat update: the price moved (retry) or the seats ran out.
        async fn why_no_seats<'e, E>(
            executor: E,
            expected: &TicketType,
        ) -> Result<Result<PurchaseOutcome, PriceMoved>, StoreError>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            let row = sqlx::query(&format!("SELECT {TICKET_TYPE_COLUMNS} FROM ticket_types WHERE id = $1"))
                .bind(expected.id)
                .fetch_one(executor)
                .await?;
            let current = ticket_type_from(&row)?;
            if current.price != expected.price
                || current.capacity != expected.capacity
                || current.name != expected.name
                || current.visibility != expected.visibility
                || current.sale_starts_at != expected.sale_starts_at
                || current.sale_ends_at != expected.sale_ends_at
            {
                return Ok(Err(PriceMoved));
            }
            Err(DomainError::SoldOut {
                ticket_type: expected.id,
                remaining: current.remaining(),
            }
            .into())
        }

        /// The one-line purchase as one statement of writable CTEs: take the seats, record the
        /// purchase, its line and tickets, and append its events, the sold-out event included
        /// when this purchase takes the last seat. Its snapshot is known in advance because the
        /// seat update only succeeds on the type exactly as validated.
        #[allow(clippy::too_many_arguments)]
        fn one_line_purchase_statement<'q>(
            purchase: &TicketPurchase,
            client: &ClientKey,
            buyer_address: Option<&str>,
            cap: Option<&CapCheck<'_>>,
            expected: &TicketType,
            ticket_ids: &[(Uuid, Uuid)],
            kinds: &[TicketEventKind],
            now: DateTime<Utc>,
        ) -> Result<QueryBuilder<'q, Db>, StoreError> {
            let line = purchase
                .lines
                .first()
                .ok_or_else(|| StoreError::Corrupt("a purchase without lines".into()))?;
            let last_seat = TicketType {
                sold: expected.capacity,
                updated_at: now,
                ..expected.clone()
            };
            let mut stored = Vec::with_capacity(kinds.len() + 1);
            for kind in kinds {
                stored.push(kind.to_stored()?);
            }
            stored.push(TicketEventKind::TicketTypeSoldOut { ticket_type: last_seat }.to_stored()?);
            let always = kinds.len() as i64;
            let mut query = QueryBuilder::<Db>::new("WITH seat AS (");
            push_seat_update(&mut query, expected, line.quantity, now, cap);
            query.push("), events AS (SELECT CASE WHEN sold = capacity THEN ")
                .push_bind(always + 1)
                .push(" ELSE ")
                .push_bind(always)
                .push(" END AS count FROM seat), purchase AS (INSERT INTO ticket_purchases (")
                .push(PURCHASE_COLUMNS)
                .push(") SELECT ");
            push_purchase_values(&mut query, purchase, client, buyer_address);
            query.push(" WHERE EXISTS (SELECT 1 FROM seat) RETURNING id), line AS (INSERT INTO ticket_purchase_lines (purchase_id, line_no, ticket_type_id, quantity, unit_amount) SELECT id, 0, ")
                .push_bind(line.ticket_type_id)
                .push(", ")
                .push_bind(line.quantity)
                .push(", ")
                .push_bind(line.unit_price.amount)
                .push(" FROM purchase), issued AS (INSERT INTO tickets (id, purchase_id, ticket_type_id) SELECT t.id, purchase.id, t.ticket_type_id FROM purchase, (");
            query.push_values(ticket_ids, |mut b, (id, ticket_type_id)| {
                b.push_bind(*id).push_bind(*ticket_type_id);
            });
            query.push(") AS t (id, ticket_type_id)), ");
            push_event_ctes(&mut query, stored, now, "EXISTS (SELECT 1 FROM seat)", Some("(SELECT count FROM events)"));
            query.push(" SELECT ").push(TICKET_TYPE_COLUMNS).push(" FROM seat");
            Ok(query)
        }

        /// Pushes `head AS (…), appended AS (…)`: common table expressions that move the event
        /// head and insert the events, when `condition` holds. Only for dialects with
        /// writable CTEs.
        fn push_event_ctes(
            query: &mut QueryBuilder<'_, Db>,
            stored: Vec<(&'static str, serde_json::Value)>,
            at: DateTime<Utc>,
            condition: &str,
            count_sql: Option<&str>,
        ) {
            // With `count_sql`, only the first that many events are appended (the rest are
            // conditional on what the statement finds).
            let count = stored.len() as i64;
            query.push("head AS (UPDATE ticket_event_head SET position = position + ");
            match count_sql {
                Some(expression) => query.push(expression),
                None => query.push_bind(count),
            };
            query
                .push(" WHERE ")
                .push(condition)
                .push(" RETURNING position), appended AS (INSERT INTO ticket_events (position, id, event_type, payload, occurred_at) SELECT head.position - ");
            match count_sql {
                Some(expression) => query.push(expression),
                None => query.push_bind(count),
            };
            query.push(" + e.ordinal, e.id, e.event_type, e.payload, e.occurred_at FROM head, (");
            query.push_values(stored.into_iter().enumerate(), |mut b, (i, (event_type, data))| {
                b.push_bind(i as i64 + 1)
                    .push_bind(Uuid::now_v7())
                    .push_bind(event_type)
                    .push_bind(Json(data))
                    .push_bind(at);
            });
            query.push(") AS e (ordinal, id, event_type, payload, occurred_at)");
            if let Some(expression) = count_sql {
                query.push(" WHERE e.ordinal <= ").push(expression);
            }
            query.push(")");
        }

        /// Appends events at the next positions. Called last in a transaction: the head row
        /// stays locked until commit, which keeps positions and visibility in the same order.
        async fn append_events(
            tx: &mut Tx<'_>,
            kinds: Vec<TicketEventKind>,
            at: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            if kinds.is_empty() {
                return Ok(());
            }
            let count = kinds.len() as i64;
            let mut stored = Vec::with_capacity(kinds.len());
            for kind in &kinds {
                stored.push(kind.to_stored()?);
            }
            let mut query;
            if $writable_ctes {
                // One round trip fewer while the hot rows are locked: the head moves and the
                // events are inserted by one statement.
                query = QueryBuilder::<Db>::new("WITH ");
                push_event_ctes(&mut query, stored, at, "TRUE", None);
                query.push(" SELECT 1");
            } else {
                let end: i64 = sqlx::query_scalar(
                    "UPDATE ticket_event_head SET position = position + $1 RETURNING position",
                )
                .bind(count)
                .fetch_one(&mut **tx)
                .await?;
                query = QueryBuilder::<Db>::new(
                    "INSERT INTO ticket_events (position, id, event_type, payload, occurred_at) ",
                );
                query.push_values(stored.into_iter().enumerate(), |mut b, (i, (event_type, data))| {
                    b.push_bind(end - count + 1 + i as i64)
                        .push_bind(Uuid::now_v7())
                        .push_bind(event_type)
                        .push_bind(Json(data))
                        .push_bind(at);
                });
            }
            query.build().execute(&mut **tx).await?;
            Ok(())
        }

        /// Returns seats of cancelled or expired purchases, type by type in id order, and
        /// reports the types that were sold out and now have seats again.
        async fn release_seats(
            tx: &mut Tx<'_>,
            lines: impl Iterator<Item = &PurchaseLine>,
            at: DateTime<Utc>,
        ) -> Result<Vec<TicketEventKind>, StoreError> {
            let mut per_type: BTreeMap<Uuid, i64> = BTreeMap::new();
            for line in lines {
                *per_type.entry(line.ticket_type_id).or_default() += line.quantity;
            }
            let mut events = Vec::new();
            for (ticket_type_id, quantity) in per_type {
                let row = sqlx::query(&format!(
                    "UPDATE ticket_types SET sold = sold - $1, updated_at = $2 WHERE id = $3 RETURNING {TICKET_TYPE_COLUMNS}"
                ))
                .bind(quantity)
                .bind(at)
                .bind(ticket_type_id)
                .fetch_one(&mut **tx)
                .await?;
                let ticket_type = ticket_type_from(&row)?;
                if ticket_type.sold + quantity >= ticket_type.capacity && ticket_type.remaining() > 0 {
                    events.push(TicketEventKind::TicketTypeAvailableAgain { ticket_type });
                }
            }
            Ok(events)
        }

        impl SqlStore<Db> {
            /// All of `ids` from the cache, or `None` if any is missing.
            fn cached_ticket_types(&self, ids: &[Uuid]) -> Option<HashMap<Uuid, TicketType>> {
                let cache = self.ticket_types.read().ok()?;
                ids.iter()
                    .map(|id| cache.get(id).map(|t| (*id, t.clone())))
                    .collect()
            }

            fn remember_ticket_types<'t>(&self, types: impl Iterator<Item = &'t TicketType>) {
                if let Ok(mut cache) = self.ticket_types.write() {
                    for t in types {
                        cache.insert(t.id, t.clone());
                    }
                }
            }

            async fn ticket_types_by_id(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, TicketType>, StoreError> {
                let mut query = QueryBuilder::<Db>::new(format!(
                    "SELECT {TICKET_TYPE_COLUMNS} FROM ticket_types WHERE id IN ("
                ));
                let mut separated = query.separated(", ");
                for id in ids {
                    separated.push_bind(*id);
                }
                query.push(")");
                let rows = query.build().fetch_all(&self.reader).await?;
                rows.iter()
                    .map(|row| ticket_type_from(row).map(|t| (t.id, t)))
                    .collect()
            }

            async fn existing_purchase_for_reference(
                &self,
                client: &ClientKey,
                reference: &str,
            ) -> Result<Option<Uuid>, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM ticket_purchases WHERE client_key = $1 AND external_reference = $2",
                )
                .bind(client.as_str())
                .bind(reference)
                .fetch_optional(&self.writer)
                .await?)
            }

            /// One attempt at the purchase transaction. `Err(Ok(PriceMoved))` asks for a retry.
            async fn try_create_purchase(
                &self,
                connection: &mut PoolConnection<Db>,
                request: &NewTicketPurchase,
                types: &HashMap<Uuid, TicketType>,
                reservation_ttl: Duration,
            ) -> Result<Result<PurchaseOutcome, PriceMoved>, StoreError> {
                let now = domain::now();
                let first_type = request
                    .lines
                    .first()
                    .and_then(|l| types.get(&l.ticket_type_id))
                    .ok_or_else(|| DomainError::invalid("a purchase needs at least one line"))?;
                let currency = first_type.price.currency;
                let conference_id = first_type.conference_id;
                let total = request.total(types)?;
                let paid_at_once = request.complimentary || total.amount == 0;
                let ttl = chrono::Duration::from_std(reservation_ttl)
                    .unwrap_or_else(|_| chrono::Duration::minutes(30));
                let purchase_id = domain::new_id();
                let mut purchase = TicketPurchase {
                    id: purchase_id,
                    conference_id,
                    client_key: Some(request.client.clone()),
                    purchaser: request.purchaser.clone(),
                    lines: request
                        .lines
                        .iter()
                        .map(|l| PurchaseLine {
                            ticket_type_id: l.ticket_type_id,
                            quantity: l.quantity.get(),
                            unit_price: Money {
                                amount: if request.complimentary {
                                    0
                                } else {
                                    types.get(&l.ticket_type_id).map_or(0, |t| t.price.amount)
                                },
                                currency,
                            },
                        })
                        .collect(),
                    status: if paid_at_once { PurchaseStatus::Paid } else { PurchaseStatus::PendingPayment },
                    complimentary: request.complimentary,
                    total,
                    external_reference: request.external_reference.clone(),
                    created_at: now,
                    expires_at: (!paid_at_once).then(|| now + ttl),
                    paid_at: paid_at_once.then_some(now),
                    cancelled_at: None,
                    expired_at: None,
                };

                // A reused externalReference is caught by its unique constraint; the caller
                // turns the violation into DUPLICATE_EXTERNAL_REFERENCE.
                let mut kinds = vec![TicketEventKind::TicketPurchaseCreated { purchase: purchase.clone() }];
                if paid_at_once {
                    kinds.push(TicketEventKind::TicketPurchasePaid { purchase: purchase.clone() });
                }
                let ticket_ids: Vec<(Uuid, Uuid)> = purchase
                    .lines
                    .iter()
                    .flat_map(|l| std::iter::repeat_n(l.ticket_type_id, l.quantity as usize))
                    .map(|ticket_type_id| (domain::new_id(), ticket_type_id))
                    .collect();
                // An anonymous buyer's unpaid seats are capped; the address is kept only while
                // the purchase awaits payment.
                let cap = request.unpaid_seat_cap().filter(|_| !paid_at_once);
                let cap_check = cap.as_ref().map(|cap| CapCheck { cap, seats: purchase.ticket_count(), now });
                let buyer_address = request.buyer_address.as_deref().filter(|_| !paid_at_once);
                let one_statement = $writable_ctes && purchase.lines.len() == 1;
                if one_statement && request.idempotency_key.is_none() && cap_check.is_none() {
                    // Nothing else to write atomically with it: the statement is its own
                    // transaction, two round trips fewer than BEGIN … COMMIT around it.
                    let expected = types
                        .get(&purchase.lines[0].ticket_type_id)
                        .ok_or_else(|| StoreError::Corrupt("the purchased ticket type was not validated".into()))?;
                    let mut query = one_line_purchase_statement(&purchase, &request.client, buyer_address, None, expected, &ticket_ids, &kinds, now)?;
                    if query.build().fetch_optional(&mut **connection).await?.is_none() {
                        return why_no_seats(&mut **connection, expected).await;
                    }
                    self.commits.notify();
                    return Ok(Ok(PurchaseOutcome { purchase, replayed: false }));
                }

                let mut tx = connection.begin_with($begin).await?;
                if let (Some(check), Some(lock)) = (&cap_check, $lock_buyer) {
                    // One buyer's purchases queue here, so the cap each one's write checks
                    // counts every purchase of that buyer committed before it. (SQLite's
                    // single writer already queues every write.)
                    sqlx::query(lock)
                        .bind(format!("ticketing.unpaid-seats:{}", check.cap.buyer))
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(key) = request.idempotency_slot() {
                    let inserted = sqlx::query(
                        "INSERT INTO idempotency_keys (client_key, key, request_hash, purchase_id, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (client_key, key) DO NOTHING",
                    )
                    .bind(request.client.as_str())
                    .bind(key.as_str())
                    .bind(&request.request_hash)
                    .bind(purchase_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if inserted == 0 {
                        let row = sqlx::query(
                            "SELECT request_hash, purchase_id FROM idempotency_keys WHERE client_key = $1 AND key = $2",
                        )
                        .bind(request.client.as_str())
                        .bind(key.as_str())
                        .fetch_one(&mut *tx)
                        .await?;
                        let stored_hash: String = row.try_get("request_hash")?;
                        let first_id: Uuid = row.try_get("purchase_id")?;
                        if stored_hash != request.request_hash {
                            return Err(DomainError::IdempotencyKeyReused.into());
                        }
                        let first = load_purchase(&mut tx, first_id)
                            .await?
                            .ok_or_else(|| StoreError::Corrupt(format!("idempotency key points at missing purchase {first_id}")))?;
                        tx.rollback().await?;
                        return Ok(Ok(PurchaseOutcome { purchase: first, replayed: true }));
                    }
                }
                let mut sold_out = Vec::new();

                if one_statement {
                    let expected = types
                        .get(&purchase.lines[0].ticket_type_id)
                        .ok_or_else(|| StoreError::Corrupt("the purchased ticket type was not validated".into()))?;
                    let mut query = one_line_purchase_statement(&purchase, &request.client, buyer_address, cap_check.as_ref(), expected, &ticket_ids, &kinds, now)?;
                    if query.build().fetch_optional(&mut *tx).await?.is_none() {
                        if let Some(check) = &cap_check
                            && let Some(refusal) = over_cap(&mut *tx, check).await?
                        {
                            return Err(refusal);
                        }
                        return why_no_seats(&mut *tx, expected).await;
                    }
                } else {
                    let mut insert = QueryBuilder::<Db>::new("INSERT INTO ticket_purchases (");
                    insert.push(PURCHASE_COLUMNS);
                    match &cap_check {
                        None => {
                            insert.push(") VALUES (");
                            push_purchase_values(&mut insert, &purchase, &request.client, buyer_address);
                            insert.push(")");
                        }
                        Some(check) => {
                            // The buyer's cap, in the statement that records the purchase.
                            insert.push(") SELECT ");
                            push_purchase_values(&mut insert, &purchase, &request.client, buyer_address);
                            insert.push(" WHERE ");
                            push_within_cap(&mut insert, check);
                        }
                    }
                    if insert.build().execute(&mut *tx).await?.rows_affected() == 0 {
                        let refusal = match &cap_check {
                            Some(check) => over_cap(&mut *tx, check).await?,
                            None => None,
                        };
                        return Err(refusal.unwrap_or_else(|| {
                            DomainError::InvalidState("the purchase could not be recorded; try again".into()).into()
                        }));
                    }

                    let mut lines = QueryBuilder::<Db>::new(
                        "INSERT INTO ticket_purchase_lines (purchase_id, line_no, ticket_type_id, quantity, unit_amount) ",
                    );
                    lines.push_values(purchase.lines.iter().enumerate(), |mut b, (i, line)| {
                        b.push_bind(purchase.id)
                            .push_bind(i as i32)
                            .push_bind(line.ticket_type_id)
                            .push_bind(line.quantity)
                            .push_bind(line.unit_price.amount);
                    });
                    lines.build().execute(&mut *tx).await?;

                    let mut tickets = QueryBuilder::<Db>::new("INSERT INTO tickets (id, purchase_id, ticket_type_id) ");
                    tickets.push_values(&ticket_ids, |mut b, (id, ticket_type_id)| {
                        b.push_bind(*id).push_bind(purchase.id).push_bind(*ticket_type_id);
                    });
                    tickets.build().execute(&mut *tx).await?;

                    // Seats last, in id order: the hot rows stay locked for as short a time as
                    // possible, and two purchases never wait on each other in a cycle.
                    let mut by_type: Vec<_> = purchase.lines.iter().collect();
                    by_type.sort_by_key(|l| l.ticket_type_id);
                    for line in by_type {
                        let expected = types
                            .get(&line.ticket_type_id)
                            .ok_or_else(|| StoreError::Corrupt(format!("ticket type {} was not validated", line.ticket_type_id)))?;
                        let mut query = QueryBuilder::<Db>::new("");
                        push_seat_update(&mut query, expected, line.quantity, now, None);
                        match query.build().fetch_optional(&mut *tx).await? {
                            Some(row) => {
                                let ticket_type = ticket_type_from(&row)?;
                                if ticket_type.remaining() == 0 {
                                    sold_out.push(TicketEventKind::TicketTypeSoldOut { ticket_type });
                                }
                            }
                            None => return why_no_seats(&mut *tx, expected).await,
                        }
                    }
                    kinds.extend(sold_out);
                    append_events(&mut tx, kinds, now).await?;
                }
                tx.commit().await?;
                self.commits.notify();
                purchase.client_key = Some(request.client.clone());
                Ok(Ok(PurchaseOutcome { purchase, replayed: false }))
            }
        }

        #[async_trait]
        impl TicketStore for SqlStore<Db> {
            async fn create_conference(&self, new: NewConference) -> Result<Conference, StoreError> {
                self.write(move |store, mut connection| async move {
                    let conference = Conference {
                        id: domain::new_id(),
                        name: new.name,
                        currency: new.currency,
                        starts_on: new.starts_on,
                        ends_on: new.ends_on,
                        created_at: domain::now(),
                    };
                    let mut tx = connection.begin_with($begin).await?;
                    sqlx::query(&format!(
                        "INSERT INTO conferences ({CONFERENCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
                    ))
                    .bind(conference.id)
                    .bind(conference.name.as_str())
                    .bind(conference.currency.as_str())
                    .bind(conference.starts_on)
                    .bind(conference.ends_on)
                    .bind(conference.created_at)
                    .execute(&mut *tx)
                    .await?;
                    append_events(
                        &mut tx,
                        vec![TicketEventKind::ConferenceCreated { conference: conference.clone() }],
                        conference.created_at,
                    )
                    .await?;
                    tx.commit().await?;
                    store.commits.notify();
                    Ok(conference)
                })
                .await
            }

            async fn conference(&self, id: Uuid) -> Result<Option<Conference>, StoreError> {
                let row = sqlx::query(&format!("SELECT {CONFERENCE_COLUMNS} FROM conferences WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.reader)
                    .await?;
                row.as_ref().map(conference_from).transpose()
            }

            async fn conferences(&self, after: Option<Uuid>, first: i64) -> Result<Page<Conference>, StoreError> {
                let first = first.clamp(0, PAGE_MAX);
                let mut query = QueryBuilder::<Db>::new(format!("SELECT {CONFERENCE_COLUMNS} FROM conferences"));
                if let Some(after) = after {
                    query.push(" WHERE id > ").push_bind(after);
                }
                query.push(" ORDER BY id LIMIT ").push_bind(first + 1);
                let rows = query.build().fetch_all(&self.reader).await?;
                let items = rows.iter().map(conference_from).collect::<Result<Vec<_>, _>>()?;
                Ok(Page::from_lookahead(items, first))
            }

            async fn create_ticket_type(&self, new: NewTicketType) -> Result<TicketType, StoreError> {
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut tx = connection.begin_with($begin).await?;
                    let conference_currency: Option<String> =
                        sqlx::query_scalar("SELECT currency FROM conferences WHERE id = $1")
                            .bind(new.conference_id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    let Some(conference_currency) = conference_currency else {
                        return Err(DomainError::NotFound(format!("conference {} does not exist", new.conference_id)).into());
                    };
                    if conference_currency != new.price.currency.as_str() {
                        return Err(DomainError::invalid(format!(
                            "price must be in {conference_currency}, the conference's currency, not {}",
                            new.price.currency
                        ))
                        .into());
                    }
                    let ticket_type = TicketType {
                        id: domain::new_id(),
                        conference_id: new.conference_id,
                        name: new.name,
                        price: new.price,
                        capacity: new.capacity,
                        sold: 0,
                        visibility: new.visibility,
                        sale_starts_at: new.sale_starts_at,
                        sale_ends_at: new.sale_ends_at,
                        created_at: now,
                        updated_at: now,
                    };
                    sqlx::query(&format!(
                        "INSERT INTO ticket_types ({TICKET_TYPE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                    ))
                    .bind(ticket_type.id)
                    .bind(ticket_type.conference_id)
                    .bind(ticket_type.name.as_str())
                    .bind(ticket_type.price.amount)
                    .bind(ticket_type.price.currency.as_str())
                    .bind(ticket_type.capacity)
                    .bind(ticket_type.sold)
                    .bind(ticket_type.visibility.as_str())
                    .bind(ticket_type.sale_starts_at)
                    .bind(ticket_type.sale_ends_at)
                    .bind(ticket_type.created_at)
                    .bind(ticket_type.updated_at)
                    .execute(&mut *tx)
                    .await?;
                    append_events(&mut tx, vec![TicketEventKind::TicketTypeCreated { ticket_type: ticket_type.clone() }], now).await?;
                    tx.commit().await?;
                    store.commits.notify();
                    Ok(ticket_type)
                })
                .await
            }

            async fn update_ticket_type(&self, id: Uuid, changes: TicketTypeChanges) -> Result<TicketType, StoreError> {
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut tx = connection.begin_with($begin).await?;
                    let row = sqlx::query(&format!(
                        concat!("SELECT {} FROM ticket_types WHERE id = $1", $for_update),
                        TICKET_TYPE_COLUMNS
                    ))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else {
                        return Err(DomainError::NotFound(format!("ticket type {id} does not exist")).into());
                    };
                    let current = ticket_type_from(&row)?;
                    let mut next = changes.apply_to(&current, now)?;
                    next.updated_at = now;
                    sqlx::query(
                        "UPDATE ticket_types SET name = $1, price_amount = $2, capacity = $3, visibility = $4, sale_starts_at = $5, sale_ends_at = $6, updated_at = $7 WHERE id = $8",
                    )
                    .bind(next.name.as_str())
                    .bind(next.price.amount)
                    .bind(next.capacity)
                    .bind(next.visibility.as_str())
                    .bind(next.sale_starts_at)
                    .bind(next.sale_ends_at)
                    .bind(next.updated_at)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    let mut kinds = vec![TicketEventKind::TicketTypeUpdated { ticket_type: next.clone() }];
                    if current.remaining() == 0 && next.remaining() > 0 {
                        kinds.push(TicketEventKind::TicketTypeAvailableAgain { ticket_type: next.clone() });
                    } else if current.remaining() > 0 && next.remaining() == 0 {
                        kinds.push(TicketEventKind::TicketTypeSoldOut { ticket_type: next.clone() });
                    }
                    append_events(&mut tx, kinds, now).await?;
                    tx.commit().await?;
                    store.commits.notify();
                    store.remember_ticket_types(std::iter::once(&next));
                    Ok(next)
                })
                .await
            }

            async fn ticket_type(&self, id: Uuid) -> Result<Option<TicketType>, StoreError> {
                let row = sqlx::query(&format!("SELECT {TICKET_TYPE_COLUMNS} FROM ticket_types WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.reader)
                    .await?;
                row.as_ref().map(ticket_type_from).transpose()
            }

            async fn ticket_types_of(&self, conference_id: Uuid) -> Result<Vec<TicketType>, StoreError> {
                let rows = sqlx::query(&format!(
                    "SELECT {TICKET_TYPE_COLUMNS} FROM ticket_types WHERE conference_id = $1 ORDER BY id"
                ))
                .bind(conference_id)
                .fetch_all(&self.reader)
                .await?;
                rows.iter().map(ticket_type_from).collect()
            }

            async fn create_purchase(
                &self,
                request: NewTicketPurchase,
                reservation_ttl: Duration,
            ) -> Result<PurchaseOutcome, StoreError> {
                // Validation reads run in the caller's future and may be dropped freely; each
                // attempt at the transaction is a write of its own.
                {
                    let store = self;
                    request.check_request()?;
                    let request = Arc::new(request);
                    let ids: Vec<Uuid> = request.lines.iter().map(|l| l.ticket_type_id).collect();
                    let mut attempt = 0;
                    let mut fresh = false;
                    loop {
                        attempt += 1;
                        // Validation happens before the transaction so the write lock is held only
                        // for the writes; the seat update re-checks what validation relied on.
                        let cached = if fresh { None } else { store.cached_ticket_types(&ids) };
                        let from_cache = cached.is_some();
                        let types = match cached {
                            Some(types) => types,
                            None => {
                                let types = store.ticket_types_by_id(&ids).await?;
                                store.remember_ticket_types(types.values());
                                types
                            }
                        };
                        if let Err(refusal) = request.check_against(&types, domain::now(), !from_cache) {
                            if from_cache {
                                // Refuse only on what the database says now.
                                fresh = true;
                                continue;
                            }
                            return Err(refusal.into());
                        }
                        let attempt_request = Arc::clone(&request);
                        let written = store
                            .write(move |store, mut connection| async move {
                                store
                                    .try_create_purchase(&mut connection, &attempt_request, &types, reservation_ttl)
                                    .await
                            })
                            .await;
                        match written {
                            Ok(Ok(outcome)) => return Ok(outcome),
                            Ok(Err(PriceMoved)) if attempt < 4 => {
                                fresh = true;
                                continue;
                            }
                            Ok(Err(PriceMoved)) => {
                                return Err(DomainError::InvalidState(
                                    "prices are changing right now; try again".into(),
                                )
                                .into());
                            }
                            Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                                // A concurrent purchase took the same externalReference first.
                                if let Some(reference) = &request.external_reference
                                    && let Some(purchase_id) = store
                                        .existing_purchase_for_reference(&request.client, reference.as_str())
                                        .await?
                                {
                                    return Err(DomainError::DuplicateExternalReference {
                                        reference: reference.as_str().to_owned(),
                                        purchase_id,
                                    }
                                    .into());
                                }
                                return Err(StoreError::Database(sqlx::Error::Database(e)));
                            }
                            Err(other) => return Err(other),
                        }
                    }
                }
            }

            async fn purchase(&self, id: Uuid, access: &Access) -> Result<Option<TicketPurchase>, StoreError> {
                let mut query = QueryBuilder::<Db>::new(format!("SELECT {PURCHASE_COLUMNS} FROM ticket_purchases WHERE id = "));
                query.push_bind(id);
                push_access(&mut query, access, "id", "client_key");
                let row = query.build().fetch_optional(&self.reader).await?;
                let Some(row) = row else { return Ok(None) };
                let mut purchases = [purchase_from(&row)?];
                attach_lines(&self.reader, &mut purchases).await?;
                let [purchase] = purchases;
                Ok(Some(purchase))
            }

            async fn purchases(
                &self,
                filter: PurchaseFilter,
                after: Option<Uuid>,
                first: i64,
            ) -> Result<Page<TicketPurchase>, StoreError> {
                let first = first.clamp(0, PAGE_MAX);
                let mut query = QueryBuilder::<Db>::new(format!(
                    "SELECT {PURCHASE_COLUMNS} FROM ticket_purchases WHERE 1 = 1"
                ));
                if let Some(conference_id) = filter.conference_id {
                    query.push(" AND conference_id = ").push_bind(conference_id);
                }
                if let Some(status) = filter.status {
                    query.push(" AND status = ").push_bind(status.as_str());
                }
                if let Some(reference) = filter.external_reference {
                    query.push(" AND external_reference = ").push_bind(reference);
                }
                push_access(&mut query, &filter.access, "id", "client_key");
                if let Some(after) = after {
                    query.push(" AND id > ").push_bind(after);
                }
                query.push(" ORDER BY id LIMIT ").push_bind(first + 1);
                let rows = query.build().fetch_all(&self.reader).await?;
                let items = rows.iter().map(purchase_from).collect::<Result<Vec<_>, _>>()?;
                let mut page = Page::from_lookahead(items, first);
                attach_lines(&self.reader, &mut page.items).await?;
                Ok(page)
            }

            async fn confirm_payment(&self, id: Uuid) -> Result<TicketPurchase, StoreError> {
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut statement = QueryBuilder::<Db>::new("UPDATE ticket_purchases SET status = 'PAID', paid_at = ");
                    statement
                        .push_bind(now)
                        .push(", expires_at = NULL, buyer_address = NULL WHERE id = ")
                        .push_bind(id)
                        .push(" AND status = 'PENDING_PAYMENT' AND (expires_at IS NULL OR expires_at > ")
                        .push_bind(now)
                        .push(")");
                    let step = purchase_status_step(
                        connection.begin_with($begin).await?,
                        statement,
                        id,
                        |p| p.confirm_payment(now),
                        "being paid",
                    )
                    .await?;
                    let (mut tx, purchase) = match step {
                        StatusStep::Applied(tx, purchase) => (tx, purchase),
                        StatusStep::AlreadyDone(purchase) => return Ok(purchase),
                    };
                    append_events(&mut tx, vec![TicketEventKind::TicketPurchasePaid { purchase: purchase.clone() }], now).await?;
                    tx.commit().await?;
                    store.commits.notify();
                    Ok(purchase)
                })
                .await
            }

            async fn cancel_purchase(&self, id: Uuid, access: Access) -> Result<TicketPurchase, StoreError> {
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    // Who may cancel, and from which status, is part of the update: a payment
                    // confirmed between the caller's last look and this statement makes it
                    // miss, instead of cancelling a paid purchase for a buyer.
                    let mut statement = QueryBuilder::<Db>::new("UPDATE ticket_purchases SET status = 'CANCELLED', cancelled_at = ");
                    statement
                        .push_bind(now)
                        .push(", expires_at = NULL, buyer_address = NULL WHERE id = ")
                        .push_bind(id);
                    push_statuses(&mut statement, "status", TicketPurchase::cancellable_statuses(&access));
                    push_access(&mut statement, &access, "id", "client_key");
                    let step = purchase_status_step(
                        connection.begin_with($begin).await?,
                        statement,
                        id,
                        |p| p.cancel(&access),
                        "being cancelled",
                    )
                    .await?;
                    let (mut tx, purchase) = match step {
                        StatusStep::Applied(tx, purchase) => (tx, purchase),
                        StatusStep::AlreadyDone(purchase) => return Ok(purchase),
                    };
                    let mut kinds = vec![TicketEventKind::TicketPurchaseCancelled { purchase: purchase.clone() }];
                    kinds.extend(release_seats(&mut tx, purchase.lines.iter(), now).await?);
                    append_events(&mut tx, kinds, now).await?;
                    tx.commit().await?;
                    store.commits.notify();
                    Ok(purchase)
                })
                .await
            }

            async fn expire_due_reservations(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
                self.write(move |store, mut connection| async move {
                    let mut tx = connection.begin_with($begin).await?;
                    // Every instance runs this job. The status condition makes each expiry happen
                    // once; on PostgreSQL, SKIP LOCKED also lets a second instance pass over rows
                    // the first is expiring instead of queueing behind them.
                    let expired: Vec<Uuid> = sqlx::query_scalar(concat!(
                        "UPDATE ticket_purchases SET status = 'EXPIRED', expired_at = $1, buyer_address = NULL WHERE id IN (SELECT id FROM ticket_purchases WHERE status = 'PENDING_PAYMENT' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
                        $skip_locked,
                        ") AND status = 'PENDING_PAYMENT' RETURNING id",
                    ))
                    .bind(now)
                    .bind(EXPIRY_BATCH)
                    .fetch_all(&mut *tx)
                    .await?;
                    if expired.is_empty() {
                        tx.rollback().await?;
                        return Ok(0);
                    }
                    let mut purchases = Vec::with_capacity(expired.len());
                    for id in &expired {
                        if let Some(p) = load_purchase(&mut tx, *id).await? {
                            purchases.push(p);
                        }
                    }
                    let mut kinds: Vec<TicketEventKind> = purchases
                        .iter()
                        .map(|p| TicketEventKind::TicketPurchaseExpired { purchase: p.clone() })
                        .collect();
                    kinds.extend(release_seats(&mut tx, purchases.iter().flat_map(|p| p.lines.iter()), now).await?);
                    append_events(&mut tx, kinds, now).await?;
                    tx.commit().await?;
                    store.commits.notify();
                    Ok(purchases.len())
                })
                .await
            }

            async fn purge_idempotency_keys(&self, created_before: DateTime<Utc>) -> Result<u64, StoreError> {
                self.detached(move |store| async move {
                    Ok(sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                        .bind(created_before)
                        .execute(&store.writer)
                        .await?
                        .rows_affected())
                })
                .await
            }

            async fn tickets_of(&self, purchase_id: Uuid) -> Result<Vec<Ticket>, StoreError> {
                let rows = sqlx::query(&format!("{TICKET_SELECT} WHERE t.purchase_id = $1 ORDER BY t.id"))
                    .bind(purchase_id)
                    .fetch_all(&self.reader)
                    .await?;
                rows.iter().map(ticket_from).collect()
            }

            async fn ticket(&self, id: Uuid, access: &Access) -> Result<Option<Ticket>, StoreError> {
                let mut query = QueryBuilder::<Db>::new(format!("{TICKET_SELECT} WHERE t.id = "));
                query.push_bind(id);
                push_access(&mut query, access, "p.id", "p.client_key");
                let row = query.build().fetch_optional(&self.reader).await?;
                row.as_ref().map(ticket_from).transpose()
            }

            async fn assign_ticket(&self, id: Uuid, attendee: Attendee, access: Access) -> Result<Ticket, StoreError> {
                self.write(move |store, mut connection| async move {
                    let now = domain::now();
                    let mut tx = connection.begin_with($begin).await?;
                    // Who may assign is part of the update: the purchase must hold its seats
                    // and be reachable with the caller's access, in the same statement.
                    let mut statement = QueryBuilder::<Db>::new("UPDATE tickets SET attendee_name = ");
                    statement
                        .push_bind(attendee.name.as_str().to_owned())
                        .push(", attendee_email = ")
                        .push_bind(attendee.email.as_str().to_owned())
                        .push(", assigned_at = ")
                        .push_bind(now)
                        .push(" WHERE id = ")
                        .push_bind(id)
                        .push(" AND purchase_id IN (SELECT p.id FROM ticket_purchases p WHERE 1 = 1");
                    push_statuses(
                        &mut statement,
                        "p.status",
                        &[PurchaseStatus::PendingPayment, PurchaseStatus::Paid],
                    );
                    push_access(&mut statement, &access, "p.id", "p.client_key");
                    statement.push(") RETURNING ").push(TICKET_COLUMNS);
                    let Some(row) = statement.build().fetch_optional(&mut *tx).await? else {
                        // Only to explain the refusal: the update above already decided.
                        let found = sqlx::query(&format!("{TICKET_SELECT} WHERE t.id = $1"))
                            .bind(id)
                            .fetch_optional(&mut *tx)
                            .await?;
                        let Some(found) = found else {
                            return Err(DomainError::NotFound(format!("ticket {id} does not exist")).into());
                        };
                        let ticket = ticket_from(&found)?;
                        let status: String = found.try_get("purchase_status")?;
                        tx.rollback().await?;
                        ticket.assign(&access, PurchaseStatus::from_stored(&status))?;
                        return Err(DomainError::InvalidState(format!(
                            "ticket {id} changed while being assigned; try again"
                        ))
                        .into());
                    };
                    // The update matched only a purchase `access` reaches, so for a client's
                    // own or a held purchase that says whose it is; full access needs no owner
                    // to see the attendee.
                    let owner = match &access {
                        Access::OwnedBy(client) => Some(client.clone()),
                        Access::HeldWith(_) => Some(ClientKey::anonymous()),
                        Access::Any | Access::Public => None,
                    };
                    let ticket = ticket_row_from(&row, owner)?;
                    append_events(&mut tx, vec![TicketEventKind::TicketAssigned { ticket: ticket.clone() }], now).await?;
                    tx.commit().await?;
                    store.commits.notify();
                    Ok(ticket)
                })
                .await
            }

        }

        #[async_trait]
        impl platform::EventStorage for SqlStore<Db> {
            type Kind = TicketEventKind;
            type Error = StoreError;

            async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<TicketEvent>, StoreError> {
                Ok(self.reader.logged_events_after(&EVENT_TABLES, after, limit).await?)
            }

            async fn event_head(&self) -> Result<i64, StoreError> {
                Ok(self.reader.logged_head(&EVENT_TABLES).await?)
            }

            async fn outbox_offset(&self) -> Result<i64, StoreError> {
                Ok(self.reader.logged_outbox_offset(&EVENT_TABLES).await?)
            }

            async fn set_outbox_offset(&self, position: i64) -> Result<(), StoreError> {
                self.detached(move |store| async move {
                    Ok(store.writer.advance_outbox_offset(&EVENT_TABLES, position).await?)
                })
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
    // SQLite has no UPDATE inside WITH; its single writer needs no saving here anyway.
    // BEGIN IMMEDIATE takes the write lock up front: with several processes on one file, a
    // deferred transaction that read first fails with SQLITE_BUSY_SNAPSHOT instead of waiting.
    ticket_store_for!(
        Sqlite,
        begin = "BEGIN IMMEDIATE",
        for_update = "",
        skip_locked = "",
        writable_ctes = false,
        lock_buyer = None
    );
}

mod postgres_dialect {
    use super::*;
    ticket_store_for!(
        Postgres,
        begin = "BEGIN",
        for_update = " FOR UPDATE",
        skip_locked = " FOR UPDATE SKIP LOCKED",
        writable_ctes = true,
        lock_buyer = Some("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
    );
}
