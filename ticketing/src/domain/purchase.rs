use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    ClientKey, DomainError, EmailAddress, ExternalReference, IdempotencyKey, Money, Name, Quantity,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PurchaseStatus {
    PendingPayment,
    Paid,
    Cancelled,
    Expired,
}

impl PurchaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingPayment => "PENDING_PAYMENT",
            Self::Paid => "PAID",
            Self::Cancelled => "CANCELLED",
            Self::Expired => "EXPIRED",
        }
    }

    pub fn from_stored(value: &str) -> Self {
        match value {
            "PAID" => Self::Paid,
            "CANCELLED" => Self::Cancelled,
            "EXPIRED" => Self::Expired,
            _ => Self::PendingPayment,
        }
    }

    /// Whether the purchase holds its seats.
    pub fn holds_seats(self) -> bool {
        matches!(self, Self::PendingPayment | Self::Paid)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchaser {
    pub name: Name,
    pub email: EmailAddress,
}

pub type Attendee = Purchaser;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseLine {
    pub ticket_type_id: Uuid,
    pub quantity: i64,
    /// The price when the purchase was made; later price changes do not touch it.
    pub unit_price: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketPurchase {
    pub id: Uuid,
    pub conference_id: Uuid,
    #[serde(skip)]
    pub client_key: Option<ClientKey>,
    pub purchaser: Purchaser,
    pub lines: Vec<PurchaseLine>,
    pub status: PurchaseStatus,
    pub complimentary: bool,
    pub total: Money,
    pub external_reference: Option<ExternalReference>,
    pub created_at: DateTime<Utc>,
    /// When an unpaid reservation lapses and its seats return.
    pub expires_at: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub expired_at: Option<DateTime<Utc>>,
}

impl TicketPurchase {
    pub fn ticket_count(&self) -> i64 {
        self.lines.iter().map(|l| l.quantity).sum()
    }

    /// Whether the client behind `client` created this purchase.
    pub fn was_created_by(&self, client: &ClientKey) -> bool {
        self.client_key.as_ref() == Some(client)
    }

    pub fn confirm_payment(&self, at: DateTime<Utc>) -> Result<Transition, DomainError> {
        match self.status {
            PurchaseStatus::Paid => Ok(Transition::Unchanged),
            PurchaseStatus::PendingPayment if self.expires_at.is_some_and(|e| e <= at) => {
                Err(DomainError::InvalidState(format!(
                    "ticket purchase {} expired before payment arrived",
                    self.id
                )))
            }
            PurchaseStatus::PendingPayment => Ok(Transition::To(PurchaseStatus::Paid)),
            other => Err(DomainError::InvalidState(format!(
                "ticket purchase {} is {} and cannot be paid",
                self.id,
                other.as_str()
            ))),
        }
    }

    pub fn cancel(&self) -> Result<Transition, DomainError> {
        match self.status {
            PurchaseStatus::Cancelled => Ok(Transition::Unchanged),
            PurchaseStatus::PendingPayment | PurchaseStatus::Paid => {
                Ok(Transition::To(PurchaseStatus::Cancelled))
            }
            PurchaseStatus::Expired => Err(DomainError::InvalidState(format!(
                "ticket purchase {} has expired and cannot be cancelled",
                self.id
            ))),
        }
    }
}

/// What a state-changing command decided; repeating a command that already took effect is
/// not an error, it just changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Unchanged,
    To(PurchaseStatus),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub id: Uuid,
    pub purchase_id: Uuid,
    pub ticket_type_id: Uuid,
    pub attendee: Option<Attendee>,
    pub assigned_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseLineRequest {
    pub ticket_type_id: Uuid,
    pub quantity: Quantity,
}

/// A validated purchase request, before it meets the stock.
#[derive(Debug, Clone)]
pub struct NewTicketPurchase {
    pub client: ClientKey,
    pub purchaser: Purchaser,
    pub lines: Vec<PurchaseLineRequest>,
    pub complimentary: bool,
    pub external_reference: Option<ExternalReference>,
    pub idempotency_key: Option<IdempotencyKey>,
    /// Fingerprint of the request as the client sent it, for idempotent replay.
    pub request_hash: String,
    /// May the client issue restricted types and complimentary purchases?
    pub privileged: bool,
}

impl NewTicketPurchase {
    pub const MAX_LINES: usize = 20;

    /// Checks the shape of the lines: not empty, not too many, each type once.
    pub fn check_lines(lines: &[PurchaseLineRequest]) -> Result<(), DomainError> {
        if lines.is_empty() {
            return Err(DomainError::invalid("a purchase needs at least one line"));
        }
        if lines.len() > Self::MAX_LINES {
            return Err(DomainError::invalid(format!(
                "a purchase may have at most {} lines",
                Self::MAX_LINES
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for line in lines {
            if !seen.insert(line.ticket_type_id) {
                return Err(DomainError::invalid(format!(
                    "ticket type {} appears on more than one line; use one line with a larger quantity",
                    line.ticket_type_id
                )));
            }
        }
        Ok(())
    }
}
