//! The replicated key-value store behind `examples/replicated_kv.rs`: one
//! [`Node`] = one zkfle peer (the election) + a durable log + a line-protocol
//! server on the node's `kvAddress`, which also carries replication.
//!
//! Roles come from zkfle ([`PeerHandle::subscribe`]), and so does the
//! epoch: zkfle reports `Role::Leading { epoch }` / `Role::Following {
//! leader, epoch }` only once its quorum-port Zab session is synchronized,
//! with the epoch that session established (above every epoch established
//! before, persisted by zkfle as `acceptedEpoch`/`currentEpoch` on every
//! member of its quorum). The store never chooses an epoch and never writes
//! zkfle's epoch files (two writers with separate caches could leave
//! `acceptedEpoch < currentEpoch` on disk, which zkfle refuses at startup);
//! its own state is only its log. What it adds on top is the data part of
//! Zab, in miniature:
//!
//! * **discovery** — the leader dials every follower's `kvAddress`
//!   (`LEAD <sid>`); a follower only answers the sid its zkfle role names
//!   (`INFO <highest epoch seen> <tails>`). The leader sends `EPOCH <e>`
//!   with `e` its zkfle epoch; the follower accepts it (`ACKEPOCH`) only if
//!   `e` is the epoch of its own `Role::Following` (both learned it from
//!   the same Zab session), and refuses (`NACK stale epoch ...`) anything
//!   below the highest epoch zkfle has shown it. This is the fencing: a
//!   deposed leader's epoch is older than the one Zab established on a
//!   quorum, so it can no longer gather a quorum;
//! * **synchronization** — from the follower's per-epoch log tails the
//!   leader finds the last common zxid, sends `TRUNC <zxid>` if the
//!   follower holds entries it does not have (never acknowledged ones),
//!   then the entries the follower lacks, then `SYNCED <zxid>`; the leader
//!   serves once a quorum (itself included) acknowledged that;
//! * **broadcast** — `ENTRY <zxid> <key> <value>` in zxid order, zxid =
//!   `(epoch << 32) | counter` with the counter starting at 1 in each new
//!   epoch, as ZooKeeper's does; a follower appends, fsyncs and answers
//!   `ACK <zxid>`, and rejects (closes) any entry of another epoch than its
//!   leader's or out of order. `PING` keeps a quiet link alive (answered by
//!   `ACK <last zxid>`).
//!
//! Because an entry of epoch `e` is only written while zkfle serves in
//! epoch `e`, after Zab persisted `currentEpoch = e` on this node, zkfle's
//! startup check (`currentEpoch` not older than the log's last zxid) holds
//! after any crash.
//!
//! Leader loss: zkfle's Zab session ends a role by itself when the leader
//! (or, for a leader, its quorum) goes away, and the store drops the role
//! on the `Looking` event. The store also keeps its own detection on its
//! replication links (EOF, `syncLimit` ticks of silence, no quorum synced
//! within `initLimit` ticks) as a second signal and then asks zkfle for a
//! new election ([`PeerHandle::restart_election`]): harmless when Zab has
//! already noticed, and it covers a leader whose Zab session is healthy
//! while its store cannot replicate. The election itself is always
//! zkfle's, with the store's last zxid as the vote (the supplier also
//! freezes the store, so the vote stays true until the next role).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use zkfle::config::{QuorumVerifier, ZkConfig};
use zkfle::{Event, PeerBuilder, PeerHandle, Role, ZkfleError};

/// Longest request or replication line accepted.
const MAX_LINE: u64 = 64 * 1024;
/// The store's log, in `dataDir`.
pub const LOG_FILE: &str = "kv.log";

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
    /// The log.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The election peer.
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

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `(epoch << 32) | counter`.
    pub zxid: i64,
    /// Key (non-empty, no whitespace).
    pub key: String,
    /// Value (non-empty, no whitespace).
    pub value: String,
}

/// The durable log plus the map built from it.
struct Store {
    path: PathBuf,
    file: File,
    log: Vec<Entry>,
    map: HashMap<String, String>,
}

