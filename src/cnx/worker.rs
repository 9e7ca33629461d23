//! The per-connection OS threads: a SendWorker that drains the peer's send
//! queue into one write, and a RecvWorker that decodes every complete frame
//! of each read. On a TLS link the write is one batch sealed into records
//! and written in one call, the read decrypts whatever one socket read
//! brought (`crate::tls` stream halves).

use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;

use super::links::{PeerSlot, Shared};
use super::stats::{bump, LogKind};
use crate::tls::{PeerReader, PeerWriter};
use crate::wire::frame::split_frame;
use crate::wire::{Notification, WireError, MAX_FRAME_LEN, NOTIFICATION_LEN};

/// Bytes of one notification frame on the wire.
const FRAME_LEN: usize = NOTIFICATION_LEN + 4;
/// Initial receive buffer: 93 notification frames, more than a window-64
/// burst. A link carries a few notifications per election, so most never
/// need more; 50 links of a 51-peer ensemble at 64 KiB each were 3 MB of
/// every peer's memory.
const RECV_BUF: usize = 4 * 1024;
/// A read that fills the buffer doubles it, up to this: under a stream of
/// notifications one read then decodes a large batch.
const RECV_BUF_BATCH: usize = 64 * 1024;
/// Notifications delivered at most in one go: a 64 KiB read holds 1365
/// frames, more than the default receive queue (1024), and the election
/// thread should start draining before the queue overflows.
const DELIVER_CHUNK: usize = 256;

fn append_frame(buf: &mut Vec<u8>, body: &[u8; NOTIFICATION_LEN]) {
    buf.extend_from_slice(&(NOTIFICATION_LEN as i32).to_be_bytes());
    buf.extend_from_slice(body);
}

/// Writes everything queued for the peer, batch by batch, each batch in one
/// `write` call. Exits when the link is closed or a write fails, closing the
/// link (the RecvWorker then stops too).
///
/// Messages are taken off the queue only while holding the slot's link lock
/// and only if this worker's link is still the current one: a worker whose
/// link was just replaced must not take messages meant for its successor
/// and write them into a dead socket.
pub(crate) fn send_worker(
    shared: Arc<Shared>,
    slot: Arc<PeerSlot>,
    id: u64,
    mut stream: PeerWriter,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(FRAME_LEN * 64);

    // ZooKeeper re-sends the last message on a new connection when nothing is
    // queued (PROTOCOL.md §3.6): a message that was being written when the
    // old connection died is not lost, and a peer that restarted learns our
    // vote without waiting for our next one.
    let resend = {
        let mut link = slot.link.lock();
        match link.as_mut() {
            Some(l) if l.id == id => {
                // Registered before the queue is first looked at: whoever
                // queues after this unparks us, and whatever was queued
                // before is seen by the first drain.
                l.sender = Some(std::thread::current());
            }
            _ => return,
        }
        if slot.queue.len() == 0 {
            *slot.last_sent.lock()
        } else {
            None
        }
    };
    if let Some(last) = resend {
        append_frame(&mut buf, &last);
        if let Err(e) = stream.write_all(&buf) {
            shared.close_link(&slot, id, &format!("write failed: {e}"));
            return;
        }
        bump(&shared.counters.notifications_sent, 1);
    }

    let why = loop {
        buf.clear();
        let count = {
            let link = slot.link.lock();
            if link.as_ref().map(|l| l.id) != Some(id) {
                break "link closed".to_string();
            }
            // Drain what is queued now into one write: under load one
            // syscall carries many notifications.
            let mut last = None;
            let count = slot.queue.drain_each(|m| {
                append_frame(&mut buf, &m);
                last = Some(m);
            });
            // Recorded before writing: if the write fails, this is what
            // the next connection re-sends.
            if last.is_some() {
                *slot.last_sent.lock() = last;
            }
            count
        };
        if count == 0 {
            // Nothing queued: sleep until a sender or close() unparks us
            // (Link::wake_sender). Wakes may be spurious; the loop looks
            // again.
            std::thread::park();
            continue;
        }
        if let Err(e) = stream.write_all(&buf) {
            break format!("write failed: {e}");
        }
        bump(&shared.counters.notifications_sent, count);
    };
    shared.close_link(&slot, id, &why);
}

