//! The dashboard (`web/`) in a real browser against a real system: ticketing and the CRM on
//! ephemeral ports with their own databases, the gateway in front serving the built dashboard,
//! and the demo seeded as `conftools up --demo` seeds it. The browser side is a playwright-core
//! script (`web/tests/dashboard.mjs`) driving Debian's Chromium; it asks this test, on its
//! stdout, to stop and restart the gateway, and gets "ok" on its stdin when done. Screenshots of
//! every page land in `target/screenshots/`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::System;

const CHROMIUM: &str = "/usr/bin/chromium";

fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `target/tmp`: the screenshots go beside it, as build artifacts.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_sales_sponsors_and_resumes_after_a_gateway_restart() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "no Chromium at {CHROMIUM}: the browser tests need Debian's chromium; install it with \
         `apt-get install -y chromium`"
    );
    let web = conftools::web::source_dir();
    let dist = tokio::task::spawn_blocking({
        let web = web.clone();
        move || conftools::web::ensure_built(&web)
    })
    .await
    .expect("build task")
    .unwrap_or_else(|e| panic!("the dashboard does not build: {e}"));

    let mut system = System::start(dist).await;
    let seeded = conftools::demo::seed(&conftools::demo::Gateway::new(
        system.gateway_url(),
        support::admin(),
    ))
    .await
    .expect("the demo seeds through the gateway");
    assert!(seeded.created);

    let mut node = Command::new("node")
        .arg("tests/dashboard.mjs")
        .current_dir(&web)
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
        panic!("the browser script did not finish in 4 minutes");
    }
    let status = node.wait().expect("node exits");
    assert!(
        status.success() && passed,
        "the browser script failed ({status}); its output is above"
    );
}
