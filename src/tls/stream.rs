//! A blocking TLS stream split into a read half and a write half, so two
//! threads (the QCM's RecvWorker and SendWorker, or a Zab connection's
//! owner) can use one TLS connection at once without giving up batching.
//!
//! How records flow:
//!
//! * one `rustls::Connection` per link sits behind a small mutex, held only
//!   for CPU work, never across a socket call;
//! * the **read half** reads raw TCP bytes into its own 64 KiB buffer
//!   *outside* the lock, then under the lock feeds them to rustls, decrypts
//!   and copies out plaintext. A read that times out (the Zab connection's
//!   short read timeout) leaves no state behind: undecrypted bytes stay in
//!   the buffer or inside rustls;
//! * the **write half** takes one whole batch (everything the SendWorker
//!   drained from its queue), encrypts it under the lock into records, and
//!   writes the records with one `write_all` *outside* the lock. Records
//!   must reach the wire in the order they were sealed (their sequence
//!   numbers are implicit), so a second, writers-only gate serialises
//!   seal-and-write; the reader never writes. Whatever TLS output the read
//!   side makes rustls queue (a TLS 1.3 KeyUpdate answer, an alert) goes
//!   out with the next batch, in order;
//! * [`PeerCloser::close`] sends `close_notify` when no batch is being
//!   written (a best effort with a 100 ms write timeout: a peer that
//!   stopped reading must not hold up a close), then shuts the socket down,
//!   which wakes a blocked reader and fails a blocked writer, as for
//!   plaintext links.
//!
//! [`PeerStream`] is what establishment hands over: plaintext or TLS, the
//! same three pieces either way.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// Raw bytes read per socket call by the read half.
const RAW_BUF: usize = 64 * 1024;
/// Longest a close waits to hand `close_notify` to the kernel.
const CLOSE_NOTIFY_TIMEOUT: Duration = Duration::from_millis(100);

struct Shared {
    conn: Mutex<rustls::Connection>,
    /// Held by whoever seals and writes records (write half, closer).
    write_gate: Mutex<()>,
}

/// An established TLS connection over a blocking `TcpStream`.
pub struct TlsStream {
    tcp: TcpStream,
    conn: rustls::Connection,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("peer", &self.tcp.peer_addr().ok())
            .field("session", &describe(&self.conn))
            .finish()
    }
}

/// `TLSv1_2 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, for logs.
pub(crate) fn describe(conn: &rustls::Connection) -> String {
    let version = conn
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_else(|| "?".into());
    let suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_else(|| "?".into());
    format!("{version} {suite}")
}

impl TlsStream {
    /// Wraps a connection whose handshake is complete (or will complete
    /// through the halves). The socket is put in blocking mode.
    pub fn new(tcp: TcpStream, conn: impl Into<rustls::Connection>) -> io::Result<TlsStream> {
        tcp.set_nonblocking(false)?;
        let mut conn = conn.into();
        // The write half encrypts a whole batch at once and drains it
        // straight away: no limit on what rustls holds in between.
        conn.set_buffer_limit(None);
        Ok(TlsStream { tcp, conn })
    }

    /// The underlying socket (options, addresses).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Protocol version and cipher suite, for logs.
    pub fn session(&self) -> String {
        describe(&self.conn)
    }

    /// The read half, the write half and a closer.
    pub fn split(self) -> io::Result<(TlsReadHalf, TlsWriteHalf, PeerCloser)> {
        let shared = Arc::new(Shared {
            conn: Mutex::new(self.conn),
            write_gate: Mutex::new(()),
        });
        let reader = TlsReadHalf {
            tcp: self.tcp.try_clone()?,
            shared: shared.clone(),
            raw: vec![0u8; RAW_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
        };
        let writer = TlsWriteHalf {
            tcp: self.tcp.try_clone()?,
            shared: shared.clone(),
            out: Vec::with_capacity(16 * 1024),
        };
        let closer = PeerCloser {
            tcp: self.tcp,
            tls: Some(shared),
        };
        Ok((reader, writer, closer))
    }
}

/// The reading half of a [`TlsStream`].
pub struct TlsReadHalf {
    tcp: TcpStream,
    shared: Arc<Shared>,
    raw: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
}

impl std::fmt::Debug for TlsReadHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReadHalf")
            .field("buffered", &(self.end - self.start))
            .finish()
    }
}

