//! Four-letter words on `clientPort` (DESIGN.md "Contracts"), one command
//! per TCP connection, answered in ZooKeeper 3.8's formats so
//! `zk-ensemble.sh`, `zkServer.sh status`, the election probe and
//! operators' scripts read zkfle peers and Java peers alike.
//!
//! What a word gets, in ZooKeeper's order (`NIOServerCnxn.checkFourLetterWord`):
//!
//! 1. four bytes that are no known word: the connection is closed without
//!    a reply (Java reads them as the length of a client request, which is
//!    out of range, and closes);
//! 2. a known word not in `4lw.commands.whitelist`:
//!    `<word> is not executed because it is not in the whitelist.\n`, then
//!    close (bytes captured from Java 3.8.0, `tests/ops_admin.rs`);
//! 3. `ruok`, `srvr`, `stat`, `conf`, `mntr`, `isro`, `srst`: answered;
//! 4. the other known words (`cons`, `crst`, `dirs`, `dump`, `envi`,
//!    `gtmk`, `stmk`, `wchc`, `wchp`, `wchs`, `hash`), which report on
//!    ZooKeeper's data tree, sessions, client connections, JVM and trace
//!    mask, none of which zkfle has: rather than a silent close they get
//!    [`NOT_SERVING`], ZooKeeper's reply to the data-tree words from a
//!    server that serves no client requests, which zkfle never does;
//! 5. the telnet "close" sequence (`ff f4 ff fd`), if whitelisted: closed,
//!    as Java does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::FourLetterWords;

use super::{mntr, Sources, View, READ_DEADLINE, VERSION_TEXT};

/// What Java ZooKeeper answers `srvr`/`stat` (and the data-tree words) with
/// while it serves no client requests.
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

/// The bytes of the telnet interrupt + "do timing mark" sequence ZooKeeper
/// names `telnet close` (`FourLetterCommands.telnetCloseCmd`).
const TELNET_CLOSE: [u8; 4] = [0xff, 0xf4, 0xff, 0xfd];

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

/// What a connection gets for its four bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Write this, then close.
    Text(String),
    /// Close without a reply.
    Close,
}

/// The name ZooKeeper knows these four bytes by, if any.
pub fn known_word(bytes: [u8; 4]) -> Option<&'static str> {
    if bytes == TELNET_CLOSE {
        return Some("telnet close");
    }
    crate::config::admin::KNOWN_WORDS
        .iter()
        .copied()
        .find(|w| w.as_bytes() == bytes)
}

/// The reply to `bytes` from a peer in state `view`.
pub fn reply(
    bytes: [u8; 4],
    words: &FourLetterWords,
    view: &View,
    counters: &AdminCounters,
    conf: &str,
    client: SocketAddr,
) -> Reply {
    let Some(word) = known_word(bytes) else {
        return Reply::Close;
    };
    if !words.allows(word) {
        return Reply::Text(format!(
            "{word} is not executed because it is not in the whitelist.\n"
        ));
    }
    let serving = view.snap.serving;
    Reply::Text(match word {
        "ruok" => "imok".to_string(),
        "srvr" => server_lines(view, counters, None),
        "stat" => server_lines(view, counters, Some(client)),
        "conf" => conf.to_string(),
        "mntr" => mntr::mntr(view, counters),
        // zkfle never runs read-only; `null` is Java's answer while not
        // running.
        "isro" if serving => "rw".to_string(),
        "isro" => "null".to_string(),
        "srst" if serving => {
            counters.received.store(0, Ordering::Relaxed);
            counters.sent.store(0, Ordering::Relaxed);
            "Server stats reset.\n".to_string()
        }
        "telnet close" => return Reply::Close,
        _ => NOT_SERVING.to_string(),
    })
}

