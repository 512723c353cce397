//! The sponsorship CRM end to end: real CRM and real ticketing servers on ephemeral ports, each with its own
//! real database, talking over HTTP and WebSocket. One test binary keeps link time down.
#![allow(dead_code)]

mod support;

mod allocation;
mod auth;
mod authorization_matrix;
mod bad_input;
mod cancellation;
mod claims;
mod faults;
mod hostile;
mod http_audit;
mod integrity;
mod scale_out;
mod schema;
mod subscriptions;
