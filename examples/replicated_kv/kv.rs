//! The replicated key-value store behind `examples/replicated_kv.rs`: one
//! [`Node`] = one zkfle peer that replicates the store's log over Zab
//! ([`PeerBuilder::replicated_log`]) + a line-protocol server on the node's
//! `kvAddress` (clients only; replication runs on the quorum port).
//!
//! * **State machine** — [`KvMachine`] applies committed entries to a map.
//!   An entry is the bytes `<key> <value>` (keys and values hold no
//!   whitespace, so the single space separates them). A snapshot is the map
//!   as `<key> <value>\n` lines.
//! * **Log** — zkfle's [`FileLog`] in `<dataDir>/zkfle-log`
//!   ([`zkfle::FILE_LOG_DIR`]), wrapped so the node can report its
//!   last durable zxid and list its entries. zkfle votes with that zxid,
//!   syncs learners with DIFF/TRUNC/SNAP, and persists the new epoch only
//!   after a learner's log holds the leader's history (ZAB_SPEC L2).
//! * **SET** — [`PeerHandle::propose`]: resolves once a quorum (the leader
//!   included) has the entry durable, it is committed and applied here.
//!   Every connection keeps any number of SETs in flight (they are queued
//!   when read and answered in order), and the peer batches what is in
//!   flight from every connection into one fsync per batch (group commit).
//! * **GET** — on the leader, [`PeerHandle::read_barrier`] (a quorum round
//!   started after the request) then a read of the applied map: the answer
//!   reflects every write acknowledged before the GET was sent. A follower
//!   answers `REDIRECT <leader's kvAddress>`; a deposed leader cut off from
//!   its quorum never confirms the barrier and answers `ERR`.
//! * **LOCAL** — the node's applied (committed) map, no coordination.
//!
//! Per connection, answers come in request order, and a `GET` or `LOCAL` is
//! evaluated only after every earlier request of the same connection has
//! been answered, so a client reads its own writes (ZooKeeper's FIFO client
//! order).
// Tests include this module by path and use parts of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use zkfle::config::ZkConfig;
use zkfle::logstore::{
    Entry as LogEntry, FileLog, LogError, LogStore, ReadLimit, Snapshot, SyncSource,
};
use zkfle::{PeerBuilder, PeerHandle, ReplicationError, Role, StateMachine, ZkfleError};

/// Longest request line accepted.
const MAX_LINE: usize = 64 * 1024;
/// Requests one connection may have read but not yet answered; the reader
/// waits beyond this (back-pressure instead of unbounded memory).
const MAX_IN_FLIGHT: usize = 1024;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// `kvAddress.N` missing or unparsable.
    #[error("{path}: {problem}")]
    Config {
        /// The zoo.cfg.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A file or socket.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or address.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The log.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The zkfle peer.
    #[error(transparent)]
    Peer(#[from] ZkfleError),
}

/// The epoch of a zxid (high 32 bits).
pub fn epoch_of(zxid: i64) -> i64 {
    zxid >> 32
}

/// Every server's `kvAddress.N` from zoo.cfg's unused keys.
pub fn kv_addrs(cfg: &ZkConfig) -> Result<BTreeMap<i64, SocketAddr>, KvError> {
    let mut out = BTreeMap::new();
    for (line, key, value) in &cfg.extra {
        let Some(sid) = key.strip_prefix("kvAddress.") else {
            continue;
        };
        let bad = |problem: String| KvError::Config {
            path: cfg.path.clone(),
            problem: format!("line {line}: {key}: {problem}"),
        };
        let sid: i64 = sid
            .parse()
            .map_err(|_| bad("the suffix is not a sid".into()))?;
        let addr = value
            .to_socket_addrs()
            .map_err(|e| bad(format!("{value}: {e}")))?
            .next()
            .ok_or_else(|| bad(format!("{value}: no address")))?;
        out.insert(sid, addr);
    }
    for s in &cfg.servers {
        if !out.contains_key(&s.sid) {
            return Err(KvError::Config {
                path: cfg.path.clone(),
                problem: format!("no kvAddress.{} line for server.{}", s.sid, s.sid),
            });
        }
    }
    Ok(out)
}

/// One store write as it sits in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `(epoch << 32) | counter`.
    pub zxid: i64,
    /// Key (non-empty, no whitespace).
    pub key: String,
    /// Value (non-empty, no whitespace).
    pub value: String,
}