impl Store {
    /// Opens `dir/kv.log`; a torn last line (a crash mid-append) is cut off.
    fn open(dir: &Path) -> Result<Store, KvError> {
        let path = dir.join(LOG_FILE);
        let io = |what, source| KvError::Io {
            what,
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| io("open", e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| io("read", e))?;
        let mut log = Vec::new();
        let mut good = 0usize;
        let mut rest = &bytes[..];
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&rest[..nl]);
            let Some(e) = parse_entry(&line) else { break };
            if log.last().is_some_and(|l: &Entry| l.zxid >= e.zxid) {
                break;
            }
            log.push(e);
            good += nl + 1;
            rest = &rest[nl + 1..];
        }
        if good < bytes.len() {
            log::warn!(
                "{}: cutting {} bytes after the last whole entry",
                path.display(),
                bytes.len() - good
            );
            file.set_len(good as u64).map_err(|e| io("truncate", e))?;
            file.sync_all().map_err(|e| io("fsync", e))?;
        }
        let mut s = Store {
            path,
            file,
            log,
            map: HashMap::new(),
        };
        s.rebuild();
        Ok(s)
    }

    fn rebuild(&mut self) {
        self.map.clear();
        for e in &self.log {
            self.map.insert(e.key.clone(), e.value.clone());
        }
    }

    fn last_zxid(&self) -> i64 {
        self.log.last().map_or(0, |e| e.zxid)
    }

    /// Appends and fsyncs before returning: an entry is acknowledged only
    /// once it is on disk.
    fn append(&mut self, entries: &[Entry]) -> std::io::Result<()> {
        let mut buf = String::new();
        for e in entries {
            buf.push_str(&format!("{:016x} {} {}\n", e.zxid, e.key, e.value));
        }
        self.file.write_all(buf.as_bytes())?;
        self.file.sync_data()?;
        for e in entries {
            self.map.insert(e.key.clone(), e.value.clone());
            self.log.push(e.clone());
        }
        Ok(())
    }

    /// Keeps entries up to `zxid`; rewrites the file atomically.
    fn truncate(&mut self, zxid: i64) -> std::io::Result<()> {
        let keep = self.log.partition_point(|e| e.zxid <= zxid);
        if keep == self.log.len() {
            return Ok(());
        }
        let tmp = self.path.with_extension("log.tmp");
        {
            let mut f = File::create(&tmp)?;
            let mut buf = String::new();
            for e in &self.log[..keep] {
                buf.push_str(&format!("{:016x} {} {}\n", e.zxid, e.key, e.value));
            }
            f.write_all(buf.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.log.truncate(keep);
        self.rebuild();
        Ok(())
    }

    /// The last zxid of every epoch in the log, ascending.
    fn tails(&self) -> Vec<i64> {
        let mut out: Vec<i64> = Vec::new();
        for e in &self.log {
            match out.last_mut() {
                Some(t) if epoch_of(*t) == epoch_of(e.zxid) => *t = e.zxid,
                _ => out.push(e.zxid),
            }
        }
        out
    }

    fn last_in_epoch(&self, epoch: i64) -> Option<i64> {
        let end = self.log.partition_point(|e| epoch_of(e.zxid) <= epoch);
        self.log[..end]
            .last()
            .filter(|e| epoch_of(e.zxid) == epoch)
            .map(|e| e.zxid)
    }

    fn entries_after(&self, zxid: i64) -> Vec<Entry> {
        let from = self.log.partition_point(|e| e.zxid <= zxid);
        self.log[from..].to_vec()
    }
}

fn parse_entry(line: &str) -> Option<Entry> {
    let mut it = line.split(' ');
    let zxid = i64::from_str_radix(it.next()?, 16).ok()?;
    let key = it.next().filter(|k| !k.is_empty())?.to_string();
    let value = it.next().filter(|v| !v.is_empty())?.to_string();
    if it.next().is_some() || zxid <= 0 {
        return None;
    }
    Some(Entry { zxid, key, value })
}

/// The last zxid both logs share, from the follower's per-epoch tails: a
/// given epoch's entries all come from one leader in one order, so two logs
/// agree up to the shorter run of the first epoch where they differ.
fn common_point(leader: &Store, follower_tails: &[i64]) -> i64 {
    let mut t = 0;
    for &fl in follower_tails {
        match leader.last_in_epoch(epoch_of(fl)) {
            None => break,
            Some(ll) if fl == ll => t = fl,
            Some(ll) => {
                t = fl.min(ll);
                break;
            }
        }
    }
    t
}

/// The leader's view while leading.
struct Lead {
    /// The epoch zkfle's Zab session established for this leadership.
    epoch: i64,
    /// Set when that epoch cannot stamp new writes (see [`on_role`]): the
    /// role is given back to zkfle.
    unusable: Option<String>,
    counter: i64,
    synced: BTreeSet<i64>,
    acked: BTreeMap<i64, i64>,
    active: bool,
    commit: i64,
    since: Instant,
    quorum_lost_since: Option<Instant>,
}

/// The follower's view while following.
struct Follow {
    leader: i64,
    /// The epoch of this node's `Role::Following`: the only one an `EPOCH`
    /// line may carry.
    zk_epoch: i64,
    /// The replication connection currently trusted (0 = none).
    conn: u64,
    /// The epoch accepted on the trusted connection (0 until then).
    epoch: i64,
    synced: bool,
    since: Instant,
    last_heard: Instant,
    lost: bool,
}

enum Mode {
    Looking,
    Leading(Lead),
    Following(Follow),
}

struct State {
    store: Store,
    /// The highest epoch zkfle has shown this node (its persisted
    /// currentEpoch at start, then every role's): `EPOCH` below it is
    /// stale.
    seen_epoch: i64,
    mode: Mode,
    /// Bumped on every role change: threads of an older role exit.
    session: u64,
}

struct Shared {
    sid: i64,
    kv_addrs: BTreeMap<i64, SocketAddr>,
    verifier: QuorumVerifier,
    tick: Duration,
    init_limit: u32,
    sync_limit: u32,
    st: Mutex<State>,
    cv: Condvar,
    stop: AtomicBool,
    next_conn: AtomicU64,
    sockets: Mutex<HashMap<u64, TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn init_timeout(&self) -> Duration {
        self.tick * self.init_limit
    }
    fn sync_timeout(&self) -> Duration {
        self.tick * self.sync_limit
    }

    fn spawn<F: FnOnce() + Send + 'static>(self: &Arc<Self>, name: String, f: F) {
        match std::thread::Builder::new().name(name).spawn(f) {
            Ok(h) => {
                // Finished connection threads need no join: drop their
                // handles so a long-running node does not collect them.
                let mut ts = self.threads.lock();
                ts.retain(|t| !t.is_finished());
                ts.push(h);
            }
            Err(e) => log::error!("sid {}: cannot spawn a thread: {e}", self.sid),
        }
    }

    /// Remembers a socket so [`Node::kill`] can close it.
    fn track(&self, s: &TcpStream) -> u64 {
        let id = self.next_conn.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(c) = s.try_clone() {
            self.sockets.lock().insert(id, c);
        }
        if self.stop.load(Ordering::SeqCst) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        id
    }

    fn untrack(&self, id: u64) {
        if let Some(s) = self.sockets.lock().remove(&id) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn set_mode(&self, st: &mut State, mode: Mode) {
        st.mode = mode;
        st.session += 1;
        self.cv.notify_all();
    }

    /// Moves the commit point to the highest zxid a quorum (this leader
    /// included, which has everything it appended) acknowledged.
    fn recompute_commit(&self, st: &mut State) {
        let last = st.store.last_zxid();
        let Mode::Leading(l) = &mut st.mode else {
            return;
        };
        if !l.active {
            return;
        }
        let mut cands: Vec<i64> = l
            .synced
            .iter()
            .filter_map(|s| l.acked.get(s).copied())
            .chain([last])
            .collect();
        cands.sort_unstable_by(|a, b| b.cmp(a));
        for z in cands {
            if z <= l.commit {
                break;
            }
            let who = l
                .synced
                .iter()
                .copied()
                .filter(|s| l.acked.get(s).is_some_and(|&a| a >= z))
                .chain([self.sid]);
            if self.verifier.contains_quorum(who) {
                l.commit = z;
                self.cv.notify_all();
                break;
            }
        }
    }
}

/// One running store node.
pub struct Node {
    shared: Arc<Shared>,
    handle: PeerHandle,
    kv_addr: SocketAddr,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node(sid {}, {})", self.shared.sid, self.kv_addr)
    }
}

