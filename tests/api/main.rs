//! Integration tests over real sockets: the service on port 0, a private redis-server and
//! Novasend-compatible HTTP servers.

#[path = "../common/mod.rs"]
mod common;

mod create;
mod errors;
mod idempotency;
mod production;
mod refund;
mod sandbox;
mod sandbox_journal;
mod streaming;
mod unknown_outcome;
mod validation;
