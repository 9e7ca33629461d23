//! What the leader and learner role threads share: their input channel's
//! message type, the environment a role runs in, and the loop plumbing
//! (the clock, the wait until the machine's deadline, stop requests,
//! request routing, per-connection send batches).
//!
//! # Threads and queues of one role
//!
//! ```text
//!   reader thread (per connection) ─┐ decoded packets, EOF
//!   acceptor / connect threads ─────┤ new connections
//!   durability pipeline (1/peer) ───┤ completions            ┌─► writer thread (per conn):
//!                                   ▼                        │   queue → one write_all
//!   API requests ──────────────► ROLE THREAD (owns the machine) ─► pipeline: epochs, LogStore
//!   stop signal ───────────────►   select(inputs, requests,  └─► apply thread: Deliver,
//!                                         stop, deadline)          FromLog, completions
//! ```
//!
//! The role thread never blocks on a socket, a disk or the embedder: it
//! feeds each input to the machine and executes the returned actions in
//! order (sends are queued per connection and handed to the writers once
//! per loop turn, so a burst becomes one write).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::conn::{ConnEvent, Overflow, WriteQueue};
use super::net::Closer;
use super::{ZabConfig, ZabHost};
use crate::peer::apply::ApplyMsg;
use crate::peer::durable::{FromIo, IoDone, IoMsg, IoOp, Ticket};
use crate::peer::replica::{ApiRequest, ReplicaShared, ReplicationError};
use crate::zab::{self, ConnId, Mode, Packet, Persisted};

/// Most inputs handled per loop turn before the batched sends go out.
pub(super) const TURN: usize = 256;

/// How often a role polls [`ZabHost::stopping`] when it has no stop
/// channel (the test hosts).
const STOP_POLL: Duration = Duration::from_millis(20);

/// An input for a role thread.
pub(crate) enum RoleIn {
    /// A connection's reader or writer reports.
    Conn(ConnId, ConnEvent),
    /// Leader: a learner connection was accepted.
    Accepted {
        conn: ConnId,
        queue: Arc<WriteQueue>,
        closer: Closer,
    },
    /// Learner: the dial succeeded.
    Connected {
        queue: Arc<WriteQueue>,
        closer: Closer,
        peer: SocketAddr,
    },
    /// Learner: the dial failed (the text names the address).
    ConnectFailed(String),
    /// A completion from the durability pipeline.
    Io(IoDone),
}

impl FromIo for RoleIn {
    fn from_io(done: IoDone) -> Self {
        RoleIn::Io(done)
    }
}

/// The embedder asks the leader to give its leadership up
/// (`PeerHandle::resign`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResignRequest {
    /// The epoch of the leadership meant (`None`: whichever runs). A
    /// request for an earlier term is dropped, so a resignation that
    /// arrives late never ends a later leadership.
    pub epoch: Option<i64>,
    /// How long the peer then does not stand for leader.
    pub hold_off: Duration,
}

/// A role's handle on the durability pipeline.
#[derive(Clone)]
pub(crate) struct IoHandle {
    pub tx: Sender<IoMsg<RoleIn>>,
    /// Role requests queued and not yet done ([`Ticket`]).
    pub outstanding: Arc<AtomicUsize>,
}

impl IoHandle {
    /// A handle on the pipeline fed by `tx`.
    pub(crate) fn new(tx: Sender<IoMsg<RoleIn>>) -> IoHandle {
        IoHandle {
            tx,
            outstanding: Arc::default(),
        }
    }

    /// No role request is queued or running: every write a role asked for
    /// is done and visible (the pipeline releases a request's count only
    /// after it completed). Lets the peer skip [`IoHandle::sync`]'s round
    /// trip — two thread wake-ups, tens of milliseconds on a loaded machine
    /// (issue 18: 55–150 ms of a voter's failover with 50 observers).
    pub(crate) fn idle(&self) -> bool {
        self.outstanding.load(Ordering::Acquire) == 0
    }

    /// Every earlier request is done; the log's last durable zxid (`None`
    /// without a store, or if the pipeline is gone).
    pub(crate) fn sync(&self) -> Option<i64> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.tx.send(IoMsg::Sync { reply: tx }).ok()?;
        rx.recv().ok().flatten()
    }
}

/// Rate-limits a log line per key (a store-mode peer that keeps refusing a
/// Java leader would otherwise log the same error at every election).
#[derive(Debug, Default)]
pub(crate) struct LogLimiter {
    last: parking_lot::Mutex<BTreeMap<String, Instant>>,
}

impl LogLimiter {
    /// True if a line with `key` may be logged now (at most once per
    /// `every`).
    pub(crate) fn allow(&self, key: &str, every: Duration) -> bool {
        let mut last = self.last.lock();
        let now = Instant::now();
        match last.get(key) {
            Some(t) if now.duration_since(*t) < every => false,
            _ => {
                last.insert(key.to_string(), now);
                true
            }
        }
    }
}

/// Everything a role runs with.
pub(crate) struct RoleEnv<'a> {
    pub cfg: &'a ZabConfig,
    pub host: &'a dyn ZabHost,
    pub mode: Mode,
    /// The durable state the role starts from.
    pub persisted: Persisted,
    pub io: &'a IoHandle,
    /// Store mode: the apply thread's queue.
    pub apply: Option<&'a Sender<ApplyMsg>>,
    /// Store mode: requests from the embedding API.
    pub requests: Option<&'a Receiver<ApiRequest>>,
    /// Store mode: figures published for the embedder.
    pub shared: Option<&'a ReplicaShared>,
    /// Closed (or sent to) when the peer stops; `None`: poll the host.
    pub stop: Option<&'a Receiver<()>>,
    /// Resignation requests from the embedder (a learner drops them).
    pub resign: Option<&'a Receiver<ResignRequest>>,
    /// `zkfle.preferredLeader` (the leader hands off to it).
    pub preferred_leader: Option<i64>,
    pub limiter: &'a LogLimiter,
}

