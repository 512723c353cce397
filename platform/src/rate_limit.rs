//! How many mutations one client may send: a GCRA token bucket per client (governor), decided
//! at the HTTP edge before the operation is validated or executed. A refusal is HTTP 429 with
//! `Retry-After` and a GraphQL error `RATE_LIMITED`; queries and subscriptions are not counted.
//!
//! A client is the subject of a valid bearer token (the CRM, an organiser's script, each
//! with a bucket of its own), or else the address the request came from
//! ([`crate::client_address`]). The buckets live in this process: with several instances
//! behind a load balancer, each instance allows the full rate, so a client may reach up to
//! instances × the rate. Buckets of clients that have been quiet for a while are forgotten
//! every minute, so a flood of addresses costs memory only while it lasts.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, MonotonicClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::auth::Principal;
use crate::client_address::ClientAddress;

/// The mutation rate limit per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Mutations one client may send per minute, sustained; `0` turns the limit off.
    pub mutations_per_minute: u32,
    /// Mutations one client may send at once before the sustained rate applies.
    pub mutation_burst: u32,
}

impl RateLimits {
    /// No limit: every mutation is let through.
    pub const OFF: Self = Self {
        mutations_per_minute: 0,
        mutation_burst: 0,
    };
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            // Two a second, sustained: far above what a person at the dashboard or the CRM's
            // booking worker sends, and a slow trickle for a script flooding the write path.
            mutations_per_minute: 120,
            // Seeding a demo conference sends about 30 in a row as one admin; an organiser's
            // script may send a few dozen before it has to pace itself.
            mutation_burst: 60,
        }
    }
}

/// Whose bucket a request draws from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// The subject of a valid bearer token.
    Subject(Arc<str>),
    /// An anonymous caller's address.
    Address(ClientAddress),
    /// An anonymous caller whose address is unknown (no connection info): all of them share.
    Unknown,
}

impl RateKey {
    pub fn of(principal: &Principal, address: Option<ClientAddress>) -> Self {
        match (principal.subject(), address) {
            (Some(subject), _) => Self::Subject(Arc::from(subject)),
            (None, Some(address)) => Self::Address(address),
            (None, None) => Self::Unknown,
        }
    }
}

/// Why a mutation was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over the rate: try again after this long.
    RetryAfter(Duration),
    /// More mutations in one request than the burst allows: never let through as it is.
    TooManyAtOnce { burst: u32 },
}

impl Refusal {
    /// `Retry-After` in whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RetryAfter(wait) => {
                Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).map(|s| s.max(1))
            }
            Self::TooManyAtOnce { .. } => None,
        }
    }

    pub fn message(&self) -> String {
        match (self, self.retry_after_secs()) {
            (Self::TooManyAtOnce { burst }, _) => format!(
                "this request holds more mutations than may be sent at once ({burst}); split it"
            ),
            (_, Some(secs)) => format!("too many mutations from this client; retry in {secs} s"),
            (_, None) => "too many mutations from this client".to_owned(),
        }
    }
}

type Limiter = RateLimiter<RateKey, HashMapStateStore<RateKey>, MonotonicClock>;

/// The buckets of one service instance.
pub struct MutationLimiter {
    limiter: Limiter,
    clock: MonotonicClock,
    limits: RateLimits,
}

impl std::fmt::Debug for MutationLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutationLimiter")
            .field("limits", &self.limits)
            .field("clients", &self.limiter.len())
            .finish()
    }
}

/// How often buckets of quiet clients are dropped.
pub const FORGET_EVERY: Duration = Duration::from_secs(60);

impl MutationLimiter {
    /// `None` when the limits are off.
    pub fn new(limits: RateLimits) -> Option<Self> {
        let per_minute = NonZeroU32::new(limits.mutations_per_minute)?;
        let burst = NonZeroU32::new(limits.mutation_burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota =
            Quota::with_period(Duration::from_secs(60) / per_minute.get())?.allow_burst(burst);
        Some(Self {
            limiter: RateLimiter::hashmap_with_clock(quota, MonotonicClock),
            clock: MonotonicClock,
            limits,
        })
    }

    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// Takes `mutations` from the client's bucket, or says when to come back.
    pub fn check(&self, key: &RateKey, mutations: u32) -> Result<(), Refusal> {
        let Some(n) = NonZeroU32::new(mutations) else {
            return Ok(());
        };
        match self.limiter.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Refusal::RetryAfter(
                not_until.wait_time_from(self.clock.now()),
            )),
            Err(_) => Err(Refusal::TooManyAtOnce {
                burst: self.limits.mutation_burst,
            }),
        }
    }

    /// Drops the buckets of clients that are back to a full burst: they would start afresh
    /// anyway.
    pub fn forget_quiet_clients(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// How many clients have a bucket right now.
    pub fn clients(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> RateKey {
        RateKey::Address(ClientAddress::new(text.parse().unwrap()))
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_others_are_untouched() {
        let limiter = MutationLimiter::new(RateLimits {
            mutations_per_minute: 6,
            mutation_burst: 3,
        })
        .unwrap();
        let noisy = address("203.0.113.7");
        for _ in 0..3 {
            assert_eq!(limiter.check(&noisy, 1), Ok(()));
        }
        let Err(refusal) = limiter.check(&noisy, 1) else {
            panic!("the fourth mutation in a row was let through");
        };
        // One every ten seconds.
        let secs = refusal.retry_after_secs().unwrap();
        assert!((1..=10).contains(&secs), "{refusal:?}");
        assert_eq!(limiter.check(&address("203.0.113.8"), 1), Ok(()));
        let crm = RateKey::of(
            &Principal::new("crm", Vec::new()),
            Some(ClientAddress::new("203.0.113.7".parse().unwrap())),
        );
        assert_eq!(limiter.check(&crm, 3), Ok(()));
        assert!(matches!(
            limiter.check(&address("203.0.113.9"), 4),
            Err(Refusal::TooManyAtOnce { burst: 3 })
        ));
    }

    #[test]
    fn zero_per_minute_turns_the_limit_off() {
        assert!(MutationLimiter::new(RateLimits::OFF).is_none());
    }
}
