use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{DomainError, Money, Name};

/// Public types are on sale to anyone; restricted ones are kept out of public stock and only
/// privileged clients issue them (complimentary speaker or partner tickets, for example).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Visibility {
    Public,
    Restricted,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "PUBLIC",
            Self::Restricted => "RESTRICTED",
        }
    }

    pub fn from_stored(value: &str) -> Self {
        if value == "RESTRICTED" {
            Self::Restricted
        } else {
            Self::Public
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketType {
    pub id: Uuid,
    pub conference_id: Uuid,
    pub name: Name,
    pub price: Money,
    pub capacity: i64,
    /// Seats taken by purchases that hold them: paid, or reserved and awaiting payment.
    pub sold: i64,
    pub visibility: Visibility,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TicketType {
    pub fn remaining(&self) -> i64 {
        (self.capacity - self.sold).max(0)
    }

    pub fn is_on_sale_at(&self, at: DateTime<Utc>) -> bool {
        self.sale_starts_at.is_none_or(|s| s <= at) && self.sale_ends_at.is_none_or(|e| at < e)
    }
}

pub const MAX_CAPACITY: i64 = 1_000_000;

fn check_capacity(capacity: i64) -> Result<i64, DomainError> {
    if (0..=MAX_CAPACITY).contains(&capacity) {
        Ok(capacity)
    } else {
        Err(DomainError::invalid(format!(
            "capacity must be between 0 and {MAX_CAPACITY}, got {capacity}"
        )))
    }
}

/// A sale window must end after it starts and, when it is set, end in the future: a window
/// entirely in the past sells nothing and is a mistake (a wrong year, a date format mix-up).
/// An existing type whose sale has ended keeps its window when other fields change.
fn check_window(
    starts: Option<DateTime<Utc>>,
    ends: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    if let (Some(s), Some(e)) = (starts, ends)
        && e <= s
    {
        return Err(DomainError::invalid(
            "saleEndsAt must be after saleStartsAt",
        ));
    }
    if let Some(e) = ends
        && e <= now
    {
        return Err(DomainError::invalid(format!(
            "saleEndsAt {} is in the past: a sale window must end in the future",
            e.to_rfc3339()
        )));
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct NewTicketType {
    pub conference_id: Uuid,
    pub name: Name,
    pub price: Money,
    pub capacity: i64,
    pub visibility: Visibility,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
}

impl NewTicketType {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        conference_id: Uuid,
        name: Name,
        price: Money,
        capacity: i64,
        visibility: Visibility,
        sale_starts_at: Option<DateTime<Utc>>,
        sale_ends_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        check_window(sale_starts_at, sale_ends_at, now)?;
        Ok(Self {
            conference_id,
            name,
            price,
            capacity: check_capacity(capacity)?,
            visibility,
            sale_starts_at,
            sale_ends_at,
        })
    }
}

/// A partial update; `None` leaves a field as it is. The sale window fields use a nested
/// option so a client can clear a bound (`Some(None)`).
#[derive(Debug, Clone, Default)]
pub struct TicketTypeChanges {
    pub name: Option<Name>,
    pub price: Option<Money>,
    pub capacity: Option<i64>,
    pub visibility: Option<Visibility>,
    pub sale_starts_at: Option<Option<DateTime<Utc>>>,
    pub sale_ends_at: Option<Option<DateTime<Utc>>>,
}

impl TicketTypeChanges {
    /// Applies the changes to a copy, enforcing the rules an existing type must keep:
    /// capacity never below the seats already taken, price in the conference's currency, and
    /// a sale window that is changed must end in the future.
    pub fn apply_to(
        &self,
        current: &TicketType,
        now: DateTime<Utc>,
    ) -> Result<TicketType, DomainError> {
        let mut next = current.clone();
        if let Some(name) = &self.name {
            next.name = name.clone();
        }
        if let Some(price) = self.price {
            if price.currency != current.price.currency {
                return Err(DomainError::invalid(format!(
                    "price must be in {}, the conference's currency, not {}",
                    current.price.currency, price.currency
                )));
            }
            next.price = price;
        }
        if let Some(capacity) = self.capacity {
            let capacity = check_capacity(capacity)?;
            if capacity < current.sold {
                return Err(DomainError::invalid(format!(
                    "capacity {capacity} is below the {} ticket(s) already sold",
                    current.sold
                )));
            }
            next.capacity = capacity;
        }
        if let Some(visibility) = self.visibility {
            next.visibility = visibility;
        }
        if let Some(starts) = self.sale_starts_at {
            next.sale_starts_at = starts;
        }
        if let Some(ends) = self.sale_ends_at {
            next.sale_ends_at = ends;
        }
        if self.sale_starts_at.is_some() || self.sale_ends_at.is_some() {
            check_window(next.sale_starts_at, next.sale_ends_at, now)?;
        }
        Ok(next)
    }
}
