//! The quorum connection manager (QCM): ZooKeeper's election-port transport.
//!
//! One TCP connection per remote sid, kept only if the larger sid dialled it
//! (PROTOCOL.md §2.4); a send queue per peer and one shared receive queue,
//! both bounded and dropping the oldest entry (§3.6); the last message written
//! to a peer is re-sent first on a new connection when nothing is queued.
//!
//! Establishment (accept, dial, handshake read, tie-break) runs on a small
//! tokio runtime owned by the [`Qcm`], so one slow or hostile connection never
//! holds up another (PROTOCOL.md §8 R1/R2: ZooKeeper reads handshakes in its
//! accept thread and stalls every peer behind a 3-byte handshake). Once a
//! connection is established its socket is handed to two plain OS threads,
//! a SendWorker and a RecvWorker, which move fixed 40-byte notification
//! buffers through bounded drop-oldest queues (DESIGN.md "Threads, tasks and
//! queues"): the shared receive queue is a crossbeam channel (its receiver
//! is this API), each peer's send queue a locked deque taken a batch at a
//! time. Each hop hands on a whole batch with one wake: the RecvWorker all
//! frames of a read, the election loop a run of replies to one peer
//! ([`Qcm::send_many`]), the SendWorker everything queued in one write.

//!
//! Files: [`config`](QcmConfig) (settings and the handshake), `links` (the
//! link table and the events its transitions emit), `stats` (counters and
//! rate-limited warnings), `establish` (accept, dial, tie-break), `worker`
//! (the per-link threads), `queue` (drop-oldest queues); this file is the
//! [`Qcm`] facade.
//!
//! The QCM reports *facts* about links ([`PeerEvent`]): a link came up, a
//! link closed, a dial attempt failed and how. It keeps no opinion about
//! whether a peer is "down"; that is the election driver's business
//! (`crate::election::Driver`), and this module imports nothing from
//! `election`.

mod addrs;
mod config;
mod establish;
mod links;
mod queue;
mod secure;
mod stats;
mod worker;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use parking_lot::Mutex;

/// The handshake generation a QCM sends (re-exported from [`crate::wire`]).
pub use crate::wire::HandshakeFormat;
pub use config::{
    QcmConfig, DEFAULT_CNX_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_STRANGERS,
    DEFAULT_RECV_QUEUE_CAPACITY, DEFAULT_SEND_QUEUE_CAPACITY,
};
pub use links::LinkListener;
pub use stats::QcmStats;

use crate::wire::Notification;
use links::{PeerSlot, Shared};
use queue::DropOldest;
use stats::{bump, Counters, LogLimits};

/// Handshakes being read at once; beyond this new connections are closed at
/// once, which bounds the memory a connect flood can pin.
const MAX_PENDING_HANDSHAKES: usize = 1024;

/// One notification taken off the shared receive queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The sid of the connection's handshake (bodies carry no sender id).
    pub sid: i64,
    /// The decoded notification.
    pub notification: Notification,
}

/// A fact about a configured peer's election link. Strangers emit nothing.
///
/// Events for one sid are emitted under that sid's link lock, so their
/// order is the order in which its link changed: `LinkUp` and `LinkClosed`
/// alternate, and a `DialFailed` is only emitted while no link is up.
/// Replacing a live link by a newer one emits nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerEvent {
    /// A link to this sid is up; it had none.
    LinkUp(i64),
    /// The link to this sid closed; it has none now.
    LinkClosed(i64),
    /// One dial attempt to this sid failed and it has no link. Reported for
    /// every failed attempt of a dial loop (whose backoff bounds the rate).
    DialFailed {
        /// The peer.
        sid: i64,
        /// How the attempt failed.
        failure: DialFailure,
    },
}

/// How a dial attempt (one pass over a peer's configured addresses) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialFailure {
    /// Every address refused the connection: nothing listens there.
    Refused,
    /// Every address refused or timed out (`cnx_timeout`), at least one
    /// timed out.
    TimedOut,
    /// Anything else on some address: host or network unreachable, the
    /// handshake could not be written, the link could not be installed.
    Other,
}

