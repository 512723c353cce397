//! Caches query plans by normalised operation, so repeated operations skip planning.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::normalize::NormalizedOperation;
use super::plan::{PlanError, QueryPlan};

pub struct PlanCache {
    plans: RwLock<HashMap<String, Arc<QueryPlan>>>,
    capacity: usize,
}

impl PlanCache {
    pub fn new(capacity: usize) -> Self {
        PlanCache {
            plans: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    pub fn get_or_plan(
        &self,
        operation: &NormalizedOperation,
        plan: impl FnOnce() -> Result<QueryPlan, PlanError>,
    ) -> Result<Arc<QueryPlan>, PlanError> {
        let key = operation.cache_key();
        // A poisoned lock only means another request panicked mid-insert; the map is still a
        // valid cache, so keep using it.
        if let Some(found) = self
            .plans
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(found.clone());
        }
        let planned = Arc::new(plan()?);
        if self.capacity > 0 {
            let mut plans = self.plans.write().unwrap_or_else(|e| e.into_inner());
            // Crude but bounded: operations are usually a small, stable set, so a full cache
            // means churn and starting over costs little.
            if plans.len() >= self.capacity {
                plans.clear();
            }
            plans.insert(key, planned.clone());
        }
        Ok(planned)
    }

    pub fn len(&self) -> usize {
        self.plans.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
