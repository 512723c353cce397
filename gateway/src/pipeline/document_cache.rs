//! Caches parsed and validated operations by their exact text. Parsing and validating is the
//! largest per-request cost before the (already cached) plan, and clients send the same few
//! documents over and over; a hit skips both. Only valid documents are kept: invalid ones are
//! rare in production and caching them would let a client fill the cache with junk.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use apollo_compiler::ExecutableDocument;
use apollo_compiler::validation::Valid;

use crate::response::GraphQLError;

/// Longer documents are parsed every time: the cache holds at most `capacity` of them, and
/// with request bodies of megabytes, caching any length would let a client pin gigabytes.
pub const MAX_CACHED_DOCUMENT_BYTES: usize = 64 * 1024;

pub struct DocumentCache {
    documents: RwLock<HashMap<String, Arc<Valid<ExecutableDocument>>>>,
    capacity: usize,
}

impl DocumentCache {
    pub fn new(capacity: usize) -> Self {
        DocumentCache {
            documents: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    pub fn get_or_parse(
        &self,
        query: &str,
        parse: impl FnOnce() -> Result<Valid<ExecutableDocument>, Vec<GraphQLError>>,
    ) -> Result<Arc<Valid<ExecutableDocument>>, Vec<GraphQLError>> {
        // A poisoned lock only means another request panicked mid-insert; the map is still a
        // valid cache, so keep using it.
        if let Some(found) = self
            .documents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(query)
        {
            return Ok(found.clone());
        }
        let document = Arc::new(parse()?);
        if self.capacity > 0 && query.len() <= MAX_CACHED_DOCUMENT_BYTES {
            let mut documents = self.documents.write().unwrap_or_else(|e| e.into_inner());
            // Same policy as the plan cache: a full cache means churn, and starting over is
            // cheap next to tracking recency on every hit.
            if documents.len() >= self.capacity {
                documents.clear();
            }
            documents.insert(query.to_string(), document.clone());
        }
        Ok(document)
    }

    pub fn len(&self) -> usize {
        self.documents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apollo_compiler::Schema;

    fn schema() -> Valid<Schema> {
        Schema::parse_and_validate("type Query { a: Int }", "schema.graphql").expect("valid schema")
    }

    #[test]
    fn valid_documents_are_parsed_once() {
        let schema = schema();
        let cache = DocumentCache::new(8);
        let mut parses = 0;
        for _ in 0..3 {
            let document = cache.get_or_parse("{ a }", || {
                parses += 1;
                crate::pipeline::validate::parse_and_validate(&schema, "{ a }")
            });
            assert!(document.is_ok());
        }
        assert_eq!(parses, 1);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn invalid_documents_are_not_kept() {
        let schema = schema();
        let cache = DocumentCache::new(8);
        let result = cache.get_or_parse("{ b }", || {
            crate::pipeline::validate::parse_and_validate(&schema, "{ b }")
        });
        assert!(result.is_err());
        assert!(cache.is_empty());
    }

    #[test]
    fn long_documents_are_not_kept() {
        let schema = schema();
        let cache = DocumentCache::new(8);
        let query = format!("{{ a }}{}", " ".repeat(MAX_CACHED_DOCUMENT_BYTES));
        let parsed = cache.get_or_parse(&query, || {
            crate::pipeline::validate::parse_and_validate(&schema, &query)
        });
        assert!(parsed.is_ok());
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_cache_starts_over() {
        let schema = schema();
        let cache = DocumentCache::new(2);
        for query in ["{ a }", "{ x: a }", "{ y: a }"] {
            let parsed = cache.get_or_parse(query, || {
                crate::pipeline::validate::parse_and_validate(&schema, query)
            });
            assert!(parsed.is_ok());
        }
        assert_eq!(cache.len(), 1);
    }
}
