use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{LevelName, Money, TicketCount};

/// What a sponsor buys: a price and the complimentary tickets that come with it. The CRM
/// starts with Gold (5), Silver (3) and Bronze (1); an admin changes prices and allowances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SponsorshipLevel {
    pub name: LevelName,
    pub price: Money,
    pub ticket_allowance: TicketCount,
    /// Listing order: the most valuable level first.
    pub rank: i64,
    pub updated_at: DateTime<Utc>,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct LevelChanges {
    pub price: Option<Money>,
    pub ticket_allowance: Option<TicketCount>,
}

impl LevelChanges {
    pub fn is_empty(&self) -> bool {
        self.price.is_none() && self.ticket_allowance.is_none()
    }
}
