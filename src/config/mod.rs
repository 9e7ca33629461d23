//! `zoo.cfg` and `myid`, read the way ZooKeeper 3.8 reads them, and the
//! quorum verifiers built from them.
//!
//! Lexing follows JDK 17's `Properties.load` (ISO-8859-1, comments,
//! continuations, escapes); keys, defaults and checks follow 3.8.0's
//! `QuorumPeerConfig`. Configurations 3.8.0 accepts give the same members
//! and the same committed-config text, except where zkfle is stricter so a
//! mistake fails at startup with its line and key:
//!
//! * ports must be 1..65535 (ZooKeeper accepts 0);
//! * a host must be an IP literal or a well-formed name (ZooKeeper keeps
//!   any text and fails when it looks it up); names need not resolve yet,
//!   as in ZooKeeper: peers' names are looked up at every connection
//!   ([`crate::net`]), this server's own election address when it is bound;
//!   only the addresses bound without retries (`clientPortAddress`, the own
//!   line's client part, `metricsProvider.httpHost`) must resolve now;
//! * this server's id must have a `server.N` line;
//! * a sid, group id or weight id configured twice is an error (ZooKeeper
//!   keeps one of them);
//! * negative sids and weights, two servers on one address (the same IP
//!   literal or name and port), group members
//!   that are unknown or observers (a `NullPointerException` in 3.8.0), and
//!   all-zero-weight groups are errors;
//! * `initLimit`, `syncLimit`, `tickTime`, `cnxTimeout` and the
//!   notification intervals must be > 0; bad values of keys ZooKeeper
//!   reads as system properties are errors, not silently the default.
//!
//! One leniency: `|` multi-address lines are accepted when zoo.cfg says
//! `multiAddress.enabled=true` (3.8.0 also needs the JVM property
//! `-Dzookeeper.multiAddress.enabled=true`).
//!
//! ```no_run
//! # use std::path::Path;
//! let cfg = zkfle::config::ZkConfig::load(Path::new("conf/zoo1.cfg"), Some(1))?;
//! assert_eq!(cfg.me().map(|s| s.sid), Some(1));
//! # Ok::<(), zkfle::config::ConfigError>(())
//! ```

pub mod admin;
mod dynamic;
pub mod error;
mod hierarchy;
mod keys;
mod parse;
pub mod props;
pub mod quorum;
mod render;
mod resolve;
mod security;
mod server_line;
mod servers;
pub mod tls;
mod values;

pub use crate::net::{Resolver, SystemResolver};
pub use admin::{FourLetterWords, MetricsConfig};
pub use error::{ConfigError, MyIdProblem, PortKind, Problem};
pub use quorum::QuorumVerifier;
pub use security::Unhonoured;
pub use tls::{QuorumTlsSettings, StoreSettings, StoreType, TlsProblem, TlsVersion};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::net::HostPort;

/// A server's role in the ensemble (`:participant` / `:observer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LearnerType {
    /// Votes and can lead (`:participant`, the default).
    Participant,
    /// Follows without voting (`:observer`).
    Observer,
}

/// One `host:quorumPort:electionPort` of a `server.N` line, the host kept
/// as written: a name is looked up when a connection is made (see
/// [`crate::net`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerAddr {
    /// The quorum (Zab) address: the leader binds it, learners dial it.
    pub quorum: HostPort,
    /// The election address (same host).
    pub election: HostPort,
}

/// One `server.N=` line.
///
/// [`ServerSpec::endpoints`] is the line as written and what connections
/// use: resolve a name with [`HostPort::resolve`] (and
/// [`ZkConfig::resolver`]) right before each connection, as ZooKeeper
/// does. The `*_addrs` fields are a snapshot of what the names resolved to
/// when the configuration was read, for code that has not moved to
/// `endpoints` yet; a name that did not resolve then is missing from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The server id (N).
    pub sid: i64,
    /// Every address of the line (several with `|` multi-address syntax),
    /// hosts as written.
    pub endpoints: Vec<ServerAddr>,
    /// Quorum (Zab) addresses as resolved when the configuration was read
    /// (snapshot; see the type's docs).
    pub quorum_addrs: Vec<SocketAddr>,
    /// Election addresses as resolved when the configuration was read,
    /// one per entry of `quorum_addrs` (snapshot; see the type's docs).
    pub election_addrs: Vec<SocketAddr>,
    /// Participant or observer.
    pub learner_type: LearnerType,
    /// The `;[host:]port` client address, if the line carries one, host as
    /// written (`0.0.0.0` when the line gives only a port).
    pub client: Option<HostPort>,
    /// `client` as resolved when the configuration was read (always
    /// resolved for this server's own line, which it binds; `None` for
    /// another server's name that did not resolve then).
    pub client_addr: Option<SocketAddr>,
    /// The text of the host part as written (for `conf` and logs); the
    /// first address's host for multi-address lines. IPv6 hosts without
    /// their brackets.
    pub host_text: String,
    /// The host of every address as written, parallel to `endpoints`.
    pub hosts: Vec<String>,
    /// The host of the `;[host:]port` client address as written
    /// (`0.0.0.0` when the line gives only a port), as ZooKeeper echoes it.
    pub client_host: Option<String>,
}

