//! Quorum TLS (issue 15): ZooKeeper's `sslQuorum` and `portUnification`
//! on the election and quorum ports, with rustls.
//!
//! * [`QuorumTls::load`] reads the stores named by `ssl.quorum.*` (see
//!   `config::tls` for the keys) at startup; a missing or unreadable file,
//!   a wrong password, a key that does not match its certificate or an
//!   unusable cipher list is a [`TlsError`] naming the key and its line
//!   (the binary exits with status 2);
//! * each connection gets a rustls configuration built from the current
//!   stores, with verifiers bound to that connection's peer (`verify`):
//!   mutual authentication always, host names checked as Java checks them;
//! * with `sslQuorumReloadCertFiles` a thread polls the two store files and
//!   swaps in new stores when they change and load cleanly (a bad new file
//!   is logged and the old stores stay); connections made after the swap
//!   use the new certificates, live links keep theirs (as in ZooKeeper);
//! * [`accept`]/[`connect`] run handshakes on tokio (the QCM's
//!   establishment runtime, under its per-connection deadline);
//!   [`accept_blocking`]/[`connect_blocking`] on a thread of their own
//!   under a deadline (the quorum port's per-learner threads);
//! * `stream` turns an established connection into the blocking read
//!   half / write half pair the worker threads use ([`PeerStream`]).
//!
//! Session resumption is off: links are few and long-lived, and every
//! link then proves its certificate afresh (a reloaded trust store applies
//! to every new link).

mod reload;
mod store;
mod stream;
mod verify;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedCipherSuite};

use crate::config::{QuorumTlsSettings, StoreSettings, TlsVersion, ZkConfig};

pub use store::StoreProblem;
pub use stream::{
    PeerCloser, PeerReader, PeerStream, PeerWriter, TlsReadHalf, TlsStream, TlsWriteHalf,
};

/// The first byte of every TLS record carrying a handshake message (a
/// ClientHello starts `0x16 0x03`). No zkfle or ZooKeeper plaintext
/// connection starts with it: an election handshake starts with `0xff`
/// (V1/V2 protocol version) or `0x00` (3.4's bare sid), a Zab packet with
/// its length's high byte `0x00`.
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A store could not be used (startup error: exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {key}: {problem}", config.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct TlsError {
    /// The configuration file.
    pub config: PathBuf,
    /// The key at fault (`ssl.quorum.keyStore.location`, `...password`).
    pub key: String,
    /// Its line, when it was written in the file.
    pub line: Option<usize>,
    /// What is wrong.
    pub problem: StoreProblem,
}

/// What to do with an inbound connection, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// Run a TLS handshake.
    Tls,
    /// Read it as plaintext.
    Plain,
    /// A plaintext connection on a TLS-only port: close it (ZooKeeper:
    /// "Blocked insecure connection attempt").
    RefusePlain,
}

/// The loaded quorum TLS context. Cheap to clone.
#[derive(Clone)]
pub struct QuorumTls {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for QuorumTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumTls")
            .field("ssl_quorum", &self.inner.settings.ssl_quorum)
            .field("port_unification", &self.inner.settings.port_unification)
            .field("protocols", &self.inner.settings.protocols)
            .finish()
    }
}

struct Inner {
    settings: QuorumTlsSettings,
    provider: Arc<CryptoProvider>,
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
    material: RwLock<Arc<Material>>,
    /// Configured host names by resolved IP (accepted peers' names).
    names_by_ip: HashMap<IpAddr, Vec<String>>,
    reloads: AtomicU64,
    /// Dropped with the context: stops the reload thread at once.
    _reload_stop: Option<crossbeam_channel::Sender<()>>,
}

/// Stores as loaded, and the verifiers built over them.
struct Material {
    key: Arc<CertifiedKey>,
    server_verifier: Arc<WebPkiServerVerifier>,
    client_verifier: Arc<dyn ClientCertVerifier>,
}

impl QuorumTls {
    /// Loads the stores when `sslQuorum` or `portUnification` is on;
    /// `Ok(None)` when neither is.
    pub fn load(config: &ZkConfig) -> Result<Option<QuorumTls>, TlsError> {
        let s = &config.quorum_tls;
        if !s.enabled() {
            return Ok(None);
        }
        let mut names_by_ip: HashMap<IpAddr, Vec<String>> = HashMap::new();
        for server in &config.servers {
            for (host, addr) in server.hosts.iter().zip(&server.quorum_addrs) {
                if host.parse::<IpAddr>().is_err() {
                    let names = names_by_ip.entry(addr.ip()).or_default();
                    if !names.contains(host) {
                        names.push(host.clone());
                    }
                }
            }
        }
        Self::from_settings(s, names_by_ip).map(Some)
    }

