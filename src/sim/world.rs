//! The simulated world: peers (a production [`Driver`] each, plus a small model
//! of the peer loop's roles and Zab's epoch establishment), the election
//! network between them, the fault injector, and the event queue that owns
//! virtual time. Everything is driven by one [`SimRng`] seeded from the
//! schedule's seed, and events at equal times run in the order they were
//! scheduled, so a seed always replays the same schedule.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use crate::config::QuorumVerifier;
use crate::election::{
    DecidedBy, Decision, DialError, DownEvidence, Driver, FleConfig, Input, RoleEnd, Vote,
};
use crate::wire::{Notification, ServerState};

use super::invariants::{self, Violation};
use super::rng::SimRng;

/// A bug injected around the production [`Driver`] (or, for `EagerDown`,
/// through its simulator-only switch), to prove that the invariants catch
/// what they claim to catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedBug {
    /// Every peer's driver sees every zxid through an order-reversing lens
    /// (`i64::MAX - zxid`) on the way in and out: a vote order that prefers
    /// the *shorter* log. The network and the invariants see true zxids.
    InvertedZxidOrder,
    /// One voter's driver is configured with a verifier in which it alone
    /// outweighs everyone else (same voters, its own weight = sum of the
    /// others' + 1): a quorum check that accepts a minority.
    SelfQuorum,
    /// Every peer's driver reports voters whose link is up as Down
    /// ([`Driver::inject_eager_down`]): `fast_decide` rule (b) then stops
    /// waiting for voters that can still reach it.
    EagerDown,
}

impl InjectedBug {
    /// Parses the CLI name (`inverted-order`, `self-quorum`, `eager-down`).
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "inverted-order" => Some(InjectedBug::InvertedZxidOrder),
            "self-quorum" => Some(InjectedBug::SelfQuorum),
            "eager-down" => Some(InjectedBug::EagerDown),
            _ => None,
        }
    }
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The schedule's seed: everything else is derived from it (and from
    /// the peer range, which only narrows the one draw that picks N).
    pub seed: u64,
    /// Smallest ensemble (3..=9 is what the CLI allows).
    pub min_peers: usize,
    /// Largest ensemble.
    pub max_peers: usize,
    /// Keep a human-readable trace of every event.
    pub trace: bool,
    /// Inject a deliberate bug (for proving the checks bite).
    pub bug: Option<InjectedBug>,
    /// Check `invariants::clock_monotonic` without its documented
    /// out-of-election-join exception (shows that ZooKeeper's rule does
    /// move clocks backwards).
    pub strict_clock: bool,
}

impl SimOptions {
    /// Seed `seed`, 3..=9 peers, no trace, no bug.
    pub fn new(seed: u64) -> Self {
        SimOptions {
            seed,
            min_peers: 3,
            max_peers: 9,
            trace: false,
            bug: None,
            strict_clock: false,
        }
    }
}

/// Counters of one schedule.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Ensemble size.
    pub peers: usize,
    /// `majority`, `majority+observers` or `hierarchical`.
    pub layout: &'static str,
    /// Fault-free schedule (the strict agreement check applies).
    pub calm: bool,
    /// Events processed.
    pub events: u64,
    /// Notifications put on the wire (including reconnect resends).
    pub messages: u64,
    /// Faults injected (crashes, link resets, partitions).
    pub faults: u64,
    /// Decisions made by all peers.
    pub decisions: u64,
    /// Of those, decisions by `fast_decide` rule (b) (every unheard voter
    /// Down), each checked by `invariants::down_voters_were_cut`.
    pub decisions_rest_down: u64,
    /// Epochs established by leaders.
    pub established: u64,
    /// Rounds in which two peers decided different leaders (allowed; see
    /// `invariants::one_leader_per_epoch`).
    pub split_rounds: u64,
    /// Out-of-election joins that moved a logical clock backwards (allowed,
    /// see `invariants::clock_monotonic`).
    pub clock_rewinds: u64,
    /// Virtual time when the network healed for good.
    pub healed_at: Duration,
    /// The liveness bound that applied.
    pub bound: Duration,
    /// Time from the heal to convergence, if it converged.
    pub converged_after: Option<Duration>,
    /// Virtual time at the end.
    pub end: Duration,
}

/// The result of one schedule.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The seed that produced it.
    pub seed: u64,
    /// Hash of every event, decision and role change, in order: equal for
    /// equal seeds, whatever the machine.
    pub trace_hash: u64,
    /// Broken invariants (the schedule stops at the first).
    pub violations: Vec<Violation>,
    /// The event trace, if asked for.
    pub trace: Vec<String>,
    /// Counters.
    pub stats: Stats,
}

/// Runs one seeded schedule to its end (convergence after the heal, a
/// violation, or the liveness bound) and returns what happened.
pub fn run(opts: &SimOptions) -> Outcome {
    let mut w = World::new(opts);
    w.main_loop();
    w.finish()
}

// ---------------------------------------------------------------------------
// Parameters

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

fn us(x: u64) -> Duration {
    Duration::from_micros(x)
}

/// Everything drawn from the seed before the first event.
#[derive(Debug, Clone)]
struct Params {
    n: usize,
    verifier: QuorumVerifier,
    observer: Vec<bool>,
    layout: &'static str,
    finalize_wait: Duration,
    min_interval: Duration,
    max_interval: Duration,
    fast_decide: bool,
    tick: Duration,
    init_limit: u32,
    sync_limit: u32,
    delay_hi_us: u64,
    slow_per_mille: u32,
    slow_hi_us: u64,
    connect_hi_us: u64,
    connect_timeout: Duration,
    tcp_timeout_hi: Duration,
    /// Partitions black-hole packets (connections die after a TCP timeout,
    /// dials time out) rather than reset them at once.
    blackhole: bool,
    /// QCM send-queue capacity per peer (drop-oldest while not connected).
    queue_cap: usize,
    calm: bool,
    start_skew: Duration,
    fault_end: Duration,
    fault_gap_hi: Duration,
}

impl Params {
    fn generate(rng: &mut SimRng, opts: &SimOptions) -> Params {
        let lo = opts.min_peers.clamp(1, 64) as u64;
        let hi = opts.max_peers.clamp(1, 64) as u64;
        // Exactly one draw, whatever the range: a narrowed --peers replays.
        let n = rng.range(lo, hi.max(lo)) as usize;
        let sids: Vec<i64> = (1..=n as i64).collect();
        let mut observer = vec![false; n];
        let kind = rng.range(0, 9);
        let (verifier, layout) = if kind <= 5 || n < 3 {
            (QuorumVerifier::majority(sids.iter().copied()), "majority")
        } else if kind <= 7 && n >= 4 {
            let k = rng.range(1, (n as u64 - 3).min(2)) as usize;
            let mut order = sids.clone();
            rng.shuffle(&mut order);
            for &s in order.iter().take(k) {
                observer[(s - 1) as usize] = true;
            }
            let voters = sids.iter().copied().filter(|s| !observer[(s - 1) as usize]);
            (QuorumVerifier::majority(voters), "majority+observers")
        } else {
            let g = rng.range(1, (n as u64).min(3)) as usize;
            let mut order = sids.clone();
            rng.shuffle(&mut order);
            let mut groups: BTreeMap<i64, std::collections::BTreeSet<i64>> = BTreeMap::new();
            let mut weights = BTreeMap::new();
            for (i, &s) in order.iter().enumerate() {
                let gid = (i % g) as i64 + 1;
                let first = i < g;
                let w = match rng.range(0, 3) {
                    0 if !(first && gid == 1) => 0,
                    3 => 2,
                    _ => 1,
                };
                groups.entry(gid).or_default().insert(s);
                weights.insert(s, w);
            }
            (
                QuorumVerifier::Hierarchical { groups, weights },
                "hierarchical",
            )
        };
        let calm = rng.chance(150);
        let finalize_wait = if calm || rng.chance(700) {
            ms(200)
        } else {
            ms(60)
        };
        let min_interval = if rng.chance(700) { ms(200) } else { ms(50) };
        let max_interval = [ms(400), ms(800), ms(1600), ms(3200)][rng.index(4)];
        let fast_decide = rng.chance(750);
        let tick = ms(rng.range(100, 200));
        let init_limit = 5;
        let sync_limit = rng.range(2, 3) as u32;
        let delay_hi_us = if calm {
            [500, 5_000, 30_000][rng.index(3)]
        } else {
            [500, 5_000, 30_000, 120_000][rng.index(4)]
        };
        let slow_per_mille = if calm { 0 } else { [0, 5, 30][rng.index(3)] };
        let slow_hi_us = 600_000;
        let connect_hi_us = 2_000;
        let connect_timeout = ms(1000);
        let tcp_timeout_hi = ms(rng.range(500, 3000));
        let blackhole = rng.chance(500);
        let queue_cap = [1, 2, 64][rng.index(3)];
        let start_skew = if calm {
            Duration::ZERO
        } else {
            ms(rng.range(0, 400))
        };
        let fault_end = if calm {
            Duration::ZERO
        } else {
            ms(rng.range(1000, 8000))
        };
        let fault_gap_hi = ms(rng.range(300, 1500));
        Params {
            n,
            verifier,
            observer,
            layout,
            finalize_wait,
            min_interval,
            max_interval,
            fast_decide,
            tick,
            init_limit,
            sync_limit,
            delay_hi_us,
            slow_per_mille,
            slow_hi_us,
            connect_hi_us,
            connect_timeout,
            tcp_timeout_hi,
            blackhole,
            queue_cap,
            calm,
            start_skew,
            fault_end,
            fault_gap_hi,
        }
    }

