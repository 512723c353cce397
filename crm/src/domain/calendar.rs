//! Which dates the CRM believes. GraphQL's `Date` takes any day from year -262144 to 262143;
//! a contract "signed" in year 1 would earn every early-signing bonus, and an invoice due in
//! 9999 is never overdue. The windows below are wide enough for real sales work (recording a
//! contract signed a while ago, an instalment due years ahead) and refuse typos like `0202`
//! or `2206` for `2026`.

use chrono::{Months, NaiveDate};

use super::DomainError;

/// How far back a contract's signing date may lie: a multi-year deal entered late.
pub const SIGNED_MONTHS_BACK: u32 = 5 * 12;
/// How far back an invoice's due date may lie: an invoice recorded after the fact.
pub const DUE_MONTHS_BACK: u32 = 12;
/// How far ahead an invoice's due date may lie: instalments of a deal for a future edition.
pub const DUE_MONTHS_AHEAD: u32 = 5 * 12;
/// How far either way an early-signing rule's cut-off may lie.
pub const RULE_MONTHS_EITHER_WAY: u32 = 5 * 12;

fn window(
    field: &str,
    date: NaiveDate,
    today: NaiveDate,
    months_back: u32,
    months_ahead: u32,
) -> Result<NaiveDate, DomainError> {
    let earliest = today
        .checked_sub_months(Months::new(months_back))
        .unwrap_or(NaiveDate::MIN);
    let latest = today
        .checked_add_months(Months::new(months_ahead))
        .unwrap_or(NaiveDate::MAX);
    if date < earliest || date > latest {
        let ahead = if months_ahead == 0 {
            "today".to_owned()
        } else {
            latest.to_string()
        };
        return Err(DomainError::invalid(format!(
            "{field} {date} is not a plausible date: it must lie between {earliest} and {ahead}"
        )));
    }
    Ok(date)
}

/// The day a contract was signed: never in the future, at most [`SIGNED_MONTHS_BACK`] ago.
pub fn signing_date(
    field: &str,
    date: NaiveDate,
    today: NaiveDate,
) -> Result<NaiveDate, DomainError> {
    if date > today {
        return Err(DomainError::invalid(format!(
            "{field} {date} is in the future"
        )));
    }
    window(field, date, today, SIGNED_MONTHS_BACK, 0)
}

/// The day an invoice falls due.
pub fn due_date(field: &str, date: NaiveDate, today: NaiveDate) -> Result<NaiveDate, DomainError> {
    window(field, date, today, DUE_MONTHS_BACK, DUE_MONTHS_AHEAD)
}

/// The cut-off of an early-signing rule.
pub fn rule_date(field: &str, date: NaiveDate, today: NaiveDate) -> Result<NaiveDate, DomainError> {
    window(
        field,
        date,
        today,
        RULE_MONTHS_EITHER_WAY,
        RULE_MONTHS_EITHER_WAY,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn dates_outside_their_window_are_refused() {
        let today = day("2026-11-30");
        assert!(signing_date("signedOn", today, today).is_ok());
        assert!(signing_date("signedOn", day("2021-11-30"), today).is_ok());
        assert!(signing_date("signedOn", day("2021-11-29"), today).is_err());
        assert!(signing_date("signedOn", day("2026-12-01"), today).is_err());
        assert!(signing_date("signedOn", day("0001-01-01"), today).is_err());

        assert!(due_date("dueOn", day("2025-11-30"), today).is_ok());
        assert!(due_date("dueOn", day("2025-11-29"), today).is_err());
        assert!(due_date("dueOn", day("2031-11-30"), today).is_ok());
        assert!(due_date("dueOn", day("2031-12-01"), today).is_err());
        let far = due_date("dueOn", NaiveDate::MAX, today).unwrap_err();
        assert!(far.to_string().contains("dueOn"), "{far}");

        assert!(rule_date("signedBefore", day("2021-11-30"), today).is_ok());
        assert!(rule_date("signedBefore", day("2031-12-01"), today).is_err());
    }
}
