//! Hostile and odd input against a QCM over loopback: every close/drop
//! vector in shared/vectors has its documented effect while a legitimate
//! peer's link is untouched (PROTOCOL.md §8, §9.1, §9.3).

#[path = "common/cnx.rs"]
mod cnx;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use cnx::*;
use zkfle::cnx::{Qcm, QcmConfig, Received};
use zkfle::wire::{Handshake, HandshakeFormat, Notification};

static PORTS: PortPool = PortPool::new(21500, 22000);

const LONG: Duration = Duration::from_secs(15);
const CLOSE_WITHIN: Duration = Duration::from_secs(3);

/// Target = sid 1, legit = sid 2 (a real QCM linked to it). Sids 3 and 4
/// are configured but never run: the tests impersonate them.
struct Bench {
    target: Qcm,
    legit: Qcm,
    target_addr: SocketAddr,
    /// Spare ports of the fixture (sid 3, sid 4 addresses).
    spare: Vec<u16>,
    round: i64,
}

impl Bench {
    fn new(tweak: impl FnOnce(&mut QcmConfig)) -> Bench {
        let ports = PORTS.take(4);
        let peers: BTreeMap<i64, Vec<SocketAddr>> = (2..=4)
            .map(|s| (s, vec![addr(ports[s as usize - 1])]))
            .collect();
        let mut cfg = QcmConfig::new(1, vec![addr(ports[0])], peers);
        cfg.handshake_timeout = Duration::from_secs(2);
        tweak(&mut cfg);
        let target = Qcm::start(cfg).expect("start target");
        let legit = Qcm::start(ensemble_config(2, &ports[..2])).expect("start legit");
        legit.connect_all();
        wait_for("legit link up", LONG, || {
            target.is_connected(2) && legit.is_connected(1)
        });
        Bench {
            target,
            legit,
            target_addr: addr(ports[0]),
            spare: ports[2..].to_vec(),
            round: 0,
        }
    }

    /// The legit peer's link is the one it always had, and carries a fresh
    /// notification both ways.
    fn legit_unaffected(&mut self, after: &str) {
        self.round += 1;
        let r = self.round;
        assert!(self.target.is_connected(2), "legit link up after {after}");
        assert_eq!(
            self.legit.stats().links_established,
            1,
            "legit link never rebuilt (after {after})"
        );
        let rx = self.target.receiver();
        self.legit.send(1, &note(2, 1000 + r));
        let got = wait_recv(&rx, |x| {
            x.sid == 2 && x.notification.election_epoch == 1000 + r
        });
        assert_eq!(got.notification, note(2, 1000 + r), "after {after}");
        let rx = self.legit.receiver();
        self.target.send(2, &note(1, 1000 + r));
        wait_recv(&rx, |x| {
            x.sid == 1 && x.notification.election_epoch == 1000 + r
        });
    }
}

/// Receives until `pred` matches (other notifications are skipped).
fn wait_recv(
    rx: &crossbeam_channel::Receiver<Received>,
    mut pred: impl FnMut(&Received) -> bool,
) -> Received {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(r) if pred(&r) => return r,
            Ok(_) => {}
            Err(_) => panic!("timed out waiting for a notification"),
        }
    }
}

fn vector(name: &str) -> Vector {
    vectors(name)
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("vector {name} present"))
}

fn receiver_says(v: &Vector) -> String {
    v.get("receiver").unwrap_or("").to_string()
}

fn expect_i64(v: &Vector, key: &str) -> Option<i64> {
    v.meta
        .iter()
        .filter(|(k, _)| k == "expect")
        .find_map(|(_, val)| {
            let (k, rest) = val.split_once('=')?;
            if k != key {
                return None;
            }
            let tok = rest.split_whitespace().next()?;
            match tok.strip_prefix("0x") {
                Some(h) => i64::from_str_radix(h, 16).ok(),
                None => tok.parse().ok(),
            }
        })
}

