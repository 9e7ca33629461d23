//! [`PeerBuilder`]: a peer from a `zoo.cfg` or from code.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::config::ZkConfig;
use crate::logstore::{FileLog, LogStore};
use crate::peer::{PeerOptions, Replica, StateMachine, ZxidSupplier};

use super::{PeerHandle, ZkfleError};
use crate::peer::replica::ApiRequest;

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
    /// [`PeerBuilder::preferred_leader`], over whatever the configuration says.
    preferred: Option<i64>,
    log: LogOptions,
}

/// The replicated-log settings. The store and the state machine are not
/// `Clone`: builder clones share them, and the first `start` takes them.
#[derive(Clone, Default)]
struct LogOptions {
    state_machine: Option<Shared<dyn StateMachine>>,
    store: Option<Shared<dyn LogStore>>,
    snapshot_every: Option<u64>,
    lease_margin: Option<Duration>,
}

/// A part shared by builder clones until one `start` takes it.
type Shared<T> = Arc<Mutex<Option<Box<T>>>>;

/// What `start` hands the peer and the handle in store mode.
type ReplicaStart = (Arc<Replica>, crossbeam_channel::Sender<ApiRequest>);

/// Snapshot (and compact the log) every this many applied entries, unless
/// [`PeerBuilder::snapshot_every`] says otherwise.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 100_000;

