//! The election driver: [`Fle`] plus every rule that decides what `Fle`
//! hears about links, as one sans-IO state machine (issue 13).
//!
//! The runtime (`peer`'s election thread over `cnx`) and the simulator feed
//! a [`Driver`] *facts* only, as [`Input`]s: an election link came up or
//! closed, a dial failed (and how), a notification arrived, time passed, an
//! election starts, Zab established an epoch, a role ended (and why). The
//! driver answers with the same [`Output`] as [`Fle`]: notifications to send
//! (some only if nothing is queued for that peer, [`Message::if_idle`]),
//! peers to dial, the next deadline, and at most one [`Decision`]. It owns
//! no socket, thread or clock, so the simulator runs exactly the rules the
//! runtime runs.
//!
//! # The Down rule
//!
//! `fast_decide` rule (b) ([`crate::election::FleConfig::fast_decide`])
//! stops the finalize wait early when every voter not heard in this round
//! is *Down*. This module is the only place that decides Down, from the
//! facts it was given, and the rule is:
//!
//! A voter is **Down** only on positive evidence that it cannot reach this
//! server right now:
//!
//! * **(a) Lost and refused.** There is no live election link to it, a link
//!   to it was up at some point in this process's life, and the latest
//!   dial attempt since that link closed was refused
//!   ([`DialError::Refused`]) or timed out ([`DialError::TimedOut`]). A peer
//!   never reached is not Down however its dials fail: in a cold start the
//!   peers come up milliseconds apart and the one not started yet may hold
//!   the best vote. A dial that failed another way ([`DialError::Other`]:
//!   host unreachable, handshake not written) is no evidence and replaces
//!   any earlier refusal.
//! * **(b) Left for silence.** It is the leader this server just left
//!   because it went silent ([`RoleEnd::LeaderSilent`]: no PING for the
//!   read timeout in Zab's broadcast phase; a leader still gathering its
//!   quorum sends nothing and ends the role with another reason), and
//!   nothing has been heard from it since. Its TCP link may well still be up (a
//!   stopped process's kernel keeps ACKing), which is why this is the one
//!   case where a voter with a live link is Down. A notification from it or
//!   a new link to it clears the mark, and so does the next role end.
//!
//! Nothing else makes a voter Down: not a closed link by itself, not a dial
//! in progress, not a link that was never up.
//!
//! Evidence is gathered, not waited for: when a link closes during an
//! election the driver dials that peer at once (the connection layer does
//! not redial an idle peer on its own), and the broadcast that opens every
//! election dials every peer without a link. On loopback a refused dial
//! comes back well within a millisecond, so a failover does not sit out
//! `finalizeWait` for a dead leader.
//!
//! Why this is safe: a voter whose latest dial was refused or timed out
//! could not have delivered a vote to this server at that moment, and when
//! it can again it either dials in (its link comes up and it is no longer
//! Down) or answers our next dial. What remains is the race the docs of
//! `fast_decide` describe and ZooKeeper shares: a vote already on its way
//! through a third server. The simulator checks the rule against its ground
//! truth (`sim::invariants::down_voters_were_cut`): every voter counted
//! Down by a fast decision was dead or cut off from the decider when the
//! driver got its evidence.
//!
//! # Resigning
//!
//! A leader that gives its leadership up (the embedder's `resign`, or a
//! hand-off to the preferred leader) ends its Zab term, which closes every
//! learner connection (its followers go LOOKING at once instead of after
//! `syncLimit` ticks), and reports [`RoleEnd::Resigned`] with a hold-off.
//! Until the hold-off ends this server takes part in every election as a
//! voter that does not stand ([`Fle::set_candidate`]):
//!
//! * It never proposes itself. Its round starts with a placeholder that
//!   names no voter and travels as an observer's vote (Long.MIN_VALUE), which
//!   zkfle and Java peers alike leave out of their tallies; it then adopts
//!   the best vote it hears, so it still counts towards the quorum.
//! * **Data rule**: it adopts only a candidate whose `(peerEpoch, zxid)` is
//!   at least its own (the placeholder carries its history as a floor in
//!   the total order). A quorum that elects with it therefore elects a
//!   peer holding everything it had; a quorum that elects without it
//!   intersects, in a candidate, every quorum that acknowledged an entry,
//!   and FLE's usual rule applies. No committed entry is lost whoever the
//!   resigning leader held alone.
//! * It ignores any vote naming itself (only a stale one can), so no
//!   decision of its own makes it leader; and since it never proposes
//!   itself, no peer's LOOKING vote of a round it takes part in names it.
//!
//! Liveness: the others elect among themselves as fast as after a leader
//! crash, and faster (its link stays up, its votes arrive at once). If
//! they cannot (they do not form a quorum without it and none has its
//! history), nobody is elected until the hold-off ends; then it stands
//! again, in the round under way, and wins as before.
//!
//! With Java peers: a Java peer never sees a vote for the resigning server
//! (it is never proposed), so it cannot elect it; it logs the placeholder
//! as a vote for a non-member and ignores it, exactly as it treats an
//! observer's vote. The hold-off binds only the zkfle peer that resigned.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::wire::Notification;

