//! A peer that replicates a log never mixes with Java ZooKeeper (issue 14
//! item 4, ZAB_SPEC "Two modes"): a store-mode zkfle learner refuses a
//! Java leader (its LEADERINFO lacks the store marker) with one error line
//! per minute however often the election hands it that leader, and a
//! store-mode zkfle leader refuses Java learners (their FOLLOWERINFO lacks
//! it), so it never establishes. Real Java ZooKeeper 3.8 peers through
//! `../shared/tools/zk-ensemble.sh`. Without Java the tests skip, unless
//! `CI` is set. Ports 27601..=27853 (bases 27600 and 27650).

#[path = "common/java.rs"]
mod java;
#[path = "common/store.rs"]
mod store;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use java::{java_available, JavaEnsemble};
use parking_lot::Mutex;
use store::{Applied, RecSm};
use zkfle::{PeerBuilder, PeerHandle};

static SERIAL: Mutex<()> = Mutex::new(());
static LINES: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Keeps every zkfle log line at info and above, for assertions.
struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Info && m.target().starts_with("zkfle")
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let line = format!("{}", r.args());
            eprintln!("[{} {}] {line}", r.level(), r.target());
            LINES.lock().push((r.level(), line));
        }
    }
    fn flush(&self) {}
}

fn capture() {
    if !INSTALLED.swap(true, Ordering::SeqCst) {
        log::set_logger(&Capture).expect("no other logger in this binary");
        log::set_max_level(log::LevelFilter::Info);
    }
    LINES.lock().clear();
}

fn lines(level: log::Level, containing: &str) -> usize {
    LINES
        .lock()
        .iter()
        .filter(|(l, t)| *l == level && t.contains(containing))
        .count()
}

fn java(base: u16, sids: &str) -> JavaEnsemble {
    let ens = JavaEnsemble::new(base, 3)
        .with_env("ZK_TICK", "200")
        .with_env("ZK_INIT", "10")
        .with_env("ZK_SYNC", "5")
        .with_env("ZK_HEAP_MB", "256");
    ens.cmd(&["init"], &[]);
    ens.cmd(&["start"], &[("ZK_KEEP_DATA", "1"), ("ZK_SIDS", sids)]);
    ens
}

fn store_peer(ens: &JavaEnsemble, sid: i64) -> (PeerHandle, Applied) {
    let applied = Applied::default();
    let peer = PeerBuilder::from_config_file(ens.cfg(sid))
        .myid(sid)
        .no_admin()
        .replicated_log(RecSm(applied.clone()))
        .start()
        .expect("the store-mode peer starts");
    (peer, applied)
}

#[test]
fn a_store_mode_learner_refuses_a_java_leader_and_says_so_once() {
    if !java_available() {
        return;
    }
    let _g = SERIAL.lock();
    capture();
    let ens = java(27600, "1 2");
    ens.cmd(&["wait", "60", "1", "2"], &[]);
    assert_eq!(ens.srvr_mode(2).as_deref(), Some("leader"));
    let (peer, applied) = store_peer(&ens, 3);
    // It elects, follows the Java leader, refuses it, elects again...
    let watch_until = Instant::now() + Duration::from_secs(6);
    let mut served = false;
    while Instant::now() < watch_until {
        served |= peer.role() != zkfle::Role::Looking;
        std::thread::sleep(Duration::from_millis(5));
    }
    let elections = peer.state().election_count;
    peer.shutdown();
    let refusals = lines(log::Level::Error, "refusing to follow leader sid 2");
    eprintln!("{elections} elections in 6 s, {refusals} error line(s)");
    assert!(
        !served,
        "a store-mode peer must never serve under a Java leader"
    );
    assert!(
        elections >= 2,
        "the refusal sends it back to LOOKING ({elections} elections)"
    );
    assert_eq!(refusals, 1, "rate-limited to one error line per minute");
    assert!(
        lines(log::Level::Error, "does not replicate a log") >= 1,
        "the line says why"
    );
    assert_eq!(applied.len(), 0);
    // The Java ensemble is untouched.
    assert_eq!(ens.srvr_mode(2).as_deref(), Some("leader"));
    assert_eq!(ens.srvr_mode(1).as_deref(), Some("follower"));
}

#[test]
fn a_store_mode_leader_refuses_java_learners_and_never_establishes() {
    if !java_available() {
        return;
    }
    let _g = SERIAL.lock();
    capture();
    let ens = JavaEnsemble::new(27650, 3)
        .with_env("ZK_TICK", "200")
        .with_env("ZK_INIT", "10")
        .with_env("ZK_SYNC", "5")
        .with_env("ZK_HEAP_MB", "256");
    ens.cmd(&["init"], &[]);
    // The store-mode sid 3 starts first: with equal (empty) histories the
    // largest sid wins the election the Java peers join.
    let (peer, _applied) = store_peer(&ens, 3);
    ens.cmd(&["start"], &[("ZK_KEEP_DATA", "1"), ("ZK_SIDS", "1 2")]);
    let started = Instant::now();
    let mut led = false;
    let mut refused = false;
    while started.elapsed() < Duration::from_secs(30) {
        led |= peer.is_leader();
        refused = lines(log::Level::Warn, "does not replicate a log") >= 1;
        if refused && started.elapsed() > Duration::from_secs(3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let leading_terms = lines(log::Level::Info, "LEADING - sid 3: discovery");
    peer.shutdown();
    assert!(refused, "the leader logs why it refuses the Java learners");
    assert!(leading_terms >= 1, "sid 3 did lead (and refused)");
    assert!(
        !led,
        "a store-mode leader must never establish with Java learners"
    );
    assert_eq!(
        lines(log::Level::Info, "LEADING - broadcast: established"),
        0
    );
}
