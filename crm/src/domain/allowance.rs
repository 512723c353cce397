//! How many complimentary tickets a sponsor gets. The rules live here, in the CRM: ticketing
//! only ever sees a complimentary purchase of some quantity.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{ConferenceSetup, Sponsor, SponsorshipLevel, TicketCount};

/// Extra tickets for sponsors who sign before a date: rewards committing early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EarlySigningRule {
    /// Contracts signed on a day strictly before this one earn the extra tickets.
    pub signed_before: NaiveDate,
    pub extra_tickets: TicketCount,
}

/// A sponsor's allowance and how it was reached, so the API can explain the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketAllowance {
    pub from_level: i64,
    pub early_signing_bonus: i64,
    pub overridden: Option<i64>,
    pub total: i64,
}

impl TicketAllowance {
    /// The level's allowance plus the date rule's bonus, unless an admin override says
    /// otherwise: an override is the whole number, not an addition.
    pub fn for_sponsor(
        sponsor: &Sponsor,
        level: &SponsorshipLevel,
        setup: Option<&ConferenceSetup>,
    ) -> Self {
        let from_level = level.ticket_allowance.get();
        let early_signing_bonus = match (
            setup.and_then(|s| s.early_signing),
            sponsor.contract.signed_on,
        ) {
            (Some(rule), Some(signed_on)) if signed_on < rule.signed_before => {
                rule.extra_tickets.get()
            }
            _ => 0,
        };
        let overridden = sponsor.ticket_allowance_override.map(TicketCount::get);
        Self {
            from_level,
            early_signing_bonus,
            overridden,
            total: overridden.unwrap_or(from_level + early_signing_bonus),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::domain::{
        AllocationStatus, CompanyName, Contract, ContractStatus, Currency, EmailAddress, LevelName,
        Money, PersonName,
    };

    fn sponsor(signed_on: Option<NaiveDate>, overridden: Option<i64>) -> Sponsor {
        Sponsor {
            id: Uuid::nil(),
            conference_id: Uuid::nil(),
            company: CompanyName::trusted("Acme".into()),
            contact_name: PersonName::trusted("Ada".into()),
            contact_email: EmailAddress::trusted("ada@example.org".into()),
            level: LevelName::trusted("Gold".into()),
            ticket_allowance_override: overridden.map(TicketCount::trusted),
            contract: Contract {
                status: ContractStatus::Signed,
                signed_on,
                ..Contract::draft()
            },
            onboarded_at: None,
            allocation_status: AllocationStatus::NotDue,
            created_at: Utc::now(),
        }
    }

    fn gold() -> SponsorshipLevel {
        SponsorshipLevel {
            name: LevelName::trusted("Gold".into()),
            price: Money::new(1, Currency::EUR).unwrap(),
            ticket_allowance: TicketCount::trusted(5),
            rank: 1,
            updated_at: Utc::now(),
        }
    }

    fn setup(before: &str) -> ConferenceSetup {
        ConferenceSetup {
            conference_id: Uuid::nil(),
            sponsor_ticket_type_id: None,
            currency: None,
            early_signing: Some(EarlySigningRule {
                signed_before: before.parse().unwrap(),
                extra_tickets: TicketCount::trusted(1),
            }),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn early_signers_get_the_bonus_and_overrides_win() {
        let day = |s: &str| Some(s.parse::<NaiveDate>().unwrap());
        let rule = setup("2027-01-01");
        let early =
            TicketAllowance::for_sponsor(&sponsor(day("2026-12-31"), None), &gold(), Some(&rule));
        assert_eq!(early.total, 6);
        let on_the_day =
            TicketAllowance::for_sponsor(&sponsor(day("2027-01-01"), None), &gold(), Some(&rule));
        assert_eq!(on_the_day.total, 5);
        let overridden = TicketAllowance::for_sponsor(
            &sponsor(day("2026-12-31"), Some(2)),
            &gold(),
            Some(&rule),
        );
        assert_eq!(overridden.total, 2);
        assert_eq!(
            TicketAllowance::for_sponsor(&sponsor(None, None), &gold(), None).total,
            5
        );
    }
}