/// Errors starting the QCM.
#[derive(Debug, thiserror::Error)]
pub enum CnxError {
    /// An election address could not be bound after `bind_retry` attempts.
    #[error("cannot bind election address {addr} after {attempts} attempts: {source}")]
    Bind {
        /// The election address that could not be bound.
        addr: SocketAddr,
        /// How many binds were tried (1 s apart).
        attempts: u32,
        /// The last bind error.
        #[source]
        source: std::io::Error,
    },
    /// This server's election address is a host name that did not resolve
    /// in `bind_retry` attempts.
    #[error(
        "cannot resolve this server's election address {addr} after {attempts} attempts: {source}"
    )]
    Unresolvable {
        /// The election address as configured.
        addr: crate::net::HostPort,
        /// How many lookups were tried (1 s apart).
        attempts: u32,
        /// The last lookup's failure.
        #[source]
        source: crate::net::ResolveError,
    },
    /// No listen address was configured.
    #[error("no election address to listen on")]
    NoListenAddress,
    /// The establishment runtime could not be built.
    #[error("cannot start the connection runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// The quorum connection manager. Cheap to clone; every clone drives the
/// same connections. Dropping the last clone shuts it down.
#[derive(Clone)]
pub struct Qcm {
    owner: Arc<Owner>,
}

impl fmt::Debug for Qcm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qcm")
            .field("my_sid", &self.owner.shared.cfg.my_sid)
            .field("local_addrs", &self.owner.shared.local_addrs)
            .finish()
    }
}

/// Holds the runtime; tasks and workers only hold [`Shared`], so the runtime
/// is never dropped from inside itself.
struct Owner {
    shared: Arc<Shared>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        shutdown_owner(self);
    }
}

