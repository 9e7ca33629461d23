//! `zab::Leader` + `zab::Learner` exchanging real packets in memory
//! (`common/zab_net.rs`): sync modes, pipelining, commits, read barriers,
//! term ends, observers. Pure: no sockets, no threads, virtual time.

#[path = "common/zab_net.rs"]
mod net;

use net::{z, Disk, Net, TICK};
use zkfle::wire::zab as wz;
use zkfle::zab::{LearnerStage, Mode, RequestError, ZabExit};

fn establish(net: &mut Net, leader: i64, learners: &[i64]) {
    net.start_leader(leader);
    for &s in learners {
        net.start_learner(s, leader);
    }
    net.run();
    assert!(net.leader().is_established(), "leader {leader} established");
    for &s in learners {
        assert_eq!(net.learner(s).stage(), LearnerStage::Broadcast, "sid {s}");
    }
}

#[test]
fn cold_start_then_writes_reach_every_state_machine() {
    let mut net = Net::new(&[1, 2, 3], &[], Mode::Store);
    establish(&mut net, 1, &[2, 3]);
    assert_eq!(net.seen.established, [(1, 1)]);
    let by = net.leader().established_by().clone();
    assert!(
        by.contains(&1) && by.len() >= 2,
        "a quorum with the leader: {by:?}"
    );
    for s in 1..=3 {
        let d = &net.nodes[&s].disk;
        assert_eq!((d.accepted, d.current), (1, 1), "epochs of sid {s}");
    }
    let reqs: Vec<u64> = (0..3).map(|i| net.propose(&format!("w{i}"))).collect();
    net.run();
    let expected = [z(1, 1), z(1, 2), z(1, 3)];
    for (req, zxid) in reqs.iter().zip(expected) {
        assert_eq!(net.proposal_result(*req), Some(Ok(zxid)));
    }
    for s in 1..=3 {
        assert_eq!(net.log(s), expected, "log of sid {s}");
        assert_eq!(net.applied(s), expected, "state machine of sid {s}");
    }
    assert_eq!(net.leader().commit_zxid(), z(1, 3));
}

#[test]
fn interop_cold_start_moves_only_the_leaders_vote_zxid() {
    let mut net = Net::new(&[1, 2, 3], &[], Mode::Interop);
    establish(&mut net, 3, &[1, 2]);
    for s in 1..=3 {
        let d = &net.nodes[&s].disk;
        assert_eq!((d.accepted, d.current), (1, 1), "sid {s}");
    }
    assert_eq!(
        net.nodes[&3].disk.vote_zxid,
        1 << 32,
        "leader: newEpoch << 32"
    );
    assert_eq!(net.nodes[&1].disk.vote_zxid, 0, "an empty DIFF leaves it");
    assert_eq!(net.count(3, 1, wz::DIFF), 1);
    assert_eq!(net.count(3, 1, wz::PROPOSAL), 0);
    let req = net.propose("x");
    assert_eq!(
        net.proposal_result(req),
        Some(Err(RequestError::NoReplicatedLog))
    );
}

#[test]
fn diff_carries_the_missing_proposals_and_commits_apply_at_uptodate() {
    let mut net = Net::new(&[1, 2, 3], &[], Mode::Store);
    let history = [z(1, 1), z(1, 2), z(1, 3)];
    net.disk(1, Disk::with_log(1, 1, &history));
    net.disk(2, Disk::with_log(1, 1, &history[..1]));
    net.disk(3, Disk::default());
    establish(&mut net, 1, &[2, 3]);
    assert_eq!(net.leader().epoch(), Some(2));
    assert_eq!(net.count(1, 2, wz::DIFF), 1);
    assert_eq!(net.count(1, 2, wz::PROPOSAL), 2, "sid 2 lacked two entries");
    assert_eq!(net.count(1, 3, wz::PROPOSAL), 3, "sid 3 lacked all");
    for s in 1..=3 {
        assert_eq!(net.log(s), history, "log of sid {s}");
        assert_eq!(net.applied(s), history, "state machine of sid {s}");
        assert_eq!(net.nodes[&s].disk.current, 2);
    }
    let req = net.propose("next");
    net.run();
    assert_eq!(net.proposal_result(req), Some(Ok(z(2, 1))));
    assert_eq!(net.applied(3), [z(1, 1), z(1, 2), z(1, 3), z(2, 1)]);
}

