//! Store mode, one machine driven by hand: each ordering rule of
//! ZAB_SPEC.md holds — the dependent packet is absent until the completion
//! input arrives and present right after — and the store marker keeps Java
//! and election-only peers out.

#[path = "common/zab_drive.rs"]
mod drive;

use bytes::Bytes;
use drive::*;
use std::time::Duration;
use zkfle::wire::zab::{self as wz, QuorumPacket};
use zkfle::zab::snapshot::snap_packets;
use zkfle::zab::{
    ConnId, Entry, Leader, LeaderAction, Learner, LearnerAction, LearnerRole, LogRead, Mode,
    Persisted, ProtocolViolation, RequestError, ZabExit, ZabPhase,
};

const C2: ConnId = ConnId(2);

fn marked_info(sid: i64, accepted_epoch: i64) -> QuorumPacket {
    pkt(
        wz::FOLLOWERINFO,
        accepted_epoch << 32,
        Some(&learner_info(sid, 0, true)),
    )
}

fn marked_leaderinfo(epoch: i64) -> QuorumPacket {
    pkt(wz::LEADERINFO, epoch << 32, Some(&leader_info_data(true)))
}

fn ackepoch(zxid: i64, epoch: i32) -> QuorumPacket {
    pkt(wz::ACKEPOCH, zxid, Some(&epoch.to_be_bytes()))
}

fn entries(zxids: &[i64]) -> Vec<Entry> {
    zxids
        .iter()
        .map(|&x| Entry::new(x, x.to_be_bytes().to_vec()))
        .collect()
}

fn exit_of(out: &[LearnerAction]) -> Option<&ZabExit> {
    match out.last() {
        Some(LearnerAction::Exit(e)) => Some(e),
        _ => None,
    }
}

/// A store leader (sid 1 of 1, 2, 3) established with sid 2 on C2, its log
/// holding `history` (epoch 1), new epoch 2.
fn established_leader(history: &[i64]) -> Leader {
    let persisted = Persisted {
        accepted_epoch: 1,
        current_epoch: 1,
        last_zxid: history.last().copied().unwrap_or(0),
    };
    let (mut l, _) = Leader::start(cfg(1, Mode::Store), persisted, T0);
    l.learner_connected(T0, C2);
    l.packet(T0, C2, marked_info(2, 1));
    l.accepted_epoch_durable(T0, 2);
    l.packet(T0, C2, ackepoch(persisted.last_zxid, 1));
    let read = LogRead::from_log(&entries(history), 0, persisted.last_zxid);
    l.log_read(T0, C2, read);
    l.current_epoch_durable(T0, 2);
    let out = l.packet(T0, C2, pkt(wz::ACK, 2 << 32, None));
    assert!(out.contains(&LeaderAction::Established { epoch: 2 }));
    l
}

#[test]
fn leader_sends_leaderinfo_only_after_accepted_epoch_is_durable() {
    let (mut l, _) = Leader::start(cfg(1, Mode::Store), Persisted::default(), T0);
    l.learner_connected(T0, C2);
    let out = l.packet(T0, C2, marked_info(2, 0));
    assert_eq!(out, [LeaderAction::PersistAcceptedEpoch(1)]);
    assert!(l.timer(T0 + TICK).is_empty(), "still nothing sent");
    let out = l.accepted_epoch_durable(T0 + TICK, 1);
    let sends = sent(&out);
    assert_eq!(sends.len(), 1);
    let (p, _) = QuorumPacket::decode(&sends[0].1).expect("decodes");
    assert_eq!((p.packet_type, p.zxid), (wz::LEADERINFO, 1 << 32));
    assert_eq!(
        p.data.as_deref(),
        Some(&leader_info_data(true)[..]),
        "version + marker"
    );
    // A completion for another epoch moves nothing.
    assert!(l.accepted_epoch_durable(T0, 7).is_empty());
}