#[test]
fn every_close_vector_closes_within_3s_and_the_legit_link_is_untouched() {
    let mut b = Bench::new(|_| {});
    let mut tried = 0;
    for v in vectors("handshake-")
        .into_iter()
        .chain(vectors("frame-length-"))
    {
        if !receiver_says(&v).starts_with("close") {
            continue;
        }
        let unit = v.get("unit").unwrap_or("");
        let bytes = if unit.starts_with("bytes after a valid handshake") {
            let mut bytes = v1_handshake(3, b.spare[0]);
            bytes.extend_from_slice(&v.bytes);
            bytes
        } else {
            v.bytes.clone()
        };
        let before = b.target.stats();
        let mut s = raw_peer(b.target_addr, &bytes);
        assert!(
            closed_within(&mut s, CLOSE_WITHIN),
            "{}: connection closed within 3 s",
            v.name
        );
        let after = b.target.stats();
        let rejections = |s: &zkfle::cnx::QcmStats| {
            s.bad_handshakes + s.bad_frames + s.own_sid_rejected + s.unknown_low_sid_rejected
        };
        assert_eq!(
            rejections(&after),
            rejections(&before) + 1,
            "{}: counted once",
            v.name
        );
        assert_eq!(
            after.connections_dialled, before.connections_dialled,
            "{}: nothing dialled",
            v.name
        );
        b.legit_unaffected(&v.name);
        tried += 1;
    }
    assert!(tried >= 10, "close vectors found: {tried}");
    // The listener survived all of it, port 70000 included (R3).
    let mut s = raw_peer(b.target_addr, &v1_handshake(3, b.spare[0]));
    s.write_all(&frame40(&note(3, 1))).expect("write");
    let r = wait_recv(&b.target.receiver(), |r| r.sid == 3);
    assert_eq!(r.notification, note(3, 1));
}

#[test]
fn every_drop_vector_is_dropped_and_the_connection_kept() {
    let mut b = Bench::new(|_| {});
    let mut s = raw_peer(b.target_addr, &v1_handshake(3, b.spare[0]));
    let rx = b.target.receiver();
    let mut tried = 0;
    for (i, v) in vectors("notification-").into_iter().enumerate() {
        if !receiver_says(&v).starts_with("drop") {
            continue;
        }
        let before = b.target.stats().bad_frames;
        let marker = note(3, 500 + i as i64);
        s.write_all(&v.bytes).expect("write vector");
        s.write_all(&frame40(&marker)).expect("write marker");
        // The next thing delivered from sid 3 is the marker: the vector was
        // dropped, not delivered, and the connection still works.
        let r = wait_recv(&rx, |r| r.sid == 3);
        assert_eq!(
            r.notification, marker,
            "{}: dropped, next frame delivered",
            v.name
        );
        assert_eq!(
            b.target.stats().bad_frames,
            before + 1,
            "{}: counted",
            v.name
        );
        assert!(still_open(&mut s), "{}: connection kept", v.name);
        tried += 1;
    }
    assert!(tried >= 4, "drop vectors found: {tried}");
    b.legit_unaffected("drop vectors");
}

#[test]
fn every_accept_vector_is_delivered_with_its_documented_fields() {
    let b = Bench::new(|_| {});
    let mut s = raw_peer(b.target_addr, &v1_handshake(3, b.spare[0]));
    let rx = b.target.receiver();
    let mut tried = 0;
    for v in vectors("notification-") {
        if !receiver_says(&v).starts_with("accept") {
            continue;
        }
        s.write_all(&v.bytes).expect("write vector");
        let r = wait_recv(&rx, |r| r.sid == 3);
        let n = r.notification;
        for (key, got) in [
            ("state", n.state.code() as i64),
            ("leader", n.leader),
            ("zxid", n.zxid),
            ("electionEpoch", n.election_epoch),
            ("peerEpoch", n.peer_epoch),
        ] {
            if let Some(want) = expect_i64(&v, key) {
                assert_eq!(got, want, "{}: {key}", v.name);
            }
        }
        tried += 1;
    }
    assert!(tried >= 6, "accept vectors found: {tried}");
    assert!(still_open(&mut s));
    assert_eq!(b.target.stats().bad_frames, 0);
}

