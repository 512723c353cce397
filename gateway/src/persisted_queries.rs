//! Automatic persisted queries, as Apollo Client's persisted-queries link speaks them: a
//! request may carry `extensions.persistedQuery = { version: 1, sha256Hash }` and leave out
//! `query`. A known hash stands for its document; an unknown one is answered
//! `PERSISTED_QUERY_NOT_FOUND` (message `PersistedQueryNotFound`, HTTP 200 so that the link
//! retries with the document instead of giving persisted queries up), and the retry, carrying
//! both, is checked (`PERSISTED_QUERY_HASH_MISMATCH` when the hash is not the document's) and
//! remembered. Hash-only requests are short and the same for every client, so they also work
//! as GET requests a CDN can cache.
//!
//! The documents live in a bounded cache (`--persisted-query-cache-size`): the oldest entry
//! goes when it is full, and documents longer than the document cache keeps are not
//! remembered (a client can always send the document again). Only the hash of what was sent
//! is trusted, never a client's claim: a document is stored under its own SHA-256.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::pipeline::GraphQLRequest;
use crate::pipeline::document_cache::MAX_CACHED_DOCUMENT_BYTES;
use crate::response::GraphQLError;

/// Why a request's persisted query could not be used.
#[derive(Debug, Clone, PartialEq)]
pub enum PersistedQueryError {
    /// The hash is not known (yet): send the document with it.
    NotFound,
    /// Other problems: a wrong hash, a version other than 1, a malformed extension, or
    /// persisted queries turned off.
    Refused(GraphQLError),
}

impl PersistedQueryError {
    pub fn into_graphql_error(self) -> GraphQLError {
        match self {
            PersistedQueryError::NotFound => {
                GraphQLError::new("PersistedQueryNotFound").with_code("PERSISTED_QUERY_NOT_FOUND")
            }
            PersistedQueryError::Refused(error) => error,
        }
    }
}

pub struct PersistedQueries {
    /// `None`: turned off (`--persisted-query-cache-size 0`).
    cache: Option<Mutex<Documents>>,
}

#[derive(Default)]
struct Documents {
    by_hash: HashMap<[u8; 32], Arc<str>>,
    /// Insertion order, for evicting the oldest.
    order: VecDeque<[u8; 32]>,
    capacity: usize,
}

impl PersistedQueries {
    /// A cache of at most `capacity` documents; `0` turns persisted queries off.
    pub fn new(capacity: usize) -> Self {
        Self {
            cache: (capacity > 0).then(|| {
                Mutex::new(Documents {
                    capacity,
                    ..Documents::default()
                })
            }),
        }
    }

    /// Fills in `request.query` from a persisted hash, or checks and remembers the document
    /// sent with one. Requests without the extension pass untouched.
    pub fn resolve(&self, request: &mut GraphQLRequest) -> Result<(), PersistedQueryError> {
        let Some(extension) = request
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("persistedQuery"))
        else {
            return Ok(());
        };
        let Some(cache) = &self.cache else {
            return Err(refused(
                "PersistedQueryNotSupported",
                "PERSISTED_QUERY_NOT_SUPPORTED",
            ));
        };
        if extension.get("version").and_then(serde_json::Value::as_u64) != Some(1) {
            return Err(refused(
                "Unsupported persisted query version: only version 1 is supported.",
                "PERSISTED_QUERY_VERSION_NOT_SUPPORTED",
            ));
        }
        let hash = extension
            .get("sha256Hash")
            .and_then(serde_json::Value::as_str)
            .and_then(parse_hash)
            .ok_or_else(|| {
                refused(
                    "`persistedQuery.sha256Hash` must be 64 hexadecimal digits.",
                    "BAD_REQUEST",
                )
            })?;
        // A poisoned lock only means a panic mid-update of a plain map: still usable.
        let mut documents = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &request.query {
            None => {
                let document = documents
                    .by_hash
                    .get(&hash)
                    .ok_or(PersistedQueryError::NotFound)?;
                request.query = Some(document.to_string());
                Ok(())
            }
            Some(query) => {
                let actual: [u8; 32] = Sha256::digest(query.as_bytes()).into();
                if actual != hash {
                    return Err(refused(
                        "The persisted query's sha256Hash is not the hash of the query sent.",
                        "PERSISTED_QUERY_HASH_MISMATCH",
                    ));
                }
                if query.len() <= MAX_CACHED_DOCUMENT_BYTES {
                    documents.remember(hash, query);
                }
                Ok(())
            }
        }
    }

    /// Documents remembered (observability, tests).
    pub fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, |cache| {
            cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .by_hash
                .len()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Documents {
    fn remember(&mut self, hash: [u8; 32], query: &str) {
        if self.by_hash.contains_key(&hash) {
            return;
        }
        while self.by_hash.len() >= self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.by_hash.remove(&oldest);
                }
                None => break,
            }
        }
        self.by_hash.insert(hash, Arc::from(query));
        self.order.push_back(hash);
    }
}