#[test]
fn leader_sends_newleader_only_after_current_epoch_is_durable() {
    let history = [z(1, 1), z(1, 2)];
    let persisted = Persisted {
        accepted_epoch: 1,
        current_epoch: 1,
        last_zxid: z(1, 2),
    };
    let (mut l, _) = Leader::start(cfg(1, Mode::Store), persisted, T0);
    l.learner_connected(T0, C2);
    l.packet(T0, C2, marked_info(2, 1));
    l.accepted_epoch_durable(T0, 2);
    let out = l.packet(T0, C2, ackepoch(z(1, 1), 1));
    assert_eq!(
        out,
        [
            LeaderAction::ReadLog {
                conn: C2,
                after: z(1, 1),
                through: z(1, 2)
            },
            LeaderAction::PersistCurrentEpoch(2)
        ]
    );
    let out = l.log_read(T0, C2, LogRead::from_log(&entries(&history), 0, z(1, 1)));
    assert_eq!(
        sent_types(&out),
        [wz::DIFF, wz::PROPOSAL, wz::COMMIT],
        "no NEWLEADER yet"
    );
    let out = l.current_epoch_durable(T0, 2);
    assert_eq!(sent_types(&out), [wz::NEWLEADER]);
    assert!(out.contains(&LeaderAction::Phase(ZabPhase::Synchronization)));
    let out = l.packet(T0, C2, pkt(wz::ACK, 2 << 32, None));
    assert_eq!(
        out[..3],
        [
            LeaderAction::ApplyFromLog { up_to: z(1, 2) },
            LeaderAction::Phase(ZabPhase::Broadcast),
            LeaderAction::Established { epoch: 2 }
        ]
    );
    let ups: Vec<(i32, i64)> = sent(&out)
        .iter()
        .map(|(_, b)| QuorumPacket::decode(b).expect("decodes").0)
        .map(|p| (p.packet_type, p.zxid))
        .collect();
    assert_eq!(
        ups,
        [(wz::UPTODATE, z(1, 2))],
        "UPTODATE carries the commit zxid"
    );
    assert_eq!(l.commit_zxid(), z(1, 2));
}

#[test]
fn learner_sends_ackepoch_only_after_accepted_epoch_is_durable() {
    let persisted = Persisted {
        accepted_epoch: 1,
        current_epoch: 1,
        last_zxid: z(1, 4),
    };
    let (mut f, _) = Learner::start(cfg(2, Mode::Store), 1, LearnerRole::Follower, persisted, T0);
    let out = f.connected(T0);
    let info = QuorumPacket::decode(&lsent(&out)[0]).expect("decodes").0;
    assert_eq!(
        info.data.as_deref(),
        Some(&learner_info(2, 0, true)[..]),
        "28 bytes"
    );
    let out = f.packet(T0, marked_leaderinfo(2));
    assert_eq!(out, [LearnerAction::PersistAcceptedEpoch(2)]);
    assert_eq!(
        f.next_deadline(),
        None,
        "waiting on our own write: no read timeout"
    );
    let out = f.accepted_epoch_durable(T0 + TICK, 2);
    assert_eq!(lsent_types(&out), [(wz::ACKEPOCH, z(1, 4))]);
    assert_eq!(
        lsent(&out)[0][16..20],
        1i32.to_be_bytes(),
        "old currentEpoch"
    );
    assert_eq!(
        f.next_deadline(),
        Some(T0 + TICK + TICK * 10),
        "initLimit from now"
    );
}

/// A store follower (sid 2, empty log) through ACKEPOCH of epoch 1.
fn syncing_follower() -> Learner {
    let (mut f, _) = Learner::start(
        cfg(2, Mode::Store),
        1,
        LearnerRole::Follower,
        Persisted::default(),
        T0,
    );
    f.connected(T0);
    f.packet(T0, marked_leaderinfo(1));
    f.accepted_epoch_durable(T0, 1);
    f
}

