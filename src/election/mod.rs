//! Fast Leader Election, sans IO (PROTOCOL.md §4).
//!
//! * [`vote`]: [`Vote`] and its total order.
//! * [`tally`]: vote sets, ZooKeeper's vote equality, quorum checks,
//!   `leader_ok`.
//! * [`fle`]: [`Fle`], `lookForLeader` as a deterministic state machine.
//! * [`driver`]: [`Driver`], `Fle` plus the link bookkeeping that decides
//!   which voters are Down; what the runtime and the simulator both run.

pub mod driver;
pub mod fle;
pub mod tally;
pub mod types;
pub mod vote;

pub use driver::{DialError, DownEvidence, DownReason, Driver, Input, RoleEnd};
pub use fle::Fle;
pub use tally::{leader_ok, TallyVote, VoteSet};
pub use types::{DecidedBy, Decision, FleConfig, LinkState, Message, Output};
pub use vote::{total_order, Vote};

/// Literals for the unit tests of this module, also re-exported by
/// `sim::testkit` for scripted runs (one definition for both).
#[cfg(any(test, feature = "testkit"))]
pub mod test_util {
    use std::time::Duration;

    use crate::wire::{Notification, ServerState};

    /// A LOOKING/FOLLOWING/... notification literal, version 0.
    pub fn notif(
        state: ServerState,
        leader: i64,
        zxid: i64,
        round: i64,
        peer_epoch: i64,
    ) -> Notification {
        Notification {
            state,
            leader,
            zxid,
            election_epoch: round,
            peer_epoch,
            version: 0,
        }
    }

    /// Milliseconds as a [`Duration`].
    pub fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
}