    /// The liveness bound of `invariants::converges_after_heal`, from the
    /// timers:
    ///
    /// * `detect`: a role that cannot survive ends within it: a follower
    ///   whose leader is gone or unreachable waits at most initLimit ticks
    ///   (syncLimit once synced), a leader without a synced quorum steps
    ///   down after initLimit ticks (syncLimit + 1 once established); one
    ///   more tick for the tick granularity.
    /// * `attempt`: one election after that: a dial started before the heal
    ///   may still be black-holed (connect timeout), a LOOKING server's next
    ///   poll deadline is at most `maxNotificationInterval` away, a dial
    ///   plus the tie-break call-back, the finalize wait, a few message
    ///   delays (the slow tail when slow messages are on), and one tick for
    ///   the leader to establish.
    /// * An attempt can still fail after the heal (a vote slower than the
    ///   finalize wait splits a round; the elected peer then lacks a quorum
    ///   and everyone looks again after `detect`), so three attempts are
    ///   allowed: `detect + 3 * (attempt + detect)`.
    fn liveness_bound(&self) -> Duration {
        let detect = self.tick * (self.init_limit.max(self.sync_limit + 1) + 1);
        let msg = if self.slow_per_mille > 0 {
            us(self.slow_hi_us)
        } else {
            us(self.delay_hi_us)
        };
        let attempt = self.connect_timeout
            + self.max_interval
            + us(2 * self.connect_hi_us)
            + self.finalize_wait
            + msg * 4
            + self.tick;
        detect + (attempt + detect) * 3
    }

    fn is_voter(&self, sid: i64) -> bool {
        self.verifier.is_voter(sid)
    }
}

// ---------------------------------------------------------------------------
// Events

#[derive(Debug, Clone, Copy)]
enum Ev {
    Start {
        sid: i64,
    },
    ElectAgain {
        sid: i64,
        inc: u32,
    },
    Timer {
        sid: i64,
        inc: u32,
        at: Duration,
    },
    Deliver {
        from: i64,
        to: i64,
        gen: u64,
        n: Notification,
    },
    DialDone {
        from: i64,
        to: i64,
        attempt: u64,
        leg: u8,
    },
    DialFail {
        from: i64,
        to: i64,
        attempt: u64,
    },
    Redial {
        from: i64,
        to: i64,
        inc: u32,
    },
    LinkTimeout {
        a: i64,
        b: i64,
        gen: u64,
    },
    Tick,
    Fault,
    Restart {
        sid: i64,
    },
    HealPartition {
        id: usize,
    },
    HealAll,
    Write,
}

impl Ev {
    fn code(&self) -> u64 {
        match self {
            Ev::Start { .. } => 1,
            Ev::ElectAgain { .. } => 2,
            Ev::Timer { .. } => 3,
            Ev::Deliver { .. } => 4,
            Ev::DialDone { .. } => 5,
            Ev::DialFail { .. } => 6,
            Ev::LinkTimeout { .. } => 7,
            Ev::Tick => 8,
            Ev::Fault => 9,
            Ev::Restart { .. } => 10,
            Ev::HealPartition { .. } => 11,
            Ev::HealAll => 12,
            Ev::Write => 13,
            Ev::Redial { .. } => 14,
        }
    }
}

struct Scheduled {
    at: Duration,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.seq == o.seq
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    // Reversed: BinaryHeap is a max-heap, the earliest event must pop first;
    // equal times pop in scheduling order.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

// ---------------------------------------------------------------------------
// Network

#[derive(Debug, Clone, Default)]
struct Dir {
    /// QCM's per-peer send queue: filled while the link is not Up.
    queue: VecDeque<Notification>,
    /// The last notification written on any connection (resent first on a
    /// new connection when the queue is empty, as QCM does).
    last_sent: Option<Notification>,
    /// Delivery time of the last message in flight (FIFO per connection).
    last_at: Duration,
    /// Messages stuck behind a one-way/black-holed partition (TCP keeps
    /// retransmitting; delivered in order if it heals in time).
    held: VecDeque<Notification>,
    /// QCM's dial-loop backoff while something is queued and the peer
    /// cannot be reached (100 ms doubling to 1 s, reset by a link).
    backoff: Duration,
    /// The incarnation of the sender whose dial loop is waiting out its
    /// backoff: until the retry, sends and dial requests start no dial
    /// (QCM's `connect` finds the loop running).
    retry: Option<u32>,
}

#[derive(Debug, Clone, Default)]
struct Link {
    up: bool,
    /// Bumped whenever a connection starts or dies; in-flight messages of
    /// an older generation are lost.
    gen: u64,
    dialing: Option<(i64, u64)>,
    /// A side that wanted to dial while the other side's dial was running:
    /// its own QCM would be dialling too (simultaneous dials), so it gets
    /// the same failure when that dial fails. [lower, higher].
    want: [bool; 2],
    /// [lower sid → higher sid, higher → lower].
    dirs: [Dir; 2],
}

// ---------------------------------------------------------------------------
// Peers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Dead,
    Looking,
    Leading {
        since: Duration,
        established: Option<i64>,
        last_quorum: Duration,
    },
    /// Following, or observing for observers.
    Following {
        leader: i64,
        leader_inc: u32,
        since: Duration,
        synced: Option<i64>,
        last_contact: Duration,
    },
}

/// What one process lifetime heard, for the decision-time invariants.
#[derive(Debug, Clone, Default)]
struct Obs {
    clock: i64,
    heard_round: i64,
    best_heard: Option<(i64, Vote)>,
    /// (sender, round, leader) of every LOOKING vote heard. Not only the
    /// latest: ZooKeeper's finalize wait drops non-better notifications
    /// unrecorded, so the tally may count an older vote of the round (even
    /// one from a sender's previous incarnation).
    looking: BTreeSet<(i64, i64, i64)>,
    /// (sender, leader) of every FOLLOWING/LEADING vote heard, any round.
    settled: BTreeSet<(i64, i64)>,
}

struct Peer {
    sid: i64,
    observer: bool,
    alive: bool,
    stay_dead: bool,
    inc: u32,
    cfg: FleConfig,
    driver: Option<Driver>,
    timer: Option<Duration>,
    accepted_epoch: i64,
    current_epoch: i64,
    last_zxid: i64,
    role: Role,
    obs: Obs,
}

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

/// One partition, for the ground truth of `World::was_cut`.
struct CutRecord {
    /// The ordered pairs (from, to) it blocked.
    pairs: Vec<(i64, i64)>,
    /// When it started.
    from: Duration,
    /// When it healed (`None`: not yet).
    until: Option<Duration>,
}

