//! Integration tests over real sockets: the service on port 0, a private redis-server and
//! Novasend-compatible HTTP servers.

#[path = "../common/mod.rs"]
mod common;

mod attempts;
mod behaviour;
mod create;
mod create_finishing;
mod create_outcomes;
mod errors;
mod hub2;
mod hub2_fake;
mod hub2_regressions;
mod idempotency;
mod production;
mod providers;
mod refund;
mod refund_mark;
mod review_regressions;
mod sandbox;
mod sandbox_direct;
mod sandbox_faults;
mod sandbox_hub2;
mod sandbox_hub2_direct;
mod sandbox_journal;
mod store_contract;
mod store_faults;
mod streaming;
mod terminal_cache;
mod topologies;
mod trace_context;
mod transport;
mod unknown_outcome;
mod validation;
