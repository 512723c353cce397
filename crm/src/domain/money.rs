//! Money in minor units with an ISO 4217 currency, shaped like ticketing's: integers, so
//! sums never drift, and the currency travels with every amount.

use serde::{Deserialize, Serialize};

use super::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const EUR: Self = Self(*b"EUR");

    pub fn parse(code: &str) -> Result<Self, DomainError> {
        let bytes = code.as_bytes();
        if bytes.len() == 3 && bytes.iter().all(u8::is_ascii_uppercase) {
            Ok(Self([bytes[0], bytes[1], bytes[2]]))
        } else {
            Err(DomainError::invalid(format!(
                "currency must be an ISO 4217 code of three capital letters, got {code:?}"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII capitals get in through `parse`.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl TryFrom<String> for Currency {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.as_str().to_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    /// Keeps every amount inside GraphQL's 32-bit `Int`.
    pub const MAX_AMOUNT: i64 = 1_000_000_000;

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