#[test]
fn learner_acks_newleader_after_its_sync_is_durable_then_its_current_epoch() {
    let mut f = syncing_follower();
    assert!(f.packet(T0, pkt(wz::DIFF, 0, None)).is_empty());
    let a = f.packet(T0, pkt(wz::PROPOSAL, z(1, 1), Some(b"a")));
    assert_eq!(
        a,
        [LearnerAction::AppendLog(vec![Entry::new(
            z(1, 1),
            &b"a"[..]
        )])]
    );
    f.packet(T0, pkt(wz::COMMIT, z(1, 1), None));
    f.packet(T0, pkt(wz::PROPOSAL, z(1, 2), Some(b"b")));
    f.packet(T0, pkt(wz::COMMIT, z(1, 2), None));
    assert!(
        f.packet(T0, pkt(wz::NEWLEADER, 1 << 32, None)).is_empty(),
        "(1) not durable"
    );
    assert!(
        f.packet(T0, pkt(wz::PING, 1 << 32, None)).is_empty(),
        "reply held"
    );
    assert!(f.log_durable(T0, z(1, 1)).is_empty(), "(1) half durable");
    assert_eq!(f.current_epoch(), 0);
    assert_eq!(
        f.log_durable(T0, z(1, 2)),
        [LearnerAction::PersistCurrentEpoch(1)],
        "(2)"
    );
    assert_eq!(f.durable_zxid(), z(1, 2));
    assert!(!f.acked_newleader());
    let out = f.current_epoch_durable(T0, 1);
    assert_eq!(
        lsent_types(&out),
        [(wz::ACK, 1 << 32), (wz::PING, 1 << 32)],
        "(3)"
    );
    assert!(f.acked_newleader());
    assert_eq!(f.applied_zxid(), 0, "nothing applied before UPTODATE");
    let out = f.packet(T0, pkt(wz::UPTODATE, z(1, 2), None));
    assert_eq!(out[0], LearnerAction::ApplyFromLog { up_to: z(1, 2) });
    assert_eq!(lsent_types(&out), [(wz::ACK, 1 << 32)]);
    assert!(out.contains(&LearnerAction::Phase(ZabPhase::Broadcast)));
}

#[test]
fn newleader_waits_for_a_truncation_and_for_a_snapshot_install() {
    let persisted = Persisted {
        accepted_epoch: 1,
        current_epoch: 1,
        last_zxid: z(1, 3),
    };
    let (mut f, _) = Learner::start(cfg(2, Mode::Store), 1, LearnerRole::Follower, persisted, T0);
    f.connected(T0);
    f.packet(T0, marked_leaderinfo(2));
    f.accepted_epoch_durable(T0, 2);
    let out = f.packet(T0, pkt(wz::TRUNC, z(1, 2), None));
    assert_eq!(out, [LearnerAction::TruncateLog { after: z(1, 2) }]);
    assert_eq!(f.durable_zxid(), z(1, 3), "the vote still sees the old log");
    assert!(f.packet(T0, pkt(wz::NEWLEADER, 2 << 32, None)).is_empty());
    assert_eq!(
        f.log_truncated(T0, z(1, 2)),
        [LearnerAction::PersistCurrentEpoch(2)]
    );
    assert_eq!(f.durable_zxid(), z(1, 2));

    let mut f = syncing_follower();
    let data = Bytes::from(vec![7u8; 1000]);
    let mut out = Vec::new();
    for p in snap_packets(z(1, 9), &data) {
        out = f.packet(T0, p.to_quorum_packet());
    }
    assert_eq!(
        out,
        [LearnerAction::InstallSnapshot {
            zxid: z(1, 9),
            data
        }]
    );
    f.packet(T0, pkt(wz::PROPOSAL, z(1, 10), Some(b"x")));
    assert!(f.packet(T0, pkt(wz::NEWLEADER, 1 << 32, None)).is_empty());
    assert!(f
        .log_durable(T0, z(1, 10))
        .contains(&LearnerAction::PersistCurrentEpoch(1)));
}