impl Qcm {
    /// Resolves and binds every listen address (retrying per `bind_retry`,
    /// 1 s apart) and starts the establishment runtime. Dials nothing until
    /// asked to.
    pub fn start(mut cfg: QcmConfig) -> Result<Qcm, CnxError> {
        if cfg.listen_addrs.is_empty() {
            return Err(CnxError::NoListenAddress);
        }
        cfg.peers.remove(&cfg.my_sid);
        let mut listeners = Vec::new();
        let mut configured = Vec::new();
        for hp in &cfg.listen_addrs {
            let (l, addr) = establish::bind_with_retry(
                hp,
                cfg.listen_on_all_ips,
                cfg.bind_retry,
                &*cfg.resolver,
            )?;
            listeners.push(l);
            configured.push(addr);
        }
        let local_addrs: Vec<SocketAddr> = listeners
            .iter()
            .zip(&configured)
            .map(|(l, a)| l.local_addr().unwrap_or(*a))
            .collect();
        if cfg.advertised_addrs.is_empty() {
            // Our addresses as resolved now, numeric (PROTOCOL.md §2.2).
            cfg.advertised_addrs = configured;
        }
        // An advertised address with port 0 means "the port we got".
        for a in cfg.advertised_addrs.iter_mut() {
            if a.port() == 0 {
                if let Some(l) = local_addrs
                    .iter()
                    .find(|l| l.ip() == a.ip())
                    .or(local_addrs.first())
                {
                    a.set_port(l.port());
                }
            }
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("qcm{}-rt", cfg.my_sid))
            .enable_all()
            .build()
            .map_err(CnxError::Runtime)?;
        let slots = cfg
            .peers
            .iter()
            .map(|(&sid, endpoints)| {
                (
                    sid,
                    Arc::new(PeerSlot::new(
                        sid,
                        true,
                        endpoints.clone(),
                        cfg.send_queue_capacity,
                    )),
                )
            })
            .collect();
        let shared = Arc::new(Shared {
            handshake: config::encode_handshake(&cfg, &local_addrs),
            handle: runtime.handle().clone(),
            local_addrs,
            slots: Mutex::new(slots),
            recv: DropOldest::new(cfg.recv_queue_capacity),
            events: crossbeam_channel::unbounded(),
            counters: Counters::default(),
            shutting_down: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            next_link_id: AtomicU64::new(1),
            pending_handshakes: AtomicUsize::new(0),
            limits: LogLimits::new(),
            link_listener: Mutex::new(None),
            input_waker: Mutex::new(None),
            cfg,
        });
        for listener in listeners {
            establish::spawn_listener(&shared, listener)?;
        }
        log::info!(
            "election listener for sid {} on {:?}",
            shared.my_sid(),
            shared.local_addrs
        );
        Ok(Qcm {
            owner: Arc::new(Owner {
                shared,
                runtime: Mutex::new(Some(runtime)),
            }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.owner.shared
    }

    /// This server's sid.
    pub fn my_sid(&self) -> i64 {
        self.shared().my_sid()
    }

    /// The addresses actually bound (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.shared().local_addrs.clone()
    }

    /// Queues `n` for `sid` and returns at once.
    ///
    /// * own sid: straight into the receive queue (each server counts its
    ///   own vote);
    /// * configured sid: queued (the oldest entry is dropped when full), and
    ///   a dial (or, for a larger sid, a call-back prompt) starts if there is
    ///   no link;
    /// * stranger: sent only over its live connection, else dropped.
    pub fn send(&self, sid: i64, n: &Notification) {
        self.send_many(sid, std::slice::from_ref(n));
    }

    /// [`Qcm::send`] for several notifications to one `sid`, in order, with
    /// one slot lookup, one lock of each kind and one wake-up of the
    /// SendWorker. Woken after the first of a run, the SendWorker would
    /// write that one alone and come back for the rest; woken once, it
    /// writes the run in one syscall.
    pub fn send_many(&self, sid: i64, notifications: &[Notification]) {
        if notifications.is_empty() {
            return;
        }
        let sh = self.shared();
        if sid == sh.my_sid() {
            for n in notifications {
                sh.deliver(sid, *n);
            }
            return;
        }
        let Some(slot) = sh.slot(sid) else {
            bump(&sh.counters.dropped_unroutable, notifications.len() as u64);
            log::debug!("no route to sid {sid}: notification dropped");
            return;
        };
        let (dropped, superseded) = slot.enqueue_many(notifications, sh.cfg.coalesce_superseded);
        if dropped > 0 {
            bump(&sh.counters.dropped_send_queue, dropped);
        }
        if superseded > 0 {
            bump(&sh.counters.superseded, superseded);
        }
        let up = {
            let link = slot.link.lock();
            if let Some(l) = link.as_ref() {
                l.wake_sender();
            }
            link.is_some()
        };
        if slot.configured && !up {
            establish::connect(sh, &slot, false);
        } else if !slot.configured && !up {
            // The stranger left between the lookup and the push.
            slot.queue.clear();
            bump(&sh.counters.dropped_unroutable, notifications.len() as u64);
        }
    }

    /// [`Qcm::send`], unless something is still queued for `sid`: then
    /// nothing is sent and `false` is returned. This is the election's
    /// poll-timeout resend: a message still queued for a peer already
    /// carries the current proposal (every change of the proposal is sent
    /// at once), so a resend would only queue a duplicate behind it. The
    /// check is made here, against the queue at the moment of sending,
    /// rather than by the election from an earlier snapshot; the
    /// SendWorker only ever removes from the queue, so a message it takes
    /// between the check and the push has simply been written.
    pub fn send_if_idle(&self, sid: i64, n: &Notification) -> bool {
        if let Some(slot) = self.shared().slot(sid) {
            if slot.queue.len() > 0 {
                return false;
            }
        }
        self.send(sid, n);
        true
    }

    /// The shared receive queue. Every clone of the receiver draws from the
    /// same queue.
    pub fn receiver(&self) -> Receiver<Received> {
        self.shared().recv.receiver().clone()
    }

    /// Establishes a link to a configured `sid` if there is none: dials a
    /// smaller sid; for a larger sid writes our handshake and closes, which
    /// makes it dial back (it keeps only connections it dialled). Never
    /// touches a live link (R13). Returns at once.
    pub fn connect_one(&self, sid: i64) {
        let sh = self.shared();
        if let Some(slot) = sh.slot(sid) {
            if slot.configured && !slot.is_up() {
                establish::connect(sh, &slot, false);
            }
        }
    }

    /// [`Qcm::connect_one`] for every configured peer.
    pub fn connect_all(&self) {
        for sid in self.shared().cfg.peers.keys() {
            self.connect_one(*sid);
        }
    }

    /// True if a link to `sid` is live right now. A snapshot for
    /// monitoring and tests; the election follows [`Qcm::peer_events`]
    /// instead, whose order this snapshot may be ahead of.
    pub fn is_connected(&self, sid: i64) -> bool {
        self.shared().slot(sid).is_some_and(|slot| slot.is_up())
    }

    /// True if notifications for `sid` are queued and not yet handed to the
    /// socket.
    pub fn has_pending(&self, sid: i64) -> bool {
        self.shared()
            .slot(sid)
            .is_some_and(|slot| slot.queue.len() > 0)
    }

    /// Configured peers with a live link, ascending.
    pub fn connected_peers(&self) -> Vec<i64> {
        self.shared().connected_peers()
    }

    /// Installs the listener told the connected peers whenever a
    /// configured peer's link comes up or goes down (replacing any earlier
    /// one), and calls it at once with the current set, so it misses
    /// nothing. It runs on the connection's thread, with no slot or link
    /// lock held: it must be quick and must not call back into the QCM's
    /// listener. Unlike [`Qcm::peer_events`], whose queue belongs to the
    /// election layer, it is meant for the embedding API's published state.
    pub fn set_link_listener(&self, listener: LinkListener) {
        let sh = self.shared();
        let mut slot = sh.link_listener.lock();
        listener(&sh.connected_peers());
        *slot = Some(listener);
    }

    /// Sids in no configuration with a live link, ascending.
    pub fn connected_strangers(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self
            .shared()
            .slots
            .lock()
            .values()
            .filter(|s| !s.configured && s.is_up())
            .map(|s| s.sid)
            .collect();
        v.sort_unstable();
        v
    }

    /// Unparks `thread` (`Thread::unpark`) after every notification put
    /// on the receive queue and every [`PeerEvent`], replacing any earlier
    /// waker. A consumer of both queues can then drain them with
    /// `try_recv` and sleep with `std::thread::park_timeout` when both are
    /// empty: `unpark` before `park` makes the `park` return at once, so no
    /// wake is lost. A blocking crossbeam receive or `select!` spins and
    /// calls `sched_yield` up to eight times each time it waits, which on a
    /// busy machine costs more than the notification it waits for.
    pub fn set_input_waker(&self, thread: std::thread::Thread) {
        *self.shared().input_waker.lock() = Some(thread);
    }

    /// Link facts for configured peers ([`PeerEvent`]), in the order each
    /// sid's link changed. Every clone of the receiver draws from the same
    /// queue. It is unbounded so that no fact is ever lost (the election
    /// derives its view of every link from them): a QCM whose events nobody
    /// reads keeps one small entry per link change.
    pub fn peer_events(&self) -> Receiver<PeerEvent> {
        self.shared().events.1.clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> QcmStats {
        self.shared().counters.snapshot()
    }

    /// Closes the listeners and every connection and joins every thread.
    /// Queued notifications are discarded. Idempotent; also run when the
    /// last clone is dropped.
    pub fn shutdown(&self) {
        shutdown_owner(&self.owner);
    }
}

/// Shuts a private runtime down and waits (up to `timeout`) for its
/// threads, from any context. Tokio panics ("Cannot drop a runtime in a
/// context where blocking is not allowed") when a runtime is shut down or
/// dropped on a thread that runs async code, and an embedder may well
/// stop zkfle from its own runtime's worker; there the wait happens on a
/// helper thread, which the caller joins.
pub(crate) fn shutdown_runtime(rt: tokio::runtime::Runtime, timeout: Duration) {
    if tokio::runtime::Handle::try_current().is_err() {
        rt.shutdown_timeout(timeout);
        return;
    }
    // The runtime is sent only once the thread exists: a failed spawn
    // would drop a runtime moved into its closure right here.
    let (tx, rx) = std::sync::mpsc::channel::<tokio::runtime::Runtime>();
    let spawned = std::thread::Builder::new()
        .name("zkfle-rt-stop".into())
        .spawn(move || {
            if let Ok(rt) = rx.recv() {
                rt.shutdown_timeout(timeout);
            }
        });
    match spawned {
        Ok(h) => {
            let _ = tx.send(rt);
            let _ = h.join();
        }
        Err(e) => {
            // Never blocks, never panics; its threads stop on their own.
            log::warn!("cannot spawn a thread to stop a runtime ({e}); not waiting for it");
            rt.shutdown_background();
        }
    }
}

fn shutdown_owner(owner: &Owner) {
    let shared = &owner.shared;
    {
        let _slots = shared.slots.lock();
        shared.shutting_down.store(true, Ordering::Release);
    }
    if let Some(rt) = owner.runtime.lock().take() {
        shutdown_runtime(rt, Duration::from_secs(2));
    }
    let slots: Vec<Arc<PeerSlot>> = shared.slots.lock().values().cloned().collect();
    for slot in slots {
        let link = slot.link.lock().take();
        if let Some(link) = link {
            link.close();
        }
    }
    loop {
        let handles = std::mem::take(&mut *shared.threads.lock());
        if handles.is_empty() {
            break;
        }
        for h in handles {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn no_listen_address_is_an_error() {
        let c = QcmConfig::new(1, vec![], BTreeMap::new());
        assert!(matches!(Qcm::start(c), Err(CnxError::NoListenAddress)));
    }
}
