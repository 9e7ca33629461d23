//! Named scenarios: for each ZooKeeper ticket of PROTOCOL.md §6.7a, the
//! fault schedule its report describes, run against the store-mode
//! machines with clients writing and reading throughout. Each step fires on
//! a protocol moment (a learner receiving NEWLEADER, a leader establishing,
//! a TRUNC issued), so the schedule hits the ticket's window whatever the
//! timing; a scenario whose window never comes fails. Every scenario must
//! pass on zkfle; with the matching injected bug (the ticket's own
//! mistake, around the machines) the scenario loses an acknowledged or
//! committed write and the checks catch it.
//!
//! The tickets, as their reports describe them:
//!
//! * **ZOOKEEPER-3911** (5 servers): a proposal only the old leader and one
//!   follower logged; the follower leads, syncs the others by DIFF, and is
//!   established by their NEWLEADER ACKs, sent before the proposal was on
//!   their disks; then every server of the new quorum crashes and comes
//!   back without the old leader: the committed proposal is gone.
//! * **ZOOKEEPER-4643** (3 servers): a lagging follower syncs with a new
//!   leader, updates currentEpoch as NEWLEADER arrives, and crashes (with
//!   the leader) before the synced proposals are on disk; its next vote
//!   carries the new epoch, it wins against the old leader that holds the
//!   acknowledged writes, and truncates them.
//! * **ZOOKEEPER-4646** (3 servers): a follower crashes after its NEWLEADER
//!   ACK but before the synced transactions reach its disk (asynchronous
//!   logging), together with the new leader; the old leader is gone for
//!   good: an acknowledged write is lost.
//! * **ZOOKEEPER-4685** (3 servers): a follower syncing while writes flow
//!   ACKs proposals before its NEWLEADER ACK, and the leader shuts down on
//!   the unexpected ACK: the ensemble stalls.
//! * **ZOOKEEPER-4394** (3 servers): a follower receives uncommitted
//!   proposals during its sync and the leader crashes before they commit:
//!   nothing uncommitted may be applied.
//! * **ZOOKEEPER-4925** (3 servers): a stale follower catches up by DIFF
//!   and then leads; a hole in what it holds would be propagated as a lost
//!   committed write.
//! * **ZOOKEEPER-5094** (3 servers): a follower with an uncommitted tail
//!   gets TRUNC from the new leader and its sync is interrupted; nothing in
//!   its state may be ahead of its log when it comes back.

use std::time::Duration;

use crate::config::QuorumVerifier;
use crate::election::FleConfig;
use crate::zab::{LearnerStage, Mode};

use super::invariants::Violation;
use super::params::Params;
use super::peer::Role;
use super::rng::SimRng;
use super::schedule::{ms, us, Ev};
use super::script::{Script, Step, Trigger};
use super::store::Store;
use super::world::{InjectedBug, Outcome, World};

/// The named scenarios, by ticket.
pub const NAMES: [&str; 7] = [
    "ZOOKEEPER-3911",
    "ZOOKEEPER-4643",
    "ZOOKEEPER-4646",
    "ZOOKEEPER-4685",
    "ZOOKEEPER-4394",
    "ZOOKEEPER-4925",
    "ZOOKEEPER-5094",
];

/// The injected bug that is the ticket's own mistake, if one applies.
pub fn ticket_bug(name: &str) -> Option<InjectedBug> {
    match name {
        "ZOOKEEPER-3911" | "ZOOKEEPER-4646" => Some(InjectedBug::AckBeforeDurable),
        "ZOOKEEPER-4643" => Some(InjectedBug::EpochBeforeSync),
        _ => None,
    }
}

/// What a scenario run did.
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    /// The run's outcome (violations, counters, trace).
    pub outcome: Outcome,
    /// Each step that fired, with its virtual time, in order.
    pub fired: Vec<(&'static str, Duration)>,
}

