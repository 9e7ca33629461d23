//! The election side of a peer: process start, each election's start, the
//! production [`Driver`] fed one fact at a time (through the bug lens of
//! `inverted-order`), its output executed on the election network, what
//! each process heard recorded for the decision-time invariants, and the
//! decision checked and turned into a Zab role.

use std::time::Duration;

use crate::election::{DecidedBy, Decision, DownEvidence, DownReason, Driver, Input, Vote};
use crate::wire::{Notification, ServerState};

use super::invariants;
use super::peer::{Obs, Role};
use super::schedule::{ms, Ev};
use super::world::{lens, InjectedBug, World};

/// What kind of input a driver call was: decides which decision
/// invariants apply (see `invariants::decision_not_beaten`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Start,
    Timer,
    /// A link, dial or role fact.
    Fact,
    Deliver {
        from: i64,
        n: Notification,
    },
}

impl World {
    /// A process (re)starts from its disk: logical clock 0, LOOKING, and
    /// starts its first election.
    pub(super) fn start_peer(&mut self, sid: i64) {
        if self.alive(sid) {
            return;
        }
        self.boot_peer(sid);
        self.start_election(sid);
    }

    /// A process (re)starts from its disk, not electing yet.
    pub(super) fn boot_peer(&mut self, sid: i64) {
        let i = self.idx(sid);
        if self.peers[i].alive {
            return;
        }
        let cfg = self.peers[i].cfg.clone();
        {
            let pp = &mut self.peers[i];
            pp.alive = true;
            pp.started = true;
            pp.paused = false;
            pp.held.clear();
            pp.driver = Some(Driver::new(cfg));
            pp.obs = Obs::default();
            pp.timer = None;
            pp.role = Role::Looking;
            pp.role_gen += 1;
            pp.vote_mem = 0;
        }
        let now = self.now;
        self.truth.running(sid, now);
        if self.p.mode == crate::zab::Mode::Store {
            self.load_state(sid);
            if self.p.compact {
                let inc = self.peers[i].inc;
                let d = ms(self.rng.range(100, 1000));
                self.schedule(d, Ev::Compact { sid, inc });
            }
        }
        let (acc, ce, z) = {
            let pp = &self.peers[i];
            (pp.disk.accepted, pp.disk.current, self.vote_zxid(sid))
        };
        self.log(|| format!("sid {sid}: start (acceptedEpoch {acc}, currentEpoch {ce}, zxid {z:#x}), logical clock 0"));
        if self.hooks.instant_links {
            for o in 1..=self.p.n as i64 {
                self.connect_now(sid, o);
            }
        }
    }

    /// Enters LOOKING with the vote read from disk (ZooKeeper's
    /// `lookForLeader`).
    pub(super) fn start_election(&mut self, sid: i64) {
        let i = self.idx(sid);
        let mut last_zxid = self.vote_zxid(sid);
        let mut current_epoch = self.peers[i].disk.current;
        if self.bug == Some(InjectedBug::ResignNoFloor)
            && self.peers[i].resigned_until.is_some_and(|t| self.now < t)
        {
            (last_zxid, current_epoch) = (0, 0);
        }
        self.feed(
            sid,
            Input::StartElection {
                last_zxid,
                current_epoch,
            },
        );
    }

    /// The peer loop comes back to LOOKING after a role: once the role's
    /// writes are done, a new election starts.
    pub(super) fn elect_again(&mut self, sid: i64, inc: u32) {
        let i = self.idx(sid);
        let pp = &self.peers[i];
        let ready = pp.alive
            && pp.inc == inc
            && matches!(pp.role, Role::Looking)
            && pp.driver.as_ref().is_some_and(|d| !d.fle().is_electing());
        if !ready {
            return;
        }
        if self.io_pending(sid) {
            self.schedule(ms(1), Ev::ElectAgain { sid, inc });
            return;
        }
        self.start_election(sid);
    }

    pub(super) fn driver_timer(&mut self, sid: i64, inc: u32, at: Duration) {
        let i = self.idx(sid);
        let pp = &self.peers[i];
        if pp.alive && pp.inc == inc && pp.timer == Some(at) {
            self.peers[i].timer = None;
            self.feed(sid, Input::Timer);
        }
    }

    fn initial_vote(&self, i: usize) -> Option<Vote> {
        let pp = &self.peers[i];
        if pp.resigned_until.is_some_and(|t| self.now < t) {
            // Not standing: no vote of its own in the round.
            None
        } else if self.p.verifier.weight(pp.sid) > 0 {
            Some(Vote::new(pp.sid, self.vote_zxid(pp.sid), pp.disk.current))
        } else {
            None
        }
    }

