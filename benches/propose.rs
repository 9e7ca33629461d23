//! Replicated-log throughput: three in-process peers (`PeerBuilder` with a
//! `FileLog` each under `target/`, so the fsyncs are real), proposals of
//! 100 bytes kept `window` in flight on the leader for `secs` seconds.
//! Prints proposals/s (acknowledged: a quorum including the leader has
//! them durable, committed and applied on the leader), p50/p99 latency, and
//! per peer the appends (= fsync batches) and the mean batch.
//!
//! `cargo bench --bench propose` (options after `--`: `--window N`,
//! `--secs S`, `--bytes B`). Opens ports 28901..=28923: run under
//! `flock /tmp/zkfle-net.lock`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zkfle::logstore::{Entry, FileLog, LogError, LogStore, ReadLimit, Snapshot, SyncSource};
use zkfle::{PeerBuilder, PeerHandle, StateMachine};

struct Count(Arc<AtomicU64>);

impl StateMachine for Count {
    fn apply(&mut self, entries: &[Entry]) {
        self.0.fetch_add(entries.len() as u64, Ordering::Relaxed);
    }
    fn snapshot(&mut self) -> Bytes {
        self.0.load(Ordering::Relaxed).to_be_bytes().to_vec().into()
    }
    fn restore(&mut self, s: &Snapshot) {
        let n = s
            .data
            .as_ref()
            .try_into()
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        self.0.store(n, Ordering::Relaxed);
    }
}

/// Counts appends (one fsync batch each for FileLog).
struct Counting {
    inner: FileLog,
    appends: Arc<AtomicU64>,
}

impl LogStore for Counting {
    fn append(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.inner.append(entries)
    }
    fn last_zxid(&self) -> i64 {
        self.inner.last_zxid()
    }
    fn first_zxid(&self) -> Option<i64> {
        self.inner.first_zxid()
    }
    fn floor_zxid(&self, z: i64) -> Result<Option<i64>, LogError> {
        self.inner.floor_zxid(z)
    }
    fn read_after(&self, a: i64, l: ReadLimit) -> Result<Vec<Entry>, LogError> {
        self.inner.read_after(a, l)
    }
    fn truncate_after(&mut self, z: i64) -> Result<(), LogError> {
        self.inner.truncate_after(z)
    }
    fn snapshot_zxid(&self) -> Option<i64> {
        self.inner.snapshot_zxid()
    }
    fn snapshot(&self) -> Result<Option<Snapshot>, LogError> {
        self.inner.snapshot()
    }
    fn save_snapshot(&mut self, s: Snapshot) -> Result<(), LogError> {
        self.inner.save_snapshot(s)
    }
    fn compact(&mut self, up_to: i64) -> Result<(), LogError> {
        self.inner.compact(up_to)
    }
    fn install_snapshot(&mut self, s: Snapshot) -> Result<(), LogError> {
        self.inner.install_snapshot(s)
    }
    fn sync_source(&self, l: i64, lim: ReadLimit) -> Result<SyncSource, LogError> {
        self.inner.sync_source(l, lim)
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let window = arg("--window", 256) as usize;
    let secs = arg("--secs", 5);
    let bytes = arg("--bytes", 100) as usize;
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-propose");
    std::fs::create_dir_all(&base).expect("create target/bench-propose");
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let port = |kind: u16, sid: i64| -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], 28900 + kind + sid as u16))
    };
    let mut peers: Vec<(i64, PeerHandle, Arc<AtomicU64>)> = Vec::new();
    for sid in [3, 1, 2] {
        let appends = Arc::new(AtomicU64::new(0));
        let log = FileLog::open(dir.path().join(format!("n{sid}/log"))).expect("FileLog");
        let mut b = PeerBuilder::new(sid)
            .tick_time(Duration::from_millis(200))
            .limits(10, 5)
            .data_dir(dir.path().join(format!("n{sid}")))
            .no_admin()
            .replicated_log(Count(Arc::new(AtomicU64::new(0))))
            .log_store(Counting {
                inner: log,
                appends: appends.clone(),
            })
            .snapshot_every(0);
        for s in 1..=3 {
            b = b.server(s, port(0, s), port(10, s));
        }
        peers.push((sid, b.start().expect("peer starts"), appends));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        let serving = peers.iter().all(|p| p.1.leader().is_some());
        if let Some(p) = peers.iter().find(|p| p.1.is_leader()) {
            if serving {
                break p.1.clone();
            }
        }
        assert!(Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(5));
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let payload = Bytes::from(vec![7u8; bytes]);
    let before: Vec<u64> = peers.iter().map(|p| p.2.load(Ordering::Relaxed)).collect();
    let (done, lat) = rt.block_on(async {
        let mut inflight = std::collections::VecDeque::new();
        let mut lat: Vec<Duration> = Vec::new();
        let end = Instant::now() + Duration::from_secs(secs);
        let started = Instant::now();
        loop {
            while inflight.len() < window && Instant::now() < end {
                inflight.push_back((Instant::now(), leader.propose(payload.clone())));
            }
            let Some((t, f)) = inflight.pop_front() else {
                break;
            };
            f.await.expect("committed");
            lat.push(t.elapsed());
        }
        (lat.len() as f64 / started.elapsed().as_secs_f64(), lat)
    });
    let mut lat = lat;
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "window {window}, {bytes}-byte entries, {secs} s: {done:.0} proposals/s acknowledged, latency p50 {:.2} ms p99 {:.2} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
    for ((sid, h, appends), b) in peers.iter().zip(before) {
        let a = appends.load(Ordering::Relaxed) - b;
        let role = if h.is_leader() { "leader" } else { "follower" };
        println!(
            "sid {sid} ({role}): {a} appends, {:.1} entries per fsync",
            lat.len() as f64 / a.max(1) as f64
        );
    }
    for p in &peers {
        p.1.shutdown();
    }
    println!("proposals_per_sec {done:.0}");
}
