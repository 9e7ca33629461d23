//! Quorum-port sockets: the one place that creates them (bind, accept,
//! connect) and the byte stream the rest of the runtime reads and writes.
//!
//! Everything above this module sees a [`QuorumStream`] split into a
//! blocking reader, a blocking writer and a [`Closer`], never a
//! `TcpStream`. Quorum TLS (`sslQuorum`, `portUnification`) lives here
//! too: a learner's dial runs the client handshake ([`connect`]), an
//! accepted connection is classified and its server handshake run by
//! [`QuorumStream::secure_inbound`] on that connection's own thread, under
//! initLimit, so a stalled client holds up nobody else. The halves are
//! `crate::tls`'s, which keep the writer's batching (one burst, sealed
//! under a short lock, written outside it).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::tls::{self, Inbound, PeerCloser, PeerStream, QuorumTls};

/// The reading half of a quorum connection (one reader thread owns it).
pub(crate) type QuorumReader = Box<dyn Read + Send>;
/// The writing half of a quorum connection (one writer thread owns it).
pub(crate) type QuorumWriter = Box<dyn Write + Send>;

/// One connected quorum-port stream, plaintext or TLS.
pub(crate) struct QuorumStream {
    stream: PeerStream,
    peer: SocketAddr,
}

impl QuorumStream {
    /// Wraps a connected socket: blocking, TCP_NODELAY (ZooKeeper sets it on
    /// the quorum port too: PINGs and ACKs are small and latency-bound).
    fn new(tcp: TcpStream, peer: SocketAddr) -> io::Result<QuorumStream> {
        tcp.set_nonblocking(false)?;
        tcp.set_nodelay(true)?;
        Ok(QuorumStream {
            stream: PeerStream::Plain(tcp),
            peer,
        })
    }

    /// The server side of quorum TLS for an accepted connection, as
    /// ZooKeeper's `UnifiedServerSocket` does it: a TLS record (first byte
    /// 0x16) gets a TLS handshake, plaintext is accepted only with
    /// `portUnification`; without TLS configured nothing changes. Run on
    /// the connection's own thread; `within` bounds the wait for the first
    /// byte and the handshake.
    pub(crate) fn secure_inbound(
        self,
        tls: Option<&QuorumTls>,
        within: Duration,
    ) -> Result<QuorumStream, String> {
        let Some(tls) = tls else { return Ok(self) };
        let peer = self.peer;
        let PeerStream::Plain(tcp) = self.stream else {
            return Ok(self);
        };
        let start = Instant::now();
        match tls::peek_inbound(tls, &tcp, within) {
            Ok(Some(Inbound::Tls)) => {
                let left = within.saturating_sub(start.elapsed());
                let stream = tls::accept_blocking(tls, tcp, left)
                    .map_err(|e| format!("TLS handshake with {peer} failed: {e}"))?;
                if let PeerStream::Tls(t) = &stream {
                    log::info!("learner TLS from {peer}: {}", t.session());
                }
                Ok(QuorumStream { stream, peer })
            }
            Ok(Some(Inbound::Plain)) => Ok(QuorumStream {
                stream: PeerStream::Plain(tcp),
                peer,
            }),
            Ok(Some(Inbound::RefusePlain)) => Err(format!(
                "Blocked insecure connection attempt: plaintext quorum connection from {peer} refused (sslQuorum=true, portUnification=false)"
            )),
            Ok(None) => Err(format!("{peer} closed before sending anything")),
            Err(e) => Err(format!("nothing from {peer} within {within:?}: {e}")),
        }
    }

    /// The other side's address.
    pub(crate) fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The two halves and a handle that closes both directions.
    pub(crate) fn split(self) -> io::Result<(QuorumReader, QuorumWriter, Closer)> {
        let (reader, writer, closer) = self.stream.split()?;
        Ok((Box::new(reader), Box::new(writer), Closer(Arc::new(closer))))
    }
}

/// Closes a connection from any thread: both directions at once (after a
/// TLS `close_notify`), so the peer sees FIN and our blocked reader and
/// writer return (EOF or an error) and end their threads.
#[derive(Clone)]
pub(crate) struct Closer(Arc<PeerCloser>);

impl Closer {
    /// Shuts the socket down (idempotent).
    pub(crate) fn close(&self) {
        self.0.close();
    }
}