    /// Feeds one fact to `sid`'s driver (through the bug lens), records
    /// observations, checks the decision invariants, and executes the
    /// output (timer, sends, dials, decision). A dead peer hears nothing.
    pub(super) fn feed(&mut self, sid: i64, input: Input) {
        let i = self.idx(sid);
        if !self.peers[i].alive {
            return;
        }
        let cause = match input {
            Input::StartElection { .. } => Cause::Start,
            Input::Timer => Cause::Timer,
            Input::Notification { from, notification } => Cause::Deliver {
                from,
                n: notification,
            },
            _ => Cause::Fact,
        };
        let bug = self.bug;
        let input = match input {
            Input::StartElection {
                last_zxid,
                current_epoch,
            } => Input::StartElection {
                last_zxid: lens(bug, last_zxid),
                current_epoch,
            },
            Input::Notification { from, notification } => Input::Notification {
                from,
                notification: Notification {
                    zxid: lens(bug, notification.zxid),
                    ..notification
                },
            },
            other => other,
        };
        let before = self.peers[i].obs.clock;
        let now = self.now;
        let Some(driver) = self.peers[i].driver.as_mut() else {
            return;
        };
        let mut out = driver.step(now, input);
        let fle = driver.fle();
        let after = fle.logical_clock();
        let mut proposal = fle.proposal();
        let rest_down = out.decision.is_some() && fle.decided_by() == Some(DecidedBy::RestDown);
        let down = if rest_down {
            driver.down_voters()
        } else {
            Vec::new()
        };
        for s in &mut out.sends {
            s.notification.zxid = lens(bug, s.notification.zxid);
        }
        if let Some(d) = out.decision.as_mut() {
            d.vote.zxid = lens(bug, d.vote.zxid);
        }
        proposal.zxid = lens(bug, proposal.zxid);

        // Observations (true values).
        if cause == Cause::Start || self.peers[i].obs.heard_round != after {
            let init = self.initial_vote(i);
            let o = &mut self.peers[i].obs;
            o.heard_round = after;
            o.best_heard = init.map(|v| (sid, v));
        }
        if let Cause::Deliver { from, n } = cause {
            self.observe(i, from, &n, after);
        }

        // Decision-time invariants.
        let mut join_round = None;
        if let Some(d) = out.decision {
            let looking_path = match cause {
                Cause::Timer | Cause::Fact => true,
                Cause::Deliver { n, .. } => n.state == ServerState::Looking,
                Cause::Start => d.vote == proposal && d.election_epoch == after,
            } && !matches!(
                d.decided_by,
                DecidedBy::SameRoundSettled | DecidedBy::OutOfElection
            );
            if !looking_path && !self.strict_clock {
                join_round = Some(d.election_epoch);
            }
            self.on_decision(sid, d, looking_path, proposal);
            if rest_down {
                self.check_down_voters(sid, &d, &down);
            }
        }
        let r = invariants::clock_monotonic(self.now, sid, before, after, join_round);
        if r.is_ok() && after < before {
            self.stats.clock_rewinds += 1;
            self.log(|| {
                format!("sid {sid}: logical clock {before} -> {after} (out-of-election join)")
            });
        }
        self.fail(r);
        self.peers[i].obs.clock = after;

        // Execute: the timer first, so that timers set by nested calls
        // (link reports while sending) override this one.
        let inc = self.peers[i].inc;
        if self.peers[i].timer != out.timer {
            self.peers[i].timer = out.timer;
            if let Some(at) = out.timer {
                self.schedule_at(at.max(self.now), Ev::Timer { sid, inc, at });
            }
        }
        for m in out.sends {
            self.send(sid, m.to, m.notification, m.if_idle);
        }
        for d in out.dial {
            self.dial(sid, d);
        }
        if let Some(d) = out.decision {
            self.start_role(sid, d);
        }
    }

    fn observe(&mut self, i: usize, from: i64, n: &Notification, round_after: i64) {
        if !self.p.is_voter(from) {
            return;
        }
        let vote = Vote::new(n.leader, n.zxid, n.peer_epoch);
        let leader_ok = self.p.is_voter(n.leader);
        let verifier = &self.p.verifier;
        let o = &mut self.peers[i].obs;
        match n.state {
            ServerState::Looking => {
                o.looking.insert((from, n.election_epoch, n.leader));
                if leader_ok && n.election_epoch == round_after {
                    let better = match o.best_heard {
                        None => true,
                        Some((_, b)) => invariants::beats(&vote, &b, verifier),
                    };
                    if better {
                        o.best_heard = Some((from, vote));
                    }
                }
            }
            ServerState::Following | ServerState::Leading => {
                o.settled.insert((from, n.election_epoch, n.leader));
            }
            ServerState::Observing => {}
        }
    }

