//! Fast Leader Election as a sans-IO state machine (PROTOCOL.md §4.3–§4.4).
//!
//! [`Fle`] owns no socket, thread, clock or randomness. The runtime feeds it
//! notifications, link changes and "it is now T", and executes the returned
//! [`Output`]: notifications to send, peers to dial, the next deadline, and
//! at most one [`Decision`]. Given the same inputs it produces the same
//! outputs, which is what lets a seeded simulation replay any schedule.
//!
//! # ZooKeeper 3.8 names and ours
//!
//! | ZooKeeper (`FastLeaderElection`, `QuorumPeer`) | here |
//! |---|---|
//! | `lookForLeader()` | [`Fle::start_election`] opens the loop; [`Fle::on_notification`] and [`Fle::on_timer`] are its iterations; a returned [`Decision`] is its return value |
//! | `recvqueue.poll(notTimeout)` | no queue: each notification is one loop iteration at its arrival time; the poll timeout is the deadline in [`Output::timer`] |
//! | `WorkerReceiver` (replies to non-voters, to lower-round and to LOOKING askers) | the first half of [`Fle::on_notification`], applied in every state |
//! | `logicalclock` | [`Fle::logical_clock`] |
//! | `proposedLeader`, `proposedZxid`, `proposedEpoch` / `getVote()` | [`Fle::proposal`] |
//! | `getInitId()`, `getInitLastLoggedZxid()`, `getPeerEpoch()` | the round's initial vote, from [`Fle::start_election`]'s arguments ([`Vote::observer`] for non-voters) |
//! | `updateProposal()` + `sendNotifications()` | `broadcast` (sends to every other voter, and records my own vote directly instead of through loopback) |
//! | `recvset` | `recv`: a [`VoteSet`] of this round's votes |
//! | `outofelection` | `ooe`: a [`VoteSet`] of FOLLOWING/LEADING votes of any round |
//! | `totalOrderPredicate()` | [`total_order`] |
//! | `getVoteTracker(..).hasAllQuorums()` | [`VoteSet::has_quorum`] |
//! | `checkLeader()` | [`leader_ok`] |
//! | `validVoter()` | `QuorumVerifier::is_voter` |
//! | `finalizeWait` (200 ms) | [`FleConfig::finalize_wait`] |
//! | `minNotificationInterval`, `maxNotificationInterval`, `notTimeout` | [`FleConfig::min_notification_interval`], [`FleConfig::max_notification_interval`], `not_timeout` |
//! | `manager.haveDelivered()` → `sendNotifications()` else `connectAll()` | per-peer resend ([`Message::if_idle`]) or dial on poll timeout (PROTOCOL.md §8 R12), driven by [`Fle::set_link`] |
//! | `setPeerState()` / `learningState()` | [`Decision::state`], [`Fle::state`] |
//! | `leaveInstance()` (clears `recvqueue`) | deciding drops notifications buffered before [`Fle::start_election`] |
//! | `QuorumPeer.getCurrentVote()` | [`Fle::current_vote`] (last decision, or the startup vote) |
//! | `QuorumPeer.updateElectionVote(newEpoch)` | [`Fle::set_established_epoch`] |
//!
//! # Deliberate differences from ZooKeeper
//!
//! * Own vote: counted directly when broadcast, not via a loopback message.
//!   In virtual time the loopback arrives at the same instant, so timing is
//!   unchanged.
//! * Strangers: a candidate that is not a voter weighs 0 in [`total_order`],
//!   so during the finalize wait a vote for a stranger never sends us back
//!   to the loop (ZooKeeper's majority verifier gives strangers weight 1
//!   there, then ignores the vote in the loop).
//! * Poll timeout (R12): resend per peer instead of "all or nothing".
//! * `fast_decide` (on by default) ends the finalize wait early in two
//!   provably safe cases, see [`FleConfig::fast_decide`]. With it off the
//!   timers are ZooKeeper's exactly: the poll deadline restarts at every
//!   notification from a voter and doubles after every empty poll; the
//!   finalize deadline restarts at every notification that is not better.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

#[cfg(test)]
use crate::config::QuorumVerifier;
use crate::wire::{Notification, ServerState};

use super::tally::{leader_ok, TallyVote, VoteSet};
use super::types::{DecidedBy, Decision, FleConfig, LinkState, Message, Output};
use super::vote::{total_order, Vote};

/// Upper bound on notifications buffered between [`Fle::leave_role`] (or
/// [`Fle::new`]) and [`Fle::start_election`]; the oldest are dropped first,
/// like QCM's receive queue (PROTOCOL.md §3.6).
const BACKLOG_CAP: usize = 1024;

/// Upper bound on non-voters remembered as [`Fle`]'s askers; beyond it new
/// ones are not recorded (they still get ZooKeeper's reply, and their own
/// poll timeout asks again). Strangers can connect, so the set is bounded.
const ASKERS_CAP: usize = 1024;

/// The leader field of a non-candidate's placeholder vote
/// ([`Fle::set_candidate`]): Java's observer sid, never a voter.
const NO_CANDIDATE: i64 = i64::MIN;

/// Where the election loop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not in `lookForLeader`: before the first election, between
    /// [`Fle::leave_role`] and [`Fle::start_election`], or in a role.
    Idle,
    /// In the loop, waiting for notifications until `deadline`.
    Polling { deadline: Duration },
    /// A quorum agrees with the proposal; decide at `deadline` unless a
    /// better vote arrives first.
    Finalizing { deadline: Duration },
}

/// Immutable parts, shared between clones so that a simulator can fork a
/// machine cheaply.
#[derive(Debug)]
struct Shared {
    cfg: FleConfig,
    /// Voters other than me, ascending: broadcast targets.
    others: Vec<i64>,
    /// All voters, ascending.
    voters: Vec<i64>,
    participant: bool,
}

/// ZooKeeper's FastLeaderElection for one server, as a state machine.
#[derive(Debug, Clone)]
pub struct Fle {
    shared: Arc<Shared>,
    state: ServerState,
    phase: Phase,
    logical_clock: i64,
    proposal: Vote,
    /// This round's initial vote (getInitId & co).
    initial: Vote,
    /// Last decision (or the startup vote) and its round.
    current_vote: Vote,
    current_round: i64,
    /// True once a decision exists; until then `current_vote` is refreshed
    /// from each `start_election` (the startup vote).
    decided_once: bool,
    not_timeout: Duration,
    recv: VoteSet,
    ooe: VoteSet,
    links: BTreeMap<i64, LinkState>,
    /// Notifications that arrived while LOOKING but outside the loop.
    backlog: VecDeque<(i64, Notification)>,
    /// Non-voters that asked with a LOOKING vote since my last decision
    /// (`fast_decide` only): each is told my next decision when I make it.
    /// ZooKeeper answers a non-voter once with its current vote — while
    /// LOOKING, that is the *previous* decision, e.g. a leader that just
    /// died — and never again, so an observer waits for its own poll
    /// timeout to learn the new leader (issue 18: 200–400 ms of every
    /// observer's failover, and observers following the dead leader).
    askers: BTreeSet<i64>,
    /// The leader whose follower or observer I was when my role last ended,
    /// until a notification from it shows it alive or I decide again:
    /// votes naming it may be stale ([`Fle::proposes_gone_leader`]). Link
    /// states are no such sign: the driver may still report the dying link
    /// Up.
    lost_leader: Option<i64>,
    decided_by: Option<DecidedBy>,
    /// False while this server takes part in elections without standing
    /// for leader (after resigning: [`Fle::set_candidate`]).
    candidate: bool,
    /// This round's own history `(last_zxid, current_epoch)`, from
    /// [`Fle::start_election`].
    history: (i64, i64),
    /// The preferred-leader tie-break is in force in this round.
    prefer: bool,
}

