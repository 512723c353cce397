//! Ticketing's API tests: a real server on an ephemeral port, a real database, real HTTP and
//! WebSocket clients. One test binary keeps link time down.
#![allow(dead_code)]

mod support;

mod audit_findings;
mod auth;
mod authorization_matrix;
mod bad_input;
mod cancellation;
mod concurrency;
mod hostile;
mod http_audit;
mod idempotency;
mod lifecycle;
mod operations;
mod scale_out;
mod schema;
mod stuck_writer;
mod subscriptions;
