//! The ticket allocation process manager: works off the queue of allocation requests that
//! the store writes in the same transaction as `SponsorOnboarded` (or a grown allowance),
//! by calling ticketing's `createTicketPurchase` with the CRM's own service token.
//!
//! Exactly once, however the network or either service fails:
//! - a request is claimed under a lease (`locked_until`), so two workers, in one process or
//!   several, never call ticketing for it at the same time, and a crashed worker's claim
//!   lapses by itself;
//! - every call for a request carries the same `externalReference` and idempotency key, so
//!   ticketing books it at most once; a retry after a lost answer gets the first purchase back
//!   (idempotent replay) or `DUPLICATE_EXTERNAL_REFERENCE` with its id, and either way the
//!   request is marked BOOKED with that purchase. That covers a crash between ticketing's
//!   commit and the CRM's.
//!
//! Any number of CRM instances may run this worker on one database: claims are conditional
//! updates (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so each request is booked by one of them.
//!
//! Transient failures (unreachable, HTTP 5xx, `INTERNAL_SERVER_ERROR`) are retried with
//! exponential backoff; refusals that would only repeat (sold out, forbidden, not found, bad
//! input, no sponsor ticket type configured) mark the request FAILED with the reason until an
//! admin calls `retryTicketAllocation`.

use std::time::Duration;

use platform::CommitSignal;
use tokio::sync::watch;
use uuid::Uuid;

use crate::domain::allocation::retry_delay;
use crate::domain::{self, TicketAllocationRequest};
use crate::store::{AttemptOutcome, SharedStore, StoreError};
use crate::ticketing_client::{ComplimentaryPurchase, TicketingClient, TicketingError};

#[derive(Debug, Clone, Copy)]
pub struct AllocationSettings {
    /// How long a claim keeps other workers off a request; longer than one ticketing call.
    pub lease: Duration,
    /// The first retry waits this long, each later one twice as long…
    pub retry_base: Duration,
    /// …up to this.
    pub retry_max: Duration,
    /// How often the queue is looked at when nothing wakes the worker sooner.
    pub poll_interval: Duration,
    /// Requests claimed and sent at once.
    pub batch: i64,
}

impl Default for AllocationSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            poll_interval: Duration::from_secs(5),
            batch: 16,
        }
    }
}

/// Shown on a sponsor whose tickets cannot be booked because the CRM has nowhere to book them.
pub const TICKETING_NOT_CONFIGURED: &str =
    "ticketing is not configured: start the CRM with --ticketing-url and --ticketing-token";

pub struct AllocationWorker {
    store: SharedStore,
    ticketing: TicketingClient,
    commits: CommitSignal,
    settings: AllocationSettings,
}

impl AllocationWorker {
    pub fn new(
        store: SharedStore,
        ticketing: TicketingClient,
        commits: CommitSignal,
        settings: AllocationSettings,
    ) -> Self {
        Self {
            store,
            ticketing,
            commits,
            settings,
        }
    }

