//! Votes and their total order (PROTOCOL.md §4.1).
//!
//! A vote names the sid a server wants as leader together with the two
//! numbers that rank candidates: the peer epoch of the candidate's last
//! accepted leader and the zxid of its last logged transaction.

use crate::config::QuorumVerifier;

/// One vote: the proposed (or followed) leader and the data that ranks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vote {
    /// The sid voted for.
    pub leader: i64,
    /// The last logged zxid of that candidate, as the voter knows it.
    pub zxid: i64,
    /// The candidate's current epoch (`peerEpoch` in ZooKeeper).
    pub peer_epoch: i64,
}

impl Vote {
    /// A vote for `leader` with the given zxid and peer epoch.
    pub fn new(leader: i64, zxid: i64, peer_epoch: i64) -> Self {
        Vote {
            leader,
            zxid,
            peer_epoch,
        }
    }

    /// What a non-voting member proposes: `i64::MIN` everywhere, so it can
    /// never be preferred to any real candidate (ZooKeeper's observers send
    /// exactly this, and voters never count it because the sender is not a
    /// voter).
    pub fn observer() -> Self {
        Vote::new(i64::MIN, i64::MIN, i64::MIN)
    }

    /// The ranking key: `(peerEpoch, zxid, sid)`, compared
    /// lexicographically.
    pub fn rank(&self) -> (i64, i64, i64) {
        (self.peer_epoch, self.zxid, self.leader)
    }
}

impl std::fmt::Display for Vote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "(leader {}, zxid {:#x}, peerEpoch {:#x})",
            self.leader, self.zxid, self.peer_epoch
        )
    }
}

/// ZooKeeper's `totalOrderPredicate`: true when `new` should replace `cur`.
///
/// A candidate whose weight is 0 is never better, whatever its numbers: in
/// hierarchical configurations zero-weight members vote but must never lead
/// (ZooKeeper's FLEZeroWeightTest). Non-members also weigh 0 here, so a vote
/// for a stranger never displaces a real candidate. Otherwise
/// `(peerEpoch, zxid, sid)` decides: a newer epoch first, because a server
/// that accepted a later leader has seen history the others may lack; then
/// the longer log; then the larger sid only as the final tie-break.
pub fn total_order(new: &Vote, cur: &Vote, verifier: &QuorumVerifier) -> bool {
    if verifier.weight(new.leader) == 0 {
        return false;
    }
    new.rank() > cur.rank()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn maj3() -> QuorumVerifier {
        QuorumVerifier::majority([1, 2, 3])
    }

    #[test]
    fn lower_peer_epoch_never_wins() {
        let q = maj3();
        let low = Vote::new(3, 0x500, 1);
        let high = Vote::new(1, 0x100, 2);
        assert!(!total_order(&low, &high, &q));
        assert!(total_order(&high, &low, &q));
    }

    #[test]
    fn higher_peer_epoch_beats_higher_sid() {
        let q = maj3();
        assert!(total_order(&Vote::new(1, 0, 2), &Vote::new(3, 0, 1), &q));
        assert!(!total_order(&Vote::new(3, 0, 1), &Vote::new(1, 0, 2), &q));
    }

    #[test]
    fn higher_zxid_beats_higher_sid() {
        let q = maj3();
        assert!(total_order(
            &Vote::new(1, 0x10, 1),
            &Vote::new(3, 0x0f, 1),
            &q
        ));
        assert!(!total_order(
            &Vote::new(3, 0x0f, 1),
            &Vote::new(1, 0x10, 1),
            &q
        ));
    }

    #[test]
    fn full_tie_goes_to_higher_sid() {
        let q = maj3();
        assert!(total_order(&Vote::new(3, 7, 1), &Vote::new(2, 7, 1), &q));
        assert!(!total_order(&Vote::new(2, 7, 1), &Vote::new(3, 7, 1), &q));
    }

    #[test]
    fn equal_votes_are_not_better() {
        let q = maj3();
        let v = Vote::new(2, 7, 1);
        assert!(!total_order(&v, &v, &q));
    }

    #[test]
    fn zero_weight_and_strangers_never_better() {
        let groups = BTreeMap::from([(1, BTreeSet::from([1, 2, 3]))]);
        let weights = BTreeMap::from([(1, 1), (2, 1), (3, 0)]);
        let q = QuorumVerifier::Hierarchical { groups, weights };
        // sid 3 has the best numbers but weight 0.
        assert!(!total_order(&Vote::new(3, 99, 9), &Vote::new(1, 0, 0), &q));
        // A stranger (sid 7) weighs 0 too.
        assert!(!total_order(&Vote::new(7, 99, 9), &Vote::new(1, 0, 0), &q));
        assert!(!total_order(
            &Vote::new(7, 99, 9),
            &Vote::new(1, 0, 0),
            &maj3()
        ));
    }

    #[test]
    fn observer_vote_loses_to_everything() {
        let q = maj3();
        assert!(total_order(&Vote::new(1, 0, 0), &Vote::observer(), &q));
        assert!(!total_order(&Vote::observer(), &Vote::new(1, 0, 0), &q));
    }
}
