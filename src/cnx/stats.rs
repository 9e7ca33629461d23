//! Counters ([`QcmStats`]) and rate-limited warnings for repeated bad input
//! (PROTOCOL.md §8 R10).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

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
    /// Dials of a peer's address skipped because its host name did not
    /// resolve (and never had).
    pub unresolved_dials: u64,
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
    pub(crate) unresolved_dials: AtomicU64,
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
            unresolved_dials: g(&self.unresolved_dials),
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

/// Kinds of repeated bad input or failure, each rate-limited on its own
/// per peer (R10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum LogKind {
    Handshake,
    Frame,
    Rejected,
    Dial,
    Accept,
    /// A TLS handshake or a plaintext connection on a TLS port refused.
    Tls,
    /// A peer's host name did not resolve.
    Resolve,
}

/// Distinct (kind, sid) pairs tracked; beyond this, further sids share
/// their kind's sid-less entry, so connections claiming ever new sids
/// cannot grow the table.
const MAX_LOG_KEYS: usize = 512;
/// The shortest gap between two warnings of one (kind, sid).
const LOG_INTERVAL_MS: u64 = 1000;

/// What [`LogLimits`] did with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Logged {
    /// Written at warn level, after this many suppressed ones of its key.
    Warned { suppressed: u64 },
    /// Suppressed (written at debug level only).
    Suppressed,
}

#[derive(Default)]
struct Entry {
    /// Milliseconds since `start` of the last warning, if any.
    last_ms: Option<u64>,
    suppressed: u64,
}

/// At most one warning per (kind, peer) per second; the next one says how
/// many were suppressed. Repeated bad input cannot flood the log (R10), and
/// one noisy peer cannot hide another: with two peers unreachable, both are
/// named every second (issue 16 item 6).
pub(crate) struct LogLimits {
    start: Instant,
    entries: Mutex<HashMap<(LogKind, Option<i64>), Entry>>,
}

impl LogLimits {
    pub(crate) fn new() -> Self {
        LogLimits {
            start: Instant::now(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Logs `args` at warn level unless this kind logged, for no peer in
    /// particular, within the last second.
    pub(crate) fn warn(&self, kind: LogKind, args: fmt::Arguments<'_>) -> Logged {
        self.emit(kind, None, args)
    }

    /// Logs `args` (which should name `sid`) at warn level unless this kind
    /// logged for `sid` within the last second. Pass only sids of
    /// configured peers; strangers' sids are the sender's choice.
    pub(crate) fn warn_peer(&self, kind: LogKind, sid: i64, args: fmt::Arguments<'_>) -> Logged {
        self.emit(kind, Some(sid), args)
    }

    fn emit(&self, kind: LogKind, sid: Option<i64>, args: fmt::Arguments<'_>) -> Logged {
        let now = self.start.elapsed().as_millis() as u64;
        let logged = {
            let mut entries = self.entries.lock();
            let key = if entries.len() >= MAX_LOG_KEYS && !entries.contains_key(&(kind, sid)) {
                (kind, None)
            } else {
                (kind, sid)
            };
            let e = entries.entry(key).or_default();
            let due = match e.last_ms {
                None => true,
                Some(last) => now.saturating_sub(last) >= LOG_INTERVAL_MS,
            };
            if due {
                e.last_ms = Some(now);
                Logged::Warned {
                    suppressed: std::mem::take(&mut e.suppressed),
                }
            } else {
                e.suppressed += 1;
                Logged::Suppressed
            }
        };
        match logged {
            Logged::Warned { suppressed: 0 } => log::warn!("{args}"),
            Logged::Warned { suppressed: n } => {
                log::warn!("{args} ({n} similar messages suppressed)")
            }
            Logged::Suppressed => log::debug!("{args}"),
        }
        logged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_peer_is_named_once_a_second_whatever_the_others_do() {
        let l = LogLimits::new();
        let first = Logged::Warned { suppressed: 0 };
        assert_eq!(l.warn_peer(LogKind::Dial, 2, format_args!("sid 2")), first);
        // Another peer's failure in the same instant is still written.
        assert_eq!(l.warn_peer(LogKind::Dial, 3, format_args!("sid 3")), first);
        // Another kind for the same peer too.
        assert_eq!(
            l.warn_peer(LogKind::Rejected, 2, format_args!("sid 2")),
            first
        );
        assert_eq!(l.warn(LogKind::Dial, format_args!("no sid")), first);
        // The same (kind, peer) within the second is suppressed and counted.
        assert_eq!(
            l.warn_peer(LogKind::Dial, 2, format_args!("sid 2")),
            Logged::Suppressed
        );
        assert_eq!(
            l.warn_peer(LogKind::Dial, 2, format_args!("sid 2")),
            Logged::Suppressed
        );
        std::thread::sleep(std::time::Duration::from_millis(LOG_INTERVAL_MS + 50));
        assert_eq!(
            l.warn_peer(LogKind::Dial, 2, format_args!("sid 2")),
            Logged::Warned { suppressed: 2 }
        );
    }

    #[test]
    fn sids_beyond_the_table_share_their_kinds_entry() {
        let l = LogLimits::new();
        for sid in 0..MAX_LOG_KEYS as i64 {
            l.warn_peer(LogKind::Rejected, sid, format_args!("x"));
        }
        assert_eq!(l.entries.lock().len(), MAX_LOG_KEYS);
        assert_eq!(
            l.warn_peer(LogKind::Rejected, 1_000_000, format_args!("x")),
            Logged::Warned { suppressed: 0 }
        );
        assert_eq!(
            l.warn_peer(LogKind::Rejected, 1_000_001, format_args!("x")),
            Logged::Suppressed
        );
        assert_eq!(l.entries.lock().len(), MAX_LOG_KEYS + 1);
    }
}
