//! Money in minor units (cents) with an ISO 4217 currency code: integers, so totals never
//! drift, and the currency travels with every amount so two can never be added by mistake.

use serde::{Deserialize, Serialize};

use super::DomainError;

/// A currency a ticket can be priced in: an ISO 4217 code that names money people pay with.
/// The codes ISO lists that are not that are refused: `XXX` (no currency), `XTS` (testing),
/// precious metals (`XAU`, `XAG`, `XPT`, `XPD`), units of account and other "special" codes
/// (`XDR`, `XBA`…, `XSU`, `XUA`), funds (`USN`, `CHE`…) and currencies that have been
/// replaced (`HRK` by `EUR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, DomainError> {
        let bytes = code.as_bytes();
        if !(bytes.len() == 3 && bytes.iter().all(u8::is_ascii_uppercase)) {
            return Err(DomainError::invalid(format!(
                "currency must be an ISO 4217 code of three capital letters, got {code:?}"
            )));
        }
        let Some(iso) = iso_currency::Currency::from_code(code) else {
            return Err(DomainError::invalid(format!(
                "currency {code:?} is not an ISO 4217 currency code"
            )));
        };
        if iso.is_special() || iso.is_fund() || iso.exponent().is_none() {
            return Err(DomainError::invalid(format!(
                "currency {code:?} ({}) is an ISO 4217 code but not a currency tickets can be priced in",
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
        Ok(Self([bytes[0], bytes[1], bytes[2]]))
    }

    /// For codes read back from our own database: they were parsed on the way in, and a
    /// currency ISO retires later must not make stored purchases unreadable.
    pub fn from_stored(code: &str) -> Option<Self> {
        let bytes = code.as_bytes();
        (bytes.len() == 3 && bytes.iter().all(u8::is_ascii_uppercase))
            .then(|| Self([bytes[0], bytes[1], bytes[2]]))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII capitals get in through `parse` and `from_stored`.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// How many decimal places the minor unit has (2 for EUR, 0 for JPY, 3 for KWD).
    pub fn minor_unit_exponent(&self) -> Option<u16> {
        iso_currency::Currency::from_code(self.as_str()).and_then(|c| c.exponent())
    }
}

impl TryFrom<String> for Currency {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        // Deserialised values come from our own event log.
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
    /// Largest price we accept. With at most 20 lines of 100 seats, every total stays below
    /// [`Money::MAX_EXACT`].
    pub const MAX_AMOUNT: i64 = 1_000_000_000;

    /// Largest amount the API sends or accepts: 2^53 - 1, the largest integer a JavaScript
    /// number (an IEEE double) holds exactly, so a browser never rounds a total.
    pub const MAX_EXACT: i64 = (1 << 53) - 1;

    pub fn new(amount: i64, currency: Currency) -> Result<Self, DomainError> {
        if !(0..=Self::MAX_AMOUNT).contains(&amount) {
            return Err(DomainError::invalid(format!(
                "amount must be between 0 and {} minor units, got {amount}",
                Self::MAX_AMOUNT
            )));
        }
        Ok(Self { amount, currency })
    }

    pub fn zero(currency: Currency) -> Self {
        Self {
            amount: 0,
            currency,
        }
    }

    /// `self` times `quantity`, refused rather than wrapped or beyond [`Money::MAX_EXACT`].
    pub fn times(self, quantity: i64) -> Result<Self, DomainError> {
        self.amount
            .checked_mul(quantity)
            .filter(|a| (0..=Self::MAX_EXACT).contains(a))
            .map(|amount| Self { amount, ..self })
            .ok_or_else(|| DomainError::invalid("the purchase total is too large"))
    }

    /// The sum, refused rather than wrapped or beyond [`Money::MAX_EXACT`].
    pub fn plus(self, other: Self) -> Result<Self, DomainError> {
        if self.currency != other.currency {
            return Err(DomainError::invalid(format!(
                "cannot add {} to {}",
                other.currency, self.currency
            )));
        }
        self.amount
            .checked_add(other.amount)
            .filter(|a| (0..=Self::MAX_EXACT).contains(a))
            .map(|amount| Self { amount, ..self })
            .ok_or_else(|| DomainError::invalid("the purchase total is too large"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies() {
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "EUR");
        assert_eq!(
            Currency::parse("JPY").unwrap().minor_unit_exponent(),
            Some(0)
        );
        assert_eq!(
            Currency::parse("KWD").unwrap().minor_unit_exponent(),
            Some(3)
        );
        for bad in [
            "eur", "EURO", "", "ZZZ", "XYZ", "XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XDR",
            "USN", "HRK",
        ] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
        assert!(Money::new(-1, Currency::parse("EUR").unwrap()).is_err());
    }

    #[test]
    fn totals_stay_exact() {
        let eur = Currency::parse("EUR").unwrap();
        let price = Money::new(Money::MAX_AMOUNT, eur).unwrap();
        assert_eq!(price.times(3).unwrap().amount, 3_000_000_000);
        assert!(price.times(10_000_000).is_err());
        assert!(
            Money {
                amount: Money::MAX_EXACT,
                currency: eur
            }
            .plus(Money::new(1, eur).unwrap())
            .is_err()
        );
    }
}