/// The directory under `dataDir` of the default [`FileLog`].
pub const FILE_LOG_DIR: &str = "zkfle-log";

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
            .field("replicated_log", &self.log.state_machine.is_some())
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
            preferred: None,
            log: LogOptions::default(),
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
            preferred: None,
            log: LogOptions::default(),
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
            preferred: None,
            log: LogOptions::default(),
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

    /// The preferred leader (zoo.cfg's `zkfle.preferredLeader=N`, which
    /// this overrides): whenever voter `sid` is up and synchronized (a
    /// follower that acknowledged every proposal of the term) and another
    /// zkfle peer leads, that leader hands leadership to it at its next
    /// tick, and `sid` wins the election that follows: among votes with
    /// the same history the preferred sid wins the tie (instead of the
    /// highest sid), and the old leader does not stand for `initLimit`
    /// ticks. A vote with a newer history still wins, so no committed
    /// entry is lost. Give every zkfle peer of the ensemble the same value.
    ///
    /// With Java peers: a Java leader never hands off, and Java peers keep
    /// ZooKeeper's tie-break (highest sid). zkfle peers use the preference
    /// only until their first empty poll of a round, so the two orders
    /// cannot block an election; the preferred peer then wins only if the
    /// zkfle peers form a quorum among themselves first.
    ///
    /// ```
    /// let b = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:15021".parse().unwrap(), "127.0.0.1:15022".parse().unwrap())
    ///     .server(2, "127.0.0.1:15023".parse().unwrap(), "127.0.0.1:15024".parse().unwrap())
    ///     .data_dir("/tmp/x")
    ///     .preferred_leader(2);
    /// assert_eq!(b.config().unwrap().preferred_leader, Some(2));
    /// assert!(matches!(b.preferred_leader(7).config(), Err(zkfle::ZkfleError::Option(_))));
    /// ```
    pub fn preferred_leader(mut self, sid: i64) -> Self {
        self.preferred = Some(sid);
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

    /// Replicates a log over Zab into `state_machine` (store mode, issue
    /// 14): the peer then takes [`PeerHandle::propose`] on the leader,
    /// delivers every committed entry to `state_machine` on every peer in
    /// zxid order, and answers [`PeerHandle::read_barrier`]. The log lives
    /// in zkfle's [`FileLog`] under `<dataDir>/zkfle-log` unless
    /// [`PeerBuilder::log_store`] gives another store. The peer votes with
    /// the log's last durable zxid (a [`PeerBuilder::last_zxid`] supplier
    /// is refused with it), and it only joins zkfle peers that replicate
    /// too: it refuses to follow a Java ZooKeeper or election-only leader
    /// and refuses such learners (clear log lines; they stay out of the
    /// quorum).
    ///
    /// ```
    /// use zkfle::logstore::{Entry, Snapshot};
    /// use zkfle::StateMachine;
    /// #[derive(Default)]
    /// struct Count(u64);
    /// impl StateMachine for Count {
    ///     fn apply(&mut self, entries: &[Entry]) { self.0 += entries.len() as u64; }
    ///     fn snapshot(&mut self) -> bytes::Bytes { self.0.to_be_bytes().to_vec().into() }
    ///     fn restore(&mut self, s: &Snapshot) {
    ///         self.0 = s.data.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
    ///     }
    /// }
    /// let b = zkfle::PeerBuilder::new(1).replicated_log(Count::default());
    /// # let _ = b;
    /// ```
    pub fn replicated_log<S: StateMachine>(mut self, state_machine: S) -> Self {
        self.log.state_machine = Some(Arc::new(Mutex::new(Some(Box::new(state_machine)))));
        self
    }

    /// The [`LogStore`] the replicated log lives in, instead of the default
    /// [`FileLog`] in `<dataDir>/zkfle-log` (needs
    /// [`PeerBuilder::replicated_log`]). Every mutating call must be durable
    /// when it returns (see the trait); zkfle calls it from one thread, in
    /// the order the protocol needs, batching appends (one `append` per
    /// group commit).
    ///
    /// ```
    /// let b = zkfle::PeerBuilder::new(1).log_store(zkfle::logstore::MemLog::new());
    /// # let _ = b;
    /// ```
    pub fn log_store<L: LogStore>(mut self, store: L) -> Self {
        self.log.store = Some(Arc::new(Mutex::new(Some(Box::new(store)))));
        self
    }

    /// Snapshot the state machine and compact the log every `entries`
    /// applied entries (default [`DEFAULT_SNAPSHOT_EVERY`]; 0 = never). The
    /// snapshot is taken on the apply thread ([`StateMachine::snapshot`]),
    /// saved in the store, then the log entries it covers are dropped (as
    /// far as the store's granularity allows: [`FileLog`] drops whole
    /// segments). Learners whose log ends before the compaction point are
    /// then synced with the snapshot (SNAP).
    ///
    /// ```
    /// let b = zkfle::PeerBuilder::new(1).snapshot_every(10_000);
    /// # let _ = b;
    /// ```
    pub fn snapshot_every(mut self, entries: u64) -> Self {
        self.log.snapshot_every = Some(entries);
        self
    }

    /// Turns on the leader's read lease (off by default): a
    /// [`PeerHandle::read_barrier`] on the leader answers without a PING
    /// round while `now < quorum_confirmed_at + lease`, where
    /// `lease = syncLimit × tickTime − clock_drift_margin` and
    /// `quorum_confirmed_at` ([`PeerHandle::quorum_confirmed_at`]) is when
    /// the leader sent the newest PING round a quorum answered.
    ///
    /// **Why it is safe, and when it is not.** A follower that answered
    /// that PING received it after it was sent, and keeps following until
    /// it has heard nothing from the leader for `syncLimit × tickTime` by
    /// its own clock; a new leader needs a quorum, so at least one of those
    /// followers, before it can commit anything newer. The lease holds as
    /// long as (1) clocks advance at rates that differ by less than the
    /// margin over one lease (pick the margin for your drift, e.g. 10% of
    /// `syncLimit × tickTime` plus scheduling delays), (2) a follower that
    /// answered does not restart within the lease (a restarted process
    /// forgets whom it followed and may vote at once), and (3) this
    /// process is not paused between reading the clock and answering (a GC
    /// or SIGSTOP pause longer than the margin breaks it, as for every
    /// lease). Without the lease, reads through the barrier are
    /// linearizable under any timing.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let b = zkfle::PeerBuilder::new(1).read_lease(Duration::from_millis(200));
    /// # let _ = b;
    /// ```
    pub fn read_lease(mut self, clock_drift_margin: Duration) -> Self {
        self.log.lease_margin = Some(clock_drift_margin);
        self
    }

    /// Do not serve four-letter words even if the config names a client
    /// port (a store usually owns that port itself).
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
        let mut config = self.base_config()?;
        if let Some(sid) = self.preferred {
            if !config.verifier.is_voter(sid) {
                return Err(ZkfleError::Option(
                    "preferred_leader must name a voting server of the configuration",
                ));
            }
            config.preferred_leader = Some(sid);
        }
        Ok(config)
    }

    /// The configuration from the source alone.
    fn base_config(&self) -> Result<ZkConfig, ZkfleError> {
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
        let (replica, requests) = match self.replica(&config)? {
            Some((r, tx)) => (Some(r), Some(tx)),
            None => (None, None),
        };
        let opts = PeerOptions {
            zxid_supplier: self.supplier.clone(),
            replica,
        };
        PeerHandle::start(config, opts, self.admin, requests)
    }

    /// The replicated log's parts, taken from the builder (store mode).
    fn replica(&self, config: &ZkConfig) -> Result<Option<ReplicaStart>, ZkfleError> {
        let Some(sm) = &self.log.state_machine else {
            if self.log.store.is_some() {
                return Err(ZkfleError::Option(
                    "log_store needs replicated_log (the state machine the log feeds)",
                ));
            }
            return Ok(None);
        };
        if self.supplier.is_some() {
            return Err(ZkfleError::Option(
                "last_zxid and replicated_log exclude each other: a replicated log votes with its own last durable zxid",
            ));
        }
        let lease = match self.log.lease_margin {
            None => None,
            Some(margin) => {
                let full = config.tick_time.saturating_mul(config.sync_limit);
                match full.checked_sub(margin) {
                    Some(l) if !l.is_zero() => Some(l),
                    _ => {
                        return Err(ZkfleError::Option(
                            "read_lease: the clock-drift margin must be shorter than syncLimit × tickTime",
                        ))
                    }
                }
            }
        };
        let store: Box<dyn LogStore> = match &self.log.store {
            Some(s) => match s.lock().take() {
                Some(s) => s,
                None => {
                    return Err(ZkfleError::Option(
                        "the log store was already used by another start",
                    ))
                }
            },
            None => Box::new(FileLog::open(config.data_dir.join(FILE_LOG_DIR))?),
        };
        let Some(state_machine) = sm.lock().take() else {
            return Err(ZkfleError::Option(
                "the replicated log's state machine was already used by another start",
            ));
        };

        let every = self.log.snapshot_every.unwrap_or(DEFAULT_SNAPSHOT_EVERY);
        Ok(Some(Replica::new(store, state_machine, every, lease)))
    }
}
