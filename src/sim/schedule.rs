//! The event queue that owns virtual time: every event of the world, and
//! the queue that runs them in (time, scheduling order). Equal times pop in
//! the order they were scheduled, so a seed replays the same schedule.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

use bytes::Bytes;

use crate::wire::Notification;
use crate::zab::ConnId;

/// Milliseconds.
pub(super) fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

/// Microseconds.
pub(super) fn us(x: u64) -> Duration {
    Duration::from_micros(x)
}

/// Which of a peer's two write pipelines an I/O belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pipe {
    /// `acceptedEpoch` / `currentEpoch` files.
    Epoch,
    /// The replicated log (appends, truncations, snapshot installs, reads).
    Log,
}

/// What travels on a quorum connection: a packet's bytes (encoded by the
/// real codec, decoded on arrival) or the end of the stream.
#[derive(Debug, Clone)]
pub(super) enum QMsg {
    /// One encoded QuorumPacket.
    Packet(Bytes),
    /// FIN: the sender closed its side.
    Eof,
}

/// What a client hears back for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reply {
    /// The write committed at this zxid.
    Written(i64),
    /// The read returned this value.
    Read(Option<u64>),
    /// Not applied, for sure (not the leader, not established, refused).
    NotApplied {
        /// The leader the server named, if it knows one.
        redirect: Option<i64>,
    },
    /// The write may or may not have been applied; a read failed.
    Unknown,
}

/// Everything that can happen.
#[derive(Debug, Clone)]
pub(super) enum Ev {
    // ----- election network and driver
    Start {
        sid: i64,
    },
    ElectAgain {
        sid: i64,
        inc: u32,
    },
    Timer {
        sid: i64,
        inc: u32,
        at: Duration,
    },
    Deliver {
        from: i64,
        to: i64,
        gen: u64,
        n: Notification,
    },
    DialDone {
        from: i64,
        to: i64,
        attempt: u64,
        leg: u8,
    },
    DialFail {
        from: i64,
        to: i64,
        attempt: u64,
    },
    Redial {
        from: i64,
        to: i64,
        inc: u32,
    },
    LinkTimeout {
        a: i64,
        b: i64,
        gen: u64,
    },
    /// A healed partition lets the held notifications from `from` to `to`
    /// through, in order, after everything still in flight.
    Release {
        from: i64,
        to: i64,
        gen: u64,
    },
    // ----- Zab roles and quorum connections
    ZabTimer {
        sid: i64,
        inc: u32,
        role: u64,
        at: Duration,
    },
    /// A learner's dial reaches the leader's host now.
    QConnect {
        learner: i64,
        inc: u32,
        role: u64,
        leader: i64,
    },
    /// A learner's dial failed (refused, or timed out behind a partition).
    QConnectFailed {
        learner: i64,
        inc: u32,
        role: u64,
        error: &'static str,
    },
    /// The leader's process accepts a connection its kernel took.
    QAccept {
        conn: ConnId,
    },
    QDeliver {
        conn: ConnId,
        /// 0: leader → learner, 1: learner → leader.
        dir: u8,
        msg: QMsg,
    },
    /// A connection was reset: tell the role of `sid` that held it.
    QReset {
        sid: i64,
        inc: u32,
        role: u64,
        conn: ConnId,
        /// 0: the leader's end, 1: the learner's.
        side: u8,
    },
    /// The TCP timeout of a connection stuck behind a partition.
    QTimeout {
        conn: ConnId,
    },
    /// A healed partition lets a connection's held packets through.
    QRelease {
        conn: ConnId,
        dir: u8,
    },
    // ----- disks
    IoDone {
        sid: i64,
        inc: u32,
        pipe: Pipe,
        token: u64,
    },
    /// A completion the lying disk reports at once (see `disk`).
    IoEarly {
        sid: i64,
        inc: u32,
        role: u64,
        what: Early,
    },
    /// The lying disk's background flush.
    Flush {
        sid: i64,
        inc: u32,
    },
    // ----- faults
    Fault,
    Restart {
        sid: i64,
    },
    Resume {
        sid: i64,
        inc: u32,
    },
    HealPartition {
        id: usize,
    },
    HealAll,
    // ----- the store's clients
    ClientNext {
        client: usize,
    },
    ClientArrive {
        client: usize,
        peer: i64,
        op: u64,
    },
    ClientReply {
        client: usize,
        op: u64,
        reply: Reply,
    },
    ClientTimeout {
        client: usize,
        op: u64,
    },
    /// A peer's embedder snapshots its state machine and compacts its log.
    Compact {
        sid: i64,
        inc: u32,
    },
    // ----- scripted runs
    Script,
}

/// A completion reported before the write is durable (injected bugs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Early {
    AcceptedEpoch(i64),
    CurrentEpoch(i64),
    Log(i64),
    Truncated(i64),
    Installed(i64),
}

impl Ev {
    /// A small number per kind, mixed into the trace hash.
    pub(super) fn code(&self) -> u64 {
        match self {
            Ev::Start { .. } => 1,
            Ev::ElectAgain { .. } => 2,
            Ev::Timer { .. } => 3,
            Ev::Deliver { .. } => 4,
            Ev::DialDone { .. } => 5,
            Ev::DialFail { .. } => 6,
            Ev::LinkTimeout { .. } => 7,
            Ev::Redial { .. } => 8,
            Ev::ZabTimer { .. } => 9,
            Ev::QConnect { .. } => 10,
            Ev::QConnectFailed { .. } => 11,
            Ev::QAccept { .. } => 12,
            Ev::QDeliver { .. } => 13,
            Ev::QReset { .. } => 14,
            Ev::QTimeout { .. } => 15,
            Ev::IoDone { .. } => 16,
            Ev::IoEarly { .. } => 17,
            Ev::Flush { .. } => 18,
            Ev::Fault => 19,
            Ev::Restart { .. } => 20,
            Ev::Resume { .. } => 21,
            Ev::HealPartition { .. } => 22,
            Ev::HealAll => 23,
            Ev::ClientNext { .. } => 24,
            Ev::ClientArrive { .. } => 25,
            Ev::ClientReply { .. } => 26,
            Ev::ClientTimeout { .. } => 27,
            Ev::Compact { .. } => 28,
            Ev::Script => 29,
            Ev::Release { .. } => 30,
            Ev::QRelease { .. } => 31,
        }
    }
}

struct Scheduled {
    at: Duration,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.seq == o.seq
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    // Reversed: BinaryHeap is a max-heap, the earliest event must pop first;
    // equal times pop in scheduling order.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// Pending events in (time, scheduling order).
#[derive(Default)]
pub(super) struct Queue {
    heap: BinaryHeap<Scheduled>,
    seq: u64,
}

impl Queue {
    /// Schedules `ev` at the absolute time `at`.
    pub(super) fn push(&mut self, at: Duration, ev: Ev) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            ev,
        });
    }

    /// The earliest event.
    pub(super) fn pop(&mut self) -> Option<(Duration, Ev)> {
        self.heap.pop().map(|s| (s.at, s.ev))
    }

    /// When the earliest event is due.
    #[cfg(any(test, feature = "testkit"))]
    pub(super) fn peek_time(&self) -> Option<Duration> {
        self.heap.peek().map(|s| s.at)
    }
}