    /// Loads the stores of `settings` (which must be enabled).
    /// `names_by_ip` gives the host names an accepted peer's certificate may
    /// carry instead of its IP.
    pub fn from_settings(
        settings: &QuorumTlsSettings,
        names_by_ip: HashMap<IpAddr, Vec<String>>,
    ) -> Result<QuorumTls, TlsError> {
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = settings
            .protocols
            .iter()
            .map(|v| match v {
                TlsVersion::Tls12 => &rustls::version::TLS12,
                TlsVersion::Tls13 => &rustls::version::TLS13,
            })
            .collect();
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites =
            cipher_suites(settings).map_err(|problem| settings_error(settings, problem))?;
        let provider = Arc::new(provider);
        let material = load_material(settings, &provider)?;
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let inner = Arc::new(Inner {
            settings: settings.clone(),
            provider,
            versions,
            material: RwLock::new(Arc::new(material)),
            names_by_ip,
            reloads: AtomicU64::new(0),
            _reload_stop: settings.reload_cert_files.then_some(stop_tx),
        });
        if settings.reload_cert_files {
            reload::spawn(Arc::downgrade(&inner), stop_rx);
        }
        Ok(QuorumTls { inner })
    }

    /// `sslQuorum`: dial with TLS, refuse plaintext unless port
    /// unification is on.
    pub fn ssl_quorum(&self) -> bool {
        self.inner.settings.ssl_quorum
    }

    /// `portUnification`: accept TLS and plaintext.
    pub fn port_unification(&self) -> bool {
        self.inner.settings.port_unification
    }

    /// How many times the stores were reloaded since start.
    pub fn reloads(&self) -> u64 {
        self.inner.reloads.load(Ordering::Relaxed)
    }

    /// What to do with an inbound connection whose first byte is `first`.
    pub fn inbound(&self, first: u8) -> Inbound {
        if first == TLS_HANDSHAKE_RECORD {
            Inbound::Tls
        } else if self.port_unification() || !self.ssl_quorum() {
            Inbound::Plain
        } else {
            Inbound::RefusePlain
        }
    }

    fn material(&self) -> Arc<Material> {
        self.inner.material.read().clone()
    }

    /// A server configuration for a connection from `remote`.
    pub fn server_config(&self, remote: IpAddr) -> Result<Arc<ServerConfig>, rustls::Error> {
        let m = self.material();
        let names = self
            .inner
            .names_by_ip
            .get(&remote)
            .cloned()
            .unwrap_or_default();
        let verifier = verify::PeerClientVerifier {
            inner: m.client_verifier.clone(),
            expected: verify::ExpectedPeer {
                ip: remote,
                names,
                check_names: self.inner.settings.hostname_verification,
            },
        };
        let mut cfg = ServerConfig::builder_with_provider(self.inner.provider.clone())
            .with_protocol_versions(&self.inner.versions)?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(m.key.clone())));
        cfg.session_storage = Arc::new(NoServerSessionStorage {});
        cfg.send_tls13_tickets = 0;
        Ok(Arc::new(cfg))
    }

    /// A client configuration for dialling `remote`, whose configured host
    /// names are `names` (its certificate may name either; the names of
    /// configured servers at that IP count too).
    pub fn client_config(
        &self,
        remote: IpAddr,
        names: &[String],
    ) -> Result<Arc<ClientConfig>, rustls::Error> {
        let m = self.material();
        let mut all = names.to_vec();
        if let Some(known) = self.inner.names_by_ip.get(&remote) {
            all.extend(known.iter().filter(|n| !names.contains(n)).cloned());
        }
        let verifier = verify::PeerServerVerifier {
            inner: m.server_verifier.clone(),
            expected: verify::ExpectedPeer {
                ip: remote,
                names: all,
                check_names: self.inner.settings.hostname_verification,
            },
        };
        let mut cfg = ClientConfig::builder_with_provider(self.inner.provider.clone())
            .with_protocol_versions(&self.inner.versions)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(m.key.clone())));
        cfg.resumption = Resumption::disabled();
        Ok(Arc::new(cfg))
    }

    /// Reloads both stores now; keeps the old ones if either fails.
    pub fn reload(&self) -> Result<(), TlsError> {
        reload_inner(&self.inner)
    }
}

