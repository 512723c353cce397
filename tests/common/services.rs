//! Ticketing and the CRM running in the test process, wired as `conftools up` wires them: each
//! on its own database (temporary SQLite files, or fresh PostgreSQL databases with
//! `TEST_DATABASE_URL`), the CRM calling ticketing over HTTP, every service verifying tokens
//! with one shared secret. Shared by the end-to-end test crates that put the gateway in front.

use std::sync::Arc;
use std::time::Duration;

use platform::{InProcessBus, JwtKeys};
use testkit::{ServerTask, fresh_database_url};

const SECRET: &[u8] = b"end-to-end-test-secret";

pub fn keys() -> Arc<JwtKeys> {
    Arc::new(JwtKeys::from_secret(SECRET))
}

pub fn token(subject: &str, scopes: &[&str]) -> String {
    keys()
        .mint(subject, scopes, Duration::from_secs(3600))
        .expect("mint")
}

/// Everything, as the launcher's admin token has it.
pub fn admin() -> String {
    token(
        "admin",
        &[
            "tickets:admin",
            "events:read",
            "crm:admin",
            "crm:write",
            "crm:read",
        ],
    )
}

pub fn local() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

pub struct Services {
    pub ticketing: ServerTask,
    pub crm: ServerTask,
    /// The SQLite files' folders, removed when the services are dropped.
    _dirs: Vec<tempfile::TempDir>,
}

impl Services {
    pub async fn start() -> Self {
        let mut dirs = Vec::new();
        let (ticketing_db, dir) = fresh_database_url("ticketing").await;
        dirs.extend(dir);
        let (crm_db, dir) = fresh_database_url("crm").await;
        dirs.extend(dir);

        let service = ticketing::Ticketing::start(
            ticketing::Settings {
                database_url: ticketing_db,
                poll_interval: Duration::from_millis(200),
                // The policy matrices send hundreds of mutations a second as one client, and
                // every anonymous buyer reaches the services from the gateway's one address:
                // the per-client limits have their own tests (ticketing's and the CRM's
                // `hostile.rs`) and are off here.
                rate_limits: platform::rate_limit::RateLimits::OFF,
                purchase_limits: ticketing::domain::PurchaseLimits {
                    max_unpaid_seats_per_buyer: 0,
                    ..ticketing::domain::PurchaseLimits::default()
                },
                ..ticketing::Settings::default()
            },
            keys(),
            Arc::new(InProcessBus::default()),
        )
        .await
        .expect("ticketing starts");
        let ticketing = ServerTask::spawn(local(), |listener, shutdown| async move {
            let _ = service.serve(listener, shutdown).await;
        })
        .await;

        let service = crm::Crm::start(
            crm::Settings {
                database_url: crm_db,
                poll_interval: Duration::from_millis(200),
                ticketing_url: Some(ticketing.graphql_url()),
                ticketing_token: Some(token("crm", &["tickets:issue-complimentary"])),
                ticketing_timeout: Duration::from_secs(2),
                // The defaults wait seconds between passes; tests should not.
                allocation: crm::allocation::AllocationSettings {
                    retry_base: Duration::from_millis(50),
                    retry_max: Duration::from_millis(400),
                    poll_interval: Duration::from_millis(200),
                    ..crm::allocation::AllocationSettings::default()
                },
                rate_limits: platform::rate_limit::RateLimits::OFF,
                ..crm::Settings::default()
            },
            keys(),
            Arc::new(InProcessBus::default()),
        )
        .await
        .expect("the CRM starts");
        let crm = ServerTask::spawn(local(), |listener, shutdown| async move {
            let _ = service.serve(listener, shutdown).await;
        })
        .await;

        Services {
            ticketing,
            crm,
            _dirs: dirs,
        }
    }

    /// The gateway as the binary and `conftools up` run it, composing both services.
    pub fn gateway_config(&self) -> gateway::Config {
        use clap::Parser;
        gateway::Config::try_parse_from([
            "gateway".to_owned(),
            "--subgraph".to_owned(),
            format!(
                "{}={}",
                conftools::compose::TICKETING,
                self.ticketing.graphql_url()
            ),
            "--subgraph".to_owned(),
            format!("{}={}", conftools::compose::CRM, self.crm.graphql_url()),
            "--subgraph-timeout-ms".to_owned(),
            "3000".to_owned(),
            // As under `conftools up`: the gateway verifies tokens itself.
            "--jwt-secret".to_owned(),
            String::from_utf8_lossy(SECRET).into_owned(),
            // As the services in these tests: the suites send more mutations from one
            // address than a client may; the limit has tests of its own.
            "--mutation-rate-per-minute".to_owned(),
            "0".to_owned(),
        ])
        .expect("gateway configuration")
    }
}
