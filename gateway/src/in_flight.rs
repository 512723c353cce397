//! Sharing of identical work that is in flight at the same moment.
//!
//! When many clients load the same page at once, their requests are identical; so are the
//! subgraph requests planned from them. The first caller (the leader) starts the work, every
//! identical caller that arrives before it ends awaits the same answer, and the entry goes
//! away when the leader is done: nothing outlives the request, so this is not a cache and
//! never serves stale data.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

pub struct InFlight<K, V> {
    requests: Mutex<HashMap<Arc<K>, Shared<BoxFuture<'static, V>>>>,
}

impl<K, V> Default for InFlight<K, V> {
    fn default() -> Self {
        InFlight {
            requests: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, V> std::fmt::Debug for InFlight<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight").finish_non_exhaustive()
    }
}

impl<K, V> InFlight<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The answer of identical work already in flight, if there is any.
    pub fn join(&self, key: &K) -> Option<impl Future<Output = V> + use<K, V>> {
        let requests = self.requests.lock().ok()?;
        requests.get(key).cloned()
    }

    /// Joins identical work in flight, or starts it with `start` and shares it.
    pub async fn run(&self, key: K, start: impl FnOnce() -> BoxFuture<'static, V>) -> V {
        let key = Arc::new(key);
        let (answer, _leader) = {
            let Ok(mut requests) = self.requests.lock() else {
                // A poisoned table only loses sharing, never the answer.
                return start().await;
            };
            match requests.get(&key) {
                Some(answer) => (answer.clone(), None),
                None => {
                    let answer = start().shared();
                    requests.insert(Arc::clone(&key), answer.clone());
                    let leader = Leader {
                        in_flight: self,
                        key: Arc::clone(&key),
                    };
                    (answer, Some(leader))
                }
            }
        };
        answer.await
    }
}

/// Removes the leader's entry when its call ends, also when it is dropped midway (its client
/// went away): followers keep their handle on the work; later callers start afresh.
struct Leader<'a, K: Hash + Eq, V> {
    in_flight: &'a InFlight<K, V>,
    key: Arc<K>,
}

impl<K: Hash + Eq, V> Drop for Leader<'_, K, V> {
    fn drop(&mut self) {
        if let Ok(mut requests) = self.in_flight.requests.lock() {
            requests.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn identical_calls_in_flight_run_once_and_later_ones_run_again() {
        let in_flight: Arc<InFlight<&'static str, usize>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let call = |in_flight: Arc<InFlight<&'static str, usize>>, runs: Arc<AtomicUsize>| async move {
            in_flight
                .run("same", move || {
                    async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        runs.fetch_add(1, Ordering::SeqCst) + 1
                    }
                    .boxed()
                })
                .await
        };
        let answers = futures_util::future::join_all(
            (0..10).map(|_| call(Arc::clone(&in_flight), Arc::clone(&runs))),
        )
        .await;
        assert!(answers.iter().all(|&a| a == 1), "{answers:?}");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(
            in_flight.join(&"same").is_none(),
            "entry removed after the run"
        );
        assert_eq!(call(Arc::clone(&in_flight), Arc::clone(&runs)).await, 2);
    }

    #[tokio::test]
    async fn a_dropped_leader_leaves_followers_their_answer() {
        let in_flight: Arc<InFlight<u8, &'static str>> = Arc::default();
        let leader = {
            let in_flight = Arc::clone(&in_flight);
            tokio::spawn(async move {
                in_flight
                    .run(1, || {
                        async {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            "answer"
                        }
                        .boxed()
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let follower = in_flight.join(&1).expect("in flight");
        leader.abort();
        assert_eq!(follower.await, "answer");
        assert!(in_flight.join(&1).is_none());
    }
}
