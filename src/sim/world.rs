//! The simulated world: its public options and results, the state every
//! part shares (peers, networks, disks, ground truth), the main loop that
//! pops events, holds those of paused processes, dispatches the rest to the
//! part that owns them, and runs the per-step checks. Everything random
//! comes from one [`SimRng`] seeded from the schedule's seed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::config::QuorumVerifier;
use crate::election::{FleConfig, Vote};
use crate::zab::{ConnId, Mode, ZabConfig};

use super::disk::Disk;
use super::invariants::{self, Violation};
use super::net::{CutRecord, Link};
use super::params::Params;
use super::peer::{Obs, Peer, Role};
use super::quorum::QConn;
use super::rng::SimRng;
use super::schedule::{us, Ev, Queue};
use super::script::{Hooks, Script};
use super::store::{Kv, Store};
use super::truth::Truth;
pub use super::types::{InjectedBug, Outcome, SimOptions, Stats};

/// Runs one seeded schedule to its end (convergence after the heal, a
/// violation, or the liveness bound) and returns what happened.
pub fn run(opts: &SimOptions) -> Outcome {
    let mut w = World::random(opts);
    w.main_loop();
    w.finish()
}

/// Events after which a schedule is abandoned as a message storm.
pub(super) const EVENT_BUDGET: u64 = 3_000_000;
/// How long a converged ensemble must stay converged.
pub(super) const STABLE_FOR: Duration = Duration::from_millis(1000);

/// The world of one schedule. Its parts live in the sibling modules, each
/// an `impl World` block: `net` (election links), `quorum` (Zab
/// connections), `disk` (epoch files and logs), `peer` (the executor of
/// the Driver and Zab machines), `elect` (decisions and their checks),
/// `faults`, `store` (the state machine and clients), `truth` (the ground
/// truth the invariants are checked against), `script` (scripted runs).
pub(super) struct World {
    pub seed: u64,
    pub p: Params,
    pub bug: Option<InjectedBug>,
    pub strict_clock: bool,
    /// Run the invariants (off in the test kit, whose scripts inject
    /// hostile votes on purpose).
    pub checks: bool,
    /// Only the end-to-end checks ([`SimOptions::end_to_end_only`]).
    pub end_to_end_only: bool,
    /// Leaders resign now and then ([`SimOptions::resign`]).
    pub resign: bool,
    /// Start Zab roles on decisions (off: FLE alone, a decided peer keeps
    /// its role until the script ends it).
    pub roles: bool,
    /// Crashed peers come back on their own after a while.
    pub auto_restart: bool,
    pub rng: SimRng,
    pub now: Duration,
    pub queue: Queue,
    pub peers: Vec<Peer>,
    // ----- election network (net.rs)
    pub links: Vec<Link>,
    pub blocked: Vec<u32>,
    pub partitions: Vec<Option<Vec<(i64, i64)>>>,
    pub cut_log: Vec<CutRecord>,
    pub dial_attempts: u64,
    // ----- quorum connections (quorum.rs)
    pub qconns: BTreeMap<ConnId, QConn>,
    pub next_conn: u64,
    // ----- ground truth and checks (truth.rs)
    pub truth: Truth,
    pub round_leaders: BTreeMap<i64, i64>,
    pub best_initial: Vote,
    pub healed_at: Option<Duration>,
    pub converged_at: Option<Duration>,
    pub bound: Duration,
    // ----- the store (store.rs)
    pub store: Option<Store>,
    // ----- scripted runs (script.rs)
    pub script: Option<Script>,
    pub hooks: Hooks,
    // ----- output
    pub hash: u64,
    pub trace: Option<Vec<String>>,
    pub violations: Vec<Violation>,
    pub stats: Stats,
    pub done: bool,
}

fn flip(z: i64) -> i64 {
    // Order-reversing on 0..=i64::MAX and its own inverse; negative
    // sentinels (observer votes) pass unchanged so -1 never appears.
    if z >= 0 {
        i64::MAX - z
    } else {
        z
    }
}

/// The zxid lens of [`InjectedBug::InvertedZxidOrder`].
pub(super) fn lens(bug: Option<InjectedBug>, z: i64) -> i64 {
    if bug == Some(InjectedBug::InvertedZxidOrder) {
        flip(z)
    } else {
        z
    }
}