fn refused(message: &str, code: &str) -> PersistedQueryError {
    PersistedQueryError::Refused(GraphQLError::new(message).with_code(code))
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(query: Option<&str>, hash: &str) -> GraphQLRequest {
        GraphQLRequest {
            query: query.map(str::to_owned),
            extensions: Some(json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })),
            ..GraphQLRequest::default()
        }
    }

    fn hash_of(query: &str) -> String {
        hex::encode(Sha256::digest(query.as_bytes()))
    }

    #[test]
    fn a_hash_is_unknown_until_its_document_is_sent_with_it() {
        let persisted = PersistedQueries::new(10);
        let query = "{ topProducts { upc } }";
        let hash = hash_of(query);
        assert_eq!(
            persisted.resolve(&mut request(None, &hash)),
            Err(PersistedQueryError::NotFound)
        );
        assert_eq!(persisted.resolve(&mut request(Some(query), &hash)), Ok(()));
        let mut hit = request(None, &hash);
        assert_eq!(persisted.resolve(&mut hit), Ok(()));
        assert_eq!(hit.query.as_deref(), Some(query));
    }

    #[test]
    fn a_wrong_hash_is_refused_and_nothing_is_stored() {
        let persisted = PersistedQueries::new(10);
        let wrong = hash_of("{ something else }");
        let Err(PersistedQueryError::Refused(error)) =
            persisted.resolve(&mut request(Some("{ a }"), &wrong))
        else {
            panic!("a mismatching hash was accepted");
        };
        assert_eq!(
            serde_json::to_value(&error).expect("json")["extensions"]["code"],
            "PERSISTED_QUERY_HASH_MISMATCH"
        );
        assert!(persisted.is_empty());
    }

    #[test]
    fn the_cache_keeps_the_newest_documents() {
        let persisted = PersistedQueries::new(2);
        for query in ["{ a }", "{ b }", "{ c }"] {
            assert_eq!(
                persisted.resolve(&mut request(Some(query), &hash_of(query))),
                Ok(())
            );
        }
        assert_eq!(persisted.len(), 2);
        assert_eq!(
            persisted.resolve(&mut request(None, &hash_of("{ a }"))),
            Err(PersistedQueryError::NotFound)
        );
        assert_eq!(
            persisted.resolve(&mut request(None, &hash_of("{ c }"))),
            Ok(())
        );
    }

    #[test]
    fn turned_off_and_malformed_extensions_are_refused_with_a_code() {
        let code = |persisted: &PersistedQueries, request: &mut GraphQLRequest| {
            match persisted
            .resolve(request)
        {
            Err(error) => serde_json::to_value(error.into_graphql_error()).expect("json")
                ["extensions"]["code"]
                .clone(),
            Ok(()) => json!(null),
        }
        };
        let off = PersistedQueries::new(0);
        assert_eq!(
            code(&off, &mut request(None, &hash_of("{ a }"))),
            "PERSISTED_QUERY_NOT_SUPPORTED"
        );
        let on = PersistedQueries::new(1);
        assert_eq!(code(&on, &mut request(None, "abc")), "BAD_REQUEST");
        let mut version_2 = request(None, &hash_of("{ a }"));
        version_2.extensions =
            Some(json!({ "persistedQuery": { "version": 2, "sha256Hash": hash_of("{ a }") } }));
        assert_eq!(
            code(&on, &mut version_2),
            "PERSISTED_QUERY_VERSION_NOT_SUPPORTED"
        );
    }
}
