//! What a QCM is told ([`QcmConfig`], built from `zoo.cfg` by
//! [`QcmConfig::for_server`]), its defaults, and the handshake it derives
//! from it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ZkConfig;
use crate::net::{HostPort, Resolver};
use crate::wire::{Handshake, HandshakeFormat, PeerAddress};

/// ZooKeeper's default `cnxTimeout`.
pub const DEFAULT_CNX_TIMEOUT: Duration = Duration::from_secs(5);
/// ZooKeeper's handshake read timeout with its defaults (tickTime 2000 ×
/// syncLimit 5).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default per-peer send queue: large enough that a peer answering a
/// window-64 benchmark never drops a reply (PROTOCOL.md §8 R11), unlike
/// ZooKeeper's single slot.
pub const DEFAULT_SEND_QUEUE_CAPACITY: usize = 256;
/// Default shared receive queue (ZooKeeper: 100).
pub const DEFAULT_RECV_QUEUE_CAPACITY: usize = 1024;
/// Default bound on simultaneous connections from sids in no configuration
/// (PROTOCOL.md §8 R9).
pub const DEFAULT_MAX_STRANGERS: usize = 16;

/// Everything the QCM needs to know; built from `zoo.cfg` by
/// [`QcmConfig::for_server`].
#[derive(Debug, Clone)]
pub struct QcmConfig {
    /// This server's sid.
    pub my_sid: i64,
    /// This server's election addresses, bound at start. A name is
    /// resolved then, a failed lookup counting as a failed bind
    /// (`bind_retry`).
    pub listen_addrs: Vec<HostPort>,
    /// `quorumListenOnAllIPs`: bind the wildcard address (of each resolved
    /// listen address's family) on its port instead; the resolved address
    /// is still the one advertised.
    pub listen_on_all_ips: bool,
    /// Addresses sent in our handshake. Empty (the default of
    /// [`QcmConfig::for_server`]): the listen addresses as resolved at
    /// start, numeric as ZooKeeper 3.8 sends them (PROTOCOL.md §2.2); a
    /// numeric address lets a peer that cannot resolve our name yet call us
    /// back. The wildcard is never sent.
    pub advertised_addrs: Vec<SocketAddr>,
    /// Every configured server except this one (voters and observers) and
    /// its election addresses, hosts as configured. Only these are ever
    /// dialled; names are looked up again before every dial.
    pub peers: BTreeMap<i64, Vec<HostPort>>,
    /// Looks names up (peers' at every dial, ours at start).
    pub resolver: Arc<dyn Resolver>,
    /// Handshake we send: V1 by default, V2 with `multiAddress.enabled`.
    pub handshake_format: HandshakeFormat,
    /// Dial timeout (`cnxTimeout`).
    pub cnx_timeout: Duration,
    /// Deadline for reading an inbound handshake, per connection.
    pub handshake_timeout: Duration,
    /// `electionPortBindRetry`: consecutive bind failures tolerated per
    /// listen address, 1 s apart; 0 retries forever.
    pub bind_retry: u32,
    /// Per-peer send queue capacity (drop-oldest).
    pub send_queue_capacity: usize,
    /// Shared receive queue capacity (drop-oldest).
    pub recv_queue_capacity: usize,
    /// Simultaneous connections accepted from sids in no configuration.
    pub max_strangers: usize,
    /// Drop the notifications still queued for a peer when a *different*
    /// one is queued for it: they are older votes of this server, and the
    /// new one supersedes them. ZooKeeper's one-slot send queue does the
    /// same to every older message; keeping identical ones keeps the
    /// window-64 replies of `zkfle bench notify` (all equal) and the
    /// newest vote is still the last one delivered. It matters when a
    /// link is slow or not up yet: in a cold start of 51 peers each peer's
    /// queue for a peer not started yet collects one vote per proposal
    /// change, all stale by the time the link comes up. Off by default
    /// (every message a caller queues is written, as the QCM tests
    /// expect); the peer turns it on.
    pub coalesce_superseded: bool,
    /// Quorum TLS (`sslQuorum`/`portUnification`), if either is on: with
    /// `sslQuorum` every dial runs TLS and plaintext connections are
    /// refused unless `portUnification`; with `portUnification` alone
    /// dials stay plaintext and both kinds are accepted.
    pub tls: Option<crate::tls::QuorumTls>,
}

