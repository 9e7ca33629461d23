//! Quorum verifiers (PROTOCOL.md §4.4): ZooKeeper's `QuorumMaj` and
//! `QuorumHierarchical`. The election tally asks them whether a set of sids
//! is a quorum; zero-weight voters count for nothing and never win.

use std::collections::{BTreeMap, BTreeSet};

/// Decides whether a set of sids is a quorum of one configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumVerifier {
    /// More than half of the voting members.
    Majority {
        /// The participants' sids.
        voters: BTreeSet<i64>,
    },
    /// `group.G=a:b:c` and `weight.S=w` lines: a set is a quorum when more
    /// than half of the non-zero-weight groups each hold more than half of
    /// their group's weight.
    Hierarchical {
        /// group id → members.
        groups: BTreeMap<i64, BTreeSet<i64>>,
        /// sid → weight (members without a `weight.` line weigh 1).
        weights: BTreeMap<i64, u64>,
    },
}

impl QuorumVerifier {
    /// A majority verifier over `voters`.
    pub fn majority<I: IntoIterator<Item = i64>>(voters: I) -> Self {
        QuorumVerifier::Majority {
            voters: voters.into_iter().collect(),
        }
    }

    /// True if `sid` is a voting member (an observer or a stranger is not).
    /// Zero-weight members of a hierarchical config are voters that can
    /// never win: they vote, but [`QuorumVerifier::weight`] is 0.
    pub fn is_voter(&self, sid: i64) -> bool {
        match self {
            QuorumVerifier::Majority { voters } => voters.contains(&sid),
            QuorumVerifier::Hierarchical { weights, .. } => weights.contains_key(&sid),
        }
    }

    /// The voting members, in ascending sid order.
    pub fn voters(&self) -> Vec<i64> {
        match self {
            QuorumVerifier::Majority { voters } => voters.iter().copied().collect(),
            QuorumVerifier::Hierarchical { weights, .. } => weights.keys().copied().collect(),
        }
    }

    /// Weight of `sid`: 1 for majority voters, the configured weight for
    /// hierarchical ones, 0 for non-voters.
    pub fn weight(&self, sid: i64) -> u64 {
        match self {
            QuorumVerifier::Majority { voters } => u64::from(voters.contains(&sid)),
            QuorumVerifier::Hierarchical { weights, .. } => weights.get(&sid).copied().unwrap_or(0),
        }
    }

    /// True if the sids yielded by `acks` form a quorum. Duplicates and
    /// non-voters are ignored.
    pub fn contains_quorum<I: IntoIterator<Item = i64>>(&self, acks: I) -> bool {
        let acks: BTreeSet<i64> = acks.into_iter().collect();
        match self {
            QuorumVerifier::Majority { voters } => {
                let n = acks.iter().filter(|s| voters.contains(s)).count();
                n * 2 > voters.len()
            }
            QuorumVerifier::Hierarchical { groups, weights } => {
                let mut live_groups = 0usize;
                let mut majority_groups = 0usize;
                for members in groups.values() {
                    let total: u64 = members
                        .iter()
                        .map(|s| weights.get(s).copied().unwrap_or(0))
                        .sum();
                    if total == 0 {
                        continue;
                    }
                    live_groups += 1;
                    let have: u64 = members
                        .iter()
                        .filter(|s| acks.contains(s))
                        .map(|s| weights.get(s).copied().unwrap_or(0))
                        .sum();
                    if have * 2 > total {
                        majority_groups += 1;
                    }
                }
                live_groups > 0 && majority_groups * 2 > live_groups
            }
        }
    }

    /// The smallest number of voters that can form a quorum (for `mntr`'s
    /// `zk_quorum_size`): majority size, or for hierarchical configs the
    /// fewest members that reach a quorum by weight.
    pub fn quorum_size(&self) -> usize {
        match self {
            QuorumVerifier::Majority { voters } => voters.len() / 2 + 1,
            QuorumVerifier::Hierarchical { groups, weights } => {
                let mut per_group: Vec<usize> = Vec::new();
                for members in groups.values() {
                    let mut ws: Vec<u64> = members
                        .iter()
                        .map(|s| weights.get(s).copied().unwrap_or(0))
                        .collect();
                    let total: u64 = ws.iter().sum();
                    if total == 0 {
                        continue;
                    }
                    ws.sort_unstable_by(|a, b| b.cmp(a));
                    let mut acc = 0;
                    let mut n = 0;
                    for w in ws {
                        acc += w;
                        n += 1;
                        if acc * 2 > total {
                            break;
                        }
                    }
                    per_group.push(n);
                }
                per_group.sort_unstable();
                let need = per_group.len() / 2 + 1;
                per_group.iter().take(need).sum()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_needs_more_than_half() {
        let q = QuorumVerifier::majority([1, 2, 3, 4]);
        assert!(!q.contains_quorum([1, 2]));
        assert!(q.contains_quorum([1, 2, 3]));
        assert!(!q.contains_quorum([1, 2, 9, 10]), "non-voters do not count");
        assert_eq!(q.quorum_size(), 3);
    }

    #[test]
    fn hierarchical_counts_groups_and_ignores_zero_weight() {
        // ZooKeeper's FLEZeroWeightTest layout: 9 servers in 3 groups, sids
        // 3..=8 weight 0, so each group's weight sits on one member.
        let groups = BTreeMap::from([
            (1, BTreeSet::from([1, 2, 3])),
            (2, BTreeSet::from([4, 5, 6])),
            (3, BTreeSet::from([7, 8, 9])),
        ]);
        let mut weights: BTreeMap<i64, u64> = (1..=9).map(|s| (s, 1)).collect();
        for s in 3..=8 {
            weights.insert(s, 0);
        }
        let q = QuorumVerifier::Hierarchical { groups, weights };
        assert!(q.is_voter(5));
        assert_eq!(q.weight(5), 0);
        assert!(
            !q.contains_quorum([3, 4, 5, 6, 7, 8]),
            "zero weights form no quorum"
        );
        assert!(
            !q.contains_quorum([1, 2]),
            "one group of three is not a majority of groups"
        );
        assert!(q.contains_quorum([1, 2, 9]));
    }
}