// ---------------------------------------------------------------------------
// The world

struct World {
    seed: u64,
    strict_clock: bool,
    p: Params,
    bug: Option<InjectedBug>,
    /// Ground truth for `invariants::down_voters_were_cut`: per sid, the
    /// intervals in which its process was not running (end `None`: still).
    dead: Vec<Vec<(Duration, Option<Duration>)>>,
    /// Every partition, parallel to `partitions`.
    cut_log: Vec<CutRecord>,
    rng: SimRng,
    now: Duration,
    seq: u64,
    heap: BinaryHeap<Scheduled>,
    peers: Vec<Peer>,
    links: Vec<Link>,
    blocked: Vec<u32>,
    partitions: Vec<Option<Vec<(i64, i64)>>>,
    epoch_leaders: BTreeMap<i64, i64>,
    round_leaders: BTreeMap<i64, i64>,
    healed_at: Option<Duration>,
    converged_at: Option<Duration>,
    bound: Duration,
    best_initial: Vote,
    hash: u64,
    trace: Option<Vec<String>>,
    violations: Vec<Violation>,
    stats: Stats,
    dial_attempts: u64,
    done: bool,
}

/// Events after which a schedule is abandoned as a message storm.
const EVENT_BUDGET: u64 = 3_000_000;
/// How long a converged ensemble must stay converged.
const STABLE_FOR: Duration = Duration::from_millis(1000);

fn flip(z: i64) -> i64 {
    // Order-reversing on 0..=i64::MAX and its own inverse; negative
    // sentinels (observer votes) pass unchanged so -1 never appears.
    if z >= 0 {
        i64::MAX - z
    } else {
        z
    }
}

impl World {
    fn new(opts: &SimOptions) -> World {
        let mut rng = SimRng::new(opts.seed);
        let p = Params::generate(&mut rng, opts);
        let n = p.n;
        let mut peers: Vec<Peer> = Vec::with_capacity(n);
        let self_quorum_sid = if opts.bug == Some(InjectedBug::SelfQuorum) {
            let cands: Vec<i64> = (1..=n as i64)
                .filter(|&s| p.verifier.weight(s) > 0)
                .collect();
            cands.get(rng.index(cands.len().max(1))).copied()
        } else {
            None
        };
        // Persisted state that some history could have produced: the
        // newest epoch E is the currentEpoch of at least a quorum (a leader
        // established it with one), the others lag by at most one epoch;
        // zxids stay inside their owner's epoch.
        let fresh = rng.chance(300);
        let newest = rng.range(0, 2) as i64;
        let mut at_newest = vec![false; n];
        {
            let mut voters = p.verifier.voters();
            rng.shuffle(&mut voters);
            let mut q = Vec::new();
            for s in voters {
                q.push(s);
                at_newest[(s - 1) as usize] = true;
                if p.verifier.contains_quorum(q.iter().copied()) {
                    break;
                }
            }
        }
        for (i, &newest_quorum) in at_newest.iter().enumerate() {
            let sid = i as i64 + 1;
            let (ce, zxid) = if fresh {
                (0, 0)
            } else {
                let ce = if newest_quorum || rng.chance(500) {
                    newest
                } else {
                    (newest - 1).max(0)
                };
                let zepoch = if rng.chance(150) { (ce - 1).max(0) } else { ce };
                (ce, (zepoch << 32) | rng.range(0, 3) as i64)
            };
            // zkfle.fastDecide: both settings run (Params::fast_decide).
            let mut cfg = FleConfig::new(sid, p.verifier.clone()).with_zkfle_timing(p.fast_decide);
            cfg.finalize_wait = p.finalize_wait;
            cfg.min_notification_interval = p.min_interval;
            cfg.max_notification_interval = p.max_interval;
            if self_quorum_sid == Some(sid) {
                cfg.verifier = self_quorum_verifier(&p.verifier, sid);
            }
            peers.push(Peer {
                sid,
                observer: p.observer[i],
                alive: false,
                stay_dead: false,
                inc: 0,
                cfg,
                driver: None,
                timer: None,
                accepted_epoch: ce,
                current_epoch: ce,
                last_zxid: zxid,
                role: Role::Dead,
                obs: Obs::default(),
            });
        }
        // A leader that got FOLLOWERINFO from a quorum, sent LEADERINFO and
        // died before NEWLEADER leaves acceptedEpoch > currentEpoch on that
        // quorum. Its epoch is above every currentEpoch (it was 1 + the
        // quorum's largest acceptedEpoch), which keeps the state reachable.
        if rng.chance(150) {
            let mut voters = p.verifier.voters();
            rng.shuffle(&mut voters);
            let mut q = Vec::new();
            for s in voters {
                q.push(s);
                if p.verifier.contains_quorum(q.iter().copied()) {
                    break;
                }
            }
            for s in q {
                peers[(s - 1) as usize].accepted_epoch = newest + 1;
            }
        }
        let best_initial = peers
            .iter()
            .filter(|pp| p.verifier.weight(pp.sid) > 0)
            .map(|pp| Vote::new(pp.sid, pp.last_zxid, pp.current_epoch))
            .fold(None, |best: Option<Vote>, v| match best {
                Some(b) if !invariants::beats(&v, &b, &p.verifier) => Some(b),
                _ => Some(v),
            })
            .unwrap_or(Vote::new(-1, 0, 0));
        let bound = p.liveness_bound();
        let stats = Stats {
            peers: n,
            layout: p.layout,
            calm: p.calm,
            bound,
            ..Stats::default()
        };
        let mut w = World {
            links: vec![Link::default(); n * n],
            blocked: vec![0; n * n],
            partitions: Vec::new(),
            epoch_leaders: BTreeMap::new(),
            round_leaders: BTreeMap::new(),
            healed_at: None,
            converged_at: None,
            bound,
            best_initial,
            hash: 0xcbf2_9ce4_8422_2325,
            trace: if opts.trace { Some(Vec::new()) } else { None },
            violations: Vec::new(),
            stats,
            dial_attempts: 0,
            done: false,
            seed: opts.seed,
            strict_clock: opts.strict_clock,
            dead: vec![vec![(Duration::ZERO, None)]; n],
            cut_log: Vec::new(),
            p,
            bug: opts.bug,
            rng,
            now: Duration::ZERO,
            seq: 0,
            heap: BinaryHeap::new(),
            peers,
        };
        if w.trace.is_some() {
            let mut s = format!(
                "schedule: {} peers, {} {:?}, observers {:?}, calm {}, finalize {:?}, poll {:?}..{:?}, fast_decide {}, tick {:?}, delay<= {}us, slow {}‰, queue {}, blackhole {}, faults until {:?}, bound {:?}",
                w.p.n,
                w.p.layout,
                w.p.verifier,
                w.peers.iter().filter(|pp| pp.observer).map(|pp| pp.sid).collect::<Vec<_>>(),
                w.p.calm,
                w.p.finalize_wait,
                w.p.min_interval,
                w.p.max_interval,
                w.p.fast_decide,
                w.p.tick,
                w.p.delay_hi_us,
                w.p.slow_per_mille,
                w.p.queue_cap,
                w.p.blackhole,
                w.p.fault_end,
                w.bound
            );
            for pp in &w.peers {
                let _ = write!(
                    s,
                    "\n  sid {}: acceptedEpoch {} currentEpoch {} lastZxid {:#x}",
                    pp.sid, pp.accepted_epoch, pp.current_epoch, pp.last_zxid
                );
            }
            w.log(|| s);
        }
        for sid in 1..=n as i64 {
            let skew = if w.p.start_skew.is_zero() {
                Duration::ZERO
            } else {
                us(w.rng.range(0, w.p.start_skew.as_micros() as u64))
            };
            w.schedule(skew, Ev::Start { sid });
        }
        let tick = w.p.tick;
        w.schedule(tick, Ev::Tick);
        if w.p.calm {
            w.healed_at = Some(Duration::ZERO);
        } else {
            let first = us(w.rng.range(0, w.p.fault_gap_hi.as_micros() as u64));
            w.schedule(first, Ev::Fault);
            let end = w.p.fault_end;
            w.schedule(end, Ev::HealAll);
        }
        let first_write = ms(w.rng.range(100, 1000));
        w.schedule(first_write, Ev::Write);
        w
    }

