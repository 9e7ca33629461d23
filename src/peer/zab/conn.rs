//! A quorum-port TCP connection read in short slices, so the thread that owns
//! it can poll shutdown flags and deadlines between reads without ever
//! losing a partly received packet (a read timeout in the middle of a packet
//! leaves the bytes in our buffer, not in limbo).

use super::snap::SnapshotSkipper;
use crate::wire::zab::QuorumPacket;
use crate::wire::WireError;
use std::io::{self, Read, Write};
use std::net::TcpStream;
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
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

impl Conn {
    /// Wraps a connected stream: TCP_NODELAY (ZooKeeper sets it on the
    /// quorum port too), short read timeout, and `write_timeout` so a peer
    /// that stops reading cannot block us forever.
    pub(crate) fn new(stream: TcpStream, write_timeout: Duration) -> io::Result<Conn> {
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(POLL))?;
        stream.set_write_timeout(Some(write_timeout.max(Duration::from_millis(100))))?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
            start: 0,
        })
    }

    /// Writes one packet whole.
    pub(crate) fn send(&mut self, p: &QuorumPacket) -> io::Result<()> {
        let mut out = Vec::with_capacity(64);
        p.encode(&mut out);
        self.stream.write_all(&out)
    }

    /// Reads whatever arrives within [`POLL`].
    pub(crate) fn fill(&mut self) -> io::Result<Fill> {
        if self.start > 0 && (self.start == self.buf.len() || self.start > 1 << 16) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + 64 * 1024, 0);
        let r = self.stream.read(&mut self.buf[old..]);
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

    /// Closes both directions so the peer sees FIN at once.
    pub(crate) fn shutdown(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
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
