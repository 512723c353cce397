//! Caches parsed and validated operations by their exact text. Parsing and validating is the
//! largest per-request cost before the (already cached) plan, and clients send the same few
//! documents over and over; a hit skips both. Only valid documents are kept: invalid ones are
//! rare in production and caching them would let a client fill the cache with junk.

use std::sync::Arc;

use apollo_compiler::ExecutableDocument;
use apollo_compiler::validation::Valid;
use moka::sync::Cache;

use crate::response::GraphQLError;

/// Longer documents are parsed every time: the cache holds at most `capacity` of them, and
/// with request bodies of megabytes, caching any length would let a client pin gigabytes.
pub const MAX_CACHED_DOCUMENT_BYTES: usize = 64 * 1024;

/// Bounded by count and kept by moka's TinyLFU policy, like the plan cache: a client sending
/// a stream of distinct valid documents cannot evict the ones every frontend sends.
pub struct DocumentCache {
    /// `None` when the cache is off (capacity 0).
    documents: Option<Cache<String, Arc<Valid<ExecutableDocument>>>>,
}

impl DocumentCache {
    pub fn new(capacity: usize) -> Self {
        DocumentCache {
            documents: (capacity > 0).then(|| Cache::new(capacity as u64)),
        }
    }

    pub fn get_or_parse(
        &self,
        query: &str,
        parse: impl FnOnce() -> Result<Valid<ExecutableDocument>, Vec<GraphQLError>>,
    ) -> Result<Arc<Valid<ExecutableDocument>>, Vec<GraphQLError>> {
        if let Some(found) = self.documents.as_ref().and_then(|d| d.get(query)) {
            return Ok(found);
        }
        let document = Arc::new(parse()?);
        if let Some(documents) = &self.documents
            && query.len() <= MAX_CACHED_DOCUMENT_BYTES
        {
            documents.insert(query.to_string(), Arc::clone(&document));
        }
        Ok(document)
    }

    /// Documents held now (after the cache's pending evictions are applied).
    pub fn len(&self) -> usize {
        self.documents.as_ref().map_or(0, |documents| {
            documents.run_pending_tasks();
            documents.entry_count() as usize
        })
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
    fn a_flood_of_one_off_documents_neither_grows_the_cache_nor_evicts_a_frequent_one() {
        let schema = schema();
        let cache = DocumentCache::new(4);
        let mut parses_of_frequent = 0;
        for round in 0..200 {
            let frequent = cache.get_or_parse("{ a }", || {
                parses_of_frequent += 1;
                crate::pipeline::validate::parse_and_validate(&schema, "{ a }")
            });
            assert!(frequent.is_ok());
            let one_off = format!("{{ x{round}: a }}");
            let parsed = cache.get_or_parse(&one_off, || {
                crate::pipeline::validate::parse_and_validate(&schema, &one_off)
            });
            assert!(parsed.is_ok());
        }
        assert!(cache.len() <= 4, "{} documents held", cache.len());
        assert!(
            parses_of_frequent <= 2,
            "the frequent document was parsed {parses_of_frequent} times"
        );
    }
}