use super::fle::Fle;
#[cfg(doc)]
use super::types::Decision;
use super::types::{FleConfig, LinkState, Message, Output};

/// How a dial attempt to a peer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialError {
    /// The connection was refused (nobody listens on the peer's election
    /// port: its process is gone), on every configured address.
    Refused,
    /// No answer within the dial timeout (`cnxTimeout`) on some address,
    /// and every other address refused or timed out too: the peer's host
    /// is down or cut off.
    TimedOut,
    /// Any other failure (host or network unreachable, the connection
    /// reset while our handshake was written, no worker threads). Not
    /// evidence that the peer is gone.
    Other,
}

/// Why a role (leading, following, observing) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleEnd {
    /// The leader closed the connection (or its process died): a learner's
    /// view.
    LeaderClosed,
    /// The leader sent nothing for `silent_for` (the read timeout of
    /// syncLimit ticks) in Zab's broadcast phase, where it owes a PING
    /// every half tick, without closing the connection: hung, stopped, or
    /// cut off one way. Marks `leader` Down (rule (b)). Silence before the
    /// broadcast phase is no such evidence (the leader may be waiting for
    /// its quorum) and must be reported as [`RoleEnd::Other`].
    LeaderSilent {
        /// The leader this server followed.
        leader: i64,
        /// How long nothing came from it.
        silent_for: Duration,
    },
    /// A leader lost its quorum of synced followers (or never got one
    /// within initLimit).
    QuorumLost,
    /// Anything else: sync refused, an epoch that cannot be accepted, an
    /// I/O error, an embedder asking for a new election.
    Other,
    /// This server led and gave the leadership up (the embedder's
    /// `resign`, or a hand-off to the preferred leader). For `hold_off`
    /// from now it takes part in elections without standing for leader
    /// ([`Fle::set_candidate`]; see "Resigning" in the module docs).
    Resigned {
        /// How long it does not stand.
        hold_off: Duration,
    },
}

/// One fact for the driver. See [`Driver::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The election link to `sid` is up (a first link; replacing a live
    /// link by a newer one is no news).
    LinkUp {
        /// The peer.
        sid: i64,
    },
    /// The last election link to `sid` closed.
    LinkClosed {
        /// The peer.
        sid: i64,
    },
    /// One dial attempt to `sid` failed.
    DialFailed {
        /// The peer.
        sid: i64,
        /// How.
        error: DialError,
    },
    /// A notification arrived from `from` (the sid of the connection's
    /// handshake).
    Notification {
        /// The sender.
        from: i64,
        /// What it sent.
        notification: Notification,
    },
    /// Time has reached `now` (the deadline of an earlier
    /// [`Output::timer`], or later).
    Timer,
    /// Enter LOOKING and start a round with this vote (ZooKeeper's
    /// `lookForLeader`).
    StartElection {
        /// The last zxid of the local database (0 when empty).
        last_zxid: i64,
        /// The persisted currentEpoch.
        current_epoch: i64,
    },
    /// Zab established `epoch` with the decided leader: replies to LOOKING
    /// askers carry it from now on.
    EpochEstablished {
        /// The established epoch.
        epoch: i64,
    },
    /// The role this server took after its last decision ended. The
    /// server is LOOKING again and answers with its last decision until
    /// [`Input::StartElection`].
    RoleEnded {
        /// Why.
        reason: RoleEnd,
    },
}

/// Why the driver counts a voter Down (the module docs give the rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// Rule (a): lost, and the latest dial since was refused.
    DialRefused,
    /// Rule (a): lost, and the latest dial since timed out.
    DialTimedOut,
    /// Rule (b): the leader this server left for silence.
    LeftSilent,
}