/// v0 (3.4), V1 and V2 handshakes from sids above the target's are kept,
/// configured or not, and what follows them is delivered under that sid.
#[test]
fn accepted_handshake_vectors_keep_the_connection() {
    let b = Bench::new(|_| {});
    let rx = b.target.receiver();
    for name in [
        "handshake-v0-bare-sid",
        "handshake-v1-sid3",
        "handshake-v2-multiaddress",
    ] {
        let v = vector(name);
        let sid = expect_i64(&v, "sid").expect("vector names its sid");
        let mut s = raw_peer(b.target_addr, &v.bytes);
        s.write_all(&frame40(&note(sid, 7))).expect("write");
        let r = wait_recv(&rx, |r| r.sid == sid);
        assert_eq!(r.notification, note(sid, 7), "{name}");
        assert!(still_open(&mut s), "{name}: kept");
        // The target answers over that connection: a stranger is reachable
        // only this way.
        b.target.send(sid, &note(1, 8));
        let body = read_frame(&mut s, LONG).expect("answer over the kept connection");
        let (n, _) = Notification::decode(&body).expect("decodes");
        assert_eq!(
            n,
            Notification {
                version: 0,
                ..note(1, 8)
            }
        );
    }
}

/// Tie-break vectors: a lower configured sid that dials in is closed and
/// dialled back at its CONFIGURED address, never the advertised one.
#[test]
fn lower_sid_dial_in_is_closed_and_dialled_back_at_the_configured_address() {
    for (name, target_sid) in [
        ("handshake-v1", 2i64),
        ("handshake-v2", 3),
        ("handshake-dialback-advertised", 2),
    ] {
        let v = vector(name);
        let lower = expect_i64(&v, "sid").expect("sid");
        let ports = PORTS.take(2);
        let lower_listener = TcpListener::bind(("127.0.0.1", ports[1])).expect("bind");
        let peers = BTreeMap::from([(lower, vec![addr(ports[1])])]);
        let target =
            Qcm::start(QcmConfig::new(target_sid, vec![addr(ports[0])], peers)).expect("start");
        let mut s = raw_peer(addr(ports[0]), &v.bytes);
        assert!(closed_within(&mut s, CLOSE_WITHIN), "{name}: closed");
        let (mut back, _) = lower_listener
            .accept()
            .expect("dialled back at the configured address");
        let mut hs = vec![0u8; 64];
        back.set_read_timeout(Some(LONG)).ok();
        let n = std::io::Read::read(&mut back, &mut hs).expect("handshake");
        let (h, _) = Handshake::decode(&hs[..n]).expect("decodes");
        assert_eq!(h.sid, target_sid);
        assert_eq!(h.format, HandshakeFormat::V1);
        assert_eq!(
            h.addresses[0].to_string(),
            addr(ports[0]).to_string(),
            "advertises its configured address"
        );
        wait_for("the dial-back becomes the link", LONG, || {
            target.is_connected(lower)
        });
        target.shutdown();
    }
}

/// Own sid (R5) and an unknown sid below ours (R4): closed at once, never
/// dialled back, whatever they advertise.
#[test]
fn own_sid_and_unknown_low_sid_are_closed_without_dial_back() {
    let ports = PORTS.take(2);
    let bait = TcpListener::bind(("127.0.0.1", ports[1])).expect("bait listener");
    bait.set_nonblocking(true).expect("nonblocking");
    let target =
        Qcm::start(QcmConfig::new(5, vec![addr(ports[0])], BTreeMap::new())).expect("start");
    for (sid, what) in [
        (5i64, "own sid"),
        (0, "unknown low sid"),
        (3, "unknown low sid"),
    ] {
        let mut s = raw_peer(addr(ports[0]), &v1_handshake(sid, ports[1]));
        assert!(closed_within(&mut s, CLOSE_WITHIN), "{what} {sid}: closed");
    }
    let st = target.stats();
    assert_eq!(st.own_sid_rejected, 1);
    assert_eq!(st.unknown_low_sid_rejected, 2);
    assert_eq!(
        st.connections_dialled + st.dial_failures + st.dial_backs,
        0,
        "nothing dialled"
    );
    assert!(
        bait.accept().is_err(),
        "no dial-back to the advertised address"
    );
    // The vectors themselves, against sid 1 (own) and sid 5 (unknown 0).
    let own = Qcm::start(QcmConfig::new(
        1,
        vec![addr(PORTS.take(1)[0])],
        BTreeMap::new(),
    ))
    .expect("start");
    let mut s = raw_peer(own.local_addrs()[0], &vector("handshake-own-sid").bytes);
    assert!(closed_within(&mut s, CLOSE_WITHIN), "own-sid vector closed");
    let mut s = raw_peer(addr(ports[0]), &vector("handshake-unknown-low-sid").bytes);
    assert!(
        closed_within(&mut s, CLOSE_WITHIN),
        "unknown-low-sid vector closed"
    );
    assert_eq!(target.stats().connections_dialled, 0);
    assert_eq!(own.stats().connections_dialled, 0);
}