/// Runs the scenario `name` (one of [`NAMES`]), optionally with an injected
/// bug, only the end-to-end checks ([`super::SimOptions::end_to_end_only`])
/// and a trace. `None` for an unknown name.
pub fn run(
    name: &str,
    bug: Option<InjectedBug>,
    end_to_end_only: bool,
    trace: bool,
) -> Option<ScenarioRun> {
    let (n, steps) = match name {
        "ZOOKEEPER-3911" => (5, zk3911()),
        "ZOOKEEPER-4643" => (3, zk4643()),
        "ZOOKEEPER-4646" => (3, zk4646()),
        "ZOOKEEPER-4685" => (3, zk4685()),
        "ZOOKEEPER-4394" => (3, zk4394()),
        "ZOOKEEPER-4925" => (3, zk4925()),
        "ZOOKEEPER-5094" => (3, zk5094()),
        _ => return None,
    };
    let mut w = base(n, bug, trace);
    w.end_to_end_only = end_to_end_only;
    w.script = Some(Script::new(steps));
    w.main_loop();
    let fired = w
        .script
        .as_ref()
        .map(|s| s.fired.clone())
        .unwrap_or_default();
    let stuck = w.script.as_ref().and_then(|s| s.stuck);
    if let Some(step) = stuck {
        let at = w.now;
        w.violations.push(Violation {
            invariant: "scenario_window",
            at,
            detail: format!("{name}: step '{step}' never came"),
        });
    }
    let outcome = w.finish();
    Some(ScenarioRun { outcome, fired })
}

/// Store mode, a majority of `n`, ZooKeeper-like timers (tick 100 ms,
/// initLimit 10, syncLimit 3), fast disks, sub-millisecond network, two
/// clients writing and reading two keys; no random faults, no automatic
/// restarts.
fn base(n: usize, bug: Option<InjectedBug>, trace: bool) -> World {
    let verifier = QuorumVerifier::majority(1..=n as i64);
    let mut p = Params::scripted(n, verifier.clone(), us(500));
    p.layout = "scenario";
    p.mode = Mode::Store;
    p.sync_limit = 3;
    p.delay_lo_us = 200;
    p.delay_hi_us = 1_000;
    p.connect_lo_us = 100;
    p.connect_hi_us = 500;
    p.fsync_lo_us = 100;
    p.fsync_hi_us = 1_000;
    p.clients = 2;
    p.keys = 2;
    p.think_hi_us = 10_000;
    p.client_timeout = ms(1000);
    let configs = (1..=n as i64)
        .map(|s| FleConfig::new(s, verifier.clone()).with_zkfle_timing(true))
        .collect();
    let seed = 0x5ce0_a210;
    let mut w = World::with_peers(seed, p, SimRng::new(seed), configs, trace);
    w.bug = bug;
    w.auto_restart = false;
    w.store = Some(Store::new(2));
    for sid in 1..=n as i64 {
        w.schedule(Duration::ZERO, Ev::Start { sid });
    }
    w.start_clients();
    w
}

// ----- helpers for the steps ------------------------------------------------

/// A step that waits for `cond` (at most `patience`).
fn when(
    name: &'static str,
    patience: Duration,
    cond: impl Fn(&World) -> bool + 'static,
    act: impl FnMut(&mut World) + 'static,
) -> Step {
    Step {
        name,
        when: Trigger::When(Box::new(cond)),
        act: Box::new(act),
        patience,
    }
}

/// A step `d` after the previous one.
fn after(name: &'static str, d: Duration, act: impl FnMut(&mut World) + 'static) -> Step {
    Step {
        name,
        when: Trigger::After(d),
        act: Box::new(act),
        patience: d + ms(1),
    }
}

const PATIENCE: Duration = Duration::from_secs(10);

/// The established leader every live peer follows.
fn converged(w: &World) -> Option<i64> {
    w.converged_leader()
}

fn acked(w: &World) -> usize {
    w.store.as_ref().map_or(0, |s| s.acked.len())
}

fn stage(w: &World, sid: i64) -> Option<LearnerStage> {
    match &w.peers[w.idx(sid)].role {
        Role::Learning(l) if w.alive(sid) => Some(l.m.stage()),
        _ => None,
    }
}

fn leading(w: &World, sid: i64) -> bool {
    w.alive(sid) && matches!(&w.peers[w.idx(sid)].role, Role::Leading(l) if l.m.is_established())
}

fn durable_last(w: &World, sid: i64) -> i64 {
    w.peers[w.idx(sid)].disk.last_durable_zxid()
}

/// Cuts `island` from everyone else until the script heals it.
fn isolate(w: &mut World, island: &[i64], one_way: bool) {
    let side: Vec<bool> = (1..=w.p.n as i64).map(|s| island.contains(&s)).collect();
    w.partition_sides(&side, one_way, Duration::from_secs(3600));
}

fn heal(w: &mut World) {
    for id in 0..w.partitions.len() {
        w.heal_partition(id);
    }
}

