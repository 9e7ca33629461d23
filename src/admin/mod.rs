//! The operator's side of a peer: four-letter words on `clientPort`
//! ([`fourlw`], ZooKeeper 3.8's line formats, `4lw.commands.whitelist`) and
//! Prometheus metrics on `GET /metrics` ([`metrics`], [`http`]) when
//! `metricsProvider.className` names ZooKeeper's Prometheus provider.
//!
//! [`Admin`] is started beside a running [`QuorumPeer`] by the binary and by
//! `PeerBuilder`; the peer itself never starts or imports it (DESIGN.md's
//! import rules). Both listeners run on one small tokio runtime: a client
//! that connects and never writes only holds its own task until the read
//! deadline. Every answer is computed from a [`View`], one consistent
//! reading of the peer's status and of its connection manager.

pub mod client;
pub mod fourlw;
pub mod http;
pub mod metrics;
pub mod mntr;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cnx::{Qcm, QcmStats};
use crate::config::{FourLetterWords, ZkConfig};
use crate::peer::status::{NetStats, PeerStatus, StatusSnapshot};
use crate::peer::timings::Timings;
use crate::peer::QuorumPeer;

pub use fourlw::{AdminCounters, NOT_SERVING};

/// The version string `srvr`/`stat`/`mntr` print. It starts with the
/// ZooKeeper release whose protocol zkfle speaks, as tools that parse the
/// version only look at that part.
pub const VERSION_TEXT: &str = concat!("3.8.0-zkfle-", env!("CARGO_PKG_VERSION"));

/// How long a client may take to send its request (four letters or an
/// HTTP request head).
pub(crate) const READ_DEADLINE: Duration = Duration::from_secs(5);

/// Errors starting the admin listeners.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A port could not be bound.
    #[error("cannot bind {what} {addr}: {source}")]
    Bind {
        /// `client port` or `metrics port`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The runtime could not be built.
    #[error("cannot start the admin runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// One consistent reading of everything the answers are computed from.
#[derive(Debug, Clone)]
pub struct View {
    /// The peer's status.
    pub snap: StatusSnapshot,
    /// ZooKeeper's election and availability timings.
    pub timings: Timings,
    /// The election-port figures `mntr` has always shown.
    pub net: NetStats,
    /// The connection manager's counters (`None` without one, in tests).
    pub qcm: Option<QcmStats>,
    /// Every configured peer but this one, with whether its election link
    /// is up now.
    pub links: Vec<(i64, bool)>,
    /// When the reading was taken (summaries' windows end here).
    pub at: Instant,
}

/// Where [`View`]s come from.
#[derive(Clone)]
pub struct Sources {
    /// The peer's status.
    pub status: Arc<PeerStatus>,
    /// Its connection manager.
    pub qcm: Option<Qcm>,
    /// Every configured sid but this one.
    pub peers: Vec<i64>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("peers", &self.peers)
            .finish()
    }
}

impl Sources {
    /// The sources of a running peer.
    pub fn of(peer: &QuorumPeer) -> Sources {
        let me = peer.my_sid();
        Sources {
            status: peer.status().clone(),
            qcm: Some(peer.qcm().clone()),
            peers: peer
                .config()
                .servers
                .iter()
                .map(|s| s.sid)
                .filter(|&s| s != me)
                .collect(),
        }
    }

    /// Reads them now.
    pub fn view(&self) -> View {
        let connected: Vec<i64> = self
            .qcm
            .as_ref()
            .map(|q| q.connected_peers())
            .unwrap_or_default();
        View {
            snap: self.status.snapshot(),
            timings: self.status.timings(),
            net: self.status.net(),
            qcm: self.qcm.as_ref().map(|q| q.stats()),
            links: self
                .peers
                .iter()
                .map(|&sid| (sid, connected.contains(&sid)))
                .collect(),
            at: Instant::now(),
        }
    }
}