/// Dials a leader's quorum port, giving up after `timeout`; with
/// `sslQuorum` the TLS handshake runs within the same budget
/// (`portUnification` alone still dials plaintext, as ZooKeeper's learner
/// does).
pub(crate) fn connect(
    addr: SocketAddr,
    timeout: Duration,
    tls: Option<&QuorumTls>,
) -> io::Result<QuorumStream> {
    let timeout = timeout.max(Duration::from_millis(1));
    let start = Instant::now();
    let tcp = TcpStream::connect_timeout(&addr, timeout)?;
    let mut s = QuorumStream::new(tcp, addr)?;
    if let Some(tls) = tls.filter(|t| t.ssl_quorum()) {
        let PeerStream::Plain(tcp) = s.stream else {
            return Ok(s);
        };
        let left = timeout.saturating_sub(start.elapsed());
        s.stream = tls::connect_blocking(tls, tcp, &[], left.max(Duration::from_millis(1)))?;
        if let PeerStream::Tls(t) = &s.stream {
            log::info!("TLS to the leader at {addr}: {}", t.session());
        }
    }
    Ok(s)
}

/// A bound quorum port. One thread blocks in [`QuorumListener::accept`];
/// [`QuorumListener::stopper`] wakes it for good.
pub(crate) struct QuorumListener {
    tcp: TcpListener,
    local: SocketAddr,
    stopped: Arc<AtomicBool>,
}

impl QuorumListener {
    /// Binds `addr`. std sets SO_REUSEADDR on Unix listeners, so a port
    /// left in TIME_WAIT by the previous leading term binds again at once
    /// (a failover re-binds within milliseconds).
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<QuorumListener> {
        let tcp = TcpListener::bind(addr)?;
        let local = tcp.local_addr()?;
        Ok(QuorumListener {
            tcp,
            local,
            stopped: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The bound address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next connection; `Ok(None)` once stopped (the listener is then
    /// dropped by its thread, freeing the port).
    pub(crate) fn accept(&self) -> io::Result<Option<QuorumStream>> {
        let (tcp, peer) = self.tcp.accept()?;
        if self.stopped.load(Ordering::Acquire) {
            return Ok(None);
        }
        QuorumStream::new(tcp, peer).map(Some)
    }

    /// True once [`ListenerStopper::stop`] ran.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// A handle that stops this listener from another thread.
    pub(crate) fn stopper(&self) -> ListenerStopper {
        // A wildcard bind is woken through loopback of the same family.
        let ip = match self.local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        ListenerStopper {
            wake: SocketAddr::new(ip, self.local.port()),
            stopped: self.stopped.clone(),
        }
    }
}

/// Stops a [`QuorumListener`] whose thread is blocked in `accept`.
pub(crate) struct ListenerStopper {
    wake: SocketAddr,
    stopped: Arc<AtomicBool>,
}

impl ListenerStopper {
    /// Marks the listener stopped and wakes its `accept` with a connection
    /// to itself (std offers no other portable way to interrupt a blocking
    /// accept). The wake-up connection is dropped at once.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        let _ = TcpStream::connect_timeout(&self.wake, Duration::from_millis(200));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_listener_wakes_and_frees_its_port() {
        let l = QuorumListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr();
        let stop = l.stopper();
        let (tx, rx) = crossbeam_channel::unbounded();
        let t = std::thread::spawn(move || {
            while let Ok(Some(s)) = l.accept() {
                let _ = tx.send(s);
            }
        });
        let s = connect(addr, Duration::from_secs(5), None).unwrap();
        assert_eq!(s.peer_addr(), addr);
        let accepted = rx.recv().expect("accepted");
        stop.stop();
        t.join().unwrap();
        assert!(
            rx.try_recv().is_err(),
            "the wake-up connection is not handed out"
        );
        drop(accepted);
        // The port binds again at once (SO_REUSEADDR, listener dropped).
        QuorumListener::bind(addr).expect("rebind");
    }

    #[test]
    fn closing_wakes_a_blocked_reader() {
        let l = QuorumListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let c = connect(l.local_addr(), Duration::from_secs(5), None).unwrap();
        let _server = l.accept().unwrap().unwrap();
        let (mut r, _w, closer) = c.split().unwrap();
        let t = std::thread::spawn(move || {
            let mut b = [0u8; 8];
            r.read(&mut b).map(|n| n == 0).unwrap_or(true)
        });
        closer.close();
        assert!(t.join().unwrap(), "EOF or an error after close");
    }
}
