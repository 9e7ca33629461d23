//! Fast Leader Election, sans IO (PROTOCOL.md §4).
//!
//! * [`vote`]: [`Vote`] and its total order.
//! * [`tally`]: vote sets, ZooKeeper's vote equality, quorum checks,
//!   `leader_ok`.
//! * [`fle`]: [`Fle`], `lookForLeader` as a deterministic state machine.
//! * `testkit` (hidden): an in-memory, virtual-time harness that drives
//!   several [`Fle`]s for tests and simulations.

pub mod fle;
pub mod tally;
#[doc(hidden)]
pub mod testkit;
pub mod vote;

pub use fle::{DecidedBy, Decision, Fle, FleConfig, LinkState, Output, Send};
pub use tally::{leader_ok, TallyVote, VoteSet};
pub use vote::{total_order, Vote};