#[test]
fn learner_acks_a_proposal_only_once_durable_and_applies_only_committed_durable_entries() {
    let mut f = syncing_follower();
    f.packet(T0, pkt(wz::DIFF, 0, None));
    f.packet(T0, pkt(wz::NEWLEADER, 1 << 32, None));
    f.current_epoch_durable(T0, 1);
    f.packet(T0, pkt(wz::UPTODATE, 0, None));
    let out = f.packet(T0, pkt(wz::PROPOSAL, z(1, 1), Some(b"p")));
    assert_eq!(
        out,
        [LearnerAction::AppendLog(vec![Entry::new(
            z(1, 1),
            &b"p"[..]
        )])]
    );
    assert!(
        f.packet(T0, pkt(wz::COMMIT, z(1, 1), None)).is_empty(),
        "committed, not durable here"
    );
    let out = f.log_durable(T0, z(1, 1));
    assert_eq!(
        out,
        [
            LearnerAction::Send(zkfle::zab::Packet::new(wz::ACK, z(1, 1), None)),
            LearnerAction::Deliver(vec![Entry::new(z(1, 1), &b"p"[..])])
        ]
    );
    // Durable but not committed: ACK, no delivery.
    f.packet(T0, pkt(wz::PROPOSAL, z(1, 2), Some(b"q")));
    assert_eq!(
        lsent_types(&f.log_durable(T0, z(1, 2))),
        [(wz::ACK, z(1, 2))]
    );
    assert_eq!(f.applied_zxid(), z(1, 1));
}

#[test]
fn leader_delivers_and_answers_only_once_its_own_log_is_durable() {
    let mut l = established_leader(&[]);
    let out = l.propose(T0, Bytes::from_static(b"w"), 7);
    assert_eq!(
        out[0],
        LeaderAction::AppendLog(vec![Entry::new(z(2, 1), &b"w"[..])])
    );
    assert_eq!(sent_types(&out), [wz::PROPOSAL]);
    assert!(
        l.packet(T0, C2, pkt(wz::ACK, z(2, 1), None)).is_empty(),
        "follower alone"
    );
    let out = l.log_durable(T0, z(2, 1));
    assert_eq!(sent_types(&out), [wz::COMMIT]);
    assert!(out.contains(&LeaderAction::Deliver(vec![Entry::new(z(2, 1), &b"w"[..])])));
    assert_eq!(
        out.last(),
        Some(&LeaderAction::ProposeDone {
            req: 7,
            result: Ok(z(2, 1))
        })
    );
}

#[test]
fn store_learner_refuses_a_java_or_election_only_leader() {
    let mut f = syncing_follower_before_leaderinfo();
    let out = f.packet(T0, vpacket("zab-leaderinfo"));
    assert_eq!(
        out,
        [LearnerAction::Exit(ZabExit::LeaderNotReplicating {
            sid: 1
        })]
    );
    let mut f = syncing_follower_before_leaderinfo();
    let mut data = 0x10000i32.to_be_bytes().to_vec();
    data.extend_from_slice(&zkfle::wire::zab::StoreMarker { flags: 0 }.encode());
    let out = f.packet(T0, pkt(wz::LEADERINFO, 1 << 32, Some(&data)));
    assert_eq!(
        exit_of(&out),
        Some(&ZabExit::LeaderNotReplicating { sid: 1 })
    );
    assert_eq!(f.accepted_epoch(), 0, "nothing accepted from it");
}

fn syncing_follower_before_leaderinfo() -> Learner {
    let (mut f, _) = Learner::start(
        cfg(2, Mode::Store),
        1,
        LearnerRole::Follower,
        Persisted::default(),
        T0,
    );
    f.connected(T0);
    f
}

