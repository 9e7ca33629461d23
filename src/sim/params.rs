//! Everything a schedule draws from its seed before the first event: the
//! ensemble (size, quorum layout, observers), the timers, the network's
//! and the disks' latencies, the fault plan, and the store's clients; plus
//! the liveness bound derived from them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::rng::SimRng;
use super::schedule::{ms, us};
use super::world::SimOptions;
use crate::config::QuorumVerifier;
use crate::zab::Mode;

/// The drawn parameters of one schedule.
#[derive(Debug, Clone)]
pub(super) struct Params {
    pub n: usize,
    pub verifier: QuorumVerifier,
    pub observer: Vec<bool>,
    pub layout: &'static str,
    pub finalize_wait: Duration,
    pub min_interval: Duration,
    pub max_interval: Duration,
    pub fast_decide: bool,
    pub tick: Duration,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub delay_lo_us: u64,
    pub delay_hi_us: u64,
    pub slow_per_mille: u32,
    pub slow_hi_us: u64,
    pub connect_lo_us: u64,
    pub connect_hi_us: u64,
    pub connect_timeout: Duration,
    pub tcp_timeout_hi: Duration,
    /// Partitions black-hole packets (connections die after a TCP timeout,
    /// dials time out) rather than reset them at once.
    pub blackhole: bool,
    /// QCM send-queue capacity per peer (drop-oldest while not connected).
    pub queue_cap: usize,
    pub calm: bool,
    pub start_skew: Duration,
    pub fault_end: Duration,
    pub fault_gap_hi: Duration,
    /// Zab's mode: interop (election-only peers) or store (a replicated
    /// log with the key-value state machine and clients).
    pub mode: Mode,
    /// fsync latency range, and the share (‰) of much slower ones.
    pub fsync_lo_us: u64,
    pub fsync_hi_us: u64,
    pub fsync_slow_per_mille: u32,
    pub fsync_slow_hi_us: u64,
    /// Store mode: embedders snapshot and compact their logs (SNAP syncs).
    pub compact: bool,
    /// Store mode: clients, keys, think time, client timeout.
    pub clients: usize,
    pub keys: u8,
    pub think_hi_us: u64,
    pub client_timeout: Duration,
}