/// The evidence behind one voter's Down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownEvidence {
    /// Which rule.
    pub reason: DownReason,
    /// When the driver got the fact that is the evidence (the failed dial,
    /// the role end).
    pub at: Duration,
}

/// What the driver knows about one peer's link, built from facts only.
#[derive(Debug, Clone, Copy, Default)]
struct PeerLink {
    /// A link is live.
    up: bool,
    /// A link was up at some point.
    ever_up: bool,
    /// The latest failed dial since the link last closed, and when.
    failed_dial: Option<(DialError, Duration)>,
    /// Left for silence at this time; cleared by any news from it.
    silent_since: Option<Duration>,
    /// The round (logical clock) in which a closed link was last redialled:
    /// once per round at most, so a peer that accepts and drops links in a
    /// loop cannot make us dial in a loop (the poll-timeout resend dials
    /// again at its own, backed-off pace).
    redialled_in: Option<i64>,
}

/// [`Fle`] and the link bookkeeping around it; see the module docs.
#[derive(Debug, Clone)]
pub struct Driver {
    fle: Fle,
    links: BTreeMap<i64, PeerLink>,
    /// Resigned: not a candidate until this time.
    hold_off_until: Option<Duration>,
}

impl Driver {
    /// A driver for a server that is LOOKING but not yet electing: feed it
    /// [`Input::StartElection`] to start.
    pub fn new(cfg: FleConfig) -> Driver {
        Driver {
            fle: Fle::new(cfg),
            links: BTreeMap::new(),
            hold_off_until: None,
        }
    }

    /// The election state machine (read-only: every input goes through
    /// [`Driver::step`]).
    pub fn fle(&self) -> &Fle {
        &self.fle
    }

    /// The configuration the election runs with.
    pub fn config(&self) -> &FleConfig {
        self.fle.config()
    }

