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
//! buffers through crossbeam-channel queues (DESIGN.md "Threads, tasks and
//! queues").

mod establish;
mod queue;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

/// The handshake generation a QCM sends (re-exported from [`crate::wire`]).
pub use crate::wire::HandshakeFormat;
use crate::wire::{Handshake, Notification, PeerAddress, NOTIFICATION_LEN};

use queue::DropOldest;

/// ZooKeeper's default `cnxTimeout`.
pub const DEFAULT_CNX_TIMEOUT: Duration = Duration::from_secs(5);
/// ZooKeeper's handshake read timeout with its defaults (tickTime 2000 ×
/// syncLimit 5).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default per-peer send queue: large enough that a peer answering a
/// window-64 benchmark never drops a reply (PROTOCOL.md §8 R11), unlike
/// ZooKeeper's single slot.
pub const DEFAULT_SEND_QUEUE_CAPACITY: usize = 256;
/// Default shared receive queue (ZooKeeper: 100).
pub const DEFAULT_RECV_QUEUE_CAPACITY: usize = 1024;
/// Default bound on simultaneous connections from sids in no configuration
/// (PROTOCOL.md §8 R9).
pub const DEFAULT_MAX_STRANGERS: usize = 16;

/// Handshakes being read at once; beyond this new connections are closed at
/// once, which bounds the memory a connect flood can pin.
const MAX_PENDING_HANDSHAKES: usize = 1024;
/// Capacity of the peer event queue (drop-oldest, like the others).
const EVENT_QUEUE_CAPACITY: usize = 1024;

/// Everything the QCM needs to know; built by the peer from `zoo.cfg`.
#[derive(Debug, Clone)]
pub struct QcmConfig {
    /// This server's sid.
    pub my_sid: i64,
    /// Election addresses to bind (`quorumListenOnAllIPs` already applied by
    /// the caller).
    pub listen_addrs: Vec<SocketAddr>,
    /// Addresses sent in our handshake: the configured, non-wildcard
    /// election addresses (PROTOCOL.md §2.2).
    pub advertised_addrs: Vec<SocketAddr>,
    /// Every configured server except this one (voters and observers) and
    /// its election addresses. Only these are ever dialled.
    pub peers: BTreeMap<i64, Vec<SocketAddr>>,
    /// Handshake we send: V1 by default, V2 with `multiAddress.enabled`.
    pub handshake_format: HandshakeFormat,
    /// Dial timeout (`cnxTimeout`).
    pub cnx_timeout: Duration,
    /// Deadline for reading an inbound handshake, per connection.
    pub handshake_timeout: Duration,
    /// `electionPortBindRetry`: consecutive bind failures tolerated per
    /// listen address, 1 s apart; 0 retries forever.
    pub bind_retry: u32,
    /// Per-peer send queue capacity (drop-oldest).
    pub send_queue_capacity: usize,
    /// Shared receive queue capacity (drop-oldest).
    pub recv_queue_capacity: usize,
    /// Simultaneous connections accepted from sids in no configuration.
    pub max_strangers: usize,
}

impl QcmConfig {
    /// A configuration with ZooKeeper's timeouts and zkfle's queue defaults.
    /// The advertised addresses default to `listen`.
    pub fn new(
        my_sid: i64,
        listen: Vec<SocketAddr>,
        peers: BTreeMap<i64, Vec<SocketAddr>>,
    ) -> Self {
        QcmConfig {
            my_sid,
            advertised_addrs: listen.clone(),
            listen_addrs: listen,
            peers,
            handshake_format: HandshakeFormat::V1,
            cnx_timeout: DEFAULT_CNX_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            bind_retry: 3,
            send_queue_capacity: DEFAULT_SEND_QUEUE_CAPACITY,
            recv_queue_capacity: DEFAULT_RECV_QUEUE_CAPACITY,
            max_strangers: DEFAULT_MAX_STRANGERS,
        }
    }

    /// ZooKeeper's queue semantics: one send slot per peer, 100 receive
    /// slots (PROTOCOL.md §3.6). For side-by-side benchmarks.
    pub fn zookeeper_queues(mut self) -> Self {
        self.send_queue_capacity = 1;
        self.recv_queue_capacity = 100;
        self
    }
}

