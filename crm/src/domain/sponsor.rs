use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AllocationStatus, CompanyName, DomainError, EmailAddress, Invoice, InvoiceStatus, LevelName,
    PersonName, TicketCount,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContractStatus {
    Draft,
    Sent,
    Signed,
    Cancelled,
}

impl ContractStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Sent => "SENT",
            Self::Signed => "SIGNED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn from_stored(value: &str) -> Self {
        match value {
            "SENT" => Self::Sent,
            "SIGNED" => Self::Signed,
            "CANCELLED" => Self::Cancelled,
            _ => Self::Draft,
        }
    }
}

/// The sponsorship contract: one per sponsor, DRAFT -> SENT -> SIGNED, or CANCELLED before
/// it is signed. A signed contract is final; what it entitles to is settled by invoices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contract {
    pub status: ContractStatus,
    pub sent_at: Option<DateTime<Utc>>,
    pub signed_at: Option<DateTime<Utc>>,
    /// The signing date the allocation date rules look at.
    pub signed_on: Option<NaiveDate>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// What a state-changing command decided; repeating a command that already took effect is
/// not an error, it just changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition<S> {
    Unchanged,
    To(S),
}

impl Contract {
    pub fn draft() -> Self {
        Self {
            status: ContractStatus::Draft,
            sent_at: None,
            signed_at: None,
            signed_on: None,
            cancelled_at: None,
        }
    }

    pub fn send(&self) -> Result<Transition<ContractStatus>, DomainError> {
        match self.status {
            ContractStatus::Draft => Ok(Transition::To(ContractStatus::Sent)),
            ContractStatus::Sent => Ok(Transition::Unchanged),
            other => Err(DomainError::InvalidState(format!(
                "the contract is {} and cannot be sent",
                other.as_str()
            ))),
        }
    }

    pub fn sign(&self) -> Result<Transition<ContractStatus>, DomainError> {
        match self.status {
            ContractStatus::Sent => Ok(Transition::To(ContractStatus::Signed)),
            ContractStatus::Signed => Ok(Transition::Unchanged),
            ContractStatus::Draft => Err(DomainError::InvalidState(
                "the contract is still a DRAFT: send it before it is signed".into(),
            )),
            ContractStatus::Cancelled => Err(DomainError::InvalidState(
                "the contract was CANCELLED and cannot be signed".into(),
            )),
        }
    }

    pub fn cancel(&self) -> Result<Transition<ContractStatus>, DomainError> {
        match self.status {
            ContractStatus::Draft | ContractStatus::Sent => {
                Ok(Transition::To(ContractStatus::Cancelled))
            }
            ContractStatus::Cancelled => Ok(Transition::Unchanged),
            ContractStatus::Signed => Err(DomainError::InvalidState(
                "a SIGNED contract cannot be cancelled".into(),
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sponsor {
    pub id: Uuid,
    /// Ticketing's conference id: the conference the sponsorship is for.
    pub conference_id: Uuid,
    pub company: CompanyName,
    pub contact_name: PersonName,
    pub contact_email: EmailAddress,
    pub level: LevelName,
    /// An admin's final word on the number of complimentary tickets; replaces every rule.
    pub ticket_allowance_override: Option<TicketCount>,
    pub contract: Contract,
    pub onboarded_at: Option<DateTime<Utc>>,
    /// Kept with the sponsor so lists can filter on it; see [`AllocationStatus::summarize`].
    pub allocation_status: AllocationStatus,
    pub created_at: DateTime<Utc>,
}

impl Sponsor {
    pub fn is_onboarded(&self) -> bool {
        self.onboarded_at.is_some()
    }

    /// Onboarded once the contract is signed, there is at least one invoice that was not
    /// voided, and every such invoice is paid. It happens once; later invoices do not undo it.
    pub fn is_ready_for_onboarding(&self, invoices: &[Invoice]) -> bool {
        let live: Vec<_> = invoices
            .iter()
            .filter(|i| i.status != InvoiceStatus::Void)
            .collect();
        !self.is_onboarded()
            && self.contract.status == ContractStatus::Signed
            && !live.is_empty()
            && live.iter().all(|i| i.status == InvoiceStatus::Paid)
    }
}

#[derive(Debug, Clone)]
pub struct NewSponsor {
    /// `None`: the conference the CRM serves, if it serves exactly one.
    pub conference_id: Option<Uuid>,
    pub company: CompanyName,
    pub contact_name: PersonName,
    pub contact_email: EmailAddress,
    /// As the client typed it; resolved against the levels in storage.
    pub level: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contracts_go_draft_sent_signed_and_only_unsigned_ones_cancel() {
        let mut c = Contract::draft();
        assert!(c.sign().is_err());
        assert_eq!(c.send().unwrap(), Transition::To(ContractStatus::Sent));
        c.status = ContractStatus::Sent;
        assert_eq!(c.send().unwrap(), Transition::Unchanged);
        assert_eq!(c.sign().unwrap(), Transition::To(ContractStatus::Signed));
        c.status = ContractStatus::Signed;
        assert!(c.cancel().is_err());
        assert_eq!(c.sign().unwrap(), Transition::Unchanged);
    }
}
