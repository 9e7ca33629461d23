//! Interop mode, byte for byte: a `zab::Leader` and a `zab::Learner` driven
//! by hand emit exactly the packets recorded from Java ZooKeeper 3.8.0
//! (`shared/vectors/zab-*.hex`) and reproduce the expectations of
//! `tests/zab_session.rs` (the threaded runtime), without sockets.

#[path = "common/zab_drive.rs"]
mod drive;

use drive::*;
use std::time::Duration;
use zkfle::wire::zab::{self as wz, QuorumPacket};
use zkfle::zab::{
    raw_snapshot_follows, ConnId, Leader, LeaderAction, Learner, LearnerAction, LearnerRole, Mode,
    Persisted, ProtocolViolation, SkippedSnapshot, ZabExit, ZabPhase,
};

const C1: ConnId = ConnId(1);

#[test]
fn leader_packets_match_the_java_recording() {
    let (mut l, out) = Leader::start(cfg(2, Mode::Interop), Persisted::default(), T0);
    assert_eq!(out, [LeaderAction::Phase(ZabPhase::Discovery)]);
    assert!(l.learner_connected(T0, C1).is_empty());
    let out = l.packet(T0, C1, vpacket("zab-followerinfo"));
    assert_eq!(
        out,
        [LeaderAction::PersistAcceptedEpoch(1)],
        "no LEADERINFO yet"
    );
    let out = l.accepted_epoch_durable(T0, 1);
    assert_eq!(sent(&out), [(C1, vector("zab-leaderinfo"))]);
    let out = l.packet(T0, C1, vpacket("zab-ackepoch"));
    assert_eq!(sent(&out), [(C1, vector("zab-diff-insync"))]);
    assert!(out.contains(&LeaderAction::PersistCurrentEpoch(1)));
    let out = l.current_epoch_durable(T0, 1);
    assert_eq!(sent(&out), [(C1, vector("zab-newleader-config"))]);
    assert!(out.contains(&LeaderAction::Phase(ZabPhase::Synchronization)));
    let out = l.packet(T0, C1, vpacket("zab-ack-newleader"));
    assert_eq!(
        out[..3],
        [
            LeaderAction::SetVoteZxid(1 << 32),
            LeaderAction::Phase(ZabPhase::Broadcast),
            LeaderAction::Established { epoch: 1 },
        ]
    );
    assert_eq!(sent(&out), [(C1, vector("zab-uptodate"))]);
    assert_eq!(
        l.established_by().iter().copied().collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(l.packet(T0, C1, vpacket("zab-ack-newleader")).is_empty());
    // First PING at once, then every half tick.
    assert_eq!(l.next_deadline(), Some(T0));
    assert_eq!(sent(&l.timer(T0)), [(C1, vector("zab-ping-leader"))]);
    assert!(l.packet(T0, C1, vpacket("zab-ping-reply")).is_empty());
    let half = T0 + TICK / 2;
    assert_eq!(sent(&l.timer(half)), [(C1, vector("zab-ping-leader"))]);
    // Null data (what crashes a Java leader) is taken as "no sessions".
    assert!(l
        .packet(half, C1, vpacket("zab-ping-reply-null-data"))
        .is_empty());
    // A REQUEST is ignored: zkfle serves no clients.
    let req = pkt(wz::REQUEST, 0, Some(&[0; 16]));
    assert!(l.packet(half, C1, req).is_empty());

    // The learner hangs: dropped after syncLimit ticks, then the leader
    // (1 of 3) steps down at the next tick.
    let mut now = half;
    let mut closed_at = None;
    let exit = loop {
        now += Duration::from_millis(10);
        let out = l.timer(now);
        if out.iter().any(|a| matches!(a, LeaderAction::Close { .. })) {
            closed_at = Some(now);
        }
        if let Some(LeaderAction::Exit(e)) = out.last() {
            break e.clone();
        }
        assert!(
            now < half + Duration::from_secs(2),
            "the leader never stepped down"
        );
    };
    assert_eq!(exit, ZabExit::QuorumLost { synced: vec![2] });
    let closed_at = closed_at.expect("the silent learner was closed");
    assert_eq!(
        closed_at - half,
        TICK * 3,
        "syncLimit × tickTime after its last packet"
    );
    assert!(now - closed_at <= TICK);
    assert_eq!(l.next_deadline(), None);
}

#[test]
fn learner_packets_match_the_java_recording_and_snap_moves_the_vote() {
    let (mut f, out) = Learner::start(
        cfg(1, Mode::Interop),
        2,
        LearnerRole::Follower,
        Persisted::default(),
        T0,
    );
    assert_eq!(out[0], LearnerAction::Phase(ZabPhase::Discovery));
    assert!(
        matches!(out[1], LearnerAction::Connect { attempt: 0, timeout } if timeout == TICK * 10)
    );
    assert_eq!(lsent(&f.connected(T0)), [vector("zab-followerinfo")]);
    let out = f.packet(T0, vpacket("zab-leaderinfo"));
    assert_eq!(
        out,
        [LearnerAction::PersistAcceptedEpoch(1)],
        "no ACKEPOCH yet"
    );
    let out = f.accepted_epoch_durable(T0, 1);
    assert_eq!(lsent(&out), [vector("zab-ackepoch")]);
    assert!(out.contains(&LearnerAction::Phase(ZabPhase::Synchronization)));
    // SNAP: the runtime skips Java's data-tree stream (547 bytes here).
    let snap = vpacket("zab-snap-empty-tree");
    assert!(raw_snapshot_follows(Mode::Interop, snap.packet_type));
    assert!(f.packet(T0, snap).is_empty());
    let skipped = SkippedSnapshot {
        bytes: 547,
        sessions: 0,
        nodes: 4,
    };
    assert_eq!(
        f.snapshot_skipped(T0, skipped),
        [LearnerAction::SetVoteZxid(1 << 32)]
    );
    assert_eq!(f.durable_zxid(), 1 << 32, "SNAP sets the zxid");
    let out = f.packet(T0, vpacket("zab-newleader-config"));
    assert_eq!(out, [LearnerAction::PersistCurrentEpoch(1)], "no ACK yet");
    assert_eq!(
        lsent(&f.current_epoch_durable(T0, 1)),
        [vector("zab-ack-newleader")]
    );
    assert!(f.acked_newleader());
    let out = f.packet(T0, vpacket("zab-uptodate"));
    assert_eq!(lsent(&out), [vector("zab-ack-newleader")]);
    assert!(out.contains(&LearnerAction::Phase(ZabPhase::Broadcast)));
    for _ in 0..3 {
        assert_eq!(
            lsent(&f.packet(T0, vpacket("zab-ping-leader"))),
            [vector("zab-ping-reply")]
        );
    }
    // A proposal is ACKed at once with its zxid (interop: not stored).
    let out = f.packet(T0, pkt(wz::PROPOSAL, z(1, 1), Some(&[1, 2])));
    assert_eq!(lsent_types(&out), [(wz::ACK, z(1, 1))]);
    assert!(f.packet(T0, pkt(wz::COMMIT, z(1, 1), None)).is_empty());
    // Hung leader: nothing for syncLimit × tickTime.
    assert_eq!(f.next_deadline(), Some(T0 + TICK * 3));
    assert!(f.timer(T0 + TICK * 3 - Duration::from_millis(1)).is_empty());
    assert_eq!(
        f.timer(T0 + TICK * 3),
        [LearnerAction::Exit(ZabExit::LeaderSilent { ms: 300 })]
    );
}

#[test]
fn learner_accepting_an_equal_epoch_answers_minus_one_at_once() {
    let persisted = Persisted {
        accepted_epoch: 1,
        current_epoch: 0,
        last_zxid: 0,
    };
    let (mut f, _) = Learner::start(
        cfg(1, Mode::Interop),
        2,
        LearnerRole::Follower,
        persisted,
        T0,
    );
    f.connected(T0);
    let out = f.packet(T0, vpacket("zab-leaderinfo"));
    let ack = QuorumPacket::new(wz::ACKEPOCH, 0, Some((-1i32).to_be_bytes().to_vec()));
    let mut expected = Vec::new();
    ack.encode(&mut expected);
    assert_eq!(lsent(&out), [expected]);
}

#[test]
fn stale_leader_epoch_is_rejected() {
    let persisted = Persisted {
        accepted_epoch: 2,
        current_epoch: 2,
        last_zxid: 2 << 32,
    };
    let (mut f, _) = Learner::start(
        cfg(1, Mode::Interop),
        2,
        LearnerRole::Follower,
        persisted,
        T0,
    );
    let out = f.connected(T0);
    assert_eq!(lsent_types(&out), [(wz::FOLLOWERINFO, 2 << 32)]);
    assert_eq!(
        f.packet(T0, vpacket("zab-leaderinfo")),
        [LearnerAction::Exit(ZabExit::EpochRejected {
            proposed: 1,
            accepted: 2
        })]
    );
    assert_eq!(f.accepted_epoch(), 2);
}

#[test]
fn learner_ahead_of_the_founding_leader_is_refused() {
    let (mut l, _) = Leader::start(cfg(3, Mode::Interop), Persisted::default(), T0);
    l.learner_connected(T0, C1);
    l.packet(T0, C1, vpacket("zab-followerinfo"));
    assert_eq!(
        sent_types(&l.accepted_epoch_durable(T0, 1)),
        [wz::LEADERINFO]
    );
    let ahead = pkt(wz::ACKEPOCH, 5 << 32, Some(&5i32.to_be_bytes()));
    let out = l.packet(T0, C1, ahead);
    assert!(
        matches!(&out[..], [LeaderAction::Close { conn: C1, reason }] if reason.contains("ahead"))
    );
    assert_eq!(l.current_epoch(), 0, "no ACKEPOCH quorum, no currentEpoch");
}

#[test]
fn bad_learners_are_closed_and_the_leader_lives_on() {
    let (mut l, _) = Leader::start(cfg(3, Mode::Interop), Persisted::default(), T0);
    let info = |sid, config_version| {
        pkt(
            wz::FOLLOWERINFO,
            0,
            Some(&learner_info(sid, config_version, false)),
        )
    };
    let cases: [(&str, QuorumPacket); 6] = [
        ("unknown sid 9", info(9, 0)),
        ("the leader's own sid", info(3, 0)),
        ("a later config version", info(1, 5)),
        ("a PING instead of FOLLOWERINFO", vpacket("zab-ping-reply")),
        (
            "a 12-byte-short LearnerInfo",
            pkt(wz::FOLLOWERINFO, 0, Some(&[0; 11])),
        ),
        ("null LearnerInfo", pkt(wz::FOLLOWERINFO, 0, None)),
    ];
    for (i, (what, p)) in cases.into_iter().enumerate() {
        let conn = ConnId(10 + i as u64);
        l.learner_connected(T0, conn);
        let out = l.packet(T0, conn, p);
        assert!(
            matches!(&out[..], [LeaderAction::Close { conn: c, .. }] if *c == conn),
            "learner sending {what}: {out:?}"
        );
    }
    // A silent connection is closed after initLimit, holding nothing up.
    l.learner_connected(T0, ConnId(99));
    l.learner_connected(T0, C1);
    assert_eq!(
        l.packet(T0, C1, vpacket("zab-followerinfo")),
        [LeaderAction::PersistAcceptedEpoch(1)]
    );
    l.accepted_epoch_durable(T0, 1);
    l.packet(T0, C1, vpacket("zab-ackepoch"));
    l.current_epoch_durable(T0, 1);
    let out = l.packet(T0, C1, vpacket("zab-ack-newleader"));
    assert!(out.contains(&LeaderAction::Established { epoch: 1 }));
    let out = l.timer(T0 + TICK * 10);
    assert!(out.contains(&LeaderAction::Close {
        conn: ConnId(99),
        reason: "learner silent for 1000 ms".into()
    }));
}

#[test]
fn follower_leaves_a_leader_that_breaks_the_protocol() {
    let start = || {
        let (mut f, _) = Learner::start(
            cfg(1, Mode::Interop),
            2,
            LearnerRole::Follower,
            Persisted::default(),
            T0,
        );
        f.connected(T0);
        f
    };
    let mut f = start();
    let out = f.packet(T0, vpacket("zab-uptodate"));
    assert_eq!(
        out,
        [LearnerAction::Exit(ZabExit::Protocol(
            ProtocolViolation::Unexpected {
                got: wz::UPTODATE,
                during: "awaiting LEADERINFO"
            }
        ))]
    );
    let mut f = start();
    let out = f.stream_error(T0, zkfle::wire::WireError::BadJuteLength(-7));
    assert!(matches!(
        &out[..],
        [LearnerAction::Exit(ZabExit::Protocol(
            ProtocolViolation::Wire(_)
        ))]
    ));
    // A broken SNAP stream is reported as such.
    let mut f = start();
    f.packet(T0, vpacket("zab-leaderinfo"));
    f.accepted_epoch_durable(T0, 1);
    f.packet(T0, vpacket("zab-snap-empty-tree"));
    let out = f.stream_error(
        T0,
        zkfle::wire::WireError::MalformedSnapshot("missing snapshot signature"),
    );
    assert!(matches!(
        &out[..],
        [LearnerAction::Exit(ZabExit::Protocol(
            ProtocolViolation::Snapshot(_)
        ))]
    ));
    // LEADERINFO with data shorter than its 4-byte version.
    let mut f = start();
    let out = f.packet(T0, pkt(wz::LEADERINFO, 1 << 32, Some(&[0, 1])));
    assert!(matches!(
        &out[..],
        [LearnerAction::Exit(ZabExit::Protocol(
            ProtocolViolation::Invalid(_)
        ))]
    ));
}

#[test]
fn discovery_times_out_and_an_unreachable_leader_fails_to_connect() {
    let (mut l, _) = Leader::start(cfg(3, Mode::Interop), Persisted::default(), T0);
    assert_eq!(l.next_deadline(), Some(T0 + TICK * 10));
    assert!(l
        .timer(T0 + TICK * 10 - Duration::from_millis(1))
        .is_empty());
    assert_eq!(
        l.timer(T0 + TICK * 10),
        [LeaderAction::Exit(ZabExit::DiscoveryTimeout {
            stage: "no quorum of FOLLOWERINFO"
        })]
    );
    assert_eq!(l.accepted_epoch(), 0, "no epoch persisted without a quorum");

    // Nobody listens: 10 attempts, 5 ms doubling to 100 ms apart.
    let (mut f, _) = Learner::start(
        cfg(1, Mode::Interop),
        3,
        LearnerRole::Follower,
        Persisted::default(),
        T0,
    );
    let mut now = T0;
    let mut delays = Vec::new();
    let exit = loop {
        let out = f.connect_failed(now, "connection refused");
        if let Some(LearnerAction::Exit(e)) = out.last() {
            break e.clone();
        }
        let next = f.next_deadline().expect("a retry");
        delays.push((next - now).as_millis());
        now = next;
        let out = f.timer(now);
        assert!(matches!(out[..], [LearnerAction::Connect { .. }]));
    };
    assert_eq!(delays, [5, 10, 20, 40, 80, 100, 100, 100, 100]);
    assert_eq!(
        exit,
        ZabExit::ConnectFailed {
            sid: 3,
            attempts: 10,
            error: "connection refused".into()
        }
    );
}

#[test]
fn late_follower_gets_the_same_path_after_establishment() {
    let (mut l, _) = Leader::start(cfg(3, Mode::Interop), Persisted::default(), T0);
    l.learner_connected(T0, C1);
    l.packet(T0, C1, vpacket("zab-followerinfo"));
    l.accepted_epoch_durable(T0, 1);
    l.packet(T0, C1, vpacket("zab-ackepoch"));
    l.current_epoch_durable(T0, 1);
    l.packet(T0, C1, vpacket("zab-ack-newleader"));
    assert!(l.is_established());
    // Sid 2 joins later: LEADERINFO at once, then DIFF, NEWLEADER, UPTODATE.
    let c2 = ConnId(2);
    l.learner_connected(T0, c2);
    let info = pkt(wz::FOLLOWERINFO, 0, Some(&learner_info(2, 0, false)));
    assert_eq!(
        sent(&l.packet(T0, c2, info)),
        [(c2, vector("zab-leaderinfo"))]
    );
    let out = l.packet(T0, c2, vpacket("zab-ackepoch"));
    assert_eq!(sent_types(&out), [wz::DIFF, wz::NEWLEADER]);
    let out = l.packet(T0, c2, vpacket("zab-ack-newleader"));
    assert_eq!(sent(&out), [(c2, vector("zab-uptodate"))]);
    assert_eq!(l.synced_followers(), 2);
}

#[test]
fn observers_sync_but_never_count_toward_the_quorum() {
    let voters = [1, 2, 3];
    let (mut l, _) = Leader::start(
        cfg_with(3, &voters, &[4], Mode::Interop),
        Persisted::default(),
        T0,
    );
    let obs = ConnId(4);
    l.learner_connected(T0, obs);
    let info = pkt(wz::OBSERVERINFO, 0, Some(&learner_info(4, 0, false)));
    assert!(
        l.packet(T0, obs, info).is_empty(),
        "an observer does not fix the epoch"
    );
    l.learner_connected(T0, C1);
    assert_eq!(
        l.packet(T0, C1, vpacket("zab-followerinfo")),
        [LeaderAction::PersistAcceptedEpoch(1)]
    );
    let out = l.accepted_epoch_durable(T0, 1);
    assert_eq!(sent_types(&out), [wz::LEADERINFO, wz::LEADERINFO]);
    // The observer's ACKEPOCH alone does not make the epoch quorum.
    let out = l.packet(T0, obs, vpacket("zab-ackepoch"));
    assert_eq!(sent_types(&out), [wz::DIFF]);
    assert!(!out.contains(&LeaderAction::PersistCurrentEpoch(1)));
    l.packet(T0, C1, vpacket("zab-ackepoch"));
    l.current_epoch_durable(T0, 1);
    assert!(
        l.packet(T0, obs, vpacket("zab-ack-newleader")).is_empty(),
        "not established by an observer"
    );
    assert!(l
        .packet(T0, C1, vpacket("zab-ack-newleader"))
        .contains(&LeaderAction::Established { epoch: 1 }));
    assert!(!l.established_by().contains(&4));
    // The follower leaves: leader + observer is no quorum of {1, 2, 3}.
    l.learner_closed(T0, C1);
    let out = l.timer(T0 + TICK);
    assert_eq!(
        out.last(),
        Some(&LeaderAction::Exit(ZabExit::QuorumLost { synced: vec![3] }))
    );
}

#[test]
fn a_java_follower_after_newleader_gets_its_ack_before_any_ping_reply() {
    // A Java leader's handler reads the NEWLEADER ACK first and drops a
    // learner that sends anything else before it.
    let (mut f, _) = Learner::start(
        cfg(1, Mode::Interop),
        2,
        LearnerRole::Follower,
        Persisted::default(),
        T0,
    );
    f.connected(T0);
    f.packet(T0, vpacket("zab-leaderinfo"));
    f.accepted_epoch_durable(T0, 1);
    f.packet(T0, vpacket("zab-diff-insync"));
    f.packet(T0, vpacket("zab-newleader-null"));
    assert!(
        f.packet(T0, vpacket("zab-ping-leader")).is_empty(),
        "reply held"
    );
    assert!(
        f.packet(T0, pkt(wz::PROPOSAL, z(1, 1), Some(b"x")))
            .is_empty(),
        "ACK held"
    );
    let out = f.current_epoch_durable(T0, 1);
    assert_eq!(
        lsent_types(&out),
        [(wz::ACK, 1 << 32), (wz::PING, 1 << 32), (wz::ACK, z(1, 1))]
    );
}
