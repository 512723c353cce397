//! The conferences the CRM serves. Conferences belong to ticketing; the CRM serves one once an
//! admin has registered it (`configureSponsorTickets`), and at that moment it asks ticketing,
//! through the API ticketing publishes, what the conference is: that it exists, which currency
//! it sells in, and that the ticket type named for sponsors is one of its restricted types.
//! Sponsors and invoices are only ever recorded for a conference served this way, and an
//! invoice only in its currency: a sponsorship for a conference nobody organises, or an
//! invoice in dollars for a conference that sells in euros, is a typo caught at the door.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Currency, DomainError, EarlySigningRule, Money};

/// What the CRM knows about one of ticketing's conferences: which restricted ticket type its
/// sponsors' tickets are issued from, the currency it sells in, and its date rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConferenceSetup {
    pub conference_id: Uuid,
    pub sponsor_ticket_type_id: Option<Uuid>,
    /// Learned from ticketing when the conference was registered. `None` only for a
    /// conference an earlier version of the CRM recorded without asking ticketing: not served
    /// until an admin registers it again.
    #[serde(default)]
    pub currency: Option<Currency>,
    pub early_signing: Option<EarlySigningRule>,
    pub updated_at: DateTime<Utc>,
}

impl ConferenceSetup {
    /// Whether new sponsors and invoices may be recorded for it.
    pub fn is_served(&self) -> bool {
        self.currency.is_some()
    }

    /// An invoice for a sponsor of this conference must be in the conference's currency.
    pub fn check_invoice(&self, amount: &Money) -> Result<(), DomainError> {
        match self.currency {
            None => Err(not_served(self.conference_id)),
            Some(currency) if currency != amount.currency => Err(DomainError::invalid(format!(
                "conference {} sells in {currency}: its sponsors are invoiced in {currency}, not {}",
                self.conference_id, amount.currency
            ))),
            Some(_) => Ok(()),
        }
    }
}

/// The refusal for anything recorded against a conference the CRM does not serve.
pub fn not_served(conference_id: Uuid) -> DomainError {
    DomainError::invalid(format!(
        "the CRM does not serve conference {conference_id}: an admin registers it with configureSponsorTickets"
    ))
}

/// A conference as ticketing's API shows it to the CRM (with the CRM's service token, which
/// sees restricted ticket types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketingConference {
    pub id: Uuid,
    /// As ticketing sent it; checked here.
    pub currency: String,
    pub ticket_types: Vec<ListedTicketType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedTicketType {
    pub id: Uuid,
    /// Kept out of public sale: only privileged clients issue it.
    pub restricted: bool,
}

/// A conference ready to be served: ticketing vouched for it and its sponsor ticket type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SponsorTicketSource {
    pub conference_id: Uuid,
    pub ticket_type_id: Uuid,
    pub currency: Currency,
}

impl SponsorTicketSource {
    /// Sponsor tickets come from a restricted ticket type of the conference itself: a public
    /// type would let the CRM hand out seats the public is queueing for, and another
    /// conference's type would book sponsors into the wrong event.
    pub fn vouched_by(
        conference: &TicketingConference,
        ticket_type_id: Uuid,
    ) -> Result<Self, DomainError> {
        let currency = Currency::parse(&conference.currency).map_err(|e| {
            DomainError::invalid(format!(
                "ticketing's conference {} sells in a currency the CRM cannot invoice in: {e}",
                conference.id
            ))
        })?;
        match conference
            .ticket_types
            .iter()
            .find(|t| t.id == ticket_type_id)
        {
            None => Err(DomainError::invalid(format!(
                "ticket type {ticket_type_id} is not a ticket type of conference {} in ticketing",
                conference.id
            ))),
            Some(t) if !t.restricted => Err(DomainError::invalid(format!(
                "ticket type {ticket_type_id} is on public sale: sponsor tickets must come from a RESTRICTED ticket type"
            ))),
            Some(_) => Ok(Self {
                conference_id: conference.id,
                ticket_type_id,
                currency,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conference(currency: &str) -> TicketingConference {
        TicketingConference {
            id: Uuid::from_u128(1),
            currency: currency.into(),
            ticket_types: vec![
                ListedTicketType {
                    id: Uuid::from_u128(2),
                    restricted: true,
                },
                ListedTicketType {
                    id: Uuid::from_u128(3),
                    restricted: false,
                },
            ],
        }
    }

    #[test]
    fn sponsor_tickets_come_from_a_restricted_type_of_the_conference() {
        let source = SponsorTicketSource::vouched_by(&conference("EUR"), Uuid::from_u128(2));
        assert_eq!(source.map(|s| s.currency), Ok(Currency::EUR));
        for (ticket_type, says) in [(3, "public sale"), (4, "not a ticket type")] {
            let refused =
                SponsorTicketSource::vouched_by(&conference("EUR"), Uuid::from_u128(ticket_type))
                    .unwrap_err()
                    .to_string();
            assert!(refused.contains(says), "{refused}");
        }
        assert!(SponsorTicketSource::vouched_by(&conference("XXX"), Uuid::from_u128(2)).is_err());
    }

    #[test]
    fn invoices_are_in_the_conference_currency() {
        let mut setup = ConferenceSetup {
            conference_id: Uuid::from_u128(1),
            sponsor_ticket_type_id: Some(Uuid::from_u128(2)),
            currency: Some(Currency::EUR),
            early_signing: None,
            updated_at: Utc::now(),
        };
        let eur = Money::new(100, Currency::EUR).expect("money");
        let usd = Money::new(100, Currency::parse("USD").expect("USD")).expect("money");
        assert!(setup.check_invoice(&eur).is_ok());
        assert!(
            setup
                .check_invoice(&usd)
                .unwrap_err()
                .to_string()
                .contains("not USD")
        );
        setup.currency = None;
        assert!(!setup.is_served());
        assert!(
            setup
                .check_invoice(&eur)
                .unwrap_err()
                .to_string()
                .contains("does not serve")
        );
    }
}
