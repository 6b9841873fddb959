//! Seeded fault simulation: clients against replicas of the real binary, one Redis and the
//! sandbox, while a seeded scheduler injects faults; then the money-safety invariants.

mod common;
mod sim;
