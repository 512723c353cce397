//! Ticket allocation: the complimentary tickets the CRM books in ticketing for a sponsor.
//!
//! Each booking is a *request* with a fixed quantity and a name that never changes
//! (`sponsor-allocation:<sponsorId>:<seq>`), sent as ticketing's `externalReference` and,
//! prefixed, as its idempotency key. Ticketing accepts a reference once per client, ever, so a
//! request can be sent any number of times and books at most once. Requests are only ever
//! added: a grown allowance adds one for the difference; a shrunk one adds nothing and is
//! shown to an admin as excess.
//!
//! Request states: PENDING (queued or waiting for its next attempt) -> BOOKED, or -> FAILED
//! on a permanent refusal, and FAILED -> PENDING again through `retryTicketAllocation`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TicketAllowance;

/// A sponsor's allocation as a whole, for lists and filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AllocationStatus {
    /// Not onboarded yet, or onboarded with nothing to book.
    NotDue,
    /// A booking is queued or being retried.
    Pending,
    /// Everything requested is booked.
    Booked,
    /// A booking was refused for good; an admin must act and retry.
    Failed,
}

impl AllocationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotDue => "NOT_DUE",
            Self::Pending => "PENDING",
            Self::Booked => "BOOKED",
            Self::Failed => "FAILED",
        }
    }

    pub fn from_stored(value: &str) -> Self {
        match value {
            "PENDING" => Self::Pending,
            "BOOKED" => Self::Booked,
            "FAILED" => Self::Failed,
            _ => Self::NotDue,
        }
    }

    /// FAILED wins over PENDING wins over BOOKED: the status shows what needs attention.
    pub fn summarize(requests: &[TicketAllocationRequest]) -> Self {
        if requests.iter().any(|r| r.status == RequestStatus::Failed) {
            Self::Failed
        } else if requests.iter().any(|r| r.status == RequestStatus::Pending) {
            Self::Pending
        } else if requests.is_empty() {
            Self::NotDue
        } else {
            Self::Booked
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestStatus {
    Pending,
    Booked,
    Failed,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Booked => "BOOKED",
            Self::Failed => "FAILED",
        }
    }

    pub fn from_stored(value: &str) -> Self {
        match value {
            "BOOKED" => Self::Booked,
            "FAILED" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketAllocationRequest {
    pub id: Uuid,
    pub sponsor_id: Uuid,
    /// 1, 2, … per sponsor: the first booking and each later top-up.
    pub seq: i64,
    pub quantity: i64,
    pub external_reference: String,
    pub status: RequestStatus,
    /// Calls made to ticketing since the request was queued or last retried by an admin.
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Why the last attempt did not book: the reason shown on FAILED, the last transient
    /// error while PENDING.
    pub last_error: Option<String>,
    pub purchase_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub booked_at: Option<DateTime<Utc>>,
    /// When ticketing cancelled the purchase this request booked: the tickets are gone, and
    /// an admin decides what happens next.
    #[serde(default)]
    pub purchase_cancelled_at: Option<DateTime<Utc>>,
}

impl TicketAllocationRequest {
    /// Ticketing's `externalReference` for a request: names the allocation, never reused.
    pub fn reference_for(sponsor_id: Uuid, seq: i64) -> String {
        AllocationReference { sponsor_id, seq }.to_string()
    }

    /// The idempotency key is derived from the reference, so every retry of one request
    /// carries the same key and ticketing replays instead of booking again.
    pub fn idempotency_key(&self) -> String {
        format!("crm:{}", self.external_reference)
    }
}

/// The name an allocation request goes by in ticketing: `sponsor-allocation:<sponsorId>:<seq>`.
///
/// Built and read only here, so the format the CRM writes and the one it recognises cannot
/// drift apart. Reading it back lets the CRM name the sponsor behind a purchase from the
/// purchase alone (through federation's `@requires`), before ticketing's reply with the
/// purchase id has been recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocationReference {
    pub sponsor_id: Uuid,
    /// Always 1 or more.
    pub seq: i64,
}

impl AllocationReference {
    const PREFIX: &'static str = "sponsor-allocation:";

    /// `None` for anything this CRM would not have written: another client's reference
    /// (ticketing's references are per client and opaque), or a malformed one. Only the exact
    /// text [`Display`](std::fmt::Display) produces is accepted (lower-case id, no sign or
    /// leading zeros), so one request has one reference.
    pub fn parse(reference: &str) -> Option<Self> {
        let (sponsor_id, seq) = reference.strip_prefix(Self::PREFIX)?.split_once(':')?;
        let parsed = Self {
            sponsor_id: Uuid::parse_str(sponsor_id).ok()?,
            seq: seq.parse().ok().filter(|&seq: &i64| seq >= 1)?,
        };
        (parsed.to_string() == reference).then_some(parsed)
    }
}

impl std::fmt::Display for AllocationReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}:{}", Self::PREFIX, self.sponsor_id, self.seq)
    }
}