impl World {
    /// An empty world around `p`: peers built from `configs` (one per sid
    /// 1..=n, in order), nothing scheduled yet.
    pub(super) fn with_peers(
        seed: u64,
        p: Params,
        rng: SimRng,
        configs: Vec<FleConfig>,
        trace: bool,
    ) -> World {
        let n = p.n;
        let bound = p.liveness_bound();
        let mut peers = Vec::with_capacity(n);
        for (i, cfg) in configs.into_iter().enumerate() {
            let sid = i as i64 + 1;
            let zcfg = zab_config(&p, sid, &cfg.verifier);
            peers.push(Peer {
                sid,
                observer: p.observer[i],
                alive: false,
                stay_dead: false,
                inc: 0,
                paused: false,
                held: Vec::new(),
                cfg,
                zcfg,
                driver: None,
                timer: None,
                disk: Disk::default(),
                vote_mem: 0,
                role: Role::Dead,
                role_gen: 0,
                obs: Obs::default(),
                kv: Kv::default(),
                decisions: Vec::new(),
                started: false,
                left_silent: None,
                resigned_until: None,
            });
        }
        let stats = Stats {
            peers: n,
            layout: p.layout,
            calm: p.calm,
            store: p.mode == Mode::Store,
            bound,
            ..Stats::default()
        };
        World {
            seed,
            links: vec![Link::default(); n * n],
            blocked: vec![0; n * n],
            partitions: Vec::new(),
            cut_log: Vec::new(),
            dial_attempts: 0,
            qconns: BTreeMap::new(),
            next_conn: 1,
            truth: Truth::new(n),
            round_leaders: BTreeMap::new(),
            best_initial: Vote::new(-1, 0, 0),
            healed_at: None,
            converged_at: None,
            bound,
            store: None,
            script: None,
            hooks: Hooks::default(),
            hash: 0xcbf2_9ce4_8422_2325,
            trace: if trace { Some(Vec::new()) } else { None },
            violations: Vec::new(),
            stats,
            done: false,
            bug: None,
            strict_clock: false,
            checks: true,
            end_to_end_only: false,
            resign: false,
            roles: true,
            auto_restart: true,
            rng,
            now: Duration::ZERO,
            queue: Queue::default(),
            peers,
            p,
        }
    }

    /// A random schedule (`zkfle sim`).
    pub(super) fn random(opts: &SimOptions) -> World {
        let mut rng = SimRng::new(opts.seed);
        let p = Params::generate(&mut rng, opts);
        let n = p.n;
        let self_quorum_sid = if opts.bug == Some(InjectedBug::SelfQuorum) {
            let cands: Vec<i64> = (1..=n as i64)
                .filter(|&s| p.verifier.weight(s) > 0)
                .collect();
            cands.get(rng.index(cands.len().max(1))).copied()
        } else {
            None
        };
        let configs = (1..=n as i64)
            .map(|sid| {
                // zkfle.fastDecide: both settings run (Params::fast_decide).
                let mut cfg =
                    FleConfig::new(sid, p.verifier.clone()).with_zkfle_timing(p.fast_decide);
                cfg.finalize_wait = p.finalize_wait;
                cfg.min_notification_interval = p.min_interval;
                cfg.max_notification_interval = p.max_interval;
                if self_quorum_sid == Some(sid) {
                    cfg.verifier = self_quorum_verifier(&p.verifier, sid);
                }
                cfg
            })
            .collect();
        let mut w = World::with_peers(opts.seed, p, rng, configs, opts.trace);
        if let Some(s) = self_quorum_sid {
            // The bug is the driver's quorum check only; Zab keeps the real
            // configuration.
            let i = w.idx(s);
            w.peers[i].zcfg = zab_config(&w.p, s, &w.p.verifier);
        }
        w.bug = opts.bug;
        w.strict_clock = opts.strict_clock;
        w.end_to_end_only = opts.end_to_end_only;
        w.resign = opts.resign;
        w.initial_disks();
        if w.p.mode == Mode::Store {
            let clients = w.p.clients;
            w.store = Some(Store::new(clients));
        }
        w.trace_schedule();
        for sid in 1..=n as i64 {
            let skew = if w.p.start_skew.is_zero() {
                Duration::ZERO
            } else {
                us(w.rng.range(0, w.p.start_skew.as_micros() as u64))
            };
            w.schedule(skew, Ev::Start { sid });
        }
        if w.p.calm {
            w.healed_at = Some(Duration::ZERO);
        } else {
            let first = us(w.rng.range(0, w.p.fault_gap_hi.as_micros() as u64));
            w.schedule(first, Ev::Fault);
            let end = w.p.fault_end;
            w.schedule(end, Ev::HealAll);
        }
        w.start_clients();
        w
    }

