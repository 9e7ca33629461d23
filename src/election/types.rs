//! The election's settings and what it asks its executor to do: the
//! types [`super::Fle`] takes and returns (its state machine lives in
//! `fle.rs`).

use std::time::Duration;

use crate::config::QuorumVerifier;
use crate::wire::{Notification, ServerState};

use super::vote::Vote;
#[cfg(doc)]
use super::{Fle, Input};

/// Election settings. [`FleConfig::new`] gives ZooKeeper 3.8's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleConfig {
    /// This server's sid.
    pub my_sid: i64,
    /// The voting configuration. If `my_sid` is not a voter this server is
    /// an observer: it proposes [`Vote::observer`], is never counted, and
    /// learns the leader from out-of-election votes.
    pub verifier: QuorumVerifier,
    /// How long to keep draining notifications once a quorum agrees with
    /// the proposal (ZooKeeper's `finalizeWait`, 200 ms).
    pub finalize_wait: Duration,
    /// First poll timeout of an election (`fastleader.minNotificationInterval`,
    /// 200 ms).
    pub min_notification_interval: Duration,
    /// Cap of the doubling poll timeout (`fastleader.maxNotificationInterval`,
    /// 60 s).
    pub max_notification_interval: Duration,
    /// Decide before `finalize_wait` expires when no better vote can arrive
    /// from any voter this server can hear. Two cases (both need a quorum
    /// agreeing with my proposal, which is what starts the finalize wait):
    ///
    /// (a) Every voter's vote of this round is in and every one of them is a
    /// LOOKING vote equal to my proposal. Proposals only ever move up the
    /// total order, and each voter's proposal is at least its own initial
    /// vote, so no voter's initial vote beats mine; a better vote would have
    /// to come from a voter, so none can come in this round.
    ///
    /// (b) Every recorded vote of this round equals my proposal and every
    /// voter not yet heard in this round is [`LinkState::Down`]. The heard
    /// voters' initial votes are at most my proposal, as in (a); the only
    /// candidates that could still beat it are the Down voters', and they
    /// cannot reach me. This is the failover case: the old leader is dead,
    /// its port refuses, and the survivors agree. A voter that is Up or
    /// Connecting but silent, or a heard voter that still disagrees, keeps
    /// the normal wait, so a voter I can hear is never overruled.
    ///
    /// `Fle` trusts Down as its owner reports it. In zkfle that owner is
    /// [`crate::election::Driver`], and Down means exactly: positive
    /// evidence that the voter cannot reach this server right now, either
    /// (i) no live link to it, a link to it was up at some point (a peer
    /// never reached may simply not have started: cold start), and the
    /// latest dial attempt since that link closed was refused or timed out;
    /// or (ii) it is the leader this server just left because it went
    /// silent, and nothing has been heard from it since (a notification
    /// from it, a new link to it or the next role end clears the mark).
    /// Nothing else makes a voter Down; in particular a voter whose link is
    /// up is Down only by (ii). See the Driver's documentation for how the
    /// evidence is gathered.
    ///
    /// Requiring every heard vote to agree is a margin rather than a
    /// necessity (a LOOKING vote recorded this round never beats the
    /// proposal, which has already absorbed it); it keeps the rule from
    /// firing while a voter is still catching up.
    ///
    /// What (b) cannot see: a voter that is Down for me but reachable by
    /// another voter X may feed X a better vote that is still in flight to
    /// me. ZooKeeper has the same race whenever that message takes longer
    /// than `finalize_wait`, and the same recovery: the elected server does
    /// not get a synced quorum within initLimit and everyone looks again.
    ///
    /// `fast_decide` also gates the other zkfle shortcuts of the finalize
    /// wait and the role: a same-round FOLLOWING/LEADING vote for my
    /// proposal counts during the finalize wait; a newer-round LOOKING vote
    /// received while in a role is kept for the next election; no early
    /// decision is taken for a proposed leader (another server) whose link
    /// is Down or that is the leader whose role I just left (until it
    /// speaks), and a FOLLOWING/LEADING report for another vote ends a
    /// finalize wait on such a proposal; and a non-voter that asked with a
    /// LOOKING vote is sent my next decision when I make it, instead of
    /// learning it at its next poll timeout.
    /// With `false` none of this happens and the finalize wait is
    /// ZooKeeper's exactly (for interop and timing comparisons); zoo.cfg's
    /// `zkfle.fastDecide=false` turns it off together with
    /// `answer_worse_votes` ([`FleConfig::with_zkfle_timing`]).
    pub fast_decide: bool,
    /// Answer a same-round LOOKING vote that my proposal beats with my
    /// proposal. ZooKeeper only answers LOOKING askers of a *lower* round,
    /// and restarts its poll timeout on every notification, so a server
    /// holding the best vote can sit silent while the others keep sending it
    /// their worse same-round votes: each one restarts its timeout and none
    /// learns the better vote until a gap in the traffic lets the timeout
    /// fire (the simulator found a 9.5 s stall, seed 2119345; with the 60 s
    /// cap it could last minutes). The reply costs one message per worse
    /// vote, and the asker adopts it and stops sending worse ones, so it
    /// cannot ping-pong. Java peers simply treat it as a better vote.
    ///
    /// With `false`, same-round votes get no reply, as in ZooKeeper.
    pub answer_worse_votes: bool,
    /// zoo.cfg's `zkfle.preferredLeader`: among votes with equal
    /// `(peerEpoch, zxid)` the preferred sid beats every other sid (instead
    /// of the highest sid winning). Never more: a vote with a newer history
    /// still wins, so the elected leader has the best history of the
    /// quorum that elected it, as in ZooKeeper. Every zkfle peer of an
    /// ensemble must be given the same value (they then share one total
    /// order). Java peers keep the plain order; so that the two orders
    /// cannot hold an election forever (neither side adopting the other's
    /// candidate), the preference lasts only until this server's first
    /// poll timeout of a round; after it the round uses ZooKeeper's order.
    pub preferred_leader: Option<i64>,
}

