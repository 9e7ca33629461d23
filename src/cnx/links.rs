//! The link table: one [`PeerSlot`] per configured sid (and per connected
//! stranger) holding its send queue, the last message written and its
//! current [`Link`]; installing and closing links; and the facts
//! ([`PeerEvent`]s) those transitions produce, emitted under the slot's
//! link lock so that the event stream replays the link's history exactly.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::net::HostPort;
use crate::tls::{PeerCloser, PeerReader, PeerStream, PeerWriter};
use crate::wire::{Notification, NOTIFICATION_LEN};

use super::queue::{BatchQueue, DropOldest};
use super::stats::{bump, Counters, LogKind, LogLimits};
use super::{establish, worker, DialFailure, PeerEvent, QcmConfig, Received};

/// Stack reserved for each worker thread. They run shallow loops (a read
/// or write, TLS records, frame decoding, a log line), far below this; the
/// default 2 MiB only made glibc's cache of exited threads' stacks (40 MiB)
/// hold 20 of them, so that with ~100 workers per peer (51 peers) every
/// new link mapped and faulted in fresh stacks.
const WORKER_STACK: usize = 256 * 1024;

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
    /// Link facts for the election layer, unbounded so that none is ever
    /// lost (its state is derived from them); the sender side is only used
    /// under a slot's link lock, see [`Shared::event`].
    pub(crate) events: (Sender<PeerEvent>, Receiver<PeerEvent>),
    pub(crate) counters: Counters,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) next_link_id: AtomicU64,
    pub(crate) pending_handshakes: AtomicUsize,
    pub(crate) limits: LogLimits,
    /// Told the connected peers on every link up/close; held across the
    /// count and the call so calls are ordered and each carries the
    /// newest set.
    pub(crate) link_listener: Mutex<Option<LinkListener>>,
    /// Unparked after every delivery and every peer event
    /// ([`super::Qcm::set_input_waker`]).
    pub(crate) input_waker: Mutex<Option<std::thread::Thread>>,
}

/// Told the configured peers with a live election link (ascending) each
/// time one comes up or goes down; see [`super::Qcm::set_link_listener`].
pub type LinkListener = Arc<dyn Fn(&[i64]) + Send + Sync>;

/// Per-sid state that outlives connections: the send queue, the last
/// message written, and the current link.
pub(crate) struct PeerSlot {
    pub(crate) sid: i64,
    /// In the configuration (dialled, reported in events) or a stranger.
    pub(crate) configured: bool,
    /// Configured election addresses, hosts as configured (empty for
    /// strangers).
    pub(crate) endpoints: Vec<HostPort>,
    /// What each endpoint last resolved to (IP literals from the start);
    /// kept when a later lookup fails, as ZooKeeper keeps the address it
    /// had. Recognises the peer's connections (R8).
    pub(crate) known: Mutex<Vec<Option<SocketAddr>>>,
    /// When the names were last looked up because a connection claiming
    /// this sid came from an address none of them had (bounds those
    /// lookups to one a second).
    pub(crate) refreshed: Mutex<Option<Instant>>,
    pub(crate) queue: BatchQueue<[u8; NOTIFICATION_LEN]>,
    /// The newest notification queued (with coalescing on): held while
    /// queueing so that concurrent senders agree on which is newest.
    pub(crate) newest: Mutex<Option<[u8; NOTIFICATION_LEN]>>,
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
}

