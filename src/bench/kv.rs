//! `zkfle bench kv`: write load against the replicated key-value store
//! (`examples/replicated_kv`, its line protocol from DESIGN.md): `C`
//! connections to the leader, each keeping `W` pipelined `SET`s
//! outstanding; counts acknowledged (`OK 0x…`: a quorum has the write
//! durable and it is committed) writes per second over the measured span and
//! the latency of each (send to `OK`), p50 and p99.
//!
//! The leader is found by sending one `SET` to the first address and
//! following `REDIRECT`s. Anything but `OK` during the run is counted as an
//! error (and ends that connection's run: a failover is not what this
//! measures).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// What to run.
#[derive(Debug, Clone)]
pub struct KvBenchOptions {
    /// Store addresses (`kvAddress` of any node; REDIRECTs are followed).
    pub addrs: Vec<String>,
    /// Client connections.
    pub connections: usize,
    /// Outstanding `SET`s per connection.
    pub window: usize,
    /// Measured span.
    pub duration: Duration,
    /// Load before the measured span (not counted).
    pub warmup: Duration,
    /// Bytes per value.
    pub value_size: usize,
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct KvBenchResult {
    /// The leader the load went to.
    pub leader: SocketAddr,
    /// Acknowledged writes in the measured span.
    pub acked: u64,
    /// Acknowledged writes per second.
    pub per_sec: f64,
    /// Median latency, µs.
    pub p50_us: u64,
    /// 99th percentile latency, µs.
    pub p99_us: u64,
    /// Answers other than `OK`.
    pub errors: u64,
}

fn resolve(a: &str) -> Result<SocketAddr, String> {
    a.to_socket_addrs()
        .map_err(|e| format!("{a}: {e}"))?
        .next()
        .ok_or_else(|| format!("{a}: no address"))
}

fn connect(addr: SocketAddr) -> Result<(TcpStream, BufReader<TcpStream>), String> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let r = s.try_clone().map_err(|e| e.to_string())?;
    Ok((s, BufReader::new(r)))
}

