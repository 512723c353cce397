//! Bearer tokens checked at the gateway's door, by the rules the services apply
//! (`platform::auth`: RFC 8725, the algorithm pinned, `exp`/`nbf`/`iat`, the `scope`
//! grammar, an optional audience). With the services' secret configured, a request whose
//! token is invalid is refused with 401 `UNAUTHENTICATED` before it is parsed: what the gateway
//! answers by itself (introspection, validation errors) is never served to a forged or expired
//! token, and such a token is never silently treated as anonymous. Without a secret the gateway
//! cannot tell a good token from a bad one and leaves them to the subgraphs, which refuse bad
//! ones on every fetch.

use axum::http::HeaderValue;
use platform::{AuthError, JwtKeys};

#[derive(Default)]
pub struct BearerTokens {
    keys: Option<JwtKeys>,
}

impl BearerTokens {
    /// Tokens signed with `secret` (and naming `audience` in `aud`, when given).
    pub fn verified_with(secret: &[u8], audience: Option<&str>) -> Self {
        Self {
            keys: Some(JwtKeys::from_secret(secret).with_audience(audience)),
        }
    }

    /// Whether tokens are verified here at all.
    pub fn verifies(&self) -> bool {
        self.keys.is_some()
    }

    /// `Ok` for no `Authorization` (anonymous) and for a valid bearer token; the reason
    /// otherwise. Always `Ok` when no secret is configured.
    pub fn check(&self, authorization: Option<&HeaderValue>) -> Result<(), AuthError> {
        let Some(keys) = &self.keys else {
            return Ok(());
        };
        let header = match authorization {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| AuthError::MalformedHeader)?),
        };
        keys.principal_from_authorization(header).map(|_| ())
    }

    /// The subject of a valid bearer token; `None` for anonymous callers, invalid tokens, and
    /// always when tokens are not verified here (an unverified subject could be forged to
    /// get a fresh rate-limit bucket with every request).
    pub fn subject(&self, authorization: Option<&HeaderValue>) -> Option<String> {
        let keys = self.keys.as_ref()?;
        let header = authorization?.to_str().ok()?;
        let principal = keys.principal_from_authorization(Some(header)).ok()?;
        principal.subject().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_secret_every_token_passes_to_the_subgraphs() {
        let tokens = BearerTokens::default();
        assert!(
            tokens
                .check(Some(&HeaderValue::from_static("Bearer forged")))
                .is_ok()
        );
    }

    #[test]
    fn with_a_secret_forged_and_malformed_tokens_are_refused() {
        let tokens = BearerTokens::verified_with(b"secret", None);
        assert!(tokens.check(None).is_ok());
        assert!(
            tokens
                .check(Some(&HeaderValue::from_static("Bearer forged")))
                .is_err()
        );
        assert!(
            tokens
                .check(Some(&HeaderValue::from_static("Basic abc")))
                .is_err()
        );
        let token = JwtKeys::from_secret(b"secret")
            .mint(
                "admin",
                &["tickets:admin"],
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        assert!(tokens.check(Some(&header)).is_ok());
    }
}
