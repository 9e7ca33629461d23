//! Scripted runs of the simulator for tests and benchmarks (the `testkit`
//! feature; not in the release library): the same world as `zkfle sim`
//! (production drivers on the simulated election network, optionally the
//! Zab machines), but with fixed parameters and no random faults. A test
//! starts, crashes and restarts peers, sets what their disks hold, filters
//! or injects notifications, and steps virtual time. Messages take exactly
//! [`Cluster::latency`] unless jitter is set; a starting process gets its
//! election links to every running one at once. The invariants are not
//! checked (scripts inject hostile votes on purpose); tests assert what
//! they need.

use std::time::Duration;

use crate::config::QuorumVerifier;
use crate::election::{Decision, Fle, FleConfig, Input, RoleEnd};
use crate::wire::{Notification, ServerState};

use super::params::Params;
use super::peer::Role;
use super::rng::SimRng;
use super::schedule::Ev;
use super::script::{Envelope, Fate};
use super::world::World;

/// N peers on a simulated network, driven by a script.
pub struct Cluster {
    w: Box<World>,
}

impl Cluster {
    /// A cluster of these election configurations (sids 1..=n, in order),
    /// all down and not started; FLE alone (no Zab roles).
    ///
    /// Panics if the sids are not 1..=n (test code).
    pub fn new(configs: Vec<FleConfig>) -> Cluster {
        for (i, c) in configs.iter().enumerate() {
            assert_eq!(c.my_sid, i as i64 + 1, "testkit: sids must be 1..=n");
        }
        let verifier = configs
            .last()
            .map(|c| c.verifier.clone())
            .unwrap_or_else(|| QuorumVerifier::majority([1]));
        let p = Params::scripted(configs.len(), verifier, Duration::from_millis(1));
        let mut w = World::with_peers(0, p, SimRng::new(0), configs, false);
        w.checks = false;
        w.roles = false;
        w.auto_restart = false;
        w.healed_at = Some(Duration::ZERO);
        w.hooks.instant_links = true;
        w.hooks.sent = Some(Vec::new());
        Cluster { w: Box::new(w) }
    }

    /// Sids `1..=n`, majority quorum, ZooKeeper's timers, `fast_decide` as
    /// given.
    pub fn majority(n: i64, fast_decide: bool) -> Cluster {
        let q = QuorumVerifier::majority(1..=n);
        Cluster::new(
            (1..=n)
                .map(|s| {
                    let mut c = FleConfig::new(s, q.clone());
                    c.fast_decide = fast_decide;
                    c
                })
                .collect(),
        )
    }

    /// Runs the Zab machines (interop mode) for every decision, so that an
    /// election that settles on a server without a synced quorum is undone
    /// by Zab, as in a real ensemble.
    pub fn with_zab(mut self) -> Cluster {
        self.w.roles = true;
        self
    }

    /// Seeds the randomness (jitter).
    pub fn set_seed(&mut self, seed: u64) {
        self.w.rng = SimRng::new(seed);
    }

    /// Extra random delay in `0..jitter` per message.
    pub fn set_jitter(&mut self, jitter: Duration) {
        self.w.hooks.jitter = jitter;
    }