fn reload_inner(inner: &Inner) -> Result<(), TlsError> {
    let m = load_material(&inner.settings, &inner.provider)?;
    *inner.material.write() = Arc::new(m);
    inner.reloads.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn store_error(s: &StoreSettings, problem: StoreProblem, config: &std::path::Path) -> TlsError {
    let key = if problem.is_password() {
        s.password_key.clone()
    } else {
        None
    };
    let (key, line) = match key {
        Some(k) => (k.key, Some(k.line)),
        None if problem.is_password() => {
            (s.location_key.key.replace(".location", ".password"), None)
        }
        None => (s.location_key.key.clone(), Some(s.location_key.line)),
    };
    TlsError {
        config: config.to_path_buf(),
        key,
        line,
        problem,
    }
}

fn settings_error(settings: &QuorumTlsSettings, problem: StoreProblem) -> TlsError {
    let (key, line) = match &settings.cipher_suites {
        Some((k, _)) => (k.key.clone(), Some(k.line)),
        None => ("ssl.quorum.ciphersuites".into(), None),
    };
    TlsError {
        config: settings.config_path.clone(),
        key,
        line,
        problem,
    }
}

fn load_material(
    settings: &QuorumTlsSettings,
    provider: &Arc<CryptoProvider>,
) -> Result<Material, TlsError> {
    let (Some(ks), Some(ts)) = (&settings.key_store, &settings.trust_store) else {
        // config::tls sets both whenever TLS is enabled.
        return Err(TlsError {
            config: settings.config_path.clone(),
            key: "ssl.quorum.keyStore.location".into(),
            line: None,
            problem: StoreProblem::NoCertificate {
                file: PathBuf::new(),
            },
        });
    };
    let path = &settings.config_path;
    let key = store::load_key_store(ks, provider).map_err(|p| store_error(ks, p, path))?;
    let roots: Arc<RootCertStore> =
        Arc::new(store::load_trust_store(ts).map_err(|p| store_error(ts, p, path))?);
    let unusable = |e: String| {
        store_error(
            ts,
            StoreProblem::Unusable {
                file: ts.location.clone(),
                reason: e,
            },
            path,
        )
    };
    let server_verifier =
        WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| unusable(e.to_string()))?;
    let client_verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| unusable(e.to_string()))?;
    Ok(Material {
        key,
        server_verifier,
        client_verifier,
    })
}

/// ZooKeeper's default suites on Java 9+ (`X509Util.getGCMCiphers`; the
/// CBC ones rustls does not implement), then TLS 1.3's AES-GCM suites.
const DEFAULT_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_AES_256_GCM_SHA384",
];

/// The IANA name of a suite; TLS 1.3 suites also by Java's name
/// (`TLS_AES_128_GCM_SHA256`).
fn suite_matches(suite: &SupportedCipherSuite, name: &str) -> bool {
    let ours = format!("{:?}", suite.suite());
    ours == name || ours.strip_prefix("TLS13_").map(|r| format!("TLS_{r}")) == Some(name.into())
}

fn cipher_suites(settings: &QuorumTlsSettings) -> Result<Vec<SupportedCipherSuite>, StoreProblem> {
    let all = rustls::crypto::ring::ALL_CIPHER_SUITES;
    let usable = |s: &SupportedCipherSuite| {
        settings.protocols.iter().any(|v| match v {
            TlsVersion::Tls12 => s.version() == &rustls::version::TLS12,
            TlsVersion::Tls13 => s.version() == &rustls::version::TLS13,
        })
    };
    let names: Vec<String> = match &settings.cipher_suites {
        Some((_, names)) => names.clone(),
        None => DEFAULT_SUITES.iter().map(|s| s.to_string()).collect(),
    };
    let mut out = Vec::new();
    for name in &names {
        match all.iter().find(|s| suite_matches(s, name)) {
            Some(s) if usable(s) => out.push(*s),
            Some(_) => {}
            None if settings.cipher_suites.is_some() => {
                log::warn!(
                    "ssl.quorum.ciphersuites: {name} is not a suite zkfle implements; ignored"
                )
            }
            None => {}
        }
    }
    if out.is_empty() {
        return Err(StoreProblem::NoCipherSuite {
            names,
            available: all
                .iter()
                .filter(|s| usable(s))
                .map(|s| format!("{:?}", s.suite()))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(out)
}

/// The name a dial verifies against by default: the IP dialled.
fn ip_name(ip: IpAddr) -> ServerName<'static> {
    ServerName::IpAddress(ip.into())
}

/// Runs the server side of a TLS handshake on tokio. The caller bounds it
/// with its per-connection deadline.
pub async fn accept(
    tls: &QuorumTls,
    tcp: tokio::net::TcpStream,
    remote: IpAddr,
) -> io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let cfg = tls.server_config(remote).map_err(io::Error::other)?;
    tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await
}

/// Runs the client side of a TLS handshake on tokio, the peer at `remote`
/// known by the configured `names`.
pub async fn connect(
    tls: &QuorumTls,
    tcp: tokio::net::TcpStream,
    remote: IpAddr,
    names: &[String],
) -> io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let cfg = tls.client_config(remote, names).map_err(io::Error::other)?;
    tokio_rustls::TlsConnector::from(cfg)
        .connect(ip_name(remote), tcp)
        .await
}

