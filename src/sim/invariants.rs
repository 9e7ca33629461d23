//! The simulator's safety and liveness properties, one function each.
//!
//! Every function takes plain data, returns `Err(Violation)` when the
//! property fails, and is called by the simulator after the step that could
//! break it (many after every step). The data comes from the simulator's
//! ground truth (the simulated disks, the network's partitions, the
//! processes' lifetimes) or from the Zab machines' own state, never from
//! what a machine believes about another. Sources:
//!
//! * ZooKeeper's TLA+ specifications in `zookeeper-specifications/`
//!   (`system-spec/zk-3.7/FastLeaderElection.tla` for the election loop;
//!   `ZkV3_7_0.tla` and `protocol-spec/Zab.tla` for `Leadership1`,
//!   `Leadership2`, `PrefixConsistency`, `Integrity`, `PrimaryIntegrity`
//!   and the `stateInconsistent`/`commitInconsistent` checks);
//! * the Zab paper (Junqueira, Reed, Serafini, "Zab: High-performance
//!   broadcast for primary-backup systems", DSN 2011), and Medeiros,
//!   "ZooKeeper's atomic broadcast protocol: Theory and practice" (2012),
//!   for acceptedEpoch/currentEpoch;
//! * PROTOCOL.md §4 (FLE), §5 (epoch files), §6 (Zab) and §6.7a (the sync
//!   order of a replicated log, after ZOOKEEPER-3911, 4643, 4646, 4685,
//!   4394, 4925, 5094), and ZAB_SPEC.md's rules D1–D7 and L1–L5.
//!
//! The vote order used here ([`beats`]) is written from the spec on purpose
//! and does not call `election::total_order`: a broken production order must
//! not be able to hide behind itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use crate::config::QuorumVerifier;
use crate::election::{Decision, DownEvidence, Vote};
use crate::logstore::LogError;
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

/// (r1) A peer that resigned its leadership is not elected before its
/// hold-off ends: it decides nothing naming itself (a decision for itself
/// is LEADING) until then.
///
/// Source: the contract of `PeerHandle::resign` ("does not lead again
/// during the hold-off") and `election::driver`'s "Resigning" rules: a
/// non-candidate never proposes itself and ignores votes naming it.
pub fn resigned_peer_stays_out(
    at: Duration,
    me: i64,
    decision: &Decision,
    hold_off_until: Duration,
) -> Result<(), Violation> {
    if at < hold_off_until && decision.vote.leader == me {
        return violation(
            "resigned_peer_stays_out",
            at,
            format!(
                "sid {me} resigned until {hold_off_until:?} but decided {} {} in round {}",
                decision.state, decision.vote, decision.election_epoch
            ),
        );
    }
    Ok(())
}

