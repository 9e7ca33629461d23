//! The QCM's TLS hooks (issue 15): how an accepted or dialled socket
//! becomes the stream the election handshake is read from or written to,
//! and then the [`PeerStream`] the workers get.
//!
//! Inbound, with `sslQuorum` or `portUnification` on, the first byte
//! decides (`tls::QuorumTls::inbound`): a TLS record (`0x16`) gets a TLS
//! handshake; anything else is read as plaintext with `portUnification`,
//! refused with `sslQuorum` alone (ZooKeeper's "Blocked insecure connection
//! attempt"). All of it runs inside the caller's per-connection deadline,
//! so a client that stalls in the TLS handshake delays no one else.
//! Outbound, `sslQuorum` dials with TLS; `portUnification` alone dials
//! plaintext (the first step of ZooKeeper's rolling upgrade).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::tls::{self, Inbound, PeerStream, QuorumTls};

/// A socket on its way to becoming a link: plaintext, or TLS with the
/// handshake done.
pub(crate) enum Establishing {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

/// Why an inbound connection was refused before its election handshake.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Closed before sending a byte (port scanners, health checks).
    Silent,
    /// Plaintext on a TLS-only port.
    Plaintext,
    /// The TLS handshake failed.
    Tls(io::Error),
}

impl Establishing {
    /// The blocking stream the workers take over.
    pub(crate) fn into_peer_stream(self) -> io::Result<PeerStream> {
        match self {
            Establishing::Plain(s) => {
                let s = s.into_std()?;
                s.set_nonblocking(false)?;
                Ok(PeerStream::Plain(s))
            }
            Establishing::Tls(t) => tls::into_blocking(*t),
        }
    }

    /// The raw socket (for a prompt the peer answers by closing it).
    pub(crate) fn into_tcp(self) -> TcpStream {
        match self {
            Establishing::Plain(s) => s,
            Establishing::Tls(t) => match *t {
                tokio_rustls::TlsStream::Client(c) => c.into_inner().0,
                tokio_rustls::TlsStream::Server(s) => s.into_inner().0,
            },
        }
    }

    /// `TLSv1_2 TLS_ECDHE_...` for TLS, `plaintext` otherwise.
    pub(crate) fn describe(&self) -> String {
        match self {
            Establishing::Plain(_) => "plaintext".into(),
            Establishing::Tls(t) => {
                let conn: &rustls::CommonState = match t.as_ref() {
                    tokio_rustls::TlsStream::Client(c) => c.get_ref().1,
                    tokio_rustls::TlsStream::Server(s) => s.get_ref().1,
                };
                let version = conn.protocol_version().map(|v| format!("{v:?}"));
                let suite = conn
                    .negotiated_cipher_suite()
                    .map(|s| format!("{:?}", s.suite()));
                format!(
                    "{} {}",
                    version.unwrap_or_default(),
                    suite.unwrap_or_default()
                )
            }
        }
    }
}

impl AsyncRead for Establishing {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Establishing::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Establishing::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Establishing {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Establishing::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Establishing::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Establishing::Plain(s) => Pin::new(s).poll_flush(cx),
            Establishing::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Establishing::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Establishing::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Decides how to read an accepted connection and runs the TLS handshake
/// if it is one. Without TLS configured, every connection is plaintext.
pub(crate) async fn inbound(
    tls: Option<&QuorumTls>,
    stream: TcpStream,
    remote: SocketAddr,
) -> Result<Establishing, Refusal> {
    let Some(tls) = tls else {
        return Ok(Establishing::Plain(stream));
    };
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(0) => return Err(Refusal::Silent),
        Ok(_) => {}
        Err(e) => return Err(Refusal::Tls(e)),
    }
    match tls.inbound(first[0]) {
        Inbound::Plain => Ok(Establishing::Plain(stream)),
        Inbound::RefusePlain => Err(Refusal::Plaintext),
        Inbound::Tls => match tls::accept(tls, stream, remote.ip()).await {
            Ok(s) => Ok(Establishing::Tls(Box::new(s.into()))),
            Err(e) => Err(Refusal::Tls(e)),
        },
    }
}

/// Runs the client side of TLS on a dialled socket when `sslQuorum` is on;
/// `names` are the configured host names of the address dialled, which the
/// server certificate may match instead of the IP.
pub(crate) async fn outbound(
    tls: Option<&QuorumTls>,
    stream: TcpStream,
    remote: SocketAddr,
    names: &[String],
) -> io::Result<Establishing> {
    match tls {
        Some(tls) if tls.ssl_quorum() => {
            let s = tls::connect(tls, stream, remote.ip(), names).await?;
            Ok(Establishing::Tls(Box::new(s.into())))
        }
        _ => Ok(Establishing::Plain(stream)),
    }
}