    /// Feeds one fact at time `now` (monotonic, any origin) and returns
    /// what to do. Every input returns [`Output::timer`], the only deadline
    /// from now on.
    pub fn step(&mut self, now: Duration, input: Input) -> Output {
        let mut out = Output::default();
        match input {
            Input::LinkUp { sid } => {
                self.update(sid, |l| {
                    l.up = true;
                    l.ever_up = true;
                    l.failed_dial = None;
                    l.silent_since = None;
                });
                self.report(now, sid, &mut out);
            }
            Input::LinkClosed { sid } => {
                let round = self.fle.logical_clock();
                let electing = self.fle.is_electing() && sid != self.config().my_sid;
                let mut redial = false;
                self.update(sid, |l| {
                    l.up = false;
                    l.failed_dial = None;
                    if electing && l.redialled_in != Some(round) {
                        l.redialled_in = Some(round);
                        redial = true;
                    }
                });
                self.report(now, sid, &mut out);
                if redial {
                    // The connection layer redials only peers it has
                    // something queued for; the election wants to know at
                    // once whether this one is gone (rule (a)).
                    out.dial.push(sid);
                }
            }
            Input::DialFailed { sid, error } => {
                // While a link is up a failed dial says nothing about it
                // (a dial-back that lost to the live link, a late result).
                if !self.links.get(&sid).is_some_and(|l| l.up) {
                    self.update(sid, |l| l.failed_dial = Some((error, now)));
                    self.report(now, sid, &mut out);
                }
            }
            Input::Notification { from, notification } => {
                if self
                    .links
                    .get(&from)
                    .is_some_and(|l| l.silent_since.is_some())
                {
                    self.update(from, |l| l.silent_since = None);
                    self.report(now, from, &mut out);
                }
                let o = self.fle.on_notification(now, from, &notification);
                merge(&mut out, o);
            }
            Input::Timer => {
                if self.hold_off_until.is_some_and(|t| now >= t) {
                    // The hold-off is over: stand again, in the round under
                    // way if there is one (the others may be unable to form
                    // a quorum without me, or none may hold my history).
                    self.hold_off_until = None;
                    let o = self.fle.set_candidate(now, true);
                    merge(&mut out, o);
                }
                let mut o = self.fle.on_timer(now);
                // `Fle` dials its Down voters on a poll timeout instead of
                // resending (ZooKeeper's connectAll). A voter Down by rule
                // (b) may still have a live link, and dialling a live link
                // does nothing: such a leader, which answers LOOKING votes
                // but sends none of its own, would never hear this round
                // again, and this server would wait for its LEADING reply
                // forever (found by the simulator, seed 507858). It gets
                // the resend instead.
                let live: Vec<i64> = o
                    .dial
                    .iter()
                    .copied()
                    .filter(|&v| self.is_link_up(v))
                    .collect();
                if !live.is_empty() {
                    o.dial.retain(|v| !live.contains(v));
                    let p = self.fle.proposal();
                    let n = Notification {
                        state: crate::wire::ServerState::Looking,
                        leader: p.leader,
                        zxid: p.zxid,
                        election_epoch: self.fle.logical_clock(),
                        peer_epoch: p.peer_epoch,
                        version: 0,
                    };
                    for to in live {
                        o.sends.push(Message {
                            to,
                            notification: n,
                            if_idle: true,
                        });
                    }
                }
                merge(&mut out, o);
            }
            Input::StartElection {
                last_zxid,
                current_epoch,
            } => {
                if self.hold_off_until.is_some_and(|t| now >= t) {
                    self.hold_off_until = None;
                    let o = self.fle.set_candidate(now, true);
                    merge(&mut out, o);
                }
                let o = self.fle.start_election(now, last_zxid, current_epoch);
                merge(&mut out, o);
            }
            Input::EpochEstablished { epoch } => self.fle.set_established_epoch(epoch),
            Input::RoleEnded { reason } => {
                self.fle.leave_role();
                // A mark lasts one election: the one that follows the role
                // its leader was silent in.
                let marked: Vec<i64> = self
                    .links
                    .iter()
                    .filter(|(_, l)| l.silent_since.is_some())
                    .map(|(&s, _)| s)
                    .collect();
                for sid in marked {
                    self.update(sid, |l| l.silent_since = None);
                    self.report(now, sid, &mut out);
                }
                if let RoleEnd::LeaderSilent { leader, .. } = reason {
                    if leader != self.config().my_sid {
                        self.update(leader, |l| l.silent_since = Some(now));
                        self.report(now, leader, &mut out);
                    }
                }
                if let RoleEnd::Resigned { hold_off } = reason {
                    // A later resignation extends the hold-off, never
                    // shortens it.
                    let until = now.saturating_add(hold_off);
                    self.hold_off_until = Some(self.hold_off_until.map_or(until, |t| t.max(until)));
                    let o = self.fle.set_candidate(now, false);
                    merge(&mut out, o);
                }
            }
        }
        out.dial.sort_unstable();
        out.dial.dedup();
        out.timer = self.deadline();
        out
    }

    /// The only deadline: the election's, or the end of a hold-off while
    /// an election runs (outside one, standing again waits for the next
    /// [`Input::StartElection`], which checks the hold-off itself).
    fn deadline(&self) -> Option<Duration> {
        let e = self.fle.deadline();
        match (e, self.hold_off_until) {
            (Some(e), Some(h)) => Some(e.min(h)),
            (e, _) => e,
        }
    }

    /// The end of the hold-off of a resignation, while one runs.
    pub fn hold_off_until(&self) -> Option<Duration> {
        self.hold_off_until
    }

    /// Why `sid` counts as Down, or `None` if it does not (the module docs
    /// give the rule).
    pub fn down_evidence(&self, sid: i64) -> Option<DownEvidence> {
        let l = self.links.get(&sid)?;
        if let Some(at) = l.silent_since {
            return Some(DownEvidence {
                reason: DownReason::LeftSilent,
                at,
            });
        }
        if l.up {
            return None;
        }
        if !l.ever_up {
            return None;
        }
        match l.failed_dial {
            Some((DialError::Refused, at)) => Some(DownEvidence {
                reason: DownReason::DialRefused,
                at,
            }),
            Some((DialError::TimedOut, at)) => Some(DownEvidence {
                reason: DownReason::DialTimedOut,
                at,
            }),
            Some((DialError::Other, _)) | None => None,
        }
    }

    /// Every voter (other than this server) that counts as Down now, with
    /// its evidence, ascending sid.
    pub fn down_voters(&self) -> Vec<(i64, DownEvidence)> {
        let me = self.config().my_sid;
        self.config()
            .verifier
            .voters()
            .into_iter()
            .filter(|&v| v != me)
            .filter_map(|v| self.down_evidence(v).map(|e| (v, e)))
            .collect()
    }