impl Fle {
    /// A machine that is LOOKING but not yet in an election; its current
    /// vote is the startup vote `(my sid, 0, 0)` until
    /// [`Fle::start_election`] supplies the real zxid and epoch.
    pub fn new(cfg: FleConfig) -> Fle {
        let voters = cfg.verifier.voters();
        let participant = cfg.verifier.is_voter(cfg.my_sid);
        let others = voters
            .iter()
            .copied()
            .filter(|&s| s != cfg.my_sid)
            .collect();
        let min = cfg.min_notification_interval;
        let my_sid = cfg.my_sid;
        let startup = Vote::new(my_sid, 0, 0);
        Fle {
            shared: Arc::new(Shared {
                cfg,
                others,
                voters,
                participant,
            }),
            state: ServerState::Looking,
            phase: Phase::Idle,
            logical_clock: 0,
            proposal: startup,
            initial: startup,
            current_vote: startup,
            current_round: -1,
            decided_once: false,
            not_timeout: min,
            recv: VoteSet::new(),
            ooe: VoteSet::new(),
            links: BTreeMap::new(),
            backlog: VecDeque::new(),
            askers: BTreeSet::new(),
            lost_leader: None,
            decided_by: None,
            candidate: true,
            history: (0, 0),
            prefer: false,
        }
    }

    /// The configuration this machine runs with.
    pub fn config(&self) -> &FleConfig {
        &self.shared.cfg
    }

    /// Starts a round (ZooKeeper: entering `lookForLeader`): logical clock
    /// plus one, proposal := initial vote `(my sid, last_zxid, current_epoch)`
    /// (an observer's is [`Vote::observer`]), broadcast to every other voter.
    /// Notifications buffered since [`Fle::leave_role`] are then processed.
    ///
    /// `last_zxid` of an empty database is 0; -1 means "untrusted empty
    /// database" and makes this server ignore LOOKING votes (ZooKeeper
    /// 3.6+), so callers should never pass it by accident.
    pub fn start_election(&mut self, now: Duration, last_zxid: i64, current_epoch: i64) -> Output {
        let mut out = Output::default();
        let my_sid = self.shared.cfg.my_sid;
        if !self.decided_once {
            // QuorumPeer's startup vote uses the real sid even for observers.
            self.current_vote = Vote::new(my_sid, last_zxid, current_epoch);
        }
        self.state = ServerState::Looking;
        // A hostile peer can push the round to i64::MAX; wrap like Java's
        // AtomicLong instead of panicking.
        self.logical_clock = self.logical_clock.wrapping_add(1);
        self.history = (last_zxid, current_epoch);
        self.prefer = self.shared.cfg.preferred_leader.is_some();
        self.initial = self.own_initial_vote();
        self.proposal = self.initial;
        self.recv.clear();
        self.ooe.clear();
        self.not_timeout = self.shared.cfg.min_notification_interval;
        self.phase = Phase::Polling {
            deadline: now + self.not_timeout,
        };
        log::debug!(
            "sid {}: LOOKING, round {:#x}, proposing {}",
            my_sid,
            self.logical_clock,
            self.proposal
        );
        self.broadcast(&mut out);
        // My own vote was just counted: in ZooKeeper its loopback copy is
        // processed like any notification, quorum check included (a
        // one-voter ensemble decides on it).
        self.check_looking_quorum(now, &mut out);
        let backlog = std::mem::take(&mut self.backlog);
        for (from, n) in backlog {
            if self.phase == Phase::Idle {
                break;
            }
            self.loop_step(now, from, &n, &mut out);
        }
        out.timer = self.deadline();
        out
    }

    /// Handles one well-formed notification from `from` (the sid of the
    /// connection's handshake): the receiver rules of PROTOCOL.md §4.3 in
    /// every state, then, while in an election, one iteration of the loop.
    pub fn on_notification(&mut self, now: Duration, from: i64, n: &Notification) -> Output {
        let mut out = Output::default();
        let my_sid = self.shared.cfg.my_sid;
        if from == my_sid {
            // Own votes never travel; a peer claiming my sid is an impostor
            // the connection layer should already have closed.
            log::debug!("sid {my_sid}: ignoring a notification claiming my own sid");
            out.timer = self.deadline();
            return out;
        }
        if self.lost_leader == Some(from) {
            // It is alive (or was when it sent this).
            log::debug!(
                "sid {}: heard from {from}, the leader lost",
                self.shared.cfg.my_sid
            );
            self.lost_leader = None;
        }
        if !self.shared.cfg.verifier.is_voter(from) {
            // Rule 1: non-voters (observers, strangers) get my current vote
            // at once and never enter the tally.
            out.sends.push(Message::new(
                from,
                self.notification(self.state, self.current_vote, self.logical_clock),
            ));
            if self.shared.cfg.fast_decide
                && n.state == ServerState::Looking
                && self.askers.len() < ASKERS_CAP
            {
                self.askers.insert(from);
            }
            out.timer = self.deadline();
            return out;
        }
        if self.state == ServerState::Looking {
            // Rule 2: a LOOKING asker behind my round learns my proposal.
            if n.state == ServerState::Looking && n.election_epoch < self.logical_clock {
                out.sends.push(Message::new(
                    from,
                    self.notification(ServerState::Looking, self.proposal, self.logical_clock),
                ));
            }
            if self.phase == Phase::Idle {
                self.buffer(from, n);
            } else {
                self.loop_step(now, from, n, &mut out);
            }
        } else if n.state == ServerState::Looking {
            // Rule 3: settled servers answer LOOKING askers with the
            // decision (round of the decision, epoch as established).
            out.sends.push(Message::new(
                from,
                self.notification(self.state, self.current_vote, self.current_round),
            ));
            if self.shared.cfg.fast_decide && n.election_epoch > self.current_round {
                // A voter already in a newer round: the ensemble is
                // re-electing and this server is likely about to leave its
                // role too (the leader's death reaches every follower within
                // a millisecond or two). ZooKeeper answers and forgets the
                // vote; keeping it for the coming election means this
                // server hears that voter even if the voter decides before
                // its next message, instead of sitting out finalizeWait
                // waiting for it (traced in failover runs). Arriving a
                // moment early is a reordering the protocol already allows.
                self.buffer(from, n);
            }
        }
        out.timer = self.deadline();
        out
    }

    /// Keeps a notification for [`Fle::start_election`], oldest dropped
    /// first once [`BACKLOG_CAP`] are held.
    fn buffer(&mut self, from: i64, n: &Notification) {
        if self.backlog.len() == BACKLOG_CAP {
            self.backlog.pop_front();
        }
        self.backlog.push_back((from, *n));
    }

    /// Time has reached `now`: on poll timeout, dial each voter whose link
    /// is Down and resend the proposal to every other voter, marked
    /// [`Message::if_idle`], then double the timeout; on finalize expiry,
    /// decide. Early calls change nothing.
    pub fn on_timer(&mut self, now: Duration) -> Output {
        let mut out = Output::default();
        match self.phase {
            Phase::Idle => {}
            Phase::Polling { deadline } => {
                if now >= deadline {
                    let n =
                        self.notification(ServerState::Looking, self.proposal, self.logical_clock);
                    for &v in &self.shared.others {
                        match self.links.get(&v) {
                            // Down: ZooKeeper's connectAll(); the dial's
                            // outcome is news about the voter either way.
                            Some(LinkState::Down) => out.dial.push(v),
                            // Up, a dial in progress, or never reported:
                            // resend unless something is still queued for
                            // it (the connection layer checks that and
                            // queues in one step; with no link the send
                            // starts a dial, and the message is delivered
                            // first once the link comes up).
                            Some(LinkState::Up | LinkState::Connecting) | None => {
                                out.sends.push(Message {
                                    to: v,
                                    notification: n,
                                    if_idle: true,
                                })
                            }
                        }
                    }
                    // The preferred-leader tie-break yields to ZooKeeper's
                    // order after one empty poll (FleConfig::preferred_leader).
                    self.prefer = false;
                    let doubled = self.not_timeout.saturating_mul(2);
                    self.not_timeout = doubled.min(self.shared.cfg.max_notification_interval);
                    self.phase = Phase::Polling {
                        deadline: now + self.not_timeout,
                    };
                    log::debug!(
                        "sid {}: poll timeout, round {:#x}, next in {:?}",
                        self.shared.cfg.my_sid,
                        self.logical_clock,
                        self.not_timeout
                    );
                }
            }
            Phase::Finalizing { deadline } => {
                if now >= deadline {
                    if self.shared.cfg.fast_decide && log::log_enabled!(log::Level::Debug) {
                        log::debug!(
                            "sid {}: finalize wait ran out; no early decision because {}",
                            self.shared.cfg.my_sid,
                            self.fast_blocker()
                        );
                    }
                    self.decide(
                        self.proposal,
                        self.logical_clock,
                        DecidedBy::FinalizeWait,
                        &mut out,
                    );
                }
            }
        }
        out.timer = self.deadline();
        out
    }

