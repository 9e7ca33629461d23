//! Vote sets and quorum checks (PROTOCOL.md §4.1, §4.4): ZooKeeper's
//! `recvset` / `outofelection` maps, `Vote.equals` and `getVoteTracker` /
//! `hasAllQuorums`, and `checkLeader` (here [`leader_ok`]).

use std::collections::BTreeMap;

use crate::config::QuorumVerifier;
use crate::wire::ServerState;

use super::vote::Vote;

/// A vote as the tally stores it: the vote plus what ZooKeeper's equality
/// rule looks at (the sender's round, state and notification version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TallyVote {
    /// The vote itself.
    pub vote: Vote,
    /// The round (electionEpoch) the vote was cast in.
    pub election_epoch: i64,
    /// The sender's state when it cast the vote.
    pub state: ServerState,
    /// The notification version as ZooKeeper 3.8 reads it (0 for 28/36/40
    /// byte bodies).
    pub version: i32,
}

impl TallyVote {
    /// A LOOKING vote of round `election_epoch`, version 0: what the
    /// LOOKING branch of the election loop records.
    pub fn looking(vote: Vote, election_epoch: i64) -> Self {
        TallyVote {
            vote,
            election_epoch,
            state: ServerState::Looking,
            version: 0,
        }
    }

    /// ZooKeeper's vote equality, used for counting (PROTOCOL.md §4.1).
    ///
    /// If either side is LOOKING everything must match: a LOOKING vote is a
    /// live proposal of one round, and mixing rounds would let stale votes
    /// form a quorum. Between settled (FOLLOWING/LEADING) votes only the
    /// leader matters, plus the peer epoch when both sides speak the same
    /// notification generation: 3.4-era bodies carry no trustworthy epoch
    /// for the settled leader, so a mixed pair compares leaders only.
    pub fn matches(&self, other: &TallyVote) -> bool {
        if self.state == ServerState::Looking || other.state == ServerState::Looking {
            return self.vote == other.vote && self.election_epoch == other.election_epoch;
        }
        if (self.version > 0) != (other.version > 0) {
            self.vote.leader == other.vote.leader
        } else {
            self.vote.leader == other.vote.leader && self.vote.peer_epoch == other.vote.peer_epoch
        }
    }
}

/// Votes by sender sid (`recvset` or `outofelection`). Ordered so that
/// iteration, and therefore everything derived from it, is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VoteSet {
    votes: BTreeMap<i64, TallyVote>,
}

impl VoteSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `sid`'s latest vote, replacing any earlier one.
    pub fn insert(&mut self, sid: i64, vote: TallyVote) {
        self.votes.insert(sid, vote);
    }

    /// `sid`'s recorded vote.
    pub fn get(&self, sid: i64) -> Option<&TallyVote> {
        self.votes.get(&sid)
    }

    /// Forgets `sid`'s vote.
    pub fn remove(&mut self, sid: i64) {
        self.votes.remove(&sid);
    }

    /// True if `sid` has a recorded vote.
    pub fn contains(&self, sid: i64) -> bool {
        self.votes.contains_key(&sid)
    }

    /// Forgets every vote (a new round).
    pub fn clear(&mut self) {
        self.votes.clear();
    }

    /// Number of recorded votes.
    pub fn len(&self) -> usize {
        self.votes.len()
    }

    /// True if no vote is recorded.
    pub fn is_empty(&self) -> bool {
        self.votes.is_empty()
    }

    /// All recorded votes, ascending sid.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &TallyVote)> {
        self.votes.iter().map(|(s, v)| (*s, v))
    }

    /// The sids whose vote [matches](TallyVote::matches) `target`.
    pub fn agreeing(&self, target: &TallyVote) -> impl Iterator<Item = i64> + '_ {
        let target = *target;
        self.votes
            .iter()
            .filter(move |(_, v)| v.matches(&target))
            .map(|(s, _)| *s)
    }

    /// True if the sids agreeing with `target` form a quorum of `verifier`
    /// (ZooKeeper: `getVoteTracker(votes, target).hasAllQuorums()`).
    /// Non-voters in the set never count: the verifier ignores them.
    pub fn has_quorum(&self, target: &TallyVote, verifier: &QuorumVerifier) -> bool {
        verifier.contains_quorum(self.agreeing(target))
    }
}

