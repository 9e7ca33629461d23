//! The per-connection OS threads: a SendWorker that drains the peer's send
//! queue into one write, and a RecvWorker that decodes every complete frame
//! of each read.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use crossbeam_channel::{select, Receiver};

use super::{bump, LogKind, PeerSlot, Shared};
use crate::wire::frame::split_frame;
use crate::wire::{Notification, WireError, MAX_FRAME_LEN, NOTIFICATION_LEN};

/// Bytes of one notification frame on the wire.
const FRAME_LEN: usize = NOTIFICATION_LEN + 4;
/// Initial receive buffer; it grows up to one maximal frame when needed.
const RECV_BUF: usize = 64 * 1024;

fn append_frame(buf: &mut Vec<u8>, body: &[u8; NOTIFICATION_LEN]) {
    buf.extend_from_slice(&(NOTIFICATION_LEN as i32).to_be_bytes());
    buf.extend_from_slice(body);
}

/// Writes everything queued for the peer, batch by batch, each batch in one
/// `write` call. Exits when the link is closed or a write fails, closing the
/// link (the RecvWorker then stops too).
pub(crate) fn send_worker(
    shared: Arc<Shared>,
    slot: Arc<PeerSlot>,
    id: u64,
    mut stream: TcpStream,
    stop: Receiver<()>,
) {
    let queue = slot.queue.receiver().clone();
    let mut buf: Vec<u8> =
        Vec::with_capacity(FRAME_LEN * shared.cfg.send_queue_capacity.clamp(1, 4096));

    // ZooKeeper re-sends the last message on a new connection when nothing is
    // queued (PROTOCOL.md §3.6): a message that was being written when the
    // old connection died is not lost, and a peer that restarted learns our
    // vote without waiting for our next one.
    if queue.is_empty() {
        let last = *slot.last_sent.lock();
        if let Some(last) = last {
            append_frame(&mut buf, &last);
            if let Err(e) = stream.write_all(&buf) {
                shared.close_link(&slot, id, &format!("write failed: {e}"));
                return;
            }
            bump(&shared.counters.notifications_sent, 1);
        }
    }

    let why = loop {
        let first = select! {
            recv(queue) -> m => match m {
                Ok(m) => m,
                Err(_) => break "send queue closed".to_string(),
            },
            recv(stop) -> _ => break "link closed".to_string(),
        };
        buf.clear();
        append_frame(&mut buf, &first);
        let mut last = first;
        let mut count = 1u64;
        // Drain what is queued now into the same write: under load one
        // syscall carries many notifications.
        while let Ok(m) = queue.try_recv() {
            append_frame(&mut buf, &m);
            last = m;
            count += 1;
        }
        // Recorded before writing: if the write fails, this is what a new
        // connection re-sends.
        *slot.last_sent.lock() = Some(last);
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
    mut stream: TcpStream,
) {
    let sid = slot.sid;
    let mut buf = vec![0u8; RECV_BUF];
    let (mut start, mut end) = (0usize, 0usize);
    let why = 'outer: loop {
        loop {
            match split_frame(&buf[start..end]) {
                Ok((body, used)) => {
                    handle_body(&shared, sid, body);
                    start += used;
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
                    bump(&shared.counters.bad_frames, 1);
                    shared.limits.warn(
                        LogKind::Frame,
                        format_args!("closing election connection from sid {sid}: {e}"),
                    );
                    break 'outer format!("bad frame: {e}");
                }
            }
        }
        match stream.read(&mut buf[end..]) {
            Ok(0) => break "closed by peer".to_string(),
            Ok(n) => end += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break format!("read failed: {e}"),
        }
    };
    shared.close_link(&slot, id, &why);
}

fn handle_body(shared: &Shared, sid: i64, body: &[u8]) {
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
            shared.deliver(sid, n);
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