/// The log payload of `SET key value`.
pub fn encode(key: &str, value: &str) -> Bytes {
    let mut b = Vec::with_capacity(key.len() + 1 + value.len());
    b.extend_from_slice(key.as_bytes());
    b.push(b' ');
    b.extend_from_slice(value.as_bytes());
    b.into()
}

/// A log payload back to `(key, value)`; `None` for bytes this store did
/// not write.
pub fn decode(data: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(data).ok()?;
    let (k, v) = text.split_once(' ')?;
    (!k.is_empty() && !v.is_empty() && !v.contains(char::is_whitespace))
        .then(|| (k.to_string(), v.to_string()))
}

/// The applied map, shared between the state machine (writer, on zkfle's
/// apply thread) and the client connections (readers).
pub type Map = Arc<RwLock<HashMap<String, String>>>;

/// The store's state machine: committed `SET`s into the map.
pub struct KvMachine {
    map: Map,
    sid: i64,
}

impl StateMachine for KvMachine {
    fn apply(&mut self, entries: &[LogEntry]) {
        let mut map = self.map.write();
        for e in entries {
            match decode(&e.data) {
                Some((k, v)) => {
                    map.insert(k, v);
                }
                // Only this store proposes, so this is a bug or a foreign
                // data dir; say so and keep the replicas identical (every
                // replica skips the same entry).
                None => log::error!(
                    "sid {}: entry {:#x} is not `<key> <value>`; skipped",
                    self.sid,
                    e.zxid
                ),
            }
        }
    }

    fn snapshot(&mut self) -> Bytes {
        let map = self.map.read();
        let mut out = Vec::new();
        for (k, v) in map.iter() {
            out.extend_from_slice(k.as_bytes());
            out.push(b' ');
            out.extend_from_slice(v.as_bytes());
            out.push(b'\n');
        }
        out.into()
    }

    fn restore(&mut self, snapshot: &Snapshot) {
        let mut map = self.map.write();
        map.clear();
        for line in snapshot.data.split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            match decode(line) {
                Some((k, v)) => {
                    map.insert(k, v);
                }
                None => log::error!(
                    "sid {}: snapshot {:#x} holds a bad line; skipped",
                    self.sid,
                    snapshot.zxid
                ),
            }
        }
    }
}

/// zkfle's [`FileLog`] behind a lock the node shares, so the node can
/// report its last durable zxid ([`Node::last_zxid`]) and list its
/// entries ([`Node::log`]) while zkfle owns the store.
struct SharedLog {
    log: Arc<Mutex<FileLog>>,
    last: Arc<AtomicI64>,
}

impl SharedLog {
    fn publish(&self, log: &FileLog) {
        self.last.store(log.last_zxid(), Ordering::SeqCst);
    }
}

impl LogStore for SharedLog {
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), LogError> {
        let mut log = self.log.lock();
        let r = log.append(entries);
        self.publish(&log);
        r
    }
    fn last_zxid(&self) -> i64 {
        self.log.lock().last_zxid()
    }
    fn first_zxid(&self) -> Option<i64> {
        self.log.lock().first_zxid()
    }
    fn floor_zxid(&self, zxid: i64) -> Result<Option<i64>, LogError> {
        self.log.lock().floor_zxid(zxid)
    }
    fn read_after(&self, after: i64, limit: ReadLimit) -> Result<Vec<LogEntry>, LogError> {
        self.log.lock().read_after(after, limit)
    }
    fn truncate_after(&mut self, zxid: i64) -> Result<(), LogError> {
        let mut log = self.log.lock();
        let r = log.truncate_after(zxid);
        self.publish(&log);
        r
    }
    fn snapshot_zxid(&self) -> Option<i64> {
        self.log.lock().snapshot_zxid()
    }
    fn snapshot(&self) -> Result<Option<Snapshot>, LogError> {
        self.log.lock().snapshot()
    }
    fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError> {
        self.log.lock().save_snapshot(snapshot)
    }
    fn compact(&mut self, up_to: i64) -> Result<(), LogError> {
        self.log.lock().compact(up_to)
    }
    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError> {
        let mut log = self.log.lock();
        let r = log.install_snapshot(snapshot);
        self.publish(&log);
        r
    }
    fn sync_source(&self, learner_last: i64, limit: ReadLimit) -> Result<SyncSource, LogError> {
        self.log.lock().sync_source(learner_last, limit)
    }
}