    fn on_decision(&mut self, sid: i64, d: Decision, looking_path: bool, proposal: Vote) {
        let i = self.idx(sid);
        self.stats.decisions += 1;
        match d.decided_by {
            DecidedBy::FinalizeWait => self.stats.decisions_finalize += 1,
            DecidedBy::AllVotersAgree => self.stats.decisions_fast_all += 1,
            _ => {}
        }
        self.mix(0xdec1_de00 ^ sid as u64);
        self.mix_vote(&d.vote);
        self.mix(d.election_epoch as u64);
        let now = self.now;
        self.peers[i].decisions.push((now, d));
        let path = if looking_path { "looking" } else { "settled" };
        self.log(|| {
            format!(
                "sid {sid}: DECIDED {} {} in round {} ({path} path, {:?})",
                d.state, d.vote, d.election_epoch, d.decided_by
            )
        });
        let observer = self.peers[i].observer;
        let r = invariants::only_candidates_elected(now, sid, observer, &d, &self.p.verifier);
        self.fail(r);
        if let Some(until) = self.peers[i].resigned_until {
            let r = invariants::resigned_peer_stays_out(now, sid, &d, until);
            self.fail(r);
            if looking_path && now < until {
                let pp = &self.peers[i];
                let own = Vote::new(sid, self.vote_zxid(sid), pp.disk.current);
                let r = invariants::resigned_vote_keeps_history(now, sid, &d, &own);
                self.fail(r);
            }
        }
        let supporters = self.supporters(i, &d, proposal);
        let r = invariants::decision_has_quorum(now, sid, &d, &supporters, &self.p.verifier);
        self.fail(r);
        if looking_path {
            let best = self.peers[i].obs.best_heard;
            let r = invariants::decision_not_beaten(now, sid, &d, best, &self.p.verifier);
            self.fail(r);
            if self.p.verifier.is_voter(sid) {
                self.check_round_agreement(sid, &d);
            }
        }
        if self.p.calm {
            let best = self.best_initial;
            let r = invariants::calm_round_agrees(now, sid, &d, &best);
            self.fail(r);
        }
        match self.round_leaders.get(&d.election_epoch) {
            Some(&l) if l != d.vote.leader => self.stats.split_rounds += 1,
            Some(_) => {}
            None => {
                self.round_leaders.insert(d.election_epoch, d.vote.leader);
            }
        }
    }

    /// Every voter whose vote of the deciding round named the decided
    /// leader (any round for a join), and the decider if its own vote does.
    fn supporters(&self, i: usize, d: &Decision, proposal: Vote) -> Vec<i64> {
        let me = self.peers[i].sid;
        let (leader, round) = (d.vote.leader, d.election_epoch);
        let any_round = d.decided_by == DecidedBy::OutOfElection;
        let o = &self.peers[i].obs;
        let mut v = Vec::new();
        if proposal.leader == leader {
            v.push(me);
        }
        for s in self.p.verifier.voters() {
            if s == me {
                continue;
            }
            let named = o.looking.contains(&(s, round, leader))
                || o.settled
                    .iter()
                    .any(|&(x, r, l)| x == s && l == leader && (any_round || r == round));
            if named {
                v.push(s);
            }
        }
        v
    }

    /// Same-round agreement where no fault touched the round's voters.
    fn check_round_agreement(&mut self, sid: i64, d: &Decision) {
        let i = self.idx(sid);
        let round = d.election_epoch;
        let heard: Vec<i64> = self.peers[i]
            .obs
            .looking
            .iter()
            .filter(|(_, r, _)| *r == round)
            .map(|(s, _, _)| *s)
            .collect();
        let entry = self.truth.rounds.entry(round).or_default();
        entry.voters.insert(sid);
        entry.voters.extend(heard);
        let earlier = entry
            .decisions
            .iter()
            .copied()
            .find(|&(_, l)| l != d.vote.leader);
        let first = entry.decisions.first().copied();
        entry.decisions.push((sid, d.vote.leader));
        let voters = entry.voters.clone();
        // Never touched: the effects of a fault outlive it (Down evidence
        // from a refused dial, votes queued behind a partition), so a
        // voter touched before the round began does not count either.
        let untouched = voters
            .iter()
            .all(|&v| self.truth.touched_until[self.idx(v)].is_zero());
        if !untouched || first.is_none() {
            return;
        }
        self.stats.rounds_untouched += 1;
        let other = earlier.or(first).unwrap_or((sid, d.vote.leader));
        let r =
            invariants::untouched_round_agrees(self.now, sid, round, d.vote.leader, other, &voters);
        self.fail(r);
    }

    /// A decision by `fast_decide` rule (b): every voter the driver counted
    /// Down must have been dead or cut off from the decider when the driver
    /// got its evidence (`invariants::down_voters_were_cut`).
    fn check_down_voters(&mut self, sid: i64, d: &Decision, down: &[(i64, DownEvidence)]) {
        self.stats.decisions_rest_down += 1;
        let i = self.idx(sid);
        let claims: Vec<(i64, DownEvidence, bool)> = down
            .iter()
            .map(|&(v, e)| {
                // A leader left for silence: the evidence is the whole
                // silent stretch, not its last instant.
                let from = match self.peers[i].left_silent {
                    Some((l, from, at))
                        if e.reason == DownReason::LeftSilent && l == v && at == e.at =>
                    {
                        from
                    }
                    _ => e.at,
                };
                (v, e, self.was_cut(sid, v, from, e.at))
            })
            .collect();
        let r = invariants::down_voters_were_cut(self.now, sid, d, &claims);
        self.fail(r);
    }
}
