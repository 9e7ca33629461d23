//! Four-letter words on `clientPort` (DESIGN.md "Contracts"): `ruok`,
//! `srvr`, `stat`, `conf`, `mntr`, one command per TCP connection, answered
//! in ZooKeeper 3.8's line formats so `zk-ensemble.sh`, the election probe
//! and operators' scripts read zkfle peers and Java peers alike.
//!
//! The listener runs on its own small tokio runtime: a client that connects
//! and never writes only holds its own task until the read deadline.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::peer::status::{NetStats, PeerStatus, StatusSnapshot};

/// The version string `srvr`/`stat`/`mntr` print. It starts with the
/// ZooKeeper release whose protocol zkfle speaks, as tools that parse the
/// version only look at that part.
pub const VERSION_TEXT: &str = concat!("3.8.0-zkfle-", env!("CARGO_PKG_VERSION"));

/// What Java ZooKeeper answers `srvr`/`stat` with while not serving.
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

/// How long a client may take to send its four letters.
const READ_DEADLINE: Duration = Duration::from_secs(5);

/// Errors starting the admin server.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The client port could not be bound.
    #[error("cannot bind client port {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The runtime could not be built.
    #[error("cannot start the admin runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Counters of the client port itself (`srvr`'s Received/Sent/Connections).
#[derive(Debug, Default)]
pub struct AdminCounters {
    /// Commands received.
    pub received: AtomicU64,
    /// Answers sent.
    pub sent: AtomicU64,
    /// Connections open now.
    pub connections: AtomicU64,
}