/// One notification taken off the shared receive queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The sid of the connection's handshake (bodies carry no sender id).
    pub sid: i64,
    /// The decoded notification.
    pub notification: Notification,
}

/// A configured peer's election link came up or went down. Replacing a live
/// link by a newer one emits nothing; strangers emit nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerEvent {
    /// A link to this sid is now live.
    Up(i64),
    /// The last link to this sid closed.
    Down(i64),
    /// A dial to this configured sid failed (refused, unreachable, timed
    /// out), it has no link, and it had one before: it is gone, not merely
    /// not started yet. Sent after every failed attempt of a dial loop,
    /// whose backoff bounds the rate: the election needs to hear at once
    /// that a voter is gone, so a failover need not sit out finalizeWait
    /// for it (`FleConfig::fast_decide` rule (b)).
    Unreachable(i64),
}

/// The state of the election link to one sid: the election state machine's
/// own type, so the peer loop hands [`Qcm::link_state`] straight to
/// [`crate::election::Fle::set_link`]. `Connecting` covers a dial in
/// progress and, for a larger sid, a call-back we prompted.
pub use crate::election::LinkState;

/// A snapshot of the QCM's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QcmStats {
    /// Notification frames written (re-sends included).
    pub notifications_sent: u64,
    /// Notifications decoded and queued for the election layer (own-sid
    /// loopback included).
    pub notifications_received: u64,
    /// Frames with a bad length (connection closed) or an undecodable body
    /// (dropped, connection kept).
    pub bad_frames: u64,
    /// Inbound handshakes that were malformed or did not arrive in time.
    pub bad_handshakes: u64,
    /// Notifications evicted from a full send queue.
    pub dropped_send_queue: u64,
    /// Notifications evicted from the full receive queue.
    pub dropped_recv_queue: u64,
    /// Notifications for a sid with no way to reach it (a stranger without
    /// a live connection or an unknown sid).
    pub dropped_unroutable: u64,
    /// TCP connections accepted on the election listeners.
    pub connections_accepted: u64,
    /// Outbound connections on which our handshake was written.
    pub connections_dialled: u64,
    /// Outbound connection attempts that failed or timed out.
    pub dial_failures: u64,
    /// Links handed to workers (inbound or outbound).
    pub links_established: u64,
    /// Links closed (by either side, replaced, or on a bad frame).
    pub links_closed: u64,
    /// Inbound handshakes naming our own sid (closed, R5).
    pub own_sid_rejected: u64,
    /// Inbound handshakes from a sid in no configuration and below ours
    /// (closed, never dialled back, R4).
    pub unknown_low_sid_rejected: u64,
    /// Strangers refused because `max_strangers` were connected (R9).
    pub strangers_rejected: u64,
    /// Connections claiming a live configured sid from another host (R8).
    pub impostors_rejected: u64,
    /// Lower sids that dialled in and were dialled back (tie-break).
    pub dial_backs: u64,
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

/// State shared by the API, the tokio tasks and the worker threads.
pub(crate) struct Shared {
    pub(crate) cfg: QcmConfig,
    pub(crate) handle: tokio::runtime::Handle,
    pub(crate) local_addrs: Vec<SocketAddr>,
    /// Our encoded handshake, written in one call on every dial.
    pub(crate) handshake: Vec<u8>,
    /// Configured peers (created at start, never removed) and live
    /// strangers (removed when their link closes).
    pub(crate) slots: Mutex<HashMap<i64, Arc<PeerSlot>>>,
    pub(crate) recv: DropOldest<Received>,
    pub(crate) events: DropOldest<PeerEvent>,
    pub(crate) counters: Counters,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) next_link_id: AtomicU64,
    pub(crate) pending_handshakes: AtomicUsize,
    pub(crate) limits: LogLimits,
    /// Told the connected peers on every Up/Down; held across the count
    /// and the call so calls are ordered and each carries the newest set.
    pub(crate) link_listener: Mutex<Option<LinkListener>>,
}

/// Told the configured peers with a live election link (ascending) each
/// time one comes up or goes down; see [`Qcm::set_link_listener`].
pub type LinkListener = Arc<dyn Fn(&[i64]) + Send + Sync>;

