use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Currency, DomainError, Name};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conference {
    pub id: Uuid,
    pub name: Name,
    /// Every ticket type of the conference is priced in this currency.
    pub currency: Currency,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewConference {
    pub name: Name,
    pub currency: Currency,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

impl NewConference {
    pub fn new(
        name: Name,
        currency: Currency,
        starts_on: NaiveDate,
        ends_on: NaiveDate,
    ) -> Result<Self, DomainError> {
        if ends_on < starts_on {
            return Err(DomainError::invalid("endsOn must not be before startsOn"));
        }
        Ok(Self {
            name,
            currency,
            starts_on,
            ends_on,
        })
    }
}