    /// Persisted state that some history could have produced (interop
    /// mode; store mode starts from empty disks and builds its history
    /// itself): the newest epoch E is the currentEpoch of at least a quorum
    /// (a leader established it with one), the others lag by at most one
    /// epoch; zxids stay inside their owner's epoch.
    fn initial_disks(&mut self) {
        let n = self.p.n;
        if self.p.mode == Mode::Store {
            self.best_initial = self.best_vote();
            return;
        }
        let fresh = self.rng.chance(300);
        let newest = self.rng.range(0, 2) as i64;
        let mut at_newest = vec![false; n];
        {
            let mut voters = self.p.verifier.voters();
            self.rng.shuffle(&mut voters);
            let mut q = Vec::new();
            for s in voters {
                q.push(s);
                at_newest[(s - 1) as usize] = true;
                if self.p.verifier.contains_quorum(q.iter().copied()) {
                    break;
                }
            }
        }
        for (i, &newest_quorum) in at_newest.iter().enumerate() {
            let (ce, zxid) = if fresh {
                (0, 0)
            } else {
                let ce = if newest_quorum || self.rng.chance(500) {
                    newest
                } else {
                    (newest - 1).max(0)
                };
                let zepoch = if self.rng.chance(150) {
                    (ce - 1).max(0)
                } else {
                    ce
                };
                (ce, (zepoch << 32) | self.rng.range(0, 3) as i64)
            };
            let d = &mut self.peers[i].disk;
            d.accepted = ce;
            d.current = ce;
            d.app_zxid = zxid;
        }
        // A leader that got FOLLOWERINFO from a quorum, sent LEADERINFO and
        // died before NEWLEADER leaves acceptedEpoch > currentEpoch on that
        // quorum. Its epoch is above every currentEpoch (it was 1 + the
        // quorum's largest acceptedEpoch), which keeps the state reachable.
        if self.rng.chance(150) {
            let mut voters = self.p.verifier.voters();
            self.rng.shuffle(&mut voters);
            let mut q = Vec::new();
            for s in voters {
                q.push(s);
                if self.p.verifier.contains_quorum(q.iter().copied()) {
                    break;
                }
            }
            for s in q {
                self.peers[(s - 1) as usize].disk.accepted = newest + 1;
            }
        }
        self.best_initial = self.best_vote();
    }

    /// The best initial vote among the voters with non-zero weight (the
    /// fault-free election must pick it).
    fn best_vote(&self) -> Vote {
        self.peers
            .iter()
            .filter(|pp| self.p.verifier.weight(pp.sid) > 0)
            .map(|pp| Vote::new(pp.sid, self.vote_zxid(pp.sid), pp.disk.current))
            .fold(None, |best: Option<Vote>, v| match best {
                Some(b) if !invariants::beats(&v, &b, &self.p.verifier) => Some(b),
                _ => Some(v),
            })
            .unwrap_or(Vote::new(-1, 0, 0))
    }

    fn trace_schedule(&mut self) {
        if self.trace.is_none() {
            return;
        }
        let mut s = format!(
            "schedule: {} peers, {} {:?}, observers {:?}, calm {}, mode {:?}, finalize {:?}, poll {:?}..{:?}, fast_decide {}, tick {:?} init {} sync {}, delay<= {}us, slow {}‰, fsync {}..{}us (slow {}‰), queue {}, blackhole {}, compact {}, clients {}, faults until {:?}, bound {:?}",
            self.p.n,
            self.p.layout,
            self.p.verifier,
            self.peers.iter().filter(|pp| pp.observer).map(|pp| pp.sid).collect::<Vec<_>>(),
            self.p.calm,
            self.p.mode,
            self.p.finalize_wait,
            self.p.min_interval,
            self.p.max_interval,
            self.p.fast_decide,
            self.p.tick,
            self.p.init_limit,
            self.p.sync_limit,
            self.p.delay_hi_us,
            self.p.slow_per_mille,
            self.p.fsync_lo_us,
            self.p.fsync_hi_us,
            self.p.fsync_slow_per_mille,
            self.p.queue_cap,
            self.p.blackhole,
            self.p.compact,
            self.p.clients,
            self.p.fault_end,
            self.bound
        );
        for pp in &self.peers {
            let _ = write!(
                s,
                "\n  sid {}: acceptedEpoch {} currentEpoch {} zxid {:#x}",
                pp.sid, pp.disk.accepted, pp.disk.current, pp.disk.app_zxid
            );
        }
        self.log(|| s);
    }

