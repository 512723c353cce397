//! Small values parsed once at the edge.

use serde::{Deserialize, Serialize};

use super::DomainError;

macro_rules! trimmed_text {
    ($(#[$doc:meta])* $name:ident, max = $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MAX: usize = $max;

            /// Trimmed, not empty, at most `MAX` characters, no control characters.
            pub fn parse(field: &str, value: &str) -> Result<Self, DomainError> {
                let value = value.trim();
                if value.is_empty() {
                    return Err(DomainError::invalid(format!("{field} must not be empty")));
                }
                if value.chars().count() > Self::MAX {
                    return Err(DomainError::invalid(format!(
                        "{field} must be at most {} characters",
                        Self::MAX
                    )));
                }
                if value.chars().any(char::is_control) {
                    return Err(DomainError::invalid(format!(
                        "{field} must not contain control characters"
                    )));
                }
                Ok(Self(value.to_owned()))
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
    pub const MAX: usize = 254;

    /// Deliberately simple: one `@`, a non-empty local part, a dotted domain, no spaces.
    /// The same rule ticketing applies to purchasers, so an address the CRM accepts is
    /// never refused when the CRM books tickets with it.
    pub fn parse(field: &str, value: &str) -> Result<Self, DomainError> {
        let value = value.trim();
        let bad =
            || DomainError::invalid(format!("{field} {value:?} is not a valid e-mail address"));
        if value.len() > Self::MAX {
            return Err(DomainError::invalid(format!(
                "{field} must be at most {} characters",
                Self::MAX
            )));
        }
        let (local, domain) = value.split_once('@').ok_or_else(bad)?;
        let domain_ok = !domain.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '@' || c == '"');
        if domain_ok && local_ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(bad())
        }
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
    fn emails_and_counts() {
        assert!(EmailAddress::parse("email", "ada@example.org").is_ok());
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "a b@x.org",
        ] {
            assert!(EmailAddress::parse("email", bad).is_err(), "{bad}");
        }
        assert!(TicketCount::parse("n", -1).is_err());
        assert!(TicketCount::parse("n", 1_001).is_err());
        assert_eq!(TicketCount::parse("n", 5).unwrap().get(), 5);
    }
}
