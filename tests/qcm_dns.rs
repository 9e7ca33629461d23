//! Host names in the election transport, with a fake resolver whose table
//! the tests change while QCMs run (issue 16 items 5 and 6): a peer's name
//! that resolves only later, one that moves to another address, one that
//! never resolves (retried and logged, never fatal), this server's own name
//! (resolved to bind, with electionPortBindRetry's retries), numeric
//! configurations untouched by any resolver, and the advertised address.
//!
//! Loopback only: 127.0.0.1 and 127.0.0.2 (the whole of 127/8 is local on
//! Linux). Ports 22700–22900.

#[path = "common/cnx.rs"]
mod cnx;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cnx::{addr, note, still_open, v1_handshake, wait_for, PortPool};
use zkfle::cnx::{CnxError, DialFailure, PeerEvent, Qcm, QcmConfig};
use zkfle::net::{FakeResolver, HostPort};
use zkfle::wire::Handshake;

static PORTS: PortPool = PortPool::new(22700, 22900);
const LONG: Duration = Duration::from_secs(15);
const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LOCAL2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Warnings (and above) logged by this test binary.
static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            LOGGED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static CAPTURE: Capture = Capture;
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Warn);
}

/// Warnings so far that contain every one of `needles`.
fn warnings_with(needles: &[&str]) -> Vec<String> {
    LOGGED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .cloned()
        .collect()
}

fn hp(s: &str) -> HostPort {
    s.parse().expect("host:port")
}

/// sid `me` listening on `listen`, dialling `peers` (hosts as given),
/// resolving names with `resolver`.
fn qcm_config(
    me: i64,
    listen: SocketAddr,
    peers: &[(i64, &str)],
    resolver: &FakeResolver,
) -> QcmConfig {
    let mut cfg = QcmConfig::new(me, vec![listen], BTreeMap::new());
    cfg.peers = peers.iter().map(|(sid, a)| (*sid, vec![hp(a)])).collect();
    cfg.resolver = Arc::new(resolver.clone());
    cfg.cnx_timeout = Duration::from_secs(2);
    cfg.handshake_timeout = Duration::from_secs(2);
    cfg
}

/// A numeric peer `sid` on `at`, with no peers of its own.
fn numeric_peer(sid: i64, at: SocketAddr) -> Qcm {
    Qcm::start(QcmConfig::new(sid, vec![at], BTreeMap::new())).expect("start a numeric peer")
}

/// Waits until `rx` delivers a notification from `from` whose round is
/// `round`.
fn await_note(q: &Qcm, from: i64, round: i64) {
    let rx = q.receiver();
    let deadline = Instant::now() + LONG;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no round-{round} note from sid {from}");
        if let Ok(r) = rx.recv_timeout(left) {
            if r.sid == from && r.notification.election_epoch == round {
                return;
            }
        }
    }
}

