use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use platform::JwtKeys;
use ticketing::config::Config;
use ticketing::{Ticketing, api};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::memory::return_free_memory_to_the_system();
    let config = Config::parse();
    if config.print_schema {
        print!("{}", api::published_sdl());
        return Ok(());
    }
    if config.print_policy {
        print!("{}", api::policy::markdown());
        return Ok(());
    }
    platform::telemetry::init_logging(config.log_format);
    if config.migrate_only {
        ticketing::store::connect(&config.database_url, 2, platform::CommitSignal::new())
            .await
            .context("the database could not be migrated")?;
        tracing::info!("database migrated");
        return Ok(());
    }
    let keys = match &config.jwt_secret {
        Some(secret) => JwtKeys::from_secret(secret.as_bytes()),
        None => {
            let secret = uuid::Uuid::new_v4().to_string() + &uuid::Uuid::new_v4().to_string();
            let keys = JwtKeys::from_secret(secret.as_bytes());
            let audiences: Vec<&str> = config.jwt_audience.as_deref().into_iter().collect();
            let token = keys.mint_for_audiences(
                "ticketing-admin",
                &["tickets:admin", "events:read"],
                Duration::from_secs(24 * 3600),
                &audiences,
            )?;
            tracing::warn!(
                "no --jwt-secret given: using an ephemeral secret; an admin token valid for 24 h is: {token}"
            );
            keys
        }
    };
    let bus = platform::jetstream::event_bus(
        config.nats_url.as_deref(),
        ticketing::events::SUBJECT_PREFIX,
    )
    .await
    .context("the event bus could not be set up")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let keys = keys.with_audience(config.jwt_audience.as_deref());
    let service = Ticketing::start(config.settings(), Arc::new(keys), bus)
        .await
        .context("ticketing could not start")?;
    tracing::info!(
        "ticketing serving GraphQL at http://{}/graphql",
        config.listen
    );
    service
        .serve(listener, platform::signal::termination_signal())
        .await?;
    Ok(())
}