#[test]
fn store_leader_refuses_a_java_or_election_only_learner_and_keeps_leading() {
    let (mut l, _) = Leader::start(cfg(3, Mode::Store), Persisted::default(), T0);
    for conn in [ConnId(1), ConnId(5)] {
        l.learner_connected(T0, conn);
        let out = l.packet(T0, conn, vpacket("zab-followerinfo"));
        assert!(
            matches!(&out[..], [LeaderAction::Close { conn: c, reason }]
                if *c == conn && reason.contains("does not replicate a log")),
            "{out:?}"
        );
    }
    assert_eq!(l.exit_reason(), None);
    l.learner_connected(T0, C2);
    assert_eq!(
        l.packet(T0, C2, marked_info(2, 0)),
        [LeaderAction::PersistAcceptedEpoch(1)]
    );

    // An interop leader takes a marked learner (the learner refuses it).
    let (mut l, _) = Leader::start(cfg(3, Mode::Interop), Persisted::default(), T0);
    l.learner_connected(T0, C2);
    l.packet(T0, C2, marked_info(2, 0));
    let out = l.accepted_epoch_durable(T0, 1);
    let (p, _) = QuorumPacket::decode(&sent(&out)[0].1).expect("decodes");
    assert_eq!(
        p.data.map(|d| d.len()),
        Some(4),
        "no marker from an interop leader"
    );
}

#[test]
fn learner_read_timeout_is_initlimit_then_synclimit_and_paused_on_its_own_writes() {
    let (mut f, _) = Learner::start(
        cfg(2, Mode::Store),
        1,
        LearnerRole::Follower,
        Persisted::default(),
        T0,
    );
    f.connected(T0);
    assert_eq!(f.next_deadline(), Some(T0 + TICK * 10));
    let t1 = T0 + TICK * 9;
    f.packet(t1, marked_leaderinfo(1));
    assert_eq!(f.next_deadline(), None);
    assert!(
        f.timer(T0 + TICK * 100).is_empty(),
        "our own write is slow, not the leader"
    );
    let t2 = T0 + TICK * 100;
    f.accepted_epoch_durable(t2, 1);
    f.packet(t2, pkt(wz::DIFF, 0, None));
    f.packet(t2, pkt(wz::NEWLEADER, 1 << 32, None));
    f.current_epoch_durable(t2, 1);
    assert_eq!(
        f.next_deadline(),
        Some(t2 + TICK * 3),
        "syncLimit after the NEWLEADER ACK"
    );
    let out = f.timer(t2 + TICK * 3);
    assert_eq!(
        out,
        [LearnerAction::Exit(ZabExit::LeaderNotReady {
            ms: 300,
            awaiting: "UPTODATE"
        })]
    );

    let (mut f, _) = Learner::start(
        cfg(2, Mode::Store),
        1,
        LearnerRole::Follower,
        Persisted::default(),
        T0,
    );
    f.connected(T0);
    f.heard(T0 + TICK * 5);
    assert_eq!(
        f.timer(T0 + TICK * 15),
        [LearnerAction::Exit(ZabExit::LeaderNotReady {
            ms: 1000,
            awaiting: "LEADERINFO"
        })]
    );
}

#[test]
fn leader_without_a_newleader_quorum_in_initlimit_times_out() {
    let (mut l, _) = Leader::start(cfg(1, Mode::Store), Persisted::default(), T0);
    l.learner_connected(T0, C2);
    l.packet(T0, C2, marked_info(2, 0));
    l.accepted_epoch_durable(T0, 1);
    l.packet(T0, C2, ackepoch(0, 0));
    l.log_read(T0, C2, LogRead::default());
    let t = T0 + TICK;
    l.current_epoch_durable(t, 1);
    // The learner never ACKs NEWLEADER: initLimit after the ACKEPOCH
    // quorum the stage times out (the Exit closes every learner).
    assert!(l
        .timer(T0 + TICK * 10 - Duration::from_millis(1))
        .is_empty());
    let out = l.timer(T0 + TICK * 10);
    assert_eq!(out, [LeaderAction::Exit(ZabExit::SyncTimeout)]);
}