/// Environment variable for fault injection in tests: with the value
/// `get-without-barrier`, `GET` answers from the local map on any node
/// (no read barrier, no leader check) — the stale-read bug the fault tests
/// must catch. Never set it otherwise.
pub const INJECT_ENV: &str = "REPLICATED_KV_INJECT";

/// What the connections share.
struct Ctx {
    handle: PeerHandle,
    map: Map,
    kv_addrs: BTreeMap<i64, SocketAddr>,
    /// [`INJECT_ENV`] is `get-without-barrier`.
    get_without_barrier: bool,
}

/// One running store node.
pub struct Node {
    sid: i64,
    kv_addr: SocketAddr,
    handle: PeerHandle,
    map: Map,
    log: Arc<Mutex<FileLog>>,
    last: Arc<AtomicI64>,
    rt: Mutex<Option<tokio::runtime::Runtime>>,
    stopped: AtomicBool,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node(sid {}, {})", self.sid, self.kv_addr)
    }
}

impl Node {
    /// Opens the log, starts the zkfle peer (replicating the log, voting
    /// with its last durable zxid) and serves `kvAddress`.
    pub fn start(cfg: ZkConfig) -> Result<Node, KvError> {
        let addrs = kv_addrs(&cfg)?;
        let sid = cfg.my_sid;
        let kv_addr = *addrs.get(&sid).ok_or_else(|| KvError::Config {
            path: cfg.path.clone(),
            problem: format!("no kvAddress.{sid} line for this server"),
        })?;
        let io = |what, path: PathBuf| move |source| KvError::Io { what, path, source };
        std::fs::create_dir_all(&cfg.data_dir).map_err(io("create", cfg.data_dir.clone()))?;
        let file_log = FileLog::open(cfg.data_dir.join(zkfle::FILE_LOG_DIR))?;
        log::info!(
            "sid {sid}: log opened, last durable zxid {:#x}",
            file_log.last_zxid()
        );
        let last = Arc::new(AtomicI64::new(file_log.last_zxid()));
        let log = Arc::new(Mutex::new(file_log));
        let map: Map = Arc::default();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("kv-{sid}"))
            .enable_all()
            .build()
            .map_err(io("start runtime", PathBuf::from("kv")))?;
        // Bind before starting the peer: a node that cannot serve clients
        // should not take part in elections either.
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(kv_addr))
            .map_err(io("bind kvAddress", PathBuf::from(kv_addr.to_string())))?;
        let handle = PeerBuilder::from_config(cfg)
            .replicated_log(KvMachine {
                map: map.clone(),
                sid,
            })
            .log_store(SharedLog {
                log: log.clone(),
                last: last.clone(),
            })
            .start()?;
        let get_without_barrier =
            std::env::var(INJECT_ENV).is_ok_and(|v| v == "get-without-barrier");
        if get_without_barrier {
            log::warn!("sid {sid}: {INJECT_ENV}=get-without-barrier: GET may answer stale values");
        }
        let ctx = Arc::new(Ctx {
            handle: handle.clone(),
            map: map.clone(),
            kv_addrs: addrs,
            get_without_barrier,
        });
        rt.spawn(accept_loop(ctx, listener));
        Ok(Node {
            sid,
            kv_addr,
            handle,
            map,
            log,
            last,
            rt: Mutex::new(Some(rt)),
            stopped: AtomicBool::new(false),
        })
    }

    /// This node's sid.
    pub fn sid(&self) -> i64 {
        self.sid
    }

    /// The line-protocol address.
    pub fn kv_addr(&self) -> SocketAddr {
        self.kv_addr
    }

    /// The embedded zkfle peer.
    pub fn handle(&self) -> &PeerHandle {
        &self.handle
    }

    /// True while this node leads an established epoch (it takes writes).
    pub fn is_serving_leader(&self) -> bool {
        self.handle.role().is_leader()
    }

    /// True while this node follows and is synchronized with its leader.
    pub fn is_synced_follower(&self) -> bool {
        matches!(self.handle.role(), Role::Following { .. })
    }

    /// The epoch of the role this node serves in (0 while looking).
    pub fn epoch(&self) -> i64 {
        self.handle.role().epoch().unwrap_or(0)
    }

    /// The last durable zxid of the local log (what this node votes with).
    pub fn last_zxid(&self) -> i64 {
        self.last.load(Ordering::SeqCst)
    }

    /// The zxid of the last entry this node's map has applied (what
    /// `LOCAL` reflects); it may trail [`Node::last_zxid`] until the commit
    /// reaches this node.
    pub fn applied_zxid(&self) -> i64 {
        self.handle.applied_zxid()
    }

    /// The applied value of `key` (what `LOCAL` answers).
    pub fn local(&self, key: &str) -> Option<String> {
        self.map.read().get(key).cloned()
    }

    /// Every entry the local log retains (committed or not), oldest first.
    pub fn log(&self) -> Vec<Entry> {
        let log = self.log.lock();
        let entries = log.read_after(0, ReadLimit::UNLIMITED).unwrap_or_else(|e| {
            log::error!("sid {}: cannot read the log: {e}", self.sid);
            Vec::new()
        });
        entries
            .into_iter()
            .filter_map(|e| {
                decode(&e.data).map(|(key, value)| Entry {
                    zxid: e.zxid,
                    key,
                    value,
                })
            })
            .collect()
    }

    /// Stops at once, as a crash would: client connections are dropped,
    /// the peer stops, nothing is written beyond what zkfle already made
    /// durable.
    pub fn kill(self) {
        self.stop_all();
    }

    fn stop_all(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(rt) = self.rt.lock().take() {
            // Closes the listener and every connection (their tasks are
            // dropped); pending answers are never sent, as in a crash.
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        self.handle.shutdown();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_all();
    }
}

