//! In-process Zab sessions (PROTOCOL.md §6): zkfle leaders and learners on
//! loopback, and scripted peers replaying the bytes recorded from Java
//! ZooKeeper 3.8.0 (`shared/vectors/zab-*.hex`). Ports 26010–26099, 26700–26709.

#[path = "common/zab.rs"]
mod zab;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zab::{ensemble_cfg, quorum_addr, vector, wait_for, MemHost, Scripted, Seen};
use zkfle::peer::zab::{follow, lead, ZabConfig, ZabExit, ZabHost, ZabPhase};
use zkfle::wire::zab::{self as wz, QuorumPacket};

const LONG: Duration = Duration::from_secs(15);
const ALL_PHASES: [ZabPhase; 3] = [
    ZabPhase::Discovery,
    ZabPhase::Synchronization,
    ZabPhase::Broadcast,
];

fn spawn_lead(cfg: ZabConfig, host: Arc<MemHost>) -> JoinHandle<ZabExit> {
    std::thread::spawn(move || lead(&cfg, &*host))
}

fn spawn_follow(cfg: ZabConfig, host: Arc<MemHost>, leader: i64) -> JoinHandle<ZabExit> {
    std::thread::spawn(move || follow(&cfg, &*host, leader))
}

fn join(h: JoinHandle<ZabExit>) -> ZabExit {
    let end = Instant::now() + LONG;
    while !h.is_finished() {
        assert!(Instant::now() < end, "role did not end within {LONG:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    h.join().expect("role thread panicked")
}

fn in_broadcast(h: &MemHost) -> bool {
    h.phase_now() == Some(ZabPhase::Broadcast)
}

/// Starts leader `leader` and followers `others` (fresh or given hosts) and
/// waits until all are in Broadcast.
fn establish(
    base: u16,
    sids: &[i64],
    leader: i64,
    hosts: &[Arc<MemHost>],
    tick_ms: u64,
) -> Vec<JoinHandle<ZabExit>> {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut handles = Vec::new();
    for (i, &sid) in sids.iter().enumerate() {
        let cfg = ensemble_cfg(sid, sids, base, tick_ms);
        let host = hosts[i].clone();
        handles.push(if sid == leader {
            spawn_lead(cfg, host)
        } else {
            spawn_follow(cfg, host, leader)
        });
    }
    wait_for("every peer in Broadcast", LONG, || {
        hosts.iter().all(|h| in_broadcast(h))
    });
    handles
}

#[test]
fn three_zkfle_peers_establish_epoch_1_and_follower_sees_leader_close() {
    let sids = [1, 2, 3];
    let hosts: Vec<Arc<MemHost>> = sids.iter().map(|_| Arc::new(MemHost::new())).collect();
    let mut handles = establish(26010, &sids, 3, &hosts, 100);

    // Persisted as ZooKeeper does after the first establishment: both
    // epochs 1 everywhere, acceptedEpoch written before currentEpoch.
    for (sid, h) in sids.iter().zip(&hosts) {
        let s = h.snapshot();
        assert_eq!(
            (s.accepted_epoch, s.current_epoch),
            (1, 1),
            "epochs of sid {sid}"
        );
        assert_eq!(
            s.writes,
            ["accepted=1", "current=1"],
            "write order, sid {sid}"
        );
        assert_eq!(s.phases, ALL_PHASES, "phases of sid {sid}");
    }
    assert_eq!(
        hosts[2].last_zxid(),
        1 << 32,
        "leader's zxid after NEWLEADER"
    );
    assert_eq!(
        hosts[0].last_zxid(),
        0,
        "an empty DIFF leaves the follower's zxid"
    );

    // One follower leaves: 2 of 3 still a quorum, the leader stays.
    hosts[0].request_stop();
    let f1 = handles.remove(0);
    assert!(matches!(join(f1), ZabExit::Shutdown));
    std::thread::sleep(Duration::from_millis(600)); // > (syncLimit + 1) ticks
    assert!(!handles[1].is_finished(), "leader kept a 2-of-3 quorum");
    assert!(in_broadcast(&hosts[2]));

    // The leader goes away: the remaining follower sees the FIN at once.
    hosts[2].request_stop();
    let leader = handles.pop().expect("leader handle");
    assert!(matches!(join(leader), ZabExit::Shutdown));
    let f2 = handles.pop().expect("follower handle");
    let exit = join(f2);
    assert!(
        matches!(exit, ZabExit::LeaderSocketClosed),
        "follower exit: {exit}"
    );
}

#[test]
fn leader_steps_down_without_followers_and_next_epoch_is_2() {
    let sids = [1, 2, 3];
    let hosts: Vec<Arc<MemHost>> = sids.iter().map(|_| Arc::new(MemHost::new())).collect();
    let mut handles = establish(26020, &sids, 3, &hosts, 100);
    let leader = handles.pop().expect("leader");
    hosts[0].request_stop();
    hosts[1].request_stop();
    let stopped = Instant::now();
    for h in handles.drain(..) {
        assert!(matches!(join(h), ZabExit::Shutdown));
    }
    let exit = join(leader);
    println!(
        "leader stepped down {:?} after its followers left",
        stopped.elapsed()
    );
    match exit {
        ZabExit::QuorumLost { synced } => assert_eq!(synced, [3]),
        other => panic!("expected QuorumLost, got {other}"),
    }

    // Round 2: sid 2 leads, and the former leader sid 3 is its founding
    // partner. Sid 3's (currentEpoch 1, zxid 1 << 32) is "ahead" of sid 2's
    // (1, 0) only by an epoch start, which names no transaction (a leader's
    // zxid becomes newEpoch << 32, its DIFF-synced followers' does not): it
    // is taken in, where a 3.8 leader would refuse it. Sid 1 joins late.
    let again = |h: &Arc<MemHost>| {
        let s = h.snapshot();
        Arc::new(MemHost::with_epochs(
            s.accepted_epoch,
            s.current_epoch,
            s.last_zxid,
        ))
    };
    let (h1, h2, h3) = (again(&hosts[0]), again(&hosts[1]), again(&hosts[2]));
    assert_eq!(h3.last_zxid(), 1 << 32);
    let base = 26025;
    let l = spawn_lead(ensemble_cfg(2, &sids, base, 100), h2.clone());
    let f3 = spawn_follow(ensemble_cfg(3, &sids, base, 100), h3.clone(), 2);
    wait_for("sids 2 and 3 in Broadcast", LONG, || {
        in_broadcast(&h2) && in_broadcast(&h3)
    });
    let f1 = spawn_follow(ensemble_cfg(1, &sids, base, 100), h1.clone(), 2);
    wait_for("late sid 1 in Broadcast", LONG, || in_broadcast(&h1));
    for (sid, h) in [(1, &h1), (2, &h2), (3, &h3)] {
        let s = h.snapshot();
        assert_eq!((s.accepted_epoch, s.current_epoch), (2, 2), "sid {sid}");
    }
    assert_eq!(h2.last_zxid(), 2 << 32);
    for h in [&h1, &h2, &h3] {
        h.request_stop();
    }
    for h in [f1, f3, l] {
        join(h);
    }
}

/// A scripted leader replaying a Java 3.8.0 leader's bytes (recording B of
/// `zab-learner-exchange.txt`), SNAP included, then going silent.
#[test]
fn follower_speaks_java_bytes_takes_snap_and_detects_silent_leader() {
    let base = 26030;
    let listener = std::net::TcpListener::bind(quorum_addr(base, 2)).expect("bind");
    let mut cfg = ensemble_cfg(1, &[1, 2, 3], base, 100);
    cfg.config_text =
        String::from_utf8(vector_data("zab-newleader-config.hex")).expect("utf-8 config");
    let host = Arc::new(MemHost::new());
    let f = spawn_follow(cfg.clone(), host.clone(), 2);
    let (s, _) = listener.accept().expect("accept");
    let mut leader = Scripted::new(s);

    assert_eq!(
        leader.expect_raw("FOLLOWERINFO"),
        vector("zab-followerinfo.hex")
    );
    leader.send(&vector("zab-leaderinfo.hex"));
    assert_eq!(leader.expect_raw("ACKEPOCH"), vector("zab-ackepoch.hex"));
    assert_eq!(
        host.accepted_epoch(),
        1,
        "acceptedEpoch persisted on LEADERINFO"
    );
    // The snapshot stream, one byte per write.
    leader.send_bytewise(&vector("zab-snap-empty-tree.hex"));
    leader.send(&vector("zab-newleader-config.hex"));
    assert_eq!(
        leader.expect_raw("NEWLEADER ACK"),
        vector("zab-ack-newleader.hex")
    );
    assert_eq!(
        host.current_epoch(),
        1,
        "currentEpoch persisted before the ACK"
    );
    assert_eq!(host.last_zxid(), 1 << 32, "SNAP sets the zxid");
    leader.send(&vector("zab-uptodate.hex"));
    assert_eq!(
        leader.expect_raw("UPTODATE ACK"),
        vector("zab-ack-newleader.hex")
    );
    wait_for("follower in Broadcast", LONG, || in_broadcast(&host));
    for _ in 0..3 {
        leader.send(&vector("zab-ping-leader.hex"));
        assert_eq!(
            leader.expect_raw("PING reply"),
            vector("zab-ping-reply.hex")
        );
    }
    // A proposal is ACKed with its zxid.
    leader.send(&enc(&QuorumPacket::new(
        wz::PROPOSAL,
        (1 << 32) | 1,
        Some(vec![1, 2]),
    )));
    match leader.read(LONG) {
        Seen::Packet(_, p) => assert_eq!((p.packet_type, p.zxid), (wz::ACK, (1 << 32) | 1)),
        other => panic!("expected ACK of the proposal, saw {other:?}"),
    }
    // Hung leader: socket open, nothing sent.
    let silent_from = Instant::now();
    let exit = join(f);
    let took = silent_from.elapsed();
    println!("silent leader detected after {took:?} (syncLimit x tickTime = 300 ms)");
    match exit {
        ZabExit::LeaderSilent { ms } => {
            assert!(ms >= 300, "left after only {ms} ms");
            assert!(took >= cfg.sync_timeout());
        }
        other => panic!("expected LeaderSilent, got {other}"),
    }
    assert_eq!(leader.read(Duration::from_secs(2)), Seen::Closed);
}

/// The data buffer of a QuorumPacket vector.
fn vector_data(name: &str) -> Vec<u8> {
    let (p, _) = QuorumPacket::decode(&vector(name)).expect("vector decodes");
    p.data.expect("vector has data")
}

/// A zkfle leader seen from a scripted learner sending a Java 3.8.0
/// follower's bytes (recording A): every leader packet matches the vectors.
#[test]
fn leader_bytes_match_vectors_and_java_learner_is_accepted() {
    let base = 26040;
    let mut cfg = ensemble_cfg(2, &[1, 2, 3], base, 100);
    cfg.config_text =
        String::from_utf8(vector_data("zab-newleader-config.hex")).expect("utf-8 config");
    let host = Arc::new(MemHost::new());
    let l = spawn_lead(cfg, host.clone());
    let mut learner = connect_retry(quorum_addr(base, 2));
    learner.send(&vector("zab-followerinfo.hex"));
    assert_eq!(
        learner.expect_raw("LEADERINFO"),
        vector("zab-leaderinfo.hex")
    );
    learner.send(&vector("zab-ackepoch.hex"));
    assert_eq!(learner.expect_raw("DIFF"), vector("zab-diff-insync.hex"));
    assert_eq!(
        learner.expect_raw("NEWLEADER"),
        vector("zab-newleader-config.hex")
    );
    learner.send(&vector("zab-ack-newleader.hex"));
    assert_eq!(learner.expect_raw("UPTODATE"), vector("zab-uptodate.hex"));
    learner.send(&vector("zab-ack-newleader.hex"));
    wait_for("leader in Broadcast", LONG, || in_broadcast(&host));
    let s = host.snapshot();
    assert_eq!(
        (s.accepted_epoch, s.current_epoch, s.last_zxid),
        (1, 1, 1 << 32)
    );
    assert_eq!(learner.expect_raw("PING"), vector("zab-ping-leader.hex"));
    learner.send(&vector("zab-ping-reply.hex"));
    assert_eq!(learner.expect_raw("PING"), vector("zab-ping-leader.hex"));
    // Null data (what crashes a Java leader) is taken as "no sessions".
    learner.send(&vector("zab-ping-reply-null-data.hex"));
    // A REQUEST is ignored: zkfle serves no clients.
    learner.send(&enc(&QuorumPacket::new(wz::REQUEST, 0, Some(vec![0; 16]))));
    assert_eq!(learner.expect_raw("PING"), vector("zab-ping-leader.hex"));
    learner.send(&vector("zab-ping-reply.hex"));

    // The learner hangs: dropped after syncLimit ticks, then the leader
    // (1 of 3) steps down within about one more tick.
    let silent_from = Instant::now();
    let exit = join(l);
    let took = silent_from.elapsed();
    println!("leader stepped down {took:?} after its only follower went silent");
    match exit {
        ZabExit::QuorumLost { synced } => assert_eq!(synced, [2]),
        other => panic!("expected QuorumLost, got {other}"),
    }
    assert!(
        took >= Duration::from_millis(300),
        "stepped down before syncLimit"
    );
}

fn connect_retry(addr: std::net::SocketAddr) -> Scripted {
    let end = Instant::now() + LONG;
    loop {
        match std::net::TcpStream::connect(addr) {
            Ok(s) => return Scripted::new(s),
            Err(e) => {
                assert!(Instant::now() < end, "leader never listened on {addr}: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

#[test]
fn discovery_times_out_and_unreachable_leader_fails_to_connect() {
    let base = 26050;
    let mut cfg = ensemble_cfg(3, &[1, 2, 3], base, 50);
    cfg.init_limit = 4;
    let host = Arc::new(MemHost::new());
    let exit = join(spawn_lead(cfg.clone(), host.clone()));
    assert!(
        matches!(exit, ZabExit::DiscoveryTimeout { .. }),
        "lonely leader: {exit}"
    );
    assert_eq!(
        host.accepted_epoch(),
        0,
        "no epoch persisted without a quorum"
    );

    // Nobody listens on sid 1's port.
    let exit = join(spawn_follow(cfg, Arc::new(MemHost::new()), 1));
    assert!(
        matches!(exit, ZabExit::ConnectFailed { sid: 1, .. }),
        "follower of nobody: {exit}"
    );
}

#[test]
fn stale_leader_epoch_is_rejected_and_learner_ahead_is_refused() {
    let base = 26060;
    // A follower that accepted epoch 2 gets LEADERINFO for epoch 1.
    let listener = std::net::TcpListener::bind(quorum_addr(base, 2)).expect("bind");
    let host = Arc::new(MemHost::with_epochs(2, 2, 2 << 32));
    let f = spawn_follow(ensemble_cfg(1, &[1, 2, 3], base, 100), host.clone(), 2);
    let (s, _) = listener.accept().expect("accept");
    let mut leader = Scripted::new(s);
    match leader.read(LONG) {
        Seen::Packet(_, p) => assert_eq!((p.packet_type, p.zxid), (wz::FOLLOWERINFO, 2 << 32)),
        other => panic!("expected FOLLOWERINFO, saw {other:?}"),
    }
    leader.send(&vector("zab-leaderinfo.hex"));
    let exit = join(f);
    assert!(
        matches!(
            exit,
            ZabExit::EpochRejected {
                proposed: 1,
                accepted: 2
            }
        ),
        "{exit}"
    );
    assert_eq!(host.accepted_epoch(), 2);

    // A zkfle leader (fresh) and a learner whose currentEpoch is ahead.
    let cfg = ensemble_cfg(3, &[1, 2, 3], base, 100);
    let lhost = Arc::new(MemHost::new());
    let l = spawn_lead(cfg, lhost.clone());
    let mut learner = connect_retry(quorum_addr(base, 3));
    learner.send(&vector("zab-followerinfo.hex"));
    match learner.read(LONG) {
        Seen::Packet(_, p) => assert_eq!(p.packet_type, wz::LEADERINFO),
        other => panic!("expected LEADERINFO, saw {other:?}"),
    }
    let ahead = QuorumPacket::new(wz::ACKEPOCH, 5 << 32, Some(5i32.to_be_bytes().to_vec()));
    learner.send(&enc(&ahead));
    assert_eq!(learner.read(LONG), Seen::Closed, "learner ahead is refused");
    lhost.request_stop();
    assert!(matches!(join(l), ZabExit::Shutdown));
    assert_eq!(
        lhost.current_epoch(),
        0,
        "no ACKEPOCH quorum, no currentEpoch"
    );
}

#[test]
fn late_follower_gets_the_same_path() {
    let base = 26070;
    let sids = [1, 2, 3];
    let hosts: Vec<Arc<MemHost>> = sids.iter().map(|_| Arc::new(MemHost::new())).collect();
    // Sids 3 (leader) and 1 establish alone; sid 2 joins later.
    let l = spawn_lead(ensemble_cfg(3, &sids, base, 100), hosts[2].clone());
    let f1 = spawn_follow(ensemble_cfg(1, &sids, base, 100), hosts[0].clone(), 3);
    wait_for("leader and sid 1 in Broadcast", LONG, || {
        in_broadcast(&hosts[2]) && in_broadcast(&hosts[0])
    });
    let f2 = spawn_follow(ensemble_cfg(2, &sids, base, 100), hosts[1].clone(), 3);
    wait_for("late sid 2 in Broadcast", LONG, || in_broadcast(&hosts[1]));
    let s = hosts[1].snapshot();
    assert_eq!((s.accepted_epoch, s.current_epoch, s.last_zxid), (1, 1, 0));
    // Sid 1 leaves; the late follower keeps the leader's quorum.
    hosts[0].request_stop();
    join(f1);
    std::thread::sleep(Duration::from_millis(600));
    assert!(!l.is_finished(), "leader kept sids 2 and 3");
    for h in &hosts {
        h.request_stop();
    }
    join(l);
    join(f2);
}

#[test]
fn snapshot_stream_of_an_empty_java_tree_is_walked_to_its_signature() {
    use zkfle::peer::zab::snap::SnapshotSkipper;
    let v = vector("zab-snap-empty-tree.hex");
    let (p, n) = QuorumPacket::decode(&v).expect("SNAP packet");
    assert_eq!((p.packet_type, p.zxid, n), (wz::SNAP, 1 << 32, 20));
    let stream = &v[n..];
    // Whole, then in every chunk size: same result, exactly 547 bytes.
    for chunk in [stream.len(), 1, 2, 3, 7, 64] {
        let mut s = SnapshotSkipper::new();
        let mut pending: Vec<u8> = Vec::new();
        for c in stream.chunks(chunk) {
            pending.extend_from_slice(c);
            let used = s.feed(&pending).expect("valid stream");
            pending.drain(..used);
        }
        assert!(s.done(), "chunk {chunk}: signature reached");
        assert!(pending.is_empty(), "chunk {chunk}: nothing left over");
        assert_eq!(
            (s.bytes, s.sessions, s.acl_entries, s.nodes),
            (547, 0, 1, 4)
        );
    }
    // A wrong signature is an error, not a hang.
    let mut bad = stream.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x20;
    assert!(SnapshotSkipper::new().feed(&bad).is_err());
}

fn followerinfo(sid: i64, accepted_epoch: i64, config_version: i64) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(&sid.to_be_bytes());
    data.extend_from_slice(&0x10000i32.to_be_bytes());
    data.extend_from_slice(&config_version.to_be_bytes());
    enc(&QuorumPacket::new(
        wz::FOLLOWERINFO,
        accepted_epoch << 32,
        Some(data),
    ))
}

/// Hostile or mistaken learners are closed one by one; none of them stops
/// the leader from establishing with a good learner afterwards.
#[test]
fn bad_learners_are_closed_and_the_leader_lives_on() {
    let base = 26080;
    let host = Arc::new(MemHost::new());
    let l = spawn_lead(ensemble_cfg(3, &[1, 2, 3], base, 100), host.clone());
    let leader = quorum_addr(base, 3);
    let huge_buffer = {
        let mut b = vec![0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
        b
    };
    let cases: [(&str, Vec<u8>); 6] = [
        ("unknown sid 9", followerinfo(9, 0, 0)),
        ("the leader's own sid", followerinfo(3, 0, 0)),
        ("a later config version", followerinfo(1, 0, 5)),
        (
            "a PING instead of FOLLOWERINFO",
            vector("zab-ping-reply.hex"),
        ),
        ("a 0x7fffffff buffer length", huge_buffer),
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        let mut c = connect_retry(leader);
        c.send(&bytes);
        assert_eq!(c.read(LONG), Seen::Closed, "learner sending {what}");
    }
    // A silent connection does not hold anything up either.
    let _silent = connect_retry(leader);
    let mut good = connect_retry(leader);
    good.send(&vector("zab-followerinfo.hex"));
    assert_eq!(good.expect_raw("LEADERINFO"), vector("zab-leaderinfo.hex"));
    good.send(&vector("zab-ackepoch.hex"));
    assert_eq!(good.expect_raw("DIFF"), vector("zab-diff-insync.hex"));
    match good.read(LONG) {
        Seen::Packet(_, p) => assert_eq!((p.packet_type, p.zxid), (wz::NEWLEADER, 1 << 32)),
        other => panic!("expected NEWLEADER, saw {other:?}"),
    }
    good.send(&vector("zab-ack-newleader.hex"));
    assert_eq!(good.expect_raw("UPTODATE"), vector("zab-uptodate.hex"));
    wait_for("leader in Broadcast", LONG, || in_broadcast(&host));
    host.request_stop();
    assert!(matches!(join(l), ZabExit::Shutdown));
    // PINGs may precede the close (the first round goes out at
    // establishment), nothing else.
    let end = loop {
        match good.read(LONG) {
            Seen::Packet(_, p) if p.packet_type == wz::PING => continue,
            other => break other,
        }
    };
    assert_eq!(end, Seen::Closed, "stepping down closes learners");
}

/// A leader that sends garbage or the wrong packet ends the follower's
/// role with a protocol error instead of a hang or a panic.
#[test]
fn follower_leaves_a_leader_that_breaks_the_protocol() {
    let base = 26090;
    let listener = std::net::TcpListener::bind(quorum_addr(base, 2)).expect("bind");
    let bad_leaders: [(&str, Vec<u8>); 3] = [
        ("UPTODATE instead of LEADERINFO", vector("zab-uptodate.hex")),
        ("a negative buffer length", {
            let mut b = vec![0, 0, 0, 17, 0, 0, 0, 1, 0, 0, 0, 0];
            b.extend_from_slice(&(-7i32).to_be_bytes());
            b
        }),
        ("a SNAP stream without its signature", {
            let mut v = vector("zab-leaderinfo.hex");
            let snap = vector("zab-snap-empty-tree.hex");
            v.extend_from_slice(&snap[..snap.len() - 10]);
            v.extend_from_slice(b"BenWasHerX");
            v
        }),
    ];
    for (what, bytes) in bad_leaders {
        let host = Arc::new(MemHost::new());
        let f = spawn_follow(ensemble_cfg(1, &[1, 2, 3], base, 100), host, 2);
        let (s, _) = listener.accept().expect("accept");
        let mut leader = Scripted::new(s);
        leader.expect_raw("FOLLOWERINFO");
        leader.send(&bytes);
        let exit = join(f);
        assert!(
            matches!(exit, ZabExit::Protocol(_)),
            "leader sending {what}: {exit}"
        );
    }
}

/// Observers (OBSERVERINFO) go through the same path but never count: a
/// leader with only an observer neither establishes nor stays.
#[test]
fn observers_sync_but_never_count_toward_the_quorum() {
    let base = 26700;
    let voters = [1, 2, 3];
    let cfg_for = |me: i64| {
        let mut c = ensemble_cfg(me, &[1, 2, 3, 4], base, 100);
        c.verifier = zkfle::config::QuorumVerifier::majority(voters);
        c.is_observer = me == 4;
        c
    };
    let (lh, oh, fh) = (
        Arc::new(MemHost::new()),
        Arc::new(MemHost::new()),
        Arc::new(MemHost::new()),
    );
    let l = spawn_lead(cfg_for(3), lh.clone());
    let o = spawn_follow(cfg_for(4), oh.clone(), 3);
    wait_for("observer waiting in discovery", LONG, || {
        oh.phase_now() == Some(ZabPhase::Discovery)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lh.accepted_epoch(), 0, "an observer does not fix the epoch");
    assert_eq!(lh.phase_now(), Some(ZabPhase::Discovery));
    let f = spawn_follow(cfg_for(1), fh.clone(), 3);
    wait_for("leader, follower and observer in Broadcast", LONG, || {
        in_broadcast(&lh) && in_broadcast(&oh) && in_broadcast(&fh)
    });
    // Without the follower, leader + observer is no quorum of {1, 2, 3}.
    fh.request_stop();
    join(f);
    match join(l) {
        ZabExit::QuorumLost { synced } => assert_eq!(synced, [3]),
        other => panic!("expected QuorumLost, got {other}"),
    }
    let exit = join(o);
    assert!(
        matches!(exit, ZabExit::LeaderSocketClosed),
        "observer: {exit}"
    );
}

fn enc(p: &QuorumPacket) -> Vec<u8> {
    let mut out = Vec::new();
    p.encode(&mut out);
    out
}
