use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::sponsor::Transition;
use super::{DomainError, Money, calendar};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvoiceStatus {
    Issued,
    Paid,
    Void,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "ISSUED",
            Self::Paid => "PAID",
            Self::Void => "VOID",
        }
    }

    pub fn from_stored(value: &str) -> Self {
        match value {
            "PAID" => Self::Paid,
            "VOID" => Self::Void,
            _ => Self::Issued,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    pub id: Uuid,
    pub sponsor_id: Uuid,
    pub amount: Money,
    pub due_on: NaiveDate,
    pub status: InvoiceStatus,
    pub issued_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
}

impl Invoice {
    pub fn mark_paid(&self) -> Result<Transition<InvoiceStatus>, DomainError> {
        match self.status {
            InvoiceStatus::Issued => Ok(Transition::To(InvoiceStatus::Paid)),
            InvoiceStatus::Paid => Ok(Transition::Unchanged),
            InvoiceStatus::Void => Err(DomainError::InvalidState(format!(
                "invoice {} is VOID and cannot be paid",
                self.id
            ))),
        }
    }

    pub fn void(&self) -> Result<Transition<InvoiceStatus>, DomainError> {
        match self.status {
            InvoiceStatus::Issued => Ok(Transition::To(InvoiceStatus::Void)),
            InvoiceStatus::Void => Ok(Transition::Unchanged),
            InvoiceStatus::Paid => Err(DomainError::InvalidState(format!(
                "invoice {} is PAID and cannot be voided",
                self.id
            ))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub sponsor_id: Uuid,
    pub amount: Money,
    pub due_on: NaiveDate,
}

impl NewInvoice {
    /// Above zero, due on a plausible day ([`calendar::due_date`]). Whether the currency is
    /// the conference's is checked where the invoice is written, against the conference as
    /// stored then.
    pub fn new(
        sponsor_id: Uuid,
        amount: Money,
        due_on: NaiveDate,
        today: NaiveDate,
    ) -> Result<Self, DomainError> {
        if amount.amount == 0 {
            return Err(DomainError::invalid("an invoice amount must be above zero"));
        }
        Ok(Self {
            sponsor_id,
            amount,
            due_on: calendar::due_date("dueOn", due_on, today)?,
        })
    }
}
