//! The embedding API: run one ensemble member inside another program (a
//! replicated store, a lock service, a scheduler) and react to who leads.
//!
//! [`PeerBuilder`] builds a peer from a `zoo.cfg` or from code and starts
//! it; the [`PeerHandle`] it returns answers "am I the leader?" with one
//! atomic load, names the leader and its epoch (the fencing token a store
//! stamps its writes with), publishes role and connectivity changes on a
//! channel, and lets tests wait for a condition instead of sleeping (the
//! idea of openraft's metrics watch channel). The store tells the election
//! its last zxid through a supplier, so the replica with the newest data
//! wins the election (the vote order is peer epoch, zxid, sid).
//!
//! ```
//! use std::time::Duration;
//! use zkfle::{PeerBuilder, Role};
//!
//! # fn main() -> Result<(), zkfle::ZkfleError> {
//! let data = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
//! // A one-voter ensemble: it elects itself at once.
//! let peer = PeerBuilder::new(1)
//!     .server(1, "127.0.0.1:30001".parse().unwrap(), "127.0.0.1:30002".parse().unwrap())
//!     .data_dir(data.path())
//!     .last_zxid(|| 0)
//!     .start()?;
//! let state = peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))?;
//! assert!(matches!(state.role, Role::Leading { .. }));
//! assert!(peer.is_leader());
//! peer.shutdown();
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};

use crate::admin::Admin;
use crate::config::{ConfigError, ZkConfig};
use crate::peer::{PeerError, PeerOptions, QuorumPeer, StatusSnapshot, ZxidSupplier};
use crate::wire::ServerState;

/// Everything the embedding API can fail with: one variant per failure a
/// caller can act on.
///
/// ```
/// use zkfle::{PeerBuilder, ZkfleError};
/// match PeerBuilder::from_config_file("/nonexistent/zoo.cfg").myid(1).start() {
///     Err(ZkfleError::Config(e)) => eprintln!("fix the config: {e}"),
///     Err(e) => panic!("unexpected: {e}"),
///     Ok(_) => panic!("there is no such file"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ZkfleError {
    /// The configuration (file or built from code) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The peer could not start (epoch files, ports, threads).
    #[error(transparent)]
    Start(#[from] PeerError),
    /// The four-letter-word or metrics port could not be opened.
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    /// A builder without `server(..)` lines.
    #[error("no servers configured: call PeerBuilder::server at least once")]
    NoServers,
    /// A builder without a data directory.
    #[error("no data directory: call PeerBuilder::data_dir")]
    NoDataDir,
    /// The data directory could not be created.
    #[error("cannot create the data directory: {0}")]
    Io(#[source] std::io::Error),
    /// [`PeerHandle::wait_for`] ran out of time.
    #[error("condition not met within {timeout:?}; last state: {last:?}")]
    Timeout {
        /// The timeout given.
        timeout: Duration,
        /// The last state seen.
        last: Box<PeerState>,
    },
    /// The handle was shut down.
    #[error("the peer has been shut down")]
    Shutdown,
}

/// The role of a peer that is in service, or `Looking`.
///
/// A role is reported only once it serves: for a leader, once its epoch is
/// established with a quorum (once the quorum-port session exists in the
/// crate; until then, as soon as the election decides), as ZooKeeper only
/// reports a `Mode` once it serves.
///
/// ```
/// use zkfle::Role;
/// let r = Role::Following { leader: 3, epoch: 7 };
/// assert_eq!(r.leader(), Some(3));
/// assert_eq!(r.epoch(), Some(7));
/// assert!(!r.is_leader());
/// assert_eq!(Role::Looking.leader(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Electing, or decided but not yet in service.
    Looking,
    /// This peer leads `epoch`.
    Leading {
        /// The leader's epoch: the fencing token.
        epoch: i64,
    },
    /// This peer follows `leader` in `epoch`.
    Following {
        /// The leader's sid.
        leader: i64,
        /// The leader's epoch.
        epoch: i64,
    },
    /// This peer observes `leader` in `epoch` (never votes).
    Observing {
        /// The leader's sid.
        leader: i64,
        /// The leader's epoch.
        epoch: i64,
    },
}

/// A role change as [`PeerHandle::subscribe`] delivers it (the same type as
/// [`Role`]).
///
/// ```
/// let e: zkfle::RoleEvent = zkfle::Role::Leading { epoch: 2 };
/// assert!(e.is_leader());
/// ```
pub type RoleEvent = Role;

impl Role {
    /// True for [`Role::Leading`].
    ///
    /// ```
    /// assert!(zkfle::Role::Leading { epoch: 1 }.is_leader());
    /// ```
    pub fn is_leader(&self) -> bool {
        matches!(self, Role::Leading { .. })
    }