fn slow_disks(w: &mut World, sids: &[i64], d: Duration) {
    for &s in sids {
        w.hooks.slow_disk.insert(s, d);
    }
}

fn fast_disks(w: &mut World) {
    w.hooks.slow_disk.clear();
}

/// The end of every scenario: everyone back, the network whole; the run
/// then must converge within the liveness bound.
fn finale() -> Step {
    after("everyone back, network healed", ms(500), |w| {
        fast_disks(w);
        w.heal_all();
    })
}

// ----- the tickets ------------------------------------------------------------

fn zk3911() -> Vec<Step> {
    vec![
        when(
            "converged on 5, writes acknowledged",
            PATIENCE,
            |w| converged(w) == Some(5) && acked(w) >= 5,
            |w| {
                // The leader's packets reach only sid 4.
                let cuts = vec![(5, 1), (5, 2), (5, 3)];
                w.partition_pairs(cuts, "5 cannot send to 1, 2, 3", Duration::from_secs(3600));
            },
        ),
        when(
            "sid 4 durably holds a proposal sids 1-3 lack",
            PATIENCE,
            |w| {
                durable_last(w, 4)
                    > durable_last(w, 1)
                        .max(durable_last(w, 2))
                        .max(durable_last(w, 3))
            },
            |w| {
                w.crash(5);
                heal(w);
                slow_disks(w, &[1, 2, 3], ms(40));
            },
        ),
        when(
            "sid 4 leads a new epoch, established by 1-3's NEWLEADER ACKs",
            PATIENCE,
            |w| leading(w, 4),
            |w| {
                for s in [4, 1, 2, 3] {
                    w.crash(s);
                }
            },
        ),
        after("the new quorum comes back without 4 and 5", ms(300), |w| {
            fast_disks(w);
            for s in [1, 2, 3] {
                w.restart(s);
            }
        }),
        when(
            "1-3 elect among themselves",
            PATIENCE,
            |w| [1, 2, 3].iter().any(|&s| leading(w, s)),
            |_| {},
        ),
        after("sid 4 returns", ms(500), |w| w.restart(4)),
        finale(),
    ]
}

fn zk4643() -> Vec<Step> {
    vec![
        when(
            "converged, writes acknowledged",
            PATIENCE,
            |w| converged(w) == Some(3) && acked(w) >= 5,
            |w| isolate(w, &[1], false),
        ),
        when(
            "sid 1 lags behind acknowledged writes",
            PATIENCE,
            |w| acked(w) >= 15,
            |w| {
                w.crash(3);
                heal(w);
                slow_disks(w, &[1], ms(60));
            },
        ),
        when(
            "sid 1 gets NEWLEADER from sid 2 before its synced history is durable",
            PATIENCE,
            |w| stage(w, 1) == Some(LearnerStage::NewLeader),
            |w| {
                w.crash(1);
                w.crash(2);
            },
        ),
        after("sids 1 and 3 come back; 2 stays down", ms(300), |w| {
            fast_disks(w);
            w.restart(1);
            w.restart(3);
        }),
        when(
            "1 and 3 elect",
            PATIENCE,
            |w| leading(w, 1) || leading(w, 3),
            |_| {},
        ),
        after("sid 2 returns", ms(500), |w| w.restart(2)),
        finale(),
    ]
}

fn zk4646() -> Vec<Step> {
    vec![
        when(
            "converged, writes acknowledged",
            PATIENCE,
            |w| converged(w) == Some(3) && acked(w) >= 5,
            |w| isolate(w, &[1], false),
        ),
        when(
            "writes acknowledged by 2 and 3 while 1 lags",
            PATIENCE,
            |w| acked(w) >= 15,
            |w| {
                w.crash(3);
                heal(w);
                slow_disks(w, &[1, 2], ms(60));
            },
        ),
        when(
            "sid 1 has ACKed NEWLEADER",
            PATIENCE,
            |w| matches!(&w.peers[w.idx(1)].role, Role::Learning(l) if l.m.acked_newleader()),
            |w| {
                w.crash(1);
                w.crash(2);
            },
        ),
        after(
            "1 and 2 come back; the old leader 3 does not",
            ms(300),
            |w| {
                fast_disks(w);
                w.restart(1);
                w.restart(2);
            },
        ),
        when(
            "1 and 2 elect",
            PATIENCE,
            |w| leading(w, 1) || leading(w, 2),
            |_| {},
        ),
        after("sid 3 returns", ms(500), |w| w.restart(3)),
        finale(),
    ]
}