/// (r2) During its hold-off a resigned peer's decision on the LOOKING path
/// names a candidate whose history `(peerEpoch, zxid)` is at least its own:
/// the rule that keeps a resignation from handing the quorum to a peer
/// that lacks entries the resigned leader committed (a quorum that elects
/// with it elects someone holding everything it held).
///
/// Source: FLE's argument that the elected vote is at least the initial
/// vote of every member of the quorum that agreed on it (PROTOCOL.md §4.1),
/// which a non-candidate keeps only through this floor
/// (`election::Fle::set_candidate`). Joins of a settled ensemble are
/// exempt, as in [`decision_not_beaten`].
pub fn resigned_vote_keeps_history(
    at: Duration,
    me: i64,
    decision: &Decision,
    own: &Vote,
) -> Result<(), Violation> {
    let d = &decision.vote;
    if (d.peer_epoch, d.zxid) < (own.peer_epoch, own.zxid) {
        return violation(
            "resigned_vote_keeps_history",
            at,
            format!(
                "resigned sid {me} with history {own} decided {d} in round {}",
                decision.election_epoch
            ),
        );
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
/// partition cut the voter and the decider apart in either direction. For
/// a leader left for silence the evidence is the whole silent stretch
/// (syncLimit ticks before the role end): a cut that healed while the last
/// held PINGs were still on their way explains the silence as well. A
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
/// LOOKING or FOLLOWING/LEADING vote of the deciding round naming the
/// decided leader (for a join of a settled ensemble, a FOLLOWING/LEADING
/// vote of any round: ZooKeeper's out-of-election tally ignores rounds),
/// plus the decider itself only if its own vote names that leader. Any
/// vote, not only the latest: the finalize wait drops non-better
/// notifications without recording them, so a correct tally may still hold
/// an older one. That is a superset of what any correct tally can count, so
/// this is a necessary condition and never a false alarm.
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
/// Zab.tla: "there is at most one established leader for a certain epoch"),
/// taken from the Zab machines' own state: `epoch_leaders` maps each epoch
/// a leader machine reported `Established` for to that leader, and a second
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
/// pause, partition or link failure after `healed_at`), the live peers,
/// which include a quorum, converge within `bound` of virtual time: one
/// live leader's Zab machine has established an epoch and every other live
/// peer's learner follows (observes) it in the broadcast phase. One
/// exception is Zab's own (and ZooKeeper's): a peer whose disk holds an
/// acceptedEpoch above the leader's epoch (it accepted, or itself proposed,
/// an epoch that never got established) must refuse that leader
/// (`EpochRejected`) until the next election; it is not waited for (the
/// simulator found this state, 1 schedule in ~10,000). `converged_at` is the first step at
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

/// (b, per step) At most one live leader is established in any epoch at
/// any moment, read from the Zab machines' own state (`is_established`,
/// `epoch`). Source: `Leadership1` of ZkV3_7_0.tla / protocol-spec
/// Zab.tla. `established` lists `(sid, epoch)` of every live established
/// leader.
pub fn one_established_leader_per_epoch(
    at: Duration,
    established: &[(i64, i64)],
) -> Result<(), Violation> {
    for (k, &(a, e)) in established.iter().enumerate() {
        if let Some(&(b, _)) = established[k + 1..].iter().find(|(_, f)| *f == e) {
            return violation(
                "one_established_leader_per_epoch",
                at,
                format!("sids {a} and {b} are both established leaders of epoch {e}"),
            );
        }
    }
    Ok(())
}

/// An established leader had a quorum ACK NEWLEADER, and each of those
/// peers (the leader included) had durably persisted currentEpoch = that
/// epoch. `disks` pairs each sid of the machine's `established_by` with
/// its simulated disk's durable currentEpoch at the moment the machine
/// reported `Established`.
///
/// Source: Zab paper, phase 2 (a follower accepts NEWLEADER by setting
/// its current epoch, then acknowledges; the leader commits the new
/// epoch's history only after a quorum acknowledged), PROTOCOL.md §5
/// (currentEpoch is written before the ACK) and §6.3, ZAB_SPEC D4.
pub fn established_by_durable_quorum(
    at: Duration,
    leader: i64,
    epoch: i64,
    disks: &[(i64, i64)],
    verifier: &QuorumVerifier,
) -> Result<(), Violation> {
    let sids: Vec<i64> = disks.iter().map(|d| d.0).collect();
    if !sids.contains(&leader) || !verifier.contains_quorum(sids.iter().copied()) {
        return violation(
            "established_by_durable_quorum",
            at,
            format!("sid {leader} established epoch {epoch} with NEWLEADER ACKs from {sids:?}: not a quorum with the leader"),
        );
    }
    if let Some(&(s, cur)) = disks.iter().find(|d| d.1 < epoch) {
        return violation(
            "established_by_durable_quorum",
            at,
            format!("sid {leader} established epoch {epoch} counting sid {s}'s NEWLEADER ACK, but sid {s}'s disk holds currentEpoch {cur}"),
        );
    }
    Ok(())
}

/// acceptedEpoch ≥ currentEpoch on every disk, after every step (the
/// durable files, not what a machine believes).
///
/// Source: PROTOCOL.md §5 ("acceptedEpoch < currentEpoch is fatal" at
/// startup: ZooKeeper refuses to start on such a disk); Medeiros 2012: a
/// NEWLEADER is only accepted for an epoch already accepted.
pub fn accepted_ge_current(
    at: Duration,
    sid: i64,
    accepted: i64,
    current: i64,
) -> Result<(), Violation> {
    if accepted < current {
        return violation(
            "accepted_ge_current",
            at,
            format!("sid {sid}'s disk holds acceptedEpoch {accepted} < currentEpoch {current}"),
        );
    }
    Ok(())
}

/// A learner never acknowledges (ACKEPOCH, the NEWLEADER ACK) an epoch
/// below the acceptedEpoch on its disk.
///
/// Source: Zab paper phase 1 (a follower accepts NEWEPOCH(e') only if e'
/// ≥ its acceptedEpoch, else it goes back to election); ZkV3_7_0.tla
/// `FollowerProcessLEADERINFO` (`epochOk`); PROTOCOL.md §6.3.
pub fn epoch_ack_not_below_accepted(
    at: Duration,
    sid: i64,
    what: &str,
    epoch: i64,
    accepted: i64,
) -> Result<(), Violation> {
    if epoch < accepted {
        return violation(
            "epoch_ack_not_below_accepted",
            at,
            format!("sid {sid} sent {what} for epoch {epoch} below its acceptedEpoch {accepted}"),
        );
    }
    Ok(())
}

/// A learner's epoch acknowledgement is a durable promise: ACKEPOCH for
/// epoch e only once acceptedEpoch ≥ e is on its disk, the NEWLEADER ACK
/// only once currentEpoch ≥ e is. `durable` is the disk's file for that
/// packet.
///
/// Source: PROTOCOL.md §5 (acceptedEpoch on LEADERINFO, currentEpoch on
/// NEWLEADER, "before ACKing it"), ZAB_SPEC L1/L2 ("ACKEPOCH only after its
/// completion", "after its completion, ACK(NEWLEADER)").
pub fn epoch_ack_durable(
    at: Duration,
    sid: i64,
    what: &str,
    epoch: i64,
    durable: i64,
) -> Result<(), Violation> {
    if durable < epoch {
        return violation(
            "epoch_ack_durable",
            at,
            format!("sid {sid} sent {what} for epoch {epoch} while its disk holds {durable}"),
        );
    }
    Ok(())
}

/// Entries with the same zxid are identical, on every disk and in the
/// committed history (compared by hash).
///
/// Source: protocol-spec Zab.tla `PrefixConsistency`/`Agreement` and
/// ZkV3_7_0.tla `proposalInconsistent`; a zxid names one proposal of one
/// leader (`Leadership2`).
pub fn same_zxid_same_entry(
    at: Duration,
    sid: i64,
    zxid: i64,
    known: u64,
    hash: u64,
) -> Result<(), Violation> {
    if known != hash {
        return violation(
            "same_zxid_same_entry",
            at,
            format!("sid {sid} holds zxid {zxid:#x} with other data than an earlier copy"),
        );
    }
    Ok(())
}

/// A peer's currentEpoch becomes e only once its log durably holds the
/// whole history the leader of e started from. `missing` is the first
/// zxid of that history the disk lacks when currentEpoch e became durable.
///
/// Source: PROTOCOL.md §6.7a and ZAB_SPEC L2 (the learner makes the synced
/// history durable, then persists currentEpoch, then ACKs), the Zab paper's
/// phase 2 (a follower accepts the leader's initial history with
/// NEWLEADER); ZOOKEEPER-4643 is what breaking it costs: the next vote
/// carries the new epoch for a log that lacks the history.
pub fn current_epoch_implies_history(
    at: Duration,
    sid: i64,
    epoch: i64,
    missing: Option<i64>,
) -> Result<(), Violation> {
    if let Some(z) = missing {
        return violation(
            "current_epoch_implies_history",
            at,
            format!("sid {sid}'s currentEpoch became {epoch}, but its log does not durably hold {z:#x} of that epoch's leader's history"),
        );
    }
    Ok(())
}

/// Every committed entry is in every later established leader's log:
/// every entry committed in an epoch below the new leader's. `missing` is
/// the first such zxid the leader's disk lacks when its machine reports
/// `Established`.
///
/// Source: protocol-spec Zab.tla `PrimaryIntegrity`, the Zab paper's
/// primary order and integrity properties; DESIGN.md ("no acknowledged
/// write lost").
pub fn committed_in_later_leader(
    at: Duration,
    sid: i64,
    epoch: i64,
    missing: Option<i64>,
) -> Result<(), Violation> {
    if let Some(z) = missing {
        return violation(
            "committed_in_later_leader",
            at,
            format!("sid {sid} established epoch {epoch} without the committed entry {z:#x}"),
        );
    }
    Ok(())
}

/// A write is acknowledged only once a quorum, the leader included, has it
/// durable. `holders` are the sids whose simulated disk durably holds the
/// zxid at the acknowledgement.
///
/// Source: ZAB_SPEC D5, DESIGN.md ("a write is committed and acknowledged
/// only when a quorum including the leader has it durable"), the Zab
/// paper's broadcast phase (COMMIT after a quorum of ACKs, each sent after
/// the proposal is logged).
pub fn acknowledged_write_durable(
    at: Duration,
    leader: i64,
    zxid: i64,
    holders: &[i64],
    verifier: &QuorumVerifier,
) -> Result<(), Violation> {
    if !holders.contains(&leader) || !verifier.contains_quorum(holders.iter().copied()) {
        return violation(
            "acknowledged_write_durable",
            at,
            format!("sid {leader} acknowledged {zxid:#x} while only {holders:?} have it on disk"),
        );
    }
    Ok(())
}

/// A state machine applies only committed entries, in zxid order, without
/// holes: `zxid` (with data hash `hash`) is committed, and the committed
/// entry before it is the one applied last (`prev`).
///
/// Source: ZkV3_7_0.tla `commitInconsistent`, protocol-spec Zab.tla
/// `Integrity`/`TotalOrder`; ZOOKEEPER-4394 (uncommitted proposals applied
/// during sync) and ZOOKEEPER-4925 (a hole in the committed log).
pub fn applied_only_committed_in_order(
    at: Duration,
    sid: i64,
    committed: &BTreeMap<i64, u64>,
    prev: i64,
    zxid: i64,
    hash: u64,
) -> Result<(), Violation> {
    match committed.get(&zxid) {
        None => violation(
            "applied_only_committed_in_order",
            at,
            format!("sid {sid} applied {zxid:#x}, which is not committed"),
        ),
        Some(&h) if h != hash => violation(
            "applied_only_committed_in_order",
            at,
            format!("sid {sid} applied {zxid:#x} with other data than was committed"),
        ),
        Some(_) => {
            let before = committed.range(..zxid).next_back().map_or(0, |(z, _)| *z);
            if before != prev {
                return violation(
                    "applied_only_committed_in_order",
                    at,
                    format!("sid {sid} applied {zxid:#x} after {prev:#x}, but the committed entry before it is {before:#x}"),
                );
            }
            Ok(())
        }
    }
}

/// The applied state never runs ahead of the local durable log: the
/// applied zxid is at most the log's last durable zxid (a snapshot
/// counting).
///
/// Source: ZAB_SPEC L3 and the zab module docs ("the applied state never
/// runs ahead of the log"); ZOOKEEPER-5094 (state left ahead of the log
/// after an interrupted TRUNC).
pub fn applied_not_ahead_of_log(
    at: Duration,
    sid: i64,
    applied: i64,
    durable: i64,
) -> Result<(), Violation> {
    if applied > durable {
        return violation(
            "applied_not_ahead_of_log",
            at,
            format!("sid {sid} applied {applied:#x} but its log is durable only to {durable:#x}"),
        );
    }
    Ok(())
}

/// A log action the machines ask for is one the `LogStore` contract
/// accepts (appends in zxid order, no truncation below the snapshot, a
/// snapshot not ahead of the log).
///
/// Source: `logstore`'s contract (`LogStore::append`, `truncate_after`,
/// `save_snapshot`), ZAB_SPEC "Persistence is requested, never assumed".
pub fn log_request_valid(
    at: Duration,
    sid: i64,
    what: &str,
    result: Result<(), LogError>,
) -> Result<(), Violation> {
    match result {
        Ok(()) => Ok(()),
        Err(e) => violation(
            "log_request_valid",
            at,
            format!("sid {sid}: the log refused to {what}: {e}"),
        ),
    }
}

/// No acknowledged write is lost: at the end, the converged leader's log
/// durably holds every write a leader acknowledged (`holds(zxid)`).
///
/// Source: issue 14 ("no acknowledged write lost"), DESIGN.md's ordering
/// rules; the end-to-end form of [`committed_in_later_leader`].
pub fn no_lost_write(
    at: Duration,
    leader: i64,
    acked: &[(i64, u8, u64)],
    holds: impl Fn(i64) -> bool,
) -> Result<(), Violation> {
    if let Some(&(z, k, v)) = acked.iter().find(|a| !holds(a.0)) {
        return violation(
            "no_lost_write",
            at,
            format!("the acknowledged write {z:#x} (key {k} = {v:#x}) is not in the final leader sid {leader}'s log"),
        );
    }
    Ok(())
}

/// (b, untouched rounds) All looking-path decisions of one round by voters
/// name the same leader when no fault of the schedule has touched any of
/// the round's voters (the deciders and every voter whose vote of the
/// round they heard): no crash, restart, late start or pause, no partition
/// or connection reset, no vote slower than the finalize wait, at any time
/// before the decision. Not only during the round: a fault's effects
/// outlive it (Down evidence from a refused dial, votes queued behind a
/// partition, a leader left for silence), and each of those lets a round
/// split legitimately. The faults that are allowed are those that touch
/// other peers, typically the old leader's crash that starts the round.
/// `other` is an earlier decision of the round.
///
/// Source: FastLeaderElection.tla (the finalize wait returns to the loop
/// on any better vote, so two peers that hear each other's rounds in time
/// converge on one proposal); PROTOCOL.md §4.4. Touched rounds are exempt
/// for the reason [`one_leader_per_epoch`] gives.
pub fn untouched_round_agrees(
    at: Duration,
    me: i64,
    round: i64,
    leader: i64,
    other: (i64, i64),
    voters: &BTreeSet<i64>,
) -> Result<(), Violation> {
    if other.1 != leader {
        return violation(
            "untouched_round_agrees",
            at,
            format!(
                "round {round}, which no fault touched (voters {voters:?}): sid {me} decided leader {leader}, sid {} decided {}",
                other.0, other.1
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
#[path = "invariants_tests.rs"]
mod tests;