/// Per-sid state that outlives connections: the send queue, the last
/// message written, and the current link.
pub(crate) struct PeerSlot {
    pub(crate) sid: i64,
    /// In the configuration (dialled, reported in events) or a stranger.
    pub(crate) configured: bool,
    /// Configured election addresses (empty for strangers).
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) queue: DropOldest<[u8; NOTIFICATION_LEN]>,
    pub(crate) last_sent: Mutex<Option<[u8; NOTIFICATION_LEN]>>,
    pub(crate) link: Mutex<Option<Link>>,
    /// A dial loop runs for this sid.
    pub(crate) connecting: AtomicBool,
    /// A lower sid dialled in: dial it back even though a link is live.
    pub(crate) redial: AtomicBool,
    /// Cuts a dial loop's backoff short: a lower sid that dials in is up
    /// now, and waiting out a backoff begun while it was down would leave
    /// it deciding without our vote (a Java peer finalizes in 200 ms).
    pub(crate) wake: tokio::sync::Notify,
    /// The latest dial attempt reached no address. Until a link comes up the
    /// sid reports [`LinkState::Down`] even while its dial loop retries, but
    /// only once it had a link ([`PeerSlot::ever_up`]).
    pub(crate) dial_failed: AtomicBool,
    /// A link to this sid was up at some point. A refused dial to a peer we
    /// never reached says only that it has not started yet (a cold start
    /// launches peers a few milliseconds apart, and it may hold the best
    /// vote); a refused dial to a peer whose link we lost says it is gone.
    pub(crate) ever_up: AtomicBool,
}

impl PeerSlot {
    fn new(sid: i64, configured: bool, addrs: Vec<SocketAddr>, capacity: usize) -> Self {
        PeerSlot {
            sid,
            configured,
            addrs,
            queue: DropOldest::new(capacity),
            last_sent: Mutex::new(None),
            link: Mutex::new(None),
            connecting: AtomicBool::new(false),
            redial: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
            dial_failed: AtomicBool::new(false),
            ever_up: AtomicBool::new(false),
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.link.lock().is_some()
    }

    /// True if `ip` is one of this peer's configured hosts (R8).
    pub(crate) fn is_configured_host(&self, ip: IpAddr) -> bool {
        self.addrs.iter().any(|a| a.ip() == ip)
    }
}

/// One established connection. Closing it shuts the socket down (which
/// wakes the RecvWorker's blocking read and fails the SendWorker's write)
/// and drops `stop`, which wakes an idle SendWorker.
pub(crate) struct Link {
    pub(crate) id: u64,
    pub(crate) stream: TcpStream,
    pub(crate) stop: Option<Sender<()>>,
    pub(crate) remote: SocketAddr,
}

impl Link {
    pub(crate) fn close(mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        self.stop.take();
    }
}

/// Counters behind [`QcmStats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) notifications_sent: AtomicU64,
    pub(crate) notifications_received: AtomicU64,
    pub(crate) bad_frames: AtomicU64,
    pub(crate) bad_handshakes: AtomicU64,
    pub(crate) dropped_send_queue: AtomicU64,
    pub(crate) dropped_recv_queue: AtomicU64,
    pub(crate) dropped_unroutable: AtomicU64,
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) connections_dialled: AtomicU64,
    pub(crate) dial_failures: AtomicU64,
    pub(crate) links_established: AtomicU64,
    pub(crate) links_closed: AtomicU64,
    pub(crate) own_sid_rejected: AtomicU64,
    pub(crate) unknown_low_sid_rejected: AtomicU64,
    pub(crate) strangers_rejected: AtomicU64,
    pub(crate) impostors_rejected: AtomicU64,
    pub(crate) dial_backs: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> QcmStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        QcmStats {
            notifications_sent: g(&self.notifications_sent),
            notifications_received: g(&self.notifications_received),
            bad_frames: g(&self.bad_frames),
            bad_handshakes: g(&self.bad_handshakes),
            dropped_send_queue: g(&self.dropped_send_queue),
            dropped_recv_queue: g(&self.dropped_recv_queue),
            dropped_unroutable: g(&self.dropped_unroutable),
            connections_accepted: g(&self.connections_accepted),
            connections_dialled: g(&self.connections_dialled),
            dial_failures: g(&self.dial_failures),
            links_established: g(&self.links_established),
            links_closed: g(&self.links_closed),
            own_sid_rejected: g(&self.own_sid_rejected),
            unknown_low_sid_rejected: g(&self.unknown_low_sid_rejected),
            strangers_rejected: g(&self.strangers_rejected),
            impostors_rejected: g(&self.impostors_rejected),
            dial_backs: g(&self.dial_backs),
        }
    }
}