/// Hands a tokio TLS stream (handshake done, anything already decrypted
/// still inside rustls) to blocking threads.
pub fn into_blocking(
    stream: tokio_rustls::TlsStream<tokio::net::TcpStream>,
) -> io::Result<PeerStream> {
    let (tcp, conn): (tokio::net::TcpStream, rustls::Connection) = match stream {
        tokio_rustls::TlsStream::Client(c) => {
            let (t, c) = c.into_inner();
            (t, c.into())
        }
        tokio_rustls::TlsStream::Server(s) => {
            let (t, c) = s.into_inner();
            (t, c.into())
        }
    };
    let tcp = tcp.into_std()?;
    Ok(PeerStream::Tls(Box::new(TlsStream::new(tcp, conn)?)))
}

/// Drives a handshake on a blocking socket until it completes or
/// `deadline` passes (the socket's timeouts are set to what is left before
/// each step, so a slow peer cannot stretch it).
fn handshake_blocking(
    tcp: &mut TcpStream,
    conn: &mut rustls::Connection,
    deadline: Instant,
) -> io::Result<()> {
    tcp.set_nonblocking(false)?;
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake not completed in time",
            ));
        }
        tcp.set_read_timeout(Some(left))?;
        tcp.set_write_timeout(Some(left))?;
        conn.complete_io(tcp)?;
    }
    // Flush what the handshake left to send (TLS 1.3 client Finished).
    while conn.wants_write() {
        conn.write_tls(tcp)?;
    }
    Ok(())
}

/// The server side of a handshake on a blocking socket, within `timeout`.
pub fn accept_blocking(
    tls: &QuorumTls,
    mut tcp: TcpStream,
    timeout: Duration,
) -> io::Result<PeerStream> {
    let deadline = Instant::now() + timeout;
    let remote = tcp.peer_addr()?.ip();
    let cfg = tls.server_config(remote).map_err(io::Error::other)?;
    let mut conn: rustls::Connection = rustls::ServerConnection::new(cfg)
        .map_err(io::Error::other)?
        .into();
    handshake_blocking(&mut tcp, &mut conn, deadline)?;
    tcp.set_read_timeout(None)?;
    tcp.set_write_timeout(None)?;
    Ok(PeerStream::Tls(Box::new(TlsStream::new(tcp, conn)?)))
}

/// The client side of a handshake on a blocking socket, within `timeout`.
pub fn connect_blocking(
    tls: &QuorumTls,
    mut tcp: TcpStream,
    names: &[String],
    timeout: Duration,
) -> io::Result<PeerStream> {
    let deadline = Instant::now() + timeout;
    let remote = tcp.peer_addr()?.ip();
    let cfg = tls.client_config(remote, names).map_err(io::Error::other)?;
    let mut conn: rustls::Connection = rustls::ClientConnection::new(cfg, ip_name(remote))
        .map_err(io::Error::other)?
        .into();
    handshake_blocking(&mut tcp, &mut conn, deadline)?;
    tcp.set_read_timeout(None)?;
    tcp.set_write_timeout(None)?;
    Ok(PeerStream::Tls(Box::new(TlsStream::new(tcp, conn)?)))
}

/// Decides, within `timeout`, how to treat a connection accepted on a
/// blocking listener: peeks at its first byte. `Ok(None)`: closed before
/// sending anything.
pub fn peek_inbound(
    tls: &QuorumTls,
    tcp: &TcpStream,
    timeout: Duration,
) -> io::Result<Option<Inbound>> {
    tcp.set_nonblocking(false)?;
    tcp.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
    let mut first = [0u8; 1];
    let n = tcp.peek(&mut first)?;
    tcp.set_read_timeout(None)?;
    Ok((n == 1).then(|| tls.inbound(first[0])))
}
