//! QCM loopback throughput: two QCMs on 127.0.0.1 exchanging notifications.
//!
//! * `one_way_window64/*`: sid 1 streams notifications to sid 2 with at most
//!   64 in flight end to end (and, with a one-slot send queue, never
//!   overwriting the slot), so nothing is dropped and the figure is delivered
//!   notifications per second. With ZooKeeper's queues (send capacity 1) the
//!   SendWorker writes one notification per syscall; with zkfle's defaults it
//!   writes everything queued in one.
//! * `echo_window64`: sid 1 keeps 64 notifications outstanding; sid 2
//!   answers each one (as a settled peer answers a LOOKING one), and every
//!   answer releases the next; a window without an answer for 100 ms is
//!   counted lost and refilled (as `zkfle bench notify` does). The figure is
//!   answers per second; the answers lost are printed. ZooKeeper's send slot
//!   of one drops answers under this load, zkfle's queues do not (R11).
//!
//! Ports 22500..22999 (the `cnx` helper's range).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use zkfle::cnx::{Qcm, QcmConfig};
use zkfle::wire::{Notification, ServerState};

const BATCH: u64 = 20_000;

fn free_ports(n: usize, from: u16) -> Vec<u16> {
    (from..23000)
        .filter(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .take(n)
        .collect()
}

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

fn note(round: i64) -> Notification {
    Notification {
        state: ServerState::Looking,
        leader: 1,
        zxid: 0,
        election_epoch: round,
        peer_epoch: 0,
        version: 0,
    }
}

/// A connected pair; `zk1`/`zk2` select ZooKeeper's queue capacities for
/// sid 1 / sid 2.
fn pair(ports: &[u16], zk1: bool, zk2: bool) -> (Qcm, Qcm) {
    let cfg = |sid: i64| {
        let zk = if sid == 1 { zk1 } else { zk2 };
        let other = 3 - sid;
        let peers = BTreeMap::from([(other, vec![addr(ports[other as usize - 1])])]);
        let c = QcmConfig::new(sid, vec![addr(ports[sid as usize - 1])], peers);
        if zk {
            c.zookeeper_queues()
        } else {
            c
        }
    };
    let a = Qcm::start(cfg(1)).expect("start sid 1");
    let b = Qcm::start(cfg(2)).expect("start sid 2");
    b.connect_all();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a.is_connected(2) || !b.is_connected(1) {
        assert!(Instant::now() < deadline, "pair did not connect");
        std::thread::sleep(Duration::from_millis(5));
    }
    (a, b)
}

/// Counts notifications arriving at `q` on a thread of its own.
struct Counter {
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Counter {
    fn new(q: &Qcm) -> Counter {
        let rx = q.receiver();
        let count = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (count.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if rx.recv_timeout(Duration::from_millis(50)).is_ok() {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Counter {
            count,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Both loopback benches count BATCH notifications per iteration; each
/// iteration takes real sockets and threads, so few samples.
fn loopback_group(c: &mut Criterion) -> BenchmarkGroup<'_, WallTime> {
    let mut g = c.benchmark_group("qcm_loopback");
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g
}

fn one_way(c: &mut Criterion, name: &str, zk: bool, port_base: u16) {
    const WINDOW: u64 = 64;
    let ports = free_ports(2, port_base);
    let (a, b) = pair(&ports, zk, zk);
    let counter = Counter::new(&b);
    let mut g = loopback_group(c);
    g.bench_function(name, |bench| {
        bench.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let base = counter.count.load(Ordering::Relaxed);
                let delivered = || counter.count.load(Ordering::Relaxed) - base;
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut sent = 0;
                while sent < BATCH || delivered() < BATCH {
                    // End-to-end window: never more than 64 in flight, so
                    // even ZooKeeper's 100-slot receive queue never drops.
                    // A one-slot send queue additionally overwrites whatever
                    // the SendWorker has not taken yet: wait for it.
                    let may_send =
                        sent < BATCH && sent - delivered() < WINDOW && !(zk && a.has_pending(2));
                    if may_send {
                        a.send(2, &note(sent as i64));
                        sent += 1;
                    } else {
                        assert!(
                            Instant::now() < deadline,
                            "{name}: lost notifications: {} of {sent}; sender {:?}; receiver {:?}",
                            delivered(),
                            a.stats(),
                            b.stats()
                        );
                        std::thread::yield_now();
                    }
                }
            }
            start.elapsed()
        })
    });
    g.finish();
    let (sa, sb) = (a.stats(), b.stats());
    eprintln!(
        "{name}: sent {} received {} dropped send {} recv {}",
        sa.notifications_sent,
        sb.notifications_received,
        sa.dropped_send_queue,
        sb.dropped_recv_queue
    );
    drop(counter);
    a.shutdown();
    b.shutdown();
}

fn echo_window(c: &mut Criterion, name: &str, zk: bool, port_base: u16) {
    const WINDOW: u64 = 64;
    let ports = free_ports(2, port_base);
    // The driver (sid 1) always has room for its window, like `zkfle bench
    // notify`; the queues under test are those of the answering sid 2.
    let (a, b) = pair(&ports, false, zk);
    let stop = Arc::new(AtomicBool::new(false));
    // Sid 2 answers every notification, as a settled peer answers LOOKING.
    let responder = {
        let (b, stop) = (b.clone(), stop.clone());
        std::thread::spawn(move || {
            let rx = b.receiver();
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = rx.recv_timeout(Duration::from_millis(50)) {
                    let answer = Notification {
                        state: ServerState::Following,
                        ..r.notification
                    };
                    b.send(r.sid, &answer);
                }
            }
        })
    };
    let rx = a.receiver();
    let lost = Arc::new(AtomicU64::new(0));
    let mut g = loopback_group(c);
    g.bench_function(name, |bench| {
        bench.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let mut sent = 0u64;
                let mut answered = 0u64;
                let mut in_flight = 0u64;
                while answered < BATCH {
                    while in_flight < WINDOW {
                        a.send(2, &note(sent as i64));
                        sent += 1;
                        in_flight += 1;
                    }
                    // As `zkfle bench notify` does: a window with no answer
                    // for 100 ms is counted lost and refilled. ZooKeeper's
                    // one-slot send queue drops answers under this load.
                    match rx.recv_timeout(Duration::from_millis(100)) {
                        Ok(_) => {
                            answered += 1;
                            in_flight -= 1;
                        }
                        Err(_) => {
                            lost.fetch_add(in_flight, Ordering::Relaxed);
                            in_flight = 0;
                        }
                    }
                }
                // Answers still missing at the end were lost too (a lost
                // answer shrinks the window until 64 are gone); stragglers
                // must not count for the next iteration.
                while in_flight > 0 && rx.recv_timeout(Duration::from_millis(100)).is_ok() {
                    in_flight -= 1;
                }
                lost.fetch_add(in_flight, Ordering::Relaxed);
            }
            start.elapsed()
        })
    });
    g.finish();
    stop.store(true, Ordering::Relaxed);
    let _ = responder.join();
    let (sa, sb) = (a.stats(), b.stats());
    eprintln!(
        "{name}: answers counted lost {}; dropped by sid 2's send queue {}, by receive queues {}/{}",
        lost.load(Ordering::Relaxed),
        sb.dropped_send_queue,
        sa.dropped_recv_queue,
        sb.dropped_recv_queue
    );
    a.shutdown();
    b.shutdown();
}

fn benches(c: &mut Criterion) {
    one_way(c, "one_way_window64/zookeeper_queues", true, 22500);
    one_way(c, "one_way_window64/zkfle_queues", false, 22600);
    echo_window(c, "echo_window64/zookeeper_queues", true, 22700);
    echo_window(c, "echo_window64/zkfle_queues", false, 22800);
}

criterion_group!(qcm, benches);
criterion_main!(qcm);
