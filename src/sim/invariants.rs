//! The simulator's safety and liveness properties, one function each.
//!
//! Every function takes plain data, returns `Err(Violation)` when the
//! property fails, and is called by the simulator after the step that could
//! break it (most of them after every step). Sources:
//!
//! * ZooKeeper's TLA+ specifications in `zookeeper-specifications/`
//!   (`system-spec/zk-3.7/FastLeaderElection.tla` for the election loop,
//!   `ZkV3_7_0.tla` and `zab/Zab.tla` for `Leadership1`/`Leadership2`);
//! * PROTOCOL.md §4 (FLE), §5 (epoch files) and §6 (Zab subset).
//!
//! The vote order used here ([`beats`]) is written from the spec on purpose
//! and does not call `election::total_order`: a broken production order must
//! not be able to hide behind itself.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::config::QuorumVerifier;
use crate::election::{Decision, DownEvidence, Vote};
use crate::wire::ServerState;

/// One broken property: which one, when (virtual time), and the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The invariant's function name in this module.
    pub invariant: &'static str,
    /// Virtual time of the step that broke it.
    pub at: Duration,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:>10.6}s] {}: {}",
            self.at.as_secs_f64(),
            self.invariant,
            self.detail
        )
    }
}

fn violation(invariant: &'static str, at: Duration, detail: String) -> Result<(), Violation> {
    Err(Violation {
        invariant,
        at,
        detail,
    })
}

/// The spec's vote order (PROTOCOL.md §4.1; `TotalOrderPredicate` in
/// FastLeaderElection.tla, plus the weight rule of 3.8's
/// `totalOrderPredicate`): `a` beats `b` if `a`'s candidate has non-zero
/// weight and `(peerEpoch, zxid, sid)` of `a` is lexicographically larger.
pub fn beats(a: &Vote, b: &Vote, verifier: &QuorumVerifier) -> bool {
    verifier.weight(a.leader) > 0
        && (a.peer_epoch, a.zxid, a.leader) > (b.peer_epoch, b.zxid, b.leader)
}

/// (a) A peer never decides for a vote that a vote it heard in the deciding
/// round beats.
///
/// Source: FastLeaderElection.tla, `HandleNotmsg`: within a round the
/// proposal only moves to votes for which `TotalOrderPredicate` holds, a
/// round jump restarts from `max(n.vote, self vote)`, and `WaitNewNotmsg`
/// returns to the loop on any better vote before deciding. Hence, for the
/// decisions that end the LOOKING loop on the proposal (finalize wait, the
/// `fast_decide` shortcuts, a quorum reached on a LOOKING vote), the decided
/// vote is at least every LOOKING vote of that round from a voter, and at
/// least the peer's own initial vote `(sid, last zxid, currentEpoch)`.
/// `best_heard` is the best such vote by [`beats`] (with its sender).
/// Decisions that join a settled ensemble on FOLLOWING/LEADING votes are
/// exempt: they follow the quorum that already formed, whatever it chose.
pub fn decision_not_beaten(
    at: Duration,
    me: i64,
    decision: &Decision,
    best_heard: Option<(i64, Vote)>,
    verifier: &QuorumVerifier,
) -> Result<(), Violation> {
    if let Some((from, v)) = best_heard {
        if beats(&v, &decision.vote, verifier) {
            return violation(
                "decision_not_beaten",
                at,
                format!(
                    "sid {me} decided {} in round {} but heard the better {} from sid {from} in that round",
                    decision.vote, decision.election_epoch, v
                ),
            );
        }
    }
    Ok(())
}

/// (g) A decision is not beaten by a vote from a voter that could reach the
/// decider at that moment: the `fast_decide` rule (b) only stops waiting
/// for voters that really could not.
///
/// Source: ZooKeeper's finalize wait (FastLeaderElection.tla,
/// `WaitNewNotmsg`; PROTOCOL.md §4.4) keeps listening for a better vote
/// from every voter for `finalizeWait`; zkfle's rule (b) ends that wait
/// early when every voter not yet heard in the round is Down
/// (`election::FleConfig::fast_decide`, `election::driver`'s Down rule), on
/// the argument that a Down voter cannot deliver a vote at all. The rule
/// is safe exactly when that argument holds, which is what this checks
/// against the simulator's ground truth rather than against the driver's
/// own bookkeeping.
///
/// Definition: `claims` lists, for a decision made by rule (b), every voter
/// the deciding peer's driver counted Down, with the evidence it held
/// (`DownEvidence::at`, the virtual time at which the driver got the fact:
/// the refused or timed-out dial, the role end for a silent leader) and
/// `cut`: whether, at that time, the voter's process was not running, or a
/// partition cut the voter and the decider apart in either direction. A
/// claim with `cut == false` is a violation: the driver stopped waiting
/// for a voter that, on the evidence it held, could have reached it. (A
/// voter that came back *after* the evidence, a restart or a healed
/// partition the driver has not heard of yet, is the ordinary race of any
/// failure detector and is not flagged; it catches up through its own
/// dial or the next election, as with ZooKeeper's timeouts.)
pub fn down_voters_were_cut(
    at: Duration,
    me: i64,
    decision: &Decision,
    claims: &[(i64, DownEvidence, bool)],
) -> Result<(), Violation> {
    for &(v, evidence, cut) in claims {
        if !cut {
            return violation(
                "down_voters_were_cut",
                at,
                format!(
                    "sid {me} decided {} in round {} counting sid {v} Down ({:?} at {:.6}s), but sid {v} was alive and reachable from it then",
                    decision.vote,
                    decision.election_epoch,
                    evidence.reason,
                    evidence.at.as_secs_f64()
                ),
            );
        }
    }
    Ok(())
}