    /// The epoch of the leadership this peer serves in, if any.
    ///
    /// ```
    /// assert_eq!(zkfle::Role::Looking.epoch(), None);
    /// ```
    pub fn epoch(&self) -> Option<i64> {
        match *self {
            Role::Looking => None,
            Role::Leading { epoch }
            | Role::Following { epoch, .. }
            | Role::Observing { epoch, .. } => Some(epoch),
        }
    }

    /// The leader's sid when following or observing (`None` when leading:
    /// see [`PeerHandle::leader`] for a uniform answer).
    ///
    /// ```
    /// assert_eq!(zkfle::Role::Observing { leader: 2, epoch: 1 }.leader(), Some(2));
    /// ```
    pub fn leader(&self) -> Option<i64> {
        match *self {
            Role::Following { leader, .. } | Role::Observing { leader, .. } => Some(leader),
            _ => None,
        }
    }
}

/// Who leads, as seen by one peer.
///
/// ```
/// let l = zkfle::LeaderInfo { sid: 2, epoch: 5 };
/// assert_eq!(l.sid, 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaderInfo {
    /// The leader's sid.
    pub sid: i64,
    /// The leader's epoch (the fencing token).
    pub epoch: i64,
}

/// What a subscription delivers.
///
/// ```
/// use zkfle::{Event, Role};
/// let e = Event::PeerUp(3);
/// assert!(matches!(e, Event::PeerUp(3)));
/// let r = Event::Role(Role::Looking);
/// assert_ne!(e, r);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// This peer's role changed.
    Role(RoleEvent),
    /// A configured peer's election link came up.
    PeerUp(i64),
    /// A configured peer's election link went down.
    PeerDown(i64),
}

/// One consistent view of an embedded peer, as [`PeerHandle::state`] and
/// [`PeerHandle::wait_for`] see it.
///
/// ```
/// # use zkfle::{PeerState, Role};
/// fn leads_with_both_followers(s: &PeerState) -> bool {
///     s.role.is_leader() && s.connected_peers.len() == 2
/// }
/// # let _ = leads_with_both_followers;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerState {
    /// This peer's sid.
    pub my_sid: i64,
    /// The role in service.
    pub role: Role,
    /// Configured peers with a live election link.
    pub connected_peers: BTreeSet<i64>,
    /// The persisted `currentEpoch`.
    pub current_epoch: i64,
    /// The zxid this peer voted with in its last election.
    pub last_zxid: i64,
    /// Elections entered since the handle started (restarts included).
    pub election_count: u64,
}

/// Builds and starts an embedded peer, from a `zoo.cfg` or from code.
///
/// From a file (the same file a Java ZooKeeper 3.8 server reads):
///
/// ```no_run
/// # fn main() -> Result<(), zkfle::ZkfleError> {
/// let peer = zkfle::PeerBuilder::from_config_file("conf/zoo1.cfg").myid(1).start()?;
/// println!("role: {:?}", peer.role());
/// # Ok(())
/// # }
/// ```
///
/// From code (see the module example for one that runs):
///
/// ```
/// use std::time::Duration;
/// let b = zkfle::PeerBuilder::new(2)
///     .server(1, "127.0.0.1:30011".parse().unwrap(), "127.0.0.1:30021".parse().unwrap())
///     .server(2, "127.0.0.1:30012".parse().unwrap(), "127.0.0.1:30022".parse().unwrap())
///     .server(3, "127.0.0.1:30013".parse().unwrap(), "127.0.0.1:30023".parse().unwrap())
///     .tick_time(Duration::from_millis(200))
///     .data_dir("/tmp/zkfle-doc-2");
/// let cfg = b.config().unwrap();
/// assert_eq!(cfg.my_sid, 2);
/// assert_eq!(cfg.servers.len(), 3);
/// ```
#[derive(Clone)]
pub struct PeerBuilder {
    source: Source,
    supplier: Option<ZxidSupplier>,
    admin: bool,
}

#[derive(Clone)]
enum Source {
    Loaded(Box<ZkConfig>),
    File {
        path: PathBuf,
        myid: Option<i64>,
    },
    Code {
        my_sid: i64,
        servers: Vec<(i64, SocketAddr, SocketAddr, bool)>,
        tick_time: Duration,
        init_limit: u32,
        sync_limit: u32,
        data_dir: Option<PathBuf>,
        client_addr: Option<SocketAddr>,
        settings: Vec<(String, String)>,
    },
}

