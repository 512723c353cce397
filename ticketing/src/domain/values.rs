//! Small validated values. Limits are generous for real use and tight enough that a client
//! cannot store megabytes in a name.
//!
//! Text that people read back (names, e-mail addresses, references) must also look like what
//! it is: control characters, bidirectional overrides and zero-width characters are refused,
//! because they let a value display as something else ("evil\u{202E}gro.elpmaxe" shows as a
//! harmless address in a dashboard) or two different values display the same.

use serde::{Deserialize, Serialize};

use super::DomainError;

/// Refuses control characters and invisible formatting in `value` ([`platform::text`]).
fn check_displayable(field: &str, value: &str) -> Result<(), DomainError> {
    platform::text::check_displayable(field, value).map_err(DomainError::invalid)
}

/// Trimmed, not empty, at most `max` characters, nothing invisible ([`platform::text`]).
fn bounded_text(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    platform::text::bounded_text(field, value, max)
        .map(str::to_owned)
        .map_err(DomainError::invalid)
}

/// A display name: a person, a conference, a ticket type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    pub const MAX: usize = 200;

    pub fn parse(field: &str, value: &str) -> Result<Self, DomainError> {
        bounded_text(field, value, Self::MAX).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For values read back from our own database, which were parsed on the way in.
    pub fn trusted(value: String) -> Self {
        Self(value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub const MAX: usize = platform::text::EMAIL_ADDRESS_MAX;

    /// The address syntax of RFC 5321/5322 as the `email_address` crate checks it, narrowed to
    /// what a confirmation e-mail can be sent to and a person can read: a domain with a dot
    /// (no bare hosts, no `[192.0.2.1]` literals), no display name (`Ada <ada@…>`), no quoted
    /// local part (`"<script>"@…` is valid RFC 5322 and nothing we want to show), and no
    /// invisible characters. Whether the mailbox exists is for the confirmation e-mail to
    /// find out.
    pub fn parse(field: &str, value: &str) -> Result<Self, DomainError> {
        platform::text::email_address(field, value)
            .map(|address| Self(address.to_owned()))
            .map_err(DomainError::invalid)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn trusted(value: String) -> Self {
        Self(value)
    }
}

/// Seats on one purchase line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quantity(i64);

impl Quantity {
    pub const MAX: i64 = 100;

    pub fn parse(value: i64) -> Result<Self, DomainError> {
        if (1..=Self::MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(DomainError::invalid(format!(
                "quantity must be between 1 and {}, got {value}",
                Self::MAX
            )))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// Chosen by the client to make a request safe to retry; scoped to that client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX: usize = 255;

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        if value.is_empty() || value.len() > Self::MAX || value.chars().any(char::is_control) {
            return Err(DomainError::invalid(format!(
                "idempotencyKey must be 1 to {} printable characters",
                Self::MAX
            )));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The client's own name for a purchase, opaque to ticketing, unique per client for ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExternalReference(String);

impl ExternalReference {
    pub const MAX: usize = 200;

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        if value.is_empty() || value.len() > Self::MAX {
            return Err(DomainError::invalid(format!(
                "externalReference must be 1 to {} printable characters",
                Self::MAX
            )));
        }
        check_displayable("externalReference", value)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn trusted(value: String) -> Self {
        Self(value)
    }
}

/// Who created a purchase, and whose idempotency keys and external references these are: the
/// token's subject, or one shared key for every buyer without a token. An anonymous purchase
/// therefore has no owner to speak of; its access token is its credential.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientKey(String);

const ANONYMOUS: &str = "anonymous";

impl ClientKey {
    pub fn for_subject(subject: Option<&str>) -> Self {
        match subject {
            // The prefix keeps a subject named "anonymous" apart from anonymous buyers.
            Some(s) => Self(format!("sub:{s}")),
            None => Self::anonymous(),
        }
    }

    pub fn anonymous() -> Self {
        Self(ANONYMOUS.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn trusted(value: String) -> Self {
        Self(value)
    }

    pub fn is_anonymous(&self) -> bool {
        self.0 == ANONYMOUS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for good in [
            "ada@example.org",
            "ada.lovelace+tickets@mail.example.co.uk",
            "zoë@exämple.org",
        ] {
            assert!(EmailAddress::parse("email", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "a da@example.org",
            "ada@exa..mple.org",
            "<script>alert(1)</script>@example.org",
            "\"<script>\"@example.org",
            "ada@[192.0.2.1]",
            "Ada <ada@example.org>",
            "ada\u{202E}@example.org",
            "ada@example\u{202E}gro.org",
            "a\u{200B}da@example.org",
            "ada@exa\u{2060}mple.org",
            "\u{FEFF}ada@example.org",
            "ada\u{0007}@example.org",
        ] {
            assert!(EmailAddress::parse("email", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_refuse_invisible_formatting() {
        for bad in [
            "Ada\u{202E}ecalevoL",
            "Ada\u{200B}Lovelace",
            "\u{2066}Ada\u{2069}",
            "Ada\u{200F}",
            "Ada\nLovelace",
        ] {
            assert!(Name::parse("name", bad).is_err(), "{bad:?}");
        }
        assert!(Name::parse("name", "Zoë Ångström-Nuñez").is_ok());
        assert!(ExternalReference::parse("order\u{202E}1").is_err());
    }

    #[test]
    fn quantities_and_names() {
        assert!(Quantity::parse(0).is_err());
        assert!(Quantity::parse(-1).is_err());
        assert!(Quantity::parse(101).is_err());
        assert_eq!(Quantity::parse(3).unwrap().get(), 3);
        assert!(Name::parse("name", "   ").is_err());
        assert!(Name::parse("name", &"x".repeat(201)).is_err());
        assert_eq!(Name::parse("name", " Ada ").unwrap().as_str(), "Ada");
    }
}
