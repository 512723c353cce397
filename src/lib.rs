//! What the `conftools` launcher does that its tests need too. The binary (`src/main.rs`) is
//! thin argument handling over this library and the service crates.

pub mod compose;
pub mod demo;
pub mod trusted_documents;
pub mod web;