impl QcmConfig {
    /// A configuration with numeric addresses, ZooKeeper's timeouts and
    /// zkfle's queue defaults. The advertised addresses default to
    /// `listen` (a port 0 there means the port bound).
    pub fn new(
        my_sid: i64,
        listen: Vec<SocketAddr>,
        peers: BTreeMap<i64, Vec<SocketAddr>>,
    ) -> Self {
        QcmConfig {
            my_sid,
            advertised_addrs: listen.clone(),
            listen_addrs: listen.into_iter().map(HostPort::from).collect(),
            listen_on_all_ips: false,
            peers: peers
                .into_iter()
                .map(|(sid, addrs)| (sid, addrs.into_iter().map(HostPort::from).collect()))
                .collect(),
            resolver: crate::net::system_resolver(),
            handshake_format: HandshakeFormat::V1,
            cnx_timeout: DEFAULT_CNX_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            bind_retry: 3,
            send_queue_capacity: DEFAULT_SEND_QUEUE_CAPACITY,
            recv_queue_capacity: DEFAULT_RECV_QUEUE_CAPACITY,
            max_strangers: DEFAULT_MAX_STRANGERS,
            coalesce_superseded: false,
            tls: None,
        }
    }

    /// The QCM settings of the server `config` describes (its `server.N`
    /// line for `my_sid`; with none, no listen address, which
    /// [`super::Qcm::start`] refuses): election addresses as configured,
    /// names kept as names and looked up with [`ZkConfig::resolver`],
    /// `quorumListenOnAllIPs`, `multiAddress.enabled` (V2 handshakes),
    /// `cnxTimeout`, the handshake timeout and `electionPortBindRetry`.
    pub fn for_server(config: &ZkConfig) -> QcmConfig {
        let election = |s: &crate::config::ServerSpec| -> Vec<HostPort> {
            s.endpoints.iter().map(|a| a.election.clone()).collect()
        };
        let mut q = QcmConfig::new(config.my_sid, Vec::new(), BTreeMap::new());
        q.listen_addrs = config.me().map(election).unwrap_or_default();
        q.advertised_addrs = Vec::new();
        q.listen_on_all_ips = config.listen_on_all_ips;
        q.peers = config
            .servers
            .iter()
            .filter(|s| s.sid != config.my_sid)
            .map(|s| (s.sid, election(s)))
            .collect();
        q.resolver = config.resolver.clone();
        if config.multi_address_enabled {
            q.handshake_format = HandshakeFormat::V2;
        }
        q.cnx_timeout = config.cnx_timeout;
        q.handshake_timeout = config.handshake_timeout;
        q.bind_retry = config.election_port_bind_retry;
        q
    }

    /// ZooKeeper's queue semantics: one send slot per peer, 100 receive
    /// slots (PROTOCOL.md §3.6). For side-by-side benchmarks.
    pub fn zookeeper_queues(mut self) -> Self {
        self.send_queue_capacity = 1;
        self.recv_queue_capacity = 100;
        self
    }
}

