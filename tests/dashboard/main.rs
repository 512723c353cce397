//! The dashboard (`web/`) in a real browser against a real system: ticketing and the CRM on
//! ephemeral ports with their own databases, the gateway in front serving the built dashboard,
//! and the demo seeded as `conftools up --demo` seeds it. The browser side is a playwright-core
//! script (`web/tests/dashboard.mjs`) driving Debian's Chromium; it asks this test, on its
//! stdout, to stop and restart the gateway, and gets "ok" on its stdin when done. Screenshots of
//! every page land in `target/screenshots/`. A second script (`web/tests/trusted-documents.mjs`)
//! runs the dashboard against a gateway that enforces the manifest its build wrote, and a third
//! (`web/tests/graphiql.mjs`) opens the gateway's GraphiQL with every other host blocked.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::System;

const CHROMIUM: &str = "/usr/bin/chromium";

fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `target/tmp`: the screenshots go beside it, as build artifacts.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("screenshots")
}

/// One browser test at a time: both would build `web/` at once, and two Chromiums on a small
/// machine make the latency checks measure the machine.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The built dashboard (`web/dist`), built first if it is stale.
async fn built_dashboard() -> PathBuf {
    assert!(
        Path::new(CHROMIUM).exists(),
        "no Chromium at {CHROMIUM}: the browser tests need Debian's chromium; install it with \
         `apt-get install -y chromium`"
    );
    let web = conftools::web::source_dir();
    tokio::task::spawn_blocking(move || conftools::web::ensure_built(&web))
        .await
        .expect("build task")
        .unwrap_or_else(|e| panic!("the dashboard does not build: {e}"))
}

async fn seed_demo(system: &System) {
    let seeded = conftools::demo::seed(&conftools::demo::Gateway::new(
        system.gateway_url(),
        support::admin(),
    ))
    .await
    .expect("the demo seeds through the gateway");
    assert!(seeded.created);
}

/// Runs the browser script `web/<script>` against `system` until it prints `result ok`,
/// stopping and starting the gateway when it asks (`control stop-gateway` on its stdout,
/// answered `ok` on its stdin).
async fn run_browser_script(script: &str, system: &mut System) {
    let mut node = Command::new("node")
        .arg(script)
        .current_dir(conftools::web::source_dir())
        .env("DASHBOARD_URL", system.origin())
        .env("ADMIN_TOKEN", support::admin())
        .env("TICKETING_URL", system.services.ticketing.graphql_url())
        .env("SCREENSHOT_DIR", screenshot_dir())
        .env("CHROMIUM", CHROMIUM)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node ({e}); Node.js 20.19+ is required"));
    let mut stdin = node.stdin.take().expect("stdin");
    let stdout = node.stdout.take().expect("stdout");
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut passed = false;
    let run = async {
        while let Some(line) = lines.recv().await {
            match line.trim() {
                "control stop-gateway" => system.stop_gateway().await,
                "control start-gateway" => system.start_gateway().await,
                "result ok" => {
                    passed = true;
                    break;
                }
                other => {
                    eprintln!("{other}");
                    continue;
                }
            }
            writeln!(stdin, "ok").expect("answer the browser script");
        }
    };
    if tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .is_err()
    {
        let _ = node.kill();
        panic!("{script} did not finish in 4 minutes");
    }
    let status = node.wait().expect("node exits");
    assert!(
        status.success() && passed,
        "{script} failed ({status}); its output is above"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_sales_sponsors_and_resumes_after_a_gateway_restart() {
    let _browser = BROWSER.lock().await;
    let dist = built_dashboard().await;
    let mut system = System::start(dist).await;
    seed_demo(&system).await;
    run_browser_script("tests/dashboard.mjs", &mut system).await;
}

/// GraphiQL as the gateway serves it at `/graphql` from the dashboard's build, in a browser that
/// can reach nothing but the gateway (as on a machine without internet): it renders without
/// requesting anything elsewhere, its docs explorer shows the schema, and a query runs with the
/// token typed into its header editor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_works_with_only_the_gateway_reachable() {
    let _browser = BROWSER.lock().await;
    let dist = built_dashboard().await;
    let mut system = System::start(dist).await;
    seed_demo(&system).await;
    run_browser_script("tests/graphiql.mjs", &mut system).await;
}

/// `conftools up --trusted-documents-only` as the launcher wires it: the gateway enforces the
/// manifest the dashboard's build wrote, with the demo's operations added. The dashboard works
/// (the browser script also checks that every document it sent is byte for byte one of the
/// manifest's), and anything else is refused with `PERSISTED_QUERY_NOT_IN_LIST`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_trusted_documents_enforced_the_dashboard_works_and_ad_hoc_queries_are_refused() {
    let _browser = BROWSER.lock().await;
    let dist = built_dashboard().await;
    let manifest_dir = tempfile::tempdir().expect("tempdir");
    let manifest = manifest_dir
        .path()
        .join(conftools::trusted_documents::MANIFEST_FILE);
    conftools::trusted_documents::write_with(&dist, conftools::demo::DOCUMENTS, &manifest)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut system = System::start_with(dist, |config| {
        config.trusted_documents = Some(manifest.clone());
        config.trusted_documents_only = true;
    })
    .await;
    // The demo's own documents are trusted too, or seeding would be refused here.
    seed_demo(&system).await;

    let http = reqwest::Client::new();
    let post = |body: Value| {
        let request = http
            .post(system.gateway_url())
            .bearer_auth(support::admin())
            .json(&body);
        async move {
            request
                .send()
                .await
                .expect("gateway request")
                .json::<Value>()
                .await
                .expect("JSON body")
        }
    };
    for ad_hoc in [
        "{ conferences(first: 1) { nodes { id } } }",
        "{ __schema { queryType { name } } }",
    ] {
        let refused = post(json!({ "query": ad_hoc })).await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_IN_LIST",
            "{refused:#}"
        );
        assert!(refused.get("data").is_none(), "{refused:#}");
    }
    // The demo's documents run as the demo sends them.
    let demo = conftools::demo::DOCUMENTS
        .iter()
        .find(|document| document.starts_with("query Levels"))
        .expect("the demo reads the sponsorship levels");
    let levels = post(json!({ "query": demo })).await;
    assert!(levels["data"]["sponsorshipLevels"].is_array(), "{levels:#}");

    run_browser_script("tests/trusted-documents.mjs", &mut system).await;
}
