//! ZooKeeper's election and availability metrics for one peer, derived
//! from the transitions [`super::PeerStatus::update`] publishes, so every
//! writer of the status feeds them without a call of its own:
//!
//! * `election_time` (ServerMetrics, ms): LOOKING → decision, recorded
//!   when the peer becomes a leader or follower (Java's `Leader.lead` and
//!   `Follower.followLeader` record it; an observer does not);
//! * `unavailable_time` and `leader_unavailable_time` (ms): from the first
//!   entry into LOOKING after serving (or after start) until serving again
//!   (`QuorumPeer.setZabState(BROADCAST)`), the latter when leading;
//! * `uptime` and `leader_uptime` (ms): since the current role began
//!   (ZooKeeper's `ServerStats` are created with each role's server) and
//!   since the leader started serving (`Leader.getUptime`);
//! * zkfle's own count of decisions by the rule that ended them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::election::DecidedBy;
use crate::wire::ServerState;

use super::status::StatusSnapshot;

/// How far back a [`Summary`]'s median looks: simpleclient's default
/// `maxAgeSeconds` (10 minutes), which ZooKeeper's Prometheus summaries use.
pub const SUMMARY_WINDOW: Duration = Duration::from_secs(600);
/// Observations kept for the median (elections are rare; this bounds
/// memory if something flaps).
const MAX_RECENT: usize = 1024;

/// A ZooKeeper `Summary` (AvgMinMaxCounter in `mntr`, a Prometheus summary
/// with the median): count, sum, min, max, and the observations of the
/// last [`SUMMARY_WINDOW`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Observations so far.
    pub count: u64,
    /// Their sum.
    pub sum: u64,
    /// Smallest (0 before the first, as ZooKeeper prints it).
    pub min: u64,
    /// Largest (0 before the first).
    pub max: u64,
    recent: VecDeque<(Instant, u64)>,
}

impl Summary {
    /// Adds one observation made at `now`.
    pub fn observe(&mut self, value: u64, now: Instant) {
        self.min = if self.count == 0 {
            value
        } else {
            self.min.min(value)
        };
        self.max = self.max.max(value);
        self.count += 1;
        self.sum = self.sum.saturating_add(value);
        if self.recent.len() == MAX_RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((now, value));
    }

    /// The mean rounded to 4 decimals, half up (`AvgMinMaxCounter.getAvg`);
    /// 0 before the first observation.
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let avg = self.sum as f64 / self.count as f64;
        (avg * 10_000.0).round() / 10_000.0
    }

    /// The median of the observations in the window ending at `now`
    /// (nearest rank); `None` when there are none, which Prometheus shows
    /// as NaN, as simpleclient does.
    pub fn median(&self, now: Instant) -> Option<u64> {
        let mut v: Vec<u64> = self
            .recent
            .iter()
            .filter(|(t, _)| now.saturating_duration_since(*t) <= SUMMARY_WINDOW)
            .map(|(_, v)| *v)
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        Some(v[(v.len() - 1) / 2])
    }
}

/// Decisions by the rule that ended them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecisionCounts([u64; 5]);

/// Every [`DecidedBy`], in the order [`DecisionCounts`] keeps them.
pub const DECIDED_BY: [DecidedBy; 5] = [
    DecidedBy::AllVotersAgree,
    DecidedBy::RestDown,
    DecidedBy::FinalizeWait,
    DecidedBy::SameRoundSettled,
    DecidedBy::OutOfElection,
];

/// The label value for a rule (snake case).
pub fn decided_by_name(d: DecidedBy) -> &'static str {
    match d {
        DecidedBy::AllVotersAgree => "all_voters_agree",
        DecidedBy::RestDown => "rest_down",
        DecidedBy::FinalizeWait => "finalize_wait",
        DecidedBy::SameRoundSettled => "same_round_settled",
        DecidedBy::OutOfElection => "out_of_election",
    }
}

