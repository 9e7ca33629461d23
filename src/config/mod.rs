//! `zoo.cfg` and `myid`, read the way ZooKeeper 3.8 reads them, and the
//! quorum verifiers built from them.
//!
//! ```no_run
//! # use std::path::Path;
//! let cfg = zkfle::config::ZkConfig::load(Path::new("conf/zoo1.cfg"), Some(1))?;
//! assert_eq!(cfg.me().map(|s| s.sid), Some(1));
//! # Ok::<(), zkfle::config::ConfigError>(())
//! ```

pub mod error;
mod parse;
pub mod props;
pub mod quorum;
mod render;
pub mod resolve;

pub use error::{ConfigError, MyIdProblem, PortKind, Problem};
pub use quorum::QuorumVerifier;
pub use resolve::{HostResolver, SystemResolver};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A server's role in the ensemble (`:participant` / `:observer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LearnerType {
    /// Votes and can lead (`:participant`, the default).
    Participant,
    /// Follows without voting (`:observer`).
    Observer,
}

/// One `server.N=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The server id (N).
    pub sid: i64,
    /// Quorum (Zab) addresses; several with `|` multi-address syntax.
    pub quorum_addrs: Vec<SocketAddr>,
    /// Election addresses, one per quorum address.
    pub election_addrs: Vec<SocketAddr>,
    /// Participant or observer.
    pub learner_type: LearnerType,
    /// The `;[host:]port` client address, if the line carries one.
    pub client_addr: Option<SocketAddr>,
    /// The text of the host part as written (for `conf` and logs); the
    /// first address's host for multi-address lines. IPv6 hosts without
    /// their brackets.
    pub host_text: String,
    /// The host of every address as written, parallel to `quorum_addrs`
    /// (added for multi-address lines and the committed-config text).
    pub hosts: Vec<String>,
    /// The host of the `;[host:]port` client address as written
    /// (`0.0.0.0` when the line gives only a port), as ZooKeeper echoes it.
    pub client_host: Option<String>,
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
    /// Keys this reader does not use, as (line, key, value), in file
    /// order: ZooKeeper's other settings (`4lw.commands.whitelist`,
    /// `admin.*`, ...) and unknown keys (logged as a warning). The
    /// replicated-store example reads its `kvAddress.N` lines here.
    pub extra: Vec<(usize, String, String)>,
}

impl ZkConfig {
    /// Reads `path` as ZooKeeper 3.8 reads `zoo.cfg`. Without `my_sid`,
    /// this server's id comes from `dataDir/myid` (first line, an integer).
    /// Host names are resolved with the [`SystemResolver`].
    pub fn load(path: &Path, my_sid: Option<i64>) -> Result<ZkConfig, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&decode_text(bytes), path, my_sid)
    }

    /// Like [`ZkConfig::load`], from text already read (`path` names the
    /// file in errors; `dataDir/myid` is still read from disk when
    /// `my_sid` is `None`).
    pub fn parse(text: &str, path: &Path, my_sid: Option<i64>) -> Result<ZkConfig, ConfigError> {
        Self::parse_with_resolver(text, path, my_sid, &SystemResolver)
    }

    /// Like [`ZkConfig::parse`], resolving host names with `resolver`.
    pub fn parse_with_resolver(
        text: &str,
        path: &Path,
        my_sid: Option<i64>,
        resolver: &dyn HostResolver,
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
    /// `4lw.commands.whitelist`, `kvAddress.2`).
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

/// `Properties.load(InputStream)` reads ISO-8859-1; zkfle takes UTF-8 when
/// the file is valid UTF-8 (any ASCII file reads the same either way) and
/// falls back to Latin-1 byte-per-char otherwise, so no file is unreadable.
fn decode_text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().into_iter().map(char::from).collect(),
    }
}