    // ----- plumbing ---------------------------------------------------------

    fn schedule(&mut self, after: Duration, ev: Ev) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at: self.now + after,
            seq: self.seq,
            ev,
        });
    }

    fn schedule_at(&mut self, at: Duration, ev: Ev) {
        let after = at.saturating_sub(self.now);
        self.schedule(after, ev);
    }

    fn mix(&mut self, x: u64) {
        self.hash = (self.hash ^ x)
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(29);
    }

    fn mix_vote(&mut self, v: &Vote) {
        self.mix(v.leader as u64);
        self.mix(v.zxid as u64);
        self.mix(v.peer_epoch as u64);
    }

    fn log<F: FnOnce() -> String>(&mut self, f: F) {
        if self.trace.is_some() {
            let line = format!("[{:>10.6}s] {}", self.now.as_secs_f64(), f());
            if let Some(t) = self.trace.as_mut() {
                t.push(line);
            }
        }
    }

    fn fail(&mut self, r: Result<(), Violation>) {
        if let Err(v) = r {
            let line = format!("VIOLATION {v}");
            self.log(|| line);
            self.violations.push(v);
            self.done = true;
        }
    }

    fn idx(&self, sid: i64) -> usize {
        (sid - 1) as usize
    }

    fn valid(&self, sid: i64) -> bool {
        sid >= 1 && sid <= self.p.n as i64
    }

    fn link_idx(&self, a: i64, b: i64) -> usize {
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        self.idx(lo) * self.p.n + self.idx(hi)
    }

    fn dir_of(a: i64, b: i64) -> usize {
        usize::from(a > b)
    }

    fn blocked(&self, from: i64, to: i64) -> bool {
        self.blocked[self.idx(from) * self.p.n + self.idx(to)] > 0
    }

    fn reachable(&self, a: i64, b: i64) -> bool {
        !self.blocked(a, b) && !self.blocked(b, a)
    }

    fn sample_delay(&mut self) -> Duration {
        if self.p.slow_per_mille > 0 && self.rng.chance(self.p.slow_per_mille) {
            us(self
                .rng
                .range(self.p.finalize_wait.as_micros() as u64, self.p.slow_hi_us))
        } else {
            us(self.rng.range(20, self.p.delay_hi_us))
        }
    }

    fn connect_delay(&mut self) -> Duration {
        us(self.rng.range(50, self.p.connect_hi_us))
    }

    // ----- main loop --------------------------------------------------------

    fn main_loop(&mut self) {
        while let Some(s) = self.heap.pop() {
            self.now = s.at;
            self.stats.events += 1;
            self.mix(s.at.as_nanos() as u64);
            self.mix(s.ev.code());
            self.step(s.ev);
            if !self.done {
                let r = self.check_step();
                self.fail(r);
            }
            if self.done {
                break;
            }
            if self.stats.events > EVENT_BUDGET {
                let at = self.now;
                self.fail(Err(Violation {
                    invariant: "converges_after_heal",
                    at,
                    detail: format!("event budget of {EVENT_BUDGET} exhausted (message storm?)"),
                }));
                break;
            }
            if let Some(h) = self.healed_at {
                if let Some(c) = self.converged_at {
                    if self.now >= c + STABLE_FOR {
                        break;
                    }
                }
                if self.now > h + self.bound + STABLE_FOR {
                    break;
                }
            }
        }
    }

    fn finish(mut self) -> Outcome {
        if self.violations.is_empty() {
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

    fn describe(&self) -> String {
        let mut s = String::from("state:");
        for pp in &self.peers {
            let _ = write!(s, " sid {}=", pp.sid);
            let _ = match pp.role {
                Role::Dead => write!(s, "dead"),
                Role::Looking => write!(
                    s,
                    "looking(round {})",
                    pp.driver
                        .as_ref()
                        .map(|d| d.fle().logical_clock())
                        .unwrap_or(-1)
                ),
                Role::Leading { established, .. } => write!(s, "leading(epoch {established:?})"),
                Role::Following { leader, synced, .. } => {
                    write!(s, "following {leader}(epoch {synced:?})")
                }
            };
            let _ = write!(s, " acc {}", pp.accepted_epoch);
        }
        s
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Start { sid } => self.start_peer(sid),
            Ev::Restart { sid } => {
                let i = self.idx(sid);
                if !self.peers[i].alive && !self.peers[i].stay_dead {
                    self.start_peer(sid);
                }
            }
            Ev::ElectAgain { sid, inc } => {
                let i = self.idx(sid);
                let pp = &self.peers[i];
                let ready = pp.alive
                    && pp.inc == inc
                    && pp.role == Role::Looking
                    && pp.driver.as_ref().is_some_and(|d| !d.fle().is_electing());
                if ready {
                    self.start_election(sid);
                }
            }
            Ev::Timer { sid, inc, at } => {
                let i = self.idx(sid);
                let pp = &self.peers[i];
                if pp.alive && pp.inc == inc && pp.timer == Some(at) {
                    self.peers[i].timer = None;
                    self.feed(sid, Input::Timer);
                }
            }
            Ev::Deliver { from, to, gen, n } => self.deliver(from, to, gen, n),
            Ev::DialDone {
                from,
                to,
                attempt,
                leg,
            } => self.dial_done(from, to, attempt, leg),
            Ev::DialFail { from, to, attempt } => {
                let li = self.link_idx(from, to);
                if self.links[li].dialing == Some((from, attempt)) {
                    // The connect timeout of a black-holed dial. TCP kept
                    // retransmitting the SYN: if the partition healed
                    // meanwhile, the last retransmission got through (and
                    // a dead process's host refused it). So a time-out is
                    // reported only while the pair is still cut.
                    if !self.reachable(from, to) {
                        self.dial_failed(from, to, DialError::TimedOut);
                    } else if !self.peers[self.idx(to)].alive {
                        self.dial_failed(from, to, DialError::Refused);
                    } else {
                        self.link_up(from, to);
                    }
                }
            }
            Ev::Redial { from, to, inc } => {
                let li = self.link_idx(from, to);
                let di = Self::dir_of(from, to);
                if self.links[li].dirs[di].retry == Some(inc) {
                    self.links[li].dirs[di].retry = None;
                    if !self.links[li].up && !self.links[li].dirs[di].queue.is_empty() {
                        self.dial(from, to);
                    }
                }
            }
            Ev::LinkTimeout { a, b, gen } => {
                let li = self.link_idx(a, b);
                if self.links[li].up && self.links[li].gen == gen && !self.reachable(a, b) {
                    self.log(|| format!("link {a}-{b}: TCP timeout behind the partition"));
                    self.fail_link(a, b);
                }
            }
            Ev::Tick => {
                self.tick();
                let t = self.p.tick;
                self.schedule(t, Ev::Tick);
            }
            Ev::Fault => self.inject_fault(),
            Ev::HealPartition { id } => self.heal_partition(id),
            Ev::HealAll => self.heal_all(),
            Ev::Write => self.write_txns(),
        }
    }

    // ----- peers and Fle calls ---------------------------------------------

    fn start_peer(&mut self, sid: i64) {
        let i = self.idx(sid);
        let cfg = self.peers[i].cfg.clone();
        let mut driver = Driver::new(cfg);
        if self.bug == Some(InjectedBug::EagerDown) {
            driver.inject_eager_down();
        }
        {
            let pp = &mut self.peers[i];
            pp.alive = true;
            pp.driver = Some(driver);
            pp.obs = Obs::default();
            pp.timer = None;
            pp.role = Role::Looking;
        }
        let now = self.now;
        if let Some(d) = self.dead[i].last_mut() {
            d.1 = Some(now);
        }
        let (acc, ce, z) = {
            let pp = &self.peers[i];
            (pp.accepted_epoch, pp.current_epoch, pp.last_zxid)
        };
        self.log(|| format!("sid {sid}: start (acceptedEpoch {acc}, currentEpoch {ce}, lastZxid {z:#x}), logical clock 0"));
        self.start_election(sid);
    }

    fn start_election(&mut self, sid: i64) {
        let i = self.idx(sid);
        let (last_zxid, current_epoch) = (self.peers[i].last_zxid, self.peers[i].current_epoch);
        self.feed(
            sid,
            Input::StartElection {
                last_zxid,
                current_epoch,
            },
        );
    }

    fn initial_vote(&self, i: usize) -> Option<Vote> {
        let pp = &self.peers[i];
        if self.p.verifier.weight(pp.sid) > 0 {
            Some(Vote::new(pp.sid, pp.last_zxid, pp.current_epoch))
        } else {
            None
        }
    }

    /// Feeds one fact to `sid`'s driver (through the bug lens), records
    /// observations, checks the decision invariants, and executes the
    /// output (timer, sends, dials, decision). A dead peer hears nothing.
    fn feed(&mut self, sid: i64, input: Input) {
        let i = self.idx(sid);
        let cause = match input {
            Input::StartElection { .. } => Cause::Start,
            Input::Timer => Cause::Timer,
            Input::Notification { from, notification } => Cause::Deliver {
                from,
                n: notification,
            },
            _ => Cause::Fact,
        };
        let lens = self.bug == Some(InjectedBug::InvertedZxidOrder);
        let input = match input {
            Input::StartElection {
                last_zxid,
                current_epoch,
            } if lens => Input::StartElection {
                last_zxid: flip(last_zxid),
                current_epoch,
            },
            Input::Notification { from, notification } if lens => Input::Notification {
                from,
                notification: Notification {
                    zxid: flip(notification.zxid),
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
        let proposal = fle.proposal();
        let rest_down = out.decision.is_some() && fle.decided_by() == Some(DecidedBy::RestDown);
        let down = if rest_down {
            driver.down_voters()
        } else {
            Vec::new()
        };
        if lens {
            for s in &mut out.sends {
                s.notification.zxid = flip(s.notification.zxid);
            }
            if let Some(d) = out.decision.as_mut() {
                d.vote.zxid = flip(d.vote.zxid);
            }
        }
        let proposal = if lens {
            Vote {
                zxid: flip(proposal.zxid),
                ..proposal
            }
        } else {
            proposal
        };

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
            };
            if !looking_path && !self.strict_clock {
                join_round = Some(d.election_epoch);
            }
            self.on_decision(sid, d, looking_path);
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
                o.settled.insert((from, n.leader));
            }
            ServerState::Observing => {}
        }
    }

    fn on_decision(&mut self, sid: i64, d: Decision, looking_path: bool) {
        let i = self.idx(sid);
        self.stats.decisions += 1;
        self.mix(0xdec1_de00 ^ sid as u64);
        self.mix_vote(&d.vote);
        self.mix(d.election_epoch as u64);
        let path = if looking_path { "looking" } else { "settled" };
        self.log(|| {
            format!(
                "sid {sid}: DECIDED {} {} in round {} ({path} path)",
                d.state, d.vote, d.election_epoch
            )
        });
        let now = self.now;
        let observer = self.peers[i].observer;
        let r = invariants::only_candidates_elected(now, sid, observer, &d, &self.p.verifier);
        self.fail(r);
        let supporters = self.supporters(i, d.vote.leader, d.election_epoch);
        let r = invariants::decision_has_quorum(now, sid, &d, &supporters, &self.p.verifier);
        self.fail(r);
        if looking_path {
            let best = self.peers[i].obs.best_heard;
            let r = invariants::decision_not_beaten(now, sid, &d, best, &self.p.verifier);
            self.fail(r);
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
        let leader = d.vote.leader;
        self.peers[i].role = if leader == sid {
            Role::Leading {
                since: now,
                established: None,
                last_quorum: now,
            }
        } else {
            let leader_inc = if self.valid(leader) {
                self.peers[self.idx(leader)].inc
            } else {
                u32::MAX
            };
            Role::Following {
                leader,
                leader_inc,
                since: now,
                synced: None,
                last_contact: now,
            }
        };
    }

    fn supporters(&self, i: usize, leader: i64, round: i64) -> Vec<i64> {
        let me = self.peers[i].sid;
        let o = &self.peers[i].obs;
        let mut v = vec![me];
        for s in self.p.verifier.voters() {
            if s == me {
                continue;
            }
            let named = o.looking.contains(&(s, round, leader)) || o.settled.contains(&(s, leader));
            if named {
                v.push(s);
            }
        }
        v
    }

    /// A decision by `fast_decide` rule (b): every voter the driver counted
    /// Down must have been dead or cut off from the decider when the driver
    /// got its evidence (`invariants::down_voters_were_cut`).
    fn check_down_voters(&mut self, sid: i64, d: &Decision, down: &[(i64, DownEvidence)]) {
        self.stats.decisions_rest_down += 1;
        let claims: Vec<(i64, DownEvidence, bool)> = down
            .iter()
            .map(|&(v, e)| (v, e, self.was_cut(sid, v, e.at)))
            .collect();
        let r = invariants::down_voters_were_cut(self.now, sid, d, &claims);
        self.fail(r);
    }

    /// Ground truth: at virtual time `t`, was `v`'s process not running, or
    /// was the pair `x`–`v` cut in either direction by a partition? (Either
    /// way no connection between them could carry a vote at `t`.) The
    /// intervals are closed: an instant at which the cut starts or ends
    /// counts as cut.
    fn was_cut(&self, x: i64, v: i64, t: Duration) -> bool {
        let within =
            |start: Duration, end: Option<Duration>| start <= t && end.map_or(true, |e| t <= e);
        let dead = |s: i64| self.dead[self.idx(s)].iter().any(|&(a, b)| within(a, b));
        dead(v)
            || dead(x)
            || self.cut_log.iter().any(|c| {
                within(c.from, c.until) && c.pairs.iter().any(|&p| p == (x, v) || p == (v, x))
            })
    }

    // ----- network ------------------------------------------------------------

    /// QCM's `send` (and `send_if_idle` when `if_idle`: nothing is sent
    /// while something is queued for `to`). The queue only holds messages
    /// while there is no link: with a link up, the SendWorker drains it at
    /// once.
    fn send(&mut self, from: i64, to: i64, n: Notification, if_idle: bool) {
        if !self.valid(to) || to == from {
            return;
        }
        let li = self.link_idx(from, to);
        let di = Self::dir_of(from, to);
        if self.links[li].up {
            self.write(from, to, n);
        } else {
            if if_idle && !self.links[li].dirs[di].queue.is_empty() {
                return;
            }
            let cap = self.p.queue_cap;
            let q = &mut self.links[li].dirs[di].queue;
            q.push_back(n);
            while q.len() > cap {
                q.pop_front();
            }
            // QCM's toSend dials when there is no connection.
            self.dial(from, to);
        }
    }

    fn write(&mut self, from: i64, to: i64, n: Notification) {
        let li = self.link_idx(from, to);
        let di = Self::dir_of(from, to);
        let delay = self.sample_delay();
        let gen = self.links[li].gen;
        let d = &mut self.links[li].dirs[di];
        d.last_sent = Some(n);
        let at = (self.now + delay).max(d.last_at);
        d.last_at = at;
        self.stats.messages += 1;
        self.schedule_at(at, Ev::Deliver { from, to, gen, n });
    }

    fn deliver(&mut self, from: i64, to: i64, gen: u64, n: Notification) {
        let li = self.link_idx(from, to);
        let di = Self::dir_of(from, to);
        if !self.links[li].up || self.links[li].gen != gen || !self.peers[self.idx(to)].alive {
            return;
        }
        if self.blocked(from, to) || !self.links[li].dirs[di].held.is_empty() {
            self.links[li].dirs[di].held.push_back(n);
            return;
        }
        self.mix(from as u64);
        self.mix(to as u64);
        self.mix(n.state.code() as u64);
        self.mix(n.leader as u64);
        self.mix(n.election_epoch as u64);
        self.log(|| {
            format!(
                "{from} -> {to}: {} leader {} zxid {:#x} round {} peerEpoch {}",
                n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch
            )
        });
        self.feed(
            to,
            Input::Notification {
                from,
                notification: n,
            },
        );
    }

    fn dial(&mut self, from: i64, to: i64) {
        if !self.valid(to) || to == from || !self.peers[self.idx(from)].alive {
            return;
        }
        let li = self.link_idx(from, to);
        // PROTOCOL.md R13: never re-dial a live link; one dial at a time
        // per pair (the tie-break would keep only one connection anyway).
        if self.links[li].up {
            return;
        }
        if self.links[li].dialing.is_some() {
            self.links[li].want[Self::dir_of(from, to)] = true;
            return;
        }
        if self.links[li].dirs[Self::dir_of(from, to)].retry.is_some() {
            // QCM's dial loop is waiting out its backoff and will dial then.
            return;
        }
        self.dial_attempts += 1;
        let attempt = self.dial_attempts;
        self.log(|| format!("sid {from} dials sid {to} (attempt {attempt})"));
        self.links[li].dialing = Some((from, attempt));
        let d = self.connect_delay();
        self.schedule(
            d,
            Ev::DialDone {
                from,
                to,
                attempt,
                leg: 0,
            },
        );
        if self.p.blackhole {
            let t = self.p.connect_timeout;
            self.schedule(t, Ev::DialFail { from, to, attempt });
        }
    }

    fn dial_done(&mut self, from: i64, to: i64, attempt: u64, leg: u8) {
        let li = self.link_idx(from, to);
        if self.links[li].dialing != Some((from, attempt)) {
            return;
        }
        let to_alive = self.peers[self.idx(to)].alive;
        let from_alive = self.peers[self.idx(from)].alive;
        if !from_alive {
            self.links[li].dialing = None;
            return;
        }
        if to_alive && self.reachable(from, to) {
            if from > to || leg == 1 {
                self.link_up(from, to);
            } else {
                // Tie-break (PROTOCOL.md §2.4): the lower sid's connection
                // is closed and the higher sid dials back.
                let d = self.connect_delay();
                self.schedule(
                    d,
                    Ev::DialDone {
                        from,
                        to,
                        attempt,
                        leg: 1,
                    },
                );
            }
        } else if !to_alive || !self.p.blackhole {
            // Refused: a dead process, or a partition that rejects (a
            // firewall's REJECT answers with "port unreachable").
            self.dial_failed(from, to, DialError::Refused);
        }
        // Black-holed: DialFail fires at the connect timeout.
    }

    /// The running dial between `from` and `to` failed: the dialer's QCM
    /// reports it, and so does the other side's if it wanted to dial too
    /// (its own dial would have met the same dead process or partition).
    /// A side with something still queued retries after its backoff, as
    /// QCM's dial loop does.
    fn dial_failed(&mut self, from: i64, to: i64, error: DialError) {
        self.log(|| format!("dial {from}->{to} failed: {error:?}"));
        let li = self.link_idx(from, to);
        let want = self.links[li].want;
        self.links[li].dialing = None;
        self.links[li].want = [false; 2];
        for (x, y, told) in [(from, to, true), (to, from, want[Self::dir_of(to, from)])] {
            if !told || !self.peers[self.idx(x)].alive {
                continue;
            }
            self.feed(x, Input::DialFailed { sid: y, error });
            self.schedule_redial(x, y);
        }
    }

    /// QCM's dial loop: while something is queued for an unreachable peer,
    /// try again after a backoff (100 ms doubling to 1 s).
    fn schedule_redial(&mut self, x: i64, y: i64) {
        let li = self.link_idx(x, y);
        let di = Self::dir_of(x, y);
        let up = self.links[li].up;
        let inc = self.peers[self.idx(x)].inc;
        let d = &mut self.links[li].dirs[di];
        if d.queue.is_empty() || d.retry.is_some() || up {
            return;
        }
        let wait = d.backoff.max(ms(100));
        d.backoff = (wait * 2).min(ms(1000));
        d.retry = Some(inc);
        self.schedule(
            wait,
            Ev::Redial {
                from: x,
                to: y,
                inc,
            },
        );
    }

    fn link_up(&mut self, a: i64, b: i64) {
        let li = self.link_idx(a, b);
        {
            let l = &mut self.links[li];
            l.up = true;
            l.gen += 1;
            l.dialing = None;
            l.want = [false; 2];
            for d in &mut l.dirs {
                d.held.clear();
                d.backoff = Duration::ZERO;
                d.retry = None;
            }
        }
        self.log(|| format!("link {a}-{b}: up"));
        for (x, y) in [(a, b), (b, a)] {
            if !self.peers[self.idx(x)].alive {
                continue;
            }
            let di = Self::dir_of(x, y);
            let queued: Vec<Notification> = self.links[li].dirs[di].queue.drain(..).collect();
            if queued.is_empty() {
                // QCM resends the last message on a new connection.
                if let Some(last) = self.links[li].dirs[di].last_sent {
                    self.write(x, y, last);
                }
            } else {
                for n in queued {
                    self.write(x, y, n);
                }
            }
        }
        for (x, y) in [(a, b), (b, a)] {
            if self.peers[self.idx(x)].alive {
                self.feed(x, Input::LinkUp { sid: y });
            }
        }
    }

    fn fail_link(&mut self, a: i64, b: i64) {
        let li = self.link_idx(a, b);
        if !self.links[li].up {
            return;
        }
        {
            let l = &mut self.links[li];
            l.up = false;
            l.gen += 1;
            for d in &mut l.dirs {
                d.held.clear();
            }
        }
        self.mix(0x11_4b ^ (a as u64) << 8 ^ b as u64);
        self.log(|| format!("link {a}-{b}: down (in-flight messages lost)"));
        for (x, y) in [(a, b), (b, a)] {
            if self.peers[self.idx(x)].alive {
                self.feed(x, Input::LinkClosed { sid: y });
            }
        }
    }

    // ----- faults -------------------------------------------------------------

    fn inject_fault(&mut self) {
        if self.healed_at.is_some() || self.now >= self.p.fault_end {
            return;
        }
        self.stats.faults += 1;
        let n = self.p.n as i64;
        match self.rng.range(0, 99) {
            0..=24 => {
                let live: Vec<i64> = (1..=n).filter(|&s| self.peers[self.idx(s)].alive).collect();
                if !live.is_empty() {
                    let s = live[self.rng.index(live.len())];
                    self.crash(s);
                }
            }
            25..=34 => {
                let leaders: Vec<i64> = (1..=n)
                    .filter(|&s| matches!(self.peers[self.idx(s)].role, Role::Leading { .. }))
                    .collect();
                if !leaders.is_empty() {
                    let s = leaders[self.rng.index(leaders.len())];
                    self.crash(s);
                }
            }
            35..=59 => {
                let ups: Vec<(i64, i64)> = (1..=n)
                    .flat_map(|a| (a + 1..=n).map(move |b| (a, b)))
                    .filter(|&(a, b)| self.links[self.link_idx(a, b)].up)
                    .collect();
                if !ups.is_empty() {
                    let (a, b) = ups[self.rng.index(ups.len())];
                    self.log(|| format!("FAULT: connection {a}-{b} reset"));
                    self.fail_link(a, b);
                }
            }
            _ => self.partition(),
        }
        let gap = us(self
            .rng
            .range(50_000, self.p.fault_gap_hi.as_micros() as u64));
        if self.now + gap < self.p.fault_end {
            self.schedule(gap, Ev::Fault);
        }
    }

    fn crash(&mut self, sid: i64) {
        let i = self.idx(sid);
        self.log(|| format!("FAULT: sid {sid} crashes"));
        self.mix(0xc4a5 ^ sid as u64);
        {
            let pp = &mut self.peers[i];
            pp.alive = false;
            pp.driver = None;
            pp.inc += 1;
            pp.role = Role::Dead;
            pp.timer = None;
        }
        let now = self.now;
        self.dead[i].push((now, None));
        let n = self.p.n as i64;
        for x in 1..=n {
            if x == sid {
                continue;
            }
            let li = self.link_idx(sid, x);
            // The process's QCM state (queues, last message) dies with it.
            let di = Self::dir_of(sid, x);
            self.links[li].dirs[di].queue.clear();
            self.links[li].dirs[di].last_sent = None;
            self.links[li].dirs[di].backoff = Duration::ZERO;
            self.links[li].dirs[di].retry = None;
            self.links[li].want[di] = false;
            if self.links[li].dialing.is_some_and(|(d, _)| d == sid) {
                self.links[li].dialing = None;
                if self.links[li].want[Self::dir_of(x, sid)] {
                    // The survivor's own dial would now run into a dead
                    // process: refused.
                    self.links[li].want = [false; 2];
                    self.feed(
                        x,
                        Input::DialFailed {
                            sid,
                            error: DialError::Refused,
                        },
                    );
                    self.schedule_redial(x, sid);
                }
            }
            self.fail_link(sid, x);
        }
        let back = ms(self.rng.range(100, 2500));
        self.schedule(back, Ev::Restart { sid });
    }

    fn partition(&mut self) {
        let n = self.p.n as i64;
        let mut side: Vec<bool> = (0..n).map(|_| self.rng.chance(500)).collect();
        if side.iter().all(|s| *s) || side.iter().all(|s| !*s) {
            let k = self.rng.index(side.len());
            side[k] = !side[k];
        }
        let one_way = self.rng.chance(300);
        let mut cuts = Vec::new();
        for a in 1..=n {
            for b in 1..=n {
                if side[self.idx(a)] && !side[self.idx(b)] {
                    cuts.push((a, b));
                    if !one_way {
                        cuts.push((b, a));
                    }
                }
            }
        }
        let id = self.partitions.len();
        for &(a, b) in &cuts {
            let k = self.idx(a) * self.p.n + self.idx(b);
            self.blocked[k] += 1;
        }
        self.cut_log.push(CutRecord {
            pairs: cuts.clone(),
            from: self.now,
            until: None,
        });
        let island: Vec<i64> = (1..=n).filter(|&s| side[self.idx(s)]).collect();
        self.mix(0x9a27 ^ island.iter().fold(0u64, |h, s| h << 4 | *s as u64));
        self.log(|| {
            format!(
                "FAULT: partition #{id} {:?} {} the rest",
                island,
                if one_way {
                    "cannot send to"
                } else {
                    "cut from"
                }
            )
        });
        for &(a, b) in &cuts {
            let li = self.link_idx(a, b);
            if self.links[li].up {
                if self.p.blackhole {
                    let gen = self.links[li].gen;
                    let t = ms(self
                        .rng
                        .range(200, self.p.tcp_timeout_hi.as_millis() as u64));
                    self.schedule(t, Ev::LinkTimeout { a, b, gen });
                } else {
                    self.fail_link(a, b);
                }
            }
        }
        self.partitions.push(Some(cuts));
        let dur = ms(self.rng.range(100, 2000));
        self.schedule(dur, Ev::HealPartition { id });
    }

    fn heal_partition(&mut self, id: usize) {
        let Some(cuts) = self.partitions.get_mut(id).and_then(|p| p.take()) else {
            return;
        };
        let now = self.now;
        if let Some(c) = self.cut_log.get_mut(id) {
            c.until = Some(now);
        }
        self.log(|| format!("partition #{id} heals"));
        for &(a, b) in &cuts {
            let k = self.idx(a) * self.p.n + self.idx(b);
            self.blocked[k] -= 1;
        }
        for &(a, b) in &cuts {
            if self.blocked(a, b) {
                continue;
            }
            let li = self.link_idx(a, b);
            let di = Self::dir_of(a, b);
            if !self.links[li].up {
                continue;
            }
            // TCP retransmits what was stuck, in order.
            let held: Vec<Notification> = self.links[li].dirs[di].held.drain(..).collect();
            let gen = self.links[li].gen;
            for n in held {
                let delay = self.sample_delay();
                let d = &mut self.links[li].dirs[di];
                let at = (self.now + delay).max(d.last_at);
                d.last_at = at;
                self.schedule_at(
                    at,
                    Ev::Deliver {
                        from: a,
                        to: b,
                        gen,
                        n,
                    },
                );
            }
        }
    }

    fn heal_all(&mut self) {
        for id in 0..self.partitions.len() {
            self.heal_partition(id);
        }
        let n = self.p.n as i64;
        let dead: Vec<i64> = (1..=n)
            .filter(|&s| !self.peers[self.idx(s)].alive)
            .collect();
        // Keep one crashed voter down when the rest still hold a quorum:
        // "every live quorum" must elect, not only the full ensemble.
        if !dead.is_empty() && self.rng.chance(300) {
            let keep = dead[self.rng.index(dead.len())];
            let live = (1..=n).filter(|&s| s != keep);
            if self.p.verifier.contains_quorum(live) {
                let ki = self.idx(keep);
                self.peers[ki].stay_dead = true;
                self.log(|| format!("sid {keep} stays down"));
            }
        }
        self.log(|| "HEAL: network healed, no more faults".to_string());
        self.healed_at = Some(self.now);
        for s in dead {
            if !self.peers[self.idx(s)].stay_dead {
                self.start_peer(s);
            }
        }
    }

    fn write_txns(&mut self) {
        let n = self.p.n as i64;
        for l in 1..=n {
            let li = self.idx(l);
            if !self.peers[li].alive {
                continue;
            }
            let Role::Leading {
                established: Some(e),
                ..
            } = self.peers[li].role
            else {
                continue;
            };
            let k = self.rng.range(1, 3) as i64;
            let z = self.peers[li].last_zxid + k;
            self.peers[li].last_zxid = z;
            let inc = self.peers[li].inc;
            for f in 1..=n {
                let fi = self.idx(f);
                let serving = matches!(self.peers[fi].role,
                    Role::Following { leader, leader_inc, synced: Some(se), .. }
                    if leader == l && leader_inc == inc && se == e);
                if serving && self.peers[fi].alive && self.reachable(f, l) && self.rng.chance(700) {
                    self.peers[fi].last_zxid = z;
                }
            }
            self.log(|| format!("sid {l}: commits up to zxid {z:#x}"));
        }
        let next = ms(self.rng.range(100, 1000));
        self.schedule(next, Ev::Write);
    }

    // ----- the peer loop's roles (PROTOCOL.md §5, §6) -----------------------

    fn leave_role(&mut self, sid: i64, why: &str, reason: RoleEnd) {
        let i = self.idx(sid);
        if !self.peers[i].alive {
            return;
        }
        let why = why.to_string();
        self.log(|| format!("sid {sid}: leaves its role ({why}), LOOKING"));
        self.mix(0x1ea7e ^ sid as u64);
        self.peers[i].role = Role::Looking;
        self.feed(sid, Input::RoleEnded { reason });
        self.peers[i].timer = None;
        let inc = self.peers[i].inc;
        // The peer loop re-enters lookForLeader after shutting the role
        // down; notifications arriving meanwhile are buffered by Fle.
        let d = us(self.rng.range(0, 3000));
        self.schedule(d, Ev::ElectAgain { sid, inc });
    }

    fn step_down(&mut self, sid: i64, why: &str) {
        let i = self.idx(sid);
        let inc = self.peers[i].inc;
        self.leave_role(sid, why, RoleEnd::QuorumLost);
        // Shutting the leader down closes its learners' sockets.
        for f in 1..=self.p.n as i64 {
            let following = matches!(self.peers[self.idx(f)].role,
                Role::Following { leader, leader_inc, .. } if leader == sid && leader_inc == inc);
            if following {
                self.leave_role(f, "leader stopped leading", RoleEnd::LeaderClosed);
            }
        }
    }

    fn tick(&mut self) {
        let n = self.p.n as i64;
        for l in 1..=n {
            if matches!(self.peers[self.idx(l)].role, Role::Leading { .. }) {
                self.leader_tick(l);
            }
        }
        for f in 1..=n {
            if matches!(self.peers[self.idx(f)].role, Role::Following { .. }) {
                self.follower_tick(f);
            }
        }
        self.check_convergence();
    }

    fn attached(&self, l: i64) -> Vec<i64> {
        let inc = self.peers[self.idx(l)].inc;
        (1..=self.p.n as i64)
            .filter(|&f| {
                let pp = &self.peers[self.idx(f)];
                pp.alive
                    && matches!(pp.role, Role::Following { leader, leader_inc, .. }
                        if leader == l && leader_inc == inc)
                    && self.reachable(f, l)
            })
            .collect()
    }

    fn leader_tick(&mut self, l: i64) {
        let li = self.idx(l);
        let Role::Leading {
            since,
            established,
            last_quorum,
        } = self.peers[li].role
        else {
            return;
        };
        let mut attached = self.attached(l);
        // Zab refuses a learner whose history is newer than the leader's
        // (PROTOCOL.md §6.3), and a learner cannot accept an epoch below its
        // acceptedEpoch: both go back to LOOKING.
        let lkey = (self.peers[li].current_epoch, self.peers[li].last_zxid);
        let mut refused = Vec::new();
        attached.retain(|&f| {
            let fp = &self.peers[self.idx(f)];
            let synced = matches!(
                fp.role,
                Role::Following {
                    synced: Some(_),
                    ..
                }
            );
            // Only while the epoch is being established: afterwards Java's
            // waitForEpochAck returns at once and a learner that is ahead
            // gets TRUNC or SNAP instead.
            let ahead = !synced && established.is_none() && (fp.current_epoch, fp.last_zxid) > lkey;
            let epoch_low = match established {
                Some(e) => !synced && fp.accepted_epoch > e,
                None => false,
            };
            if ahead || epoch_low {
                refused.push((f, ahead));
                false
            } else {
                true
            }
        });
        for (f, ahead) in refused {
            let why = if ahead {
                "refused: learner ahead of the leader"
            } else {
                "refused: leader's epoch below my acceptedEpoch"
            };
            self.leave_role(f, why, RoleEnd::Other);
        }
        let voters: Vec<i64> = std::iter::once(l)
            .chain(attached.iter().copied().filter(|&f| self.p.is_voter(f)))
            .collect();
        let quorum = self.p.verifier.contains_quorum(voters.iter().copied());
        let tick = self.p.tick;
        match established {
            None => {
                if quorum {
                    let e = 1 + voters
                        .iter()
                        .map(|&s| self.peers[self.idx(s)].accepted_epoch)
                        .max()
                        .unwrap_or(0);
                    let r = invariants::one_leader_per_epoch(self.now, &self.epoch_leaders, e, l);
                    self.fail(r);
                    self.epoch_leaders.insert(e, l);
                    self.stats.established += 1;
                    self.mix(0xe5ab ^ (e as u64) << 8 ^ l as u64);
                    let pre = self.peers[li].last_zxid;
                    for &f in &voters {
                        if f != l {
                            self.sync_learner(f, e, pre);
                        }
                    }
                    let lp = &mut self.peers[li];
                    lp.accepted_epoch = e;
                    lp.current_epoch = e;
                    lp.last_zxid = e << 32;
                    lp.role = Role::Leading {
                        since,
                        established: Some(e),
                        last_quorum: self.now,
                    };
                    self.feed(l, Input::EpochEstablished { epoch: e });
                    self.log(|| format!("sid {l}: LEADING, established epoch {e} with {voters:?}"));
                    // Observers and other latecomers sync at the next tick.
                } else if self.now.saturating_sub(since) > tick * self.p.init_limit {
                    self.step_down(l, "no quorum of followers within initLimit");
                }
            }
            Some(e) => {
                let z = self.peers[li].last_zxid;
                for &f in &attached {
                    let unsynced = matches!(
                        self.peers[self.idx(f)].role,
                        Role::Following { synced: None, .. }
                    );
                    if unsynced {
                        self.sync_learner(f, e, z);
                    }
                }
                if quorum {
                    if let Role::Leading { last_quorum, .. } = &mut self.peers[li].role {
                        *last_quorum = self.now;
                    }
                } else if self.now.saturating_sub(last_quorum) > tick * self.p.sync_limit {
                    self.step_down(l, "not sufficient followers synced");
                }
            }
        }
    }

    fn sync_learner(&mut self, f: i64, e: i64, zxid: i64) {
        let fi = self.idx(f);
        let now = self.now;
        let fp = &mut self.peers[fi];
        // acceptedEpoch on LEADERINFO, then currentEpoch on NEWLEADER
        // (PROTOCOL.md §5); the learner takes the leader's state (DIFF/SNAP).
        fp.accepted_epoch = fp.accepted_epoch.max(e);
        fp.current_epoch = e;
        fp.last_zxid = zxid;
        if let Role::Following {
            synced,
            last_contact,
            ..
        } = &mut fp.role
        {
            *synced = Some(e);
            *last_contact = now;
        }
        self.feed(f, Input::EpochEstablished { epoch: e });
        self.log(|| format!("sid {f}: synced to epoch {e}, lastZxid {zxid:#x}"));
    }

    fn follower_tick(&mut self, f: i64) {
        let fi = self.idx(f);
        let Role::Following {
            leader,
            leader_inc,
            since,
            synced,
            last_contact,
        } = self.peers[fi].role
        else {
            return;
        };
        let tick = self.p.tick;
        if !self.valid(leader) {
            self.leave_role(f, "leader is not a configured server", RoleEnd::Other);
            return;
        }
        let lp = &self.peers[self.idx(leader)];
        if !lp.alive || lp.inc != leader_inc {
            // The leader's process is gone: its sockets are closed (FIN).
            self.leave_role(f, "leader gone", RoleEnd::LeaderClosed);
            return;
        }
        if !matches!(lp.role, Role::Leading { .. }) {
            // Learners retry the connect 5 times, 100 ms apart.
            if self.now.saturating_sub(since) > ms(500).min(tick * self.p.init_limit) {
                self.leave_role(f, "leader is not leading", RoleEnd::Other);
            }
            return;
        }
        if self.reachable(f, leader) {
            if let Role::Following { last_contact, .. } = &mut self.peers[fi].role {
                *last_contact = self.now;
            }
        } else {
            let limit = if synced.is_some() {
                self.p.sync_limit
            } else {
                self.p.init_limit
            };
            let silent_for = self.now.saturating_sub(last_contact);
            if silent_for > tick * limit {
                self.leave_role(
                    f,
                    "leader unreachable (read timeout)",
                    RoleEnd::LeaderSilent { leader, silent_for },
                );
            }
        }
    }

    fn check_convergence(&mut self) {
        if self.healed_at.is_none() {
            return;
        }
        let n = self.p.n as i64;
        let leader = (1..=n).find(|&s| {
            let pp = &self.peers[self.idx(s)];
            pp.alive
                && matches!(
                    pp.role,
                    Role::Leading {
                        established: Some(_),
                        ..
                    }
                )
        });
        let converged = leader.is_some_and(|l| {
            let lp = &self.peers[self.idx(l)];
            let Role::Leading {
                established: Some(e),
                ..
            } = lp.role
            else {
                return false;
            };
            let inc = lp.inc;
            (1..=n).all(|s| {
                let pp = &self.peers[self.idx(s)];
                !pp.alive
                    || s == l
                    || matches!(pp.role, Role::Following { leader, leader_inc, synced: Some(se), .. }
                        if leader == l && leader_inc == inc && se == e)
            })
        });
        match (converged, self.converged_at) {
            (true, None) => {
                self.converged_at = Some(self.now);
                self.log(|| format!("CONVERGED on leader {leader:?}"));
            }
            (false, Some(_)) => {
                self.converged_at = None;
                self.log(|| "no longer converged".to_string());
            }
            _ => {}
        }
    }

    /// Per-step invariants (cheap, O(n)).
    fn check_step(&self) -> Result<(), Violation> {
        let serving = self
            .peers
            .iter()
            .filter(|pp| pp.alive)
            .filter_map(|pp| match pp.role {
                Role::Leading {
                    established: Some(e),
                    ..
                } => Some((pp.sid, pp.sid, e)),
                Role::Following {
                    leader,
                    synced: Some(e),
                    ..
                } => Some((pp.sid, leader, e)),
                _ => None,
            });
        invariants::synced_peers_agree(self.now, &self.epoch_leaders, serving)
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