/// `srvr` and `stat`.
fn server_lines(view: &View, c: &AdminCounters, client: Option<SocketAddr>) -> String {
    let snap = &view.snap;
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

/// Accepts four-letter-word connections until `stop` fires.
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    sources: Sources,
    words: Arc<FourLetterWords>,
    conf: Arc<String>,
    stop: Arc<tokio::sync::Notify>,
) {
    let counters = Arc::new(AdminCounters::default());
    loop {
        tokio::select! {
            _ = stop.notified() => break,
            acc = listener.accept() => match acc {
                Ok((sock, peer)) => {
                    let sources = sources.clone();
                    let counters = counters.clone();
                    let words = words.clone();
                    let conf = conf.clone();
                    tokio::spawn(async move {
                        counters.connections.fetch_add(1, Ordering::Relaxed);
                        one(sock, peer, &sources, &words, &counters, &conf).await;
                        counters.connections.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                Err(e) => {
                    // Out of descriptors and the like: back off rather
                    // than spin.
                    log::warn!("client port accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Serves one connection.
async fn one(
    mut sock: tokio::net::TcpStream,
    peer: SocketAddr,
    sources: &Sources,
    words: &FourLetterWords,
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
    let view = sources.view();
    match reply(word, words, &view, counters, conf, peer) {
        Reply::Close => {
            log::debug!("client port: unknown command {word:02x?} from {peer}");
        }
        Reply::Text(answer) => {
            counters.sent.fetch_add(1, Ordering::Relaxed);
            let _ = sock.write_all(answer.as_bytes()).await;
        }
    }
    let _ = sock.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::status::{NetStats, PeerStatus, Phase};
    use crate::wire::ServerState;
    use std::time::Instant;

    fn client() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    fn view_of(st: &PeerStatus) -> View {
        View {
            snap: st.snapshot(),
            timings: st.timings(),
            net: NetStats::default(),
            qcm: None,
            links: vec![],
            at: Instant::now(),
        }
    }

    fn text(r: Reply) -> String {
        match r {
            Reply::Text(t) => t,
            Reply::Close => panic!("closed without a reply"),
        }
    }

    #[test]
    fn whitelist_refusal_unknown_words_and_not_serving_words() {
        let st = PeerStatus::new(2, 3, 0, 0);
        let c = AdminCounters::default();
        let v = view_of(&st);
        let only = FourLetterWords::parse(Some("ruok"));
        let r = |w: &[u8; 4], words: &FourLetterWords| reply(*w, words, &v, &c, "", client());
        assert_eq!(text(r(b"ruok", &only)), "imok");
        assert_eq!(
            text(r(b"mntr", &only)),
            "mntr is not executed because it is not in the whitelist.\n"
        );
        assert_eq!(
            text(r(&TELNET_CLOSE, &only)),
            "telnet close is not executed because it is not in the whitelist.\n"
        );
        // srvr is always on; while looking it is ZooKeeper's not-serving line.
        assert_eq!(text(r(b"srvr", &only)), NOT_SERVING);
        assert_eq!(r(b"xyzw", &only), Reply::Close);
        assert_eq!(r(b"RUOK", &FourLetterWords::all()), Reply::Close);
        let all = FourLetterWords::all();
        for w in [b"cons", b"dump", b"wchs", b"envi", b"hash", b"crst"] {
            assert_eq!(text(r(w, &all)), NOT_SERVING, "{:?}", w);
        }
        assert_eq!(text(r(b"isro", &all)), "null");
        assert_eq!(text(r(b"srst", &all)), NOT_SERVING);
        assert_eq!(r(&TELNET_CLOSE, &all), Reply::Close);
    }

    #[test]
    fn serving_follower_prints_java_lines() {
        let st = PeerStatus::new(1, 3, 1, 1);
        st.update(|s| {
            s.state = ServerState::Following;
            s.phase = Phase::Broadcast;
            s.serving = true;
            s.leader_sid = 3;
            s.last_zxid = 0x1_0000_0000;
        });
        let v = view_of(&st);
        let c = AdminCounters::default();
        c.received.store(7, Ordering::Relaxed);
        let all = FourLetterWords::all();
        let srvr = text(reply(*b"srvr", &all, &v, &c, "", client()));
        let lines: Vec<&str> = srvr.lines().collect();
        assert!(lines[0].starts_with("Zookeeper version: 3.8.0-zkfle-"));
        assert_eq!(lines[1], "Latency min/avg/max: 0/0.0/0");
        assert!(lines.contains(&"Received: 7"));
        assert!(lines.contains(&"Zxid: 0x100000000"));
        assert_eq!(*lines.last().unwrap(), "Mode: follower");
        let stat = text(reply(*b"stat", &all, &v, &c, "", client()));
        assert!(stat.contains("Clients:\n /127.0.0.1:40000[0]"), "{stat}");
        assert!(stat.contains("\nMode: follower\n"));
        assert_eq!(text(reply(*b"isro", &all, &v, &c, "", client())), "rw");
        assert_eq!(
            text(reply(*b"srst", &all, &v, &c, "", client())),
            "Server stats reset.\n"
        );
        assert_eq!(c.received.load(Ordering::Relaxed), 0, "srst resets");
        assert_eq!(
            text(reply(*b"conf", &all, &v, &c, "serverId=1\n", client())),
            "serverId=1\n"
        );
    }
}
