//! NATS for tests. The shared server is named by `NATS_URL` (CI's second pass sets it); a test
//! that needs NATS fails loudly when it is set but unreachable, and may skip when it is unset,
//! so the suite still passes on SQLite without NATS. Tests that stop NATS never stop the
//! shared one: they run their own `nats-server` child on a free port.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;

/// Where `nats-server` is installed on the CI machine.
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// The shared NATS server from `NATS_URL`, checked to answer; `None` when unset.
pub async fn shared_nats_url() -> Option<String> {
    let url = std::env::var("NATS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())?;
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(3))
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("NATS_URL={url} is set but NATS is unreachable: {e}"));
    drop(client);
    Some(url)
}

/// A `nats-server -js` child process with its own port and store directory, which a test may
/// kill and start again on the same port and store.
pub struct NatsServer {
    port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts one, or returns `None` (after saying the test is skipped) when `nats-server` is
    /// not installed and `NATS_URL` is unset. With `NATS_URL` set a missing binary fails the
    /// test: CI must run it.
    pub async fn start(test: &str) -> Option<Self> {
        if !PathBuf::from(NATS_SERVER).exists() {
            if std::env::var("NATS_URL").is_ok_and(|u| !u.trim().is_empty()) {
                panic!(
                    "NATS_URL is set but {NATS_SERVER} is missing: {test} needs its own NATS server"
                );
            }
            eprintln!("skipped {test}: {NATS_SERVER} is not installed and NATS_URL is unset");
            return None;
        }
        let port = free_port();
        let store = tempfile::tempdir().expect("NATS store dir");
        let mut server = Self {
            port,
            store,
            child: None,
        };
        server.restart().await;
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on its port and store directory and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "NATS is already running");
        let child = Command::new(NATS_SERVER)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {NATS_SERVER}: {e}"));
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not come up on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the server (SIGKILL, as a crash) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A message as a durable consumer received it.
#[derive(Debug, Clone)]
pub struct Consumed {
    /// The `Nats-Msg-Id` header.
    pub message_id: String,
    pub subject: String,
    pub payload: serde_json::Value,
}

/// A durable pull consumer as a test reads it: each message is acknowledged (and the ack
/// confirmed), so a later read, by this reader or a new one with the same name, resumes after
/// it, as a restarted consumer would. Test consumers vanish after a minute unused, so the
/// shared server does not collect them.
pub struct DurableReader {
    consumer: async_nats::jetstream::consumer::PullConsumer,
}

impl DurableReader {
    /// Attaches to (or creates) `durable` on `stream`: from the stream's start, or, with
    /// `only_new`, from messages stored after its creation (for the shared stream, which
    /// holds other tests' events).
    pub async fn attach(url: &str, stream: &str, durable: &str, only_new: bool) -> Self {
        use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
        let client = async_nats::connect(url).await.expect("connect to NATS");
        let jetstream = async_nats::jetstream::new(client);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let attempt = async {
                let stream = jetstream
                    .get_stream(stream)
                    .await
                    .map_err(|e| e.to_string())?;
                stream
                    .get_or_create_consumer(
                        durable,
                        pull::Config {
                            durable_name: Some(durable.to_owned()),
                            deliver_policy: if only_new {
                                DeliverPolicy::New
                            } else {
                                DeliverPolicy::All
                            },
                            ack_policy: AckPolicy::Explicit,
                            inactive_threshold: Duration::from_secs(60),
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(|e| e.to_string())
            };
            match attempt.await {
                Ok(consumer) => return Self { consumer },
                Err(error) if tokio::time::Instant::now() > deadline => {
                    panic!("no consumer {durable} on stream {stream}: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Reads until `done` holds for everything read so far, or `wait` passes.
    pub async fn read_until(
        &self,
        wait: Duration,
        done: impl Fn(&[Consumed]) -> bool,
    ) -> Vec<Consumed> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut received = Vec::new();
        while !done(&received) && tokio::time::Instant::now() < deadline {
            let batch = self
                .consumer
                .fetch()
                .max_messages(100)
                .expires(Duration::from_millis(500))
                .messages()
                .await;
            let Ok(mut batch) = batch else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            while let Some(Ok(message)) = batch.next().await {
                let message_id = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                received.push(Consumed {
                    message_id,
                    subject: message.subject.to_string(),
                    payload: serde_json::from_slice(&message.payload).unwrap_or_default(),
                });
                message.double_ack().await.expect("ack confirmed");
            }
        }
        received
    }
}