#[test]
fn a_log_read_that_stops_short_of_released_entries_refuses_the_learner() {
    let mut l = established_leader(&[]);
    for i in 0..3 {
        l.propose(T0, Bytes::from(vec![i]), i.into());
    }
    l.log_durable(T0, z(2, 3));
    l.packet(T0, C2, pkt(wz::ACK, z(2, 3), None));
    assert_eq!(l.commit_zxid(), z(2, 3));
    let c3 = ConnId(3);
    l.learner_connected(T0, c3);
    l.packet(T0, c3, marked_info(3, 0));
    let out = l.packet(T0, c3, ackepoch(0, 0));
    assert!(out.contains(&LeaderAction::ReadLog {
        conn: c3,
        after: 0,
        through: z(2, 3)
    }));
    let short = LogRead {
        prefix: 0,
        entries: entries(&[z(2, 1)]),
        compacted: false,
    };
    let out = l.log_read(T0, c3, short);
    assert!(
        matches!(&out[..], [LeaderAction::Close { conn, reason }] if *conn == c3 && reason.contains("released")),
        "{out:?}"
    );
    assert!(l.is_established());
}

#[test]
fn store_leader_drops_learners_that_lie_or_forward_requests() {
    let mut l = established_leader(&[]);
    let out = l.packet(T0, C2, pkt(wz::ACK, z(2, 5), None));
    assert!(
        matches!(&out[..], [LeaderAction::Close { conn: C2, .. }]),
        "ACK never proposed"
    );
    let mut l = established_leader(&[]);
    let out = l.packet(T0, C2, pkt(wz::REQUEST, 0, Some(&[0; 16])));
    assert!(matches!(&out[..], [LeaderAction::Close { conn: C2, .. }]));
    assert!(l.is_established(), "the leader lives on");
}

#[test]
fn store_learner_leaves_a_leader_whose_history_breaks_the_rules() {
    let cases: Vec<(&str, Vec<QuorumPacket>)> = vec![
        (
            "PROPOSAL before DIFF",
            vec![pkt(wz::PROPOSAL, z(1, 1), None)],
        ),
        ("DIFF at another zxid", vec![pkt(wz::DIFF, z(1, 1), None)]),
        ("TRUNC past our log", vec![pkt(wz::TRUNC, z(1, 1), None)]),
        (
            "zxids going back",
            vec![
                pkt(wz::DIFF, 0, None),
                pkt(wz::PROPOSAL, z(1, 1), None),
                pkt(wz::PROPOSAL, z(1, 2), None),
                pkt(wz::PROPOSAL, z(1, 1), None),
            ],
        ),
        (
            // ZOOKEEPER-4925: a hole taken in is applied around later.
            "a hole in the history",
            vec![
                pkt(wz::DIFF, 0, None),
                pkt(wz::PROPOSAL, z(1, 1), None),
                pkt(wz::PROPOSAL, z(1, 3), None),
            ],
        ),
        (
            "a new epoch not starting at counter 1",
            vec![pkt(wz::DIFF, 0, None), pkt(wz::PROPOSAL, z(1, 2), None)],
        ),
        (
            "a proposal from a later epoch",
            vec![pkt(wz::DIFF, 0, None), pkt(wz::PROPOSAL, z(2, 1), None)],
        ),
        (
            "COMMIT of an entry never sent",
            vec![pkt(wz::DIFF, 0, None), pkt(wz::COMMIT, z(1, 1), None)],
        ),
        (
            "NEWLEADER before any sync",
            vec![pkt(wz::NEWLEADER, 1 << 32, None)],
        ),
        (
            "a bad SNAP header",
            vec![pkt(wz::SNAP, z(1, 1), Some(&[1, 2]))],
        ),
        (
            "SNAP chunk past its length",
            vec![
                pkt(wz::SNAP, z(1, 1), Some(&1i64.to_be_bytes())),
                pkt(wz::SNAP, z(1, 1), Some(&[1, 2])),
            ],
        ),
        (
            "UPTODATE in the sync",
            vec![pkt(wz::DIFF, 0, None), pkt(wz::UPTODATE, 0, None)],
        ),
    ];
    for (what, packets) in cases {
        let mut f = syncing_follower();
        let mut last = Vec::new();
        for p in packets {
            last = f.packet(T0, p);
        }
        assert!(
            matches!(exit_of(&last), Some(ZabExit::Protocol(_))),
            "{what}: {last:?}"
        );
    }
    // UPTODATE committing past what we hold.
    let mut f = syncing_follower();
    f.packet(T0, pkt(wz::DIFF, 0, None));
    f.packet(T0, pkt(wz::NEWLEADER, 1 << 32, None));
    f.current_epoch_durable(T0, 1);
    let out = f.packet(T0, pkt(wz::UPTODATE, z(1, 4), None));
    assert!(matches!(
        exit_of(&out),
        Some(ZabExit::Protocol(ProtocolViolation::Invalid(_)))
    ));
}

