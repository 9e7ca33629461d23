//! Deterministic, seeded simulation of the election under faults.
//!
//! N peers (3–9 voters, optionally observers or a hierarchical config with
//! zero-weight voters) each run the production
//! [`crate::election::Driver`] (FLE plus the link rules that decide which
//! voters are Down) plus a small model of the peer loop's roles and of
//! Zab's epoch establishment, over a simulated election network:
//! per-connection FIFO order (TCP), delays and reordering across
//! connections, loss only as a whole connection failing (in-flight
//! messages lost, link closed, redial), QCM's resend-last-message on
//! reconnect as the only duplication, QCM's dial loop (retry with backoff
//! while something is queued), partitions (full and one-way, reset or
//! black-holed), crashes and restarts with persisted epochs. The network
//! hands each driver the same facts `cnx` hands the runtime's: link up,
//! link closed, dial refused or timed out, notifications, timers, the
//! start of an election, the epoch established, and the end of a role with
//! its reason (a follower that loses its leader behind a partition leaves
//! it for silence). Both `zkfle.fastDecide` settings run. One seed drives
//! everything through [`SimRng`]; virtual time moves only through the
//! event queue. The invariants of
//! [`invariants`] are checked after every step. The design follows
//! turmoil's (a seeded single-threaded network with partitions and holds)
//! and openraft's fuzzer (one function per invariant).
//!
//! `zkfle sim` ([`cli`]) runs many seeds and prints a replay command for any
//! failure.

#[cfg(feature = "cli")]
pub mod cli;
pub mod invariants;
pub mod linearizability;
mod rng;
mod world;

pub use invariants::Violation;
pub use rng::{splitmix64, SimRng};
pub use world::{run, InjectedBug, Outcome, SimOptions, Stats};