#[test]
fn trunc_removes_a_deposed_leaders_uncommitted_entries() {
    let mut net = Net::new(&[1, 2, 3], &[], Mode::Store);
    let history = [z(1, 1), z(1, 2), z(2, 1)];
    net.disk(1, Disk::with_log(2, 2, &history));
    net.disk(2, Disk::with_log(2, 2, &history));
    // Sid 3 led epoch 1 and logged z(1,3), which nobody else has; its state
    // machine only ever applied what was committed.
    let mut deposed = Disk::with_log(1, 1, &[z(1, 1), z(1, 2), z(1, 3)]);
    deposed.applied = vec![z(1, 1), z(1, 2)];
    net.disk(3, deposed);
    establish(&mut net, 1, &[2, 3]);
    assert_eq!(net.count(1, 3, wz::TRUNC), 1);
    assert_eq!(net.count(1, 3, wz::PROPOSAL), 1);
    assert_eq!(net.log(3), history);
    assert_eq!(net.applied(3), history);
    assert_eq!(net.learner(3).durable_zxid(), z(2, 1), "the vote's zxid");
    assert_eq!(net.nodes[&3].disk.current, 3);
    net.assert_applied_consistent();
}

#[test]
fn snap_after_compaction_then_the_entries_after_the_snapshot() {
    let mut net = Net::new(&[1, 2, 3], &[], Mode::Store);
    let history: Vec<i64> = (1..=5).map(|c| z(1, c)).collect();
    let mut leader = Disk::with_log(1, 1, &history);
    leader.applied = history[..3].to_vec();
    leader.compact(z(1, 3));
    net.disk(1, leader);
    net.disk(2, Disk::default());
    net.disk(3, Disk::with_log(1, 1, &history[..1]));
    establish(&mut net, 1, &[2, 3]);
    for s in [2, 3] {
        assert_eq!(net.count(1, s, wz::DIFF), 0, "sid {s}");
        assert!(net.count(1, s, wz::SNAP) >= 1, "sid {s} got a snapshot");
        assert_eq!(net.log(s), history[3..], "sid {s} logs what follows it");
        assert_eq!(net.nodes[&s].disk.compacted_through, z(1, 3));
        assert_eq!(net.applied(s), history, "sid {s}'s state machine");
    }
    assert_eq!(net.applied(1), history);
    let req = net.propose("after");
    net.run();
    assert_eq!(net.proposal_result(req), Some(Ok(z(2, 1))));
    net.assert_applied_consistent();
}

#[test]
fn late_learner_misses_nothing_proposed_while_its_log_read_was_pending() {
    let mut net = Net::new(&[1, 2, 3], &[], Mode::Store);
    establish(&mut net, 1, &[2]);
    for i in 0..3 {
        net.propose(&format!("a{i}"));
    }
    net.run();
    // Sid 3 joins; the leader's log read for it is slow. Meanwhile two more
    // proposals commit (with sid 2) and a third stays uncommitted.
    net.hold_reads = true;
    net.start_learner(3, 1);
    net.run();
    assert_eq!(net.learner(3).stage(), LearnerStage::Syncing);
    net.propose("b0");
    net.propose("b1");
    net.run();
    assert_eq!(
        net.leader().commit_zxid(),
        z(1, 5),
        "committed without sid 3"
    );
    net.hold_io.insert(2);
    let pending = net.propose("c0");
    net.run();
    assert_eq!(net.proposal_result(pending), None);
    net.hold_reads = false;
    net.run();
    assert_eq!(net.learner(3).stage(), LearnerStage::Broadcast);
    let all: Vec<i64> = (1..=6).map(|c| z(1, c)).collect();
    assert_eq!(
        net.log(3),
        all,
        "read (3) + committed tail (2) + pending (1)"
    );
    // Sid 3's durable copy (covered by its NEWLEADER ACK) commits c0.
    assert_eq!(net.proposal_result(pending), Some(Ok(z(1, 6))));
    assert_eq!(net.applied(3), all);
    net.hold_io.clear();
    net.propose("d0");
    net.run();
    for s in 1..=3 {
        assert_eq!(net.applied(s).len(), 7, "sid {s}");
    }
    net.assert_applied_consistent();
}