    /// The base one-way latency of a message.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.w.p.delay_lo_us)
    }

    /// Virtual time now.
    pub fn now(&self) -> Duration {
        self.w.now
    }

    /// Every notification written on a link so far (filtered ones
    /// included), in order.
    pub fn sent(&self) -> &[Envelope] {
        self.w.hooks.sent.as_deref().unwrap_or(&[])
    }

    /// Installs a filter that sees every notification as it is written.
    pub fn set_filter(&mut self, f: impl FnMut(&Envelope) -> Fate + 'static) {
        self.w.hooks.filter = Some(Box::new(f));
    }

    /// Removes the filter.
    pub fn clear_filter(&mut self) {
        self.w.hooks.filter = None;
    }

    /// Sets what `sid`'s disk holds: the zxid it votes with and its
    /// currentEpoch (acceptedEpoch is raised to it if lower).
    pub fn set_data(&mut self, sid: i64, last_zxid: i64, current_epoch: i64) {
        let i = self.w.idx(sid);
        let pp = &mut self.w.peers[i];
        pp.disk.app_zxid = last_zxid;
        pp.disk.current = current_epoch;
        pp.disk.accepted = pp.disk.accepted.max(current_epoch);
        pp.vote_mem = 0;
    }

    /// The election machine of `sid` (its last one if it crashed).
    ///
    /// Panics if `sid` never started (test code).
    pub fn fle(&self, sid: i64) -> &Fle {
        match &self.w.peers[self.w.idx(sid)].driver {
            Some(d) => d.fle(),
            None => panic!("testkit: sid {sid} never started"),
        }
    }

    /// True if `sid`'s process runs.
    pub fn is_up(&self, sid: i64) -> bool {
        self.w.alive(sid)
    }

    /// The sids, ascending.
    pub fn sids(&self) -> Vec<i64> {
        (1..=self.w.p.n as i64).collect()
    }

    /// Every decision of `sid`, with its virtual time.
    pub fn decisions(&self, sid: i64) -> &[(Duration, Decision)] {
        &self.w.peers[self.w.idx(sid)].decisions
    }

    /// The latest decision of `sid`, if it is up and not LOOKING.
    pub fn decision(&self, sid: i64) -> Option<Decision> {
        let pp = &self.w.peers[self.w.idx(sid)];
        let fle = pp.driver.as_ref()?.fle();
        if !pp.alive || fle.state() == ServerState::Looking {
            None
        } else {
            pp.decisions.last().map(|(_, d)| *d)
        }
    }

    /// Brings `sid` up if it is down (links to every running peer at
    /// once) and starts an election on it.
    pub fn start(&mut self, sid: i64) {
        if self.w.alive(sid) {
            self.w.start_election(sid);
        } else {
            self.w.start_peer(sid);
        }
        self.settle_now();
    }

    /// Brings every process up and links them all, starting no election.
    pub fn boot_all(&mut self) {
        for s in self.sids() {
            if !self.w.alive(s) {
                self.w.boot_peer(s);
            }
        }
        self.connect_all();
        self.settle_now();
    }

    /// Brings every node up (all linked), then starts them in sid order at
    /// the current time (so that no first broadcast is lost to a node not
    /// yet up).
    pub fn start_all(&mut self) {
        let sids = self.sids();
        for &s in &sids {
            if !self.w.alive(s) {
                self.w.boot_peer(s);
            }
        }
        self.connect_all();
        for s in sids {
            self.w.start_election(s);
        }
        self.settle_now();
    }

    /// Brings up the election link of every pair of running peers.
    pub fn connect_all(&mut self) {
        let n = self.w.p.n as i64;
        for a in 1..=n {
            for b in a + 1..=n {
                self.w.connect_now(a, b);
            }
        }
    }

    /// Closes the link between `a` and `b` (both learn it) and holds every
    /// dial between them until `until`: they stay Connecting for each
    /// other, neither up nor Down.
    pub fn slow_link(&mut self, a: i64, b: i64, until: Duration) {
        self.w.hooks.slow.push((a, b, until));
        self.w.fail_link(a, b);
        self.w.dial(a, b);
    }

    /// The role `sid` took after its last decision ended (e.g. its leader
    /// died): LOOKING again, a new round.
    pub fn reelect(&mut self, sid: i64) {
        let i = self.w.idx(sid);
        let old = std::mem::replace(&mut self.w.peers[i].role, Role::Looking);
        let conns: Vec<(crate::zab::ConnId, u8)> = match &old {
            Role::Leading(_) => self.w.q_conns_of(sid).into_iter().map(|c| (c, 0)).collect(),
            Role::Learning(l) => l.conn.map(|c| (c, 1)).into_iter().collect(),
            _ => Vec::new(),
        };
        for (c, side) in conns {
            self.w.q_close(c, side);
        }
        self.w.peers[i].role_gen += 1;
        self.w.feed(
            sid,
            Input::RoleEnded {
                reason: RoleEnd::Other,
            },
        );
        self.w.start_election(sid);
        self.settle_now();
    }

    /// Tells every decided node that Zab established `epoch` and stores it
    /// as its currentEpoch.
    pub fn establish_epoch(&mut self, epoch: i64) {
        for s in self.sids() {
            let i = self.w.idx(s);
            let decided = self.w.peers[i]
                .driver
                .as_ref()
                .is_some_and(|d| d.fle().state() != ServerState::Looking);
            if self.w.alive(s) && decided {
                let d = &mut self.w.peers[i].disk;
                d.current = epoch;
                d.accepted = d.accepted.max(epoch);
                self.w.feed(s, Input::EpochEstablished { epoch });
            }
        }
    }

    /// Kills `sid`: its links close (the others learn it), messages to it
    /// are lost, its timers stop.
    pub fn crash(&mut self, sid: i64) {
        self.w.crash(sid);
        self.settle_now();
    }

    /// A fresh process for `sid` (logical clock 0) from what its disk
    /// holds, crashing the running one first.
    pub fn restart(&mut self, sid: i64) {
        if self.w.alive(sid) {
            self.w.crash(sid);
        }
        self.w.start_peer(sid);
        self.settle_now();
    }

    /// Delivers `n` to `to` as if `from` had sent it (a scripted peer that
    /// need not run), after the usual delay and without a link.
    pub fn inject(&mut self, from: i64, to: i64, n: Notification) {
        self.w.inject_notification(from, to, n);
    }

    /// Runs every event due now.
    fn settle_now(&mut self) {
        let now = self.w.now;
        while self.w.queue.peek_time().is_some_and(|t| t <= now) {
            self.step();
        }
    }

    /// Time of the next event, if any.
    pub fn next_event_time(&self) -> Option<Duration> {
        self.w.queue.peek_time()
    }

    /// Runs the next event; false when nothing is left to do.
    pub fn step(&mut self) -> bool {
        let Some((at, ev)) = self.w.queue.pop() else {
            return false;
        };
        if at > self.w.now {
            self.w.now = at;
        }
        if let Ev::Script = ev {
            return true;
        }
        self.w.step(ev);
        self.w.after_step();
        true
    }

    /// Steps until `cond` holds (true) or virtual time would pass `limit`
    /// (then `cond` is checked one last time at `limit`).
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Cluster) -> bool) -> bool {
        loop {
            if cond(self) {
                return true;
            }
            match self.next_event_time() {
                Some(t) if t <= limit => {
                    self.step();
                }
                _ => {
                    if self.w.now < limit {
                        self.w.now = limit;
                    }
                    return cond(self);
                }
            }
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let limit = self.w.now + d;
        self.run_until(limit, |_| false);
    }

    /// True if every live node has decided.
    pub fn all_up_decided(&self) -> bool {
        self.sids().into_iter().filter(|&s| self.is_up(s)).all(|s| {
            self.w.peers[self.w.idx(s)]
                .driver
                .as_ref()
                .is_some_and(|d| d.fle().state() != ServerState::Looking)
        })
    }

    /// With Zab: one live leader has established its epoch and every other
    /// live peer follows it in the broadcast phase.
    pub fn settled_with_quorum(&self) -> bool {
        self.w.converged_at.is_some()
    }

    /// Sids of live nodes in `state`.
    pub fn in_state(&self, state: ServerState) -> Vec<i64> {
        self.sids()
            .into_iter()
            .filter(|&s| {
                self.is_up(s)
                    && self.w.peers[self.w.idx(s)]
                        .driver
                        .as_ref()
                        .is_some_and(|d| d.fle().state() == state)
            })
            .collect()
    }
}

pub use crate::election::test_util::{ms, notif};
