use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    Access, ClientKey, DomainError, EmailAddress, ExternalReference, IdempotencyKey, Money, Name,
    Quantity, TicketType, Visibility,
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

    /// Whether the purchase was made without a token (its access token is its credential).
    pub fn is_anonymous(&self) -> bool {
        self.client_key
            .as_ref()
            .is_some_and(ClientKey::is_anonymous)
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

    /// Who may cancel what: with full access (`tickets:admin`) any purchase that still holds
    /// its seats, paid ones too (refunding is the organiser's call); with access to one's own
    /// or a held purchase, only while it is unpaid: once money has changed hands the buyer
    /// asks the organiser. Cancelling again changes nothing.
    pub fn cancel(&self, access: &Access) -> Result<Transition, DomainError> {
        if !access.covers(self) {
            return Err(DomainError::NotYours(Owned::TicketPurchase(self.id)));
        }
        match self.status {
            PurchaseStatus::Cancelled => Ok(Transition::Unchanged),
            PurchaseStatus::PendingPayment => Ok(Transition::To(PurchaseStatus::Cancelled)),
            PurchaseStatus::Paid if *access == Access::Any => {
                Ok(Transition::To(PurchaseStatus::Cancelled))
            }
            PurchaseStatus::Paid => Err(DomainError::Forbidden(format!(
                "ticket purchase {} is paid: only tickets:admin may cancel a paid purchase",
                self.id
            ))),
            PurchaseStatus::Expired => Err(DomainError::InvalidState(format!(
                "ticket purchase {} has expired and cannot be cancelled",
                self.id
            ))),
        }
    }

    /// The statuses `access` may cancel from: the store's conditional update names exactly
    /// these, so a payment confirmed a moment before is never cancelled by a buyer.
    pub fn cancellable_statuses(access: &Access) -> &'static [PurchaseStatus] {
        match access {
            Access::Any => &[PurchaseStatus::PendingPayment, PurchaseStatus::Paid],
            _ => &[PurchaseStatus::PendingPayment],
        }
    }
}

/// Something that belongs to a client, named in a [`DomainError::NotYours`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owned {
    TicketPurchase(Uuid),
    Ticket(Uuid),
}

impl std::fmt::Display for Owned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TicketPurchase(id) => write!(f, "ticket purchase {id}"),
            Self::Ticket(id) => write!(f, "ticket {id}"),
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
    /// Who made the purchase the ticket belongs to. Not part of events: which client bought
    /// what is nobody else's business.
    #[serde(skip)]
    pub client_key: Option<ClientKey>,
    pub ticket_type_id: Uuid,
    pub attendee: Option<Attendee>,
    pub assigned_at: Option<DateTime<Utc>>,
}