impl std::fmt::Debug for PeerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let src = match &self.source {
            Source::File { path, myid } => format!("file {} myid {myid:?}", path.display()),
            Source::Loaded(c) => format!("config {} sid {}", c.path.display(), c.my_sid),
            Source::Code {
                my_sid, servers, ..
            } => {
                format!("code sid {my_sid}, {} servers", servers.len())
            }
        };
        f.debug_struct("PeerBuilder")
            .field("source", &src)
            .field("zxid_supplier", &self.supplier.is_some())
            .finish()
    }
}

impl PeerBuilder {
    /// A peer configured by a `zoo.cfg`; its sid comes from `dataDir/myid`
    /// unless [`PeerBuilder::myid`] gives it.
    ///
    /// ```
    /// let b = zkfle::PeerBuilder::from_config_file("conf/kv1.cfg").myid(1);
    /// assert_eq!(b.config().unwrap().my_sid, 1);
    /// ```
    pub fn from_config_file<P: AsRef<Path>>(path: P) -> PeerBuilder {
        PeerBuilder {
            source: Source::File {
                path: path.as_ref().to_path_buf(),
                myid: None,
            },
            supplier: None,
            admin: true,
        }
    }

    /// A peer from a configuration already loaded (e.g. with
    /// [`ZkConfig::load`], whose unused keys the caller also reads).
    ///
    /// ```
    /// let cfg = zkfle::config::ZkConfig::load("conf/kv3.cfg".as_ref(), Some(3)).unwrap();
    /// let b = zkfle::PeerBuilder::from_config(cfg);
    /// assert_eq!(b.config().unwrap().extra_value("kvAddress.3"), Some("127.0.0.1:7003"));
    /// ```
    pub fn from_config(config: ZkConfig) -> PeerBuilder {
        PeerBuilder {
            source: Source::Loaded(Box::new(config)),
            supplier: None,
            admin: true,
        }
    }

    /// A peer configured in code: `my_sid` plus at least one
    /// [`PeerBuilder::server`] and a [`PeerBuilder::data_dir`]. Timings
    /// default to ZooKeeper's sample config (tickTime 2000 ms, initLimit 10,
    /// syncLimit 5).
    ///
    /// ```
    /// let b = zkfle::PeerBuilder::new(1);
    /// assert!(matches!(b.config(), Err(zkfle::ZkfleError::NoServers)));
    /// ```
    pub fn new(my_sid: i64) -> PeerBuilder {
        PeerBuilder {
            source: Source::Code {
                my_sid,
                servers: Vec::new(),
                tick_time: Duration::from_millis(2000),
                init_limit: 10,
                sync_limit: 5,
                data_dir: None,
                client_addr: None,
                settings: Vec::new(),
            },
            supplier: None,
            admin: true,
        }
    }

    /// Overrides the sid of a file-configured peer (`--myid`); otherwise
    /// replaces the sid.
    ///
    /// ```
    /// let b = zkfle::PeerBuilder::from_config_file("conf/kv2.cfg").myid(2);
    /// assert_eq!(b.config().unwrap().my_sid, 2);
    /// ```
    pub fn myid(mut self, sid: i64) -> PeerBuilder {
        match &mut self.source {
            Source::File { myid, .. } => *myid = Some(sid),
            Source::Code { my_sid, .. } => *my_sid = sid,
            Source::Loaded(c) => c.my_sid = sid,
        }
        self
    }

    /// Adds a voting server (`server.sid=host:quorum:election`). No effect
    /// on a file-configured peer.
    ///
    /// ```
    /// let b = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30031".parse().unwrap(), "127.0.0.1:30032".parse().unwrap())
    ///     .data_dir("/tmp/x");
    /// assert_eq!(b.config().unwrap().servers[0].election_addrs[0].port(), 30032);
    /// ```
    pub fn server(self, sid: i64, quorum_addr: SocketAddr, election_addr: SocketAddr) -> Self {
        self.add_server(sid, quorum_addr, election_addr, false)
    }

    /// Adds an observer (`server.sid=host:quorum:election:observer`): it
    /// follows the leader but never votes.
    ///
    /// ```
    /// let b = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30041".parse().unwrap(), "127.0.0.1:30042".parse().unwrap())
    ///     .server(2, "127.0.0.1:30045".parse().unwrap(), "127.0.0.1:30046".parse().unwrap())
    ///     .observer(9, "127.0.0.1:30043".parse().unwrap(), "127.0.0.1:30044".parse().unwrap())
    ///     .data_dir("/tmp/x");
    /// let cfg = b.config().unwrap();
    /// assert_eq!(cfg.servers.len(), 3);
    /// assert_eq!(cfg.verifier.quorum_size(), 2, "the observer does not vote");
    /// ```
    pub fn observer(self, sid: i64, quorum_addr: SocketAddr, election_addr: SocketAddr) -> Self {
        self.add_server(sid, quorum_addr, election_addr, true)
    }