    // ----- plumbing ---------------------------------------------------------

    pub(super) fn schedule(&mut self, after: Duration, ev: Ev) {
        self.queue.push(self.now + after, ev);
    }

    pub(super) fn schedule_at(&mut self, at: Duration, ev: Ev) {
        self.queue.push(at.max(self.now), ev);
    }

    pub(super) fn mix(&mut self, x: u64) {
        self.hash = (self.hash ^ x)
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(29);
    }

    pub(super) fn mix_vote(&mut self, v: &Vote) {
        self.mix(v.leader as u64);
        self.mix(v.zxid as u64);
        self.mix(v.peer_epoch as u64);
    }

    pub(super) fn log<F: FnOnce() -> String>(&mut self, f: F) {
        if self.trace.is_some() {
            let line = format!("[{:>10.6}s] {}", self.now.as_secs_f64(), f());
            if let Some(t) = self.trace.as_mut() {
                t.push(line);
            }
        }
    }

    /// Records a broken invariant (the schedule stops). With
    /// `end_to_end_only`, only the client-visible ones and liveness count.
    pub(super) fn fail(&mut self, r: Result<(), Violation>) {
        if let Err(v) = r {
            if !self.checks {
                return;
            }
            let end_to_end = matches!(
                v.invariant,
                "linearizable" | "no_lost_write" | "converges_after_heal" | "packets_decode"
            );
            if self.end_to_end_only && !end_to_end {
                return;
            }
            let line = format!("VIOLATION {v}");
            self.log(|| line);
            self.violations.push(v);
            self.done = true;
        }
    }

    pub(super) fn idx(&self, sid: i64) -> usize {
        (sid - 1) as usize
    }

    pub(super) fn valid(&self, sid: i64) -> bool {
        sid >= 1 && sid <= self.p.n as i64
    }

    /// True if the process of `sid` exists (running or paused).
    pub(super) fn alive(&self, sid: i64) -> bool {
        self.valid(sid) && self.peers[self.idx(sid)].alive
    }

    // ----- main loop --------------------------------------------------------

    /// The peer whose process must run `ev`, if it is paused (its events
    /// wait until it resumes, in order).
    fn held_by(&self, ev: &Ev) -> Option<usize> {
        let paused = |sid: i64| {
            let ok = self.valid(sid) && self.peers[self.idx(sid)].paused;
            ok.then(|| self.idx(sid))
        };
        match *ev {
            Ev::ElectAgain { sid, .. }
            | Ev::Timer { sid, .. }
            | Ev::ZabTimer { sid, .. }
            | Ev::IoEarly { sid, .. }
            | Ev::QReset { sid, .. }
            | Ev::Compact { sid, .. } => paused(sid),
            Ev::Deliver { to, .. } | Ev::Release { to, .. } => paused(to),
            Ev::DialDone { from, to, .. } => paused(from).or_else(|| paused(to)),
            Ev::DialFail { from, .. } | Ev::Redial { from, .. } => paused(from),
            Ev::QConnect { learner, .. } | Ev::QConnectFailed { learner, .. } => paused(learner),
            Ev::QAccept { conn } => self.qconns.get(&conn).and_then(|c| paused(c.leader)),
            Ev::QDeliver { conn, dir, .. } => self.qconns.get(&conn).and_then(|c| {
                if dir == 0 {
                    paused(c.learner)
                } else {
                    paused(c.leader)
                }
            }),
            Ev::QRelease { conn, dir } => self.qconns.get(&conn).and_then(|c| {
                if dir == 0 {
                    paused(c.learner)
                } else {
                    paused(c.leader)
                }
            }),
            Ev::ClientArrive { peer, .. } => paused(peer),
            _ => None,
        }
    }

    pub(super) fn main_loop(&mut self) {
        while !self.done {
            let Some((at, ev)) = self.queue.pop() else {
                break;
            };
            self.now = at;
            if let Some(i) = self.held_by(&ev) {
                self.peers[i].held.push(ev);
                continue;
            }
            self.stats.events += 1;
            self.mix(at.as_nanos() as u64);
            self.mix(ev.code());
            self.step(ev);
            self.after_step();
            if self.stop_now() {
                break;
            }
        }
    }