impl PeerSlot {
    pub(crate) fn new(
        sid: i64,
        configured: bool,
        endpoints: Vec<HostPort>,
        capacity: usize,
    ) -> Self {
        PeerSlot {
            sid,
            configured,
            known: Mutex::new(endpoints.iter().map(HostPort::literal).collect()),
            refreshed: Mutex::new(None),
            endpoints,
            queue: BatchQueue::new(capacity),
            newest: Mutex::new(None),
            last_sent: Mutex::new(None),
            link: Mutex::new(None),
            connecting: AtomicBool::new(false),
            redial: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.link.lock().is_some()
    }

    /// Queues `msgs` for the SendWorker, in order; with `coalesce`, a
    /// queued backlog of other (older) notifications is dropped before each
    /// one that differs from the newest queued
    /// ([`QcmConfig::coalesce_superseded`]). Returns (evicted because the
    /// queue was full, dropped as superseded).
    pub(crate) fn enqueue_many(&self, msgs: &[Notification], coalesce: bool) -> (u64, u64) {
        let (mut evicted, mut superseded) = (0, 0);
        if !coalesce {
            let mut q = self.queue.lock();
            for m in msgs {
                evicted += q.push(m.encode_40());
            }
            return (evicted, 0);
        }
        // Held across the run so that concurrent senders agree on which
        // message is the newest; the queue lock nests inside it (the
        // SendWorker takes only the queue lock).
        let mut newest = self.newest.lock();
        let mut q = self.queue.lock();
        let mut prev: Option<(&Notification, [u8; NOTIFICATION_LEN])> = None;
        for m in msgs {
            // A run is usually one reply repeated: encode and compare it
            // once, not once per copy.
            let msg = match prev {
                Some((p, bytes)) if p == m => bytes,
                _ => {
                    let bytes = m.encode_40();
                    if newest.is_some_and(|n| n != bytes) {
                        superseded += q.clear();
                    }
                    *newest = Some(bytes);
                    prev = Some((m, bytes));
                    bytes
                }
            };
            evicted += q.push(msg);
        }
        (evicted, superseded)
    }

    /// The id of the live link, if any.
    pub(crate) fn link_id(&self) -> Option<u64> {
        self.link.lock().as_ref().map(|l| l.id)
    }

    /// True if `ip` is one of this peer's configured hosts, as last
    /// resolved (R8).
    pub(crate) fn is_configured_host(&self, ip: IpAddr) -> bool {
        self.known.lock().iter().flatten().any(|a| a.ip() == ip)
    }

    /// True if some configured host is a name.
    pub(crate) fn has_names(&self) -> bool {
        self.endpoints.iter().any(HostPort::is_name)
    }
}

/// One established connection. Closing it sends TLS `close_notify` (TLS
/// links, best effort) and shuts the socket down (which wakes the
/// RecvWorker's blocking read and fails the SendWorker's write), and
/// unparks the SendWorker, which then finds its link gone.
pub(crate) struct Link {
    pub(crate) id: u64,
    pub(crate) closer: PeerCloser,
    /// The SendWorker's thread, registered by the worker itself before it
    /// first looks at the queue; see [`Link::wake_sender`].
    pub(crate) sender: Option<std::thread::Thread>,
    pub(crate) remote: SocketAddr,
}

impl Link {
    pub(crate) fn close(self) {
        self.closer.close();
        self.wake_sender();
    }

