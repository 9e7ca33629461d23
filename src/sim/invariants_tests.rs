//! Each invariant catches its bad case and passes its good one.

use super::*;

fn d(leader: i64, zxid: i64, epoch: i64, round: i64, state: ServerState) -> Decision {
    Decision {
        vote: Vote::new(leader, zxid, epoch),
        state,
        election_epoch: round,
        decided_by: crate::election::DecidedBy::FinalizeWait,
    }
}

const T: Duration = Duration::from_millis(5);

#[test]
fn order_is_epoch_zxid_sid_and_zero_weight_never_beats() {
    let q = QuorumVerifier::majority([1, 2, 3]);
    assert!(beats(&Vote::new(1, 0, 2), &Vote::new(3, 9, 1), &q));
    assert!(beats(&Vote::new(1, 9, 1), &Vote::new(3, 8, 1), &q));
    assert!(beats(&Vote::new(3, 9, 1), &Vote::new(2, 9, 1), &q));
    assert!(!beats(&Vote::new(2, 9, 1), &Vote::new(2, 9, 1), &q));
    assert!(!beats(&Vote::new(7, 99, 9), &Vote::new(1, 0, 0), &q));
}

#[test]
fn each_check_catches_its_bad_case() {
    let q = QuorumVerifier::majority([1, 2, 3]);
    let dec = d(2, 5, 1, 1, ServerState::Following);
    assert!(decision_not_beaten(T, 1, &dec, Some((3, Vote::new(3, 5, 1))), &q).is_err());
    assert!(decision_not_beaten(T, 1, &dec, Some((1, Vote::new(1, 5, 1))), &q).is_ok());
    assert!(decision_has_quorum(T, 1, &dec, &[1], &q).is_err());
    assert!(decision_has_quorum(T, 1, &dec, &[1, 2], &q).is_ok());
    let mut el = BTreeMap::new();
    el.insert(4, 3);
    assert!(one_leader_per_epoch(T, &el, 4, 2).is_err());
    assert!(one_leader_per_epoch(T, &el, 5, 2).is_ok());
    assert!(synced_peers_agree(T, &el, [(1, 2, 4)].into_iter()).is_err());
    assert!(synced_peers_agree(T, &el, [(1, 3, 4)].into_iter()).is_ok());
    assert!(calm_round_agrees(T, 1, &dec, &Vote::new(3, 0, 0)).is_err());
    let round_two = d(2, 5, 1, 2, ServerState::Following);
    assert!(calm_round_agrees(T, 1, &round_two, &Vote::new(2, 5, 1)).is_ok());
    assert!(calm_round_agrees(T, 1, &dec, &Vote::new(2, 5, 1)).is_ok());
    assert!(clock_monotonic(T, 1, 5, 4, None).is_err());
    assert!(clock_monotonic(T, 1, 5, 2, Some(2)).is_ok());
    assert!(clock_monotonic(T, 1, 5, 6, None).is_ok());
    let h = Duration::from_secs(1);
    let b = Duration::from_secs(2);
    assert!(converges_after_heal(T, h, b, None, "").is_err());
    assert!(converges_after_heal(T, h, b, Some(h + b + T), "").is_err());
    assert!(converges_after_heal(T, h, b, Some(h + T), "").is_ok());
    use crate::election::DownReason;
    let ev = DownEvidence {
        reason: DownReason::DialRefused,
        at: T,
    };
    assert!(down_voters_were_cut(T, 1, &dec, &[(3, ev, true)]).is_ok());
    assert!(down_voters_were_cut(T, 1, &dec, &[(3, ev, true), (2, ev, false)]).is_err());
    assert!(down_voters_were_cut(T, 1, &dec, &[]).is_ok());
}

#[test]
fn non_candidates_and_wrong_roles_are_caught() {
    use std::collections::BTreeSet;
    let groups = BTreeMap::from([(1, BTreeSet::from([1, 2, 3]))]);
    let weights = BTreeMap::from([(1, 1), (2, 1), (3, 0)]);
    let h = QuorumVerifier::Hierarchical { groups, weights };
    let zero = d(3, 0, 0, 1, ServerState::Following);
    assert!(only_candidates_elected(T, 1, false, &zero, &h).is_err());
    let observer_leader = d(9, 0, 0, 1, ServerState::Following);
    assert!(only_candidates_elected(T, 1, false, &observer_leader, &h).is_err());
    let ok = d(2, 0, 0, 1, ServerState::Following);
    assert!(only_candidates_elected(T, 1, false, &ok, &h).is_ok());
    assert!(
        only_candidates_elected(T, 9, true, &ok, &h).is_err(),
        "observer must observe"
    );
    let obs = d(2, 0, 0, 1, ServerState::Observing);
    assert!(only_candidates_elected(T, 9, true, &obs, &h).is_ok());
    let lead = d(2, 0, 0, 1, ServerState::Leading);
    assert!(only_candidates_elected(T, 2, false, &lead, &h).is_ok());
    assert!(only_candidates_elected(T, 1, false, &lead, &h).is_err());
}