/// The four-letter-word server. Dropping it stops it.
pub struct AdminServer {
    runtime: Option<tokio::runtime::Runtime>,
    local_addr: SocketAddr,
    stop: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for AdminServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminServer")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl AdminServer {
    /// Binds `addr` and serves four-letter words about `status`; `conf` is
    /// the text `conf` answers with.
    pub fn start(
        addr: SocketAddr,
        status: Arc<PeerStatus>,
        conf: String,
    ) -> Result<AdminServer, AdminError> {
        // Bound before the runtime exists: a runtime dropped on this error
        // path would panic when the caller runs async code.
        let std_listener = std::net::TcpListener::bind(addr)
            .map_err(|source| AdminError::Bind { addr, source })?;
        std_listener
            .set_nonblocking(true)
            .map_err(|source| AdminError::Bind { addr, source })?;
        let local_addr = std_listener.local_addr().unwrap_or(addr);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("admin{}", status.snapshot().my_sid))
            .enable_all()
            .build()
            .map_err(AdminError::Runtime)?;
        let listener = {
            let _g = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener)
        };
        let listener = match listener {
            Ok(l) => l,
            Err(source) => {
                crate::cnx::shutdown_runtime(runtime, Duration::from_secs(2));
                return Err(AdminError::Bind { addr, source });
            }
        };
        let stop = Arc::new(tokio::sync::Notify::new());
        let counters = Arc::new(AdminCounters::default());
        let conf = Arc::new(conf);
        let stop2 = stop.clone();
        runtime.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop2.notified() => break,
                    acc = listener.accept() => match acc {
                        Ok((sock, peer)) => {
                            let status = status.clone();
                            let counters = counters.clone();
                            let conf = conf.clone();
                            tokio::spawn(async move {
                                counters.connections.fetch_add(1, Ordering::Relaxed);
                                serve(sock, peer, &status, &counters, &conf).await;
                                counters.connections.fetch_sub(1, Ordering::Relaxed);
                            });
                        }
                        Err(e) => {
                            // Out of descriptors and the like: back off
                            // rather than spin.
                            log::warn!("client port accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        });
        log::info!("four-letter words on {local_addr}");
        Ok(AdminServer {
            runtime: Some(runtime),
            local_addr,
            stop,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, drops open connections and joins the runtime's
    /// threads. Idempotent.
    pub fn shutdown(&mut self) {
        self.stop.notify_one();
        if let Some(rt) = self.runtime.take() {
            // Safe from an embedder's async context too.
            crate::cnx::shutdown_runtime(rt, Duration::from_secs(2));
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn serve(
    mut sock: tokio::net::TcpStream,
    peer: SocketAddr,
    status: &PeerStatus,
    counters: &AdminCounters,
    conf: &str,
) {
    let mut word = [0u8; 4];
    let mut got = 0;
    // ZooKeeper reads exactly four bytes; a client may send them in pieces.
    while got < 4 {
        match tokio::time::timeout(READ_DEADLINE, sock.read(&mut word[got..])).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => got += n,
        }
    }
    counters.received.fetch_add(1, Ordering::Relaxed);
    let Ok(word) = std::str::from_utf8(&word) else {
        return;
    };
    let snap = status.snapshot();
    let net = status.net();
    let Some(answer) = answer(word, &snap, &net, counters, conf, peer) else {
        log::debug!("client port: unknown command {word:?} from {peer}");
        return;
    };
    counters.sent.fetch_add(1, Ordering::Relaxed);
    let _ = sock.write_all(answer.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// The answer to one four-letter word, or `None` for a word zkfle does not
/// know (the connection is then closed without a reply).
pub fn answer(
    word: &str,
    snap: &StatusSnapshot,
    net: &NetStats,
    counters: &AdminCounters,
    conf: &str,
    client: SocketAddr,
) -> Option<String> {
    Some(match word {
        "ruok" => "imok".to_string(),
        "srvr" => server_lines(snap, counters, None),
        "stat" => server_lines(snap, counters, Some(client)),
        "conf" => conf.to_string(),
        "mntr" => mntr(snap, net, counters),
        _ => return None,
    })
}

fn server_lines(snap: &StatusSnapshot, c: &AdminCounters, client: Option<SocketAddr>) -> String {
    if !snap.serving {
        return NOT_SERVING.to_string();
    }
    let mut s = format!("Zookeeper version: {VERSION_TEXT}\n");
    if let Some(client) = client {
        // `stat` lists the client connections; the only one zkfle has is
        // the one asking.
        s.push_str(&format!(
            "Clients:\n /{client}[0](queued=0,recved=1,sent=0)\n\n"
        ));
    }
    s.push_str(&format!(
        "Latency min/avg/max: 0/0.0/0\nReceived: {}\nSent: {}\nConnections: {}\nOutstanding: 0\nZxid: {:#x}\nMode: {}\n",
        c.received.load(Ordering::Relaxed),
        c.sent.load(Ordering::Relaxed),
        c.connections.load(Ordering::Relaxed),
        snap.last_zxid,
        snap.server_state_text(),
    ));
    s
}

fn mntr(snap: &StatusSnapshot, net: &NetStats, c: &AdminCounters) -> String {
    let leader = if snap.state == crate::wire::ServerState::Looking {
        -1
    } else {
        snap.leader_sid
    };
    let last_ms = snap.last_election_ms.map(|m| m as i64).unwrap_or(-1);
    let rows: Vec<(&str, String)> = vec![
        ("zk_version", VERSION_TEXT.to_string()),
        ("zk_server_state", snap.server_state_text().to_string()),
        ("zk_peer_state", snap.peer_state_text()),
        ("zk_leader_sid", leader.to_string()),
        ("zk_current_epoch", snap.current_epoch.to_string()),
        ("zk_accepted_epoch", snap.accepted_epoch.to_string()),
        ("zk_election_count", snap.election_count.to_string()),
        ("zk_last_election_ms", last_ms.to_string()),
        ("zk_quorum_size", snap.quorum_size.to_string()),
        ("zk_connected_peers", net.connected_peers.to_string()),
        ("zk_notifications_sent", net.notifications_sent.to_string()),
        (
            "zk_notifications_received",
            net.notifications_received.to_string(),
        ),
        ("zk_bad_frames", net.bad_frames.to_string()),
        ("zk_last_zxid", format!("{:#x}", snap.last_zxid)),
        ("zk_election_epoch", snap.election_epoch.to_string()),
        (
            "zk_packets_received",
            c.received.load(Ordering::Relaxed).to_string(),
        ),
        (
            "zk_packets_sent",
            c.sent.load(Ordering::Relaxed).to_string(),
        ),
        (
            "zk_num_alive_connections",
            c.connections.load(Ordering::Relaxed).to_string(),
        ),
    ];
    let mut s = String::new();
    for (k, v) in rows {
        s.push_str(k);
        s.push('\t');
        s.push_str(&v);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::status::Phase;
    use crate::wire::ServerState;
    use std::io::{Read, Write};

    fn client() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    fn parse_mntr(t: &str) -> std::collections::BTreeMap<String, String> {
        t.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn looking_peer_is_not_serving_but_mntr_answers() {
        let st = PeerStatus::new(2, 2, 0, 0);
        let c = AdminCounters::default();
        let s = st.snapshot();
        let n = NetStats::default();
        let srvr = answer("srvr", &s, &n, &c, "", client()).unwrap();
        assert_eq!(srvr, NOT_SERVING);
        assert!(!srvr.contains("Mode:"));
        let m = parse_mntr(&answer("mntr", &s, &n, &c, "", client()).unwrap());
        assert_eq!(m["zk_server_state"], "looking");
        assert_eq!(m["zk_peer_state"], "looking");
        assert_eq!(m["zk_leader_sid"], "-1");
        assert_eq!(m["zk_quorum_size"], "2");
        for k in [
            "zk_version",
            "zk_current_epoch",
            "zk_accepted_epoch",
            "zk_election_count",
            "zk_last_election_ms",
            "zk_connected_peers",
            "zk_notifications_sent",
            "zk_notifications_received",
            "zk_bad_frames",
        ] {
            assert!(m.contains_key(k), "mntr lacks {k}");
        }
        assert_eq!(answer("ruok", &s, &n, &c, "", client()).unwrap(), "imok");
        assert_eq!(answer("xyzw", &s, &n, &c, "", client()), None);
    }

    #[test]
    fn serving_follower_prints_java_lines() {
        let st = PeerStatus::new(1, 2, 1, 1);
        st.update(|s| {
            s.state = ServerState::Following;
            s.phase = Phase::Broadcast;
            s.serving = true;
            s.leader_sid = 3;
            s.last_zxid = 0x1_0000_0000;
            s.election_count = 1;
            s.last_election_ms = Some(214);
        });
        let s = st.snapshot();
        let c = AdminCounters::default();
        let n = NetStats {
            connected_peers: 2,
            notifications_sent: 5,
            notifications_received: 6,
            bad_frames: 1,
        };
        let srvr = answer("srvr", &s, &n, &c, "", client()).unwrap();
        let lines: Vec<&str> = srvr.lines().collect();
        assert!(lines[0].starts_with("Zookeeper version: 3.8.0-zkfle-"));
        assert_eq!(lines[1], "Latency min/avg/max: 0/0.0/0");
        assert!(lines.contains(&"Zxid: 0x100000000"));
        assert_eq!(*lines.last().unwrap(), "Mode: follower");
        let stat = answer("stat", &s, &n, &c, "", client()).unwrap();
        assert!(stat.contains("Clients:\n /127.0.0.1:40000[0]"), "{stat}");
        assert!(stat.contains("\nMode: follower\n"));
        let m = parse_mntr(&answer("mntr", &s, &n, &c, "", client()).unwrap());
        assert_eq!(m["zk_server_state"], "follower");
        assert_eq!(m["zk_peer_state"], "following - broadcast");
        assert_eq!(m["zk_leader_sid"], "3");
        assert_eq!(m["zk_last_election_ms"], "214");
        assert_eq!(m["zk_connected_peers"], "2");
        assert_eq!(m["zk_bad_frames"], "1");
        assert_eq!(m["zk_current_epoch"], "1");
    }

    #[test]
    fn server_answers_one_word_per_connection_over_tcp() {
        let st = Arc::new(PeerStatus::new(1, 1, 0, 0));
        let mut srv = AdminServer::start(
            "127.0.0.1:0".parse().unwrap(),
            st.clone(),
            "serverId=1\n".into(),
        )
        .unwrap();
        let ask = |w: &[u8]| {
            let mut s = std::net::TcpStream::connect(srv.local_addr()).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            // Split the word to check that partial reads are joined.
            s.write_all(&w[..2]).unwrap();
            s.write_all(&w[2..]).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        assert_eq!(ask(b"ruok"), "imok");
        assert_eq!(ask(b"conf"), "serverId=1\n");
        assert_eq!(ask(b"srvr"), NOT_SERVING);
        st.update(|s| {
            s.state = ServerState::Leading;
            s.serving = true;
            s.leader_sid = 1;
        });
        assert!(ask(b"srvr").ends_with("Mode: leader\n"));
        srv.shutdown();
        assert!(std::net::TcpStream::connect(srv.local_addr()).is_err());
    }
}
