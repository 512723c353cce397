//! The `gateway` binary: parse configuration, bind, serve until Ctrl-C or SIGTERM.

use anyhow::Context;
use clap::Parser;
use gateway::Config;

// A response is built from thousands of small JSON values that live for one request; glibc's
// allocator spent about a third of the gateway's CPU on them under load, mimalloc far less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = Config::parse();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    gateway::run(listener, config, platform::signal::termination_signal()).await?;
    Ok(())
}