impl Read for TlsReadHalf {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let mut conn = self.shared.conn.lock();
                loop {
                    // Plaintext first: rustls holds at most a bounded
                    // amount, so feed it only as fast as it is taken.
                    match conn.reader().read(out) {
                        // Ok(0): the peer sent close_notify.
                        Ok(n) => return Ok(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                    if self.start == self.end {
                        break;
                    }
                    let used = conn.read_tls(&mut &self.raw[self.start..self.end])?;
                    self.start += used;
                    conn.process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                }
            }
            if self.eof {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            // Outside the lock: the writer may seal records meanwhile.
            let n = self.tcp.read(&mut self.raw)?;
            self.start = 0;
            self.end = n;
            if n == 0 {
                self.eof = true;
                let mut conn = self.shared.conn.lock();
                // An empty read tells rustls the transport ended.
                conn.read_tls(&mut &[][..])?;
                conn.process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
        }
    }
}

/// The writing half of a [`TlsStream`].
pub struct TlsWriteHalf {
    tcp: TcpStream,
    shared: Arc<Shared>,
    out: Vec<u8>,
}

impl std::fmt::Debug for TlsWriteHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsWriteHalf").finish()
    }
}

impl TlsWriteHalf {
    /// Seals `plaintext` (and anything rustls queued meanwhile) into
    /// records under the connection lock, then writes them in one call.
    fn send(&mut self, plaintext: &[u8]) -> io::Result<()> {
        let _gate = self.shared.write_gate.lock();
        self.out.clear();
        {
            let mut conn = self.shared.conn.lock();
            conn.writer().write_all(plaintext)?;
            while conn.wants_write() {
                conn.write_tls(&mut self.out)?;
            }
        }
        let r = self.tcp.write_all(&self.out);
        if self.out.capacity() > 1 << 20 {
            self.out = Vec::with_capacity(16 * 1024);
        }
        r
    }
}

impl Write for TlsWriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.send(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Closes a link from any thread: `close_notify` (TLS, best effort), then
/// shuts the socket down both ways.
pub struct PeerCloser {
    tcp: TcpStream,
    tls: Option<Arc<Shared>>,
}

impl std::fmt::Debug for PeerCloser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerCloser")
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl PeerCloser {
    /// A closer for a plaintext socket.
    pub fn plain(tcp: TcpStream) -> PeerCloser {
        PeerCloser { tcp, tls: None }
    }

    /// The socket.
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Sends `close_notify` unless a batch is being written right now,
    /// then shuts the socket down. Idempotent.
    pub fn close(&self) {
        if let Some(shared) = &self.tls {
            if let Some(_gate) = shared.write_gate.try_lock() {
                let mut out = Vec::new();
                {
                    let mut conn = shared.conn.lock();
                    conn.send_close_notify();
                    while conn.wants_write() {
                        if conn.write_tls(&mut out).is_err() {
                            break;
                        }
                    }
                }
                if !out.is_empty()
                    && self
                        .tcp
                        .set_write_timeout(Some(CLOSE_NOTIFY_TIMEOUT))
                        .is_ok()
                {
                    let _ = (&self.tcp).write_all(&out);
                }
            }
        }
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}

/// An established peer connection, plaintext or TLS, as establishment
/// hands it to the threads that use it.
#[derive(Debug)]
pub enum PeerStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: rustls state is large, and this moves
    /// between tasks and threads).
    Tls(Box<TlsStream>),
}

impl PeerStream {
    /// The underlying socket.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            PeerStream::Plain(s) => s,
            PeerStream::Tls(t) => t.tcp(),
        }
    }

    /// True for TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, PeerStream::Tls(_))
    }

    /// Splits into a reader, a writer and a closer (each `Send + 'static`).
    pub fn split(self) -> io::Result<(PeerReader, PeerWriter, PeerCloser)> {
        match self {
            PeerStream::Plain(s) => {
                let r = s.try_clone()?;
                let w = s.try_clone()?;
                Ok((
                    PeerReader::Plain(r),
                    PeerWriter::Plain(w),
                    PeerCloser::plain(s),
                ))
            }
            PeerStream::Tls(t) => {
                let (r, w, c) = (*t).split()?;
                Ok((PeerReader::Tls(r), PeerWriter::Tls(w), c))
            }
        }
    }
}

/// The reading side of a [`PeerStream`].
#[derive(Debug)]
pub enum PeerReader {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS.
    Tls(TlsReadHalf),
}

impl Read for PeerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            PeerReader::Plain(s) => s.read(buf),
            PeerReader::Tls(t) => t.read(buf),
        }
    }
}

/// The writing side of a [`PeerStream`].
#[derive(Debug)]
pub enum PeerWriter {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS.
    Tls(TlsWriteHalf),
}

impl Write for PeerWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            PeerWriter::Plain(s) => s.write(buf),
            PeerWriter::Tls(t) => t.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            PeerWriter::Plain(s) => s.write_all(buf),
            PeerWriter::Tls(t) => t.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
