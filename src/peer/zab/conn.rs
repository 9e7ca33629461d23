//! One quorum connection = one reader thread and one writer thread, so the
//! role thread never blocks on a socket.
//!
//! * The **writer** drains its [`WriteQueue`] and writes everything queued
//!   with one `write_all` (up to [`WRITE_BATCH`] bytes per call): a burst of
//!   proposals or ACKs costs one syscall, not one per packet. The queue is
//!   bounded in bytes ([`QUEUE_LIMIT`]): a learner that stops reading is
//!   closed when it overflows, it never blocks the leader.
//! * The **reader** blocks in `read`, decodes every complete packet of a
//!   64 KiB read and hands them to the role thread in one message. After an
//!   interop SNAP (a Java leader's raw data-tree stream) it walks the stream
//!   to its signature ([`SnapshotSkipper`]) and reports the summary, as the
//!   Learner machine asks. EOF, a socket error or undecodable bytes end the
//!   thread with a last [`ConnEvent::Closed`].

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::Arc;

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};

use super::net::{is_disconnect, Closer, QuorumReader, QuorumWriter};
use super::snap::SnapshotSkipper;
use crate::wire::zab::QuorumPacket;
use crate::wire::WireError;
use crate::zab::{Mode, Packet, SkippedSnapshot};

/// Bytes a connection may have queued before a new batch is refused (the
/// connection is then closed). A learner stalled this far behind cannot
/// catch up by reading; it resyncs on a new connection. A batch pushed onto
/// a queue below the limit is always taken whole, so a snapshot larger
/// than the limit still goes out to a learner that reads.
pub(crate) const QUEUE_LIMIT: usize = 64 << 20;

/// Most bytes the writer hands the kernel per call.
pub(crate) const WRITE_BATCH: usize = 4 << 20;

/// Read buffer growth per read call.
const READ_CHUNK: usize = 64 * 1024;

/// What a connection's threads tell the role thread.
#[derive(Debug)]
pub(crate) enum ConnEvent {
    /// Decoded packets, in arrival order.
    Packets(Vec<QuorumPacket>),
    /// Bytes arrived but no whole packet yet (a large packet in flight):
    /// the learner's read timeout restarts, as Java's per-read timeout does.
    Heard,
    /// Interop: the Java snapshot stream after SNAP was skipped.
    SnapshotSkipped(SkippedSnapshot),
    /// The connection is over; the reader thread has ended.
    Closed(CloseCause),
}

/// Why a reader stopped.
#[derive(Debug)]
pub(crate) enum CloseCause {
    /// FIN from the other side (or our own close).
    Eof,
    /// A socket error.
    Io(io::Error),
    /// Bytes that are no quorum packet or a broken snapshot stream.
    Bad(WireError),
}

impl std::fmt::Display for CloseCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseCause::Eof => f.write_str("connection closed"),
            CloseCause::Io(e) if is_disconnect(e) => write!(f, "connection closed ({e})"),
            CloseCause::Io(e) => write!(f, "socket error: {e}"),
            CloseCause::Bad(e) => write!(f, "bad bytes: {e}"),
        }
    }
}

/// The packets waiting for one connection's writer.
pub(crate) struct WriteQueue {
    st: Mutex<QueueState>,
    cv: Condvar,
}

struct QueueState {
    items: VecDeque<Packet>,
    bytes: usize,
    closed: bool,
}

/// A push refused: the queue held this many bytes already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow(pub usize);

impl WriteQueue {
    pub(crate) fn new() -> Arc<WriteQueue> {
        Arc::new(WriteQueue {
            st: Mutex::new(QueueState {
                items: VecDeque::new(),
                bytes: 0,
                closed: false,
            }),
            cv: Condvar::new(),
        })
    }

    /// Queues `packets` (kept in order) and wakes the writer. Refused when
    /// more than [`QUEUE_LIMIT`] bytes are already waiting.
    pub(crate) fn push(&self, packets: Vec<Packet>) -> Result<(), Overflow> {
        let mut st = self.st.lock();
        if st.closed {
            return Ok(());
        }
        if st.bytes > QUEUE_LIMIT {
            return Err(Overflow(st.bytes));
        }
        let was_empty = st.items.is_empty();
        for p in packets {
            st.bytes += wire_len(&p);
            st.items.push_back(p);
        }
        drop(st);
        if was_empty {
            self.cv.notify_one();
        }
        Ok(())
    }

    /// Drops what is queued and ends the writer.
    pub(crate) fn close(&self) {
        let mut st = self.st.lock();
        st.closed = true;
        st.items.clear();
        st.bytes = 0;
        drop(st);
        self.cv.notify_one();
    }