#[test]
fn a_name_that_resolves_later_is_dialled_as_soon_as_it_does() {
    capture_logs();
    let ports = PORTS.take(2);
    let fake = FakeResolver::new();
    let name = format!("late.zk1:{}", ports[0]);
    let a = Qcm::start(qcm_config(2, addr(ports[1]), &[(1, &name)], &fake)).expect("start");
    let b = numeric_peer(1, addr(ports[0]));
    a.send(1, &note(2, 7));
    // Not in DNS yet: retried (not fatal, nothing else stops), never dialled.
    wait_for("several lookups of the late name", LONG, || {
        fake.lookups("late.zk1") >= 4
    });
    assert!(!a.is_connected(1));
    assert!(a.stats().unresolved_dials >= 4);
    assert_eq!(a.stats().dial_failures, 0, "nothing was dialled");
    // The warning names the sid and the name.
    assert!(
        !warnings_with(&["sid 1", &name]).is_empty(),
        "no warning names sid 1 and {name}: {:?}",
        LOGGED.lock().unwrap_or_else(|e| e.into_inner())
    );
    // It appears: the queued vote goes out on the next attempt.
    let at = Instant::now();
    fake.set("late.zk1", LOCAL);
    await_note(&b, 2, 7);
    println!(
        "late name: delivered {:?} after it started to resolve",
        at.elapsed()
    );
    assert!(a.is_connected(1));
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_name_that_moves_is_found_at_its_new_address() {
    let ports = PORTS.take(2);
    let fake = FakeResolver::new();
    fake.set("mover", LOCAL);
    let name = format!("mover:{}", ports[0]);
    let a = Qcm::start(qcm_config(2, addr(ports[1]), &[(1, &name)], &fake)).expect("start");
    let old = numeric_peer(1, SocketAddr::new(LOCAL, ports[0]));
    a.send(1, &note(2, 1));
    await_note(&old, 2, 1);
    // The peer goes away and comes back on another address, which its name
    // now points to; nothing listens on the old one any more.
    old.shutdown();
    wait_for("link to the old address closed", LONG, || {
        !a.is_connected(1)
    });
    fake.set("mover", LOCAL2);
    let new = numeric_peer(1, SocketAddr::new(LOCAL2, ports[0]));
    a.send(1, &note(2, 2));
    await_note(&new, 2, 2);
    // The link really goes to the new address.
    assert!(new.is_connected(2));
    a.shutdown();
    new.shutdown();
}

#[test]
fn a_name_that_never_resolves_is_retried_and_logged_and_the_rest_runs() {
    capture_logs();
    let ports = PORTS.take(3);
    let fake = FakeResolver::new();
    let never = format!("never.zk3:{}", ports[2]);
    let numeric = addr(ports[0]).to_string();
    let a = Qcm::start(qcm_config(
        2,
        addr(ports[1]),
        &[(1, &numeric), (3, &never)],
        &fake,
    ))
    .expect("start");
    let b = numeric_peer(1, addr(ports[0]));
    let events = a.peer_events();
    let started = Instant::now();
    for round in 1..=3 {
        a.send(1, &note(2, round));
        a.send(3, &note(2, round));
    }
    // The numeric peer is unaffected.
    await_note(&b, 2, 3);
    wait_for(
        "the unresolvable name looked up again and again",
        LONG,
        || fake.lookups("never.zk3") >= 8,
    );
    assert!(!a.is_connected(3));
    // Every failed pass is a dial failure of kind Other for the election:
    // no evidence about whether sid 3 runs.
    let failures: Vec<PeerEvent> = events
        .try_iter()
        .filter(|e| matches!(e, PeerEvent::DialFailed { sid: 3, .. }))
        .collect();
    assert!(failures.len() >= 4, "{failures:?}");
    assert!(failures.iter().all(|e| matches!(
        e,
        PeerEvent::DialFailed {
            failure: DialFailure::Other,
            ..
        }
    )));
    // Logged, naming the sid and the name, at most once a second.
    let warned = warnings_with(&["sid 3", &never]);
    let secs = started.elapsed().as_secs() + 1;
    assert!(!warned.is_empty());
    assert!(
        warned.len() as u64 <= secs,
        "{} warnings in {secs} s: {warned:?}",
        warned.len()
    );
    // Another name in the table makes no difference to this one; the peer
    // still runs and answers.
    fake.set("unrelated", LOCAL);
    a.send(1, &note(2, 4));
    await_note(&b, 2, 4);
    a.shutdown();
    b.shutdown();
}

#[test]
fn every_unreachable_peer_is_named_in_the_log() {
    capture_logs();
    let ports = PORTS.take(3);
    let fake = FakeResolver::new();
    let one = format!("gone.zk1:{}", ports[0]);
    let three = format!("gone.zk3:{}", ports[2]);
    let a = Qcm::start(qcm_config(
        2,
        addr(ports[1]),
        &[(1, &one), (3, &three)],
        &fake,
    ))
    .expect("start");
    // Both fail within the same instant; a limit per kind alone would
    // name only one of them in the first second (the next warning of the
    // kind is due a second later).
    a.send(1, &note(2, 1));
    a.send(3, &note(2, 1));
    wait_for(
        "both peers named in warnings",
        Duration::from_millis(900),
        || {
            !warnings_with(&["sid 1", &one]).is_empty()
                && !warnings_with(&["sid 3", &three]).is_empty()
        },
    );
    a.shutdown();
}

#[test]
fn numeric_peers_never_reach_the_resolver() {
    let ports = PORTS.take(2);
    let fake = FakeResolver::new();
    let numeric = addr(ports[0]).to_string();
    let a = Qcm::start(qcm_config(2, addr(ports[1]), &[(1, &numeric)], &fake)).expect("start");
    let b = numeric_peer(1, addr(ports[0]));
    a.send(1, &note(2, 1));
    await_note(&b, 2, 1);
    b.shutdown();
    wait_for("link closed", LONG, || !a.is_connected(1));
    // Redials of the dead numeric peer (refused) still ask no resolver.
    a.send(1, &note(2, 2));
    wait_for("a refused redial", LONG, || a.stats().dial_failures >= 2);
    assert_eq!(fake.total_lookups(), 0);
    a.shutdown();
}

#[test]
fn own_name_must_resolve_to_bind_within_the_retries() {
    let ports = PORTS.take(1);
    let fake = FakeResolver::new();
    let own = hp(&format!("me.zk2:{}", ports[0]));
    let mut cfg = qcm_config(2, addr(ports[0]), &[], &fake);
    cfg.listen_addrs = vec![own.clone()];
    cfg.advertised_addrs.clear();
    cfg.bind_retry = 2;
    let t = Instant::now();
    match Qcm::start(cfg.clone()) {
        Err(CnxError::Unresolvable { addr, attempts, .. }) => {
            assert_eq!((addr, attempts), (own.clone(), 2));
        }
        other => panic!("expected Unresolvable, got {other:?}"),
    }
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "retried 1 s apart"
    );
    // A name that appears during the retries is bound.
    cfg.bind_retry = 10;
    let late = fake.clone();
    let setter = std::thread::spawn(move || {
        wait_for("the first failed lookup", LONG, || {
            late.lookups("me.zk2") >= 1
        });
        late.set("me.zk2", LOCAL);
    });
    let q = Qcm::start(cfg).expect("bound once the name resolved");
    setter.join().expect("setter");
    assert_eq!(q.local_addrs(), vec![addr(ports[0])]);
    q.shutdown();
}