impl ServerSpec {
    /// A single-address server with no client address, its host text the
    /// IP (for tests and embedders that build configurations in code).
    pub fn new(
        sid: i64,
        quorum_addr: SocketAddr,
        election_addr: SocketAddr,
        learner_type: LearnerType,
    ) -> ServerSpec {
        let host = quorum_addr.ip().to_string();
        ServerSpec {
            sid,
            endpoints: vec![ServerAddr {
                quorum: quorum_addr.into(),
                election: election_addr.into(),
            }],
            quorum_addrs: vec![quorum_addr],
            election_addrs: vec![election_addr],
            learner_type,
            client: None,
            client_addr: None,
            host_text: host.clone(),
            hosts: vec![host],
            client_host: None,
        }
    }
}

/// A parsed `zoo.cfg` plus the server's own id.
#[derive(Debug, Clone)]
pub struct ZkConfig {
    /// The file this came from (for error messages and `conf`).
    pub path: PathBuf,
    /// This server's sid (`dataDir/myid` or `--myid`).
    pub my_sid: i64,
    /// `tickTime` (default 3000 ms, as in ZooKeeper).
    pub tick_time: Duration,
    /// `initLimit`, in ticks (required).
    pub init_limit: u32,
    /// `syncLimit`, in ticks (required).
    pub sync_limit: u32,
    /// `dataDir` as written (relative paths are relative to the working
    /// directory, as in ZooKeeper).
    pub data_dir: PathBuf,
    /// `dataLogDir`, if given (accepted; zkfle keeps no transaction log).
    pub data_log_dir: Option<PathBuf>,
    /// `clientPort` + `clientPortAddress`, or the server line's `;client`.
    pub client_addr: Option<SocketAddr>,
    /// Election dial timeout (`cnxTimeout`, default 5000 ms).
    pub cnx_timeout: Duration,
    /// Handshake read timeout: `quorumCnxnTimeoutMs` if > 0, else
    /// `tickTime × syncLimit`.
    pub handshake_timeout: Duration,
    /// `electionPortBindRetry`: 0 = forever, negative read as 3.
    pub election_port_bind_retry: u32,
    /// `quorumListenOnAllIPs`.
    pub listen_on_all_ips: bool,
    /// `multiAddress.enabled` (send V2 handshakes).
    pub multi_address_enabled: bool,
    /// zkfle's own `zkfle.fastDecide` (default true): the election's faster
    /// decisions; false is ZooKeeper 3.8's `finalizeWait` behaviour exactly
    /// (`election::FleConfig::with_zkfle_timing`).
    pub fast_decide: bool,
    /// zkfle's own `zkfle.preferredLeader=N`: leadership moves to voter N
    /// whenever N is up and synchronized and another zkfle peer leads (that
    /// leader hands off, and N wins the ties of the election's total order;
    /// `election::FleConfig::preferred_leader`). `None` (the default): no
    /// preference, ZooKeeper's order.
    pub preferred_leader: Option<i64>,
    /// `fastleader.minNotificationInterval` (default 200 ms).
    pub min_notification_interval: Duration,
    /// `fastleader.maxNotificationInterval` (default 60 s).
    pub max_notification_interval: Duration,
    /// Every `server.N` line, ascending sid.
    pub servers: Vec<ServerSpec>,
    /// Built from the server lines and any `group.`/`weight.` lines.
    pub verifier: QuorumVerifier,
    /// `peerType` of this server, if given. When it contradicts this
    /// server's `server.N` line the line wins (with a warning), as in
    /// ZooKeeper; see [`ZkConfig::learner_type`].
    pub peer_type: Option<LearnerType>,
    /// `standaloneEnabled` (default true); only affects validation.
    pub standalone_enabled: bool,
    /// `reconfigEnabled` (default false); zkfle never reconfigures.
    pub reconfig_enabled: bool,
    /// A `version=` line's value (hex, as ZooKeeper reads it); 0 for
    /// ordinary static configs. Shown in [`ZkConfig::config_text`].
    pub config_version: i64,
    /// `4lw.commands.whitelist` (default: `srvr` only, as in ZooKeeper).
    pub four_letter_words: FourLetterWords,
    /// `GET /metrics` address, set when `metricsProvider.className` is
    /// ZooKeeper's `PrometheusMetricsProvider`.
    pub metrics: Option<MetricsConfig>,
    /// Quorum TLS (`sslQuorum`, `portUnification`, `ssl.quorum.*`); the
    /// stores are read when the peer starts (`crate::tls`).
    pub quorum_tls: QuorumTlsSettings,
    /// Keys this reader does not use, as (line, key, value), in file
    /// order: ZooKeeper's other settings (`admin.*`, `autopurge.*`, ...)
    /// and unknown keys (logged as a warning). The replicated-store example
    /// reads its `kvAddress.N` lines here.
    pub extra: Vec<(usize, String, String)>,
    /// Looks up host names at every connection (the election transport
    /// and the quorum-port runtime use it; [`SystemResolver`] unless the
    /// configuration was read with [`ZkConfig::parse_with_resolver`]).
    pub resolver: Arc<dyn Resolver>,
}

