//! Money in minor units with an ISO 4217 currency, shaped like ticketing's: integers, so
//! sums never drift, and the currency travels with every amount.

use serde::{Deserialize, Serialize};

use super::DomainError;

/// A currency a sponsor can be invoiced in: an ISO 4217 code that names money people pay
/// with. ISO also lists codes that are not that, and an invoice in them could never be paid:
/// `XXX` (no currency), `XTS` (testing), precious metals (`XAU`, `XAG`, `XPT`, `XPD`), units
/// of account and other special codes (`XDR`, `XBA`…, `XSU`, `XUA`), funds (`USN`, `CHE`…)
/// and currencies that have been replaced (`HRK` by `EUR`). The same rule as ticketing's
/// prices, so a conference's currency is always one the CRM accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const EUR: Self = Self(*b"EUR");

    pub fn parse(code: &str) -> Result<Self, DomainError> {
        let Some(currency) = Self::from_stored(code) else {
            return Err(DomainError::invalid(format!(
                "currency must be an ISO 4217 code of three capital letters, got {code:?}"
            )));
        };
        let Some(iso) = iso_currency::Currency::from_code(code) else {
            return Err(DomainError::invalid(format!(
                "currency {code:?} is not an ISO 4217 currency code"
            )));
        };
        if iso.is_special() || iso.is_fund() || iso.exponent().is_none() {
            return Err(DomainError::invalid(format!(
                "currency {code:?} ({}) is an ISO 4217 code but not a currency an invoice can be paid in",
                iso.name()
            )));
        }
        if let Some(successor) = iso.is_superseded() {
            return Err(DomainError::invalid(format!(
                "currency {code:?} ({}) has been replaced by {}",
                iso.name(),
                successor.code()
            )));
        }
        Ok(currency)
    }

    /// For codes read back from the CRM's own database and event log: they were parsed on the
    /// way in, and a currency ISO retires later must not make stored invoices unreadable.
    pub fn from_stored(code: &str) -> Option<Self> {
        let bytes = code.as_bytes();
        (bytes.len() == 3 && bytes.iter().all(u8::is_ascii_uppercase))
            .then(|| Self([bytes[0], bytes[1], bytes[2]]))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII capitals get in through `parse` and `from_stored`.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl TryFrom<String> for Currency {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        // Deserialised values come from the CRM's own event log.
        Self::from_stored(&value)
            .ok_or_else(|| DomainError::invalid(format!("{value:?} is not a currency code")))
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.as_str().to_owned()
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    /// Largest amount the API carries: 2^53 - 1 minor units, the largest integer a
    /// JavaScript number holds exactly (the `MinorUnits` scalar's range). No tighter cap: in
    /// a currency whose minor unit is worth little (IDR, VND) a real sponsorship runs to
    /// billions of minor units.
    pub const MAX_AMOUNT: i64 = (1 << 53) - 1;

    pub fn new(amount: i64, currency: Currency) -> Result<Self, DomainError> {
        if !(0..=Self::MAX_AMOUNT).contains(&amount) {
            return Err(DomainError::invalid(format!(
                "amount must be between 0 and {} minor units, got {amount}",
                Self::MAX_AMOUNT
            )));
        }
        Ok(Self { amount, currency })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_currencies_people_pay_with() {
        for code in ["EUR", "USD", "JPY", "CHF", "XOF", "XAF", "XPF", "XCD"] {
            assert_eq!(
                Currency::parse(code).map(|c| c.to_string()),
                Ok(code.into())
            );
        }
        for code in [
            "", "eur", "EU", "EURO", "E1R", "ABC", "XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XDR",
            "XBA", "XSU", "XUA", "USN", "CHE", "HRK",
        ] {
            assert!(Currency::parse(code).is_err(), "{code:?} was accepted");
        }
        // What was stored stays readable.
        assert_eq!(
            Currency::from_stored("HRK").map(|c| c.to_string()),
            Some("HRK".into())
        );
    }

    #[test]
    fn amounts_are_whole_minor_units_within_what_javascript_keeps_exact() {
        assert!(Money::new(-1, Currency::EUR).is_err());
        assert!(Money::new(Money::MAX_AMOUNT, Currency::EUR).is_ok());
        assert!(Money::new(Money::MAX_AMOUNT + 1, Currency::EUR).is_err());
    }
}