/// R1: a 3-byte handshake held open (and many of them, plus silent
/// connections) never delays another peer: the legit handshake behind them
/// is served while they are all still open.
#[test]
fn stalled_handshakes_do_not_delay_other_peers() {
    let b = Bench::new(|c| c.handshake_timeout = Duration::from_secs(60));
    let v1 = v1_handshake(3, b.spare[0]);
    let mut stalled: Vec<TcpStream> = vec![raw_peer(b.target_addr, &v1[..3])];
    for _ in 0..64 {
        stalled.push(raw_peer(b.target_addr, &v1[..3]));
    }
    for _ in 0..16 {
        stalled.push(raw_peer(b.target_addr, &[]));
    }
    let mut s = raw_peer(b.target_addr, &v1);
    s.write_all(&frame40(&note(3, 42))).expect("write");
    let r = wait_recv(&b.target.receiver(), |r| r.sid == 3);
    assert_eq!(r.notification, note(3, 42));
    assert!(
        stalled.iter_mut().all(still_open),
        "served while every stalled connection is still pending"
    );
}

/// 9.1 (6): a silent inbound connection is closed after the handshake
/// deadline.
#[test]
fn silent_connection_is_closed_after_the_handshake_deadline() {
    let b = Bench::new(|c| c.handshake_timeout = Duration::from_millis(500));
    let mut s = raw_peer(b.target_addr, &[]);
    assert!(
        closed_within(&mut s, Duration::from_secs(3)),
        "silent connection closed"
    );
    let mut s = raw_peer(b.target_addr, &v1_handshake(3, 1)[..5]);
    assert!(
        closed_within(&mut s, Duration::from_secs(3)),
        "partial handshake closed"
    );
    assert_eq!(b.target.stats().bad_handshakes, 2);
}

/// 9.1 (3): frame length −20 after a valid handshake closes the link and
/// nothing spins; the same peer may come back.
#[test]
fn negative_frame_length_closes_then_the_peer_can_return() {
    let b = Bench::new(|_| {});
    let mut s = raw_peer(b.target_addr, &v1_handshake(3, b.spare[0]));
    s.write_all(&(-20i32).to_be_bytes()).expect("write");
    assert!(closed_within(&mut s, CLOSE_WITHIN));
    wait_for("sid 3 link gone", LONG, || !b.target.is_connected(3));
    let mut s = raw_peer(b.target_addr, &v1_handshake(3, b.spare[0]));
    s.write_all(&frame40(&note(3, 3))).expect("write");
    let r = wait_recv(&b.target.receiver(), |r| r.sid == 3);
    assert_eq!(r.notification, note(3, 3));
}

/// Split delivery: a handshake and frames arriving one byte at a time are
/// read exactly as if they came in one piece.
#[test]
fn byte_by_byte_delivery_is_decoded_the_same() {
    let b = Bench::new(|_| {});
    let mut bytes = v1_handshake(3, b.spare[0]);
    for i in 0..3 {
        bytes.extend_from_slice(&frame40(&note(3, i)));
    }
    let v = vector("notification-v2-looking");
    bytes.extend_from_slice(&v.bytes);
    let mut s = TcpStream::connect(b.target_addr).expect("connect");
    s.set_nodelay(true).ok();
    for byte in &bytes {
        s.write_all(std::slice::from_ref(byte)).expect("write");
    }
    let rx = b.target.receiver();
    for i in 0..3 {
        assert_eq!(wait_recv(&rx, |r| r.sid == 3).notification, note(3, i));
    }
    let r = wait_recv(&rx, |r| r.sid == 3);
    assert_eq!((r.notification.leader, r.notification.version), (3, 2));
}