    fn add_server(mut self, sid: i64, q: SocketAddr, e: SocketAddr, observer: bool) -> Self {
        if let Source::Code { servers, .. } = &mut self.source {
            servers.retain(|s| s.0 != sid);
            servers.push((sid, q, e, observer));
        }
        self
    }

    /// `dataDir`: where `currentEpoch`/`acceptedEpoch` live (created if
    /// missing). No effect on a file-configured peer.
    ///
    /// ```
    /// let b = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30051".parse().unwrap(), "127.0.0.1:30052".parse().unwrap())
    ///     .data_dir("/var/lib/mystore/zk");
    /// assert_eq!(b.config().unwrap().data_dir, std::path::PathBuf::from("/var/lib/mystore/zk"));
    /// ```
    pub fn data_dir<P: AsRef<Path>>(mut self, dir: P) -> Self {
        if let Source::Code { data_dir, .. } = &mut self.source {
            *data_dir = Some(dir.as_ref().to_path_buf());
        }
        self
    }

    /// `tickTime`: the base unit of every timeout (whole milliseconds).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let b = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30061".parse().unwrap(), "127.0.0.1:30062".parse().unwrap())
    ///     .data_dir("/tmp/x")
    ///     .tick_time(Duration::from_millis(100));
    /// assert_eq!(b.config().unwrap().tick_time, Duration::from_millis(100));
    /// ```
    pub fn tick_time(mut self, tick: Duration) -> Self {
        if let Source::Code { tick_time, .. } = &mut self.source {
            *tick_time = tick;
        }
        self
    }

    /// `initLimit` and `syncLimit`, in ticks.
    ///
    /// ```
    /// let b = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30071".parse().unwrap(), "127.0.0.1:30072".parse().unwrap())
    ///     .data_dir("/tmp/x")
    ///     .limits(5, 2);
    /// assert_eq!(b.config().unwrap().sync_limit, 2);
    /// ```
    pub fn limits(mut self, init: u32, sync: u32) -> Self {
        if let Source::Code {
            init_limit,
            sync_limit,
            ..
        } = &mut self.source
        {
            *init_limit = init;
            *sync_limit = sync;
        }
        self
    }

    /// `clientPort`/`clientPortAddress`: serve four-letter words (`ruok`,
    /// `srvr`, `mntr`, ...) there.
    ///
    /// ```
    /// let b = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30081".parse().unwrap(), "127.0.0.1:30082".parse().unwrap())
    ///     .data_dir("/tmp/x")
    ///     .client_addr("127.0.0.1:30083".parse().unwrap());
    /// assert!(b.config().unwrap().client_addr.is_some());
    /// ```
    pub fn client_addr(mut self, addr: SocketAddr) -> Self {
        if let Source::Code { client_addr, .. } = &mut self.source {
            *client_addr = Some(addr);
        }
        self
    }

    /// Any other `zoo.cfg` setting, as a `key=value` line (e.g.
    /// `cnxTimeout`, or a key of the embedding program that it reads back
    /// with [`ZkConfig::extra_value`]).
    ///
    /// ```
    /// let b = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30091".parse().unwrap(), "127.0.0.1:30092".parse().unwrap())
    ///     .data_dir("/tmp/x")
    ///     .setting("kvAddress.1", "127.0.0.1:30093");
    /// assert_eq!(b.config().unwrap().extra_value("kvAddress.1"), Some("127.0.0.1:30093"));
    /// ```
    pub fn setting(mut self, key: &str, value: &str) -> Self {
        if let Source::Code { settings, .. } = &mut self.source {
            settings.push((key.to_string(), value.to_string()));
        }
        self
    }

    /// The store's last-zxid supplier: called at the start of every
    /// election, its answer goes into this peer's vote so the replica with
    /// the newest data wins. Without one the peer votes with zxid 0 (an
    /// empty store). A store should stop accepting writes from the old
    /// leader once the supplier was called, so the vote stays true.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicI64, Ordering};
    /// use std::sync::Arc;
    /// let last = Arc::new(AtomicI64::new(0x1_0000_0005));
    /// let l = last.clone();
    /// let b = zkfle::PeerBuilder::new(1).last_zxid(move || l.load(Ordering::SeqCst));
    /// # let _ = b;
    /// ```
    pub fn last_zxid<F>(mut self, supplier: F) -> Self
    where
        F: Fn() -> i64 + Send + Sync + 'static,
    {
        self.supplier = Some(Arc::new(supplier));
        self
    }