    /// Runs until `shutdown` flips to true. Wakes on every commit (a new request may be
    /// due), when the earliest backoff ends, and at the poll interval.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut commits = self.commits.subscribe();
        let mut depth_measured: Option<tokio::time::Instant> = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            // A query per measurement; the worker wakes on every commit, so at most once a second.
            if depth_measured.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                depth_measured = Some(tokio::time::Instant::now());
                if let Ok(depth) = self.store.allocation_queue_depth().await {
                    metrics::gauge!(platform::telemetry::names::ALLOCATION_QUEUE_DEPTH, "service" => "crm")
                        .set(depth as f64);
                }
            }
            match self.work_once().await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(error) => tracing::warn!(%error, "ticket allocation queue could not be read"),
            }
            let wait = match self.store.next_attempt_due().await {
                Ok(Some(at)) => (at - domain::now())
                    .to_std()
                    .unwrap_or_default()
                    .min(self.settings.poll_interval),
                _ => self.settings.poll_interval,
            }
            // A request leased elsewhere can be "due" now; never spin on it.
            .max(Duration::from_millis(10));
            tokio::select! {
                _ = commits.changed() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Claims due requests and sends them; returns how many were claimed.
    pub async fn work_once(&self) -> Result<usize, StoreError> {
        // A fresh lease id per claim, not per worker: if this worker's own lease lapses and it
        // claims the request again, the late answer of the first claim cannot be recorded.
        let lease = Uuid::new_v4();
        let claimed = self
            .store
            .claim_due_requests(lease, self.settings.lease, self.settings.batch)
            .await?;
        let count = claimed.len();
        futures_util::future::join_all(claimed.into_iter().map(|request| async move {
            let outcome = self.attempt(&request).await;
            match &outcome {
                AttemptOutcome::Booked { purchase_id } => tracing::info!(
                    reference = %request.external_reference, %purchase_id, "sponsor tickets booked"
                ),
                AttemptOutcome::Failed { reason } => tracing::warn!(
                    reference = %request.external_reference, %reason, "sponsor ticket booking refused"
                ),
                AttemptOutcome::Retry { reason, .. } => tracing::info!(
                    reference = %request.external_reference, attempts = request.attempts, %reason,
                    "sponsor ticket booking will be retried"
                ),
            }
            match self
                .store
                .finish_attempt(request.id, lease, outcome)
                .await
            {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    reference = %request.external_reference,
                    "lost the lease on an allocation request; another worker owns it now"
                ),
                // The lease lapses and the request is tried again; ticketing's idempotency
                // makes that safe even if this attempt booked.
                Err(error) => tracing::warn!(%error, "could not record an allocation attempt"),
            }
        }))
        .await;
        Ok(count)
    }

    fn retry(&self, request: &TicketAllocationRequest, reason: String) -> AttemptOutcome {
        let delay = retry_delay(
            request.attempts,
            self.settings.retry_base,
            self.settings.retry_max,
        );
        AttemptOutcome::Retry {
            reason,
            next_attempt_at: domain::now()
                + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(1)),
        }
    }

    async fn attempt(&self, request: &TicketAllocationRequest) -> AttemptOutcome {
        let purchase = match self.purchase_for(request).await {
            Ok(Ok(purchase)) => purchase,
            Ok(Err(reason)) => return AttemptOutcome::Failed { reason },
            Err(error) => {
                return self.retry(request, format!("the CRM's database failed: {error}"));
            }
        };
        match self.ticketing.issue_complimentary(&purchase).await {
            Ok(issued) => AttemptOutcome::Booked {
                purchase_id: issued.id,
            },
            Err(TicketingError::Refused {
                code,
                ticket_purchase_id,
                message,
            }) if code == "DUPLICATE_EXTERNAL_REFERENCE" || code == "IDEMPOTENCY_KEY_REUSED" => {
                // Ticketing already holds this booking: an earlier attempt succeeded but its
                // answer, or the CRM's record of it, was lost.
                if let Some(purchase_id) = ticket_purchase_id {
                    return AttemptOutcome::Booked { purchase_id };
                }
                match self
                    .ticketing
                    .purchase_by_reference(&request.external_reference)
                    .await
                {
                    Ok(Some(found)) => AttemptOutcome::Booked {
                        purchase_id: found.id,
                    },
                    Ok(None) => AttemptOutcome::Failed {
                        reason: format!(
                            "ticketing reports {code} ({message}) but lists no purchase {}",
                            request.external_reference
                        ),
                    },
                    Err(error) if error.is_transient() => self.retry(request, error.to_string()),
                    Err(error) => AttemptOutcome::Failed {
                        reason: error.to_string(),
                    },
                }
            }
            Err(error) if error.is_transient() => self.retry(request, error.to_string()),
            Err(error) => AttemptOutcome::Failed {
                reason: error.to_string(),
            },
        }
    }

    /// The purchase to ask for, or the reason none can be (a permanent failure).
    async fn purchase_for(
        &self,
        request: &TicketAllocationRequest,
    ) -> Result<Result<ComplimentaryPurchase, String>, StoreError> {
        let Some(sponsor) = self.store.sponsor(request.sponsor_id).await? else {
            return Ok(Err(format!(
                "sponsor {} no longer exists",
                request.sponsor_id
            )));
        };
        let ticket_type = self
            .store
            .conference(sponsor.conference_id)
            .await?
            .and_then(|c| c.sponsor_ticket_type_id);
        let Some(ticket_type_id) = ticket_type else {
            return Ok(Err(format!(
                "no sponsor ticket type is configured for conference {}: set one with configureSponsorTickets, then retryTicketAllocation",
                sponsor.conference_id
            )));
        };
        Ok(Ok(ComplimentaryPurchase {
            ticket_type_id,
            quantity: request.quantity,
            purchaser_name: sponsor.contact_name.as_str().to_owned(),
            purchaser_email: sponsor.contact_email.as_str().to_owned(),
            external_reference: request.external_reference.clone(),
            idempotency_key: request.idempotency_key(),
        }))
    }
}