/// (f) Every decision is backed by a quorum of the real configuration.
///
/// Source: FastLeaderElection.tla `HasQuorums`/`VoteSet` (LOOKING path) and
/// `ReceivedFollowingAndLeadingNotification` (settled path): a server leaves
/// LOOKING only when a quorum's recorded votes name the decided leader.
/// `supporters` is every voter that, in the decider's lifetime, sent it a
/// LOOKING vote of the deciding round or a FOLLOWING/LEADING vote of any
/// round naming the decided leader, plus the decider itself. Any vote, not
/// only the latest: the finalize wait drops non-better notifications
/// without recording them, so a correct tally may still hold an older one.
/// That is a superset of what any correct tally can count, so this is a
/// necessary condition and never a false alarm.
pub fn decision_has_quorum(
    at: Duration,
    me: i64,
    decision: &Decision,
    supporters: &[i64],
    verifier: &QuorumVerifier,
) -> Result<(), Violation> {
    if !verifier.contains_quorum(supporters.iter().copied()) {
        return violation(
            "decision_has_quorum",
            at,
            format!(
                "sid {me} decided leader {} in round {} with only {:?} naming it: not a quorum",
                decision.vote.leader, decision.election_epoch, supporters
            ),
        );
    }
    Ok(())
}

/// (b) Agreement, stated as what actually holds under partitions.
///
/// FLE alone does *not* guarantee that all peers deciding in one round pick
/// the same leader: a better vote delayed past `finalizeWait`, or lost with
/// a connection, lets a minority decide differently (PROTOCOL.md §4.4:
/// "stale votes can still elect a dead server"). What holds, and what this
/// checks at every establishment, is Zab's `Leadership2` (ZkV3_7_0.tla /
/// Zab.tla: "there is at most one established leader for a certain epoch"):
/// `epoch_leaders` maps each established epoch to its leader, and a second
/// leader establishing the same epoch is a violation. Peers that decided in
/// the same round and then served under the same epoch therefore agree; see
/// [`synced_peers_agree`] for the per-step half and [`calm_round_agrees`]
/// for the fault-free case, where FLE alone must agree.
pub fn one_leader_per_epoch(
    at: Duration,
    epoch_leaders: &BTreeMap<i64, i64>,
    epoch: i64,
    leader: i64,
) -> Result<(), Violation> {
    match epoch_leaders.get(&epoch) {
        Some(&other) if other != leader => violation(
            "one_leader_per_epoch",
            at,
            format!(
                "sid {leader} established epoch {epoch}, which sid {other} already established"
            ),
        ),
        _ => Ok(()),
    }
}

/// (b, per step) Every peer serving under an established epoch (a leader
/// that established it, a follower or observer synced to it) names the
/// epoch's one leader (`Leadership1` of ZkV3_7_0.tla, seen from the
/// learners). `serving` yields `(sid, leader it serves, epoch)`.
pub fn synced_peers_agree(
    at: Duration,
    epoch_leaders: &BTreeMap<i64, i64>,
    serving: impl Iterator<Item = (i64, i64, i64)>,
) -> Result<(), Violation> {
    for (sid, leader, epoch) in serving {
        match epoch_leaders.get(&epoch) {
            Some(&l) if l == leader => {}
            other => {
                return violation(
                    "synced_peers_agree",
                    at,
                    format!(
                    "sid {sid} serves leader {leader} in epoch {epoch}, whose leader is {other:?}"
                ),
                )
            }
        }
    }
    Ok(())
}