#[test]
fn the_handshake_advertises_our_resolved_numeric_address() {
    let ports = PORTS.take(2);
    let fake = FakeResolver::new();
    fake.set("me.zk1", LOCAL2);
    // A raw listener plays sid 2, larger: we write our handshake to it.
    let raw = TcpListener::bind(addr(ports[1])).expect("bind raw peer");
    let mut cfg = qcm_config(
        1,
        addr(ports[0]),
        &[(2, &addr(ports[1]).to_string())],
        &fake,
    );
    cfg.listen_addrs = vec![hp(&format!("me.zk1:{}", ports[0]))];
    cfg.advertised_addrs.clear();
    let q = Qcm::start(cfg).expect("start");
    assert_eq!(q.local_addrs(), vec![SocketAddr::new(LOCAL2, ports[0])]);
    q.send(2, &note(1, 1));
    let (mut s, _) = raw.accept().expect("our dial");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut buf = vec![0u8; 256];
    let mut got = 0;
    let hs = loop {
        let n = s.read(&mut buf[got..]).expect("handshake bytes");
        assert!(n > 0, "closed before a whole handshake");
        got += n;
        if let Ok((hs, _)) = Handshake::decode(&buf[..got]) {
            break hs;
        }
    };
    assert_eq!(hs.sid, 1);
    let advertised: Vec<String> = hs.addresses.iter().map(|a| a.to_string()).collect();
    assert_eq!(advertised, vec![format!("127.0.0.2:{}", ports[0])]);
    q.shutdown();
}

/// A TCP connection from `src_ip` (any port) to `to` that has written a V1
/// handshake for `sid` (std cannot bind a client socket; tokio's TcpSocket
/// can).
fn handshake_from(src_ip: IpAddr, to: SocketAddr, sid: i64, port: u16) -> TcpStream {
    use std::io::Write;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stream = rt
        .block_on(async {
            let sock = tokio::net::TcpSocket::new_v4()?;
            sock.bind(SocketAddr::new(src_ip, 0))?;
            sock.connect(to).await
        })
        .expect("connect from the given source");
    let mut s = stream.into_std().expect("std stream");
    s.set_nonblocking(false).expect("blocking");
    s.write_all(&v1_handshake(sid, port)).expect("handshake");
    s
}

/// A larger sid configured by name connects from an address its name did
/// not have (it moved while its old link looks alive): refused as an
/// impostor while the name says otherwise, accepted once the name points
/// there (R8 with names).
#[test]
fn a_moved_larger_peer_is_recognised_once_its_name_points_to_it() {
    let ports = PORTS.take(2);
    let fake = FakeResolver::new();
    fake.set("big.zk2", LOCAL);
    let name = format!("big.zk2:{}", ports[1]);
    let a = Qcm::start(qcm_config(1, addr(ports[0]), &[(2, &name)], &fake)).expect("start");
    // Our dial (a prompt, sid 2 being larger) looks the name up once.
    a.send(2, &note(1, 1));
    wait_for("the name looked up", LONG, || fake.lookups("big.zk2") >= 1);
    // The peer's link, from the address its name has.
    let _first = handshake_from(LOCAL, addr(ports[0]), 2, ports[1]);
    wait_for("first link up", LONG, || a.is_connected(2));
    // From another address while that link is up: an impostor.
    let _second = handshake_from(LOCAL2, addr(ports[0]), 2, ports[1]);
    wait_for("impostor refused", LONG, || {
        a.stats().impostors_rejected >= 1
    });
    // The name moves there: once looked up again (in the background, at
    // most once a second), the peer's next connection from there is its
    // link.
    fake.set("big.zk2", LOCAL2);
    let deadline = Instant::now() + LONG;
    loop {
        let before = a.stats().links_established;
        let mut s = handshake_from(LOCAL2, addr(ports[0]), 2, ports[1]);
        std::thread::sleep(Duration::from_millis(200));
        if a.stats().links_established > before && still_open(&mut s) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the moved peer was never accepted: {:?}",
            a.stats()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    a.shutdown();
}