#[test]
fn pipelined_proposals_commit_in_zxid_order_with_the_leader_in_the_quorum() {
    let mut net = Net::new(&[1, 2, 3], &[], Mode::Store);
    establish(&mut net, 1, &[2, 3]);
    // The followers have everything durable but the leader does not: a
    // quorum must include the leader, so nothing commits.
    net.hold_io.insert(1);
    let reqs: Vec<u64> = (0..10).map(|i| net.propose(&format!("p{i}"))).collect();
    net.run();
    assert_eq!(net.leader().outstanding_proposals(), 10);
    assert!(net.seen.proposals.is_empty());
    net.hold_io.clear();
    net.run();
    let done: Vec<(u64, i64)> = net
        .seen
        .proposals
        .iter()
        .map(|(r, x)| (*r, x.expect("committed")))
        .collect();
    let expected: Vec<(u64, i64)> = reqs.iter().zip(1..).map(|(r, c)| (*r, z(1, c))).collect();
    assert_eq!(done, expected, "acknowledged once each, in zxid order");
    net.assert_applied_consistent();
    assert_eq!(net.applied(2).len(), 10);
}

#[test]
fn one_cumulative_ack_acknowledges_a_whole_batch() {
    let mut net = Net::new(&[1, 2, 3], &[], Mode::Store);
    establish(&mut net, 1, &[2, 3]);
    net.hold_io.extend([2, 3]);
    for i in 0..5 {
        net.propose(&format!("p{i}"));
    }
    net.run();
    assert_eq!(
        net.leader().commit_zxid(),
        0,
        "no follower has anything durable"
    );
    net.hold_io.remove(&2);
    net.run();
    let acks: Vec<i64> = net
        .seen
        .packets
        .iter()
        .filter(|p| p.0 == 2 && p.2 == wz::ACK && p.3 > z(1, 0))
        .map(|p| p.3)
        .collect();
    assert_eq!(acks, [z(1, 5)], "one ACK after one group commit");
    assert_eq!(net.leader().commit_zxid(), z(1, 5));
    assert_eq!(net.seen.proposals.len(), 5);
    assert_eq!(net.count(1, 2, wz::COMMIT), 1, "one cumulative COMMIT");
}

#[test]
fn read_barrier_needs_replies_to_pings_sent_after_the_request() {
    let mut net = Net::new(&[1, 2, 3], &[], Mode::Store);
    establish(&mut net, 1, &[2, 3]);
    net.propose("w");
    net.run();
    // A ping round goes out and is answered, but the answers are held.
    net.hold_links.extend([(2, 1), (3, 1)]);
    net.advance(TICK / 2, TICK / 2);
    let req = net.barrier();
    net.hold_links.clear();
    assert!(net.deliver_one(2, 1) && net.deliver_one(3, 1));
    assert_eq!(net.barrier_result(req), None, "replies to older pings");
    net.run();
    assert_eq!(net.barrier_result(req), Some(Ok(z(1, 1))));
    // A barrier with one follower unreachable still completes (2 of 3).
    net.hold_links.insert((3, 1));
    let req = net.barrier();
    net.run();
    assert_eq!(net.barrier_result(req), Some(Ok(z(1, 1))));
    // With both unreachable it does not.
    net.hold_links.insert((2, 1));
    let req = net.barrier();
    net.run();
    assert_eq!(net.barrier_result(req), None);
    net.step_down(1);
    assert_eq!(net.barrier_result(req), Some(Err(RequestError::TermEnded)));
}

#[test]
fn pending_proposal_fails_outcome_unknown_when_the_term_ends() {
    let mut net = Net::new(&[1, 2, 3], &[], Mode::Store);
    establish(&mut net, 1, &[2, 3]);
    net.hold_io.extend([2, 3]);
    let req = net.propose("maybe");
    net.run();
    assert_eq!(net.proposal_result(req), None);
    net.step_down(1);
    assert_eq!(
        net.proposal_result(req),
        Some(Err(RequestError::OutcomeUnknown))
    );
    assert_eq!(net.seen.exits.get(&1), Some(&ZabExit::Shutdown));
    for s in [2, 3] {
        assert_eq!(net.seen.exits.get(&s), Some(&ZabExit::LeaderSocketClosed));
    }
}

#[test]
fn leader_without_a_quorum_steps_down_on_the_tick() {
    let mut net = Net::new(&[1, 2, 3], &[], Mode::Store);
    establish(&mut net, 1, &[2, 3]);
    net.hold_io.insert(2);
    let req = net.propose("lost?");
    net.step_down(3);
    net.run();
    assert!(net.leader().is_established(), "2 of 3 still a quorum");
    net.step_down(2);
    net.advance(TICK, TICK / 10);
    assert_eq!(
        net.seen.exits.get(&1),
        Some(&ZabExit::QuorumLost { synced: vec![1] })
    );
    assert_eq!(
        net.proposal_result(req),
        Some(Err(RequestError::OutcomeUnknown))
    );
}