    /// True if the driver was told the link to `sid` is up.
    pub fn is_link_up(&self, sid: i64) -> bool {
        self.links.get(&sid).is_some_and(|l| l.up)
    }

    fn update(&mut self, sid: i64, f: impl FnOnce(&mut PeerLink)) {
        f(self.links.entry(sid).or_default());
    }

    /// The link state `Fle` should hold for `sid`.
    fn state(&self, sid: i64) -> LinkState {
        if self.down_evidence(sid).is_some() {
            LinkState::Down
        } else if self.is_link_up(sid) {
            LinkState::Up
        } else {
            LinkState::Connecting
        }
    }

    /// Tells `Fle` the state of `sid`'s link if it changed; a change to
    /// Down may end a finalize wait (rule (b)).
    fn report(&mut self, now: Duration, sid: i64, out: &mut Output) {
        let state = self.state(sid);
        if self.fle.link(sid) != Some(state) {
            let o = self.fle.on_link(now, sid, state);
            merge(out, o);
        }
    }
}

/// Appends `more` to `out`; the timer is recomputed by the caller and a
/// machine decides at most once per call.
fn merge(out: &mut Output, more: Output) {
    // Taking the vector when there is nothing to append to saves an
    // allocation and a copy per notification (this runs for each one).
    if out.sends.is_empty() {
        out.sends = more.sends;
    } else {
        out.sends.extend(more.sends);
    }
    out.dial.extend(more.dial);
    if out.decision.is_none() {
        out.decision = more.decision;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QuorumVerifier;
    use crate::election::test_util::{ms, notif};
    use crate::election::DecidedBy;
    use crate::wire::ServerState::{Following, Leading, Looking};

    fn driver(me: i64, voters: &[i64]) -> Driver {
        Driver::new(FleConfig::new(
            me,
            QuorumVerifier::majority(voters.iter().copied()),
        ))
    }

    fn start(d: &mut Driver, at: u64) -> Output {
        d.step(
            ms(at),
            Input::StartElection {
                last_zxid: 0,
                current_epoch: 1,
            },
        )
    }

    fn vote(d: &mut Driver, at: u64, from: i64, leader: i64) -> Output {
        d.step(
            ms(at),
            Input::Notification {
                from,
                notification: notif(Looking, leader, 0, d.fle().logical_clock(), 1),
            },
        )
    }

    fn fact(d: &mut Driver, at: u64, input: Input) -> Output {
        d.step(ms(at), input)
    }

    /// Sid 1 of {1,2,3}: finalizing on 3 with 3's vote, 2 unheard.
    fn finalizing(d: &mut Driver) {
        start(d, 10);
        vote(d, 11, 3, 3);
        assert!(d.fle().is_finalizing());
    }

    #[test]
    fn a_lost_peer_whose_dial_is_refused_is_down_and_ends_the_wait() {
        let mut d = driver(1, &[1, 2, 3]);
        fact(&mut d, 0, Input::LinkUp { sid: 2 });
        fact(&mut d, 1, Input::LinkUp { sid: 3 });
        finalizing(&mut d);
        let out = fact(&mut d, 12, Input::LinkClosed { sid: 2 });
        assert_eq!(out.dial, vec![2], "a link lost while electing is redialled");
        assert!(out.decision.is_none(), "closed is not Down");
        let out = fact(
            &mut d,
            13,
            Input::DialFailed {
                sid: 2,
                error: DialError::Refused,
            },
        );
        assert_eq!(out.decision.map(|x| x.state), Some(Following));
        assert_eq!(d.fle().decided_by(), Some(DecidedBy::RestDown));
        assert_eq!(
            d.down_evidence(2),
            Some(DownEvidence {
                reason: DownReason::DialRefused,
                at: ms(13)
            })
        );
    }

    #[test]
    fn a_closed_link_is_redialled_once_per_round() {
        let mut d = driver(1, &[1, 2, 3]);
        start(&mut d, 0);
        for (at, expect) in [(1, vec![2]), (3, vec![])] {
            fact(&mut d, at, Input::LinkUp { sid: 2 });
            let out = fact(&mut d, at + 1, Input::LinkClosed { sid: 2 });
            assert_eq!(out.dial, expect, "close at {}", at + 1);
        }
        // Not while in a role: the next election's broadcast dials.
        let mut d = driver(1, &[1, 2, 3]);
        fact(&mut d, 0, Input::LinkUp { sid: 2 });
        assert!(fact(&mut d, 1, Input::LinkClosed { sid: 2 })
            .dial
            .is_empty());
        let out = start(&mut d, 2);
        assert!(out.sends.iter().any(|m| m.to == 2));
    }

    #[test]
    fn never_reached_peers_other_failures_and_live_links_are_not_down() {
        // Cold start: 2 never answered. Refused or timed out, it may simply
        // not have started yet.
        for error in [DialError::Refused, DialError::TimedOut, DialError::Other] {
            let mut d = driver(1, &[1, 2, 3]);
            finalizing(&mut d);
            let out = fact(&mut d, 12, Input::DialFailed { sid: 2, error });
            assert!(out.decision.is_none(), "{error:?}");
            assert_eq!(d.down_evidence(2), None);
        }
        // Lost, but the latest dial failed some other way.
        let mut d = driver(1, &[1, 2, 3]);
        fact(&mut d, 0, Input::LinkUp { sid: 2 });
        fact(&mut d, 1, Input::LinkClosed { sid: 2 });
        fact(
            &mut d,
            2,
            Input::DialFailed {
                sid: 2,
                error: DialError::Refused,
            },
        );
        assert!(d.down_evidence(2).is_some());
        fact(
            &mut d,
            3,
            Input::DialFailed {
                sid: 2,
                error: DialError::Other,
            },
        );
        assert_eq!(d.down_evidence(2), None, "the latest attempt counts");
        // A failed dial while the link is up (a lost dial-back race) is
        // no news, and neither is one from before the link last closed.
        let mut d = driver(1, &[1, 2, 3]);
        fact(&mut d, 0, Input::LinkUp { sid: 2 });
        fact(
            &mut d,
            1,
            Input::DialFailed {
                sid: 2,
                error: DialError::Refused,
            },
        );
        assert_eq!(d.down_evidence(2), None);
        fact(&mut d, 2, Input::LinkClosed { sid: 2 });
        assert_eq!(d.down_evidence(2), None);
        // And a link that comes back lifts Down.
        fact(
            &mut d,
            3,
            Input::DialFailed {
                sid: 2,
                error: DialError::TimedOut,
            },
        );
        assert_eq!(
            d.down_evidence(2).map(|e| e.reason),
            Some(DownReason::DialTimedOut)
        );
        fact(&mut d, 4, Input::LinkUp { sid: 2 });
        assert_eq!(d.down_evidence(2), None);
    }

    #[test]
    fn a_leader_left_for_silence_is_down_until_heard_from() {
        let mut d = driver(1, &[1, 2, 3]);
        fact(&mut d, 0, Input::LinkUp { sid: 2 });
        fact(&mut d, 0, Input::LinkUp { sid: 3 });
        // Following 2, which hangs: its link stays up.
        fact(
            &mut d,
            5,
            Input::RoleEnded {
                reason: RoleEnd::LeaderSilent {
                    leader: 2,
                    silent_for: ms(4000),
                },
            },
        );
        assert_eq!(
            d.down_evidence(2).map(|e| e.reason),
            Some(DownReason::LeftSilent)
        );
        start(&mut d, 6);
        let out = vote(&mut d, 7, 3, 3);
        assert_eq!(out.decision.map(|x| x.vote.leader), Some(3));
        assert_eq!(d.fle().decided_by(), Some(DecidedBy::RestDown));

        // Hearing from it lifts the mark.
        let mut d = driver(1, &[1, 2, 3]);
        fact(&mut d, 0, Input::LinkUp { sid: 2 });
        fact(
            &mut d,
            5,
            Input::RoleEnded {
                reason: RoleEnd::LeaderSilent {
                    leader: 2,
                    silent_for: ms(4000),
                },
            },
        );
        start(&mut d, 6);
        vote(&mut d, 7, 2, 1);
        assert_eq!(d.down_evidence(2), None);
        let out = vote(&mut d, 8, 3, 3);
        assert!(out.decision.is_none(), "2 is heard and disagrees");
        // So does the next role end of another kind.
        let mut d = driver(1, &[1, 2, 3]);
        fact(
            &mut d,
            5,
            Input::RoleEnded {
                reason: RoleEnd::LeaderSilent {
                    leader: 2,
                    silent_for: ms(4000),
                },
            },
        );
        fact(
            &mut d,
            6,
            Input::RoleEnded {
                reason: RoleEnd::QuorumLost,
            },
        );
        assert_eq!(d.down_evidence(2), None);
    }

    #[test]
    fn poll_timeout_resends_only_if_idle_and_dials_down_voters() {
        let mut d = driver(1, &[1, 2, 3, 4]);
        fact(&mut d, 0, Input::LinkUp { sid: 2 });
        fact(&mut d, 0, Input::LinkUp { sid: 4 });
        fact(&mut d, 1, Input::LinkClosed { sid: 4 });
        fact(
            &mut d,
            2,
            Input::DialFailed {
                sid: 4,
                error: DialError::Refused,
            },
        );
        let out = start(&mut d, 10);
        assert!(out.sends.iter().all(|m| !m.if_idle), "the broadcast is not");
        let out = d.step(out.timer.expect("poll deadline"), Input::Timer);
        let resent: Vec<(i64, bool)> = out.sends.iter().map(|m| (m.to, m.if_idle)).collect();
        assert_eq!(resent, vec![(2, true), (3, true)]);
        assert_eq!(out.dial, vec![4]);
    }

    /// Found by the simulator (seed 507858, 9 peers): a follower left its
    /// leader for silence (rule (b) marks it Down) while their election
    /// link stayed up. The leader answers LOOKING votes but sends none of
    /// its own, and a poll timeout only dialled Down voters, which is a
    /// no-op on a live link: the follower never asked again and waited for
    /// the leader's LEADING reply forever. Now it resends.
    #[test]
    fn a_silent_leader_whose_link_is_up_still_gets_the_poll_resend() {
        let mut d = driver(1, &[1, 2, 3]);
        fact(&mut d, 0, Input::LinkUp { sid: 2 });
        fact(&mut d, 0, Input::LinkUp { sid: 3 });
        fact(
            &mut d,
            5,
            Input::RoleEnded {
                reason: RoleEnd::LeaderSilent {
                    leader: 2,
                    silent_for: ms(600),
                },
            },
        );
        let out = start(&mut d, 6);
        let out = d.step(out.timer.expect("poll deadline"), Input::Timer);
        let resent: Vec<(i64, bool)> = out.sends.iter().map(|m| (m.to, m.if_idle)).collect();
        assert_eq!(resent, vec![(3, true), (2, true)]);
        assert!(out.dial.is_empty(), "{:?}", out.dial);
        assert_eq!(
            out.sends[1].notification.election_epoch,
            d.fle().logical_clock()
        );
        assert_eq!(
            d.down_evidence(2).map(|e| e.reason),
            Some(DownReason::LeftSilent),
            "still Down for the finalize wait"
        );
    }

    const Z: i64 = 0x1_0000_0005;

    fn resigned(me: i64, hold_off: u64) -> Driver {
        let mut d = driver(me, &[1, 2, 3]);
        for sid in [1, 2, 3].into_iter().filter(|&s| s != me) {
            fact(&mut d, 0, Input::LinkUp { sid });
        }
        fact(
            &mut d,
            1,
            Input::RoleEnded {
                reason: RoleEnd::Resigned {
                    hold_off: ms(hold_off),
                },
            },
        );
        d
    }

    fn start_at(d: &mut Driver, at: u64, zxid: i64) -> Output {
        d.step(
            ms(at),
            Input::StartElection {
                last_zxid: zxid,
                current_epoch: 1,
            },
        )
    }

    fn looking(d: &mut Driver, at: u64, from: i64, leader: i64, zxid: i64) -> Output {
        let round = d.fle().logical_clock();
        d.step(
            ms(at),
            Input::Notification {
                from,
                notification: notif(Looking, leader, zxid, round, 1),
            },
        )
    }

    fn leaders(out: &Output) -> Vec<i64> {
        out.sends.iter().map(|m| m.notification.leader).collect()
    }

    #[test]
    fn a_resigned_leader_never_proposes_itself_and_elects_the_best_other() {
        let mut d = resigned(3, 10_000);
        let out = start_at(&mut d, 10, Z);
        // The placeholder travels as an observer's vote.
        assert_eq!(leaders(&out), vec![i64::MIN, i64::MIN]);
        assert!(out.sends.iter().all(|m| m.notification.zxid == i64::MIN));
        // A vote for me (stale) is neither adopted nor counted.
        let out = looking(&mut d, 11, 1, 3, Z);
        assert!(out.sends.is_empty() && out.decision.is_none());
        // 1 and 2 stand with my history: I adopt the better one, 2.
        let out = looking(&mut d, 12, 1, 1, Z);
        assert_eq!(leaders(&out), vec![1, 1]);
        let out = looking(&mut d, 13, 2, 2, Z);
        assert_eq!(leaders(&out), vec![2, 2]);
        let out = looking(&mut d, 14, 1, 2, Z);
        let dec = out.decision.expect("all three agree on 2");
        assert_eq!((dec.vote.leader, dec.state), (2, Following));
    }

    #[test]
    fn a_resigned_leader_votes_only_for_a_candidate_with_its_history() {
        let mut d = resigned(3, 10_000);
        start_at(&mut d, 10, Z);
        // 1 lacks my last entry: not adopted, whatever its sid.
        let out = looking(&mut d, 11, 1, 1, Z - 1);
        assert!(
            !leaders(&out).contains(&1),
            "adopted a vote behind my history: {:?}",
            leaders(&out)
        );
        assert_eq!(d.fle().proposal().leader, i64::MIN);
        // 2 holds it: adopted.
        let out = looking(&mut d, 12, 2, 2, Z);
        assert_eq!(leaders(&out), vec![2, 2]);
    }

    #[test]
    fn after_the_hold_off_a_resigned_leader_stands_again_in_the_round_under_way() {
        let mut d = resigned(3, 500);
        let out = start_at(&mut d, 10, Z);
        // Only 1 answers, and it is behind: nobody can win without me.
        looking(&mut d, 11, 1, 1, Z - 1);
        assert_eq!(d.hold_off_until(), Some(ms(501)));
        let mut timer = out.timer;
        let mut stood = None;
        while let Some(t) = timer {
            if t > ms(2000) {
                break;
            }
            let out = d.step(t, Input::Timer);
            if leaders(&out).contains(&3) {
                stood = Some(t);
                break;
            }
            timer = out.timer;
        }
        assert_eq!(
            stood,
            Some(ms(501)),
            "stands exactly when the hold-off ends"
        );
        assert!(d.fle().is_candidate());
        looking(&mut d, 502, 1, 3, Z);
        let out = looking(&mut d, 503, 2, 3, Z);
        assert_eq!(out.decision.map(|x| x.state), Some(Leading));
    }

    #[test]
    fn a_hold_off_spans_elections_and_ends_at_the_next_start_after_it() {
        let mut d = resigned(3, 300);
        start_at(&mut d, 10, Z);
        looking(&mut d, 11, 1, 2, Z);
        let out = looking(&mut d, 12, 2, 2, Z);
        assert_eq!(out.decision.map(|x| x.vote.leader), Some(2));
        // The new leader dies at once: the next election is within the
        // hold-off, so still no candidacy.
        fact(
            &mut d,
            20,
            Input::RoleEnded {
                reason: RoleEnd::LeaderClosed,
            },
        );
        let out = start_at(&mut d, 21, Z);
        assert_eq!(leaders(&out), vec![i64::MIN, i64::MIN]);
        fact(
            &mut d,
            30,
            Input::RoleEnded {
                reason: RoleEnd::Other,
            },
        );
        let out = start_at(&mut d, 400, Z);
        assert_eq!(leaders(&out), vec![3, 3]);
    }

    /// Found by the simulator (`--resign --store`, seed 433): the hold-off
    /// ended during a finalize wait on an adopted candidate, the peer swapped
    /// its proposal for itself, and the finalize deadline then decided that
    /// new proposal with no quorum behind it. A candidate already adopted
    /// is kept, and the wait decides what the quorum agreed on.
    #[test]
    fn a_hold_off_ending_during_a_finalize_wait_leaves_the_adopted_candidate() {
        let mut d = resigned(3, 100);
        start_at(&mut d, 10, Z);
        looking(&mut d, 11, 2, 2, Z);
        assert!(d.fle().is_finalizing(), "2 and I agree on 2, 1 unheard");
        let out = d.step(ms(101), Input::Timer);
        assert!(out.sends.is_empty(), "{:?}", leaders(&out));
        assert!(d.fle().is_candidate());
        let t = out.timer.expect("the finalize deadline");
        let out = d.step(t, Input::Timer);
        let dec = out.decision.expect("decides at the end of the wait");
        assert_eq!((dec.vote.leader, dec.state), (2, Following));
    }
}
