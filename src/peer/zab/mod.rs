//! The Zab subset on the quorum port (PROTOCOL.md §6) for a peer with an
//! empty history: discovery (FOLLOWERINFO → LEADERINFO → ACKEPOCH),
//! synchronization (always an empty DIFF from a zkfle leader; DIFF, TRUNC or
//! SNAP accepted by a zkfle learner) and the broadcast phase's pings. It is
//! what lets zkfle and Java ZooKeeper 3.8 lead and follow each other and
//! notice a dead or hung peer in bounded time.
//!
//! zkfle serves no client API and keeps no data tree: a zkfle leader ignores
//! REQUEST packets (writes through Java followers stall), and a zkfle
//! follower ACKs proposals without storing them (it counts toward a Java
//! write quorum without durability). Mixed ensembles are for election and
//! liveness, not for data.
//!
//! Both entry points block the calling thread (the peer's main loop) until
//! the role ends and return why it ended. Threads: the follower runs on the
//! caller's thread; the leader accepts on the caller's thread and runs one
//! thread per connected learner, so a slow learner never delays another.

mod conn;
mod follower;
mod leader;
pub mod snap;

pub use follower::follow;
pub use leader::lead;

use crate::config::QuorumVerifier;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// What a role needs to know about the ensemble.
#[derive(Debug, Clone)]
pub struct ZabConfig {
    /// This server's sid.
    pub my_sid: i64,
    /// `tickTime`.
    pub tick_time: Duration,
    /// `initLimit` (ticks allowed for discovery and sync).
    pub init_limit: u32,
    /// `syncLimit` (ticks a learner or leader may stay silent once synced).
    pub sync_limit: u32,
    /// The voting configuration (which sids count toward quorums).
    pub verifier: QuorumVerifier,
    /// My quorum addresses, bound while leading.
    pub quorum_listen_addrs: Vec<SocketAddr>,
    /// Every server's quorum addresses (the leader's are dialled when
    /// following).
    pub quorum_addrs: BTreeMap<i64, Vec<SocketAddr>>,
    /// Follow as an observer (OBSERVERINFO, never counted, never ACKs
    /// proposals).
    pub is_observer: bool,
    /// The committed config text, sent as NEWLEADER data (as Java does);
    /// its `version=` line is our config version.
    pub config_text: String,
}

impl ZabConfig {
    fn ticks(&self, n: u32) -> Duration {
        self.tick_time.saturating_mul(n)
    }
    /// `initLimit × tickTime`.
    pub fn init_timeout(&self) -> Duration {
        self.ticks(self.init_limit)
    }
    /// `syncLimit × tickTime`.
    pub fn sync_timeout(&self) -> Duration {
        self.ticks(self.sync_limit)
    }
}

/// The phase of a Zab role, as ZooKeeper's `zk_peer_state` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZabPhase {
    /// Agreeing on the new epoch.
    Discovery,
    /// Bringing learners up to date.
    Synchronization,
    /// Established: pings flow, the peer counts as synced.
    Broadcast,
}

/// A leader's learners, as ZooKeeper's leader metrics count them
/// (`learners`, `synced_followers`, `synced_non_voting_followers`,
/// `synced_observers`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LearnerCounts {
    /// Learner connections (followers and observers, synced or not).
    pub learners: usize,
    /// Followers sent UPTODATE (Java's forwarding followers).
    pub synced_followers: usize,
    /// Synced followers that are not voting members (none without
    /// reconfiguration, which zkfle never does; counted, not assumed).
    pub synced_non_voting_followers: usize,
    /// Observers sent UPTODATE.
    pub synced_observers: usize,
}

/// The peer the role runs for: persisted epochs, last zxid, phase reports
/// and shutdown requests.
pub trait ZabHost: Send + Sync {
    /// The persisted `acceptedEpoch`.
    fn accepted_epoch(&self) -> i64;
    /// Persists `acceptedEpoch` (atomic write + fsync) before returning.
    fn set_accepted_epoch(&self, e: i64) -> std::io::Result<()>;
    /// The persisted `currentEpoch`.
    fn current_epoch(&self) -> i64;
    /// Persists `currentEpoch` (atomic write + fsync) before returning.
    fn set_current_epoch(&self, e: i64) -> std::io::Result<()>;
    /// The last zxid this peer advertises in its vote.
    fn last_zxid(&self) -> i64;
    /// Records a new last zxid (SNAP, TRUNC, or the leader's epoch start).
    fn set_last_zxid(&self, zxid: i64);
    /// Reports a phase change (drives `zk_peer_state` and the served Mode).
    fn phase(&self, phase: ZabPhase);
    /// True once a graceful shutdown was requested; polled every ≤ 50 ms.
    fn stopping(&self) -> bool;
    /// A leader reports its learners whenever the counts change (for the
    /// leader metrics in `mntr` and `/metrics`).
    fn learners(&self, _counts: LearnerCounts) {}
    /// Quorum TLS for the quorum port (`sslQuorum`/`portUnification`), if
    /// configured. Interim hook until the quorum-port runtime owns socket
    /// creation: the follower dials with TLS under `sslQuorum`, the leader
    /// accepts TLS (and plaintext with `portUnification`).
    fn quorum_tls(&self) -> Option<&crate::tls::QuorumTls> {
        None
    }
}