    /// Per-step checks and bookkeeping.
    pub(super) fn after_step(&mut self) {
        if !self.done && self.checks {
            let r = self.check_step();
            self.fail(r);
        }
        self.check_convergence();
        if self.script.is_some() {
            self.run_script();
        }
    }

    fn stop_now(&mut self) -> bool {
        if self.done {
            return true;
        }
        if self.stats.events > EVENT_BUDGET {
            let at = self.now;
            self.fail(Err(Violation {
                invariant: "converges_after_heal",
                at,
                detail: format!("event budget of {EVENT_BUDGET} exhausted (message storm?)"),
            }));
            return true;
        }
        if self.script.as_ref().is_some_and(|s| !s.finished()) {
            return false;
        }
        if let Some(h) = self.healed_at {
            if let Some(c) = self.converged_at {
                if self.now >= c + STABLE_FOR {
                    return true;
                }
            }
            if self.now > h + self.bound + STABLE_FOR {
                return true;
            }
        }
        false
    }

    pub(super) fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Start { sid } => self.start_peer(sid),
            Ev::ElectAgain { sid, inc } => self.elect_again(sid, inc),
            Ev::Timer { sid, inc, at } => self.driver_timer(sid, inc, at),
            Ev::Deliver { from, to, gen, n } => self.deliver(from, to, gen, n),
            Ev::DialDone {
                from,
                to,
                attempt,
                leg,
            } => self.dial_done(from, to, attempt, leg),
            Ev::DialFail { from, to, attempt } => self.dial_timeout(from, to, attempt),
            Ev::Redial { from, to, inc } => self.redial(from, to, inc),
            Ev::LinkTimeout { a, b, gen } => self.link_timeout(a, b, gen),
            Ev::Release { from, to, gen } => self.release(from, to, gen),
            Ev::QRelease { conn, dir } => self.q_release_now(conn, dir),
            Ev::ZabTimer { sid, inc, role, at } => self.zab_timer(sid, inc, role, at),
            Ev::QConnect {
                learner,
                inc,
                role,
                leader,
            } => self.q_connect(learner, inc, role, leader),
            Ev::QConnectFailed {
                learner,
                inc,
                role,
                error,
            } => self.q_connect_failed(learner, inc, role, error),
            Ev::QAccept { conn } => self.q_accept(conn),
            Ev::QDeliver { conn, dir, msg } => self.q_deliver(conn, dir, msg),
            Ev::QReset {
                sid,
                inc,
                role,
                conn,
                side,
            } => self.q_reset_seen(sid, inc, role, conn, side),
            Ev::QTimeout { conn } => self.q_timeout(conn),
            Ev::IoDone {
                sid,
                inc,
                pipe,
                token,
            } => self.io_done(sid, inc, pipe, token),
            Ev::IoEarly {
                sid,
                inc,
                role,
                what,
            } => self.io_early(sid, inc, role, what),
            Ev::Flush { sid, inc } => self.flush(sid, inc),
            Ev::Fault => self.inject_fault(),
            Ev::Restart { sid } => self.restart(sid),
            Ev::Resume { sid, inc } => self.resume(sid, inc),
            Ev::HealPartition { id } => self.heal_partition(id),
            Ev::HealAll => self.heal_all(),
            Ev::ClientNext { client } => self.client_next(client),
            Ev::ClientArrive { client, peer, op } => self.client_arrive(client, peer, op),
            Ev::ClientReply { client, op, reply } => self.client_reply(client, op, reply),
            Ev::ClientTimeout { client, op } => self.client_timeout(client, op),
            Ev::Compact { sid, inc } => self.compact(sid, inc),
            Ev::Script => {}
        }
    }

    pub(super) fn finish(mut self) -> Outcome {
        if self.violations.is_empty() && self.script.is_none() {
            let healed = self.healed_at.unwrap_or(self.now);
            let state = self.describe();
            let r = invariants::converges_after_heal(
                self.now,
                healed,
                self.bound,
                self.converged_at,
                &state,
            );
            self.fail(r);
        }
        if self.violations.is_empty() {
            self.final_store_checks();
        }
        self.stats.healed_at = self.healed_at.unwrap_or_default();
        self.stats.converged_after = match (self.converged_at, self.healed_at) {
            (Some(c), Some(h)) => Some(c.saturating_sub(h)),
            _ => None,
        };
        self.stats.end = self.now;
        Outcome {
            seed: self.seed,
            trace_hash: self.hash,
            violations: self.violations,
            trace: self.trace.unwrap_or_default(),
            stats: self.stats,
        }
    }

    /// One line per peer, for failure messages.
    pub(super) fn describe(&self) -> String {
        let mut s = String::from("state:");
        for pp in &self.peers {
            let _ = write!(s, " sid {}=", pp.sid);
            let _ = match &pp.role {
                Role::Dead => write!(s, "dead"),
                Role::Looking => write!(
                    s,
                    "looking(round {})",
                    pp.driver
                        .as_ref()
                        .map(|d| d.fle().logical_clock())
                        .unwrap_or(-1)
                ),
                Role::Decided(d) => write!(s, "decided({})", d.vote.leader),
                Role::Leading(l) => {
                    write!(s, "leading({:?}, epoch {:?})", l.m.stage(), l.m.epoch())
                }
                Role::Learning(l) => write!(
                    s,
                    "learning({} {:?}, epoch {:?})",
                    l.leader,
                    l.m.stage(),
                    l.m.epoch()
                ),
            };
            if pp.paused {
                let _ = write!(s, " paused");
            }
            let _ = write!(s, " acc {} cur {}", pp.disk.accepted, pp.disk.current);
        }
        s
    }

    /// The leader every live peer follows (observes) in the broadcast
    /// phase, if there is one: one live leader has established an epoch and
    /// every other live peer is its learner in broadcast.
    pub(super) fn converged_leader(&self) -> Option<i64> {
        let lp = self
            .peers
            .iter()
            .find(|pp| pp.alive && matches!(&pp.role, Role::Leading(l) if l.m.is_established()))?;
        let (l, inc) = (lp.sid, lp.inc);
        let epoch = match &lp.role {
            Role::Leading(x) => x.m.epoch().unwrap_or(0),
            _ => 0,
        };
        let all = self.peers.iter().all(|pp| {
            !pp.alive
                || pp.sid == l
                || matches!(&pp.role, Role::Learning(x)
                    if x.leader == l
                        && x.leader_inc == Some(inc)
                        && x.m.stage() == crate::zab::LearnerStage::Broadcast)
                // Zab's own limit (ZooKeeper's too): a peer that accepted a
                // higher epoch from a leader that never established (its
                // own failed attempt, say) refuses this leader's lower
                // epoch until the next election.
                || pp.disk.accepted > epoch
        });
        all.then_some(l)
    }

    /// Tracks when the ensemble converged after the heal.
    fn check_convergence(&mut self) {
        if self.healed_at.is_none() || !self.roles {
            return;
        }
        let l = self.converged_leader();
        match (l.is_some(), self.converged_at) {
            (true, None) => {
                self.converged_at = Some(self.now);
                self.log(|| format!("CONVERGED on leader {l:?}"));
            }
            (false, Some(_)) => {
                self.converged_at = None;
                self.log(|| "no longer converged".to_string());
            }
            _ => {}
        }
    }
}

/// The Zab view of one peer's configuration in the simulated ensemble.
pub(super) fn zab_config(p: &Params, sid: i64, verifier: &QuorumVerifier) -> ZabConfig {
    ZabConfig {
        my_sid: sid,
        tick_time: p.tick,
        init_limit: p.init_limit,
        sync_limit: p.sync_limit,
        verifier: verifier.clone(),
        servers: (1..=p.n as i64).collect(),
        config_text: String::new(),
        mode: p.mode,
    }
}

/// The verifier of [`InjectedBug::SelfQuorum`]: same voters, but `me`
/// outweighs all the others together.
fn self_quorum_verifier(real: &QuorumVerifier, me: i64) -> QuorumVerifier {
    let voters = real.voters();
    let others: u64 = voters
        .iter()
        .filter(|&&s| s != me)
        .map(|&s| real.weight(s))
        .sum();
    let weights = voters
        .iter()
        .map(|&s| (s, if s == me { others + 1 } else { real.weight(s) }))
        .collect();
    let groups = BTreeMap::from([(1, voters.into_iter().collect())]);
    QuorumVerifier::Hierarchical { groups, weights }
}
