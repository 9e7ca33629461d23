//! Helpers for the replicated-log tests (helper name `runtime`; ports
//! 28000–28999): a recording state machine, a counting store wrapper,
//! in-process peers with `FileLog`s in temporary directories, and a TCP
//! proxy that can black-hole a quorum port (a partition without FIN).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use zkfle::logstore::{
    Entry, FileLog, FileLogOptions, LogError, LogStore, ReadLimit, Snapshot, SyncSource,
};
use zkfle::{PeerBuilder, PeerHandle, StateMachine};

/// What a [`RecSm`] applied, shared with the test.
#[derive(Clone, Default)]
pub struct Applied {
    pub entries: Arc<Mutex<Vec<(i64, Bytes)>>>,
    /// Entries applied out of order or twice (must stay empty).
    pub violations: Arc<Mutex<Vec<String>>>,
    pub restores: Arc<AtomicU64>,
    pub snapshots: Arc<AtomicU64>,
}

impl Applied {
    pub fn zxids(&self) -> Vec<i64> {
        self.entries.lock().iter().map(|e| e.0).collect()
    }
    pub fn last(&self) -> i64 {
        self.entries.lock().last().map_or(0, |e| e.0)
    }
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }
    pub fn map(&self) -> BTreeMap<i64, Bytes> {
        self.entries.lock().iter().cloned().collect()
    }
}

/// A state machine that records every applied entry, checks the order, and
/// snapshots the whole record.
pub struct RecSm(pub Applied);

impl StateMachine for RecSm {
    fn apply(&mut self, entries: &[Entry]) {
        let mut got = self.0.entries.lock();
        for e in entries {
            if let Some(last) = got.last() {
                if e.zxid <= last.0 {
                    self.0
                        .violations
                        .lock()
                        .push(format!("{:#x} applied after {:#x}", e.zxid, last.0));
                }
            }
            got.push((e.zxid, e.data.clone()));
        }
    }

    fn snapshot(&mut self) -> Bytes {
        self.0.snapshots.fetch_add(1, Ordering::SeqCst);
        let got = self.0.entries.lock();
        let mut out = Vec::new();
        out.extend_from_slice(&(got.len() as u64).to_be_bytes());
        for (z, d) in got.iter() {
            out.extend_from_slice(&z.to_be_bytes());
            out.extend_from_slice(&(d.len() as u32).to_be_bytes());
            out.extend_from_slice(d);
        }
        out.into()
    }

    fn restore(&mut self, snapshot: &Snapshot) {
        self.0.restores.fetch_add(1, Ordering::SeqCst);
        let b = &snapshot.data[..];
        let mut at = 8;
        let n = u64::from_be_bytes(b[..8].try_into().unwrap());
        let mut got = Vec::new();
        for _ in 0..n {
            let z = i64::from_be_bytes(b[at..at + 8].try_into().unwrap());
            let len = u32::from_be_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
            got.push((z, Bytes::copy_from_slice(&b[at + 12..at + 12 + len])));
            at += 12 + len;
        }
        *self.0.entries.lock() = got;
    }
}

/// Counts `append` calls (one per group commit) of the store it wraps.
pub struct Counting<L> {
    pub inner: L,
    pub appends: Arc<AtomicU64>,
    pub entries: Arc<AtomicU64>,
}

impl<L: LogStore> LogStore for Counting<L> {
    fn append(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        if !entries.is_empty() {
            self.appends.fetch_add(1, Ordering::SeqCst);
            self.entries
                .fetch_add(entries.len() as u64, Ordering::SeqCst);
        }
        self.inner.append(entries)
    }
    fn last_zxid(&self) -> i64 {
        self.inner.last_zxid()
    }
    fn first_zxid(&self) -> Option<i64> {
        self.inner.first_zxid()
    }
    fn floor_zxid(&self, zxid: i64) -> Result<Option<i64>, LogError> {
        self.inner.floor_zxid(zxid)
    }
    fn read_after(&self, after: i64, limit: ReadLimit) -> Result<Vec<Entry>, LogError> {
        self.inner.read_after(after, limit)
    }
    fn truncate_after(&mut self, zxid: i64) -> Result<(), LogError> {
        self.inner.truncate_after(zxid)
    }
    fn snapshot_zxid(&self) -> Option<i64> {
        self.inner.snapshot_zxid()
    }
    fn snapshot(&self) -> Result<Option<Snapshot>, LogError> {
        self.inner.snapshot()
    }
    fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError> {
        self.inner.save_snapshot(snapshot)
    }
    fn compact(&mut self, up_to: i64) -> Result<(), LogError> {
        self.inner.compact(up_to)
    }
    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError> {
        self.inner.install_snapshot(snapshot)
    }
    fn sync_source(&self, learner_last: i64, limit: ReadLimit) -> Result<SyncSource, LogError> {
        self.inner.sync_source(learner_last, limit)
    }
}