/// Ticketing takes at most this many seats on one purchase line.
pub const MAX_TICKETS_PER_REQUEST: i64 = 100;

/// What reconciling an allowance with what was already requested asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopUp {
    Nothing,
    /// Quantities of new requests (split so none exceeds [`MAX_TICKETS_PER_REQUEST`]).
    Book(Vec<i64>),
    /// More was requested than the allowance now gives: flagged, nothing is booked or undone.
    Excess(i64),
}

impl TopUp {
    pub fn plan(allowance: i64, already_requested: i64) -> Self {
        use std::cmp::Ordering;
        match allowance.cmp(&already_requested) {
            Ordering::Equal => Self::Nothing,
            Ordering::Less => Self::Excess(already_requested - allowance),
            Ordering::Greater => {
                let mut left = allowance - already_requested;
                let mut chunks = Vec::new();
                while left > 0 {
                    let chunk = left.min(MAX_TICKETS_PER_REQUEST);
                    chunks.push(chunk);
                    left -= chunk;
                }
                Self::Book(chunks)
            }
        }
    }
}

/// A sponsor's allocation as the API shows it.
#[derive(Debug, Clone)]
pub struct TicketAllocation {
    pub status: AllocationStatus,
    pub allowance: TicketAllowance,
    pub requests: Vec<TicketAllocationRequest>,
}

impl TicketAllocation {
    pub fn tickets_booked(&self) -> i64 {
        self.requests
            .iter()
            .filter(|r| r.status == RequestStatus::Booked)
            .map(|r| r.quantity)
            .sum()
    }

    pub fn tickets_requested(&self) -> i64 {
        self.requests.iter().map(|r| r.quantity).sum()
    }

    /// Purchases ticketing cancelled after they were booked.
    pub fn cancelled_purchase_ids(&self) -> Vec<Uuid> {
        self.requests
            .iter()
            .filter(|r| r.purchase_cancelled_at.is_some())
            .filter_map(|r| r.purchase_id)
            .collect()
    }

    /// Tickets requested beyond what the allowance now gives: an admin decides what to do.
    pub fn excess_tickets(&self) -> i64 {
        (self.tickets_requested() - self.allowance.total).max(0)
    }
}

/// Exponential backoff after the `attempts`-th failed call: base, 2·base, 4·base, … capped.
pub fn retry_delay(attempts: i64, base: Duration, max: Duration) -> Duration {
    let exponent = attempts.saturating_sub(1).clamp(0, 20) as u32;
    base.saturating_mul(2u32.saturating_pow(exponent)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_ups_book_the_difference_and_flag_shrinks() {
        assert_eq!(TopUp::plan(5, 0), TopUp::Book(vec![5]));
        assert_eq!(TopUp::plan(5, 3), TopUp::Book(vec![2]));
        assert_eq!(TopUp::plan(3, 5), TopUp::Excess(2));
        assert_eq!(TopUp::plan(5, 5), TopUp::Nothing);
        assert_eq!(TopUp::plan(250, 0), TopUp::Book(vec![100, 100, 50]));
    }

    #[test]
    fn references_read_back_only_what_the_crm_writes() {
        let sponsor_id = Uuid::now_v7();
        let written = TicketAllocationRequest::reference_for(sponsor_id, 2);
        assert_eq!(
            AllocationReference::parse(&written),
            Some(AllocationReference { sponsor_id, seq: 2 })
        );
        let upper = written
            .to_uppercase()
            .replace("SPONSOR-ALLOCATION", "sponsor-allocation");
        for foreign in [
            "",
            "order-42",
            "sponsor-allocation:",
            "sponsor-allocation:not-a-uuid:1",
            &format!("sponsor-allocation:{sponsor_id}"),
            &format!("sponsor-allocation:{sponsor_id}:"),
            &format!("sponsor-allocation:{sponsor_id}:0"),
            &format!("sponsor-allocation:{sponsor_id}:-1"),
            &format!("sponsor-allocation:{sponsor_id}:+1"),
            &format!("sponsor-allocation:{sponsor_id}:01"),
            &format!("sponsor-allocation:{sponsor_id}:1:2"),
            &format!("sponsor-allocation:{}:1", sponsor_id.simple()),
            &format!("speaker-allocation:{sponsor_id}:1"),
            &upper,
        ] {
            assert_eq!(AllocationReference::parse(foreign), None, "{foreign:?}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_millis(50);
        let max = Duration::from_secs(1);
        assert_eq!(retry_delay(1, base, max), base);
        assert_eq!(retry_delay(3, base, max), Duration::from_millis(200));
        assert_eq!(retry_delay(50, base, max), max);
    }
}