impl DecisionCounts {
    fn slot(d: DecidedBy) -> usize {
        match d {
            DecidedBy::AllVotersAgree => 0,
            DecidedBy::RestDown => 1,
            DecidedBy::FinalizeWait => 2,
            DecidedBy::SameRoundSettled => 3,
            DecidedBy::OutOfElection => 4,
        }
    }

    /// Decisions ended by `d`.
    pub fn get(&self, d: DecidedBy) -> u64 {
        self.0[Self::slot(d)]
    }

    fn add(&mut self, d: DecidedBy) {
        self.0[Self::slot(d)] += 1;
    }
}

/// The timings as of one moment (durations already computed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timings {
    /// `election_time`, ms.
    pub election_time: Summary,
    /// `unavailable_time`, ms.
    pub unavailable_time: Summary,
    /// `leader_unavailable_time`, ms.
    pub leader_unavailable_time: Summary,
    /// Decisions by rule.
    pub decisions: DecisionCounts,
    /// `uptime`: ms since the current role began; `None` while looking.
    pub uptime_ms: Option<u64>,
    /// `leader_uptime`: ms since this leader started serving; `None`
    /// unless serving as leader.
    pub leader_uptime_ms: Option<u64>,
}

/// What [`super::PeerStatus`] keeps to compute [`Timings`].
#[derive(Debug, Clone, Default)]
pub(super) struct History {
    t: Timings,
    unavailable_since: Option<Instant>,
    role_since: Option<Instant>,
    leading_since: Option<Instant>,
}

impl History {
    /// Records what changed from `before` to `after` at `now`.
    pub(super) fn transition(
        &mut self,
        before: &StatusSnapshot,
        after: &StatusSnapshot,
        now: Instant,
    ) {
        if after.election_count > before.election_count && self.unavailable_since.is_none() {
            self.unavailable_since = Some(now);
        }
        let decided = before.state == ServerState::Looking && after.state != ServerState::Looking;
        if decided {
            self.role_since = Some(now);
            if let Some(d) = after.decided_by {
                self.t.decisions.add(d);
            }
            if let (ServerState::Leading | ServerState::Following, Some(ms)) =
                (after.state, after.last_election_ms)
            {
                self.t.election_time.observe(ms, now);
            }
        }
        if after.state == ServerState::Looking {
            self.role_since = None;
        }
        if !before.serving && after.serving {
            if let Some(since) = self.unavailable_since.take() {
                let ms = now.saturating_duration_since(since).as_millis() as u64;
                self.t.unavailable_time.observe(ms, now);
                if after.state == ServerState::Leading {
                    self.t.leader_unavailable_time.observe(ms, now);
                }
            }
            if after.state == ServerState::Leading {
                self.leading_since = Some(now);
            }
        }
        if !after.serving || after.state != ServerState::Leading {
            self.leading_since = None;
        }
    }

    /// The timings as of `now`.
    pub(super) fn at(&self, now: Instant) -> Timings {
        let ms =
            |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t).as_millis() as u64);
        Timings {
            uptime_ms: ms(self.role_since),
            leader_uptime_ms: ms(self.leading_since),
            ..self.t.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_matches_avg_min_max_counter_and_takes_the_windowed_median() {
        let t0 = Instant::now();
        let mut s = Summary::default();
        assert_eq!((s.avg(), s.min, s.max), (0.0, 0, 0));
        assert_eq!(s.median(t0), None);
        s.observe(3, t0);
        s.observe(1, t0);
        s.observe(10, t0 + Duration::from_secs(1));
        assert_eq!((s.count, s.sum, s.min, s.max), (3, 14, 1, 10));
        assert_eq!(s.avg(), 4.6667);
        assert_eq!(s.median(t0 + Duration::from_secs(2)), Some(3));
        // Ten minutes later only the last one is in the window.
        assert_eq!(
            s.median(t0 + SUMMARY_WINDOW + Duration::from_millis(500)),
            Some(10)
        );
        assert_eq!(s.median(t0 + SUMMARY_WINDOW * 2), None);
    }
}