/// Kinds of repeated bad input, each rate-limited on its own (R10).
#[derive(Debug, Clone, Copy)]
pub(crate) enum LogKind {
    Handshake = 0,
    Frame = 1,
    Rejected = 2,
    Dial = 3,
    Accept = 4,
}

/// At most one warning per kind per second; the next one says how many were
/// suppressed. Repeated bad input cannot flood the log (R10).
pub(crate) struct LogLimits {
    start: Instant,
    last_ms: [AtomicU64; 5],
    suppressed: [AtomicU64; 5],
}

impl LogLimits {
    fn new() -> Self {
        LogLimits {
            start: Instant::now(),
            last_ms: Default::default(),
            suppressed: Default::default(),
        }
    }

    /// Logs `args` at warn level unless this kind logged within the last
    /// second.
    pub(crate) fn warn(&self, kind: LogKind, args: fmt::Arguments<'_>) {
        let i = kind as usize;
        // +1000 so that the very first message always passes.
        let now = self.start.elapsed().as_millis() as u64 + 1000;
        let last = self.last_ms[i].load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000
            && self.last_ms[i]
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let n = self.suppressed[i].swap(0, Ordering::Relaxed);
            if n > 0 {
                log::warn!("{args} ({n} similar messages suppressed)");
            } else {
                log::warn!("{args}");
            }
        } else {
            self.suppressed[i].fetch_add(1, Ordering::Relaxed);
            log::debug!("{args}");
        }
    }
}