impl Node {
    /// Recovers the log, starts the zkfle peer (voting with the log's last
    /// zxid) and serves `kvAddress`.
    pub fn start(cfg: ZkConfig) -> Result<Node, KvError> {
        let addrs = kv_addrs(&cfg)?;
        let kv_addr = addrs[&cfg.my_sid];
        std::fs::create_dir_all(&cfg.data_dir).map_err(|source| KvError::Io {
            what: "create",
            path: cfg.data_dir.clone(),
            source,
        })?;
        let store = Store::open(&cfg.data_dir)?;
        log::info!(
            "sid {}: recovered {} entries, last zxid {:#x}",
            cfg.my_sid,
            store.log.len(),
            store.last_zxid(),
        );
        let listener = TcpListener::bind(kv_addr).map_err(|source| KvError::Io {
            what: "bind kvAddress",
            path: PathBuf::from(kv_addr.to_string()),
            source,
        })?;
        let shared = Arc::new(Shared {
            sid: cfg.my_sid,
            kv_addrs: addrs,
            verifier: cfg.verifier.clone(),
            tick: cfg.tick_time,
            init_limit: cfg.init_limit.max(1),
            sync_limit: cfg.sync_limit.max(1),
            st: Mutex::new(State {
                store,
                seen_epoch: 0,
                mode: Mode::Looking,
                session: 0,
            }),
            cv: Condvar::new(),
            stop: AtomicBool::new(false),
            next_conn: AtomicU64::new(0),
            sockets: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
        });
        let sup = shared.clone();
        let builder = PeerBuilder::from_config(cfg).last_zxid(move || {
            // A new election: stop taking writes from the old role so
            // the vote (our last zxid) stays true until the next role.
            let mut st = sup.st.lock();
            if !matches!(st.mode, Mode::Looking) {
                sup.set_mode(&mut st, Mode::Looking);
            }
            st.store.last_zxid()
        });
        let handle = builder.start()?;
        {
            // While looking this is zkfle's persisted currentEpoch: no
            // leader of an older epoch may replicate to us, even before
            // the first role.
            let mut st = shared.st.lock();
            st.seen_epoch = st.seen_epoch.max(handle.current_epoch());
        }
        let node = Node {
            shared: shared.clone(),
            handle: handle.clone(),
            kv_addr,
        };
        {
            let sh = shared.clone();
            shared.spawn(format!("kv-accept{}", shared.sid), move || {
                accept_loop(sh, listener)
            });
        }
        {
            let sh = shared.clone();
            let events = handle.subscribe();
            shared.spawn(format!("kv-role{}", shared.sid), move || {
                role_loop(sh, handle, events)
            });
        }
        Ok(node)
    }

    /// This node's sid.
    pub fn sid(&self) -> i64 {
        self.shared.sid
    }

    /// The line-protocol address.
    pub fn kv_addr(&self) -> SocketAddr {
        self.kv_addr
    }

    /// The embedded zkfle peer.
    pub fn handle(&self) -> &PeerHandle {
        &self.handle
    }

    /// True once this node leads and a quorum is synchronized (it takes
    /// writes).
    pub fn is_serving_leader(&self) -> bool {
        matches!(&self.shared.st.lock().mode, Mode::Leading(l) if l.active)
    }

    /// True once this node follows and is synchronized with its leader.
    pub fn is_synced_follower(&self) -> bool {
        matches!(&self.shared.st.lock().mode, Mode::Following(f) if f.synced)
    }

    /// The store's epoch while leading or following (0 otherwise).
    pub fn epoch(&self) -> i64 {
        match &self.shared.st.lock().mode {
            Mode::Leading(l) => l.epoch,
            Mode::Following(f) => f.epoch,
            Mode::Looking => 0,
        }
    }

    /// The last zxid of the local log.
    pub fn last_zxid(&self) -> i64 {
        self.shared.st.lock().store.last_zxid()
    }