/// Ports of one test's ensemble: quorum `base+10+sid`, election
/// `base+20+sid`, proxies of quorum ports `base+30+sid`, of election ports
/// `base+40+sid`.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub base: u16,
}

impl Ports {
    pub fn quorum(&self, sid: i64) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.base + 10 + sid as u16))
    }
    pub fn election(&self, sid: i64) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.base + 20 + sid as u16))
    }
    pub fn quorum_proxy(&self, sid: i64) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.base + 30 + sid as u16))
    }
    pub fn election_proxy(&self, sid: i64) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.base + 40 + sid as u16))
    }
}

/// How to build the peers of one test.
#[derive(Clone)]
pub struct Setup {
    pub ports: Ports,
    pub dir: PathBuf,
    pub n: i64,
    pub tick: Duration,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub snapshot_every: u64,
    pub segment_bytes: Option<u64>,
    pub lease_margin: Option<Duration>,
    /// Sids on one side of a possible partition: traffic between them and
    /// the others (quorum and election ports) goes through proxies that
    /// [`Partition::cut`] black-holes.
    pub isolated: Vec<i64>,
    /// Sids that observe (never vote).
    pub observers: Vec<i64>,
    /// `PeerBuilder::preferred_leader` for every peer.
    pub preferred_leader: Option<i64>,
}

impl Setup {
    pub fn new(base: u16, dir: &Path) -> Setup {
        Setup {
            ports: Ports { base },
            dir: dir.to_path_buf(),
            n: 3,
            tick: Duration::from_millis(100),
            init_limit: 20,
            sync_limit: 5,
            snapshot_every: 0,
            segment_bytes: None,
            lease_margin: None,
            isolated: Vec::new(),
            observers: Vec::new(),
            preferred_leader: None,
        }
    }

    pub fn data(&self, sid: i64) -> PathBuf {
        self.dir.join(format!("n{sid}"))
    }

    /// Starts `sid` over its data dir (a `FileLog` in `n<sid>/log`),
    /// counting appends.
    pub fn start(&self, sid: i64) -> Node {
        let applied = Applied::default();
        let appends = Arc::new(AtomicU64::new(0));
        let appended = Arc::new(AtomicU64::new(0));
        let mut opts = FileLogOptions::default();
        if let Some(s) = self.segment_bytes {
            opts.segment_bytes = s;
            opts.prealloc_bytes = 0;
        }
        let log = FileLog::open_with(self.data(sid).join("log"), opts).expect("open FileLog");
        let store = Counting {
            inner: log,
            appends: appends.clone(),
            entries: appended.clone(),
        };
        let mut b = PeerBuilder::new(sid)
            .tick_time(self.tick)
            .limits(self.init_limit, self.sync_limit)
            .data_dir(self.data(sid))
            .no_admin()
            .replicated_log(RecSm(applied.clone()))
            .log_store(store)
            .snapshot_every(self.snapshot_every);
        if let Some(m) = self.lease_margin {
            b = b.read_lease(m);
        }
        if let Some(p) = self.preferred_leader {
            b = b.preferred_leader(p);
        }
        for s in 1..=self.n {
            let across = self.isolated.contains(&s) != self.isolated.contains(&sid);
            let (q, e) = if across {
                (self.ports.quorum_proxy(s), self.ports.election_proxy(s))
            } else {
                (self.ports.quorum(s), self.ports.election(s))
            };
            b = if self.observers.contains(&s) {
                b.observer(s, q, e)
            } else {
                b.server(s, q, e)
            };
        }
        let handle = b.start().expect("peer starts");
        Node {
            sid,
            handle,
            applied,
            appends,
            appended,
        }
    }