/// ZooKeeper's `checkLeader`: may a quorum on `leader` in round
/// `election_epoch` be acted on?
///
/// For another server, only if that server itself said LEADING in `votes`:
/// otherwise a newcomer could follow a leader that never took the role (a
/// stale quorum of FOLLOWING votes for a dead server). For myself, only if
/// the votes come from my current round: FOLLOWING votes for me from an older
/// round describe a leadership I already gave up (ZooKeeper's
/// FLEBackwardElectionRoundTest).
pub fn leader_ok(
    votes: &VoteSet,
    leader: i64,
    election_epoch: i64,
    my_sid: i64,
    logical_clock: i64,
) -> bool {
    if leader == my_sid {
        logical_clock == election_epoch
    } else {
        votes
            .get(leader)
            .is_some_and(|v| v.state == ServerState::Leading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled(
        leader: i64,
        zxid: i64,
        round: i64,
        epoch: i64,
        st: ServerState,
        ver: i32,
    ) -> TallyVote {
        TallyVote {
            vote: Vote::new(leader, zxid, epoch),
            election_epoch: round,
            state: st,
            version: ver,
        }
    }

    use ServerState::{Following, Leading};

    #[test]
    fn settled_votes_count_together_across_zxids_and_rounds() {
        let q = QuorumVerifier::majority([1, 2, 3]);
        let mut ooe = VoteSet::new();
        ooe.insert(1, settled(3, 0x10, 1, 1, Following, 0));
        ooe.insert(3, settled(3, 0x99, 7, 1, Leading, 0));
        let target = settled(3, 0x55, 4, 1, Following, 0);
        assert!(ooe.has_quorum(&target, &q));
        assert!(leader_ok(&ooe, 3, 4, 2, 1));
    }

    #[test]
    fn settled_votes_with_same_version_class_need_equal_peer_epoch() {
        let q = QuorumVerifier::majority([1, 2, 3]);
        let mut ooe = VoteSet::new();
        ooe.insert(1, settled(3, 0, 1, 1, Following, 2));
        ooe.insert(3, settled(3, 0, 1, 2, Leading, 2));
        assert!(!ooe.has_quorum(&settled(3, 0, 1, 2, Following, 2), &q));
        // Mixed versions (one 3.4-era, one 3.5+) compare leaders only.
        ooe.insert(1, settled(3, 0, 1, 1, Following, 0));
        assert!(ooe.has_quorum(&settled(3, 0, 1, 2, Following, 2), &q));
    }

    #[test]
    fn looking_votes_must_match_exactly() {
        let q = QuorumVerifier::majority([1, 2, 3]);
        let target = TallyVote::looking(Vote::new(3, 5, 1), 2);
        for (i, other) in [
            TallyVote::looking(Vote::new(3, 6, 1), 2),
            TallyVote::looking(Vote::new(3, 5, 2), 2),
            TallyVote::looking(Vote::new(2, 5, 1), 2),
            // A stale round: same vote, older round, is no quorum.
            TallyVote::looking(Vote::new(3, 5, 1), 1),
            // A settled vote compared with a LOOKING one: exact too.
            settled(3, 5, 1, 1, Following, 2),
        ]
        .into_iter()
        .enumerate()
        {
            let mut set = VoteSet::new();
            set.insert(1, target);
            set.insert(2, other);
            assert!(!set.has_quorum(&target, &q), "case {i}: {other:?}");
        }
        let mut set = VoteSet::new();
        set.insert(1, target);
        set.insert(2, settled(3, 5, 2, 1, Following, 2));
        assert!(
            set.has_quorum(&target, &q),
            "exact match across states counts"
        );
    }

    #[test]
    fn non_voters_never_count() {
        let q = QuorumVerifier::majority([1, 2, 3]);
        let target = TallyVote::looking(Vote::new(3, 0, 0), 1);
        let mut set = VoteSet::new();
        set.insert(3, target);
        set.insert(100, target);
        set.insert(101, target);
        assert!(!set.has_quorum(&target, &q));
    }

    #[test]
    fn leader_ok_rules() {
        let mut set = VoteSet::new();
        set.insert(1, settled(3, 0, 1, 1, Following, 0));
        assert!(!leader_ok(&set, 3, 1, 2, 1), "leader 3 never said LEADING");
        set.insert(3, settled(3, 0, 1, 1, Following, 0));
        assert!(!leader_ok(&set, 3, 1, 2, 1), "FOLLOWING is not LEADING");
        set.insert(3, settled(3, 0, 1, 1, Leading, 0));
        assert!(leader_ok(&set, 3, 1, 2, 1));
        // Votes for me: only from my current round.
        assert!(leader_ok(&set, 2, 4, 2, 4));
        assert!(!leader_ok(&set, 2, 3, 2, 4));
        assert!(!leader_ok(&set, 2, 5, 2, 4));
    }
}
