//! The role a peer takes after an election: the seam where the quorum-port
//! Zab session (`crate::peer::zab::{lead, follow}`) plugs in.
//!
//! Until that session exists, a decided peer reports its role at once and
//! holds it until shutdown (DESIGN.md: "Until the quorum-port session exists
//! in the code, a peer reports its role as soon as it decides"). The phase
//! stays `discovery`, which is what the peer honestly is: it has not spoken
//! to its leader or learners.

use crossbeam_channel::Receiver;
use parking_lot::Mutex;

use crate::config::ZkConfig;
use crate::election::Decision;

use super::epoch::EpochFiles;
use super::status::PeerStatus;

/// What a role session gets from the main loop.
pub(crate) struct RoleContext<'a> {
    /// The peer's configuration (quorum addresses, tickTime, limits).
    #[allow(dead_code)]
    pub config: &'a ZkConfig,
    /// Status to publish the phase and `serving` in.
    pub status: &'a PeerStatus,
    /// The epoch files, to persist acceptedEpoch/currentEpoch.
    #[allow(dead_code)]
    pub epochs: &'a Mutex<EpochFiles>,
    /// Closed when the peer shuts down; a role must return soon after.
    pub stop: &'a Receiver<()>,
    /// Reports the epoch Zab established, so replies to LOOKING peers carry
    /// it (PROTOCOL.md §4.3).
    #[allow(dead_code)]
    pub established_epoch: &'a dyn Fn(i64),
}

/// How a role ended.
pub(crate) enum RoleEnd {
    /// The peer is shutting down.
    Shutdown,
    /// The role failed or the leader went away: elect again.
    #[allow(dead_code)]
    LookAgain,
}

/// Runs the decided role until it ends.
pub(crate) fn run(ctx: &RoleContext<'_>, _decision: &Decision) -> RoleEnd {
    ctx.status.update(|s| s.serving = true);
    // A closed channel (the peer dropped its sender) is the stop signal.
    let _ = ctx.stop.recv();
    RoleEnd::Shutdown
}
