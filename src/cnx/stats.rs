//! Counters ([`QcmStats`]) and rate-limited warnings for repeated bad input
//! (PROTOCOL.md §8 R10).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

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
    /// Queued notifications dropped unsent because a different, newer one
    /// for the same peer superseded them
    /// ([`QcmConfig::coalesce_superseded`](super::QcmConfig::coalesce_superseded)).
    pub superseded: u64,
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
    /// Connections refused by quorum TLS: plaintext on a TLS-only port,
    /// and TLS handshakes that failed either way (a certificate from
    /// another CA, expired, not naming the peer, no certificate, no common
    /// protocol or suite). Handshakes that only ran out of time count as
    /// `bad_handshakes`.
    pub tls_refused: u64,
}

/// Counters behind [`QcmStats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) notifications_sent: AtomicU64,
    pub(crate) notifications_received: AtomicU64,
    pub(crate) bad_frames: AtomicU64,
    pub(crate) bad_handshakes: AtomicU64,
    pub(crate) dropped_send_queue: AtomicU64,
    pub(crate) superseded: AtomicU64,
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
    pub(crate) tls_refused: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> QcmStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        QcmStats {
            notifications_sent: g(&self.notifications_sent),
            notifications_received: g(&self.notifications_received),
            bad_frames: g(&self.bad_frames),
            bad_handshakes: g(&self.bad_handshakes),
            dropped_send_queue: g(&self.dropped_send_queue),
            superseded: g(&self.superseded),
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
            tls_refused: g(&self.tls_refused),
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
    Tls = 5,
}

/// At most one warning per kind per second; the next one says how many were
/// suppressed. Repeated bad input cannot flood the log (R10).
pub(crate) struct LogLimits {
    start: Instant,
    last_ms: [AtomicU64; 6],
    suppressed: [AtomicU64; 6],
}

impl LogLimits {
    pub(crate) fn new() -> Self {
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
