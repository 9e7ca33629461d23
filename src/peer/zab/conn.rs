//! A quorum-port TCP connection read in short slices, so the thread that owns
//! it can poll shutdown flags and deadlines between reads without ever
//! losing a partly received packet (a read timeout in the middle of a packet
//! leaves the bytes in our buffer, not in limbo).

use super::snap::SnapshotSkipper;
use crate::tls::{PeerCloser, PeerReader, PeerStream, PeerWriter};
use crate::wire::zab::QuorumPacket;
use crate::wire::WireError;
use std::io::{self, Read, Write};
use std::time::Duration;

/// How long one read may block: bounds how late a shutdown or a deadline is
/// noticed (the peer loop asks for ≤ 50 ms).
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// What a call to [`Conn::fill`] saw.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fill {
    /// This many new bytes.
    Data(usize),
    /// Nothing within [`POLL`].
    Idle,
    /// The peer closed its side (FIN).
    Eof,
}

pub(crate) struct Conn {
    reader: PeerReader,
    writer: PeerWriter,
    closer: PeerCloser,
    buf: Vec<u8>,
    start: usize,
}

impl Conn {
    /// Wraps a connected stream: TCP_NODELAY (ZooKeeper sets it on the
    /// quorum port too), short read timeout, and `write_timeout` so a peer
    /// that stops reading cannot block us forever. Plaintext or TLS
    /// (`sslQuorum`: the handshake is done by whoever made the stream).
    pub(crate) fn new(stream: PeerStream, write_timeout: Duration) -> io::Result<Conn> {
        let tcp = stream.tcp();
        tcp.set_nonblocking(false)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(POLL))?;
        tcp.set_write_timeout(Some(write_timeout.max(Duration::from_millis(100))))?;
        let (reader, writer, closer) = stream.split()?;
        Ok(Conn {
            reader,
            writer,
            closer,
            buf: Vec::with_capacity(4096),
            start: 0,
        })
    }

    /// Writes one packet whole.
    pub(crate) fn send(&mut self, p: &QuorumPacket) -> io::Result<()> {
        let mut out = Vec::with_capacity(64);
        p.encode(&mut out);
        self.writer.write_all(&out)
    }

    /// Reads whatever arrives within [`POLL`].
    pub(crate) fn fill(&mut self) -> io::Result<Fill> {
        if self.start > 0 && (self.start == self.buf.len() || self.start > 1 << 16) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + 64 * 1024, 0);
        let r = self.reader.read(&mut self.buf[old..]);
        match r {
            Ok(0) => {
                self.buf.truncate(old);
                Ok(Fill::Eof)
            }
            Ok(n) => {
                self.buf.truncate(old + n);
                Ok(Fill::Data(n))
            }
            Err(e) => {
                self.buf.truncate(old);
                match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Ok(Fill::Idle),
                    io::ErrorKind::Interrupted => Ok(Fill::Data(0)),
                    _ => Err(e),
                }
            }
        }
    }

    /// The next complete buffered packet, if any.
    pub(crate) fn try_packet(&mut self) -> Result<Option<QuorumPacket>, WireError> {
        match QuorumPacket::decode(&self.buf[self.start..]) {
            Ok((p, used)) => {
                self.start += used;
                Ok(Some(p))
            }
            Err(WireError::Incomplete { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Feeds buffered bytes to a snapshot walk; true once it is complete.
    pub(crate) fn feed_snapshot(&mut self, snap: &mut SnapshotSkipper) -> Result<bool, WireError> {
        let used = snap.feed(&self.buf[self.start..])?;
        self.start += used;
        Ok(snap.done())
    }

    /// Closes both directions so the peer sees FIN at once (after TLS
    /// `close_notify`).
    pub(crate) fn shutdown(&self) {
        self.closer.close();
    }
}

/// True for the errors that mean "the other side went away".
pub(crate) fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected
    )
}