/// The RecvWorker's buffer grows to the largest legal frame: a 44+N body with
/// a 200 kB config is delivered, a maximal garbage body dropped, and the
/// connection survives both.
#[test]
fn large_frames_up_to_the_limit_are_handled() {
    let b = Bench::new(|_| {});
    let mut s = raw_peer(b.target_addr, &v1_handshake(3, b.spare[0]));
    let config = "x".repeat(200_000);
    let mut body = Vec::new();
    note(3, 1).encode(
        zkfle::wire::notification::Layout::V2,
        config.as_bytes(),
        &mut body,
    );
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    s.write_all(&frame).expect("write big");
    let mut garbage = 524_288i32.to_be_bytes().to_vec();
    garbage.extend(std::iter::repeat_n(0xEEu8, 524_288));
    s.write_all(&garbage).expect("write max");
    s.write_all(&frame40(&note(3, 2))).expect("write");
    let rx = b.target.receiver();
    assert_eq!(
        wait_recv(&rx, |r| r.sid == 3).notification.election_epoch,
        1
    );
    assert_eq!(wait_recv(&rx, |r| r.sid == 3).notification, note(3, 2));
    assert_eq!(b.target.stats().bad_frames, 1);
    assert!(still_open(&mut s));
}

/// R9: strangers (sids above ours in no config) are served, one connection
/// each, at most `max_strangers` at once; a stranger is reachable only over
/// its own live connection.
#[test]
fn strangers_are_bounded_and_reachable_only_while_connected() {
    let b = Bench::new(|c| c.max_strangers = 2);
    let rx = b.target.receiver();
    let mut conns = Vec::new();
    for sid in [100i64, 101] {
        let mut s = raw_peer(b.target_addr, &v1_handshake(sid, 1));
        s.write_all(&frame40(&note(sid, 1))).expect("write");
        wait_recv(&rx, |r| r.sid == sid);
        conns.push(s);
    }
    let mut third = raw_peer(b.target_addr, &v1_handshake(102, 1));
    assert!(
        closed_within(&mut third, CLOSE_WITHIN),
        "third stranger refused"
    );
    assert_eq!(b.target.stats().strangers_rejected, 1);
    assert_eq!(b.target.connected_strangers(), vec![100, 101]);
    assert_eq!(
        b.target.connected_peers(),
        vec![2],
        "strangers are not peers"
    );
    drop(conns.pop());
    wait_for("stranger 101 forgotten", LONG, || {
        b.target.connected_strangers() == vec![100]
    });
    let before = b.target.stats().dropped_unroutable;
    b.target.send(101, &note(1, 1));
    assert_eq!(
        b.target.stats().dropped_unroutable,
        before + 1,
        "no dial to a stranger"
    );
    // A new stranger fits again.
    let mut s = raw_peer(b.target_addr, &v1_handshake(103, 1));
    s.write_all(&frame40(&note(103, 1))).expect("write");
    wait_recv(&rx, |r| r.sid == 103);
}

/// R8: a connection claiming a live configured sid from another host is
/// refused; once that sid's link is gone it is accepted (and logged).
#[test]
fn impostor_from_another_host_cannot_take_over_a_live_link() {
    let ports = PORTS.take(2);
    let real_host = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let peers = BTreeMap::from([(3i64, vec![SocketAddr::new(real_host, ports[1])])]);
    let target = Qcm::start(QcmConfig::new(1, vec![addr(ports[0])], peers)).expect("start");
    let rx = target.receiver();
    let mut real = connect_from(real_host, addr(ports[0]));
    real.write_all(&v1_handshake(3, ports[1])).expect("write");
    real.write_all(&frame40(&note(3, 1))).expect("write");
    wait_recv(&rx, |r| r.sid == 3);
    let mut impostor = connect_from(IpAddr::V4(Ipv4Addr::LOCALHOST), addr(ports[0]));
    impostor
        .write_all(&v1_handshake(3, ports[1]))
        .expect("write");
    assert!(
        closed_within(&mut impostor, CLOSE_WITHIN),
        "impostor closed"
    );
    assert_eq!(target.stats().impostors_rejected, 1);
    real.write_all(&frame40(&note(3, 2)))
        .expect("real peer still linked");
    assert_eq!(wait_recv(&rx, |r| r.sid == 3).notification, note(3, 2));
    drop(real);
    wait_for("real link gone", LONG, || !target.is_connected(3));
    let mut other = connect_from(IpAddr::V4(Ipv4Addr::LOCALHOST), addr(ports[0]));
    other.write_all(&v1_handshake(3, ports[1])).expect("write");
    other.write_all(&frame40(&note(3, 3))).expect("write");
    assert_eq!(wait_recv(&rx, |r| r.sid == 3).notification, note(3, 3));
    assert!(target.is_connected(3));
}
