//! Small values parsed once at the edge.
//!
//! Text people read back (company and contact names, e-mail addresses, level names) must also
//! look like what it is: control characters, bidirectional overrides and zero-width
//! characters are refused, because they make a value display as something else
//! ("evil\u{202E}gro.elpmaxe" shows as a harmless address on a dashboard) or two different
//! values display the same (a sponsor "Acme" and "Ac\u{200B}me").

use serde::{Deserialize, Serialize};

use super::DomainError;

/// Trimmed, not empty, at most `max` characters, nothing invisible ([`platform::text`]).
fn bounded_text(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    platform::text::bounded_text(field, value, max)
        .map(str::to_owned)
        .map_err(DomainError::invalid)
}

macro_rules! trimmed_text {
    ($(#[$doc:meta])* $name:ident, max = $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MAX: usize = $max;

            /// Trimmed, not empty, at most `MAX` characters, nothing invisible.
            pub fn parse(field: &str, value: &str) -> Result<Self, DomainError> {
                bounded_text(field, value, Self::MAX).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// For values read back from storage, which only ever holds parsed ones.
            pub fn trusted(value: String) -> Self {
                Self(value)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

trimmed_text!(
    /// A sponsor's company name.
    CompanyName,
    max = 200
);
trimmed_text!(
    /// A contact person's name; it becomes the purchaser's name in ticketing.
    PersonName,
    max = 200
);
trimmed_text!(
    /// A sponsorship level's name, e.g. `Gold`. Matched case-insensitively.
    LevelName,
    max = 50
);

impl LevelName {
    /// The same level whatever the letter case a client typed.
    pub fn matches(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other.trim())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub const MAX: usize = platform::text::EMAIL_ADDRESS_MAX;

    /// The address syntax of RFC 5321/5322 as the `email_address` crate checks it, narrowed to
    /// what mail can be sent to and a person can read: a domain with a dot (no bare hosts, no
    /// `[192.0.2.1]` literals), no display name (`Ada <ada@…>`), no quoted local part, and
    /// nothing invisible. The same rule ticketing applies to purchasers, so an address the CRM
    /// accepts is never refused when the CRM books tickets with it.
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

/// A number of complimentary tickets: a level's allowance, an override, a bonus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketCount(i64);

impl TicketCount {
    /// Far above any real sponsorship; keeps sums small and inside GraphQL's `Int`.
    pub const MAX: i64 = 1_000;

    pub fn parse(field: &str, value: i64) -> Result<Self, DomainError> {
        if (0..=Self::MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(DomainError::invalid(format!(
                "{field} must be between 0 and {}, got {value}",
                Self::MAX
            )))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }

    pub fn trusted(value: i64) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_are_trimmed_and_bounded() {
        assert_eq!(
            CompanyName::parse("name", "  Acme ").unwrap().as_str(),
            "Acme"
        );
        assert!(CompanyName::parse("name", "   ").is_err());
        assert!(CompanyName::parse("name", &"x".repeat(201)).is_err());
        assert!(LevelName::parse("level", "Gold").unwrap().matches(" gold"));
    }

    #[test]
    fn invisible_characters_are_refused_in_names() {
        for bad in [
            "Ac\u{200B}me",
            "Acme\u{202E}",
            "\u{2066}Acme\u{2069}",
            "Ac\u{200D}me",
            "Ac\u{2060}me",
            "\u{FEFF}Acme",
            "Ac\u{200E}me",
            "Ac\u{200F}me",
            "Ac\u{0007}me",
        ] {
            let refused = CompanyName::parse("name", bad).unwrap_err().to_string();
            assert!(
                refused.contains("name must not contain"),
                "{bad:?}: {refused}"
            );
            assert!(PersonName::parse("contactName", bad).is_err(), "{bad:?}");
        }
        assert!(CompanyName::parse("name", "Société Générale").is_ok());
        assert!(PersonName::parse("contactName", "李小龍").is_ok());
    }

    #[test]
    fn emails_and_counts() {
        assert!(EmailAddress::parse("email", "ada@example.org").is_ok());
        assert!(EmailAddress::parse("email", "ada.lovelace+crm@mail.example.org").is_ok());
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "a b@x.org",
            "Ada <ada@example.org>",
            "\"ada\"@example.org",
            "ada@[192.0.2.1]",
            "ada@exa..mple.org",
            "ada@example.org\u{202E}",
            "ad\u{200B}a@example.org",
            "ada@exam\u{FEFF}ple.org",
        ] {
            assert!(EmailAddress::parse("email", bad).is_err(), "{bad:?}");
        }
        assert!(TicketCount::parse("n", -1).is_err());
        assert!(TicketCount::parse("n", 1_001).is_err());
        assert_eq!(TicketCount::parse("n", 5).unwrap().get(), 5);
    }
}
