//! What every service's tests need and nothing domain-specific: a database of its own for
//! each server under test, a way to run a server on an ephemeral port and stop it as a crash
//! would, and GraphQL clients over HTTP, WebSocket (both protocols) and SSE.

pub mod http_audit;
pub mod nats;
pub mod npm;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A database URL for one server under test. With `TEST_DATABASE_URL` set, a new PostgreSQL
/// database named after `service` is created on that server; if the server cannot be reached
/// the test fails, it never falls back to SQLite quietly. Otherwise a SQLite file in a
/// temporary directory, which lives as long as the returned guard.
pub async fn fresh_database_url(service: &str) -> (String, Option<tempfile::TempDir>) {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(server_url) if !server_url.is_empty() => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&server_url)
                .await
                .unwrap_or_else(|e| {
                    panic!("TEST_DATABASE_URL={server_url} is set but unreachable: {e}")
                });
            let name = format!("{service}_test_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
            (database_url_on(&server_url, &name), None)
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!(
                "sqlite://{}",
                dir.path().join(format!("{service}.db")).display()
            );
            (url, Some(dir))
        }
    }
}

/// The URL of database `name` on the server `server_url` points at.
pub fn database_url_on(server_url: &str, name: &str) -> String {
    let (scheme, rest) = server_url
        .split_once("://")
        .expect("a database URL needs a scheme, e.g. postgres://postgres@127.0.0.1:5432");
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{scheme}://{authority}/{name}{query}")
}

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code, got {body:#}"))
        .to_owned()
}

/// A GraphQL subscription over WebSocket, speaking `graphql-transport-ws` or the legacy
/// `graphql-ws` protocol.
pub struct WsSubscription {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    legacy: bool,
}

impl WsSubscription {
    pub async fn open(
        url: &str,
        protocol: &str,
        init_payload: Value,
        query: &str,
        variables: Value,
    ) -> Result<Self, String> {
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            protocol.parse().map_err(|_| "bad protocol".to_owned())?,
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| e.to_string())?;
        let legacy = protocol == "graphql-ws";
        let send = |v: Value| Message::Text(v.to_string().into());
        socket
            .send(send(
                json!({ "type": "connection_init", "payload": init_payload }),
            ))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
                .await
                .map_err(|_| "no connection_ack".to_owned())?
                .ok_or("socket closed before ack")?
                .map_err(|e| e.to_string())?;
            match message {
                Message::Text(text) => {
                    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                    match v["type"].as_str() {
                        Some("connection_ack") => break,
                        Some("ka") => continue,
                        _ => return Err(format!("unexpected before ack: {v}")),
                    }
                }
                Message::Close(frame) => return Err(format!("closed: {frame:?}")),
                _ => continue,
            }
        }
        let start = if legacy { "start" } else { "subscribe" };
        socket
            .send(send(json!({
                "id": "1", "type": start,
                "payload": { "query": query, "variables": variables }
            })))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self { socket, legacy })
    }

    /// The next `next`/`data` payload, or an error message for anything else (`error`,
    /// `complete`, a close) or a timeout.
    pub async fn next_payload(&mut self, timeout: Duration) -> Result<Value, String> {
        loop {
            let message = tokio::time::timeout(timeout, self.socket.next())
                .await
                .map_err(|_| "timed out waiting for an event".to_owned())?
                .ok_or("socket closed")?
                .map_err(|e| e.to_string())?;
            let Message::Text(text) = message else {
                if let Message::Close(frame) = message {
                    return Err(format!("closed: {frame:?}"));
                }
                continue;
            };
            let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            match v["type"].as_str() {
                Some("next") | Some("data") => return Ok(v["payload"].clone()),
                Some("ka") | Some("ping") | Some("pong") => continue,
                _ => return Err(format!("{v}")),
            }
        }
    }

    /// Starts one more operation on the same socket, under `id`.
    pub async fn start(&mut self, id: &str, query: &str, variables: Value) -> Result<(), String> {
        let start = if self.legacy { "start" } else { "subscribe" };
        self.socket
            .send(Message::Text(
                json!({
                    "id": id, "type": start,
                    "payload": { "query": query, "variables": variables }
                })
                .to_string()
                .into(),
            ))
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }

    pub fn is_legacy(&self) -> bool {
        self.legacy
    }
}