/// (b, fault-free) With every peer up from time 0, no link failure, no
/// partition and every message delay below `finalizeWait`, FLE alone must
/// agree: every decision, in every round, names the best initial vote among
/// the voters (the maximum of `TotalOrderPredicate` over their self votes
/// with non-zero weight). This is the strong form of "all peers that decide
/// in the same round decide the same leader".
///
/// Usually that is round 1, but not always, and the simulator found why
/// (seed 1296956, 8 peers): a zero-weight voter whose own log is the
/// longest never adopts anyone's vote (the weight rule only rejects
/// *incoming* zero-weight candidates, so nobody beats its self vote in its
/// own eyes), is refused by the elected leader as "ahead of the leader",
/// re-enters LOOKING with the minimum poll interval, and its re-sends, none
/// of them better, keep restarting other voters' finalize waits (ZooKeeper
/// restarts `finalizeWait` on every non-better notification). The leader
/// then misses initLimit and the same leader wins round 2. Hence no round
/// condition here.
pub fn calm_round_agrees(
    at: Duration,
    me: i64,
    decision: &Decision,
    best_initial: &Vote,
) -> Result<(), Violation> {
    if decision.vote.leader != best_initial.leader {
        return violation(
            "calm_round_agrees",
            at,
            format!(
                "fault-free schedule: sid {me} decided {} in round {}, expected leader {}",
                decision.vote, decision.election_epoch, best_initial.leader
            ),
        );
    }
    Ok(())
}

/// (c) Zero-weight voters, observers and strangers are never elected, and
/// the decided role matches the decided leader.
///
/// Source: PROTOCOL.md §4.1 ("zero-weight voters never win", a non-voter
/// proposes `i64::MIN`), ZooKeeper's FLEZeroWeightTest (PROTOCOL.md §9.1
/// item 16), and `setPeerState` in FastLeaderElection (LEADING iff the
/// leader is me, else FOLLOWING for participants and OBSERVING for
/// observers).
pub fn only_candidates_elected(
    at: Duration,
    me: i64,
    i_am_observer: bool,
    decision: &Decision,
    verifier: &QuorumVerifier,
) -> Result<(), Violation> {
    let leader = decision.vote.leader;
    if verifier.weight(leader) == 0 {
        let what = if verifier.is_voter(leader) {
            "a zero-weight voter"
        } else {
            "not a voter (observer or stranger)"
        };
        return violation(
            "only_candidates_elected",
            at,
            format!("sid {me} decided leader {leader}, which is {what}"),
        );
    }
    let expected = if leader == me {
        ServerState::Leading
    } else if i_am_observer {
        ServerState::Observing
    } else {
        ServerState::Following
    };
    if decision.state != expected || (i_am_observer && leader == me) {
        return violation(
            "only_candidates_elected",
            at,
            format!(
                "sid {me} (observer: {i_am_observer}) decided {} for leader {leader}, expected {expected}",
                decision.state
            ),
        );
    }
    Ok(())
}

/// (d) The logical clock never goes backwards within a process lifetime.
///
/// Source: PROTOCOL.md §4.2 (the clock starts at 0 per process and is
/// incremented when each election starts), FastLeaderElection.tla
/// (`logicalClock` only grows in `ZabTimeout` and on a higher-round LOOKING
/// notification). One documented exception, taken from the spec itself:
/// joining a settled ensemble on out-of-election votes *sets* the clock to
/// the ensemble's round (FastLeaderElection.tla,
/// `ReceivedFollowingAndLeadingNotification`, "leave with condition 2":
/// `logicalClock' = n.mround`; Java `logicalclock.set(n.electionEpoch)`),
/// which can be lower. `join_round` is that round when this step's decision
/// was such a join; only then may the clock drop, and only to it.
pub fn clock_monotonic(
    at: Duration,
    me: i64,
    before: i64,
    after: i64,
    join_round: Option<i64>,
) -> Result<(), Violation> {
    if after >= before || join_round == Some(after) {
        return Ok(());
    }
    violation(
        "clock_monotonic",
        at,
        format!("sid {me}: logical clock went from {before} back to {after}"),
    )
}

/// (e) Liveness: once the network has healed and stays healed (no crash,
/// partition or link failure after `healed_at`), the live peers, which
/// include a quorum, converge within `bound` of virtual time: one live
/// leader has established an epoch and every other live peer follows
/// (observes) it, synced to that epoch. `converged_at` is the first step at
/// which that held, if any. The bound is derived from the timers; see
/// `Params::liveness_bound` in the simulator.
pub fn converges_after_heal(
    at: Duration,
    healed_at: Duration,
    bound: Duration,
    converged_at: Option<Duration>,
    state: &str,
) -> Result<(), Violation> {
    match converged_at {
        Some(t) if t <= healed_at + bound => Ok(()),
        Some(t) => violation(
            "converges_after_heal",
            at,
            format!(
                "converged {:?} after the heal, bound {:?}",
                t - healed_at,
                bound
            ),
        ),
        None => violation(
            "converges_after_heal",
            at,
            format!("no convergence within {bound:?} of the heal at {healed_at:?}; {state}"),
        ),
    }
}

#[cfg(test)]
mod tests {
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
}
