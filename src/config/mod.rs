//! `zoo.cfg` and `myid`, read the way ZooKeeper 3.8 reads them, and the
//! quorum verifiers built from them.

pub mod quorum;

pub use quorum::QuorumVerifier;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A server's role in the ensemble (`:participant` / `:observer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LearnerType {
    Participant,
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
    /// The text of the host part as written (for `conf` and logs).
    pub host_text: String,
}

/// A parsed `zoo.cfg` plus the server's own id.
#[derive(Debug, Clone)]
pub struct ZkConfig {
    /// The file this came from (for error messages and `conf`).
    pub path: PathBuf,
    /// This server's sid (`dataDir/myid` or `--myid`).
    pub my_sid: i64,
    pub tick_time: Duration,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub data_dir: PathBuf,
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
    /// `peerType` of this server, if given.
    pub peer_type: Option<LearnerType>,
    /// Keys this reader does not use, as (line, key, value): ZooKeeper
    /// passes them on as system properties; zkfle logs and ignores them
    /// (the replicated-store example reads its `kvAddress.N` lines here).
    pub extra: Vec<(usize, String, String)>,
}

impl ZkConfig {
    /// The `server.N` line for `sid`, if configured.
    pub fn server(&self, sid: i64) -> Option<&ServerSpec> {
        self.servers.iter().find(|s| s.sid == sid)
    }

    /// This server's own line.
    pub fn me(&self) -> Option<&ServerSpec> {
        self.server(self.my_sid)
    }
}
