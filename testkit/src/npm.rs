//! Node packages for tests that drive real JavaScript clients (the GraphQL-over-HTTP audit,
//! Apollo Client, urql, graphql-sse): each lives in a folder with a committed
//! package-lock.json and is installed with `npm ci` when needed. Without node and npm such a
//! test fails, loudly.

use std::path::Path;
use std::process::Command;

/// `npm ci` in `dir`, unless the installed tree is at least as new as the lockfile (npm
/// writes the resolved tree to `node_modules/.package-lock.json`). Several test binaries may
/// install at once: npm's cache lock keeps them from corrupting it, and a second `npm ci`
/// over a finished one only repeats it.
pub fn ensure_installed(dir: &Path) {
    let modified = |p: std::path::PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let installed = modified(dir.join("node_modules/.package-lock.json"));
    let locked = modified(dir.join("package-lock.json"));
    if installed.is_some() && installed >= locked {
        return;
    }
    let output = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run npm ({e}); Node.js 20.19+ and npm are required"));
    assert!(
        output.status.success(),
        "npm ci in {} failed ({}):\n{}\n{}",
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
