//! The system under the browser: ticketing and the CRM as in the gateway end-to-end tests, and
//! the gateway on a runtime of its own. Stopping a gateway that runs on the test's runtime would
//! stop accepting but leave upgraded WebSockets running in their own tasks, so the browser would
//! never notice; shutting its runtime down drops every task and socket it owns, as a crashed
//! process would, and the port can be bound again for the restart.

use std::net::SocketAddr;
use std::time::Duration;

#[path = "../common/services.rs"]
mod services;

pub use services::admin;
use services::{Services, local};

pub struct System {
    pub services: Services,
    gateway: Option<tokio::runtime::Runtime>,
    gateway_addr: SocketAddr,
    gateway_config: gateway::Config,
}

impl System {
    pub async fn start(web_dir: std::path::PathBuf) -> Self {
        Self::start_with(web_dir, |_| {}).await
    }

    /// As [`System::start`], with the gateway's settings changed by `configure` first.
    pub async fn start_with(
        web_dir: std::path::PathBuf,
        configure: impl FnOnce(&mut gateway::Config),
    ) -> Self {
        let services = Services::start().await;
        let mut gateway_config = services.gateway_config();
        gateway_config.web_dir = Some(web_dir);
        configure(&mut gateway_config);
        let mut system = Self {
            services,
            gateway: None,
            gateway_addr: local(),
            gateway_config,
        };
        system.start_gateway().await;
        system
    }

    /// `http://ADDR`: where the browser opens the dashboard.
    pub fn origin(&self) -> String {
        format!("http://{}", self.gateway_addr)
    }

    pub fn gateway_url(&self) -> String {
        format!("{}/graphql", self.origin())
    }

    /// Starts the gateway, on the port it had before if it ran already, and waits until it
    /// answers.
    pub async fn start_gateway(&mut self) {
        assert!(self.gateway.is_none(), "the gateway is running");
        let listener = bind(self.gateway_addr).await;
        self.gateway_addr = listener.local_addr().expect("bound address");
        listener.set_nonblocking(true).expect("non-blocking");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("gateway runtime");
        let config = self.gateway_config.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            if let Err(error) = gateway::run(listener, config, std::future::pending()).await {
                eprintln!("the gateway failed: {error}");
            }
        });
        self.gateway = Some(runtime);
        let health = format!("{}/health", self.origin());
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if http
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the gateway did not come up at {health}");
    }

    /// Stops the gateway as a crash would: every connection it holds is cut.
    pub async fn stop_gateway(&mut self) {
        if let Some(runtime) = self.gateway.take() {
            runtime.shutdown_background();
        }
        // Until the listener is gone, a connection would still be accepted (into a dead queue).
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http
                .get(format!("{}/health", self.origin()))
                .timeout(Duration::from_millis(200))
                .send()
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the gateway still answers after being stopped");
    }
}

impl Drop for System {
    fn drop(&mut self) {
        // Dropping a runtime inside another one's context panics; this does not wait.
        if let Some(runtime) = self.gateway.take() {
            runtime.shutdown_background();
        }
    }
}

/// Binds `addr`, retrying while the port is still held by the gateway just stopped.
async fn bind(addr: SocketAddr) -> std::net::TcpListener {
    for _ in 0..100 {
        match std::net::TcpListener::bind(addr) {
            Ok(listener) => return listener,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("cannot bind {addr}");
}