    /// Do not serve four-letter words or metrics even if the config names
    /// a client port or a metrics provider (a store usually owns that port
    /// itself).
    ///
    /// ```
    /// let b = zkfle::PeerBuilder::from_config_file("conf/kv1.cfg").no_admin();
    /// # let _ = b;
    /// ```
    pub fn no_admin(mut self) -> Self {
        self.admin = false;
        self
    }

    /// The configuration the peer would run with.
    ///
    /// ```
    /// let err = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30101".parse().unwrap(), "127.0.0.1:30102".parse().unwrap())
    ///     .config()
    ///     .unwrap_err();
    /// assert!(matches!(err, zkfle::ZkfleError::NoDataDir));
    /// ```
    pub fn config(&self) -> Result<ZkConfig, ZkfleError> {
        match &self.source {
            Source::File { path, myid } => Ok(ZkConfig::load(path, *myid)?),
            Source::Loaded(c) => Ok((**c).clone()),
            Source::Code {
                my_sid,
                servers,
                tick_time,
                init_limit,
                sync_limit,
                data_dir,
                client_addr,
                settings,
            } => {
                if servers.is_empty() {
                    return Err(ZkfleError::NoServers);
                }
                let dir = data_dir.as_ref().ok_or(ZkfleError::NoDataDir)?;
                // Built as zoo.cfg text so code-built peers get exactly the
                // validation (and defaults) a file gets.
                let mut text = String::new();
                let _ = writeln!(text, "tickTime={}", tick_time.as_millis());
                let _ = writeln!(text, "initLimit={init_limit}");
                let _ = writeln!(text, "syncLimit={sync_limit}");
                let _ = writeln!(text, "dataDir={}", dir.display());
                if let Some(c) = client_addr {
                    let _ = writeln!(text, "clientPort={}", c.port());
                    let _ = writeln!(text, "clientPortAddress={}", c.ip());
                }
                for (sid, q, e, observer) in servers {
                    let host = match q.ip() {
                        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                        ip => ip.to_string(),
                    };
                    let role = if *observer { ":observer" } else { "" };
                    let _ = writeln!(text, "server.{sid}={host}:{}:{}{role}", q.port(), e.port());
                }
                for (k, v) in settings {
                    let _ = writeln!(text, "{k}={v}");
                }
                let path = PathBuf::from(format!("<PeerBuilder sid {my_sid}>"));
                Ok(ZkConfig::parse(&text, &path, Some(*my_sid))?)
            }
        }
    }

    /// Starts the peer: checks the epoch files, opens the election port
    /// and starts electing. Returns at once; use [`PeerHandle::wait_for`]
    /// to wait for a role.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// let data = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30111".parse().unwrap(), "127.0.0.1:30112".parse().unwrap())
    ///     .data_dir(data.path())
    ///     .start()?;
    /// peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn start(self) -> Result<PeerHandle, ZkfleError> {
        let config = self.config()?;
        std::fs::create_dir_all(&config.data_dir).map_err(ZkfleError::Io)?;
        let opts = PeerOptions {
            zxid_supplier: self.supplier.clone(),
        };
        PeerHandle::start(config, opts, self.admin)
    }
}

/// A running embedded peer. Cloning is cheap; every clone controls the
/// same peer. [`PeerHandle::shutdown`] (or dropping the last clone) stops
/// every thread the peer started.
///
/// ```
/// # use std::time::Duration;
/// # fn main() -> Result<(), zkfle::ZkfleError> {
/// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
/// let peer = zkfle::PeerBuilder::new(1)
///     .server(1, "127.0.0.1:30231".parse().unwrap(), "127.0.0.1:30232".parse().unwrap())
///     .data_dir(d.path())
///     .start()?;
/// let for_requests = peer.clone();
/// std::thread::spawn(move || for_requests.is_leader()).join().unwrap();
/// peer.shutdown();
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PeerHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PeerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerHandle")
            .field("state", &self.state())
            .finish()
    }
}

struct Inner {
    config: ZkConfig,
    opts: PeerOptions,
    /// Serve four-letter words and metrics beside the peer.
    admin: bool,
    shared: Arc<Shared>,
    /// The running peer and the thread mirroring its status; `None` once
    /// shut down.
    running: Mutex<Option<Running>>,
}

/// What the handle and the watcher thread share (the watcher holds no
/// reference to [`Inner`], so dropping the last handle stops it).
struct Shared {
    /// Mirrors `state.role.is_leader()` so the hot-path question is one
    /// atomic load.
    is_leader: AtomicBool,
    /// Set by [`PeerHandle::shutdown`].
    closed: AtomicBool,
    state: Mutex<PeerState>,
    changed: Condvar,
    subscribers: Mutex<Vec<Sender<Event>>>,
    /// Election count of earlier peer instances (restarts).
    elections_before: AtomicU64,
}

