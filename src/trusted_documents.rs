//! The trusted documents `conftools up --trusted-documents-only` has the gateway enforce. The
//! dashboard's build writes its operations beside the page (`trusted-documents.json`, see
//! web/codegen.ts), but the dashboard is not the gateway's only client under `up`: the demo
//! seeds and buys through it too. A manifest of the dashboard's documents alone would refuse
//! the demo, so `up` writes one holding both into the data directory at each start, from the
//! build it serves then; the build's own file stays exactly what the build made.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The manifest's name beside a built dashboard's `index.html`, and in the data directory.
pub const MANIFEST_FILE: &str = "trusted-documents.json";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "{} has no {MANIFEST_FILE}: the dashboard's build writes its trusted documents there \
         (`npm run build` in web/), and --trusted-documents-only enforces them",
        web_dir.display()
    )]
    Missing { web_dir: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not an object of id to document: {source}", path.display())]
    Format {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A document's id as the dashboard's build names it (GraphQL over HTTP's persisted
/// documents): `sha256:` and the hex SHA-256 of its exact text. A client may send it as
/// `documentId` instead of the text.
pub fn document_id(document: &str) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(document.as_bytes()))
    )
}

/// Writes to `out` the manifest of the dashboard built in `web_dir` with `extra` documents
/// added, in the same shape (an object of id to document); returns how many it holds.
pub fn write_with(web_dir: &Path, extra: &[&str], out: &Path) -> Result<usize, ManifestError> {
    let path = web_dir.join(MANIFEST_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(ManifestError::Missing {
                web_dir: web_dir.to_owned(),
            });
        }
        Err(source) => return Err(ManifestError::Read { path, source }),
    };
    // Sorted by id: the same inputs write the same file.
    let mut documents: BTreeMap<String, String> =
        serde_json::from_str(&text).map_err(|source| ManifestError::Format { path, source })?;
    for document in extra {
        documents.insert(document_id(document), (*document).to_owned());
    }
    let json = serde_json::to_string_pretty(&documents).expect("a map of strings serializes");
    std::fs::write(out, json).map_err(|source| ManifestError::Write {
        path: out.to_owned(),
        source,
    })?;
    Ok(documents.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An id and body from the dashboard's generated manifest: ids are made the same way, so
    /// a document both send is one entry.
    #[test]
    fn ids_match_the_dashboard_builds() {
        assert_eq!(
            document_id(
                "query Conferences { conferences(first: 100) { nodes { currency endsOn id name startsOn } } }"
            ),
            "sha256:cf492317e9e705bad7186a77d270af9f2361423ed22e841c1b2a5526032433e2"
        );
    }

    #[test]
    fn the_written_manifest_holds_the_builds_documents_and_the_extra_ones() {
        let web = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            web.path().join(MANIFEST_FILE),
            r#"{ "sha256:abc": "query A { a }" }"#,
        )
        .expect("manifest");
        let out = web.path().join("merged.json");
        let held = write_with(web.path(), &["query B { b }"], &out).expect("written");
        assert_eq!(held, 2);
        let merged: BTreeMap<String, String> =
            serde_json::from_str(&std::fs::read_to_string(&out).expect("read")).expect("JSON");
        assert_eq!(merged["sha256:abc"], "query A { a }");
        assert_eq!(merged[&document_id("query B { b }")], "query B { b }");

        let empty = tempfile::tempdir().expect("tempdir");
        let error = write_with(empty.path(), &[], &out).expect_err("no manifest");
        assert!(error.to_string().contains("npm run build"), "{error}");
    }
}
