//! Conference Tools through the gateway, end to end: real ticketing, CRM and gateway servers on
//! ephemeral ports, each service with its own database, composed from their `_service { sdl }`
//! as `conftools up` does. One test binary keeps link time down.

mod support;

mod auth;
mod clients;
mod matrix;
mod outage;
mod queries;
mod schema;
mod subscriptions;