/// Our handshake, encoded once at start and written in one call on every
/// dial (PROTOCOL.md §2.2): `cfg.advertised_addrs` (once [`super::Qcm::start`]
/// has filled it in), else `bound`, the addresses actually bound.
pub(crate) fn encode_handshake(cfg: &QcmConfig, bound: &[SocketAddr]) -> Vec<u8> {
    let usable = |list: &[SocketAddr]| -> Vec<PeerAddress> {
        let mut v: Vec<PeerAddress> = Vec::new();
        for a in list.iter().filter(|a| !a.ip().is_unspecified()) {
            let p = PeerAddress {
                host: a.ip().to_string(),
                port: a.port(),
            };
            if !v.contains(&p) {
                v.push(p);
            }
        }
        v
    };
    // Never the wildcard (PROTOCOL.md §2.2); the bound addresses stand in
    // only when nothing usable was configured to advertise.
    let mut addrs = usable(&cfg.advertised_addrs);
    if addrs.is_empty() {
        addrs = usable(bound);
    }
    let format = if addrs.is_empty() {
        // No reachable address to advertise: 3.4's bare sid is the only
        // handshake that needs none, and every version accepts it.
        HandshakeFormat::V0
    } else {
        cfg.handshake_format
    };
    if format == HandshakeFormat::V1 {
        // V1 carries one address; ZooKeeper sends its first.
        addrs.truncate(1);
    }
    let mut out = Vec::with_capacity(64);
    Handshake {
        format,
        sid: cfg.my_sid,
        addresses: addrs,
    }
    .encode(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c_bound(c: &QcmConfig) -> Vec<SocketAddr> {
        c.listen_addrs
            .iter()
            .filter_map(HostPort::literal)
            .collect()
    }

    fn cfg(listen: &str, advertised: &[&str], format: HandshakeFormat) -> QcmConfig {
        let mut c = QcmConfig::new(7, vec![listen.parse().unwrap()], BTreeMap::new());
        c.advertised_addrs = advertised.iter().map(|a| a.parse().unwrap()).collect();
        c.handshake_format = format;
        c
    }

    #[test]
    fn v1_handshake_carries_the_first_advertised_address() {
        let c = cfg(
            "0.0.0.0:3888",
            &["10.0.0.2:3888", "10.0.0.3:3888"],
            HandshakeFormat::V1,
        );
        let (h, used) = Handshake::decode(&encode_handshake(&c, &c_bound(&c))).unwrap();
        assert_eq!(used, encode_handshake(&c, &c_bound(&c)).len());
        assert_eq!((h.format, h.sid), (HandshakeFormat::V1, 7));
        assert_eq!(h.addresses.len(), 1);
        assert_eq!(h.addresses[0].to_string(), "10.0.0.2:3888");
    }

    #[test]
    fn v2_handshake_carries_every_address_never_the_wildcard() {
        let c = cfg(
            "0.0.0.0:3888",
            &["10.0.0.2:3888", "0.0.0.0:3888", "[::1]:3889"],
            HandshakeFormat::V2,
        );
        let (h, _) = Handshake::decode(&encode_handshake(&c, &c_bound(&c))).unwrap();
        assert_eq!(h.format, HandshakeFormat::V2);
        let addrs: Vec<String> = h.addresses.iter().map(|a| a.to_string()).collect();
        assert_eq!(addrs, vec!["10.0.0.2:3888", "[::1]:3889"]);
    }

    #[test]
    fn nothing_reachable_to_advertise_falls_back_to_the_bare_sid() {
        let c = cfg("0.0.0.0:3888", &["0.0.0.0:3888"], HandshakeFormat::V1);
        assert_eq!(
            encode_handshake(&c, &c_bound(&c)),
            7i64.to_be_bytes().to_vec()
        );
    }

    #[test]
    fn for_server_keeps_names_and_the_configs_resolver() {
        let fake = crate::net::FakeResolver::new();
        let text = "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=/tmp/zkfle-no-such-dir\n\
                    quorumListenOnAllIPs=true\nmultiAddress.enabled=true\ncnxTimeout=1234\n\
                    server.1=zk1:2888:3888\nserver.2=zk2.example:2889:3889\n\
                    server.3=10.0.0.3:2890:3890|zk3:2891:3891\n";
        let resolver: Arc<dyn Resolver> = Arc::new(fake.clone());
        let zk = ZkConfig::parse_with_resolver(
            text,
            std::path::Path::new("zoo.cfg"),
            Some(1),
            resolver.clone(),
        )
        .unwrap();
        let q = QcmConfig::for_server(&zk);
        let shown = |v: &[HostPort]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(shown(&q.listen_addrs), ["zk1:3888"]);
        assert!(q.listen_on_all_ips);
        assert!(q.advertised_addrs.is_empty(), "filled in at start");
        assert_eq!(q.peers.keys().copied().collect::<Vec<_>>(), [2, 3]);
        assert_eq!(shown(&q.peers[&2]), ["zk2.example:3889"]);
        assert_eq!(shown(&q.peers[&3]), ["10.0.0.3:3890", "zk3:3891"]);
        assert!(Arc::ptr_eq(&q.resolver, &resolver));
        assert_eq!(q.handshake_format, HandshakeFormat::V2);
        assert_eq!(q.cnx_timeout, Duration::from_millis(1234));
        assert_eq!(q.bind_retry, 3);
    }

    #[test]
    fn zookeeper_queues_are_one_and_one_hundred() {
        let c = QcmConfig::new(1, vec![], BTreeMap::new()).zookeeper_queues();
        assert_eq!((c.send_queue_capacity, c.recv_queue_capacity), (1, 100));
        let d = QcmConfig::new(1, vec![], BTreeMap::new());
        assert!(d.send_queue_capacity >= 64, "a window-64 burst fits");
    }
}
