//! Fast Leader Election, sans IO (PROTOCOL.md §4).
//!
//! * [`vote`]: [`Vote`] and its total order.
//! * [`tally`]: vote sets, ZooKeeper's vote equality, quorum checks,
//!   `leader_ok`.
//! * [`fle`]: [`Fle`], `lookForLeader` as a deterministic state machine.
//! * [`driver`]: [`Driver`], `Fle` plus the link bookkeeping that decides
//!   which voters are Down; what the runtime and the simulator both run.
//! * `testkit` (hidden): an in-memory, virtual-time harness that drives
//!   several [`Fle`]s for tests and simulations.

pub mod driver;
pub mod fle;
pub mod tally;
#[doc(hidden)]
pub mod testkit;
pub mod vote;

pub use driver::{DialError, DownEvidence, DownReason, Driver, Input, RoleEnd};
pub use fle::{DecidedBy, Decision, Fle, FleConfig, LinkState, Message, Output};
pub use tally::{leader_ok, TallyVote, VoteSet};
pub use vote::{total_order, Vote};