#[test]
fn a_one_voter_ensemble_leads_alone() {
    let one = cfg_with(1, &[1], &[], Mode::Store);
    let (mut l, out) = Leader::start(one, Persisted::default(), T0);
    assert!(out.contains(&LeaderAction::PersistAcceptedEpoch(1)));
    assert_eq!(
        l.accepted_epoch_durable(T0, 1),
        [LeaderAction::PersistCurrentEpoch(1)]
    );
    let out = l.current_epoch_durable(T0, 1);
    assert!(out.contains(&LeaderAction::Established { epoch: 1 }));
    let out = l.read_barrier(T0, 1);
    assert_eq!(
        out,
        [LeaderAction::BarrierDone {
            req: 1,
            result: Ok(0)
        }]
    );
    l.propose(T0, Bytes::from_static(b"solo"), 2);
    let out = l.log_durable(T0, z(1, 1));
    assert_eq!(
        out.last(),
        Some(&LeaderAction::ProposeDone {
            req: 2,
            result: Ok(z(1, 1))
        })
    );
    let hold_off = std::time::Duration::from_millis(500);
    let out = l.step_down(T0, zkfle::zab::StepDown::Resign { hold_off });
    assert_eq!(out, [LeaderAction::Exit(ZabExit::Resigned { hold_off })]);
    assert_eq!(
        l.propose(T0, Bytes::new(), 3),
        [LeaderAction::ProposeDone {
            req: 3,
            result: Err(RequestError::NotEstablished)
        }]
    );
    assert_eq!(
        l.read_barrier(T0, 4),
        [LeaderAction::BarrierDone {
            req: 4,
            result: Err(RequestError::NotEstablished)
        }]
    );
}

#[test]
fn acks_count_only_from_learners_past_their_newleader_ack() {
    // An ACK from a learner whose NEWLEADER ACK has not arrived says
    // nothing about its currentEpoch: its vote could still lose to a peer
    // without the entry (the ZOOKEEPER-4643 class), so it must not count.
    let mut l = established_leader(&[]);
    l.propose(T0, Bytes::from_static(b"w"), 1);
    assert!(l.log_durable(T0, z(2, 1)).is_empty(), "sid 2 has not ACKed");
    let c3 = ConnId(3);
    l.learner_connected(T0, c3);
    assert_eq!(
        sent_types(&l.packet(T0, c3, marked_info(3, 0))),
        [wz::LEADERINFO]
    );
    l.packet(T0, c3, ackepoch(0, 0));
    let out = l.log_read(T0, c3, LogRead::default());
    assert_eq!(sent_types(&out), [wz::DIFF, wz::PROPOSAL, wz::NEWLEADER]);
    let out = l.packet(T0, c3, pkt(wz::ACK, z(2, 1), None));
    assert!(out.is_empty(), "not counted: {out:?}");
    assert_eq!(l.commit_zxid(), 0);
    let out = l.packet(T0, c3, pkt(wz::ACK, 2 << 32, None));
    assert_eq!(
        out.last(),
        Some(&LeaderAction::ProposeDone {
            req: 1,
            result: Ok(z(2, 1))
        })
    );
}