fn zk4685() -> Vec<Step> {
    vec![
        when(
            "converged, writes flowing",
            PATIENCE,
            |w| converged(w) == Some(3) && acked(w) >= 5,
            |w| w.crash(1),
        ),
        after("sid 1 restarts with a slow disk", ms(200), |w| {
            slow_disks(w, &[1], ms(30));
            w.restart(1);
        }),
        when(
            "sid 1 is between NEWLEADER and its ACK while proposals arrive",
            PATIENCE,
            |w| stage(w, 1) == Some(LearnerStage::NewLeader),
            |_| {},
        ),
        when(
            "sid 1 is synced, under the same leader term",
            PATIENCE,
            |w| stage(w, 1) == Some(LearnerStage::Broadcast) && leading(w, 3),
            |_| {},
        ),
        finale(),
    ]
}

fn zk4394() -> Vec<Step> {
    vec![
        when(
            "converged, writes acknowledged",
            PATIENCE,
            |w| converged(w) == Some(3) && acked(w) >= 5,
            |w| {
                // Sid 2's ACKs stop reaching the leader: nothing new commits
                // while sid 1 is away.
                isolate(w, &[2], true);
                w.crash(1);
            },
        ),
        after("sid 1 restarts while proposals pile up", ms(200), |w| {
            slow_disks(w, &[1], ms(30));
            w.restart(1);
        }),
        when(
            "sid 1 receives uncommitted proposals in its sync",
            PATIENCE,
            |w| {
                stage(w, 1) == Some(LearnerStage::Syncing)
                    && matches!(&w.peers[w.idx(1)].role, Role::Learning(l) if l.m.last_zxid() > l.m.commit_zxid() && l.m.last_zxid() > 0)
            },
            |w| w.crash(3),
        ),
        after("sid 2's ACKs flow again", ms(100), heal),
        when(
            "1 and 2 elect",
            PATIENCE,
            |w| leading(w, 1) || leading(w, 2),
            |_| {},
        ),
        after("sid 3 returns", ms(300), |w| w.restart(3)),
        finale(),
    ]
}

fn zk4925() -> Vec<Step> {
    vec![
        when(
            "converged on 3, writes acknowledged",
            PATIENCE,
            |w| converged(w) == Some(3) && acked(w) >= 5,
            |w| isolate(w, &[3], false),
        ),
        when(
            "1 and 2 lead on without 3 and acknowledge writes",
            PATIENCE,
            |w| (leading(w, 1) || leading(w, 2)) && acked(w) >= 20,
            heal,
        ),
        when(
            "the stale sid 3 is synced by DIFF",
            PATIENCE,
            |w| stage(w, 3) == Some(LearnerStage::Broadcast),
            |w| {
                let l = if leading(w, 2) { 2 } else { 1 };
                w.crash(l);
            },
        ),
        when(
            "the once-stale sid 3 leads",
            PATIENCE,
            |w| leading(w, 3) || leading(w, 1) || leading(w, 2),
            |_| {},
        ),
        finale(),
    ]
}

fn zk5094() -> Vec<Step> {
    vec![
        when(
            "converged on 3, writes acknowledged",
            PATIENCE,
            |w| converged(w) == Some(3) && acked(w) >= 5,
            |w| isolate(w, &[3], true),
        ),
        when(
            "sid 3 durably holds proposals nobody else has",
            PATIENCE,
            |w| durable_last(w, 3) > durable_last(w, 1).max(durable_last(w, 2)),
            |w| {
                w.crash(3);
                heal(w);
            },
        ),
        when(
            "1 and 2 lead on and write",
            PATIENCE,
            |w| (leading(w, 1) || leading(w, 2)) && acked(w) >= 15,
            |w| {
                slow_disks(w, &[3], ms(40));
                w.restart(3);
            },
        ),
        when(
            "sid 3 is told to truncate its uncommitted tail",
            PATIENCE,
            |w| w.stats.truncations > 0 && stage(w, 3) == Some(LearnerStage::Syncing),
            |w| {
                // Interrupt the sync: its connection resets.
                for c in w.q_conns_of(3) {
                    w.q_reset(c);
                }
            },
        ),
        when(
            "sid 3 syncs again",
            PATIENCE,
            |w| stage(w, 3) == Some(LearnerStage::Broadcast),
            |_| {},
        ),
        finale(),
    ]
}
