//! Bearer tokens shared by the services: HS256 JWTs whose `scope` claim lists what the caller
//! may do. Services only verify; the launcher and scripts mint. A request without a token is
//! anonymous, which is different from a request with a bad token: the latter is refused.
//!
//! Verification follows RFC 8725 (JWT best current practices): the algorithm is pinned to
//! HS256 (a token naming any other, `none` included, is refused); `exp` is required and
//! `exp` and `nbf` are enforced with a small leeway; a token issued (`iat`) in the future is
//! refused; with an audience configured, a token must name it in `aud`, so a token minted
//! for the CRM does not open ticketing. The `scope` claim is scope tokens separated by single
//! spaces (RFC 6749 section 3.3): a tab, a non-breaking or ideographic space, or any other
//! character outside the grammar makes the whole token invalid rather than silently
//! splitting or merging scopes.

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

/// Seconds of clock difference forgiven between the minting and the verifying machine.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    /// Space-separated, as in OAuth 2.0 (RFC 8693 `scope`).
    #[serde(default)]
    scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    exp: i64,
    /// Checked by the JWT library against the configured audience; minted only when asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty", skip_deserializing)]
    aud: Vec<String>,
}

/// The scopes of a `scope` claim: scope tokens (RFC 6749 section 3.3: printable ASCII but
/// space, `"` and `\`) separated by single spaces; `None` for anything else.
fn parse_scope(claim: &str) -> Option<Vec<String>> {
    if claim.is_empty() {
        return Some(Vec::new());
    }
    claim
        .split(' ')
        .map(|token| {
            let valid = !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
            valid.then(|| token.to_owned())
        })
        .collect()
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
    /// Keys for the shared secret, accepting tokens for any audience.
    pub fn from_secret(secret: &[u8]) -> Self {
        // `new` pins the algorithm: a token whose header names another is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        // Without a configured audience, `aud` is not this service's concern.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Accept only tokens whose `aud` names `audience` (e.g. `ticketing`); `None` keeps
    /// accepting any.
    pub fn with_audience(mut self, audience: Option<&str>) -> Self {
        match audience.map(str::trim).filter(|a| !a.is_empty()) {
            Some(audience) => {
                self.validation.validate_aud = true;
                self.validation.set_audience(&[audience]);
                self.validation
                    .set_required_spec_claims(&["exp", "sub", "aud"]);
            }
            None => {
                self.validation.validate_aud = false;
                self.validation.aud = None;
                self.validation.set_required_spec_claims(&["exp", "sub"]);
            }
        }
        self
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

    /// Signs a token for `subject`, valid for `ttl`, that names `audiences` in `aud`: accepted
    /// by the services configured with one of them (and by those with none).
    pub fn mint_for_audiences<S: AsRef<str>>(
        &self,
        subject: &str,
        scopes: &[S],
        ttl: Duration,
        audiences: &[&str],
    ) -> Result<String, AuthError> {
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let expires_at = chrono::Utc::now()
            .checked_add_signed(ttl)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        self.sign(subject, scopes, expires_at, audiences)
    }

    /// Signs a token that expires at a given instant.
    pub fn mint_expiring_at<S: AsRef<str>>(
        &self,
        subject: &str,
        scopes: &[S],
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, AuthError> {
        self.sign(subject, scopes, expires_at, &[])
    }

    fn sign<S: AsRef<str>>(
        &self,
        subject: &str,
        scopes: &[S],
        expires_at: chrono::DateTime<chrono::Utc>,
        audiences: &[&str],
    ) -> Result<String, AuthError> {
        let scope = scopes
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(" ");
        if parse_scope(&scope).is_none() {
            return Err(AuthError::Signing(format!(
                "{scope:?} is not a list of scope tokens separated by single spaces"
            )));
        }
        let claims = Claims {
            sub: subject.to_owned(),
            scope,
            iat: Some(chrono::Utc::now().timestamp()),
            exp: expires_at.timestamp(),
            aud: audiences.iter().map(|a| (*a).to_owned()).collect(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Signing(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => {
                    AuthError::Invalid("the token is not valid yet (nbf)".into())
                }
                ErrorKind::InvalidAudience => {
                    AuthError::Invalid("the token was not issued for this service (aud)".into())
                }
                _ => AuthError::Invalid(e.to_string()),
            })?;
        let now = chrono::Utc::now().timestamp();
        if data
            .claims
            .iat
            .is_some_and(|iat| iat > now + LEEWAY_SECS as i64)
        {
            return Err(AuthError::Invalid(
                "the token was issued in the future (iat)".into(),
            ));
        }
        let scopes = parse_scope(&data.claims.scope).ok_or_else(|| {
            AuthError::Invalid(
                "the scope claim must be scope tokens separated by single spaces (RFC 6749 3.3)"
                    .into(),
            )
        })?;
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

    /// A token with exactly these claims, signed with `secret` and `alg`.
    fn forge(secret: &[u8], alg: Algorithm, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn tokens_not_yet_valid_or_issued_in_the_future_are_refused() {
        let keys = JwtKeys::from_secret(b"s");
        let later = forge(
            b"s",
            Algorithm::HS256,
            serde_json::json!({ "sub": "x", "scope": "a", "exp": now() + 600, "nbf": now() + 300 }),
        );
        assert!(matches!(keys.verify(&later), Err(AuthError::Invalid(m)) if m.contains("nbf")));
        let future = forge(
            b"s",
            Algorithm::HS256,
            serde_json::json!({ "sub": "x", "scope": "a", "exp": now() + 600, "iat": now() + 300 }),
        );
        assert!(matches!(keys.verify(&future), Err(AuthError::Invalid(m)) if m.contains("iat")));
        // Within the leeway, clocks a second apart agree.
        let skewed = forge(
            b"s",
            Algorithm::HS256,
            serde_json::json!({ "sub": "x", "scope": "a", "exp": now() + 600, "iat": now() + 1, "nbf": now() + 1 }),
        );
        assert!(keys.verify(&skewed).is_ok());
    }

    #[test]
    fn the_algorithm_is_pinned() {
        let claims =
            serde_json::json!({ "sub": "x", "scope": "tickets:admin", "exp": now() + 600 });
        let other = forge(b"s", Algorithm::HS512, claims.clone());
        assert!(JwtKeys::from_secret(b"s").verify(&other).is_err());
        // `alg: none`, unsigned.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(claims.to_string())
        );
        assert!(JwtKeys::from_secret(b"s").verify(&none).is_err());
    }

    #[test]
    fn scopes_are_separated_by_single_spaces_only() {
        let keys = JwtKeys::from_secret(b"s");
        let with = |scope: &str| {
            forge(
                b"s",
                Algorithm::HS256,
                serde_json::json!({ "sub": "x", "scope": scope, "exp": now() + 600 }),
            )
        };
        let ok = keys.verify(&with("tickets:read events:read")).unwrap();
        assert!(ok.has_scope("tickets:read") && ok.has_scope("events:read"));
        for bad in [
            "tickets:read\ttickets:admin",
            "tickets:read\u{3000}tickets:admin",
            "tickets:read\u{a0}tickets:admin",
            "tickets:read  tickets:admin",
            " tickets:admin",
            "tickets:admin\n",
        ] {
            assert!(
                matches!(keys.verify(&with(bad)), Err(AuthError::Invalid(_))),
                "{bad:?} was accepted"
            );
        }
        assert!(keys.mint("x", &["a\tb"], Duration::from_secs(60)).is_err());
    }

    #[test]
    fn a_configured_audience_refuses_tokens_for_other_services() {
        let ticketing = JwtKeys::from_secret(b"s").with_audience(Some("ticketing"));
        let for_crm = ticketing
            .mint_for_audiences("x", &["a"], Duration::from_secs(60), &["crm"])
            .unwrap();
        assert!(
            matches!(ticketing.verify(&for_crm), Err(AuthError::Invalid(m)) if m.contains("aud"))
        );
        let for_both = ticketing
            .mint_for_audiences("x", &["a"], Duration::from_secs(60), &["crm", "ticketing"])
            .unwrap();
        assert!(ticketing.verify(&for_both).is_ok());
        let for_anyone = ticketing
            .mint("x", &["a"], Duration::from_secs(60))
            .unwrap();
        assert!(
            ticketing.verify(&for_anyone).is_err(),
            "aud is required once configured"
        );
        // A service without an audience accepts tokens that name one.
        assert!(JwtKeys::from_secret(b"s").verify(&for_crm).is_ok());
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
