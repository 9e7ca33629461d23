//! The quorum-port runtime: it executes the sans-IO Zab machines
//! ([`crate::zab::Leader`], [`crate::zab::Learner`]) over sockets, files and
//! timers. One **role thread** owns the machine and is fed through one
//! channel (decoded packets from per-connection reader threads, new
//! connections, completions of the durability pipeline, embedder requests,
//! the machine's deadline as the wait's timeout); per-connection **writer
//! threads** drain a bounded queue with one write per burst; ONE
//! **durability pipeline** thread per peer executes epoch and log writes in
//! order (`crate::peer::durable`); a store-mode peer's **apply thread**
//! hands committed entries to the embedder's state machine
//! (`crate::peer::apply`). See `runtime` for the picture.
//!
//! Two modes (`crate::zab::Mode`): interop (no LogStore: the `zkfle run`
//! binary and election-only embedders; byte-identical to zkfle's earlier
//! threaded runtime, mixes with Java ZooKeeper 3.8: a zkfle leader ignores
//! REQUEST packets and a zkfle follower ACKs proposals without storing
//! them) and store (the peer replicates an embedder's log; zkfle-only).
//!
//! [`lead`] and [`follow`] run one interop role on the calling thread for
//! a [`ZabHost`] (tests and tools drive them directly); the peer's main
//! loop runs roles through the same code with its own durability pipeline,
//! store and stop channel.

mod conn;
mod leader;
mod learner;
pub(crate) mod net;
pub(crate) mod runtime;
pub mod snap;

pub use crate::zab::{ProtocolViolation, ZabExit, ZabPhase};

use crate::config::QuorumVerifier;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::net::{HostPort, Resolver};
use std::time::Duration;

use crate::peer::durable::{self, EpochSink};
use runtime::{IoHandle, LogLimiter, RoleEnv};

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
    /// Every server's quorum addresses as written in `zoo.cfg`. A learner
    /// looks the leader's name up again before each connection attempt,
    /// as ZooKeeper's `Learner.findLeader` does, so a leader whose address
    /// changed (or whose name was not yet in DNS when this peer started)
    /// is still found. A sid missing here is dialled at `quorum_addrs`.
    pub quorum_hosts: BTreeMap<i64, Vec<HostPort>>,
    /// Looks `quorum_hosts` names up (the configuration's resolver).
    pub resolver: Arc<dyn Resolver>,
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
    /// A leader's term ended with `exit`, before its learner connections
    /// close: the peer can stop presenting itself as LEADING to the
    /// election at once (its followers, which see their connection close
    /// next, ask it right away).
    fn leader_ending(&self, _exit: &ZabExit) {}
    /// Quorum TLS for the quorum port (`sslQuorum`/`portUnification`), if
    /// configured. Interim hook until the quorum-port runtime owns socket
    /// creation: the follower dials with TLS under `sslQuorum`, the leader
    /// accepts TLS (and plaintext with `portUnification`).
    fn quorum_tls(&self) -> Option<&crate::tls::QuorumTls> {
        None
    }
}

/// Leads (interop mode) until the term ends; blocks the calling thread.
/// Epochs are written through `host`, on a durability pipeline thread
/// that lives as long as the call.
pub fn lead(cfg: &ZabConfig, host: &dyn ZabHost) -> ZabExit {
    with_host_pipeline(cfg, host, leader::run)
}

/// Follows (or observes, with `cfg.is_observer`) `leader_sid` in interop
/// mode until the role ends; blocks the calling thread.
pub fn follow(cfg: &ZabConfig, host: &dyn ZabHost, leader_sid: i64) -> ZabExit {
    with_host_pipeline(cfg, host, |env| learner::run(env, leader_sid))
}

/// Runs a leading term in `env` (the peer's main loop).
pub(crate) fn run_leader(env: &RoleEnv<'_>) -> ZabExit {
    leader::run(env)
}

/// Runs a following/observing term in `env` (the peer's main loop).
pub(crate) fn run_learner(env: &RoleEnv<'_>, leader_sid: i64) -> ZabExit {
    learner::run(env, leader_sid)
}

/// Epoch writes through a [`ZabHost`].
struct HostSink<'a>(&'a dyn ZabHost);

impl EpochSink for HostSink<'_> {
    fn write_accepted(&self, e: i64) -> Result<(), String> {
        self.0.set_accepted_epoch(e).map_err(|e| e.to_string())
    }
    fn write_current(&self, e: i64) -> Result<(), String> {
        self.0.set_current_epoch(e).map_err(|e| e.to_string())
    }
}

/// Runs `f` with a role environment whose durability pipeline writes the
/// host's epochs (no log store: interop mode).
fn with_host_pipeline(
    cfg: &ZabConfig,
    host: &dyn ZabHost,
    f: impl FnOnce(&RoleEnv<'_>) -> ZabExit,
) -> ZabExit {
    let limiter = LogLimiter::default();
    std::thread::scope(|scope| {
        let (tx, rx) = crossbeam_channel::unbounded();
        let sink = HostSink(host);
        let pipeline = std::thread::Builder::new()
            .name(format!("zab-io-{}", cfg.my_sid))
            .spawn_scoped(scope, move || durable::run(rx, &sink, None));
        if let Err(e) = pipeline {
            return ZabExit::Io(format!("cannot start the durability pipeline thread: {e}"));
        }
        let io = IoHandle::new(tx);
        let env = RoleEnv {
            cfg,
            host,
            mode: crate::zab::Mode::Interop,
            persisted: crate::zab::Persisted {
                accepted_epoch: host.accepted_epoch(),
                current_epoch: host.current_epoch(),
                last_zxid: host.last_zxid(),
            },
            io: &io,
            apply: None,
            requests: None,
            shared: None,
            stop: None,
            resign: None,
            preferred_leader: None,
            limiter: &limiter,
        };
        f(&env)
        // `io` drops here: the pipeline ends and the scope joins it.
    })
}