struct Running {
    peer: QuorumPeer,
    admin: Option<Admin>,
    stop: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(r) = self.running.get_mut().take() {
            stop_running(r);
        }
    }
}

fn stop_running(mut r: Running) {
    r.stop.store(true, Ordering::SeqCst);
    r.peer.status().poke();
    if let Some(h) = r.watcher.take() {
        let _ = h.join();
    }
    if let Some(a) = r.admin.as_mut() {
        a.shutdown();
    }
    r.peer.shutdown();
}

impl PeerHandle {
    fn start(config: ZkConfig, opts: PeerOptions, admin: bool) -> Result<PeerHandle, ZkfleError> {
        let state = PeerState {
            my_sid: config.my_sid,
            role: Role::Looking,
            connected_peers: BTreeSet::new(),
            current_epoch: 0,
            last_zxid: 0,
            election_count: 0,
        };
        let inner = Arc::new(Inner {
            config,
            opts,
            admin,
            shared: Arc::new(Shared {
                is_leader: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                state: Mutex::new(state),
                changed: Condvar::new(),
                subscribers: Mutex::new(Vec::new()),
                elections_before: AtomicU64::new(0),
            }),
            running: Mutex::new(None),
        });
        let running = launch(&inner)?;
        *inner.running.lock() = Some(running);
        Ok(PeerHandle { inner })
    }

    /// This peer's sid.
    ///
    /// ```
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(4)
    ///     .server(4, "127.0.0.1:30121".parse().unwrap(), "127.0.0.1:30122".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// assert_eq!(peer.my_sid(), 4);
    /// # Ok(())
    /// # }
    /// ```
    pub fn my_sid(&self) -> i64 {
        self.inner.config.my_sid
    }