impl FleConfig {
    /// ZooKeeper 3.8 defaults (200 ms finalize wait, 200 ms → 60 s poll
    /// backoff) with `fast_decide` on.
    pub fn new(my_sid: i64, verifier: QuorumVerifier) -> Self {
        FleConfig {
            my_sid,
            verifier,
            finalize_wait: Duration::from_millis(200),
            min_notification_interval: Duration::from_millis(200),
            max_notification_interval: Duration::from_millis(60_000),
            fast_decide: true,
            answer_worse_votes: true,
            preferred_leader: None,
        }
    }

    /// zoo.cfg's `zkfle.fastDecide`: `true` (the default) turns on every
    /// zkfle change to the election's timing ([`FleConfig::fast_decide`]
    /// and [`FleConfig::answer_worse_votes`]); `false` turns them all off,
    /// which is ZooKeeper 3.8's `finalizeWait` behaviour exactly.
    pub fn with_zkfle_timing(mut self, on: bool) -> Self {
        self.fast_decide = on;
        self.answer_worse_votes = on;
        self
    }
}

/// What [`Fle`]'s owner reports about the election link to one peer (see
/// [`Fle::set_link`]). In zkfle the owner is [`crate::election::Driver`],
/// which derives it from link facts; this type never leaves `election`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// A connection exists (and the peer is not known to be gone).
    Up,
    /// No connection, and no evidence that the peer is gone: a dial may be
    /// in progress or about to start, or the peer was never reached.
    Connecting,
    /// Positive evidence that the peer cannot reach this server right now
    /// (the Driver's Down rule, [`FleConfig::fast_decide`]).
    Down,
}

/// One notification to send to one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    /// Destination sid (never this server's own).
    pub to: i64,
    /// What to send. `version` is 0, which is what any receiver decodes
    /// from zkfle's default 40-byte layout.
    pub notification: Notification,
    /// Send only if nothing is queued for `to` (checked and applied in one
    /// step by the connection layer, `Qcm::send_if_idle`). Set on the
    /// poll-timeout resends (PROTOCOL.md §8 R12): a message still queued
    /// for that peer already carries the current proposal, because every
    /// change of the proposal is broadcast at once, so a resend would only
    /// push it further back. Everything else is sent unconditionally.
    pub if_idle: bool,
}

impl Message {
    /// An unconditional send of `notification` to `to`.
    pub fn new(to: i64, notification: Notification) -> Message {
        Message {
            to,
            notification,
            if_idle: false,
        }
    }
}

/// The end of an election: the vote decided on and the role it implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The leader and its zxid/peer epoch as the deciding notification(s)
    /// carried them.
    pub vote: Vote,
    /// `Leading`, `Following` or `Observing`.
    pub state: ServerState,
    /// The round of the decision (ZooKeeper's electionEpoch of the end
    /// vote); also this server's logical clock afterwards.
    pub election_epoch: i64,
    /// Which rule ended the election (metrics count them by kind).
    pub decided_by: DecidedBy,
}

/// What the runtime must do after one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Notifications to send, in order.
    pub sends: Vec<Message>,
    /// Peers to dial (they have no link and something to catch up on).
    pub dial: Vec<i64>,
    /// The machine's only deadline after this call, as an absolute time:
    /// call [`Fle::on_timer`] at or after it. It replaces any earlier
    /// deadline; `None` means no timer is needed (not in an election).
    pub timer: Option<Duration>,
    /// Set when this call ended the election.
    pub decision: Option<Decision>,
}

/// How the last election ended (for logs, metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy {
    /// A quorum agreed and `finalize_wait` passed without a better vote.
    FinalizeWait,
    /// `fast_decide` rule (a): every voter's vote of the round is in and
    /// equal to the proposal.
    AllVotersAgree,
    /// `fast_decide` rule (b): every heard vote agrees and every unheard
    /// voter is Down.
    RestDown,
    /// FOLLOWING/LEADING votes of my own round formed a quorum.
    SameRoundSettled,
    /// FOLLOWING/LEADING votes of any round formed a quorum (joining a
    /// settled ensemble).
    OutOfElection,
}
