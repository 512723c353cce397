//! Small validated values. Limits are generous for real use and tight enough that a client
//! cannot store megabytes in a name.

use serde::{Deserialize, Serialize};

use super::DomainError;

fn bounded_text(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(format!("{field} must not be empty")));
    }
    if trimmed.chars().count() > max {
        return Err(DomainError::invalid(format!(
            "{field} must be at most {max} characters"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(DomainError::invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(trimmed.to_owned())
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
    pub const MAX: usize = 254;

    /// Deliberately simple: one `@`, a non-empty local part, a dotted domain, no spaces.
    /// Whether the mailbox exists is for the confirmation e-mail to find out.
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
        if value.is_empty() || value.len() > Self::MAX || value.chars().any(char::is_control) {
            return Err(DomainError::invalid(format!(
                "externalReference must be 1 to {} printable characters",
                Self::MAX
            )));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn trusted(value: String) -> Self {
        Self(value)
    }
}

/// Whose idempotency keys and external references these are: the token's subject, or one
/// shared namespace for anonymous buyers (whose keys are random by convention).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientKey(String);

impl ClientKey {
    pub fn for_subject(subject: Option<&str>) -> Self {
        match subject {
            Some(s) => Self(format!("sub:{s}")),
            None => Self("anonymous".to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn trusted(value: String) -> Self {
        Self(value)
    }

    pub fn is_anonymous(&self) -> bool {
        self.0 == "anonymous"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(EmailAddress::parse("email", "ada@example.org").is_ok());
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "a da@example.org",
            "ada@exa..mple.org",
        ] {
            assert!(EmailAddress::parse("email", bad).is_err(), "{bad}");
        }
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