/// Follows REDIRECTs from `start` until a node answers `OK` (at most 10
/// hops, retrying `ERR` for up to 30 s while a leader is being elected).
fn find_leader(start: SocketAddr) -> Result<SocketAddr, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut at = start;
    let mut hops = 0;
    loop {
        let (mut w, mut r) = connect(at)?;
        w.write_all(b"SET zkfle-bench-probe 1\n")
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        r.read_line(&mut line).map_err(|e| e.to_string())?;
        let line = line.trim_end();
        if line.starts_with("OK ") {
            return Ok(at);
        }
        if let Some(to) = line.strip_prefix("REDIRECT ") {
            hops += 1;
            if hops > 10 {
                return Err("more than 10 REDIRECTs".into());
            }
            at = resolve(to)?;
            continue;
        }
        if Instant::now() > deadline {
            return Err(format!("{at} answered {line:?} for 30 s"));
        }
        // A leader is being elected: ask again shortly.
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Latencies (µs) recorded in the measured span, and the acked count.
#[derive(Default)]
struct Tally {
    latencies: Vec<u32>,
    acked: u64,
}

/// Runs the load; `progress` prints one line per second to stderr.
pub fn run(opts: &KvBenchOptions) -> Result<KvBenchResult, String> {
    if opts.connections == 0 || opts.window == 0 {
        return Err("--connections and --window must be at least 1".into());
    }
    let first = opts.addrs.first().ok_or("no address given")?;
    let leader = find_leader(resolve(first)?)?;
    let value = "x".repeat(opts.value_size.max(1));
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut threads = Vec::new();
    for c in 0..opts.connections {
        let (w, r) = connect(leader)?;
        let sent: Arc<Mutex<VecDeque<Instant>>> = Arc::default();
        // Window slots: the writer takes one per SET, the reader returns
        // one per answer.
        let (slot_tx, slot_rx) = crossbeam_channel::bounded::<()>(opts.window);
        for _ in 0..opts.window {
            let _ = slot_tx.send(());
        }
        {
            let (stop, sent, value) = (stop.clone(), sent.clone(), value.clone());
            threads.push(std::thread::spawn(move || {
                write_loop(c, w, &stop, &sent, &slot_rx, &value)
            }));
        }
        {
            let (stop, measuring, errors, tally) = (
                stop.clone(),
                measuring.clone(),
                errors.clone(),
                tally.clone(),
            );
            threads.push(std::thread::spawn(move || {
                read_loop(r, &stop, &measuring, &errors, &tally, &sent, &slot_tx)
            }));
        }
    }
    std::thread::sleep(opts.warmup);
    measuring.store(true, Ordering::SeqCst);
    let started = Instant::now();
    std::thread::sleep(opts.duration);
    measuring.store(false, Ordering::SeqCst);
    let span = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    let mut t = std::mem::take(&mut *tally.lock());
    t.latencies.sort_unstable();
    let pct = |p: f64| -> u64 {
        if t.latencies.is_empty() {
            return 0;
        }
        let i = ((t.latencies.len() as f64 * p).ceil() as usize).clamp(1, t.latencies.len());
        u64::from(t.latencies[i - 1])
    };
    Ok(KvBenchResult {
        leader,
        acked: t.acked,
        per_sec: t.acked as f64 / span.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        errors: errors.load(Ordering::SeqCst),
    })
}

fn write_loop(
    conn: usize,
    mut w: TcpStream,
    stop: &AtomicBool,
    sent: &Mutex<VecDeque<Instant>>,
    slots: &crossbeam_channel::Receiver<()>,
    value: &str,
) {
    let mut i = 0u64;
    let mut buf = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // Wait for one free slot, then take every free slot: one write
        // carries all the SETs the window allows now.
        if slots.recv_timeout(Duration::from_millis(100)).is_err() {
            continue;
        }
        let mut n = 1;
        while slots.try_recv().is_ok() {
            n += 1;
        }
        buf.clear();
        for _ in 0..n {
            // Keys cycle over 1,000 per connection: the map stays small.
            let _ = writeln!(buf, "SET b{conn}-{} {value}", i % 1000);
            i += 1;
        }
        {
            let now = Instant::now();
            let mut q = sent.lock();
            q.extend((0..n).map(|_| now));
        }
        if w.write_all(&buf).is_err() {
            return;
        }
    }
}

fn read_loop(
    mut r: BufReader<TcpStream>,
    stop: &AtomicBool,
    measuring: &AtomicBool,
    errors: &AtomicU64,
    tally: &Mutex<Tally>,
    sent: &Mutex<VecDeque<Instant>>,
    slots: &crossbeam_channel::Sender<()>,
) {
    let mut line = String::new();
    let mut local = Tally::default();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
        let at = sent.lock().pop_front();
        let now = Instant::now();
        if !line.starts_with("OK ") {
            errors.fetch_add(1, Ordering::SeqCst);
            break;
        }
        if measuring.load(Ordering::Relaxed) {
            if let Some(at) = at {
                let us = now.duration_since(at).as_micros().min(u32::MAX as u128) as u32;
                local.latencies.push(us);
                local.acked += 1;
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let _ = slots.send(());
    }
    let mut t = tally.lock();
    t.latencies.extend(local.latencies);
    t.acked += local.acked;
}

/// The result as `key value` lines (the last one `writes_per_sec`).
pub fn summary_lines(r: &KvBenchResult) -> Vec<String> {
    vec![
        format!("leader {}", r.leader),
        format!("acked {}", r.acked),
        format!("errors {}", r.errors),
        format!("p50_us {}", r.p50_us),
        format!("p99_us {}", r.p99_us),
        format!("writes_per_sec {:.0}", r.per_sec),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_connections_or_window_is_refused() {
        let mut o = KvBenchOptions {
            addrs: vec!["127.0.0.1:1".into()],
            connections: 0,
            window: 1,
            duration: Duration::from_millis(1),
            warmup: Duration::ZERO,
            value_size: 1,
        };
        assert!(run(&o).is_err());
        o.connections = 1;
        o.window = 0;
        assert!(run(&o).is_err());
    }
}
