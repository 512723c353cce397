//! Trusted documents (a safelist): the operations a frontend was built with, loaded at start
//! from a manifest its build emits. Clients may then send a document's id instead of its
//! text (`documentId`, or the `persistedQuery` extension's `sha256Hash`), and with
//! enforcement on (`--trusted-documents-only`) the gateway runs nothing else: an ad-hoc
//! operation, introspection included, is refused with `PERSISTED_QUERY_NOT_IN_LIST`. A
//! public API that serves only its own frontends thereby shrinks to exactly what they ask.
//!
//! Manifests in the two shapes tools produce are read: Apollo's persisted query manifest
//! (`{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id",
//! "body", …}]}`) and a flat object of id to document (GraphQL Code Generator's client
//! preset `persistedDocuments`, Relay, Hive's app deployments export).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::pipeline::GraphQLRequest;
use crate::response::GraphQLError;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read the trusted documents manifest {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the trusted documents manifest {path} is neither an Apollo persisted query manifest nor an object of id to document: {source}"
    )]
    Format {
        path: String,
        source: serde_json::Error,
    },
}

#[derive(Default)]
pub struct TrustedDocuments {
    by_id: HashMap<String, Arc<str>>,
    bodies: HashSet<Arc<str>>,
    /// Refuse every operation not in the manifest.
    enforced: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Manifest {
    Apollo { operations: Vec<ManifestOperation> },
    Flat(HashMap<String, String>),
}

#[derive(Deserialize)]
struct ManifestOperation {
    id: String,
    body: String,
}

impl TrustedDocuments {
    /// No manifest: every document is allowed, no id is known.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn load(path: &Path, enforced: bool) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|source| ManifestError::Format {
                path: path.display().to_string(),
                source,
            })?;
        let pairs: Vec<(String, String)> = match manifest {
            Manifest::Apollo { operations } => operations
                .into_iter()
                .map(|operation| (operation.id, operation.body))
                .collect(),
            Manifest::Flat(map) => map.into_iter().collect(),
        };
        let mut documents = Self {
            enforced,
            ..Self::default()
        };
        for (id, body) in pairs {
            let body: Arc<str> = Arc::from(body);
            documents.bodies.insert(Arc::clone(&body));
            // Ids may carry the hash algorithm as a prefix (`sha256:…`): known both ways.
            if let Some((_, bare)) = id.split_once(':') {
                documents.by_id.insert(bare.to_owned(), Arc::clone(&body));
            }
            documents.by_id.insert(id, body);
        }
        Ok(documents)
    }

    /// Distinct trusted documents.
    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }

    /// Fills in the document of a request that names a trusted one by id and sends no text.
    /// Returns whether it did.
    pub fn resolve(&self, request: &mut GraphQLRequest) -> bool {
        if request.query.is_some() || self.by_id.is_empty() {
            return false;
        }
        let hash = request
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("persistedQuery"))
            .and_then(|persisted| persisted.get("sha256Hash"))
            .and_then(serde_json::Value::as_str);
        let Some(id) = request.document_id.as_deref().or(hash) else {
            return false;
        };
        let bare = id.split_once(':').map_or(id, |(_, hash)| hash);
        let Some(body) = self.by_id.get(id).or_else(|| self.by_id.get(bare)) else {
            return false;
        };
        request.query = Some(body.to_string());
        true
    }

    /// With enforcement on, refuses a request whose document is not trusted.
    pub fn check(&self, request: &GraphQLRequest) -> Result<(), GraphQLError> {
        if !self.enforced {
            return Ok(());
        }
        match request.query.as_deref() {
            Some(query) if self.bodies.contains(query) => Ok(()),
            _ => Err(GraphQLError::new(
                "This operation is not one of the gateway's trusted documents: send a document \
                 the frontend was built with, or its id.",
            )
            .with_code("PERSISTED_QUERY_NOT_IN_LIST")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(contents: serde_json::Value) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), contents.to_string()).expect("write");
        file
    }

    #[test]
    fn both_manifest_shapes_load_and_ids_resolve() {
        let apollo = manifest(json!({
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [{ "id": "abc", "name": "Q", "type": "query", "body": "query Q { a }" }]
        }));
        let flat = manifest(json!({ "sha256:abc": "query Q { a }" }));
        for file in [apollo, flat] {
            let documents = TrustedDocuments::load(file.path(), true).expect("loads");
            assert_eq!(documents.len(), 1);
            let mut request = GraphQLRequest {
                document_id: Some("abc".to_owned()),
                ..GraphQLRequest::default()
            };
            assert!(documents.resolve(&mut request));
            assert_eq!(request.query.as_deref(), Some("query Q { a }"));
            let mut prefixed = GraphQLRequest {
                document_id: Some("sha256:abc".to_owned()),
                ..GraphQLRequest::default()
            };
            assert!(documents.resolve(&mut prefixed));
        }
    }

    #[test]
    fn enforced_only_trusted_bodies_pass() {
        let file = manifest(json!({ "abc": "query Q { a }" }));
        let documents = TrustedDocuments::load(file.path(), true).expect("loads");
        let trusted = GraphQLRequest {
            query: Some("query Q { a }".to_owned()),
            ..GraphQLRequest::default()
        };
        assert!(documents.check(&trusted).is_ok());
        let ad_hoc = GraphQLRequest {
            query: Some("{ __schema { types { name } } }".to_owned()),
            ..GraphQLRequest::default()
        };
        let error = documents.check(&ad_hoc).expect_err("refused");
        assert_eq!(
            serde_json::to_value(&error).expect("json")["extensions"]["code"],
            "PERSISTED_QUERY_NOT_IN_LIST"
        );
        let mut by_hash = GraphQLRequest {
            extensions: Some(json!({ "persistedQuery": { "version": 1, "sha256Hash": "abc" } })),
            ..GraphQLRequest::default()
        };
        assert!(documents.resolve(&mut by_hash));
        assert!(documents.check(&by_hash).is_ok());
    }
}