/// A boxed future that resolves when a server under test should shut down gracefully.
pub type ShutdownSignal = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A server task on a bound address and the means to stop it, as a crash would: the task is
/// aborted, so open connections are cut and whatever the server owns is dropped with it.
pub struct ServerTask {
    addr: std::net::SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ServerTask {
    /// Binds `addr` (port 0 for an ephemeral port) and runs `serve` on the listener. `serve`
    /// gets a signal to pass as its graceful-shutdown future.
    pub async fn spawn<F, Fut>(addr: std::net::SocketAddr, serve: F) -> Self
    where
        F: FnOnce(tokio::net::TcpListener, ShutdownSignal) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = bind(addr).await;
        let addr = listener.local_addr().expect("bound address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let signal: ShutdownSignal = Box::pin(async move {
            let _ = rx.await;
        });
        let task = tokio::spawn(serve(listener, signal));
        Self {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `http://ADDR/graphql`.
    pub fn graphql_url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// Stops the server and waits until its task is gone, so the port is free again.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Binds, retrying briefly: a port just given up may take a moment to be free again.
pub async fn bind(addr: std::net::SocketAddr) -> tokio::net::TcpListener {
    for _ in 0..50 {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("cannot bind {addr}");
}

/// POSTs a GraphQL request (with a bearer token when given) and returns the JSON body, whatever
/// the HTTP status: GraphQL errors are what tests look at.
pub async fn gql(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let mut request = client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("response body");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("HTTP {status} with a body that is not JSON ({e}): {text:?}"))
}

/// A GraphQL subscription over Server-Sent Events (graphql-sse's distinct connections mode:
/// one POST with `Accept: text/event-stream`, each result a `next` event, then `complete`).
pub struct SseSubscription {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl SseSubscription {
    pub async fn open(
        url: &str,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<Self, String> {
        let mut request = reqwest::Client::new()
            .post(url)
            .header("accept", "text/event-stream")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !response.status().is_success() || !content_type.starts_with("text/event-stream") {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(format!("HTTP {status} ({content_type}): {body}"));
        }
        Ok(Self {
            response,
            buffer: Vec::new(),
        })
    }

    /// The next `next` payload, or an error message for `complete`, the stream ending or a
    /// timeout. Keep-alive comments are skipped.
    pub async fn next_payload(&mut self, timeout: Duration) -> Result<Value, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Events end with a blank line; a chunk may hold several events or part of one.
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let event = String::from_utf8_lossy(&event);
                let mut kind = "message";
                let mut data = String::new();
                for line in event.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        kind = value.trim();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.strip_prefix(' ').unwrap_or(value));
                    }
                }
                match kind {
                    "next" => return serde_json::from_str(&data).map_err(|e| e.to_string()),
                    "complete" => return Err("complete".to_owned()),
                    _ => continue,
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .map_err(|_| "timed out waiting for an event".to_owned())?
                .map_err(|e| e.to_string())?
                .ok_or("stream ended")?;
            // Bytes, not text: a chunk may end inside a UTF-8 character. `\r` is dropped so
            // CRLF line endings need no special case.
            self.buffer.extend(chunk.iter().filter(|&&b| b != b'\r'));
        }
    }
}

/// A stuck writer, held by the test: SQLite's database write lock (an open `BEGIN
/// IMMEDIATE`), or on PostgreSQL the lock on `head_table`'s row that every write transaction
/// of the service takes. Until [`WedgedWriter::release`], the service's writes wait.
pub enum WedgedWriter {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WedgedWriter {
    pub async fn hold(database_url: &str, head_table: &str) -> Self {
        use sqlx::Connection;
        if database_url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(database_url)
                .await
                .expect("open the service's SQLite file");
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .expect("take SQLite's write lock");
            Self::Sqlite(conn)
        } else {
            let mut conn = sqlx::PgConnection::connect(database_url)
                .await
                .expect("connect to the service's PostgreSQL database");
            sqlx::query("BEGIN")
                .execute(&mut conn)
                .await
                .expect("begin");
            sqlx::query(&format!("SELECT position FROM {head_table} FOR UPDATE"))
                .execute(&mut conn)
                .await
                .expect("lock the event head");
            Self::Postgres(conn)
        }
    }

    /// Ends the stuck transaction; the service's writes proceed.
    pub async fn release(self) {
        use sqlx::Connection;
        match self {
            Self::Sqlite(mut conn) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
                let _ = conn.close().await;
            }
            Self::Postgres(mut conn) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
                let _ = conn.close().await;
            }
        }
    }
}

/// A test's own look at a service's database, in either dialect: counts that prove
/// invariants (`SELECT COUNT(*) …`, expected 0).
pub enum TestDatabase {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl TestDatabase {
    pub async fn open(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Self::Sqlite(sqlx::SqlitePool::connect(url).await.expect("open SQLite"))
        } else {
            Self::Postgres(sqlx::PgPool::connect(url).await.expect("open PostgreSQL"))
        }
    }

    /// The one integer `sql` selects.
    pub async fn count(&self, sql: &str) -> i64 {
        match self {
            Self::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Self::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `count` on PostgreSQL; `None` on SQLite (for checks only PostgreSQL can make).
    pub async fn count_postgres(&self, sql: &str) -> Option<i64> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(_) => Some(self.count(sql).await),
        }
    }

    /// The rows `sql` selects, as `T`.
    pub async fn rows<T>(&self, sql: &str) -> Vec<T>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        match self {
            Self::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
            Self::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn close(self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// A small xorshift generator for tests that spread work at random (hang-up delays, which
/// mutation comes next): random enough, and reproducible from the seed it prints.
pub struct Dice(u64);

impl Dice {
    pub fn seeded() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        eprintln!("test seed: {seed}");
        Self(seed)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A client that gives up: sends one GraphQL POST to `/graphql` on a connection of its own,
/// waits `patience`, then closes the connection unless the whole answer came first, so the
/// server sees its request dropped wherever it had got to. True when the answer came.
pub async fn hang_up_after(
    addr: std::net::SocketAddr,
    token: &str,
    body: Value,
    patience: Duration,
) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.to_string();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nauthorization: Bearer {token}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    socket
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut answer = Vec::new();
    // `connection: close`: the server ends the stream after a whole answer.
    matches!(
        tokio::time::timeout(patience, socket.read_to_end(&mut answer)).await,
        Ok(Ok(_))
    )
}

/// A service binary run by a test, as an orchestrator runs it; killed if the test ends first.
pub struct ServiceProcess(pub std::process::Child);

impl ServiceProcess {
    /// Sends SIGTERM, as orchestrators do, and waits (at most `max`) until the process has
    /// exited: its exit status and how long stopping took.
    pub async fn terminate(&mut self, max: Duration) -> (std::process::ExitStatus, Duration) {
        let signalled = std::time::Instant::now();
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(kill.success(), "kill -TERM failed");
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return (status, signalled.elapsed());
            }
            assert!(
                signalled.elapsed() < max,
                "the process did not stop within {max:?} of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
