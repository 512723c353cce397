//! The GraphQL-over-HTTP audit of the npm package `graphql-http` (`serverAudits`), run
//! against any of our servers: every MUST and every SHOULD has to pass; MAY notices are
//! printed. The Node side lives in `testkit/http-audit/` (pinned by its package-lock.json);
//! it is installed with `npm ci` when needed, and the audit fails, loudly, without node and
//! npm.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug)]
struct AuditResult {
    id: String,
    name: String,
    status: String,
    reason: Option<String>,
}

fn audit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("http-audit")
}

fn run(command: &mut Command, what: &str) -> std::process::Output {
    let output = command.output().unwrap_or_else(|e| {
        panic!("{what}: cannot run it ({e}); node and npm are required for this test")
    });
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs every audit against `url` (a GraphQL endpoint) and panics, listing them, when any
/// MUST or SHOULD fails. Blocking: call it from `spawn_blocking` while the server runs.
pub fn assert_passes(url: &str) {
    let dir = audit_dir();
    crate::npm::ensure_installed(&dir);
    let output = run(
        Command::new("node")
            .arg("audit.mjs")
            .arg(url)
            .current_dir(&dir),
        "node audit.mjs",
    );
    let results: Vec<AuditResult> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).expect("one JSON result per line");
            let text = |key: &str| value[key].as_str().map(str::to_owned);
            AuditResult {
                id: text("id").unwrap_or_default(),
                name: text("name").unwrap_or_default(),
                status: text("status").unwrap_or_default(),
                reason: text("reason"),
            }
        })
        .collect();
    // graphql-http 1.23 has about a hundred audits; a short list means the run broke.
    assert!(results.len() > 50, "only {} audits ran", results.len());
    let musts = results
        .iter()
        .filter(|r| r.name.starts_with("MUST"))
        .count();
    assert!(musts > 10, "only {musts} MUST audits ran");

    for notice in results.iter().filter(|r| r.status == "notice") {
        eprintln!(
            "notice {} {}: {}",
            notice.id,
            notice.name,
            notice.reason.as_deref().unwrap_or("")
        );
    }
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.status == "error" || r.status == "warn")
        .map(|r| {
            format!(
                "{} [{}] {}: {}",
                r.id,
                r.status,
                r.name,
                r.reason.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "graphql-http audits failed at {url}:\n{}",
        failed.join("\n")
    );
    eprintln!(
        "graphql-http audit of {url}: {} audits, {musts} MUST, all MUST and SHOULD passed",
        results.len()
    );
}
