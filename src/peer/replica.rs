//! What a store-mode peer shares with its embedder: the [`StateMachine`]
//! contract, the requests the embedding API sends to whichever role runs
//! (`ApiRequest`), how they complete (`Completion`, [`ReplicationError`]),
//! and the figures the roles publish for it ([`ReplicaShared`]).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::logstore::{Entry, LogStore, Snapshot};

/// The embedder's replicated state: zkfle hands it the committed entries of
/// the log, in zxid order, exactly once each, on every peer (leader,
/// followers, observers), from one thread (the peer's apply thread).
///
/// * [`StateMachine::apply`] gets committed entries only: a quorum that
///   includes the leader has them durable, and this peer has them durable
///   too. Never an entry that a later leader could truncate.
/// * [`StateMachine::snapshot`] serialises the state after the last entry
///   applied; zkfle stores it in the [`LogStore`] and compacts the log up to
///   it (every `snapshot_every` entries, see the builder). A learner whose
///   log is older than the leader's compaction point receives it (SNAP).
/// * [`StateMachine::restore`] replaces the whole state with a snapshot: at
///   start, from the store's snapshot, and when a leader sends one.
///
/// The state machine starts empty (or is restored): zkfle rebuilds it from
/// the store's snapshot and the committed entries after it each time the
/// peer starts. Its methods must be deterministic (every peer applies the
/// same entries) and should not block for long: the apply thread also
/// completes `propose` and `read_barrier` calls, after the entries they
/// wait for are applied. For the same reason they must not wait for a
/// `propose`/`read_barrier` of their own peer (the blocking variants would
/// deadlock: the result can only be delivered once `apply` returns).
pub trait StateMachine: Send + 'static {
    /// Applies committed entries, in zxid order (each zxid larger than any
    /// applied or restored before).
    fn apply(&mut self, entries: &[Entry]);

    /// The state after the last applied entry, serialised (any format the
    /// same program's [`StateMachine::restore`] reads).
    fn snapshot(&mut self) -> Bytes;

    /// Replaces the state with `snapshot` (the state after every entry up
    /// to `snapshot.zxid`).
    fn restore(&mut self, snapshot: &Snapshot);
}

/// Boxed state machines are state machines.
impl<S: StateMachine + ?Sized> StateMachine for Box<S> {
    fn apply(&mut self, entries: &[Entry]) {
        (**self).apply(entries)
    }
    fn snapshot(&mut self) -> Bytes {
        (**self).snapshot()
    }
    fn restore(&mut self, snapshot: &Snapshot) {
        (**self).restore(snapshot)
    }
}

/// Why a `propose` or `read_barrier` failed. Each variant says what the
/// caller knows about the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicationError {
    /// This peer does not lead. `leader` is the sid this peer follows or
    /// observes, `None` while an election runs. Nothing was proposed.
    #[error("not the leader{}", match .leader { Some(l) => format!(" (the leader is sid {l})"), None => " (an election is running)".to_string() })]
    NotLeader {
        /// The leader, if known.
        leader: Option<i64>,
    },
    /// This peer leads but its epoch is not established yet (a quorum has
    /// not synchronized with it): nothing was proposed; retry shortly.
    #[error("leading, but the epoch is not established yet")]
    NotEstablished,
    /// The proposal was sent but the leading term ended before it
    /// committed: the next leader decides whether it survives. Read the
    /// state after the next commit to find out.
    #[error("outcome unknown: the leading term ended before the proposal committed")]
    OutcomeUnknown,
    /// The leading term ended before a quorum confirmed the read barrier:
    /// read through the new leader.
    #[error("the leading term ended before the read barrier was confirmed")]
    TermEnded,
    /// The peer was built without a replicated log.
    #[error("this peer replicates no log (build it with PeerBuilder::replicated_log)")]
    NoReplicatedLog,
    /// The entry is larger than one log entry and one quorum packet hold.
    #[error("entry of {len} bytes is larger than the limit of {max}")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The peer is shutting down (or has shut down).
    #[error("the peer has been shut down")]
    Shutdown,
}

impl ReplicationError {
    /// The machine's request error, in the embedder's terms.
    pub(crate) fn from_request(e: crate::zab::RequestError) -> ReplicationError {
        use crate::zab::RequestError as R;
        match e {
            R::NotEstablished => ReplicationError::NotEstablished,
            R::OutcomeUnknown => ReplicationError::OutcomeUnknown,
            R::TermEnded => ReplicationError::TermEnded,
            R::NoReplicatedLog => ReplicationError::NoReplicatedLog,
        }
    }
}

/// The result of `propose` (the committed zxid) or `read_barrier` (the
/// commit zxid the read is at least as new as).
pub type ReplicationResult = Result<i64, ReplicationError>;

