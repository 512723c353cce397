//! The GraphQL-over-HTTP audit of the npm package `graphql-http` (`serverAudits`), run against a
//! real gateway in front of real subgraphs. Every MUST and every SHOULD has to pass; MAY notices
//! are printed. The Node side lives in `tests/http-audit/` (pinned by its package-lock.json);
//! this test installs it with `npm ci` when needed and fails, loudly, without node and npm.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct AuditResult {
    id: String,
    name: String,
    status: String,
    reason: Option<String>,
}

fn audit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/http-audit")
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

/// Installs the pinned packages unless the installed tree already matches the lockfile.
fn install(dir: &Path) {
    let installed = dir.join("node_modules/.package-lock.json");
    let lock = dir.join("package-lock.json");
    let current = match (std::fs::read(&installed), std::fs::read(&lock)) {
        // npm writes the resolved tree there; an older lockfile means an older install.
        (Ok(_), Ok(_)) => {
            let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
            modified(&installed) >= modified(&lock)
        }
        _ => false,
    };
    if !current {
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(dir),
            "npm ci",
        );
    }
}

#[tokio::test]
async fn graphql_over_http_audit_passes() {
    let dir = audit_dir();
    install(&dir);
    let stack = support::start().await;
    let url = stack.url();
    // The audit is a blocking child process; keep the runtime free to serve it.
    let output = tokio::task::spawn_blocking(move || {
        run(
            Command::new("node")
                .arg("audit.mjs")
                .arg(url)
                .current_dir(dir),
            "node audit.mjs",
        )
    })
    .await
    .expect("audit task");

    let results: Vec<AuditResult> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON result per line"))
        .collect();
    // graphql-http 1.23 has about a hundred audits; a short list means the run broke.
    assert!(results.len() > 50, "only {} audits ran", results.len());
    let musts = results
        .iter()
        .filter(|r| r.name.starts_with("MUST"))
        .count();
    assert!(musts > 10, "only {musts} MUST audits ran");

    let failed: Vec<&AuditResult> = results
        .iter()
        .filter(|r| r.status == "error" || r.status == "warn")
        .collect();
    for notice in results.iter().filter(|r| r.status == "notice") {
        eprintln!(
            "notice {} {}: {}",
            notice.id,
            notice.name,
            notice.reason.as_deref().unwrap_or("")
        );
    }
    assert!(
        failed.is_empty(),
        "graphql-http audits failed:\n{}",
        failed
            .iter()
            .map(|r| format!(
                "{} [{}] {}: {}",
                r.id,
                r.status,
                r.name,
                r.reason.as_deref().unwrap_or("")
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "graphql-http audit: {} audits, {musts} MUST, all MUST and SHOULD passed",
        results.len()
    );
}