    /// The configuration the peer runs with (including keys zkfle does
    /// not use, in [`ZkConfig::extra`]).
    ///
    /// ```
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30131".parse().unwrap(), "127.0.0.1:30132".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .setting("kvAddress.1", "127.0.0.1:30133")
    ///     .start()?;
    /// assert_eq!(peer.config().extra_value("kvAddress.1"), Some("127.0.0.1:30133"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn config(&self) -> &ZkConfig {
        &self.inner.config
    }

    /// True while this peer leads: one atomic load, no lock, cheap enough
    /// for every request of a store.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30141".parse().unwrap(), "127.0.0.1:30142".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))?;
    /// assert!(peer.is_leader());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_leader(&self) -> bool {
        self.inner.shared.is_leader.load(Ordering::Acquire)
    }

    /// The role in service now.
    ///
    /// ```
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// // Sid 1 of a three-server ensemble whose other servers never run:
    /// // it can never win, so it stays Looking.
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30151".parse().unwrap(), "127.0.0.1:30152".parse().unwrap())
    ///     .server(2, "127.0.0.1:30153".parse().unwrap(), "127.0.0.1:30154".parse().unwrap())
    ///     .server(3, "127.0.0.1:30155".parse().unwrap(), "127.0.0.1:30156".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// assert_eq!(peer.role(), zkfle::Role::Looking);
    /// # Ok(())
    /// # }
    /// ```
    pub fn role(&self) -> Role {
        self.inner.shared.state.lock().role
    }

    /// The leader and its epoch, if this peer is in service (leading,
    /// following or observing).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30161".parse().unwrap(), "127.0.0.1:30162".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))?;
    /// assert_eq!(peer.leader().map(|l| l.sid), Some(1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn leader(&self) -> Option<LeaderInfo> {
        let s = self.inner.shared.state.lock();
        match s.role {
            Role::Looking => None,
            Role::Leading { epoch } => Some(LeaderInfo {
                sid: s.my_sid,
                epoch,
            }),
            Role::Following { leader, epoch } | Role::Observing { leader, epoch } => {
                Some(LeaderInfo { sid: leader, epoch })
            }
        }
    }

    /// The fencing token: the epoch of the leadership this peer serves in,
    /// or, while looking, the last persisted `currentEpoch`. A store stamps
    /// writes with it (zxid = epoch << 32 | counter) and rejects anything
    /// stamped with an older one.
    ///
    /// The epoch is the persisted `currentEpoch`, which the quorum-port
    /// (Zab) session advances for every new leadership: a leader's epoch is
    /// one past the highest accepted epoch of the quorum that elected it, so
    /// it is larger than that of any earlier leader a quorum accepted. The
    /// `replicated_kv` example stamps its writes with it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30171".parse().unwrap(), "127.0.0.1:30172".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// let s = peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))?;
    /// assert_eq!(Some(peer.current_epoch()), s.role.epoch());
    /// # Ok(())
    /// # }
    /// ```
    pub fn current_epoch(&self) -> i64 {
        let s = self.inner.shared.state.lock();
        s.role.epoch().unwrap_or(s.current_epoch)
    }

    /// A copy of the whole state.
    ///
    /// ```
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30181".parse().unwrap(), "127.0.0.1:30182".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// assert_eq!(peer.state().my_sid, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn state(&self) -> PeerState {
        self.inner.shared.state.lock().clone()
    }

    /// Role changes and election-link up/down events from now on. Each
    /// subscription gets every event (unbounded; drop the receiver to
    /// unsubscribe). The current role comes first, then a `PeerUp` for
    /// every peer connected now, so a subscriber never misses the state it
    /// starts from. The channel closes when the peer shuts down.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// use zkfle::{Event, Role};
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30191".parse().unwrap(), "127.0.0.1:30192".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// let events = peer.subscribe();
    /// loop {
    ///     match events.recv_timeout(Duration::from_secs(10)) {
    ///         Ok(Event::Role(Role::Leading { .. })) => break,
    ///         Ok(_) => continue,
    ///         Err(e) => panic!("no Leading event: {e}"),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe(&self) -> Receiver<Event> {
        let (tx, rx) = crossbeam_channel::unbounded();
        // Under the state lock (changes are published under it too), so no
        // change slips between the snapshot and the registration and none
        // is delivered twice.
        let s = self.inner.shared.state.lock();
        let _ = tx.send(Event::Role(s.role));
        for &sid in &s.connected_peers {
            let _ = tx.send(Event::PeerUp(sid));
        }
        self.inner.shared.subscribers.lock().push(tx);
        drop(s);
        rx
    }

    /// Waits until `pred` holds for the state, or `timeout` passes (then
    /// [`ZkfleError::Timeout`] carries the last state seen). Tests use this
    /// instead of sleeping.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30201".parse().unwrap(), "127.0.0.1:30202".parse().unwrap())
    ///     .server(2, "127.0.0.1:30203".parse().unwrap(), "127.0.0.1:30204".parse().unwrap())
    ///     .server(3, "127.0.0.1:30205".parse().unwrap(), "127.0.0.1:30206".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// // Alone, sid 1 cannot lead a three-server ensemble.
    /// let err = peer.wait_for(|s| s.role.is_leader(), Duration::from_millis(300)).unwrap_err();
    /// assert!(matches!(err, zkfle::ZkfleError::Timeout { .. }));
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_for<P>(&self, pred: P, timeout: Duration) -> Result<PeerState, ZkfleError>
    where
        P: Fn(&PeerState) -> bool,
    {
        let deadline = Instant::now() + timeout;
        let mut s = self.inner.shared.state.lock();
        loop {
            if pred(&s) {
                return Ok(s.clone());
            }
            if self.inner.shared.closed.load(Ordering::SeqCst) {
                return Err(ZkfleError::Shutdown);
            }
            if self
                .inner
                .shared
                .changed
                .wait_until(&mut s, deadline)
                .timed_out()
            {
                if pred(&s) {
                    return Ok(s.clone());
                }
                return Err(ZkfleError::Timeout {
                    timeout,
                    last: Box::new(s.clone()),
                });
            }
        }
    }

    /// Leaves the current role and elects again, without closing the
    /// handle: the embedded peer (election port, connection manager,
    /// threads) is stopped and started afresh, and votes with the
    /// supplier's new last zxid. A store calls this when it has its own
    /// evidence that the leader is gone (its replication link to the leader
    /// died) or that it lost its quorum as leader. Subscribers see
    /// [`Role::Looking`] and then the new role.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30211".parse().unwrap(), "127.0.0.1:30212".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))?;
    /// peer.restart_election()?;
    /// let s = peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))?;
    /// assert_eq!(s.election_count, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn restart_election(&self) -> Result<(), ZkfleError> {
        let mut running = self.inner.running.lock();
        let old = running.take().ok_or(ZkfleError::Shutdown)?;
        let count = old.peer.status().snapshot().election_count;
        stop_running(old);
        self.inner
            .shared
            .elections_before
            .fetch_add(count, Ordering::SeqCst);
        {
            let mut s = self.inner.shared.state.lock();
            let down = std::mem::take(&mut s.connected_peers);
            s.role = Role::Looking;
            self.inner.shared.is_leader.store(false, Ordering::Release);
            let mut events = vec![Event::Role(Role::Looking)];
            events.extend(down.into_iter().map(Event::PeerDown));
            publish(&self.inner.shared, &events);
        }
        *running = Some(launch(&self.inner)?);
        Ok(())
    }

    /// Stops the peer and joins every thread it started (election,
    /// connection manager, role, watcher). Idempotent; every clone sees
    /// [`ZkfleError::Shutdown`] from [`PeerHandle::wait_for`] afterwards.
    ///
    /// ```
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30221".parse().unwrap(), "127.0.0.1:30222".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// peer.shutdown();
    /// assert_eq!(peer.role(), zkfle::Role::Looking);
    /// # Ok(())
    /// # }
    /// ```
    pub fn shutdown(&self) {
        self.inner.shared.closed.store(true, Ordering::SeqCst);
        let r = self.inner.running.lock().take();
        if let Some(r) = r {
            stop_running(r);
        }
        {
            let mut s = self.inner.shared.state.lock();
            s.role = Role::Looking;
            s.connected_peers.clear();
            self.inner.shared.is_leader.store(false, Ordering::Release);
            self.inner.shared.changed.notify_all();
        }
        self.inner.shared.subscribers.lock().clear();
    }
}