    /// Waits for packets; encodes up to [`WRITE_BATCH`] bytes of them into
    /// `buf`. `false` once closed.
    fn take(&self, buf: &mut Vec<u8>) -> bool {
        let mut st = self.st.lock();
        while st.items.is_empty() && !st.closed {
            self.cv.wait(&mut st);
        }
        if st.closed {
            return false;
        }
        buf.clear();
        while let Some(p) = st.items.front() {
            if !buf.is_empty() && buf.len() + wire_len(p) > WRITE_BATCH {
                break;
            }
            let len = wire_len(p);
            if let Some(p) = st.items.pop_front() {
                p.encode(buf);
                st.bytes -= len;
            }
        }
        true
    }
}

fn wire_len(p: &Packet) -> usize {
    crate::wire::zab::encoded_packet_len(p.data.as_ref().map(|d| d.len()))
}

/// The writer thread's body: until the queue closes or a write fails. A
/// failed write closes the socket, so the reader reports the end.
pub(crate) fn write_loop(queue: Arc<WriteQueue>, mut out: QuorumWriter, closer: Closer) {
    let mut buf = Vec::with_capacity(64 * 1024);
    while queue.take(&mut buf) {
        if let Err(e) = io::Write::write_all(&mut out, &buf) {
            log::debug!("quorum connection write failed: {e}");
            closer.close();
            queue.close();
            return;
        }
        if buf.capacity() > 2 * WRITE_BATCH {
            buf = Vec::with_capacity(64 * 1024);
        }
    }
}

/// The reader thread's body: decodes packets and sends `wrap(event)` to
/// the role thread until the connection ends (a last `Closed`) or the role
/// thread is gone. `mode` tells whether a SNAP is followed by a raw Java
/// snapshot stream (interop learners only: pass `None` on the leader side).
pub(crate) fn read_loop<M>(
    mut input: QuorumReader,
    learner_mode: Option<Mode>,
    to_role: Sender<M>,
    wrap: impl Fn(ConnEvent) -> M,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut start = 0usize;
    let mut skipper: Option<SnapshotSkipper> = None;
    let mut fresh = false;
    let cause = loop {
        // Decode everything complete in the buffer.
        let mut packets = Vec::new();
        let mut bad = None;
        loop {
            if let Some(s) = skipper.as_mut() {
                match s.feed(&buf[start..]) {
                    Ok(used) => start += used,
                    Err(e) => {
                        bad = Some(e);
                        break;
                    }
                }
                if !s.done() {
                    break;
                }
                let summary = SkippedSnapshot {
                    bytes: s.bytes as u64,
                    sessions: s.sessions,
                    nodes: s.nodes,
                };
                skipper = None;
                if !packets.is_empty() {
                    let batch = std::mem::take(&mut packets);
                    if to_role.send(wrap(ConnEvent::Packets(batch))).is_err() {
                        return;
                    }
                }
                if to_role
                    .send(wrap(ConnEvent::SnapshotSkipped(summary)))
                    .is_err()
                {
                    return;
                }
                continue;
            }
            match QuorumPacket::decode(&buf[start..]) {
                Ok((p, used)) => {
                    start += used;
                    let raw_snap = learner_mode
                        .is_some_and(|m| crate::zab::raw_snapshot_follows(m, p.packet_type));
                    packets.push(p);
                    if raw_snap {
                        skipper = Some(SnapshotSkipper::new());
                    }
                }
                Err(WireError::Incomplete { .. }) => break,
                Err(e) => {
                    bad = Some(e);
                    break;
                }
            }
        }
        let event = if !packets.is_empty() {
            Some(ConnEvent::Packets(packets))
        } else if fresh && bad.is_none() {
            // Bytes that complete no packet still prove the other side is
            // alive (a large SNAP chunk or a Java snapshot on a slow link).
            Some(ConnEvent::Heard)
        } else {
            None
        };
        if let Some(ev) = event {
            if to_role.send(wrap(ev)).is_err() {
                return;
            }
        }
        if let Some(e) = bad {
            break CloseCause::Bad(e);
        }
        // Compact, then read more.
        if start > 0 && (start == buf.len() || start > READ_CHUNK) {
            buf.drain(..start);
            start = 0;
        }
        let old = buf.len();
        buf.resize(old + READ_CHUNK, 0);
        match input.read(&mut buf[old..]) {
            Ok(0) => {
                buf.truncate(old);
                break CloseCause::Eof;
            }
            Ok(n) => {
                buf.truncate(old + n);
                fresh = true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                buf.truncate(old);
                fresh = false;
            }
            Err(e) => {
                buf.truncate(old);
                break CloseCause::Io(e);
            }
        }
    };
    let _ = to_role.send(wrap(ConnEvent::Closed(cause)));
}