    /// Records what its owner (in zkfle, [`crate::election::Driver`]) knows
    /// about the link to `sid`. Used by the poll-timeout resend (Down
    /// voters are dialled, the others get a resend if nothing is queued for
    /// them) and by `fast_decide` rule (b), which trusts [`LinkState::Down`]
    /// as given. Takes effect at the next call; use [`Fle::on_link`] to let
    /// it end a finalize wait at once.
    pub fn set_link(&mut self, sid: i64, state: LinkState) {
        if sid != self.shared.cfg.my_sid {
            self.links.insert(sid, state);
        }
    }

    /// [`Fle::set_link`], then re-check `fast_decide` rule (b): a voter going
    /// Down may be the last thing a finalize wait was waiting for.
    pub fn on_link(&mut self, now: Duration, sid: i64, state: LinkState) -> Output {
        self.set_link(sid, state);
        let mut out = Output::default();
        let _ = now;
        if matches!(self.phase, Phase::Finalizing { .. }) {
            if let Some(how) = self.fast_ready() {
                self.decide(self.proposal, self.logical_clock, how, &mut out);
            }
        }
        out.timer = self.deadline();
        out
    }

    /// The link state last reported for `sid`, if any.
    pub fn link(&self, sid: i64) -> Option<LinkState> {
        self.links.get(&sid).copied()
    }

    /// Zab established `epoch` with the decided leader: from now on replies
    /// to LOOKING askers carry it as peerEpoch (ZooKeeper's
    /// `updateElectionVote`; the zxid stays the decision's).
    pub fn set_established_epoch(&mut self, epoch: i64) {
        self.current_vote.peer_epoch = epoch;
    }

    /// The role ended (leader lost, quorum lost, sync failed): this server
    /// is LOOKING again, keeps answering with its last decision, and buffers
    /// notifications until [`Fle::start_election`].
    pub fn leave_role(&mut self) {
        if matches!(self.state, ServerState::Following | ServerState::Observing) {
            self.lost_leader = Some(self.current_vote.leader);
            log::debug!(
                "sid {}: left the role under leader {}",
                self.shared.cfg.my_sid,
                self.current_vote.leader
            );
        }
        self.state = ServerState::Looking;
        self.phase = Phase::Idle;
    }

    /// The server state: LOOKING until a decision, then the decided role.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The election round (`logicalclock`).
    pub fn logical_clock(&self) -> i64 {
        self.logical_clock
    }

    /// The vote this server currently proposes (meaningful while LOOKING).
    pub fn proposal(&self) -> Vote {
        self.proposal
    }

    /// The last decision (with the established epoch, once set), or the
    /// startup vote before any decision.
    pub fn current_vote(&self) -> Vote {
        self.current_vote
    }

    /// The round of [`Fle::current_vote`] (-1 for the startup vote).
    pub fn current_vote_round(&self) -> i64 {
        self.current_round
    }