/// Found by the simulator (`zkfle sim --store`, seed 173, 6 peers): a
/// follower that rejoins its leader already holding part of the leader's
/// uncommitted tail gets DIFF at its own last zxid, and UPTODATE commits
/// only up to the leader's commit point, below that tail. Those entries are
/// in its log, not in memory: when they commit, they must be applied from
/// the log before anything newer, or the state machine skips them.
#[test]
fn a_rejoining_follower_applies_its_own_uncommitted_tail_once_it_commits() {
    let persisted = Persisted {
        accepted_epoch: 1,
        current_epoch: 1,
        last_zxid: z(1, 4),
    };
    let (mut f, _) = Learner::start(cfg(2, Mode::Store), 1, LearnerRole::Follower, persisted, T0);
    f.connected(T0);
    f.packet(T0, marked_leaderinfo(1));
    f.packet(T0, pkt(wz::DIFF, z(1, 4), None));
    f.packet(T0, pkt(wz::NEWLEADER, 1 << 32, None));
    f.current_epoch_durable(T0, 1);
    // The leader's commit point is (1, 2): (1, 3) and (1, 4) are ours.
    let out = f.packet(T0, pkt(wz::UPTODATE, z(1, 2), None));
    assert_eq!(out[0], LearnerAction::ApplyFromLog { up_to: z(1, 2) });
    assert_eq!(
        f.packet(T0, pkt(wz::COMMIT, z(1, 3), None)),
        [LearnerAction::ApplyFromLog { up_to: z(1, 3) }]
    );
    f.packet(T0, pkt(wz::PROPOSAL, z(1, 5), Some(b"e")));
    f.log_durable(T0, z(1, 5));
    assert_eq!(
        f.packet(T0, pkt(wz::COMMIT, z(1, 5), None)),
        [
            LearnerAction::ApplyFromLog { up_to: z(1, 4) },
            LearnerAction::Deliver(vec![Entry::new(z(1, 5), &b"e"[..])])
        ],
        "(1, 4) from the log first, then (1, 5) from memory: no hole"
    );
    assert_eq!(f.applied_zxid(), z(1, 5));
}

/// Found by the simulator (seed 1914, 6 peers): a learner whose leader says
/// nothing before the broadcast phase (it is waiting for its NEWLEADER
/// quorum) must not report it silent, or the election counts a live,
/// reachable leader Down.
#[test]
fn silence_before_broadcast_is_not_a_silent_leader() {
    let mut f = syncing_follower();
    f.packet(T0, pkt(wz::DIFF, 0, None));
    f.packet(T0, pkt(wz::NEWLEADER, 1 << 32, None));
    f.current_epoch_durable(T0, 1);
    let out = f.timer(T0 + TICK * 3);
    assert!(
        matches!(exit_of(&out), Some(ZabExit::LeaderNotReady { .. })),
        "{out:?}"
    );
    let mut f = syncing_follower();
    f.packet(T0, pkt(wz::DIFF, 0, None));
    f.packet(T0, pkt(wz::NEWLEADER, 1 << 32, None));
    f.current_epoch_durable(T0, 1);
    f.packet(T0, pkt(wz::UPTODATE, 0, None));
    let out = f.timer(T0 + TICK * 3);
    assert_eq!(exit_of(&out), Some(&ZabExit::LeaderSilent { ms: 300 }));
}