impl RoleEnv<'_> {
    /// The machines' view of the configuration.
    pub(super) fn zab_config(&self) -> zab::ZabConfig {
        zab::ZabConfig {
            my_sid: self.cfg.my_sid,
            tick_time: self.cfg.tick_time,
            init_limit: self.cfg.init_limit,
            sync_limit: self.cfg.sync_limit,
            verifier: self.cfg.verifier.clone(),
            servers: self.cfg.quorum_addrs.keys().copied().collect(),
            config_text: self.cfg.config_text.clone(),
            mode: self.mode,
        }
    }

    /// Queues a write or read on the pipeline; its completion comes back on
    /// `reply`.
    pub(super) fn submit(&self, op: IoOp, reply: &Sender<RoleIn>) {
        let msg = IoMsg::Role {
            op,
            reply: reply.clone(),
            ticket: Ticket::new(&self.io.outstanding),
        };
        if self.io.tx.send(msg).is_err() {
            // The pipeline is gone (the peer is stopping): the role will be
            // told to stop too; nothing to complete.
            log::debug!("durability pipeline gone; request dropped");
        }
    }

    /// Queues work for the apply thread (store mode).
    pub(super) fn to_apply(&self, msg: ApplyMsg) {
        match self.apply {
            Some(tx) => {
                if let Err(e) = tx.send(msg) {
                    // Shutting down: complete what waits, drop the rest.
                    if let ApplyMsg::Complete(done, r) = e.into_inner() {
                        done.complete(r.and(Err(ReplicationError::Shutdown)));
                    }
                }
            }
            None => {
                if let ApplyMsg::Complete(done, r) = msg {
                    done.complete(r);
                }
            }
        }
    }
}

/// What one loop turn got.
pub(super) enum Wake {
    Input(RoleIn),
    Request(ApiRequest),
    Resign(ResignRequest),
    Stop,
    Timer,
}

/// The role's clock: the machines' time is the `Duration` since the role
/// started.
pub(super) struct Clock {
    base: Instant,
}

impl Clock {
    pub(super) fn new() -> Clock {
        Clock {
            base: Instant::now(),
        }
    }
    pub(super) fn now(&self) -> Duration {
        self.base.elapsed()
    }
    pub(super) fn instant(&self, at: Duration) -> Instant {
        self.base + at
    }
}

/// Waits for the next input, request, stop or the machine's deadline.
pub(super) fn wait(
    env: &RoleEnv<'_>,
    inputs: &Receiver<RoleIn>,
    clock: &Clock,
    deadline: Option<Duration>,
) -> Wake {
    let never_requests = crossbeam_channel::never();
    let never_stop = crossbeam_channel::never();
    let never_resign = crossbeam_channel::never();
    let resign = env.resign.unwrap_or(&never_resign);
    let requests = env.requests.unwrap_or(&never_requests);
    let stop = env.stop.unwrap_or(&never_stop);
    let now = clock.now();
    let mut timeout = deadline.map_or(Duration::from_secs(3600), |d| d.saturating_sub(now));
    if env.stop.is_none() {
        if env.host.stopping() {
            return Wake::Stop;
        }
        timeout = timeout.min(STOP_POLL);
    }
    if timeout.is_zero() {
        return Wake::Timer;
    }
    crossbeam_channel::select! {
        recv(inputs) -> m => match m {
            Ok(m) => Wake::Input(m),
            // The role holds a sender itself: never closed while it runs.
            Err(_) => Wake::Stop,
        },
        recv(requests) -> r => match r {
            Ok(r) => Wake::Request(r),
            Err(_) => Wake::Timer,
        },
        recv(stop) -> _ => Wake::Stop,
        recv(resign) -> r => match r {
            Ok(r) => Wake::Resign(r),
            Err(_) => Wake::Timer,
        },
        default(timeout) => Wake::Timer,
    }
}

/// Sends queued during one loop turn, per connection, in order.
#[derive(Default)]
pub(super) struct SendBatch {
    pending: BTreeMap<ConnId, Vec<Packet>>,
}

impl SendBatch {
    pub(super) fn push(&mut self, conn: ConnId, p: Packet) {
        self.pending.entry(conn).or_default().push(p);
    }

    /// Forgets what was queued for a connection that is being closed.
    pub(super) fn discard(&mut self, conn: ConnId) {
        self.pending.remove(&conn);
    }

    /// Hands each connection's packets to its writer; returns the
    /// connections whose queue overflowed (to be closed).
    pub(super) fn flush(
        &mut self,
        queue_of: impl Fn(ConnId) -> Option<Arc<WriteQueue>>,
    ) -> Vec<(ConnId, Overflow)> {
        let mut overflowed = Vec::new();
        for (conn, packets) in std::mem::take(&mut self.pending) {
            if let Some(q) = queue_of(conn) {
                if let Err(o) = q.push(packets) {
                    overflowed.push((conn, o));
                }
            }
        }
        overflowed
    }
}

/// Spawns a named thread; logs (and returns `None`) if the OS refuses.
pub(super) fn spawn(
    name: String,
    f: impl FnOnce() + Send + 'static,
) -> Option<std::thread::JoinHandle<()>> {
    match std::thread::Builder::new().name(name.clone()).spawn(f) {
        Ok(h) => Some(h),
        Err(e) => {
            log::warn!("cannot start thread {name}: {e}");
            None
        }
    }
}
