//! Caches query plans by normalised operation, so repeated operations skip planning.
//!
//! Bounded by count and kept by moka's TinyLFU policy: an operation enters a full cache only
//! if it is asked for more often than the one it would evict, so a flood of one-off
//! operations cannot push out the ones clients send all day.

use std::sync::Arc;

use moka::sync::Cache;

use super::normalize::NormalizedOperation;
use super::plan::{PlanError, QueryPlan};

pub struct PlanCache {
    /// `None` when the cache is off (capacity 0).
    plans: Option<Cache<String, Arc<QueryPlan>>>,
}

impl PlanCache {
    pub fn new(capacity: usize) -> Self {
        PlanCache {
            plans: (capacity > 0).then(|| Cache::new(capacity as u64)),
        }
    }

    pub fn get_or_plan(
        &self,
        operation: &NormalizedOperation,
        plan: impl FnOnce() -> Result<QueryPlan, PlanError>,
    ) -> Result<Arc<QueryPlan>, PlanError> {
        let Some(plans) = &self.plans else {
            return plan().map(Arc::new);
        };
        let key = operation.cache_key();
        if let Some(found) = plans.get(&key) {
            return Ok(found);
        }
        // Two requests missing at once may both plan; the second insert wins, and both plans
        // are the same.
        let planned = Arc::new(plan()?);
        plans.insert(key, Arc::clone(&planned));
        Ok(planned)
    }

    /// Plans held now (after the cache's pending evictions are applied).
    pub fn len(&self) -> usize {
        self.plans.as_ref().map_or(0, |plans| {
            plans.run_pending_tasks();
            plans.entry_count() as usize
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