impl Params {
    /// The parameters of a random schedule. The first draw picks N (one
    /// draw whatever the range, so a narrowed `--peers` replays).
    pub(super) fn generate(rng: &mut SimRng, opts: &SimOptions) -> Params {
        let lo = opts.min_peers.clamp(1, 64) as u64;
        let hi = opts.max_peers.clamp(1, 64) as u64;
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
            let mut groups: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
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
        let tcp_timeout_hi = ms(rng.range(500, 3000));
        let blackhole = rng.chance(500);
        let queue_cap = [1, 2, 64][rng.index(3)];
        let start_skew = if calm {
            Duration::ZERO
        } else {
            ms(rng.range(0, 400))
        };
        let store = opts.store;
        let fault_end = if calm {
            Duration::ZERO
        } else if store {
            ms(rng.range(1500, 10_000))
        } else {
            ms(rng.range(1000, 8000))
        };
        let fault_gap_hi = ms(rng.range(300, 1500));
        let (fsync_lo_us, fsync_hi_us) = [(50, 500), (200, 3_000), (1_000, 15_000)][rng.index(3)];
        let fsync_slow_per_mille = if calm { 0 } else { [0, 10, 50][rng.index(3)] };
        let compact = store && rng.chance(500);
        let clients = if store { rng.range(2, 4) as usize } else { 0 };
        let keys = rng.range(2, 4) as u8;
        let think_hi_us = [2_000, 20_000, 80_000][rng.index(3)];
        let client_timeout = ms(rng.range(500, 2000));
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
            delay_lo_us: 20,
            delay_hi_us,
            slow_per_mille,
            slow_hi_us: 600_000,
            connect_lo_us: 50,
            connect_hi_us: 2_000,
            connect_timeout: ms(1000),
            tcp_timeout_hi,
            blackhole,
            queue_cap,
            calm,
            start_skew,
            fault_end,
            fault_gap_hi,
            mode: if store { Mode::Store } else { Mode::Interop },
            fsync_lo_us,
            fsync_hi_us,
            fsync_slow_per_mille,
            fsync_slow_hi_us: 200_000,
            compact,
            clients,
            keys,
            think_hi_us,
            client_timeout,
        }
    }

    /// Fixed parameters for scripted runs (the test kit, the named
    /// scenarios): a majority of `n` voters, ZooKeeper's timers, messages
    /// taking exactly `latency`, no faults unless the script makes them.
    pub(super) fn scripted(n: usize, verifier: QuorumVerifier, latency: Duration) -> Params {
        let observer = (1..=n as i64).map(|s| !verifier.is_voter(s)).collect();
        let lat = latency.as_micros() as u64;
        Params {
            n,
            verifier,
            observer,
            layout: "scripted",
            finalize_wait: ms(200),
            min_interval: ms(200),
            max_interval: ms(60_000),
            fast_decide: true,
            tick: ms(100),
            init_limit: 10,
            sync_limit: 5,
            delay_lo_us: lat,
            delay_hi_us: lat,
            slow_per_mille: 0,
            slow_hi_us: lat,
            connect_lo_us: lat,
            connect_hi_us: lat,
            connect_timeout: ms(1000),
            tcp_timeout_hi: ms(1000),
            blackhole: false,
            queue_cap: 64,
            calm: false,
            start_skew: Duration::ZERO,
            fault_end: Duration::ZERO,
            fault_gap_hi: ms(1000),
            mode: Mode::Interop,
            fsync_lo_us: 200,
            fsync_hi_us: 200,
            fsync_slow_per_mille: 0,
            fsync_slow_hi_us: 200,
            compact: false,
            clients: 0,
            keys: 3,
            think_hi_us: 20_000,
            client_timeout: ms(1500),
        }
    }

    /// The liveness bound of `invariants::converges_after_heal`, from the
    /// timers:
    ///
    /// * `detect`: a role that cannot survive ends within it. A learner
    ///   gives up dialling within initLimit and reads with a timeout of
    ///   initLimit until its NEWLEADER ACK (syncLimit after); a leader
    ///   spends at most initLimit on each of its three discovery and sync
    ///   stages and, once established, steps down at the first tick after
    ///   a quorum's syncLimit deadlines pass. Plus the slowest fsync of each
    ///   of the four writes on the way and one tick of granularity.
    /// * `attempt`: one election and establishment after that: a dial
    ///   started before the heal may still be black-holed (connect
    ///   timeout), a LOOKING server's next poll deadline is at most
    ///   `maxNotificationInterval` away, a dial plus the tie-break
    ///   call-back, the finalize wait, a few message delays (the slow tail
    ///   when slow messages are on), the learners' connect retries (their
    ///   10 attempts fit in 0.6 s), the handshake's round trips and writes,
    ///   and one tick.
    /// * An attempt can still fail after the heal (a vote slower than the
    ///   finalize wait splits a round; the elected peer then lacks a
    ///   quorum and everyone looks again after `detect`), so three
    ///   attempts are allowed: `detect + 3 * (attempt + detect)`.
    pub(super) fn liveness_bound(&self) -> Duration {
        let fsync = us(self.fsync_hi_us.max(if self.fsync_slow_per_mille > 0 {
            self.fsync_slow_hi_us
        } else {
            0
        }));
        let detect = self.tick * (3 * self.init_limit + self.sync_limit + 2) + fsync * 4;
        let msg = if self.slow_per_mille > 0 {
            us(self.slow_hi_us)
        } else {
            us(self.delay_hi_us)
        };
        let attempt = self.connect_timeout
            + self.max_interval
            + us(2 * self.connect_hi_us)
            + self.finalize_wait
            + msg * 10
            + ms(600)
            + fsync * 4
            + self.tick;
        detect + (attempt + detect) * 3
    }

    pub(super) fn is_voter(&self, sid: i64) -> bool {
        self.verifier.is_voter(sid)
    }
}
