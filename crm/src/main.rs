use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use crm::config::Config;
use crm::{Crm, api};
use platform::{InProcessBus, JwtKeys};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    if config.print_schema {
        print!("{}", api::published_sdl());
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let keys = match &config.jwt_secret {
        Some(secret) => JwtKeys::from_secret(secret.as_bytes()),
        None => {
            let secret = uuid::Uuid::new_v4().to_string() + &uuid::Uuid::new_v4().to_string();
            let keys = JwtKeys::from_secret(secret.as_bytes());
            let token = keys.mint("crm-admin", &["crm:admin"], Duration::from_secs(24 * 3600))?;
            tracing::warn!(
                "no --jwt-secret given: using an ephemeral secret; an admin token valid for 24 h is: {token}"
            );
            keys
        }
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let service = Crm::start(
        config.settings(),
        Arc::new(keys),
        Arc::new(InProcessBus::default()),
    )
    .await
    .context("the CRM could not start")?;
    tracing::info!("CRM serving GraphQL at http://{}/graphql", config.listen);
    service
        .serve(listener, platform::server::termination_signal())
        .await?;
    Ok(())
}