#[test]
fn silent_follower_is_dropped_after_synclimit_then_the_quorum_is_lost() {
    let mut net = Net::new(&[1, 2, 3], &[], Mode::Interop);
    establish(&mut net, 1, &[2, 3]);
    // Sids 2 and 3 hang: nothing they send arrives.
    net.hold_links.extend([(2, 1), (3, 1)]);
    net.advance(TICK * 2, TICK / 10);
    assert!(net.is_up(1), "within syncLimit");
    net.advance(TICK * 2, TICK / 10);
    assert_eq!(
        net.seen.exits.get(&1),
        Some(&ZabExit::QuorumLost { synced: vec![1] })
    );
    assert!(net.seen.closes.iter().any(|(_, r)| r.contains("silent")));
}

#[test]
fn observers_get_inform_and_never_count() {
    let mut net = Net::new(&[1, 2, 3], &[4], Mode::Store);
    net.start_leader(1);
    net.start_learner(4, 1);
    net.advance(TICK * 3, TICK);
    assert_eq!(
        net.leader().epoch(),
        None,
        "an observer does not fix the epoch"
    );
    net.start_learner(2, 1);
    net.run();
    assert!(net.leader().is_established());
    assert!(!net.leader().established_by().contains(&4));
    assert_eq!(net.learner(4).stage(), LearnerStage::Broadcast);
    for i in 0..3 {
        net.propose(&format!("o{i}"));
    }
    net.run();
    let all = [z(1, 1), z(1, 2), z(1, 3)];
    assert_eq!(net.applied(4), all);
    assert_eq!(net.count(1, 4, wz::INFORM), 3);
    assert_eq!(net.count(1, 4, wz::PROPOSAL), 0);
    assert_eq!(net.count(4, 1, wz::ACK), 2, "NEWLEADER and UPTODATE only");
    // Without sid 2's durability, leader + observer commit nothing.
    net.hold_io.insert(2);
    let req = net.propose("needs 2");
    net.run();
    assert_eq!(net.proposal_result(req), None);
    net.step_down(2);
    net.advance(TICK, TICK / 10);
    assert_eq!(
        net.seen.exits.get(&1),
        Some(&ZabExit::QuorumLost { synced: vec![1] })
    );
}

#[test]
fn late_observer_of_a_busy_leader_gets_committed_history_only() {
    let mut net = Net::new(&[1, 2, 3], &[4], Mode::Store);
    establish(&mut net, 1, &[2]);
    net.propose("a");
    net.run();
    net.hold_io.insert(2);
    net.propose("uncommitted");
    net.run();
    net.start_learner(4, 1);
    net.run();
    assert_eq!(net.learner(4).stage(), LearnerStage::Broadcast);
    assert_eq!(net.log(4), [z(1, 1)], "the uncommitted entry is not sent");
    net.hold_io.clear();
    net.run();
    assert_eq!(net.log(4), [z(1, 1), z(1, 2)], "INFORM once it commits");
    assert_eq!(net.applied(4), [z(1, 1), z(1, 2)]);
}

#[test]
fn a_follower_restarted_with_a_lost_tail_is_resynced() {
    // Sid 3 acknowledged nothing it lost: a crash that drops unsynced
    // writes leaves it behind, and its next sync is a DIFF.
    let mut net = Net::new(&[1, 2, 3], &[], Mode::Store);
    establish(&mut net, 1, &[2, 3]);
    for i in 0..4 {
        net.propose(&format!("w{i}"));
    }
    net.run();
    net.step_down(3);
    let mut d = net.nodes[&3].disk.clone();
    d.log.truncate(2);
    d.durable = 2;
    d.applied.truncate(2);
    net.disk(3, d);
    net.start_learner(3, 1);
    net.run();
    assert_eq!(net.log(3), net.log(1));
    assert_eq!(net.applied(3), (1..=4).map(|c| z(1, c)).collect::<Vec<_>>());
    // A few ticks of pings change nothing and end nothing.
    net.advance(TICK * 5, TICK / 4);
    assert!((1..=3).all(|s| net.is_up(s)), "{:?}", net.seen.exits);
    assert!(net.leader().is_established());
}

mod random_schedules {
    use super::establish;
    use super::net::{Net, TICK};
    use proptest::prelude::*;
    use zkfle::zab::Mode;