/// Reads frames until the link closes. A bad frame length closes the link
/// (the stream cannot be resynchronised); a body that does not decode is
/// dropped and counted, and the link is kept (PROTOCOL.md §8 R14, R6).
pub(crate) fn recv_worker(
    shared: Arc<Shared>,
    slot: Arc<PeerSlot>,
    id: u64,
    mut stream: PeerReader,
) {
    let sid = slot.sid;
    let mut buf = vec![0u8; RECV_BUF];
    let (mut start, mut end) = (0usize, 0usize);
    // The notifications decoded from one read, delivered together: the
    // election thread is woken once per read, not once per frame. Woken
    // after the first frame of a burst, it would answer that one alone, and
    // the SendWorker, the peer and the peer's next burst would all shrink to
    // single frames (measured: ~3 notifications per thread wake-up at
    // window 64 before, see BENCHMARKS.md §1).
    let mut batch: Vec<Notification> = Vec::new();
    let why = 'outer: loop {
        loop {
            match split_frame(&buf[start..end]) {
                Ok((body, used)) => {
                    decode_body(&shared, sid, body, &mut batch);
                    start += used;
                    if batch.len() >= DELIVER_CHUNK {
                        shared.deliver_many(sid, &mut batch);
                    }
                }
                Err(WireError::Incomplete { needed }) => {
                    // Make room for the rest of this frame: move the partial
                    // frame to the front, and grow (at most to one maximal
                    // frame) if it still would not fit.
                    if start > 0 {
                        buf.copy_within(start..end, 0);
                        end -= start;
                        start = 0;
                    }
                    let want = end + needed;
                    if want > buf.len() {
                        buf.resize(want.min(MAX_FRAME_LEN + 4), 0);
                    }
                    break;
                }
                Err(e) => {
                    // What came before the bad frame was sent in good faith.
                    shared.deliver_many(sid, &mut batch);
                    bump(&shared.counters.bad_frames, 1);
                    shared.limits.warn(
                        LogKind::Frame,
                        format_args!("closing election connection from sid {sid}: {e}"),
                    );
                    break 'outer format!("bad frame: {e}");
                }
            }
        }
        shared.deliver_many(sid, &mut batch);
        if start == end {
            (start, end) = (0, 0);
            if buf.len() > RECV_BUF_BATCH {
                // A large frame passed: give the memory back.
                buf.truncate(RECV_BUF_BATCH);
                buf.shrink_to_fit();
            }
        }
        let room = buf.len() - end;
        match stream.read(&mut buf[end..]) {
            Ok(0) => break "closed by peer".to_string(),
            Ok(n) => {
                end += n;
                if n == room && buf.len() < RECV_BUF_BATCH {
                    // More is probably waiting: read bigger batches.
                    buf.resize(buf.len() * 2, 0);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break format!("read failed: {e}"),
        }
    };
    shared.close_link(&slot, id, &why);
}

/// Decodes one frame body into `batch`; a body that does not decode is
/// counted and dropped.
fn decode_body(shared: &Shared, sid: i64, body: &[u8], batch: &mut Vec<Notification>) {
    match Notification::decode(body) {
        Ok((n, config)) => {
            if let Some(config) = config {
                // Config text is for the operator's eyes only: never parsed
                // into membership, never adopted (PROTOCOL.md §8 R6/R7).
                if log::log_enabled!(log::Level::Debug) {
                    log::debug!(
                        "sid {sid} sent config text {:?}",
                        String::from_utf8_lossy(config)
                    );
                }
            }
            log::trace!("notification from sid {sid}: {n:?}");
            batch.push(n);
        }
        Err(e) => {
            bump(&shared.counters.bad_frames, 1);
            shared.limits.warn(
                LogKind::Frame,
                format_args!(
                    "dropping a {}-byte notification from sid {sid}: {e}",
                    body.len()
                ),
            );
        }
    }
}
