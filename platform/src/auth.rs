//! Bearer tokens shared by the services: HS256 JWTs whose `scope` claim lists what the caller
//! may do. Services only verify; the launcher and scripts mint. A request without a token is
//! anonymous, which is different from a request with a bad token: the latter is refused.

use std::collections::BTreeSet;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    #[error("the bearer token has expired")]
    Expired,
    #[error("the bearer token is invalid: {0}")]
    Invalid(String),
    #[error("the Authorization header must be `Bearer <token>`")]
    MalformedHeader,
    #[error("could not sign the token: {0}")]
    Signing(String),
}

/// Who is calling, as far as a service needs to know: an optional subject (used to scope
/// idempotency keys and ownership) and the scopes the token grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    subject: Option<String>,
    scopes: BTreeSet<String>,
}

impl Principal {
    pub fn anonymous() -> Self {
        Self::default()
    }

    pub fn new(subject: impl Into<String>, scopes: impl IntoIterator<Item = String>) -> Self {
        Self {
            subject: Some(subject.into()),
            scopes: scopes.into_iter().collect(),
        }
    }

    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    pub fn is_authenticated(&self) -> bool {
        self.subject.is_some()
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scopes.iter().map(String::as_str)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    /// Space-separated, as in OAuth 2.0 (RFC 8693 `scope`).
    #[serde(default)]
    scope: String,
    iat: i64,
    exp: i64,
}

/// The HS256 key pair derived from the shared secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(..)")
    }
}

impl JwtKeys {
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Signs a token for `subject` with the given scopes, valid for `ttl`.
    pub fn mint<S: AsRef<str>>(
        &self,
        subject: &str,
        scopes: &[S],
        ttl: Duration,
    ) -> Result<String, AuthError> {
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let expires_at = chrono::Utc::now()
            .checked_add_signed(ttl)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        self.mint_expiring_at(subject, scopes, expires_at)
    }

    /// Signs a token that expires at a given instant.
    pub fn mint_expiring_at<S: AsRef<str>>(
        &self,
        subject: &str,
        scopes: &[S],
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, AuthError> {
        let claims = Claims {
            sub: subject.to_owned(),
            scope: scopes
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(" "),
            iat: chrono::Utc::now().timestamp(),
            exp: expires_at.timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Signing(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(e.to_string()),
            })?;
        let scopes = data
            .claims
            .scope
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        Ok(Principal::new(data.claims.sub, scopes))
    }

    /// Reads an `Authorization` header value: none means anonymous, anything that is not a
    /// valid bearer token is an error (never silently downgraded to anonymous).
    pub fn principal_from_authorization(
        &self,
        header: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let Some(value) = header.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Principal::anonymous());
        };
        let (scheme, token) = value.split_once(' ').ok_or(AuthError::MalformedHeader)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(AuthError::MalformedHeader);
        }
        self.verify(token.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_with_their_scopes() {
        let keys = JwtKeys::from_secret(b"secret");
        let token = keys
            .mint(
                "crm",
                &["tickets:read", "events:read"],
                Duration::from_secs(60),
            )
            .unwrap();
        let principal = keys.verify(&token).unwrap();
        assert_eq!(principal.subject(), Some("crm"));
        assert!(principal.has_scope("events:read"));
        assert!(!principal.has_scope("tickets:admin"));
    }

    #[test]
    fn a_token_from_another_secret_is_refused() {
        let token = JwtKeys::from_secret(b"one")
            .mint("x", &["a"], Duration::from_secs(60))
            .unwrap();
        let err = JwtKeys::from_secret(b"two").verify(&token).unwrap_err();
        assert!(matches!(err, AuthError::Invalid(_)));
    }

    #[test]
    fn headers_without_bearer_are_malformed_and_empty_is_anonymous() {
        let keys = JwtKeys::from_secret(b"s");
        assert_eq!(
            keys.principal_from_authorization(Some("Basic abc")),
            Err(AuthError::MalformedHeader)
        );
        assert_eq!(
            keys.principal_from_authorization(None),
            Ok(Principal::anonymous())
        );
    }
}