impl Ticket {
    /// Naming an attendee: anyone with access to the purchase, while it holds its seats.
    pub fn assign(
        &self,
        access: &Access,
        purchase_status: PurchaseStatus,
    ) -> Result<(), DomainError> {
        if !access.covers_ticket(self) {
            return Err(DomainError::NotYours(Owned::Ticket(self.id)));
        }
        if !purchase_status.holds_seats() {
            return Err(DomainError::InvalidState(format!(
                "ticket {} belongs to a cancelled or expired purchase",
                self.id
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseLineRequest {
    pub ticket_type_id: Uuid,
    pub quantity: Quantity,
}

/// How many seats may be held without payment, so that nobody can take a ticket type off
/// sale by reserving it and never paying. A purchase holds its seats unpaid while it awaits
/// payment (neither complimentary nor free); `0` turns a cap off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurchaseLimits {
    /// Seats one anonymous buyer (one address, an IPv6 /64) may hold in unpaid purchases at
    /// once. Decided by the purchase's write, so concurrent purchases cannot overshoot it.
    pub max_unpaid_seats_per_buyer: u32,
    /// Seats one purchase may reserve unpaid, whoever buys.
    pub max_unpaid_seats_per_purchase: u32,
}

impl Default for PurchaseLimits {
    fn default() -> Self {
        Self {
            // A family or a small team buying from one home or office connection; a script
            // holding a ticket type hostage gets no further.
            max_unpaid_seats_per_buyer: 20,
            // The dashboard's purchase form offers at most 10.
            max_unpaid_seats_per_purchase: 10,
        }
    }
}

impl PurchaseLimits {
    /// No caps.
    pub const OFF: Self = Self {
        max_unpaid_seats_per_buyer: 0,
        max_unpaid_seats_per_purchase: 0,
    };
}

/// The cap on one anonymous buyer's unpaid seats, as the purchase's write enforces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpaidSeatCap {
    /// Who the seats are counted for: the buyer's address as recorded with the purchase.
    pub buyer: String,
    pub max: i64,
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
    /// What the policy lets the caller buy: [`Access::Any`] issues restricted types and
    /// complimentary purchases, [`Access::Public`] buys public types at their price.
    pub access: Access,
    /// Whether the caller may know that restricted types exist (`tickets:read`): a refusal
    /// then says "restricted" instead of "does not exist".
    pub sees_restricted: bool,
    /// Where a buyer without a token buys from (an address, or `unknown`); `None` for a
    /// client with a token, which is accountable by its subject instead.
    pub buyer_address: Option<String>,
    pub limits: PurchaseLimits,
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

    /// The rules that need no stock: the lines' shape, complimentary purchases only with full
    /// access, and external references only for clients with a token. A reference is the
    /// integrating client's own name for a purchase, unique per client; buyers without a
    /// token all share one namespace, where a reference would collide with (and reveal)
    /// another buyer's purchase.
    pub fn check_request(&self) -> Result<(), DomainError> {
        Self::check_lines(&self.lines)?;
        if self.complimentary && !self.access.reaches_restricted() {
            return Err(DomainError::Forbidden(
                "complimentary purchases need the tickets:issue-complimentary scope".into(),
            ));
        }
        if self.external_reference.is_some() && self.client.is_anonymous() {
            return Err(DomainError::invalid(
                "externalReference is for clients with a bearer token; a purchase without one is identified by its id and access token",
            ));
        }
        Ok(())
    }

    /// The rules a purchase must meet against the ticket types as read: each type exists
    /// and is visible to the caller, may be issued by it, is on sale (unless complimentary),
    /// all of one conference and currency, and, with `check_stock`, has the seats left. A
    /// cached read may be stale, so the store's seat update alone decides on stock then.
    pub fn check_against(
        &self,
        types: &HashMap<Uuid, TicketType>,
        now: DateTime<Utc>,
        check_stock: bool,
    ) -> Result<(), DomainError> {
        self.check_types(types, now, check_stock)?;
        self.check_unpaid_seats(types)
    }

    /// The per-purchase cap: a purchase that will await payment reserves at most
    /// `max_unpaid_seats_per_purchase` seats. Prices are compared again by the seat update,
    /// so a type that stops being free in between cannot slip a large purchase through.
    fn check_unpaid_seats(&self, types: &HashMap<Uuid, TicketType>) -> Result<(), DomainError> {
        let max = i64::from(self.limits.max_unpaid_seats_per_purchase);
        if max == 0 || self.complimentary || self.total(types)?.amount == 0 {
            return Ok(());
        }
        let requested = self.seats();
        if requested > max {
            return Err(DomainError::TooManyUnpaidSeatsInPurchase { max, requested });
        }
        Ok(())
    }

    /// The seats the purchase asks for, over all lines.
    pub fn seats(&self) -> i64 {
        self.lines.iter().map(|l| l.quantity.get()).sum()
    }

    /// The cap on the buyer's unpaid seats that the purchase's write must respect, if the
    /// buyer is anonymous and the cap is on. The store applies it only to a purchase that
    /// will await payment.
    pub fn unpaid_seat_cap(&self) -> Option<UnpaidSeatCap> {
        let max = i64::from(self.limits.max_unpaid_seats_per_buyer);
        let buyer = self.buyer_address.as_ref()?;
        (max > 0 && self.client.is_anonymous()).then(|| UnpaidSeatCap {
            buyer: buyer.clone(),
            max,
        })
    }

    fn check_types(
        &self,
        types: &HashMap<Uuid, TicketType>,
        now: DateTime<Utc>,
        check_stock: bool,
    ) -> Result<(), DomainError> {
        let mut conference = None;
        let mut currency = None;
        for line in &self.lines {
            let not_found = || {
                DomainError::NotFound(format!(
                    "ticket type {} does not exist",
                    line.ticket_type_id
                ))
            };
            let ticket_type = types.get(&line.ticket_type_id).ok_or_else(not_found)?;
            if ticket_type.visibility == Visibility::Restricted && !self.access.reaches_restricted()
            {
                // A restricted type is invisible, not forbidden, to whoever may not see it.
                return Err(if self.sees_restricted {
                    DomainError::Forbidden(format!(
                        "ticket type {} is restricted: issuing it needs the tickets:issue-complimentary scope",
                        ticket_type.id
                    ))
                } else {
                    not_found()
                });
            }
            if *conference.get_or_insert(ticket_type.conference_id) != ticket_type.conference_id {
                return Err(DomainError::invalid(
                    "all lines of a purchase must be for the same conference",
                ));
            }
            if *currency.get_or_insert(ticket_type.price.currency) != ticket_type.price.currency {
                return Err(DomainError::invalid(
                    "all lines of a purchase must be priced in the same currency",
                ));
            }
            if !self.complimentary && !ticket_type.is_on_sale_at(now) {
                return Err(DomainError::SaleClosed(ticket_type.id));
            }
            if check_stock && line.quantity.get() > ticket_type.remaining() {
                return Err(DomainError::SoldOut {
                    ticket_type: ticket_type.id,
                    remaining: ticket_type.remaining(),
                });
            }
        }
        Ok(())
    }

    /// What the purchase costs: nothing when complimentary, else each line at the type's
    /// current price.
    pub fn total(&self, types: &HashMap<Uuid, TicketType>) -> Result<Money, DomainError> {
        let mut total: Option<Money> = None;
        for line in &self.lines {
            let ticket_type = types.get(&line.ticket_type_id).ok_or_else(|| {
                DomainError::NotFound(format!(
                    "ticket type {} does not exist",
                    line.ticket_type_id
                ))
            })?;
            let price = if self.complimentary {
                Money::zero(ticket_type.price.currency)
            } else {
                ticket_type.price
            };
            let amount = price.times(line.quantity.get())?;
            total = Some(match total {
                Some(sum) => sum.plus(amount)?,
                None => amount,
            });
        }
        total.ok_or_else(|| DomainError::invalid("a purchase needs at least one line"))
    }

    /// Where the request's idempotency key is kept. A client with a token owns its keys:
    /// the same key with a different request is a mistake worth an error. Buyers without a
    /// token share one namespace, so their key is kept together with the request's
    /// fingerprint: a stranger's request under the same key is simply another purchase, and
    /// neither collides with nor reveals the first.
    pub fn idempotency_slot(&self) -> Option<String> {
        let key = self.idempotency_key.as_ref()?;
        if !self.client.is_anonymous() {
            return Some(key.as_str().to_owned());
        }
        let mut hash = Sha256::new();
        hash.update(key.as_str().as_bytes());
        hash.update([0]);
        hash.update(self.request_hash.as_bytes());
        Some(format!("anonymous:{}", hex::encode(hash.finalize())))
    }
}