/// What the listeners serve, from `zoo.cfg`.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// The four-letter-word address (`clientPort`/`clientPortAddress` or
    /// the server line's client part); `None` = no four-letter words.
    pub client_addr: Option<SocketAddr>,
    /// The metrics address; `None` = no `/metrics`.
    pub metrics_addr: Option<SocketAddr>,
    /// `4lw.commands.whitelist`.
    pub words: FourLetterWords,
    /// The answer to `conf`.
    pub conf: String,
}

impl AdminConfig {
    /// The settings of `config`.
    pub fn from_config(config: &ZkConfig) -> AdminConfig {
        AdminConfig {
            client_addr: config.client_addr,
            metrics_addr: config.metrics.as_ref().map(|m| m.addr),
            words: config.four_letter_words.clone(),
            conf: config.to_conf_text(),
        }
    }
}

/// The running admin listeners. Dropping it stops them.
pub struct Admin {
    runtime: Option<tokio::runtime::Runtime>,
    client_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    stop: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("client_addr", &self.client_addr)
            .field("metrics_addr", &self.metrics_addr)
            .finish()
    }
}

impl Admin {
    /// Serves four-letter words and metrics about `peer`, as its `zoo.cfg`
    /// asks (nothing at all without a client port or a metrics provider).
    pub fn start(peer: &QuorumPeer) -> Result<Admin, AdminError> {
        Admin::start_with(AdminConfig::from_config(peer.config()), Sources::of(peer))
    }

    /// Serves what `cfg` asks about `sources`.
    pub fn start_with(cfg: AdminConfig, sources: Sources) -> Result<Admin, AdminError> {
        let stop = Arc::new(tokio::sync::Notify::new());
        if cfg.client_addr.is_none() && cfg.metrics_addr.is_none() {
            return Ok(Admin {
                runtime: None,
                client_addr: None,
                metrics_addr: None,
                stop,
            });
        }
        // Both ports are bound before the runtime exists: a runtime dropped
        // on a bind error would panic when the caller runs async code
        // ("Cannot drop a runtime in a context where blocking is not
        // allowed"), and a taken port must be a plain error.
        let client = match cfg.client_addr {
            Some(addr) => Some((addr, bind_std("client port", addr)?)),
            None => None,
        };
        let metrics = match cfg.metrics_addr {
            Some(addr) => Some((addr, bind_std("metrics port", addr)?)),
            None => None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("admin{}", sources.status.snapshot().my_sid))
            .enable_all()
            .build()
            .map_err(AdminError::Runtime)?;
        let registered = (|| {
            let client_addr = match client {
                Some((addr, std_listener)) => {
                    let listener = register(&runtime, "client port", addr, std_listener)?;
                    let local = listener.local_addr().unwrap_or(addr);
                    runtime.spawn(fourlw::serve(
                        listener,
                        sources.clone(),
                        Arc::new(cfg.words.clone()),
                        Arc::new(cfg.conf.clone()),
                        stop.clone(),
                    ));
                    log::info!("four-letter words on {local}");
                    Some(local)
                }
                None => None,
            };
            let metrics_addr = match metrics {
                Some((addr, std_listener)) => {
                    let listener = register(&runtime, "metrics port", addr, std_listener)?;
                    let local = listener.local_addr().unwrap_or(addr);
                    runtime.spawn(http::serve(listener, sources, stop.clone()));
                    log::info!("Prometheus metrics on http://{local}/metrics");
                    Some(local)
                }
                None => None,
            };
            Ok((client_addr, metrics_addr))
        })();
        let (client_addr, metrics_addr) = match registered {
            Ok(addrs) => addrs,
            Err(e) => {
                crate::cnx::shutdown_runtime(runtime, Duration::from_secs(2));
                return Err(e);
            }
        };
        Ok(Admin {
            runtime: Some(runtime),
            client_addr,
            metrics_addr,
            stop,
        })
    }

    /// The bound four-letter-word address (useful with port 0).
    pub fn client_addr(&self) -> Option<SocketAddr> {
        self.client_addr
    }