async fn accept_loop(ctx: Arc<Ctx>, listener: tokio::net::TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(ctx.clone(), stream));
            }
            Err(e) => {
                // Out of descriptors and the like: back off, do not spin.
                log::warn!("sid {}: accept on kvAddress: {e}", ctx.handle.my_sid());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A result that resolves later (a proposal or a read barrier).
type Pending = Pin<Box<dyn Future<Output = Result<i64, ReplicationError>> + Send>>;

/// One request read from a connection, waiting for its answer's turn.
enum Answer {
    /// Known at once (usage errors).
    Now(String),
    /// `SET`: proposed when read; answered when it resolves.
    Set(Pending),
    /// `GET`: the barrier is requested when its turn comes.
    Get(String),
    /// `LOCAL`: read when its turn comes.
    Local(String),
}

/// Reads one line (without `\n` and a trailing `\r`); `None` at EOF, on an
/// error or for a line longer than [`MAX_LINE`].
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Option<String> {
    let mut buf = Vec::new();
    loop {
        let avail = r.fill_buf().await.ok()?;
        if avail.is_empty() {
            return None;
        }
        if let Some(i) = avail.iter().position(|&b| b == b'\n') {
            buf.extend_from_slice(&avail[..i]);
            r.consume(i + 1);
            break;
        }
        let n = avail.len();
        buf.extend_from_slice(avail);
        r.consume(n);
        if buf.len() > MAX_LINE {
            return None;
        }
    }
    if buf.len() > MAX_LINE {
        return None;
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

async fn serve_connection(ctx: Arc<Ctx>, stream: tokio::net::TcpStream) {
    let (rd, wr) = stream.into_split();
    let (tx, rx) = tokio::sync::mpsc::channel(MAX_IN_FLIGHT);
    let writer = tokio::spawn(answer_loop(ctx.clone(), rx, wr));
    let mut input = tokio::io::BufReader::new(rd);
    while let Some(line) = read_line(&mut input).await {
        if tx.send(request(&ctx, &line)).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Parses one request; a `SET` is proposed right here, so the requests of
/// every connection are in flight together.
fn request(ctx: &Ctx, line: &str) -> Answer {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["SET", key, value] => Answer::Set(Box::pin(ctx.handle.propose(encode(key, value)))),
        ["GET", key] => Answer::Get(key.to_string()),
        ["LOCAL", key] => Answer::Local(key.to_string()),
        ["SET", ..] => Answer::Now("ERR usage: SET <key> <value>".into()),
        ["GET", ..] => Answer::Now("ERR usage: GET <key>".into()),
        ["LOCAL", ..] => Answer::Now("ERR usage: LOCAL <key>".into()),
        [] => Answer::Now("ERR empty request".into()),
        [cmd, ..] => Answer::Now(format!("ERR unknown command {cmd}")),
    }
}

/// Answers a connection's requests in order; writes whenever no further
/// answer is ready (one write for a whole pipelined batch).
async fn answer_loop(
    ctx: Arc<Ctx>,
    mut rx: tokio::sync::mpsc::Receiver<Answer>,
    mut out: tokio::net::tcp::OwnedWriteHalf,
) {
    let mut buf = String::new();
    while let Some(a) = rx.recv().await {
        let line = match a {
            Answer::Now(s) => s,
            Answer::Set(p) => match p.await {
                Ok(zxid) => format!("OK {zxid:#x}"),
                Err(e) => refusal(&ctx, e),
            },
            Answer::Get(key) if ctx.get_without_barrier => lookup(&ctx.map, &key),
            Answer::Get(key) => match ctx.handle.read_barrier().await {
                Ok(_) => lookup(&ctx.map, &key),
                Err(e) => refusal(&ctx, e),
            },
            Answer::Local(key) => lookup(&ctx.map, &key),
        };
        buf.push_str(&line);
        buf.push('\n');
        if rx.is_empty() {
            if out.write_all(buf.as_bytes()).await.is_err() {
                return;
            }
            buf.clear();
        }
    }
    let _ = out.write_all(buf.as_bytes()).await;
}

fn lookup(map: &Map, key: &str) -> String {
    match map.read().get(key) {
        Some(v) => format!("VALUE {v}"),
        None => "NOTFOUND".to_string(),
    }
}

/// The line for a request the peer did not carry out.
fn refusal(ctx: &Ctx, e: ReplicationError) -> String {
    match e {
        ReplicationError::NotLeader { leader: Some(l) } => match ctx.kv_addrs.get(&l) {
            Some(a) => format!("REDIRECT {a}"),
            None => format!("ERR leader {l} has no kvAddress"),
        },
        ReplicationError::NotLeader { leader: None } => {
            "ERR no leader (election in progress)".to_string()
        }
        ReplicationError::NotEstablished => {
            "ERR leader not serving yet (no quorum synchronized)".to_string()
        }
        ReplicationError::OutcomeUnknown => {
            "ERR outcome unknown: leadership lost before the write committed".to_string()
        }
        ReplicationError::TermEnded => {
            "ERR leadership lost before a quorum confirmed the read".to_string()
        }
        ReplicationError::Shutdown => "ERR outcome unknown: shutting down".to_string(),
        other => format!("ERR {other}"),
    }
}

/// A line-protocol client (tests and the demo).
pub struct Client {
    input: BufReader<TcpStream>,
    out: TcpStream,
}

impl Client {
    /// Connects with a timeout; every answer must come within `timeout`.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<Client> {
        let s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_nodelay(true)?;
        Ok(Client {
            out: s.try_clone()?,
            input: BufReader::new(s),
        })
    }

    /// Sends one request line, returns the answer line.
    pub fn request(&mut self, line: &str) -> std::io::Result<String> {
        self.out.write_all(format!("{line}\n").as_bytes())?;
        let mut a = String::new();
        if self.input.read_line(&mut a)? == 0 || !a.ends_with('\n') {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(a.trim_end_matches(['\n', '\r']).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_foreign_bytes_are_refused() {
        assert_eq!(
            decode(&encode("k", "v")),
            Some(("k".to_string(), "v".to_string()))
        );
        assert_eq!(decode(b"k"), None);
        assert_eq!(decode(b" v"), None);
        assert_eq!(decode(b"k "), None);
        assert_eq!(decode(b"k v w"), None);
        assert_eq!(decode(&[0xff, b' ', b'v']), None);
    }

    #[test]
    fn a_snapshot_restores_the_same_map() {
        let map: Map = Arc::default();
        let mut m = KvMachine {
            map: map.clone(),
            sid: 1,
        };
        m.apply(&[
            LogEntry::new(1, encode("a", "1")),
            LogEntry::new(2, encode("b", "2")),
            LogEntry::new(3, encode("a", "3")),
        ]);
        let snap = Snapshot {
            zxid: 3,
            data: m.snapshot(),
        };
        let other: Map = Arc::default();
        other.write().insert("stale".into(), "x".into());
        let mut m2 = KvMachine {
            map: other.clone(),
            sid: 2,
        };
        m2.restore(&snap);
        assert_eq!(*other.read(), *map.read());
        assert_eq!(other.read().get("a").map(String::as_str), Some("3"));
    }
}