impl ZkConfig {
    /// Reads `path` as ZooKeeper 3.8 reads `zoo.cfg`. Without `my_sid`,
    /// this server's id comes from `dataDir/myid` (first line, an integer).
    /// Host names are looked up with the [`SystemResolver`].
    pub fn load(path: &Path, my_sid: Option<i64>) -> Result<ZkConfig, ConfigError> {
        let bytes = read_capped(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&decode_text(bytes), path, my_sid)
    }

    /// Like [`ZkConfig::load`], from text already decoded (`path` names
    /// the file in errors; `dataDir/myid` and a `dynamicConfigFile` are
    /// still read from disk; `load` decodes files as ISO-8859-1, as Java
    /// does).
    pub fn parse(text: &str, path: &Path, my_sid: Option<i64>) -> Result<ZkConfig, ConfigError> {
        Self::parse_with_resolver(text, path, my_sid, crate::net::system_resolver())
    }

    /// Like [`ZkConfig::parse`], looking host names up with `resolver`,
    /// now and (as [`ZkConfig::resolver`]) at every connection the peer
    /// makes.
    pub fn parse_with_resolver(
        text: &str,
        path: &Path,
        my_sid: Option<i64>,
        resolver: Arc<dyn Resolver>,
    ) -> Result<ZkConfig, ConfigError> {
        parse::parse_config(text, path, my_sid, resolver)
    }

    /// The committed-configuration text ZooKeeper 3.8 sends in v2
    /// notifications and NEWLEADER: one
    /// `server.<sid>=<host>:<quorum>:<election>:<role>[;<clientHost>:<port>]`
    /// line per server (ascending sid), then for hierarchical quorums the
    /// `group.`/`weight.` lines, then `version=<hex>` without a newline.
    pub fn config_text(&self) -> String {
        render::config_text(self)
    }

    /// The answer to the `conf` four-letter word, in ZooKeeper 3.8's
    /// layout for a quorum member (`clientPort=` ... `membership: ` and
    /// the [`ZkConfig::config_text`], which ends without a newline).
    pub fn to_conf_text(&self) -> String {
        render::conf_text(self)
    }

    /// This server's role as the servers list says (which is what counts,
    /// whatever `peerType` says).
    pub fn learner_type(&self) -> LearnerType {
        self.me()
            .map_or(LearnerType::Participant, |s| s.learner_type)
    }

    /// The value of an unused key from [`ZkConfig::extra`] (e.g.
    /// `kvAddress.2`).
    pub fn extra_value(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(_, k, _)| k == key)
            .map(|(_, _, v)| v.as_str())
    }

    /// The `server.N` line for `sid`, if configured.
    pub fn server(&self, sid: i64) -> Option<&ServerSpec> {
        self.servers.iter().find(|s| s.sid == sid)
    }

    /// This server's own line.
    pub fn me(&self) -> Option<&ServerSpec> {
        self.server(self.my_sid)
    }
}

/// Largest configuration file read (far beyond any real `zoo.cfg`); it
/// keeps a mistaken path such as `/dev/zero` from exhausting memory.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Reads a configuration file, failing beyond [`MAX_CONFIG_BYTES`].
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

/// `Properties.load(InputStream)` decodes ISO-8859-1, one char per byte,
/// and so does zkfle: ASCII files read the same either way, and a UTF-8
/// `dataDir` such as `/tmp/café` turns into the same (mojibake) path Java
/// uses (the JVM writes the decoded chars back as UTF-8, as Rust does), so
/// a server switched between Java and zkfle keeps its files.
fn decode_text(bytes: Vec<u8>) -> String {
    bytes.into_iter().map(char::from).collect()
}