/// Starts one peer instance and the thread that mirrors its status into
/// the handle's state.
fn launch(inner: &Arc<Inner>) -> Result<Running, ZkfleError> {
    let mut peer = QuorumPeer::start(inner.config.clone(), inner.opts.clone())?;
    // The peer never starts its admin side itself (DESIGN.md's import
    // rules); the builder does, beside it.
    let admin = if inner.admin {
        match Admin::start(&peer) {
            Ok(a) => Some(a),
            Err(e) => {
                peer.shutdown();
                return Err(e.into());
            }
        }
    } else {
        None
    };
    let stop = Arc::new(AtomicBool::new(false));
    let status = peer.status().clone();
    let qcm = peer.qcm().clone();
    let shared = inner.shared.clone();
    let stop2 = stop.clone();
    let watcher = std::thread::Builder::new()
        .name(format!("embed{}", inner.config.my_sid))
        .spawn(move || {
            let mut last: Option<StatusSnapshot> = None;
            while !stop2.load(Ordering::SeqCst) {
                // Wakes on any status change (or the poke at shutdown);
                // election links are polled at least every 50 ms (the QCM's
                // event queue belongs to the election thread).
                let (snap, _) =
                    status.wait_until(Duration::from_millis(50), |s| last.as_ref() != Some(s));
                let now: BTreeSet<i64> = qcm.connected_peers().into_iter().collect();
                // Events are published under the state lock, so a
                // subscriber that registers meanwhile sees each change
                // exactly once (either in its first event or after it).
                let mut events = Vec::new();
                let mut s = shared.state.lock();
                if s.connected_peers != now {
                    events.extend(
                        now.difference(&s.connected_peers)
                            .map(|&p| Event::PeerUp(p)),
                    );
                    events.extend(
                        s.connected_peers
                            .difference(&now)
                            .map(|&p| Event::PeerDown(p)),
                    );
                    s.connected_peers = now;
                }
                if last.as_ref() != Some(&snap) {
                    let role = role_of(&snap);
                    s.current_epoch = snap.current_epoch;
                    s.last_zxid = snap.last_zxid;
                    s.election_count =
                        shared.elections_before.load(Ordering::SeqCst) + snap.election_count;
                    if s.role != role {
                        s.role = role;
                        shared.is_leader.store(role.is_leader(), Ordering::Release);
                        events.push(Event::Role(role));
                    }
                    last = Some(snap);
                }
                shared.changed.notify_all();
                publish(&shared, &events);
                drop(s);
            }
        })
        .map_err(|source| {
            ZkfleError::Start(PeerError::Thread {
                what: "embedding watcher",
                source,
            })
        });
    match watcher {
        Ok(h) => Ok(Running {
            peer,
            admin,
            stop,
            watcher: Some(h),
        }),
        Err(e) => {
            let mut peer = peer;
            peer.shutdown();
            Err(e)
        }
    }
}

/// The role a status stands for: only a serving role counts.
fn role_of(s: &StatusSnapshot) -> Role {
    if !s.serving {
        return Role::Looking;
    }
    let epoch = s.current_epoch;
    match s.state {
        ServerState::Looking => Role::Looking,
        ServerState::Leading => Role::Leading { epoch },
        ServerState::Following => Role::Following {
            leader: s.leader_sid,
            epoch,
        },
        ServerState::Observing => Role::Observing {
            leader: s.leader_sid,
            epoch,
        },
    }
}

fn publish(inner: &Shared, events: &[Event]) {
    if events.is_empty() {
        return;
    }
    inner.changed.notify_all();
    let mut subs = inner.subscribers.lock();
    subs.retain(|tx| events.iter().all(|e| tx.send(*e).is_ok()));
}