#[test]
fn zab_invariants_catch_their_bad_cases() {
    let q = QuorumVerifier::majority([1, 2, 3]);
    assert!(one_established_leader_per_epoch(T, &[(1, 2), (3, 2)]).is_err());
    assert!(one_established_leader_per_epoch(T, &[(1, 2), (3, 3)]).is_ok());
    // A quorum with the leader, every disk at the epoch.
    assert!(established_by_durable_quorum(T, 1, 2, &[(1, 2), (2, 2)], &q).is_ok());
    assert!(established_by_durable_quorum(T, 1, 2, &[(1, 2)], &q).is_err());
    assert!(established_by_durable_quorum(T, 1, 2, &[(2, 2), (3, 2)], &q).is_err());
    assert!(established_by_durable_quorum(T, 1, 2, &[(1, 2), (2, 1)], &q).is_err());
    assert!(accepted_ge_current(T, 1, 3, 3).is_ok());
    assert!(accepted_ge_current(T, 1, 2, 3).is_err());
    assert!(epoch_ack_not_below_accepted(T, 1, "ACKEPOCH", 3, 3).is_ok());
    assert!(epoch_ack_not_below_accepted(T, 1, "ACKEPOCH", 2, 3).is_err());
    assert!(epoch_ack_durable(T, 1, "NEWLEADER ACK", 3, 3).is_ok());
    assert!(epoch_ack_durable(T, 1, "NEWLEADER ACK", 3, 2).is_err());
    assert!(current_epoch_implies_history(T, 1, 2, None).is_ok());
    assert!(current_epoch_implies_history(T, 1, 2, Some(5)).is_err());
}

#[test]
fn log_invariants_catch_their_bad_cases() {
    let q = QuorumVerifier::majority([1, 2, 3]);
    assert!(same_zxid_same_entry(T, 1, 7, 42, 42).is_ok());
    assert!(same_zxid_same_entry(T, 1, 7, 42, 43).is_err());
    assert!(committed_in_later_leader(T, 1, 3, None).is_ok());
    assert!(committed_in_later_leader(T, 1, 3, Some(9)).is_err());
    assert!(acknowledged_write_durable(T, 1, 9, &[1, 3], &q).is_ok());
    assert!(
        acknowledged_write_durable(T, 1, 9, &[2, 3], &q).is_err(),
        "not the leader"
    );
    assert!(
        acknowledged_write_durable(T, 1, 9, &[1], &q).is_err(),
        "no quorum"
    );
    let committed = BTreeMap::from([(1, 10), (2, 20), (3, 30)]);
    assert!(applied_only_committed_in_order(T, 1, &committed, 1, 2, 20).is_ok());
    assert!(
        applied_only_committed_in_order(T, 1, &committed, 1, 3, 30).is_err(),
        "a hole"
    );
    assert!(
        applied_only_committed_in_order(T, 1, &committed, 3, 4, 40).is_err(),
        "uncommitted"
    );
    assert!(
        applied_only_committed_in_order(T, 1, &committed, 1, 2, 21).is_err(),
        "other data"
    );
    assert!(applied_not_ahead_of_log(T, 1, 5, 5).is_ok());
    assert!(applied_not_ahead_of_log(T, 1, 6, 5).is_err());
    assert!(log_request_valid(T, 1, "append", Ok(())).is_ok());
    let e = LogError::OutOfOrder { zxid: 1, last: 2 };
    assert!(log_request_valid(T, 1, "append", Err(e)).is_err());
    let acked = [(5, 0u8, 1u64), (6, 1, 2)];
    assert!(no_lost_write(T, 1, &acked, |z| z <= 6).is_ok());
    assert!(no_lost_write(T, 1, &acked, |z| z <= 5).is_err());
}

#[test]
fn untouched_rounds_must_agree() {
    let voters = std::collections::BTreeSet::from([1, 2, 3]);
    assert!(untouched_round_agrees(T, 1, 4, 3, (2, 3), &voters).is_ok());
    assert!(untouched_round_agrees(T, 1, 4, 3, (2, 2), &voters).is_err());
}