    /// The bound metrics address.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Stops accepting, drops open connections and joins the runtime's
    /// threads. Idempotent.
    pub fn shutdown(&mut self) {
        self.stop.notify_waiters();
        if let Some(rt) = self.runtime.take() {
            // Safe from an embedder's async context too.
            crate::cnx::shutdown_runtime(rt, Duration::from_secs(2));
        }
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds `addr` (std bind, so the error is immediate and no runtime exists
/// yet to be dropped on failure).
fn bind_std(what: &'static str, addr: SocketAddr) -> Result<std::net::TcpListener, AdminError> {
    let err = |source| AdminError::Bind { what, addr, source };
    let std_listener = std::net::TcpListener::bind(addr).map_err(err)?;
    std_listener.set_nonblocking(true).map_err(err)?;
    Ok(std_listener)
}

/// Hands a bound listener to the runtime.
fn register(
    runtime: &tokio::runtime::Runtime,
    what: &'static str,
    addr: SocketAddr,
    std_listener: std::net::TcpListener,
) -> Result<tokio::net::TcpListener, AdminError> {
    let _g = runtime.enter();
    tokio::net::TcpListener::from_std(std_listener).map_err(|source| AdminError::Bind {
        what,
        addr,
        source,
    })
}

/// A `double` as Java's `Double.toString` prints it (ZooKeeper's `mntr`
/// averages): `490.0`, `0.2308`, `1.0E7`.
pub fn java_double(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let a = v.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        // Rust: "1e7", "1.5e-4"; Java: "1.0E7", "1.5E-4".
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exp}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ServerState;
    use std::io::{Read, Write};

    fn ask(addr: SocketAddr, bytes: &[u8]) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Split the request to check that partial reads are joined.
        s.write_all(&bytes[..2]).unwrap();
        s.write_all(&bytes[2..]).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn both_listeners_answer_over_tcp_and_stop_on_shutdown() {
        let st = Arc::new(PeerStatus::new(1, 1, 0, 0));
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let cfg = AdminConfig {
            client_addr: Some(any),
            metrics_addr: Some(any),
            words: FourLetterWords::parse(Some("ruok,conf")),
            conf: "serverId=1\n".into(),
        };
        let sources = Sources {
            status: st.clone(),
            qcm: None,
            peers: vec![],
        };
        let mut admin = Admin::start_with(cfg, sources).unwrap();
        let c = admin.client_addr().unwrap();
        let m = admin.metrics_addr().unwrap();
        assert_eq!(ask(c, b"ruok"), "imok");
        assert_eq!(ask(c, b"conf"), "serverId=1\n");
        assert_eq!(ask(c, b"srvr"), NOT_SERVING);
        assert_eq!(
            ask(c, b"mntr"),
            "mntr is not executed because it is not in the whitelist.\n"
        );
        st.update(|s| {
            s.state = ServerState::Leading;
            s.serving = true;
            s.leader_sid = 1;
        });
        assert!(ask(c, b"srvr").ends_with("Mode: leader\n"));
        let r = ask(m, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            r.starts_with(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            ),
            "{r}"
        );
        assert!(r.contains("\r\n\r\n# HELP looking_count"), "{r}");
        assert!(r.contains("\nquorum_size 1\n"), "{r}");
        let r = ask(m, b"GET /other HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
        admin.shutdown();
        assert!(std::net::TcpStream::connect(c).is_err());
        assert!(std::net::TcpStream::connect(m).is_err());
    }

    /// DESIGN.md's import rule: the peer never reaches up to the admin
    /// side or the embedding API; they are started beside it.
    #[test]
    fn peer_never_imports_admin_or_api() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/peer"),
            &mut files,
        );
        assert!(!files.is_empty());
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            // Code, not docs: a doc comment may name the admin side.
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for bad in ["crate::admin", "crate::api", "crate::PeerBuilder"] {
                    assert!(!line.contains(bad), "{}: {line}", f.display());
                }
            }
        }
    }

    #[test]
    fn doubles_print_as_java_does() {
        assert_eq!(java_double(490.0), "490.0");
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(0.2308), "0.2308");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(12345678.5), "1.23456785E7");
        assert_eq!(java_double(0.0001), "1.0E-4");
        assert_eq!(java_double(f64::NAN), "NaN");
    }
}