/// Where one request's result goes: an async waiter or a blocked thread.
pub(crate) enum Completion {
    /// `propose`/`read_barrier` futures.
    Async(tokio::sync::oneshot::Sender<ReplicationResult>),
    /// The blocking variants.
    Blocking(Sender<ReplicationResult>),
}

impl Completion {
    /// Delivers the result (a waiter that gave up is ignored).
    pub(crate) fn complete(self, r: ReplicationResult) {
        match self {
            Completion::Async(tx) => {
                let _ = tx.send(r);
            }
            Completion::Blocking(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Completion::Async(_) => "Completion::Async",
            Completion::Blocking(_) => "Completion::Blocking",
        })
    }
}

/// A request from the embedding API to the role that runs now.
#[derive(Debug)]
pub(crate) enum ApiRequest {
    /// Replicate `data`.
    Propose { data: Bytes, done: Completion },
    /// A linearizable read point.
    Barrier { done: Completion },
}

impl ApiRequest {
    /// Fails the request (no role can serve it).
    pub(crate) fn fail(self, e: ReplicationError) {
        match self {
            ApiRequest::Propose { done, .. } | ApiRequest::Barrier { done } => {
                done.complete(Err(e))
            }
        }
    }
}

/// Figures the roles publish for the embedder, read without a round trip.
#[derive(Debug)]
pub struct ReplicaShared {
    applied: AtomicI64,
    quorum_confirmed: Mutex<Option<Instant>>,
    lease: Option<Duration>,
}

impl ReplicaShared {
    pub(crate) fn new(lease: Option<Duration>) -> ReplicaShared {
        ReplicaShared {
            applied: AtomicI64::new(0),
            quorum_confirmed: Mutex::new(None),
            lease,
        }
    }

    /// The last zxid the state machine applied (or restored).
    pub fn applied_zxid(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }

    pub(crate) fn set_applied(&self, zxid: i64) {
        self.applied.store(zxid, Ordering::Release);
    }

    /// While leading: when the newest PING round a quorum answered was
    /// sent (see `zab::Leader::quorum_confirmed_at`); `None` otherwise.
    pub fn quorum_confirmed_at(&self) -> Option<Instant> {
        *self.quorum_confirmed.lock()
    }

    pub(crate) fn set_quorum_confirmed(&self, at: Option<Instant>) {
        *self.quorum_confirmed.lock() = at;
    }

    /// The configured read lease, if any.
    pub fn lease(&self) -> Option<Duration> {
        self.lease
    }

    /// `quorum_confirmed_at + lease`, when a lease is configured and this
    /// peer leads.
    pub fn lease_until(&self) -> Option<Instant> {
        Some(self.quorum_confirmed_at()? + self.lease?)
    }
}

/// The parts of a store-mode peer that outlive one `QuorumPeer` instance
/// (`PeerHandle::restart_election` starts a new one over the same store).
pub(crate) struct ReplicaParts {
    pub store: Box<dyn LogStore>,
    pub state_machine: Box<dyn StateMachine>,
    /// The state machine's applied zxid; `None` until it was restored from
    /// the store once.
    pub applied: Option<i64>,
}

/// Everything a store-mode peer is started with: the parts (taken by the
/// running instance, given back when it stops), the request queue, the
/// published figures and the settings.
pub struct Replica {
    pub(crate) parts: Mutex<Option<ReplicaParts>>,
    pub(crate) requests: Receiver<ApiRequest>,
    pub(crate) shared: Arc<ReplicaShared>,
    /// Take a snapshot (and compact) after this many applied entries; 0 =
    /// never.
    pub(crate) snapshot_every: u64,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("snapshot_every", &self.snapshot_every)
            .field("shared", &self.shared)
            .finish()
    }
}

impl Replica {
    /// A replica over `store` and `state_machine`; returns it and the
    /// sender the embedding API queues requests on.
    pub(crate) fn new(
        store: Box<dyn LogStore>,
        state_machine: Box<dyn StateMachine>,
        snapshot_every: u64,
        lease: Option<Duration>,
    ) -> (Arc<Replica>, Sender<ApiRequest>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let r = Replica {
            parts: Mutex::new(Some(ReplicaParts {
                store,
                state_machine,
                applied: None,
            })),
            requests: rx,
            shared: Arc::new(ReplicaShared::new(lease)),
            snapshot_every,
        };
        (Arc::new(r), tx)
    }

    /// The figures published for the embedder.
    pub(crate) fn shared(&self) -> &Arc<ReplicaShared> {
        &self.shared
    }

    /// Fails every queued request (the peer is gone).
    pub(crate) fn fail_queued(&self, e: ReplicationError) {
        while let Ok(r) = self.requests.try_recv() {
            r.fail(e);
        }
    }
}