    /// True while inside an election loop (polling or finalizing).
    pub fn is_electing(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// True while a quorum agrees and the finalize wait runs.
    pub fn is_finalizing(&self) -> bool {
        matches!(self.phase, Phase::Finalizing { .. })
    }

    /// The pending deadline, if any (same as the last [`Output::timer`]).
    pub fn deadline(&self) -> Option<Duration> {
        match self.phase {
            Phase::Idle => None,
            Phase::Polling { deadline } | Phase::Finalizing { deadline } => Some(deadline),
        }
    }

    /// How the last decision was reached (`None` before the first).
    pub fn decided_by(&self) -> Option<DecidedBy> {
        self.decided_by
    }

    /// This round's recorded votes (ZooKeeper's `recvset`).
    pub fn received_votes(&self) -> &VoteSet {
        &self.recv
    }

    /// Out-of-election votes seen in this election (`outofelection`).
    pub fn out_of_election_votes(&self) -> &VoteSet {
        &self.ooe
    }

    /// Stand for leader (`true`, the default) or not. A server that does
    /// not stand still votes, and counts towards quorums, but never
    /// proposes itself: it starts each round with a placeholder that names
    /// no voter and carries its own history `(currentEpoch, last zxid)` as a
    /// floor, and adopts only a vote that beats the placeholder in the total
    /// order, i.e. a candidate whose history is at least its own. The floor
    /// is what keeps a resigning leader from handing its quorum to a peer
    /// that lacks entries it committed: any quorum that elects without it
    /// intersects the quorum that acknowledged those entries in a
    /// candidate, and any quorum that elects with it elects a candidate at
    /// least as up to date as itself. Votes naming this server are ignored
    /// while it does not stand, so it cannot be elected.
    ///
    /// During an election the change takes effect at once. Standing again
    /// proposes my own vote only if I have adopted nobody yet (the
    /// placeholder is still my proposal: no candidate with my history was
    /// heard, the case in which the others may need me to lead); a
    /// candidate already adopted holds at least my history and can win
    /// whatever I could, so the round is left alone rather than disturbed.
    /// Withdrawing replaces a proposal for myself by the placeholder. A
    /// changed proposal goes back to polling (never straight to a decision:
    /// a finalize wait under way was for the old proposal; found by the
    /// simulator, `zkfle sim --resign --store`, seed 433).
    pub fn set_candidate(&mut self, now: Duration, candidate: bool) -> Output {
        let mut out = Output::default();
        if self.candidate != candidate {
            self.candidate = candidate;
            log::debug!(
                "sid {}: {} a candidate",
                self.shared.cfg.my_sid,
                if candidate { "again" } else { "no longer" }
            );
            if self.is_electing() && self.shared.participant {
                let mine = self.own_initial_vote();
                self.initial = mine;
                let changed = if candidate {
                    self.proposal.leader == NO_CANDIDATE && self.better(&mine, &self.proposal)
                } else {
                    self.proposal.leader == self.shared.cfg.my_sid
                };
                if changed {
                    self.phase = Phase::Polling {
                        deadline: now + self.not_timeout,
                    };
                    self.proposal = mine;
                    if !candidate {
                        self.recv.remove(self.shared.cfg.my_sid);
                    }
                    self.broadcast(&mut out);
                    self.check_looking_quorum(now, &mut out);
                }
            } else if !candidate && self.proposal.leader == self.shared.cfg.my_sid {
                // Between rounds the proposal still answers LOOKING askers
                // of older rounds (rule 2): it must not name me either.
                self.proposal = self.own_initial_vote();
            }
        }
        out.timer = self.deadline();
        out
    }

    /// True unless [`Fle::set_candidate`] withdrew this server.
    pub fn is_candidate(&self) -> bool {
        self.candidate
    }

    /// This round's initial vote: my own (a candidate), the placeholder
    /// (a voter not standing), or the observer vote.
    fn own_initial_vote(&self) -> Vote {
        let (zxid, epoch) = self.history;
        if !self.shared.participant {
            Vote::observer()
        } else if self.candidate {
            Vote::new(self.shared.cfg.my_sid, zxid, epoch)
        } else {
            Vote::new(NO_CANDIDATE, zxid, epoch)
        }
    }

    /// ZooKeeper's `totalOrderPredicate` ([`total_order`]), with the
    /// preferred-leader tie-break while it is in force
    /// ([`FleConfig::preferred_leader`]).
    fn better(&self, new: &Vote, cur: &Vote) -> bool {
        let verifier = &self.shared.cfg.verifier;
        if let (true, Some(p)) = (self.prefer, self.shared.cfg.preferred_leader) {
            if verifier.weight(new.leader) != 0
                && (new.peer_epoch, new.zxid) == (cur.peer_epoch, cur.zxid)
                && (new.leader == p) != (cur.leader == p)
            {
                return new.leader == p;
            }
        }
        total_order(new, cur, verifier)
    }

    fn notification(&self, state: ServerState, v: Vote, round: i64) -> Notification {
        // A non-candidate's placeholder travels as an observer's vote
        // (sid, zxid and epoch all Long.MIN_VALUE): every receiver, zkfle
        // or Java, ignores a vote for a non-voter in its tally, and no
        // history is compared against it (its floor stays local).
        let v = if v.leader == NO_CANDIDATE {
            Vote::observer()
        } else {
            v
        };
        Notification {
            state,
            leader: v.leader,
            zxid: v.zxid,
            election_epoch: round,
            peer_epoch: v.peer_epoch,
            version: 0,
        }
    }

    /// sendNotifications(): the proposal to every other voter; my own vote
    /// is counted here rather than looped back.
    fn broadcast(&mut self, out: &mut Output) {
        let n = self.notification(ServerState::Looking, self.proposal, self.logical_clock);
        for &v in &self.shared.others {
            out.sends.push(Message::new(v, n));
        }
        // A non-candidate's placeholder names no voter: not a vote anyone
        // can agree with, so it is not recorded.
        if self.shared.participant && self.proposal.leader != NO_CANDIDATE {
            self.recv.insert(
                self.shared.cfg.my_sid,
                TallyVote::looking(self.proposal, self.logical_clock),
            );
        }
    }

    /// One iteration of the loop for a notification from voter `from`.
    fn loop_step(&mut self, now: Duration, from: i64, n: &Notification, out: &mut Output) {
        if !self.candidate && n.leader == self.shared.cfg.my_sid {
            // Not standing: a vote naming me (only a stale one can: I never
            // propose myself now) is neither adopted nor counted, so no
            // decision of mine can make me leader.
            log::debug!(
                "sid {}: not a candidate, ignoring a vote for me from {}",
                self.shared.cfg.my_sid,
                from
            );
            return;
        }
        let verifier = &self.shared.cfg.verifier;
        let vote = Vote::new(n.leader, n.zxid, n.peer_epoch);
        match self.phase {
            Phase::Idle => {}
            Phase::Finalizing { .. } => {
                if self.better(&vote, &self.proposal) {
                    // ZooKeeper requeues it and goes back to the loop,
                    // whatever the notification's round or state.
                    log::debug!(
                        "sid {}: better vote {} from {} during finalize",
                        self.shared.cfg.my_sid,
                        vote,
                        from
                    );
                    self.phase = Phase::Polling {
                        deadline: now + self.not_timeout,
                    };
                    self.loop_step(now, from, n, out);
                } else if self.shared.cfg.fast_decide
                    && matches!(n.state, ServerState::Following | ServerState::Leading)
                    && vote != self.proposal
                    && self.proposes_gone_leader()
                {
                    // The quorum being finalized names a gone server, so
                    // it is stale (proposes_gone_leader); a voter that
                    // reports a role is the fresher news. ZooKeeper drops
                    // it unless it beats the proposal, and an observer
                    // then follows the dead leader after the wait.
                    log::debug!(
                        "sid {}: {} reports {:?} for {} while the proposed leader {} is Down or just lost; polling again",
                        self.shared.cfg.my_sid,
                        from,
                        n.state,
                        vote,
                        self.proposal.leader
                    );
                    self.phase = Phase::Polling {
                        deadline: now + self.not_timeout,
                    };
                    self.loop_step(now, from, n, out);
                } else if self.shared.cfg.fast_decide
                    && matches!(n.state, ServerState::Following | ServerState::Leading)
                    && n.election_epoch == self.logical_clock
                    && vote == self.proposal
                {
                    // A voter that already took a role for my proposal in my
                    // round. ZooKeeper drops it during the finalize wait,
                    // but would act on it in its polling loop (recorded,
                    // then quorum + checkLeader). It happens in every
                    // failover: the new leader decides first, and a
                    // survivor whose LOOKING vote reached it too late hears
                    // back only its LEADING reply, never another LOOKING
                    // vote, so the survivor sat out the full 200 ms.
                    self.on_settled(from, n, vote, out);
                    if self.is_finalizing() {
                        if let Some(how) = self.fast_ready() {
                            self.decide(self.proposal, self.logical_clock, how, out);
                        }
                    }
                } else {
                    if self.shared.cfg.fast_decide
                        && n.state == ServerState::Looking
                        && n.election_epoch == self.logical_clock
                        && verifier.is_voter(n.leader)
                        && n.zxid != -1
                        && self.initial.zxid != -1
                    {
                        // ZooKeeper drops it; recording it only makes the
                        // tally fresher and lets rule (a)/(b) see it.
                        self.recv
                            .insert(from, TallyVote::looking(vote, n.election_epoch));
                    }
                    self.phase = Phase::Finalizing {
                        deadline: now + self.shared.cfg.finalize_wait,
                    };
                    if let Some(how) = self.fast_ready() {
                        self.decide(self.proposal, self.logical_clock, how, out);
                    }
                }
            }
            Phase::Polling { .. } => {
                // Any notification from a voter restarts the poll.
                self.phase = Phase::Polling {
                    deadline: now + self.not_timeout,
                };
                if !verifier.is_voter(n.leader) {
                    log::debug!(
                        "sid {}: ignoring vote for non-voter {} from {}",
                        self.shared.cfg.my_sid,
                        n.leader,
                        from
                    );
                    return;
                }
                match n.state {
                    ServerState::Looking => self.on_looking(now, from, n, vote, out),
                    ServerState::Observing => {}
                    ServerState::Following | ServerState::Leading => {
                        self.on_settled(from, n, vote, out)
                    }
                }
            }
        }
    }

    fn on_looking(
        &mut self,
        now: Duration,
        from: i64,
        n: &Notification,
        vote: Vote,
        out: &mut Output,
    ) {
        if self.initial.zxid == -1 || n.zxid == -1 {
            // ZooKeeper 3.6+: an untrusted empty database takes no part.
            return;
        }
        if n.election_epoch > self.logical_clock {
            self.logical_clock = n.election_epoch;
            self.recv.clear();
            self.proposal = if self.better(&vote, &self.initial) {
                vote
            } else {
                self.initial
            };
            self.broadcast(out);
        } else if n.election_epoch < self.logical_clock {
            return;
        } else if self.better(&vote, &self.proposal) {
            self.proposal = vote;
            self.broadcast(out);
        } else if self.shared.cfg.answer_worse_votes && self.better(&self.proposal, &vote) {
            out.sends.push(Message::new(
                from,
                self.notification(ServerState::Looking, self.proposal, self.logical_clock),
            ));
        }
        self.recv
            .insert(from, TallyVote::looking(vote, n.election_epoch));
        self.check_looking_quorum(now, out);
    }

    /// Enters the finalize wait if a quorum agrees with the proposal.
    fn check_looking_quorum(&mut self, now: Duration, out: &mut Output) {
        if !matches!(self.phase, Phase::Polling { .. }) {
            return;
        }
        let target = TallyVote::looking(self.proposal, self.logical_clock);
        if self.recv.has_quorum(&target, &self.shared.cfg.verifier) {
            self.phase = Phase::Finalizing {
                deadline: now + self.shared.cfg.finalize_wait,
            };
            log::debug!(
                "sid {}: quorum on {} in round {:#x}, finalizing",
                self.shared.cfg.my_sid,
                self.proposal,
                self.logical_clock
            );
            if let Some(how) = self.fast_ready() {
                self.decide(self.proposal, self.logical_clock, how, out);
            }
        }
    }

    fn on_settled(&mut self, from: i64, n: &Notification, vote: Vote, out: &mut Output) {
        let verifier = &self.shared.cfg.verifier;
        let my_sid = self.shared.cfg.my_sid;
        let target = TallyVote {
            vote,
            election_epoch: n.election_epoch,
            state: n.state,
            version: n.version,
        };
        if n.election_epoch == self.logical_clock {
            // Same round: ZooKeeper records it with version 0.
            self.recv.insert(
                from,
                TallyVote {
                    version: 0,
                    ..target
                },
            );
            if self.recv.has_quorum(&target, verifier)
                && leader_ok(
                    &self.recv,
                    n.leader,
                    n.election_epoch,
                    my_sid,
                    self.logical_clock,
                )
            {
                self.decide(vote, n.election_epoch, DecidedBy::SameRoundSettled, out);
                return;
            }
        }
        self.ooe.insert(from, target);
        if self.ooe.has_quorum(&target, verifier)
            && leader_ok(
                &self.ooe,
                n.leader,
                n.election_epoch,
                my_sid,
                self.logical_clock,
            )
        {
            // Joining a settled ensemble: adopt its round.
            self.logical_clock = n.election_epoch;
            self.decide(vote, n.election_epoch, DecidedBy::OutOfElection, out);
        }
    }

    /// `fast_decide` rules (a) and (b); see [`FleConfig::fast_decide`].
    /// Only meaningful while finalizing (a quorum already agrees).
    fn fast_ready(&self) -> Option<DecidedBy> {
        if !self.shared.cfg.fast_decide {
            return None;
        }
        let all_heard_agree = self.recv.iter().all(|(_, v)| self.agrees(v));
        if !all_heard_agree {
            return None;
        }
        if self.proposes_gone_leader() {
            return None;
        }
        let mut all_heard = true;
        for &v in &self.shared.voters {
            if self.recv.contains(v) {
                continue;
            }
            if self.links.get(&v) != Some(&LinkState::Down) {
                return None;
            }
            all_heard = false;
        }
        Some(if all_heard {
            DecidedBy::AllVotersAgree
        } else {
            DecidedBy::RestDown
        })
    }

    /// A recorded vote of this round that can bring no better vote: a
    /// LOOKING vote equal to my proposal, or a voter that already took a
    /// role (FOLLOWING/LEADING) for my proposal in this round; it stays
    /// settled until it starts a new round.
    fn agrees(&self, v: &TallyVote) -> bool {
        v.vote == self.proposal
            && v.election_epoch == self.logical_clock
            && matches!(
                v.state,
                ServerState::Looking | ServerState::Following | ServerState::Leading
            )
    }

    /// The proposal names another server that is Down, or the leader I
    /// just lost while nothing has been heard from it since: a quorum of
    /// LOOKING votes for it is then most likely stale — ZooKeeper's answer
    /// to a non-voter is the voter's previous decision, so right after a
    /// leader dies every observer sees a quorum for the dead leader, often
    /// before its own dial to it has failed. No early decision is taken on
    /// such a proposal, and a role report for another vote interrupts its
    /// finalize wait; the wait itself still decides, as in ZooKeeper.
    fn proposes_gone_leader(&self) -> bool {
        let leader = self.proposal.leader;
        leader != self.shared.cfg.my_sid
            && (self.links.get(&leader) == Some(&LinkState::Down)
                || self.lost_leader == Some(leader))
    }

    /// Why [`Fle::fast_ready`] does not fire, for the log line of a finalize
    /// wait that ran its full length (operators comparing failover times
    /// want to know which voter it waited for).
    fn fast_blocker(&self) -> String {
        let mut reasons = Vec::new();
        if self.proposes_gone_leader() {
            reasons.push(format!(
                "the proposed leader {} is Down or the leader just lost",
                self.proposal.leader
            ));
        }
        for (sid, v) in self.recv.iter() {
            if !self.agrees(v) {
                reasons.push(format!(
                    "sid {sid}'s recorded vote {} ({:?}, round {:#x}) differs",
                    v.vote, v.state, v.election_epoch
                ));
            }
        }
        for &v in &self.shared.voters {
            if self.recv.contains(v) {
                continue;
            }
            match self.links.get(&v) {
                Some(LinkState::Down) => {}
                Some(state) => reasons.push(format!("sid {v} unheard, link {state:?}")),
                None => reasons.push(format!("sid {v} unheard, link unknown")),
            }
        }
        if reasons.is_empty() {
            "nothing blocks it (checked too late)".into()
        } else {
            reasons.join("; ")
        }
    }

    /// leaveInstance(): take the role, forget buffered notifications.
    fn decide(&mut self, vote: Vote, round: i64, how: DecidedBy, out: &mut Output) {
        let my_sid = self.shared.cfg.my_sid;
        self.state = if vote.leader == my_sid {
            ServerState::Leading
        } else if self.shared.participant {
            ServerState::Following
        } else {
            ServerState::Observing
        };
        self.current_vote = vote;
        self.current_round = round;
        self.decided_once = true;
        self.decided_by = Some(how);
        self.phase = Phase::Idle;
        self.backlog.clear();
        self.lost_leader = None;
        if !self.askers.is_empty() {
            // What each would get by asking now (rule 3), sent without
            // waiting to be asked.
            let n = self.notification(self.state, vote, round);
            log::debug!(
                "sid {}: telling {} non-voters that asked: {:?}",
                my_sid,
                self.askers.len(),
                self.askers
            );
            for sid in std::mem::take(&mut self.askers) {
                out.sends.push(Message::new(sid, n));
            }
        }
        log::debug!(
            "sid {}: {} {} in round {:#x} ({:?})",
            my_sid,
            self.state,
            vote,
            round,
            how
        );
        out.decision = Some(Decision {
            vote,
            state: self.state,
            election_epoch: round,
            decided_by: how,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::election::test_util::{ms, notif};
    use ServerState::{Following, Leading, Looking, Observing};

    /// `fast == false` is ZooKeeper's behaviour exactly (no early decision,
    /// no answers to same-round votes).
    fn cfg(me: i64, voters: &[i64], fast: bool) -> FleConfig {
        let mut c = FleConfig::new(me, QuorumVerifier::majority(voters.iter().copied()));
        c.fast_decide = fast;
        c.answer_worse_votes = fast;
        c
    }

    fn sends_to(out: &Output, to: i64) -> Vec<Notification> {
        out.sends
            .iter()
            .filter(|s| s.to == to)
            .map(|s| s.notification)
            .collect()
    }

    #[test]
    fn start_broadcasts_to_other_voters_only() {
        let mut f = Fle::new(cfg(2, &[1, 2, 3], false));
        let out = f.start_election(ms(0), 0x5, 1);
        let targets: Vec<i64> = out.sends.iter().map(|s| s.to).collect();
        assert_eq!(targets, vec![1, 3], "never to self, never to non-voters");
        assert_eq!(out.sends[0].notification, notif(Looking, 2, 0x5, 1, 1));
        assert_eq!(out.timer, Some(ms(200)));
        assert_eq!(f.logical_clock(), 1);
        assert_eq!(f.current_vote(), Vote::new(2, 0x5, 1), "startup vote");
    }

    #[test]
    fn non_voter_asker_gets_current_vote_in_every_state() {
        let mut f = Fle::new(cfg(3, &[1, 2, 3], false));
        f.start_election(ms(0), 0, 0);
        // LOOKING: current vote is the startup vote, round = my logicalclock.
        let out = f.on_notification(ms(1), 100, &notif(Looking, 100, 0, 1, 0));
        assert_eq!(sends_to(&out, 100), vec![notif(Looking, 3, 0, 1, 0)]);
        assert!(f.received_votes().get(100).is_none(), "never tallied");
        // Observers asking get the same treatment, whatever their state.
        let out = f.on_notification(ms(2), 7, &notif(Observing, 3, 0, 9, 0));
        assert_eq!(sends_to(&out, 7), vec![notif(Looking, 3, 0, 1, 0)]);
    }

    #[test]
    fn lower_round_looking_asker_gets_my_proposal_in_my_round() {
        let mut f = Fle::new(cfg(1, &[1, 2, 3], false));
        f.start_election(ms(0), 0, 0);
        // Jump to round 5 on 3's vote: proposal becomes 3's vote.
        f.on_notification(ms(1), 3, &notif(Looking, 3, 0, 5, 0));
        assert_eq!(f.logical_clock(), 5);
        let out = f.on_notification(ms(2), 2, &notif(Looking, 2, 0, 4, 0));
        assert_eq!(sends_to(&out, 2), vec![notif(Looking, 3, 0, 5, 0)]);
        // Same round: no reply (the broadcast already covered it).
        let out = f.on_notification(ms(3), 2, &notif(Looking, 2, 0, 5, 0));
        assert!(sends_to(&out, 2).is_empty());
    }

    #[test]
    fn same_round_worse_vote_is_answered_with_my_proposal() {
        let mut f = Fle::new(cfg(3, &[1, 2, 3], true));
        f.start_election(ms(0), 0x7, 1);
        // 2 votes for itself in my round with a lower zxid: it gets my
        // proposal back at once instead of at my next poll timeout.
        let out = f.on_notification(ms(1), 2, &notif(Looking, 2, 0x5, 1, 1));
        assert_eq!(sends_to(&out, 2), vec![notif(Looking, 3, 0x7, 1, 1)]);
        // Once it votes like me, nothing more is sent to it.
        let out = f.on_notification(ms(2), 2, &notif(Looking, 3, 0x7, 1, 1));
        assert!(sends_to(&out, 2).is_empty());
        // A better same-round vote is adopted and broadcast, not answered.
        let mut g = Fle::new(cfg(1, &[1, 2, 3], true));
        g.start_election(ms(0), 0, 1);
        let out = g.on_notification(ms(1), 2, &notif(Looking, 2, 0, 1, 1));
        assert_eq!(g.proposal(), Vote::new(2, 0, 1));
        assert_eq!(sends_to(&out, 3), vec![notif(Looking, 2, 0, 1, 1)]);
    }

    #[test]
    fn settled_server_replies() {
        let mut f = Fle::new(cfg(2, &[1, 2, 3], false));
        f.start_election(ms(0), 0, 0);
        f.on_notification(ms(1), 3, &notif(Looking, 3, 0, 1, 0));
        assert!(f.is_finalizing());
        let out = f.on_timer(ms(201));
        assert_eq!(
            out.decision,
            Some(Decision {
                vote: Vote::new(3, 0, 0),
                state: Following,
                election_epoch: 1,
                decided_by: DecidedBy::FinalizeWait,
            })
        );
        assert_eq!(out.timer, None);
        // Before sync: the decided vote's epoch.
        let out = f.on_notification(ms(300), 1, &notif(Looking, 1, 0, 2, 1));
        assert_eq!(sends_to(&out, 1), vec![notif(Following, 3, 0, 1, 0)]);
        f.set_established_epoch(1);
        let out = f.on_notification(ms(301), 1, &notif(Looking, 1, 0, 2, 1));
        assert_eq!(sends_to(&out, 1), vec![notif(Following, 3, 0, 1, 1)]);
        // Settled askers get nothing.
        let out = f.on_notification(ms(302), 1, &notif(Following, 3, 0, 1, 1));
        assert!(out.sends.is_empty());
        // After the role ends the current vote stays the last decision.
        f.leave_role();
        assert_eq!(f.state(), Looking);
        let out = f.on_notification(ms(303), 100, &notif(Looking, 100, 0, 1, 0));
        assert_eq!(sends_to(&out, 100), vec![notif(Looking, 3, 0, 1, 1)]);
    }

    #[test]
    fn poll_timeout_doubles_to_the_cap_and_resends_per_peer() {
        let mut c = cfg(1, &[1, 2, 3, 4, 5], false);
        c.max_notification_interval = ms(1000);
        let mut f = Fle::new(c);
        let out = f.start_election(ms(0), 0, 0);
        assert_eq!(out.timer, Some(ms(200)));
        f.set_link(2, LinkState::Up);
        f.set_link(4, LinkState::Connecting);
        f.set_link(5, LinkState::Down);
        // Early timer: nothing happens.
        let out = f.on_timer(ms(199));
        assert!(out.sends.is_empty() && out.dial.is_empty());
        assert_eq!(out.timer, Some(ms(200)));
        let mut t = ms(200);
        for expect_next in [400, 800, 1000, 1000] {
            let out = f.on_timer(t);
            let to: Vec<i64> = out.sends.iter().map(|s| s.to).collect();
            assert_eq!(to, vec![2, 3, 4], "Up, unknown and Connecting get a resend");
            assert!(
                out.sends.iter().all(|s| s.if_idle),
                "only if nothing is queued for them"
            );
            assert_eq!(out.dial, vec![5], "Down peers are dialled");
            assert_eq!(out.timer, Some(t + ms(expect_next)));
            t += ms(expect_next);
        }
    }

    #[test]
    fn poll_deadline_restarts_on_each_voter_notification() {
        let mut f = Fle::new(cfg(1, &[1, 2, 3], false));
        f.start_election(ms(0), 0, 0);
        // A lower-round vote is ignored by the loop but still restarts the
        // poll, as ZooKeeper's poll() returns it.
        let out = f.on_notification(ms(150), 2, &notif(Looking, 2, 0, 0, 0));
        assert_eq!(out.timer, Some(ms(350)));
        // A stranger's does not reach the loop.
        let out = f.on_notification(ms(160), 100, &notif(Looking, 100, 0, 1, 0));
        assert_eq!(out.timer, Some(ms(350)));
    }

    #[test]
    fn finalize_wait_restarts_on_each_not_better_vote_and_better_returns_to_loop() {
        let mut f = Fle::new(cfg(1, &[1, 2, 3, 4, 5], false));
        f.start_election(ms(0), 0, 0);
        f.on_notification(ms(1), 4, &notif(Looking, 4, 0, 1, 0));
        assert!(!f.is_finalizing(), "2 of 5");
        let out = f.on_notification(ms(3), 3, &notif(Looking, 4, 0, 1, 0));
        assert!(f.is_finalizing());
        assert_eq!(out.timer, Some(ms(203)));
        let out = f.on_notification(ms(100), 2, &notif(Looking, 2, 0, 1, 0));
        assert_eq!(out.timer, Some(ms(300)), "not better: wait restarts");
        assert!(f.on_timer(ms(299)).decision.is_none());
        // A better vote, even from an older round, reopens the loop.
        let out = f.on_notification(ms(150), 5, &notif(Looking, 5, 0, 0, 0));
        assert!(!f.is_finalizing());
        assert!(out.decision.is_none());
        assert_eq!(
            f.proposal(),
            Vote::new(4, 0, 0),
            "old round ignored in the loop"
        );
    }

    #[test]
    fn finalize_expiry_decides_exactly_after_the_wait() {
        let mut f = Fle::new(cfg(1, &[1, 2, 3], false));
        f.start_election(ms(0), 0, 0);
        f.on_notification(ms(10), 3, &notif(Looking, 3, 0, 1, 0));
        assert!(f.on_timer(ms(209)).decision.is_none());
        let d = f.on_timer(ms(210)).decision.expect("decides at +200 ms");
        assert_eq!(d.vote.leader, 3);
        assert_eq!(d.state, Following);
        assert_eq!(f.decided_by(), Some(DecidedBy::FinalizeWait));
    }

    #[test]
    fn fast_rule_a_all_voters_agree() {
        let mut f = Fle::new(cfg(1, &[1, 2, 3], true));
        f.start_election(ms(0), 0, 0);
        f.on_notification(ms(1), 3, &notif(Looking, 3, 0, 1, 0));
        assert!(f.is_finalizing(), "2 unheard, link unknown: wait");
        let out = f.on_notification(ms(2), 2, &notif(Looking, 3, 0, 1, 0));
        assert_eq!(out.decision.map(|d| d.vote.leader), Some(3));
        assert_eq!(f.decided_by(), Some(DecidedBy::AllVotersAgree));
    }

    #[test]
    fn fast_rule_a_needs_every_vote_to_agree() {
        let mut f = Fle::new(cfg(1, &[1, 2, 3], true));
        f.start_election(ms(0), 0, 0);
        f.on_notification(ms(1), 3, &notif(Looking, 3, 0, 1, 0));
        // 2 still votes for itself: heard but disagreeing.
        let out = f.on_notification(ms(2), 2, &notif(Looking, 2, 0, 1, 0));
        assert!(out.decision.is_none());
        assert!(f.is_finalizing());
        let out = f.on_notification(ms(3), 2, &notif(Looking, 3, 0, 1, 0));
        assert!(out.decision.is_some(), "2 caught up");
    }

    #[test]
    fn fast_rule_b_only_when_every_unheard_voter_is_down() {
        for (link, decides) in [
            (None, false),
            (Some(LinkState::Up), false),
            (Some(LinkState::Connecting), false),
            (Some(LinkState::Down), true),
        ] {
            let mut f = Fle::new(cfg(1, &[1, 2, 3], true));
            if let Some(l) = link {
                f.set_link(2, l);
            }
            f.start_election(ms(0), 0, 0);
            let out = f.on_notification(ms(1), 3, &notif(Looking, 3, 0, 1, 0));
            assert_eq!(out.decision.is_some(), decides, "link {link:?}");
            if decides {
                assert_eq!(f.decided_by(), Some(DecidedBy::RestDown));
            }
        }
    }

    #[test]
    fn fast_rule_b_via_on_link_and_back_off_when_peer_returns() {
        let mut f = Fle::new(cfg(1, &[1, 2, 3], true));
        f.start_election(ms(0), 0, 0);
        f.on_notification(ms(1), 3, &notif(Looking, 3, 0, 1, 0));
        assert!(f.is_finalizing());
        let out = f.on_link(ms(5), 2, LinkState::Down);
        assert_eq!(out.decision.map(|d| d.state), Some(Following));
        // With fast_decide off the same link news changes nothing.
        let mut g = Fle::new(cfg(1, &[1, 2, 3], false));
        g.start_election(ms(0), 0, 0);
        g.on_notification(ms(1), 3, &notif(Looking, 3, 0, 1, 0));
        assert!(g.on_link(ms(5), 2, LinkState::Down).decision.is_none());
        assert!(g.on_timer(ms(201)).decision.is_some());
    }

    /// Sid 3 of 5 in round 1, finalizing on 4 with the votes of 1 and 2;
    /// 4's link Up but 4 unheard, 5's link as given.
    fn finalizing_on_4(fast: bool, link5: LinkState) -> Fle {
        let mut f = Fle::new(cfg(3, &[1, 2, 3, 4, 5], fast));
        f.set_link(4, LinkState::Up);
        f.set_link(5, link5);
        f.start_election(ms(0), 0, 1);
        f.on_notification(ms(1), 1, &notif(Looking, 4, 0, 1, 1));
        f.on_notification(ms(1), 2, &notif(Looking, 4, 0, 1, 1));
        assert!(f.is_finalizing(), "1, 2 and I agree on 4");
        f
    }

    #[test]
    fn leaders_own_leading_reply_ends_the_finalize_wait() {
        // Failover as traced in the election bench: sid 4 decided before
        // my LOOKING vote reached it, so all I get from it is its LEADING
        // answer in my round. Java drops that during finalizeWait.
        for fast in [true, false] {
            let mut f = finalizing_on_4(fast, LinkState::Down);
            let out = f.on_notification(ms(2), 4, &notif(Leading, 4, 0, 1, 1));
            if fast {
                let d = out.decision.expect("decided on 4's LEADING reply");
                assert_eq!(
                    (d.vote.leader, d.state, d.election_epoch),
                    (4, Following, 1)
                );
                assert_eq!(f.decided_by(), Some(DecidedBy::SameRoundSettled));
            } else {
                assert!(out.decision.is_none(), "ZooKeeper's wait is kept");
                assert!(f.on_timer(ms(202)).decision.is_some());
            }
        }
        // A settled vote for someone else, or from another round, is no
        // reason to stop waiting.
        for n in [notif(Leading, 4, 0, 2, 1), notif(Following, 5, 0, 1, 1)] {
            let mut f = finalizing_on_4(true, LinkState::Up);
            let out = f.on_notification(ms(2), 4, &n);
            assert!(out.decision.is_none(), "{n:?}");
        }
    }

    #[test]
    fn settled_same_round_vote_counts_for_rule_b() {
        // 2 already follows 4 in my round; 5 is Down: nothing better can come.
        let mut f = Fle::new(cfg(3, &[1, 2, 3, 4, 5], true));
        f.set_link(5, LinkState::Down);
        f.start_election(ms(0), 0, 1);
        f.on_notification(ms(1), 2, &notif(Following, 4, 0, 1, 1));
        f.on_notification(ms(1), 4, &notif(Looking, 4, 0, 1, 1));
        let out = f.on_notification(ms(2), 1, &notif(Looking, 4, 0, 1, 1));
        assert_eq!(out.decision.map(|d| d.vote.leader), Some(4));
        assert_eq!(f.decided_by(), Some(DecidedBy::RestDown));
    }

    #[test]
    fn zxid_minus_one_rule() {
        // My own -1: LOOKING votes ignored.
        let mut f = Fle::new(cfg(1, &[1, 2, 3], false));
        f.start_election(ms(0), -1, 0);
        f.on_notification(ms(1), 3, &notif(Looking, 3, 0, 1, 0));
        assert_eq!(f.proposal(), Vote::new(1, -1, 0));
        assert!(f.received_votes().get(3).is_none());
        // A -1 vote from a peer: ignored.
        let mut f = Fle::new(cfg(1, &[1, 2, 3], false));
        f.start_election(ms(0), 0, 0);
        f.on_notification(ms(1), 3, &notif(Looking, 3, -1, 1, 0));
        assert_eq!(f.proposal(), Vote::new(1, 0, 0));
        assert!(f.received_votes().get(3).is_none());
    }

    #[test]
    fn votes_for_non_voters_and_observing_senders_are_ignored() {
        let mut f = Fle::new(cfg(1, &[1, 2, 3], false));
        f.start_election(ms(0), 0, 0);
        f.on_notification(ms(1), 3, &notif(Looking, 9, 0, 1, 5));
        f.on_notification(ms(2), 2, &notif(Observing, 3, 0, 1, 0));
        assert_eq!(f.proposal(), Vote::new(1, 0, 0));
        assert_eq!(f.received_votes().len(), 1, "only my own vote");
    }

    #[test]
    fn backlog_before_start_is_processed_and_cleared_on_decision() {
        let mut f = Fle::new(cfg(1, &[1, 2, 3], false));
        // Not yet electing: buffered, not lost.
        let out = f.on_notification(ms(0), 3, &notif(Looking, 3, 0, 1, 0));
        assert!(out.sends.is_empty() && out.timer.is_none());
        let out = f.start_election(ms(1), 0, 0);
        assert!(f.is_finalizing(), "3's buffered vote counted");
        assert!(out.sends.iter().any(|s| s.notification.leader == 3));
    }

    #[test]
    fn newer_round_vote_received_while_following_counts_in_the_next_election() {
        // Failover trace: 2 went LOOKING (round 2) a moment before I noticed
        // the leader was gone; its votes reached me while I still followed.
        for fast in [true, false] {
            let mut f = Fle::new(cfg(1, &[1, 2, 3, 4, 5], fast));
            f.start_election(ms(0), 0, 0);
            for from in [2, 3, 4] {
                f.on_notification(ms(1), from, &notif(Looking, 5, 0, 1, 0));
            }
            f.on_notification(ms(1), 5, &notif(Looking, 5, 0, 1, 0));
            f.on_timer(ms(300));
            assert_eq!(f.state(), Following);
            let out = f.on_notification(ms(310), 2, &notif(Looking, 4, 0, 2, 1));
            assert_eq!(
                sends_to(&out, 2),
                vec![notif(Following, 5, 0, 1, 0)],
                "answered with my decision, as ZooKeeper does"
            );
            // An asker still in my round is answered and not kept.
            f.on_notification(ms(310), 3, &notif(Looking, 3, 0, 1, 1));
            f.leave_role();
            f.set_link(5, LinkState::Down);
            f.start_election(ms(311), 0, 1);
            let kept = f.received_votes().get(2).map(|v| v.vote);
            if fast {
                assert_eq!(kept, Some(Vote::new(4, 0, 1)));
                assert_eq!(f.proposal(), Vote::new(4, 0, 1));
                assert!(f.received_votes().get(3).is_none());
            } else {
                assert_eq!(kept, None, "ZooKeeper forgets it");
            }
        }
    }

    #[test]
    fn one_voter_ensemble_decides_on_its_own_vote() {
        let mut f = Fle::new(cfg(1, &[1], true));
        let out = f.start_election(ms(0), 0, 0);
        assert!(out.sends.is_empty());
        assert_eq!(out.decision.map(|d| d.state), Some(Leading));
        let mut g = Fle::new(cfg(1, &[1], false));
        g.start_election(ms(0), 0, 0);
        assert_eq!(g.on_timer(ms(200)).decision.map(|d| d.state), Some(Leading));
    }

    #[test]
    fn a_non_voter_that_asked_is_told_the_decision_unasked() {
        for fast in [true, false] {
            let mut f = Fle::new(cfg(3, &[1, 2, 3], fast));
            f.start_election(ms(0), 0, 0);
            // ZooKeeper's reply first: my current (startup) vote.
            let out = f.on_notification(ms(1), 100, &notif(Looking, i64::MIN, 0, 4, 0));
            assert_eq!(sends_to(&out, 100), vec![notif(Looking, 3, 0, 1, 0)]);
            f.on_notification(ms(2), 1, &notif(Looking, 3, 0, 1, 0));
            let mut out = f.on_notification(ms(3), 2, &notif(Looking, 3, 0, 1, 0));
            if !fast {
                out = f.on_timer(ms(250));
            }
            assert_eq!(out.decision.map(|d| d.state), Some(Leading));
            let told = sends_to(&out, 100);
            if fast {
                // Rule 3's answer, without waiting for its next poll.
                assert_eq!(told, vec![notif(Leading, 3, 0, 1, 0)]);
            } else {
                assert!(told.is_empty(), "ZooKeeper's behaviour exactly");
            }
            // Told once: the next decision does not repeat it.
            f.leave_role();
            f.start_election(ms(300), 0, 0);
            f.on_notification(ms(301), 1, &notif(Looking, 3, 0, 2, 0));
            let out = f.on_notification(ms(302), 2, &notif(Looking, 3, 0, 2, 0));
            assert!(sends_to(&out, 100).is_empty());
        }
    }

    #[test]
    fn no_early_decision_for_a_proposed_leader_that_is_down() {
        // An observer after its leader 3 died: the voters, LOOKING again in
        // its round, answer with their previous decision, 3 (peer epoch 1),
        // whose link is Down here.
        let mut f = Fle::new(cfg(4, &[1, 2, 3], true));
        f.start_election(ms(0), 0, 1);
        f.set_link(3, LinkState::Down);
        f.on_notification(ms(2), 1, &notif(Looking, 3, 0, 1, 1));
        let out = f.on_notification(ms(3), 2, &notif(Looking, 3, 0, 1, 1));
        assert!(
            out.decision.is_none(),
            "a quorum of stale votes for a Down leader"
        );
        assert!(f.is_finalizing());
        // The voters decide 2 in the same round with the same history (so
        // 2's vote does not beat 3's) and tell it (the rule above).
        f.on_notification(ms(40), 1, &notif(Following, 2, 0, 1, 1));
        let out = f.on_notification(ms(41), 2, &notif(Leading, 2, 0, 1, 1));
        let d = out.decision.expect("decided on the voters' news");
        assert_eq!((d.state, d.vote.leader), (Observing, 2));
        // Without the Down evidence the same stale quorum decides at once
        // (rule (b): the one unheard voter is Down only if its link says so).
        let mut g = Fle::new(cfg(4, &[1, 2, 3], true));
        g.start_election(ms(0), 0, 1);
        g.set_link(2, LinkState::Down);
        g.on_notification(ms(1), 1, &notif(Looking, 3, 0, 1, 1));
        let out = g.on_notification(ms(2), 3, &notif(Looking, 3, 0, 1, 1));
        assert_eq!(out.decision.map(|d| d.vote.leader), Some(3));
        // With fast_decide off, ZooKeeper's finalize wait: the role reports
        // are dropped and the stale quorum wins after the wait.
        let mut h = Fle::new(cfg(4, &[1, 2, 3], false));
        h.start_election(ms(0), 0, 1);
        h.set_link(3, LinkState::Down);
        h.on_notification(ms(1), 1, &notif(Looking, 3, 0, 1, 1));
        h.on_notification(ms(2), 2, &notif(Looking, 3, 0, 1, 1));
        h.on_notification(ms(40), 1, &notif(Following, 2, 0, 1, 1));
        h.on_notification(ms(41), 2, &notif(Leading, 2, 0, 1, 1));
        assert_eq!(h.on_timer(ms(250)).decision.map(|d| d.vote.leader), Some(3));
    }

    #[test]
    fn the_leader_just_lost_yields_to_role_reports_until_it_speaks() {
        // An observer of leader 3 whose role ended; its dial to 3 has not
        // failed yet (link Connecting), so 3 is not Down.
        let observer_of_3 = || {
            let mut f = Fle::new(cfg(4, &[1, 2, 3], true));
            f.start_election(ms(0), 0, 1);
            f.on_notification(ms(1), 1, &notif(Following, 3, 0, 1, 1));
            let out = f.on_notification(ms(2), 3, &notif(Leading, 3, 0, 1, 1));
            assert_eq!(out.decision.map(|d| d.vote.leader), Some(3));
            f.leave_role();
            f.start_election(ms(100), 0, 1);
            f.set_link(3, LinkState::Connecting);
            // The voters' stale answers: a quorum for 3, finalizing.
            f.on_notification(ms(101), 1, &notif(Looking, 3, 0, 2, 1));
            f.on_notification(ms(102), 2, &notif(Looking, 3, 0, 2, 1));
            assert!(f.is_finalizing());
            f
        };
        // The voters' decision (same history: 2's vote does not beat 3's)
        // interrupts the wait.
        let mut f = observer_of_3();
        f.on_notification(ms(140), 1, &notif(Following, 2, 0, 2, 1));
        let out = f.on_notification(ms(141), 2, &notif(Leading, 2, 0, 2, 1));
        assert_eq!(
            out.decision.map(|d| (d.state, d.vote.leader)),
            Some((Observing, 2))
        );
        // 3 itself speaks: alive after all; its vote completes the quorum
        // of all three voters for 3 (rule (a)).
        let mut f = observer_of_3();
        let out = f.on_notification(ms(103), 3, &notif(Looking, 3, 0, 2, 1));
        assert_eq!(out.decision.map(|d| d.vote.leader), Some(3));
    }

    #[test]
    fn observer_proposes_min_and_never_counts_itself() {
        let mut f = Fle::new(cfg(4, &[1, 2, 3], true));
        let out = f.start_election(ms(0), 0x10, 1);
        assert_eq!(out.sends.len(), 3);
        assert_eq!(
            out.sends[0].notification,
            notif(Looking, i64::MIN, i64::MIN, 1, i64::MIN)
        );
        assert!(f.received_votes().is_empty());
        // Out-of-election votes make it OBSERVING.
        f.on_notification(ms(1), 1, &notif(Following, 3, 0, 1, 1));
        let out = f.on_notification(ms(2), 3, &notif(Leading, 3, 0, 1, 1));
        assert_eq!(out.decision.map(|d| d.state), Some(Observing));
    }

    #[test]
    fn the_preferred_leader_wins_ties_only_and_only_until_the_first_empty_poll() {
        let mut c = cfg(3, &[1, 2, 3], true);
        c.preferred_leader = Some(1);
        let mut m = Fle::new(c);
        let out = m.start_election(ms(0), 0x105, 1);
        assert_eq!(sends_to(&out, 1)[0].leader, 3);
        // Equal history: 1 beats my own vote.
        let out = m.on_notification(ms(1), 1, &notif(Looking, 1, 0x105, 1, 1));
        assert_eq!(sends_to(&out, 2)[0].leader, 1);
        // And 2's.
        let out = m.on_notification(ms(2), 2, &notif(Looking, 2, 0x105, 1, 1));
        assert!(sends_to(&out, 1).is_empty() && m.proposal().leader == 1);
        // A better history still wins over the preference.
        let mut c = cfg(3, &[1, 2, 3], true);
        c.preferred_leader = Some(1);
        let mut m = Fle::new(c);
        m.start_election(ms(0), 0x105, 1);
        m.on_notification(ms(1), 2, &notif(Looking, 2, 0x106, 1, 1));
        m.on_notification(ms(2), 1, &notif(Looking, 1, 0x105, 1, 1));
        assert_eq!(m.proposal().leader, 2);
        // After an empty poll the round uses ZooKeeper's order.
        let mut c = cfg(3, &[1, 2, 3], true);
        c.preferred_leader = Some(1);
        let mut m = Fle::new(c);
        let out = m.start_election(ms(0), 0x105, 1);
        m.on_timer(out.timer.expect("poll"));
        let out = m.on_notification(ms(500), 1, &notif(Looking, 1, 0x105, 1, 1));
        assert!(sends_to(&out, 2).is_empty());
        assert_eq!(m.proposal().leader, 3);
    }
}
