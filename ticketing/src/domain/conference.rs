use chrono::{DateTime, Days, Months, NaiveDate, Utc};
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

/// How far back a conference may start: recording one that just happened (to issue tickets
/// after the fact) is plausible, one from 1900 is a typo.
pub const MAX_DAYS_IN_THE_PAST: u64 = 365;
/// How far ahead a conference may end.
pub const MAX_YEARS_AHEAD: u32 = 10;
/// The longest a conference may last: a month covers any conference, and catches a year
/// typed wrong in one of the two dates.
pub const MAX_LENGTH_DAYS: i64 = 31;

#[derive(Debug, Clone)]
pub struct NewConference {
    pub name: Name,
    pub currency: Currency,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

impl NewConference {
    /// `today` is the organiser's calendar date now; dates are checked against it.
    pub fn new(
        name: Name,
        currency: Currency,
        starts_on: NaiveDate,
        ends_on: NaiveDate,
        today: NaiveDate,
    ) -> Result<Self, DomainError> {
        if ends_on < starts_on {
            return Err(DomainError::invalid("endsOn must not be before startsOn"));
        }
        let earliest = today
            .checked_sub_days(Days::new(MAX_DAYS_IN_THE_PAST))
            .unwrap_or(NaiveDate::MIN);
        if starts_on < earliest {
            return Err(DomainError::invalid(format!(
                "startsOn {starts_on} is more than {MAX_DAYS_IN_THE_PAST} days in the past"
            )));
        }
        let latest = today
            .checked_add_months(Months::new(12 * MAX_YEARS_AHEAD))
            .unwrap_or(NaiveDate::MAX);
        if ends_on > latest {
            return Err(DomainError::invalid(format!(
                "endsOn {ends_on} is more than {MAX_YEARS_AHEAD} years ahead"
            )));
        }
        let length = (ends_on - starts_on).num_days() + 1;
        if length > MAX_LENGTH_DAYS {
            return Err(DomainError::invalid(format!(
                "a conference may last at most {MAX_LENGTH_DAYS} days; startsOn {starts_on} to endsOn {ends_on} is {length}"
            )));
        }
        Ok(Self {
            name,
            currency,
            starts_on,
            ends_on,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn new(starts: &str, ends: &str) -> Result<NewConference, DomainError> {
        NewConference::new(
            Name::parse("name", "RustConf").unwrap(),
            Currency::parse("EUR").unwrap(),
            date(starts),
            date(ends),
            date("2026-11-30"),
        )
    }

    #[test]
    fn plausible_dates() {
        assert!(new("2027-05-01", "2027-05-03").is_ok());
        assert!(new("2026-06-01", "2026-06-02").is_ok(), "a recent past one");
        assert!(new("2027-05-03", "2027-05-01").is_err(), "backwards");
        assert!(new("1900-01-01", "1900-01-02").is_err(), "1900");
        assert!(new("2025-11-01", "2025-11-02").is_err(), "over a year ago");
        assert!(
            new("2037-01-01", "2037-01-02").is_err(),
            "over ten years ahead"
        );
        assert!(new("2027-05-01", "2028-05-01").is_err(), "a year long");
        assert!(new("2027-05-01", "2027-05-31").is_ok(), "a month");
    }
}