    pub fn start_all(&self) -> Vec<Node> {
        (1..=self.n).map(|s| self.start(s)).collect()
    }
}

/// One in-process peer and what the test watches of it.
pub struct Node {
    pub sid: i64,
    pub handle: PeerHandle,
    pub applied: Applied,
    pub appends: Arc<AtomicU64>,
    pub appended: Arc<AtomicU64>,
}

/// Waits for `cond`, polling every 5 ms; panics naming `what`.
pub fn eventually<T>(what: &str, timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {timeout:?}: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The index of the one serving leader among `nodes` whose followers all
/// serve too.
pub fn leader_of(nodes: &[&Node]) -> Option<usize> {
    let leaders: Vec<usize> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.handle.is_leader())
        .map(|(i, _)| i)
        .collect();
    let served = nodes.iter().all(|n| n.handle.leader().is_some());
    (leaders.len() == 1 && served).then(|| leaders[0])
}

/// Waits until `nodes` agree on one serving leader; its index.
pub fn await_leader(nodes: &[&Node], timeout: Duration) -> usize {
    eventually("one serving leader", timeout, || leader_of(nodes))
}

/// The proxies between the isolated sids and the others.
pub struct Partition {
    proxies: Vec<Proxy>,
}

impl Partition {
    /// Proxies for every port the two sides reach each other on.
    pub fn new(setup: &Setup) -> Partition {
        let mut proxies = Vec::new();
        for s in 1..=setup.n {
            proxies.push(Proxy::start(
                setup.ports.quorum_proxy(s),
                setup.ports.quorum(s),
            ));
            proxies.push(Proxy::start(
                setup.ports.election_proxy(s),
                setup.ports.election(s),
            ));
        }
        Partition { proxies }
    }

    /// Nothing crosses any more, in either direction; nothing is closed.
    pub fn cut(&self) {
        for p in &self.proxies {
            p.cut();
        }
    }

    /// New connections cross again (black-holed ones stay dead, as TCP
    /// connections across a long partition do once their peers gave up).
    pub fn heal(&self) {
        for p in &self.proxies {
            p.heal();
        }
    }
}

/// A TCP proxy in front of a quorum port that can black-hole every
/// connection through it (nothing forwarded, nothing closed: what a
/// partition looks like to both ends) and heal.
pub struct Proxy {
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    listen: SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    pub fn start(listen: SocketAddr, target: SocketAddr) -> Proxy {
        let l = TcpListener::bind(listen).expect("bind proxy");
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (cut.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for incoming in l.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(a) = incoming else { continue };
                if c.load(Ordering::SeqCst) {
                    // Partitioned: hold it open, forward nothing.
                    std::thread::spawn(move || hold(a));
                    continue;
                }
                let Ok(b) = TcpStream::connect(target) else {
                    continue;
                };
                let _ = a.set_nodelay(true);
                let _ = b.set_nodelay(true);
                for (from, to) in [
                    (a.try_clone(), b.try_clone()),
                    (b.try_clone(), a.try_clone()),
                ] {
                    if let (Ok(from), Ok(to)) = (from, to) {
                        let c = c.clone();
                        std::thread::spawn(move || pump(from, to, c));
                    }
                }
            }
        });
        Proxy {
            cut,
            stop,
            listen,
            thread: Some(thread),
        }
    }

    /// Black-holes every connection, current and future.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// Forwards new connections again.
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.listen);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn hold(mut s: TcpStream) {
    let mut b = [0u8; 4096];
    while let Ok(n) = s.read(&mut b) {
        if n == 0 {
            return;
        }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, cut: Arc<AtomicBool>) {
    let mut b = vec![0u8; 64 * 1024];
    let mut dead = false;
    loop {
        let n = match from.read(&mut b) {
            Ok(0) | Err(_) => {
                if !dead && !cut.load(Ordering::SeqCst) {
                    let _ = to.shutdown(std::net::Shutdown::Write);
                }
                return;
            }
            Ok(n) => n,
        };
        if dead || cut.load(Ordering::SeqCst) {
            // Partitioned: swallow (never close: no FIN crosses a partition).
            dead = true;
            continue;
        }
        if to.write_all(&b[..n]).is_err() {
            return;
        }
    }
}