    /// Wakes the SendWorker: something was queued, or the link closed.
    ///
    /// An idle SendWorker parks its thread rather than blocking in a
    /// crossbeam receive: crossbeam spins and calls `sched_yield` up to
    /// eight times before it sleeps, and with ~100 workers per peer on two
    /// cores those yields were a quarter of all CPU in a 51-peer failover.
    /// `unpark` before `park` makes the `park` return at once, so a wake
    /// between the worker's last look at the queue and its `park` is never
    /// lost.
    pub(crate) fn wake_sender(&self) {
        if let Some(t) = &self.sender {
            t.unpark();
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
        self.wake_input();
    }

    /// Delivers the notifications of one read (and empties `batch`), then
    /// wakes the election thread once: it finds the whole batch queued
    /// and answers it in one pass. Nothing happens for an empty batch.
    pub(crate) fn deliver_many(&self, sid: i64, batch: &mut Vec<Notification>) {
        if batch.is_empty() {
            return;
        }
        let mut dropped = 0;
        let count = batch.len() as u64;
        for notification in batch.drain(..) {
            dropped += self.recv.push(Received { sid, notification });
        }
        bump(&self.counters.notifications_received, count);
        if dropped > 0 {
            bump(&self.counters.dropped_recv_queue, dropped);
        }
        self.wake_input();
    }

    /// Unparks the consumer of the receive and event queues, if one asked.
    pub(crate) fn wake_input(&self) {
        if let Some(t) = self.input_waker.lock().as_ref() {
            t.unpark();
        }
    }

    /// Emits a link fact. Callers hold the slot's link lock, so that the
    /// events of one sid come out in the order its link changed.
    fn event(&self, e: PeerEvent) {
        // The receiver lives in `self`, so the send cannot fail.
        let _ = self.events.0.send(e);
        self.wake_input();
    }

    /// Tells the link listener the connected peers. Called after a
    /// configured peer's link came up or closed, with no slot or link lock
    /// held (counting takes them).
    fn notify_links(&self) {
        let listener = self.link_listener.lock();
        if let Some(l) = listener.as_ref() {
            l(&self.connected_peers());
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

    /// Reports that a dial attempt to a configured peer failed, unless a
    /// link to it is up by now (an inbound link won the race; then the
    /// failure is no news).
    pub(crate) fn dial_failed(&self, slot: &PeerSlot, failure: DialFailure) {
        let link = slot.link.lock();
        if slot.configured && link.is_none() {
            self.event(PeerEvent::DialFailed {
                sid: slot.sid,
                failure,
            });
        }
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
        stream: PeerStream,
        remote: SocketAddr,
    ) -> bool {
        let mut slots = self.slots.lock();
        // Checked under the slot lock so that shutdown, which sets the flag
        // and then closes every link, cannot miss a link installed here.
        if self.is_shutting_down() {
            let _ = stream.tcp().shutdown(std::net::Shutdown::Both);
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
                    let _ = stream.tcp().shutdown(std::net::Shutdown::Both);
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

        let tcp = match stream.tcp().try_clone() {
            Ok(t) => t,
            Err(e) => {
                log::warn!("cannot start workers for sid {sid}: {e}");
                let _ = stream.tcp().shutdown(std::net::Shutdown::Both);
                self.forget_stranger(&slot);
                return false;
            }
        };
        let (recv_stream, send_stream, closer) = match stream.split() {
            Ok(parts) => parts,
            Err(e) => {
                log::warn!("cannot start workers for sid {sid}: {e}");
                let _ = tcp.shutdown(std::net::Shutdown::Both);
                self.forget_stranger(&slot);
                return false;
            }
        };
        let came_up = {
            let mut link = slot.link.lock();
            if let Some(current) = link.as_ref() {
                if current.id > id {
                    log::debug!(
                        "election connection {id} from sid {sid} ({remote}) is older than the live link {}; closed",
                        current.id
                    );
                    closer.close();
                    return false;
                }
            }
            let old = link.replace(Link {
                id,
                closer,
                sender: None,
                remote,
            });
            let came_up = old.is_none() && slot.configured;
            match old {
                Some(old) => {
                    log::info!(
                        "replacing election link to sid {sid} ({} -> {remote})",
                        old.remote
                    );
                    old.close();
                    bump(&self.counters.links_closed, 1);
                }
                // Before the workers start, so it precedes anything
                // received on this link.
                None if slot.configured => self.event(PeerEvent::LinkUp(sid)),
                None => {}
            }
            slot.redial.store(false, Ordering::Relaxed);
            came_up
        };
        if came_up {
            self.notify_links();
        }
        bump(&self.counters.links_established, 1);
        log::debug!("election link {id} to sid {sid} ({remote}) up");

        let spawned = self.spawn_workers(&slot, id, send_stream, recv_stream);
        if !spawned {
            self.close_link(&slot, id, "worker threads could not be started");
            return false;
        }
        true
    }

    fn spawn_workers(
        self: &Arc<Self>,
        slot: &Arc<PeerSlot>,
        id: u64,
        send_stream: PeerWriter,
        recv_stream: PeerReader,
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
            .stack_size(WORKER_STACK)
            .spawn(move || worker::send_worker(sh, sl, id, send_stream));
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
            .stack_size(WORKER_STACK)
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
                if slot.configured {
                    self.event(PeerEvent::LinkClosed(slot.sid));
                }
                link.take()
            } else {
                None
            }
        };
        let Some(link) = taken else { return };
        if slot.configured {
            self.notify_links();
        }
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