impl Shared {
    pub(crate) fn my_sid(&self) -> i64 {
        self.cfg.my_sid
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub(crate) fn slot(&self, sid: i64) -> Option<Arc<PeerSlot>> {
        self.slots.lock().get(&sid).cloned()
    }

    /// Delivers a notification to the election layer, dropping the oldest
    /// queued one if the receive queue is full.
    pub(crate) fn deliver(&self, sid: i64, notification: Notification) {
        let dropped = self.recv.push(Received { sid, notification });
        bump(&self.counters.notifications_received, 1);
        if dropped > 0 {
            bump(&self.counters.dropped_recv_queue, dropped);
        }
    }

    pub(crate) fn event(&self, e: PeerEvent) {
        self.events.push(e);
        if let PeerEvent::Up(_) | PeerEvent::Down(_) = e {
            // Called with no slot or link lock held (both are taken here).
            let listener = self.link_listener.lock();
            if let Some(l) = listener.as_ref() {
                l(&self.connected_peers());
            }
        }
    }

    /// Configured peers with a live link, ascending.
    pub(crate) fn connected_peers(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self
            .slots
            .lock()
            .values()
            .filter(|s| s.configured && s.is_up())
            .map(|s| s.sid)
            .collect();
        v.sort_unstable();
        v
    }

    /// A link id, taken when a connection is accepted or dialled: ids order
    /// connections by when they were made, not by when their handshake was
    /// read.
    pub(crate) fn new_link_id(&self) -> u64 {
        self.next_link_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Hands an established socket to a SendWorker and a RecvWorker,
    /// replacing any older link for `sid`. A connection made before the
    /// current link (`id` smaller) is stale and refused: its handshake may
    /// be read after a newer one's, and the peer has already abandoned it.
    /// Strangers get a slot here, bounded by `max_strangers`. Returns false
    /// if the socket was refused (and closed).
    pub(crate) fn install_link(
        self: &Arc<Self>,
        sid: i64,
        id: u64,
        stream: TcpStream,
        remote: SocketAddr,
    ) -> bool {
        let mut slots = self.slots.lock();
        // Checked under the slot lock so that shutdown, which sets the flag
        // and then closes every link, cannot miss a link installed here.
        if self.is_shutting_down() {
            let _ = stream.shutdown(Shutdown::Both);
            return false;
        }
        let slot = match slots.get(&sid) {
            Some(s) => s.clone(),
            None => {
                let strangers = slots.values().filter(|s| !s.configured).count();
                if strangers >= self.cfg.max_strangers {
                    bump(&self.counters.strangers_rejected, 1);
                    self.limits.warn(
                        LogKind::Rejected,
                        format_args!(
                            "election connection from unknown sid {sid} ({remote}) refused: {strangers} strangers connected"
                        ),
                    );
                    let _ = stream.shutdown(Shutdown::Both);
                    return false;
                }
                log::info!("accepting election connection from sid {sid} ({remote}), which is in no configuration, as a non-voter");
                let s = Arc::new(PeerSlot::new(
                    sid,
                    false,
                    Vec::new(),
                    self.cfg.send_queue_capacity,
                ));
                slots.insert(sid, s.clone());
                s
            }
        };
        drop(slots);

        let (recv_stream, send_stream) = match (stream.try_clone(), stream.try_clone()) {
            (Ok(r), Ok(s)) => (r, s),
            (Err(e), _) | (_, Err(e)) => {
                log::warn!("cannot start workers for sid {sid}: {e}");
                let _ = stream.shutdown(Shutdown::Both);
                self.forget_stranger(&slot);
                return false;
            }
        };
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let was_up;
        {
            let mut link = slot.link.lock();
            if let Some(current) = link.as_ref() {
                if current.id > id {
                    log::debug!(
                        "election connection {id} from sid {sid} ({remote}) is older than the live link {}; closed",
                        current.id
                    );
                    let _ = recv_stream.shutdown(Shutdown::Both);
                    return false;
                }
            }
            let old = link.replace(Link {
                id,
                stream,
                stop: Some(stop_tx),
                remote,
            });
            was_up = old.is_some();
            if let Some(old) = old {
                log::info!(
                    "replacing election link to sid {sid} ({} -> {remote})",
                    old.remote
                );
                old.close();
                bump(&self.counters.links_closed, 1);
            }
            slot.redial.store(false, Ordering::Relaxed);
        }
        slot.dial_failed.store(false, Ordering::Release);
        slot.ever_up.store(true, Ordering::Release);
        bump(&self.counters.links_established, 1);
        log::debug!("election link {id} to sid {sid} ({remote}) up");

        let spawned = self.spawn_workers(&slot, id, send_stream, recv_stream, stop_rx);
        if !spawned {
            self.close_link(&slot, id, "worker threads could not be started");
            return false;
        }
        if slot.configured && !was_up {
            self.event(PeerEvent::Up(sid));
        }
        true
    }

    fn spawn_workers(
        self: &Arc<Self>,
        slot: &Arc<PeerSlot>,
        id: u64,
        send_stream: TcpStream,
        recv_stream: TcpStream,
        stop_rx: Receiver<()>,
    ) -> bool {
        let mut threads = self.threads.lock();
        // Reap workers of closed links so the list stays short.
        let mut i = 0;
        while i < threads.len() {
            if threads[i].is_finished() {
                let _ = threads.swap_remove(i).join();
            } else {
                i += 1;
            }
        }
        let me = self.my_sid();
        let sid = slot.sid;
        let (sh, sl) = (self.clone(), slot.clone());
        let send = std::thread::Builder::new()
            .name(format!("qcm{me}-send-{sid}"))
            .spawn(move || worker::send_worker(sh, sl, id, send_stream, stop_rx));
        match send {
            Ok(h) => threads.push(h),
            Err(e) => {
                log::warn!("cannot spawn SendWorker for sid {sid}: {e}");
                return false;
            }
        }
        let (sh, sl) = (self.clone(), slot.clone());
        let recv = std::thread::Builder::new()
            .name(format!("qcm{me}-recv-{sid}"))
            .spawn(move || worker::recv_worker(sh, sl, id, recv_stream));
        match recv {
            Ok(h) => threads.push(h),
            Err(e) => {
                log::warn!("cannot spawn RecvWorker for sid {sid}: {e}");
                return false;
            }
        }
        true
    }

    /// Closes link `id` of `slot` if it is still the current one (an old
    /// worker must not tear down its replacement).
    pub(crate) fn close_link(self: &Arc<Self>, slot: &Arc<PeerSlot>, id: u64, why: &str) {
        let taken = {
            let mut link = slot.link.lock();
            if link.as_ref().map(|l| l.id) == Some(id) {
                link.take()
            } else {
                None
            }
        };
        let Some(link) = taken else { return };
        log::debug!(
            "election link {id} to sid {} ({}) closed: {why}",
            slot.sid,
            link.remote
        );
        link.close();
        bump(&self.counters.links_closed, 1);
        if !slot.configured {
            self.forget_stranger(slot);
            return;
        }
        self.event(PeerEvent::Down(slot.sid));
        // Reconnect only when there is something to say (as ZooKeeper does):
        // idle links stay down until the election layer sends.
        if !self.is_shutting_down() && slot.queue.len() > 0 {
            establish::connect(self, slot, false);
        }
    }

    /// Removes a stranger's slot once it has no link, so strangers cost
    /// nothing after they leave.
    fn forget_stranger(&self, slot: &Arc<PeerSlot>) {
        if slot.configured {
            return;
        }
        let mut slots = self.slots.lock();
        if let Some(s) = slots.get(&slot.sid) {
            if Arc::ptr_eq(s, slot) && !slot.is_up() {
                slots.remove(&slot.sid);
            }
        }
    }
}

fn encode_handshake(cfg: &QcmConfig) -> Vec<u8> {
    let usable = |list: &[SocketAddr]| -> Vec<PeerAddress> {
        let mut v: Vec<PeerAddress> = Vec::new();
        for a in list.iter().filter(|a| !a.ip().is_unspecified()) {
            let p = PeerAddress {
                host: a.ip().to_string(),
                port: a.port(),
            };
            if !v.contains(&p) {
                v.push(p);
            }
        }
        v
    };
    // Never the wildcard (PROTOCOL.md §2.2); the listen addresses stand in
    // only when nothing usable was configured to advertise.
    let mut addrs = usable(&cfg.advertised_addrs);
    if addrs.is_empty() {
        addrs = usable(&cfg.listen_addrs);
    }
    let format = if addrs.is_empty() {
        // No reachable address to advertise: 3.4's bare sid is the only
        // handshake that needs none, and every version accepts it.
        HandshakeFormat::V0
    } else {
        cfg.handshake_format
    };
    if format == HandshakeFormat::V1 {
        // V1 carries one address; ZooKeeper sends its first.
        addrs.truncate(1);
    }
    let mut out = Vec::with_capacity(64);
    Handshake {
        format,
        sid: cfg.my_sid,
        addresses: addrs,
    }
    .encode(&mut out);
    out
}

impl Qcm {
    /// Binds every listen address (retrying per `bind_retry`, 1 s apart) and
    /// starts the establishment runtime. Dials nothing until asked to.
    pub fn start(mut cfg: QcmConfig) -> Result<Qcm, CnxError> {
        if cfg.listen_addrs.is_empty() {
            return Err(CnxError::NoListenAddress);
        }
        cfg.peers.remove(&cfg.my_sid);
        let mut listeners = Vec::new();
        for addr in &cfg.listen_addrs {
            listeners.push(establish::bind_with_retry(*addr, cfg.bind_retry)?);
        }
        let local_addrs: Vec<SocketAddr> = listeners
            .iter()
            .zip(&cfg.listen_addrs)
            .map(|(l, a)| l.local_addr().unwrap_or(*a))
            .collect();
        let mut cfg = cfg;
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
            .map(|(&sid, addrs)| {
                (
                    sid,
                    Arc::new(PeerSlot::new(
                        sid,
                        true,
                        addrs.clone(),
                        cfg.send_queue_capacity,
                    )),
                )
            })
            .collect();
        let shared = Arc::new(Shared {
            handshake: encode_handshake(&cfg),
            handle: runtime.handle().clone(),
            local_addrs,
            slots: Mutex::new(slots),
            recv: DropOldest::new(cfg.recv_queue_capacity),
            events: DropOldest::new(EVENT_QUEUE_CAPACITY),
            counters: Counters::default(),
            shutting_down: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            next_link_id: AtomicU64::new(1),
            pending_handshakes: AtomicUsize::new(0),
            limits: LogLimits::new(),
            link_listener: Mutex::new(None),
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
        let sh = self.shared();
        if sid == sh.my_sid() {
            sh.deliver(sid, *n);
            return;
        }
        let Some(slot) = sh.slot(sid) else {
            bump(&sh.counters.dropped_unroutable, 1);
            log::debug!("no route to sid {sid}: notification dropped");
            return;
        };
        let dropped = slot.queue.push(n.encode_40());
        if dropped > 0 {
            bump(&sh.counters.dropped_send_queue, dropped);
        }
        if slot.configured && !slot.is_up() {
            establish::connect(sh, &slot, false);
        } else if !slot.configured && !slot.is_up() {
            // The stranger left between the lookup and the push.
            slot.queue.clear();
            bump(&sh.counters.dropped_unroutable, 1);
        }
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

    /// The state of the link to `sid`.
    pub fn link_state(&self, sid: i64) -> LinkState {
        match self.shared().slot(sid) {
            Some(slot) if slot.is_up() => LinkState::Up,
            Some(slot)
                if slot.dial_failed.load(Ordering::Acquire)
                    && slot.ever_up.load(Ordering::Acquire) =>
            {
                LinkState::Down
            }
            Some(slot) if slot.connecting.load(Ordering::Acquire) => LinkState::Connecting,
            _ => LinkState::Down,
        }
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
    /// nothing. It runs on the connection's thread: it must be quick and
    /// must not call back into the QCM's listener. Unlike
    /// [`Qcm::peer_events`], whose queue belongs to the election layer, it
    /// never drops a change.
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

    /// Link up/down events for configured peers (a bounded queue that drops
    /// the oldest event when nobody reads it).
    pub fn peer_events(&self) -> Receiver<PeerEvent> {
        self.shared().events.receiver().clone()
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

    fn cfg(listen: &str, advertised: &[&str], format: HandshakeFormat) -> QcmConfig {
        let mut c = QcmConfig::new(7, vec![listen.parse().unwrap()], BTreeMap::new());
        c.advertised_addrs = advertised.iter().map(|a| a.parse().unwrap()).collect();
        c.handshake_format = format;
        c
    }

    #[test]
    fn v1_handshake_carries_the_first_advertised_address() {
        let c = cfg(
            "0.0.0.0:3888",
            &["10.0.0.2:3888", "10.0.0.3:3888"],
            HandshakeFormat::V1,
        );
        let (h, used) = Handshake::decode(&encode_handshake(&c)).unwrap();
        assert_eq!(used, encode_handshake(&c).len());
        assert_eq!((h.format, h.sid), (HandshakeFormat::V1, 7));
        assert_eq!(h.addresses.len(), 1);
        assert_eq!(h.addresses[0].to_string(), "10.0.0.2:3888");
    }

    #[test]
    fn v2_handshake_carries_every_address_never_the_wildcard() {
        let c = cfg(
            "0.0.0.0:3888",
            &["10.0.0.2:3888", "0.0.0.0:3888", "[::1]:3889"],
            HandshakeFormat::V2,
        );
        let (h, _) = Handshake::decode(&encode_handshake(&c)).unwrap();
        assert_eq!(h.format, HandshakeFormat::V2);
        let addrs: Vec<String> = h.addresses.iter().map(|a| a.to_string()).collect();
        assert_eq!(addrs, vec!["10.0.0.2:3888", "[::1]:3889"]);
    }

    #[test]
    fn nothing_reachable_to_advertise_falls_back_to_the_bare_sid() {
        let c = cfg("0.0.0.0:3888", &["0.0.0.0:3888"], HandshakeFormat::V1);
        assert_eq!(encode_handshake(&c), 7i64.to_be_bytes().to_vec());
    }

    #[test]
    fn zookeeper_queues_are_one_and_one_hundred() {
        let c = QcmConfig::new(1, vec![], BTreeMap::new()).zookeeper_queues();
        assert_eq!((c.send_queue_capacity, c.recv_queue_capacity), (1, 100));
        let d = QcmConfig::new(1, vec![], BTreeMap::new());
        assert!(d.send_queue_capacity >= 64, "a window-64 burst fits");
    }

    #[test]
    fn no_listen_address_is_an_error() {
        let c = QcmConfig::new(1, vec![], BTreeMap::new());
        assert!(matches!(Qcm::start(c), Err(CnxError::NoListenAddress)));
    }
}
