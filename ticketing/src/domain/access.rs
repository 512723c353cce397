//! What a caller may touch, once the API's policy table has decided
//! ([`crate::api::policy`]), and the credential of a purchase made without a token.
//!
//! An [`Access`] travels with the request into the store, which puts it into the `WHERE`
//! clause of the statement that reads or changes the data: who may touch a row is decided in
//! the same statement that touches it, never by a read before it.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::{ClientKey, Ticket, TicketPurchase};

/// The reach a policy rule gives a caller for one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Everything the operation reaches (a scope that covers it).
    Any,
    /// Only what is public: public ticket types, paid purchases of them. No purchase or
    /// ticket is public.
    Public,
    /// Only what this client created (the token's subject).
    OwnedBy(ClientKey),
    /// Only the anonymous purchase (and its tickets) whose access token the caller presented.
    HeldWith(HeldPurchase),
}

impl Access {
    /// Whether this access reaches `purchase`.
    pub fn covers(&self, purchase: &TicketPurchase) -> bool {
        self.covers_purchase(purchase.id, purchase.client_key.as_ref())
    }

    /// Whether this access reaches `ticket` (through the purchase it belongs to).
    pub fn covers_ticket(&self, ticket: &Ticket) -> bool {
        self.covers_purchase(ticket.purchase_id, ticket.client_key.as_ref())
    }

    fn covers_purchase(&self, purchase_id: Uuid, owner: Option<&ClientKey>) -> bool {
        match self {
            Self::Any => true,
            Self::Public => false,
            Self::OwnedBy(client) => owner == Some(client),
            Self::HeldWith(held) => {
                held.purchase_id() == purchase_id && owner.is_some_and(ClientKey::is_anonymous)
            }
        }
    }

    /// Restricted ticket types and complimentary purchases are for full access only.
    pub fn reaches_restricted(&self) -> bool {
        matches!(self, Self::Any)
    }
}

/// Proof that the caller presented the access token of this (anonymous) purchase. Only
/// [`PurchaseTokens::verify`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldPurchase(Uuid);

impl HeldPurchase {
    pub fn purchase_id(&self) -> Uuid {
        self.0
    }
}

/// Issues and verifies the access tokens of anonymous purchases. A token is the purchase id
/// and an HMAC-SHA256 of it under ticketing's secret: unguessable without the secret, the
/// same for the same purchase every time (an idempotent replay hands out the same token),
/// and nothing secret is stored. Verification compares in constant time.
#[derive(Clone)]
pub struct PurchaseTokens {
    /// Keyed once; each use continues from a clone.
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for PurchaseTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PurchaseTokens(..)")
    }
}

/// Ties a MAC to this use, so the secret could never produce a value valid elsewhere.
const LABEL: &[u8] = b"conftools/ticketing/purchase-access-token/v1\0";
/// Marks the token for people and secret scanners.
const PREFIX: &str = "tpa1_";
const ID_LEN: usize = 16;
const TAG_LEN: usize = 32;

impl PurchaseTokens {
    /// At least 32 bytes of secret make the MAC as strong as SHA-256 allows.
    pub const MIN_SECRET_LEN: usize = 32;

    pub fn new(secret: Vec<u8>) -> Result<Self, WeakSecret> {
        if secret.len() < Self::MIN_SECRET_LEN {
            return Err(WeakSecret(secret.len()));
        }
        let keyed =
            <Hmac<Sha256> as Mac>::new_from_slice(&secret).map_err(|_| WeakSecret(secret.len()))?;
        Ok(Self { keyed })
    }

    fn mac(&self, purchase_id: Uuid) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(LABEL);
        mac.update(purchase_id.as_bytes());
        mac
    }

    /// The access token of `purchase_id`, and the proof of holding it for the answer that
    /// hands it out.
    pub fn issue(&self, purchase_id: Uuid) -> (String, HeldPurchase) {
        use base64::Engine;
        let tag = self.mac(purchase_id).finalize().into_bytes();
        let mut raw = Vec::with_capacity(ID_LEN + TAG_LEN);
        raw.extend_from_slice(purchase_id.as_bytes());
        raw.extend_from_slice(&tag);
        let token = format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        (token, HeldPurchase(purchase_id))
    }

    /// The purchase a token was issued for, or `None` for anything that is not a token this
    /// service issued.
    pub fn verify(&self, token: &str) -> Option<HeldPurchase> {
        use base64::Engine;
        let encoded = token.strip_prefix(PREFIX)?;
        // Refuse oversized input before decoding it.
        if encoded.len() > 2 * (ID_LEN + TAG_LEN) {
            return None;
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()?;
        if raw.len() != ID_LEN + TAG_LEN {
            return None;
        }
        let (id, tag) = raw.split_at(ID_LEN);
        let purchase_id = Uuid::from_slice(id).ok()?;
        self.mac(purchase_id)
            .verify_slice(tag)
            .ok()
            .map(|()| HeldPurchase(purchase_id))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the purchase token secret must be at least {min} bytes, got {0}",
    min = PurchaseTokens::MIN_SECRET_LEN
)]
pub struct WeakSecret(pub usize);

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(secret: &[u8]) -> PurchaseTokens {
        PurchaseTokens::new(secret.repeat(32 / secret.len() + 1)).unwrap()
    }

    #[test]
    fn a_token_opens_its_purchase_only() {
        let tokens = tokens(b"secret");
        let id = Uuid::now_v7();
        let (token, held) = tokens.issue(id);
        assert_eq!(held.purchase_id(), id);
        assert_eq!(token, tokens.issue(id).0, "the same every time");
        assert_eq!(tokens.verify(&token).map(|h| h.purchase_id()), Some(id));

        let other = Uuid::now_v7();
        assert_ne!(tokens.issue(other).0, token);
        // The id swapped into a token: the MAC no longer matches.
        let forged = tokens.issue(other).0.replace(PREFIX, "");
        let mut raw =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, forged)
                .unwrap();
        raw[..ID_LEN].copy_from_slice(id.as_bytes());
        let forged = format!(
            "{PREFIX}{}",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, raw)
        );
        assert!(tokens.verify(&forged).is_none());

        assert!(self::tokens(b"another").verify(&token).is_none());
        for garbage in [
            "",
            "tpa1_",
            "tpa1_!!!",
            &token[..token.len() - 1],
            id.to_string().as_str(),
        ] {
            assert!(tokens.verify(garbage).is_none(), "{garbage}");
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(PurchaseTokens::new(b"short".to_vec()).is_err());
    }
}