/// How a leader broke the protocol (the follower leaves it).
#[derive(Debug, thiserror::Error)]
pub enum ProtocolViolation {
    /// Bytes that are no QuorumPacket (bad jute length, ...).
    #[error("bad packet: {0}")]
    Wire(#[from] crate::wire::WireError),
    /// A snapshot stream that does not parse or lacks its signature.
    #[error("bad snapshot stream: {0}")]
    Snapshot(crate::wire::WireError),
    /// A packet type the current step does not allow.
    #[error("unexpected {} while {during}", type_name(*got))]
    Unexpected {
        /// The packet type received.
        got: i32,
        /// The step (e.g. "awaiting LEADERINFO").
        during: &'static str,
    },
}

/// Why a Zab role ended. Every variant but [`ZabExit::Shutdown`] sends the
/// peer back to LOOKING.
#[derive(Debug, thiserror::Error)]
pub enum ZabExit {
    /// [`ZabHost::stopping`] asked us to stop.
    #[error("shutdown requested")]
    Shutdown,
    /// The leader closed the quorum connection (FIN or reset).
    #[error("leader closed the quorum connection")]
    LeaderSocketClosed,
    /// Nothing from the leader within the read timeout.
    #[error("leader silent for {ms} ms")]
    LeaderSilent {
        /// Milliseconds since the last bytes from the leader.
        ms: u64,
    },
    /// Leading without a synced quorum (ZooKeeper: "Not sufficient
    /// followers synced").
    #[error("not sufficient followers synced, only synced with sids {synced:?}")]
    QuorumLost {
        /// Sids (me included) that were still within their deadline.
        synced: Vec<i64>,
    },
    /// No quorum agreed on a new epoch (FOLLOWERINFO, then ACKEPOCH) within
    /// `initLimit` ticks.
    #[error("discovery not completed within initLimit ({stage})")]
    DiscoveryTimeout {
        /// Which wait ran out.
        stage: &'static str,
    },
    /// No quorum ACKed NEWLEADER within `initLimit` ticks, or a learner did
    /// not finish synchronizing in time.
    #[error("synchronization not completed within initLimit")]
    SyncTimeout,
    /// The leader proposed an epoch below the one we already accepted.
    #[error("leader proposed epoch {proposed}, below our acceptedEpoch {accepted}")]
    EpochRejected {
        /// Epoch in LEADERINFO.
        proposed: i64,
        /// Our acceptedEpoch.
        accepted: i64,
    },
    /// The configuration gives no quorum address for the sid to follow, or
    /// none of mine to lead on.
    #[error("no quorum address configured for sid {sid}")]
    NoQuorumAddress {
        /// The sid.
        sid: i64,
    },
    /// Could not reach the leader's quorum port within the attempts
    /// (5, 100 ms apart, within `initLimit × tickTime`).
    #[error("cannot connect to leader sid {sid} at {addr}: {error}")]
    ConnectFailed {
        /// The leader's sid.
        sid: i64,
        /// The address of the last attempt.
        addr: SocketAddr,
        /// The last attempt's error.
        error: std::io::Error,
    },
    /// Could not bind the quorum port to lead.
    #[error("cannot bind quorum address {addr}: {error}")]
    BindFailed {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
    /// The leader broke the protocol.
    #[error("protocol error from the leader: {0}")]
    Protocol(#[from] ProtocolViolation),
    /// Persisting an epoch failed: the role cannot continue safely.
    #[error("cannot persist {what}: {error}")]
    Persist {
        /// `acceptedEpoch` or `currentEpoch`.
        what: &'static str,
        /// The IO error.
        error: std::io::Error,
    },
    /// Another socket error.
    #[error("quorum connection error: {0}")]
    Io(std::io::Error),
}

/// The `version=` line of a config text, read as ZooKeeper writes it (hex);
/// 0 when absent or unreadable (a static config).
pub(crate) fn config_version(config_text: &str) -> i64 {
    config_text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("version="))
        .filter_map(|v| i64::from_str_radix(v.trim(), 16).ok())
        .next_back()
        .unwrap_or(0)
}

/// The data as one big-endian `i32` (LEADERINFO, ACKEPOCH).
pub(crate) fn data_i32(p: &crate::wire::zab::QuorumPacket) -> Option<i32> {
    let b: [u8; 4] = p.data.as_deref()?.get(..4)?.try_into().ok()?;
    Some(i32::from_be_bytes(b))
}

/// Name of a packet type for logs.
pub(crate) fn type_name(t: i32) -> &'static str {
    crate::wire::zab::packet_type_name(t).unwrap_or("UNKNOWN")
}

#[cfg(test)]
mod tests {
    #[test]
    fn config_version_is_hex() {
        assert_eq!(super::config_version("server.1=a:1:2\nversion=0"), 0);
        assert_eq!(super::config_version("server.1=a:1:2\nversion=1a"), 0x1a);
        assert_eq!(super::config_version("server.1=a:1:2"), 0);
    }
}