    #[derive(Debug, Clone)]
    enum Op {
        Propose,
        Barrier,
        HoldIo(i64),
        ReleaseIo(i64),
        HoldLink(i64, bool),
        ReleaseLinks,
        Advance(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => Just(Op::Propose),
            1 => Just(Op::Barrier),
            2 => (1i64..=3).prop_map(Op::HoldIo),
            3 => (1i64..=3).prop_map(Op::ReleaseIo),
            1 => ((2i64..=3), any::<bool>()).prop_map(|(s, up)| Op::HoldLink(s, up)),
            2 => Just(Op::ReleaseLinks),
            2 => (0u8..50).prop_map(Op::Advance),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// Whatever the interleaving of writes, fsyncs and delays: state
        /// machines never diverge, every acknowledged write is durable on a
        /// quorum that includes the leader, acknowledgements come in zxid
        /// order, and once everything is released every live peer applies
        /// every acknowledged write.
        #[test]
        fn acknowledged_writes_are_durable_on_a_quorum_and_applied_everywhere(
            ops in prop::collection::vec(op(), 1..80),
        ) {
            let mut net = Net::new(&[1, 2, 3], &[], Mode::Store);
            establish(&mut net, 1, &[2, 3]);
            for op in ops {
                match op {
                    Op::Propose if net.is_up(1) => { net.propose("w"); }
                    Op::Barrier if net.is_up(1) => { net.barrier(); }
                    Op::Propose | Op::Barrier => {}
                    Op::HoldIo(s) => { net.hold_io.insert(s); }
                    Op::ReleaseIo(s) => { net.hold_io.remove(&s); }
                    Op::HoldLink(s, up) => {
                        net.hold_links.insert(if up { (s, 1) } else { (1, s) });
                    }
                    Op::ReleaseLinks => net.hold_links.clear(),
                    Op::Advance(ms) => net.advance(std::time::Duration::from_millis(ms.into()), TICK),
                }
                net.run();
                net.assert_applied_consistent();
                let mut last = 0;
                for (_, r) in net.seen.proposals.clone() {
                    let Ok(zxid) = r else { continue };
                    prop_assert!(zxid > last, "acknowledged out of order");
                    last = zxid;
                    let holders: Vec<i64> = (1..=3)
                        .filter(|s| net.nodes[s].disk.log[..net.nodes[s].disk.durable]
                            .iter().any(|e| e.zxid == zxid))
                        .collect();
                    prop_assert!(holders.contains(&1) && holders.len() >= 2,
                        "{zxid:#x} acknowledged but durable only on {holders:?}");
                }
            }
            net.hold_io.clear();
            net.hold_links.clear();
            net.run();
            let acked: Vec<i64> = net.seen.proposals.iter().filter_map(|(_, r)| r.ok()).collect();
            for s in (1..=3).filter(|s| net.is_up(*s)) {
                let applied = net.applied(s);
                for zxid in &acked {
                    prop_assert!(applied.contains(zxid), "sid {s} lacks acknowledged {zxid:#x}");
                }
            }
        }
    }
}

#[test]
fn quorum_confirmed_at_is_the_send_time_of_the_newest_round_a_quorum_answered() {
    let mut net = Net::new(&[1, 2, 3], &[], Mode::Store);
    establish(&mut net, 1, &[2, 3]);
    // Establishment sends the first round at once; after a half tick both
    // followers have answered one.
    net.advance(TICK / 2, TICK / 2);
    let first = net
        .leader()
        .quorum_confirmed_at()
        .expect("a round was answered");
    assert!(first <= net.now);
    // Rounds whose answers are held confirm nothing newer.
    net.hold_links.extend([(2, 1), (3, 1)]);
    net.advance(TICK * 2, TICK / 2);
    assert_eq!(net.leader().quorum_confirmed_at(), Some(first));
    // One follower's answers are enough with the leader (2 of 3): the
    // newest round it answered went out at the last half tick, not when
    // the answer arrived.
    net.hold_links.remove(&(2, 1));
    net.run();
    let confirmed = net.leader().quorum_confirmed_at().expect("confirmed");
    assert!(confirmed > first, "{confirmed:?} after {first:?}");
    assert!(
        confirmed <= net.now && net.now - confirmed < TICK / 2,
        "the last round went out within the last half tick: {confirmed:?} at {:?}",
        net.now
    );
    // Answers to rounds held in flight arrive later: still the send time.
    net.hold_links.insert((2, 1));
    net.advance(TICK / 2, TICK / 2);
    let sent = net.now;
    net.advance(TICK / 4, TICK / 4);
    net.hold_links.remove(&(2, 1));
    net.run();
    assert_eq!(net.leader().quorum_confirmed_at(), Some(sent));
}