    /// The whole local log.
    pub fn log(&self) -> Vec<Entry> {
        self.shared.st.lock().store.log.clone()
    }

    /// Stops at once, as a crash would: every socket is closed, nothing is
    /// flushed beyond what each acknowledgement already fsynced, and every
    /// thread is joined.
    pub fn kill(self) {
        self.stop_all();
    }

    fn stop_all(&self) {
        let sh = &self.shared;
        if sh.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        {
            let mut st = sh.st.lock();
            sh.set_mode(&mut st, Mode::Looking);
        }
        for (_, s) in sh.sockets.lock().drain() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        // Wakes the blocking accept.
        let _ = TcpStream::connect_timeout(&self.kv_addr, Duration::from_millis(200));
        self.handle.shutdown();
        loop {
            let hs = std::mem::take(&mut *sh.threads.lock());
            if hs.is_empty() {
                break;
            }
            for h in hs {
                let _ = h.join();
            }
            for (_, s) in sh.sockets.lock().drain() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Waits on the node's condition variable for at most `d`.
fn wait(sh: &Shared, st: &mut MutexGuard<'_, State>, d: Duration) {
    let _ = sh.cv.wait_for(st, d);
}

fn accept_loop(sh: Arc<Shared>, listener: TcpListener) {
    for conn in listener.incoming() {
        if sh.stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors and the like: back off, do not spin.
                log::warn!("sid {}: accept on kvAddress: {e}", sh.sid);
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let sh2 = sh.clone();
        sh.spawn(format!("kv-conn{}", sh.sid), move || {
            let id = sh2.track(&stream);
            serve_connection(&sh2, stream);
            sh2.untrack(id);
        });
    }
}

/// Reads one line (without the newline); `None` at EOF, on an error or for
/// a line longer than [`MAX_LINE`].
fn read_line<R: BufRead>(r: &mut R) -> Option<String> {
    let mut buf = Vec::new();
    let n = r.by_ref().take(MAX_LINE).read_until(b'\n', &mut buf).ok()?;
    if n == 0 || buf.last() != Some(&b'\n') {
        return None;
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn serve_connection(sh: &Arc<Shared>, stream: TcpStream) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut input = BufReader::new(stream);
    while let Some(line) = read_line(&mut input) {
        if let Some(rest) = line.strip_prefix("LEAD ") {
            follower_session(sh, rest, input, out);
            return;
        }
        let reply = client_request(sh, &line);
        if out.write_all(format!("{reply}\n").as_bytes()).is_err() {
            return;
        }
    }
}

/// Answers one client line.
fn client_request(sh: &Shared, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["SET", key, value] => set(sh, key, value),
        ["GET", key] => get(sh, key),
        ["LOCAL", key] => match sh.st.lock().store.map.get(*key) {
            Some(v) => format!("VALUE {v}"),
            None => "NOTFOUND".to_string(),
        },
        ["SET", ..] => "ERR usage: SET <key> <value>".to_string(),
        ["GET", ..] => "ERR usage: GET <key>".to_string(),
        ["LOCAL", ..] => "ERR usage: LOCAL <key>".to_string(),
        [] => "ERR empty request".to_string(),
        [cmd, ..] => format!("ERR unknown command {cmd}"),
    }
}

/// The answer for a node that cannot serve a leader-only request.
fn not_leader(sh: &Shared, st: &State) -> String {
    match &st.mode {
        Mode::Following(f) => match sh.kv_addrs.get(&f.leader) {
            Some(a) => format!("REDIRECT {a}"),
            None => format!("ERR leader {} has no kvAddress", f.leader),
        },
        Mode::Leading(_) => "ERR leader not serving yet (no quorum synchronized)".to_string(),
        Mode::Looking => "ERR no leader (election in progress)".to_string(),
    }
}

fn set(sh: &Shared, key: &str, value: &str) -> String {
    let mut st = sh.st.lock();
    let session = st.session;
    let zxid = match &mut st.mode {
        Mode::Leading(l) if l.active => {
            if l.counter >= u32::MAX as i64 {
                // ZooKeeper forces a new epoch here; so does this store.
                return "ERR zxid counter exhausted; a new election is needed".to_string();
            }
            l.counter += 1;
            (l.epoch << 32) | l.counter
        }
        _ => return not_leader(sh, &st),
    };
    let entry = Entry {
        zxid,
        key: key.to_string(),
        value: value.to_string(),
    };
    if let Err(e) = st.store.append(std::slice::from_ref(&entry)) {
        log::error!("sid {}: cannot append to the log: {e}", sh.sid);
        sh.set_mode(&mut st, Mode::Looking);
        return format!("ERR outcome unknown: log write failed: {e}");
    }
    sh.recompute_commit(&mut st);
    sh.cv.notify_all();
    let deadline = Instant::now() + sh.sync_timeout() * 2;
    loop {
        if st.session != session {
            return "ERR outcome unknown: leadership lost".to_string();
        }
        if let Mode::Leading(l) = &st.mode {
            if l.commit >= zxid {
                return format!("OK {zxid:#x}");
            }
        }
        if Instant::now() >= deadline {
            return "ERR outcome unknown: no quorum acknowledged in time".to_string();
        }
        wait(sh, &mut st, Duration::from_millis(50));
    }
}

fn get(sh: &Shared, key: &str) -> String {
    let mut st = sh.st.lock();
    let session = st.session;
    if !matches!(&st.mode, Mode::Leading(l) if l.active) {
        return not_leader(sh, &st);
    }
    // Read barrier: answer only from writes a quorum has, so a value the
    // leader shows can never be lost in a failover.
    let target = st.store.last_zxid();
    let deadline = Instant::now() + sh.sync_timeout() * 2;
    loop {
        if st.session != session {
            return "ERR leadership lost".to_string();
        }
        if let Mode::Leading(l) = &st.mode {
            if l.commit >= target {
                return match st.store.map.get(key) {
                    Some(v) => format!("VALUE {v}"),
                    None => "NOTFOUND".to_string(),
                };
            }
        }
        if Instant::now() >= deadline {
            return "ERR no quorum".to_string();
        }
        wait(sh, &mut st, Duration::from_millis(50));
    }
}

/// Follows the role events of the zkfle peer and watches the replication
/// links; asks for a new election when the store sees the leader (or, as
/// leader, its quorum) gone.
fn role_loop(sh: Arc<Shared>, handle: PeerHandle, events: crossbeam_channel::Receiver<Event>) {
    let poll = (sh.tick / 2).max(Duration::from_millis(10));
    while !sh.stop.load(Ordering::SeqCst) {
        match events.recv_timeout(poll) {
            Ok(Event::Role(role)) => on_role(&sh, role),
            Ok(Event::PeerUp(s)) => log::debug!("sid {}: election link to {s} up", sh.sid),
            Ok(Event::PeerDown(s)) => log::debug!("sid {}: election link to {s} down", sh.sid),
            Ok(_) => {}
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        }
        if let Some(why) = check_liveness(&sh) {
            if sh.stop.load(Ordering::SeqCst) {
                return;
            }
            log::warn!("sid {}: {why}; electing again", sh.sid);
            {
                let mut st = sh.st.lock();
                sh.set_mode(&mut st, Mode::Looking);
            }
            if let Err(e) = handle.restart_election() {
                log::error!("sid {}: cannot restart the election: {e}", sh.sid);
                return;
            }
        }
    }
}

fn on_role(sh: &Arc<Shared>, role: Role) {
    let mut st = sh.st.lock();
    let now = Instant::now();
    if let Some(e) = role.epoch() {
        st.seen_epoch = st.seen_epoch.max(e);
    }
    match role {
        Role::Leading { epoch } => {
            if matches!(&st.mode, Mode::Leading(l) if l.epoch == epoch) {
                return;
            }
            // zxids must grow: a new epoch's first zxid (epoch << 32 | 1)
            // has to be above everything in the log. Zab's epoch is above
            // every epoch established before, and the log only holds
            // entries of established epochs, so this refuses only a zkfle
            // without an established epoch (0) or a foreign log.
            let log_epoch = epoch_of(st.store.last_zxid());
            let unusable = (epoch <= log_epoch)
                .then(|| format!("zkfle epoch {epoch} is not above the log's epoch {log_epoch}"));
            log::info!(
                "sid {}: LEADING in epoch {epoch}; synchronizing the store",
                sh.sid
            );
            sh.set_mode(
                &mut st,
                Mode::Leading(Lead {
                    epoch,
                    unusable: unusable.clone(),
                    counter: 0,
                    synced: BTreeSet::new(),
                    acked: BTreeMap::new(),
                    active: false,
                    commit: 0,
                    since: now,
                    quorum_lost_since: None,
                }),
            );
            if unusable.is_some() {
                return;
            }
            let session = st.session;
            drop(st);
            for (&sid, &addr) in &sh.kv_addrs {
                if sid == sh.sid {
                    continue;
                }
                let sh2 = sh.clone();
                sh.spawn(format!("kv-link{}-{sid}", sh.sid), move || {
                    leader_link(&sh2, session, sid, addr)
                });
            }
        }
        Role::Following { leader, epoch } | Role::Observing { leader, epoch } => {
            if matches!(&st.mode, Mode::Following(f) if f.leader == leader && f.zk_epoch == epoch) {
                return;
            }
            log::info!(
                "sid {}: FOLLOWING {leader} in epoch {epoch}; waiting for its sync",
                sh.sid
            );
            sh.set_mode(
                &mut st,
                Mode::Following(Follow {
                    leader,
                    zk_epoch: epoch,
                    conn: 0,
                    epoch: 0,
                    synced: false,
                    since: now,
                    last_heard: now,
                    lost: false,
                }),
            );
        }
        // Looking, or a role this store does not know: serve nothing.
        _ => {
            if !matches!(st.mode, Mode::Looking) {
                sh.set_mode(&mut st, Mode::Looking);
            }
        }
    }
}

/// Why the current role cannot go on, if it cannot.
fn check_liveness(sh: &Shared) -> Option<String> {
    let mut st = sh.st.lock();
    let now = Instant::now();
    match &mut st.mode {
        Mode::Looking => None,
        Mode::Following(f) => {
            if f.lost {
                Some(format!("replication link to leader {} closed", f.leader))
            } else if !f.synced && f.since.elapsed() > sh.init_timeout() {
                Some(format!(
                    "leader {} did not synchronize us within initLimit",
                    f.leader
                ))
            } else if f.synced && f.last_heard.elapsed() > sh.sync_timeout() {
                Some(format!("leader {} silent for syncLimit", f.leader))
            } else {
                None
            }
        }
        Mode::Leading(l) => {
            if let Some(why) = &l.unusable {
                return Some(why.clone());
            }
            if !l.active {
                return (l.since.elapsed() > sh.init_timeout())
                    .then(|| "no quorum synchronized within initLimit".to_string());
            }
            let who = l.synced.iter().copied().chain([sh.sid]);
            if sh.verifier.contains_quorum(who) {
                l.quorum_lost_since = None;
                None
            } else {
                let since = *l.quorum_lost_since.get_or_insert(now);
                (since.elapsed() > sh.sync_timeout())
                    .then(|| format!("only {:?} synchronized: quorum lost", l.synced))
            }
        }
    }
}

/// The leader's side of one follower: dial, discovery, sync, broadcast;
/// redial while this leadership lasts.
fn leader_link(sh: &Arc<Shared>, session: u64, sid: i64, addr: SocketAddr) {
    let current = |sh: &Shared| !sh.stop.load(Ordering::SeqCst) && sh.st.lock().session == session;
    while current(sh) {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(stream) => {
                let id = sh.track(&stream);
                let r = lead_one(sh, session, sid, stream);
                sh.untrack(id);
                let mut st = sh.st.lock();
                if st.session == session {
                    if let Mode::Leading(l) = &mut st.mode {
                        l.synced.remove(&sid);
                        l.acked.remove(&sid);
                    }
                }
                if let Err(why) = r {
                    log::debug!("sid {}: link to {sid}: {why}", sh.sid);
                }
            }
            Err(e) => log::trace!("sid {}: dial {sid} at {addr}: {e}", sh.sid),
        }
        let mut st = sh.st.lock();
        if st.session == session {
            wait(sh, &mut st, Duration::from_millis(100));
        }
    }
}

fn lead_one(sh: &Arc<Shared>, session: u64, sid: i64, stream: TcpStream) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(sh.sync_timeout()));
    let mut out = stream.try_clone().map_err(|e| e.to_string())?;
    let mut input = BufReader::new(stream);
    let send =
        |out: &mut TcpStream, s: String| out.write_all(s.as_bytes()).map_err(|e| e.to_string());
    send(&mut out, format!("LEAD {}\n", sh.sid))?;
    let info = read_line(&mut input).ok_or("no INFO")?;
    let mut words = info.split(' ');
    if words.next() != Some("INFO") {
        return Err(format!("follower says {info:?}"));
    }
    let seen: i64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or("bad INFO")?;
    let tails: Vec<i64> = words
        .filter(|w| !w.is_empty())
        .map(|w| i64::from_str_radix(w, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| "bad INFO tails")?;

    // Discovery: the epoch is the one zkfle's Zab session established;
    // a follower that has seen a newer one knows this leadership is over.
    let epoch = {
        let st = sh.st.lock();
        match &st.mode {
            Mode::Leading(l) if st.session == session => l.epoch,
            _ => return Err("leadership ended".into()),
        }
    };
    if seen > epoch {
        return Err(format!(
            "follower has seen epoch {seen}, above ours {epoch}"
        ));
    }
    send(&mut out, format!("EPOCH {epoch}\n"))?;
    let ack = read_line(&mut input).ok_or("no ACKEPOCH")?;
    if ack != "ACKEPOCH" {
        return Err(format!("follower refused epoch {epoch}: {ack}"));
    }

    // Synchronization.
    let (trunc, batch) = {
        let st = sh.st.lock();
        if st.session != session {
            return Err("leadership ended".into());
        }
        let t = common_point(&st.store, &tails);
        let follower_last = tails.last().copied().unwrap_or(0);
        ((follower_last > t).then_some(t), st.store.entries_after(t))
    };
    let mut buf = String::new();
    if let Some(t) = trunc {
        buf.push_str(&format!("TRUNC {t:x}\n"));
    }
    let mut sent = batch.last().map_or(
        trunc.unwrap_or_else(|| tails.last().copied().unwrap_or(0)),
        |e| e.zxid,
    );
    for e in &batch {
        buf.push_str(&format!("ENTRY {:x} {} {}\n", e.zxid, e.key, e.value));
    }
    let marker = sent;
    buf.push_str(&format!("SYNCED {marker:x}\n"));
    send(&mut out, buf)?;

    // Acknowledgements arrive on their own thread.
    let dead = Arc::new(AtomicBool::new(false));
    {
        let sh2 = sh.clone();
        let dead2 = dead.clone();
        sh.spawn(format!("kv-acks{}-{sid}", sh.sid), move || {
            while let Some(line) = read_line(&mut input) {
                let Some(z) = line
                    .strip_prefix("ACK ")
                    .and_then(|z| i64::from_str_radix(z, 16).ok())
                else {
                    log::warn!("sid {}: follower {sid} says {line:?}", sh2.sid);
                    break;
                };
                let mut st = sh2.st.lock();
                if st.session != session {
                    break;
                }
                let mut newly_synced = false;
                if let Mode::Leading(l) = &mut st.mode {
                    let a = l.acked.entry(sid).or_insert(0);
                    *a = (*a).max(z);
                    if z >= marker && l.synced.insert(sid) {
                        newly_synced = true;
                    }
                }
                if newly_synced {
                    activate_if_quorum(&sh2, &mut st);
                }
                sh2.recompute_commit(&mut st);
            }
            dead2.store(true, Ordering::SeqCst);
            let mut st = sh2.st.lock();
            if st.session == session {
                if let Mode::Leading(l) = &mut st.mode {
                    l.synced.remove(&sid);
                }
            }
            sh2.cv.notify_all();
        });
    }

    // Broadcast: stream new entries, ping when idle.
    let mut last_write = Instant::now();
    loop {
        let batch = {
            let mut st = sh.st.lock();
            loop {
                if st.session != session || dead.load(Ordering::SeqCst) {
                    let _ = out.shutdown(std::net::Shutdown::Both);
                    return Err("link ended".into());
                }
                if st.store.last_zxid() > sent {
                    break st.store.entries_after(sent);
                }
                if last_write.elapsed() >= sh.tick {
                    break Vec::new();
                }
                wait(sh, &mut st, sh.tick / 4);
            }
        };
        let mut buf = String::new();
        for e in &batch {
            buf.push_str(&format!("ENTRY {:x} {} {}\n", e.zxid, e.key, e.value));
            sent = e.zxid;
        }
        if batch.is_empty() {
            buf.push_str("PING\n");
        }
        if let Err(e) = send(&mut out, buf) {
            let _ = out.shutdown(std::net::Shutdown::Both);
            return Err(e);
        }
        last_write = Instant::now();
    }
}

/// Starts serving once a quorum has synchronized with this leader.
fn activate_if_quorum(sh: &Shared, st: &mut State) {
    let Mode::Leading(l) = &st.mode else {
        return;
    };
    if l.active
        || !sh
            .verifier
            .contains_quorum(l.synced.iter().copied().chain([sh.sid]))
    {
        return;
    }
    let epoch = l.epoch;
    let last = st.store.last_zxid();
    if let Mode::Leading(l) = &mut st.mode {
        l.active = true;
        l.commit = last;
        log::info!(
            "sid {}: serving as leader of epoch {epoch} with {:?} synchronized",
            sh.sid,
            l.synced
        );
    }
    sh.cv.notify_all();
}

/// The follower's side of a replication connection opened by `LEAD <sid>`.
fn follower_session(
    sh: &Arc<Shared>,
    leader: &str,
    mut input: BufReader<TcpStream>,
    mut out: TcpStream,
) {
    let conn = sh.next_conn.fetch_add(1, Ordering::SeqCst) + 1;
    let Ok(leader) = leader.trim().parse::<i64>() else {
        let _ = out.write_all(b"NACK bad sid\n");
        return;
    };
    let _ = out.set_read_timeout(Some(sh.sync_timeout()));
    let info = {
        let mut st = sh.st.lock();
        let seen = st.seen_epoch;
        let tails = st.store.tails();
        match &mut st.mode {
            // The connection is trusted only once its EPOCH passes.
            Mode::Following(f) if f.leader == leader => {}
            _ => {
                let _ = out.write_all(b"NOTFOLLOWING\n");
                return;
            }
        }
        let tails: Vec<String> = tails.iter().map(|z| format!("{z:x}")).collect();
        format!("INFO {seen} {}\n", tails.join(" "))
    };
    if out.write_all(info.as_bytes()).is_err() {
        return;
    }
    let ok = follow_stream(sh, leader, conn, &mut input, &mut out);
    let mut st = sh.st.lock();
    if let Mode::Following(f) = &mut st.mode {
        if f.conn == conn {
            f.conn = 0;
            if f.synced {
                f.lost = true;
            }
            f.synced = false;
        }
    }
    sh.cv.notify_all();
    if let Err(why) = ok {
        log::info!("sid {}: replication from {leader} ended: {why}", sh.sid);
        let _ = out.write_all(format!("NACK {why}\n").as_bytes());
    }
}

fn follow_stream(
    sh: &Shared,
    leader: i64,
    conn: u64,
    input: &mut BufReader<TcpStream>,
    out: &mut TcpStream,
) -> Result<(), String> {
    // Until its EPOCH is accepted this connection is not trusted: it
    // cannot disturb the session of the connection that is.
    let mut trusted = false;
    loop {
        let line = read_line(input).ok_or("leader closed or went silent")?;
        let mut st = sh.st.lock();
        let current = matches!(&st.mode, Mode::Following(f)
            if f.leader == leader && (!trusted || f.conn == conn));
        if !current {
            return Err("no longer following this leader".into());
        }
        let (epoch, synced) = match &mut st.mode {
            Mode::Following(f) if trusted => {
                f.last_heard = Instant::now();
                (f.epoch, f.synced)
            }
            _ => (0, false),
        };
        let mut words = line.split(' ');
        let reply = match (words.next(), words.next(), words.next(), words.next()) {
            (Some("EPOCH"), Some(e), None, None) if !trusted => {
                let e: i64 = e.parse().map_err(|_| "bad EPOCH")?;
                let seen = st.seen_epoch;
                // Fencing: a leader of an epoch older than one zkfle has
                // shown us has been superseded (Zab established a newer
                // epoch on a quorum).
                if e < seen {
                    return Err(format!("stale epoch {e}, seen {seen}"));
                }
                let role_epoch = match &st.mode {
                    Mode::Following(f) => f.zk_epoch,
                    _ => 0,
                };
                // Only the epoch of our own Zab session with this leader:
                // anything else is not the leadership zkfle names.
                if e != role_epoch {
                    return Err(format!(
                        "epoch {e} is not the epoch {role_epoch} zkfle follows {leader} in"
                    ));
                }
                if let Mode::Following(f) = &mut st.mode {
                    // The newest connection from our leader wins.
                    f.conn = conn;
                    f.epoch = e;
                    f.synced = false;
                    f.since = Instant::now();
                    f.last_heard = Instant::now();
                }
                trusted = true;
                "ACKEPOCH".to_string()
            }
            _ if epoch == 0 => return Err(format!("{line:?} before EPOCH")),
            (Some("TRUNC"), Some(z), None, None) if !synced => {
                let z = i64::from_str_radix(z, 16).map_err(|_| "bad TRUNC")?;
                log::info!(
                    "sid {}: truncating the log after {z:#x} (entries the leader never committed)",
                    sh.sid
                );
                st.store.truncate(z).map_err(|e| e.to_string())?;
                continue;
            }
            (Some("ENTRY"), Some(z), Some(k), Some(v)) if !k.is_empty() && !v.is_empty() => {
                let z = i64::from_str_radix(z, 16).map_err(|_| "bad ENTRY")?;
                // Fencing: once synchronized only this leader's epoch is
                // acceptable; never anything newer than it, never out of
                // order.
                if (synced && epoch_of(z) != epoch) || epoch_of(z) > epoch {
                    return Err(format!(
                        "entry {z:#x} of epoch {} refused: following epoch {epoch}",
                        epoch_of(z)
                    ));
                }
                if z <= st.store.last_zxid() {
                    return Err(format!(
                        "entry {z:#x} not after our last {:#x}",
                        st.store.last_zxid()
                    ));
                }
                let entry = Entry {
                    zxid: z,
                    key: k.to_string(),
                    value: v.to_string(),
                };
                st.store
                    .append(std::slice::from_ref(&entry))
                    .map_err(|e| e.to_string())?;
                format!("ACK {z:x}")
            }
            (Some("SYNCED"), Some(_), None, None) if !synced => {
                if let Mode::Following(f) = &mut st.mode {
                    f.synced = true;
                }
                log::info!(
                    "sid {}: synchronized with leader {leader} (epoch {epoch}, last zxid {:#x})",
                    sh.sid,
                    st.store.last_zxid()
                );
                format!("ACK {:x}", st.store.last_zxid())
            }
            (Some("PING"), None, None, None) => format!("ACK {:x}", st.store.last_zxid()),
            _ => return Err(format!("unexpected {line:?}")),
        };
        drop(st);
        out.write_all(format!("{reply}\n").as_bytes())
            .map_err(|e| e.to_string())?;
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
        read_line(&mut self.input).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(epoch: i64, counter: i64) -> i64 {
        (epoch << 32) | counter
    }

    fn store_with(dir: &Path, zxids: &[i64]) -> Store {
        let mut s = Store::open(dir).unwrap();
        let es: Vec<Entry> = zxids
            .iter()
            .map(|&x| Entry {
                zxid: x,
                key: format!("k{x:x}"),
                value: format!("v{x:x}"),
            })
            .collect();
        s.append(&es).unwrap();
        s
    }

    #[test]
    fn a_torn_last_line_is_cut_off_at_recovery() {
        let d = tempfile::tempdir().unwrap();
        drop(store_with(d.path(), &[z(1, 1), z(1, 2)]));
        let path = d.path().join(LOG_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"0000000100000003 half").unwrap();
        drop(f);
        let s = Store::open(d.path()).unwrap();
        assert_eq!(s.last_zxid(), z(1, 2));
        assert_eq!(
            s.map.get("k100000002").map(String::as_str),
            Some("v100000002")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("v100000002\n"), "file cut back: {text:?}");
    }

    #[test]
    fn truncate_is_durable_and_rebuilds_the_map() {
        let d = tempfile::tempdir().unwrap();
        let mut s = store_with(d.path(), &[z(1, 1), z(1, 2), z(2, 1)]);
        s.truncate(z(1, 1)).unwrap();
        assert_eq!(s.last_zxid(), z(1, 1));
        assert!(!s.map.contains_key("k200000001"));
        s.append(&[Entry {
            zxid: z(3, 1),
            key: "a".into(),
            value: "b".into(),
        }])
        .unwrap();
        drop(s);
        let s = Store::open(d.path()).unwrap();
        let zs: Vec<i64> = s.log.iter().map(|e| e.zxid).collect();
        assert_eq!(zs, vec![z(1, 1), z(3, 1)]);
        assert_eq!(s.tails(), vec![z(1, 1), z(3, 1)]);
    }

    #[test]
    fn common_point_finds_where_logs_diverge() {
        let d = tempfile::tempdir().unwrap();
        // Leader: epoch 1 up to 3, then epoch 3.
        let l = store_with(d.path(), &[z(1, 1), z(1, 2), z(1, 3), z(3, 1)]);
        // A follower that missed 1.3 and holds 2.1 from a leader whose
        // writes never reached a quorum: keep up to 1.2, not 1.3.
        assert_eq!(common_point(&l, &[z(1, 2), z(2, 1)]), z(1, 2));
        // A follower behind: everything it has is common.
        assert_eq!(common_point(&l, &[z(1, 2)]), z(1, 2));
        assert_eq!(common_point(&l, &[z(1, 3), z(3, 1)]), z(3, 1));
        // A follower ahead within an epoch the leader also has.
        assert_eq!(common_point(&l, &[z(1, 5)]), z(1, 3));
        // An empty follower, and one with only unknown epochs.
        assert_eq!(common_point(&l, &[]), 0);
        assert_eq!(common_point(&l, &[z(2, 7)]), 0);
    }

    #[test]
    fn entry_lines_parse_strictly() {
        assert!(parse_entry("0000000100000001 k v").is_some());
        assert!(parse_entry("0000000100000001 k").is_none());
        assert!(parse_entry("0000000100000001 k v extra").is_none());
        assert!(parse_entry("zz k v").is_none());
        assert!(parse_entry("0 k v").is_none());
    }
}
