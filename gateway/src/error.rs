//! Errors that stop the gateway from starting. Errors that happen while answering a request are
//! GraphQL errors (see `response`), because a client must always get a GraphQL-shaped answer.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot read supergraph file {path}: {source}")]
    ReadSupergraph {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid supergraph: {0}")]
    InvalidSupergraph(String),
    #[error("no supergraph given: pass --supergraph FILE or --subgraph NAME=URL")]
    NoSupergraph,
    #[error("composing from subgraphs failed: {0}")]
    Composition(String),
    #[error("invalid CORS configuration: {0}")]
    Cors(String),
    #[error("invalid --propagate-header: {0}")]
    PropagatedHeader(String),
    #[error("cannot build the HTTP client for subgraphs: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error(transparent)]
    TrustedDocuments(#[from] crate::trusted_documents::ManifestError),
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
}
