//! The fault injector: crashes (power loss: unsynced writes are lost) and
//! restarts from the disks, process pauses (SIGSTOP, mostly longer than
//! syncLimit × tickTime), election link and quorum connection resets,
//! one-way and two-way partitions (rejecting or black-holing), and in
//! store mode the crashes that hit Zab's sync windows (a learner in sync,
//! a leader together with an up-to-date follower). Until the schedule's
//! `fault_end`; then everything heals and the liveness bound runs.

use std::time::Duration;

use crate::zab::LearnerStage;

use super::net::CutRecord;
use super::peer::Role;
use super::schedule::{ms, us, Ev};
use super::world::World;

impl World {
    fn live_sids(&self) -> Vec<i64> {
        self.peers
            .iter()
            .filter(|pp| pp.alive)
            .map(|pp| pp.sid)
            .collect()
    }

    fn leaders(&self) -> Vec<i64> {
        self.peers
            .iter()
            .filter(|pp| pp.alive && matches!(pp.role, Role::Leading(_)))
            .map(|pp| pp.sid)
            .collect()
    }

    fn pick(&mut self, v: &[i64]) -> Option<i64> {
        (!v.is_empty()).then(|| v[self.rng.index(v.len())])
    }

    pub(super) fn inject_fault(&mut self) {
        if self.healed_at.is_some() || self.now >= self.p.fault_end {
            return;
        }
        self.stats.faults += 1;
        let store = self.p.mode == crate::zab::Mode::Store;
        // Drawn only with --resign, so other schedules replay unchanged.
        let resigned = self.resign && self.rng.chance(250) && self.resign_leader();
        match if resigned { 100 } else { self.rng.range(0, 99) } {
            100 => {}
            0..=19 => {
                let live = self.live_sids();
                if let Some(s) = self.pick(&live) {
                    self.crash(s);
                }
            }
            20..=29 => {
                let leaders = self.leaders();
                if let Some(s) = self.pick(&leaders) {
                    self.crash(s);
                }
            }
            30..=37 => {
                let live = self.live_sids();
                if let Some(s) = self.pick(&live) {
                    self.pause(s);
                }
            }
            38..=43 => {
                let leaders = self.leaders();
                if let Some(s) = self.pick(&leaders) {
                    self.pause(s);
                }
            }
            44..=55 => {
                let ups = self.up_links();
                if !ups.is_empty() {
                    let (a, b) = ups[self.rng.index(ups.len())];
                    self.log(|| format!("FAULT: election link {a}-{b} reset"));
                    let now = self.now;
                    self.truth.touch(a, now);
                    self.truth.touch(b, now);
                    self.fail_link(a, b);
                }
            }
            56..=63 => {
                let conns: Vec<_> = self.qconns.keys().copied().collect();
                if !conns.is_empty() {
                    let conn = conns[self.rng.index(conns.len())];
                    if let Some(c) = self.qconns.get(&conn) {
                        let (a, b) = (c.leader, c.learner);
                        self.log(|| format!("FAULT: quorum connection {a}-{b} reset"));
                        let now = self.now;
                        self.truth.touch(a, now);
                        self.truth.touch(b, now);
                    }
                    self.q_reset(conn);
                }
            }
            64..=69 if store => {
                // A learner in the middle of its sync.
                let syncing: Vec<i64> = self
                    .peers
                    .iter()
                    .filter(|pp| {
                        pp.alive
                            && matches!(&pp.role, Role::Learning(l) if matches!(
                                l.m.stage(),
                                LearnerStage::Syncing
                                    | LearnerStage::NewLeader
                                    | LearnerStage::AwaitingUpToDate
                            ))
                    })
                    .map(|pp| pp.sid)
                    .collect();
                if let Some(s) = self.pick(&syncing) {
                    self.crash(s);
                }
            }
            70..=74 if store => {
                // Overlapping crashes: the leader and a follower that holds
                // what it acknowledged, leaving lagging ones behind.
                let leaders = self.leaders();
                if let Some(l) = self.pick(&leaders) {
                    let followers: Vec<i64> = self
                        .peers
                        .iter()
                        .filter(|pp| {
                            pp.alive
                                && matches!(&pp.role, Role::Learning(x)
                                    if x.leader == l && x.m.stage() == LearnerStage::Broadcast)
                        })
                        .map(|pp| pp.sid)
                        .collect();
                    self.crash(l);
                    if let Some(f) = self.pick(&followers) {
                        self.crash(f);
                    }
                }
            }
            75..=86 if store => {
                // The leader alone, cut from every peer (its clients still
                // reach it): the majority elects and writes while it may
                // still believe it leads.
                let leaders = self.leaders();
                if let Some(l) = self.pick(&leaders) {
                    let side: Vec<bool> = (1..=self.p.n as i64).map(|s| s == l).collect();
                    let dur = self.p.tick * (self.p.sync_limit + 2) + ms(self.rng.range(0, 1500));
                    self.partition_sides(&side, false, dur);
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

    /// `PeerHandle::resign` on an established leader: its Zab leader steps
    /// down (its learner connections close), and its Driver is told
    /// `RoleEnd::Resigned` with a hold-off that ends before the faults do
    /// (so the liveness bound after the heal is unaffected). False if no
    /// leader could resign.
    fn resign_leader(&mut self) -> bool {
        let leaders: Vec<i64> = self
            .peers
            .iter()
            .filter(|pp| {
                pp.alive
                    && !pp.paused
                    && matches!(&pp.role, Role::Leading(l) if l.m.is_established())
            })
            .map(|pp| pp.sid)
            .collect();
        let left = self.p.fault_end.saturating_sub(self.now);
        let Some(sid) = self.pick(&leaders) else {
            return false;
        };
        let hold_off = ms(self.rng.range(50, 2000)).min(left);
        if hold_off < ms(50) {
            return false;
        }
        self.log(|| format!("FAULT: sid {sid} resigns, hold-off {hold_off:?}"));
        self.mix(0x4e51 ^ sid as u64);
        self.stats.resignations += 1;
        let now = self.now;
        let i = self.idx(sid);
        self.peers[i].resigned_until = Some(now + hold_off);
        self.truth.touch(sid, now + hold_off);
        self.leader_call(sid, None, |m, now| {
            m.step_down(now, crate::zab::StepDown::Resign { hold_off })
        })
    }

    /// A power loss on `sid`: the process dies, its connections reset, its
    /// unsynced writes are lost; it restarts from its disk later.
    pub(super) fn crash(&mut self, sid: i64) {
        let i = self.idx(sid);
        if !self.peers[i].alive {
            return;
        }
        self.log(|| format!("FAULT: sid {sid} crashes"));
        self.mix(0xc4a5 ^ sid as u64);
        self.stats.crashes += 1;
        if matches!(self.peers[i].role, Role::Leading(_)) {
            self.stats.leader_crashes += 1;
        }
        // What a paused process had not run yet still resolves (a dial to
        // it is refused now); its handlers see the dead incarnation.
        let held = std::mem::take(&mut self.peers[i].held);
        for ev in held {
            self.schedule(Duration::ZERO, ev);
        }
        {
            let pp = &mut self.peers[i];
            pp.alive = false;
            pp.paused = false;
            // The driver stays for inspection (the test kit's `fle`); a dead
            // process is fed nothing.
            pp.inc += 1;
            pp.role = Role::Dead;
            pp.timer = None;
            // A hold-off lives in the process's Driver: a restart stands.
            pp.resigned_until = None;
            pp.disk.crash();
        }
        let now = self.now;
        self.truth.stopped(sid, now);
        self.store_crashed(sid);
        self.q_crash(sid);
        self.crash_links(sid);
        if self.auto_restart {
            let back = ms(self.rng.range(100, 2500));
            self.schedule(back, Ev::Restart { sid });
        }
    }

    pub(super) fn restart(&mut self, sid: i64) {
        let i = self.idx(sid);
        if !self.peers[i].alive && !self.peers[i].stay_dead {
            self.stats.restarts += 1;
            self.log(|| format!("sid {sid} restarts"));
            self.start_peer(sid);
        }
    }

    /// SIGSTOP: mostly longer than syncLimit × tickTime, sometimes a
    /// shorter stall.
    pub(super) fn pause(&mut self, sid: i64) {
        let sync = self.p.tick * self.p.sync_limit;
        let d = if self.rng.chance(800) {
            sync + ms(self.rng.range(50, 2000))
        } else {
            us(self.rng.range(1000, sync.as_micros() as u64))
        };
        self.pause_for(sid, d);
    }

    pub(super) fn pause_for(&mut self, sid: i64, d: Duration) {
        let i = self.idx(sid);
        if !self.peers[i].alive || self.peers[i].paused {
            return;
        }
        self.log(|| format!("FAULT: sid {sid} paused for {d:?}"));
        self.mix(0x9a05e ^ sid as u64);
        self.stats.pauses += 1;
        if matches!(self.peers[i].role, Role::Leading(_)) {
            self.stats.leader_pauses += 1;
        }
        self.peers[i].paused = true;
        let now = self.now;
        self.truth.stopped(sid, now);
        let inc = self.peers[i].inc;
        self.schedule(d, Ev::Resume { sid, inc });
    }

    /// SIGCONT: what the process missed runs now, in order, before
    /// anything that arrives after (re-queueing it would let an event due
    /// at this very instant overtake it: a FIFO connection reordered).
    pub(super) fn resume(&mut self, sid: i64, inc: u32) {
        let i = self.idx(sid);
        if self.peers[i].inc != inc || !self.peers[i].paused {
            return;
        }
        self.log(|| format!("sid {sid} resumes"));
        self.peers[i].paused = false;
        let now = self.now;
        self.truth.running(sid, now);
        let held = std::mem::take(&mut self.peers[i].held);
        for ev in held {
            if self.done {
                break;
            }
            self.mix(ev.code());
            self.step(ev);
        }
    }

    pub(super) fn partition(&mut self) {
        let n = self.p.n as i64;
        let mut side: Vec<bool> = (0..n).map(|_| self.rng.chance(500)).collect();
        if side.iter().all(|s| *s) || side.iter().all(|s| !*s) {
            let k = self.rng.index(side.len());
            side[k] = !side[k];
        }
        let one_way = self.rng.chance(300);
        let dur = ms(self.rng.range(100, 2000));
        self.partition_sides(&side, one_way, dur);
    }

    /// Cuts the `side` peers from the others (one way: only their packets
    /// to the others are lost) for `dur`; returns the partition's id.
    pub(super) fn partition_sides(&mut self, side: &[bool], one_way: bool, dur: Duration) -> usize {
        let n = self.p.n as i64;
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
        let island: Vec<i64> = (1..=n).filter(|&s| side[self.idx(s)]).collect();
        self.mix(0x9a27 ^ island.iter().fold(0u64, |h, s| h << 4 | *s as u64));
        let how = if one_way {
            "cannot send to"
        } else {
            "cut from"
        };
        let what = format!("{island:?} {how} the rest");
        self.partition_pairs(cuts, &what, dur)
    }

    /// Blocks packets on each ordered pair `(from, to)` of `cuts` for
    /// `dur`; returns the partition's id.
    pub(super) fn partition_pairs(
        &mut self,
        cuts: Vec<(i64, i64)>,
        what: &str,
        dur: Duration,
    ) -> usize {
        self.stats.partitions += 1;
        let id = self.partitions.len();
        for &(a, b) in &cuts {
            let k = self.idx(a) * self.p.n + self.idx(b);
            self.blocked[k] += 1;
        }
        for s in 1..=self.p.n as i64 {
            self.truth.hold(s);
        }
        self.cut_log.push(CutRecord {
            pairs: cuts.clone(),
            from: self.now,
            until: None,
        });
        self.log(|| format!("FAULT: partition #{id} {what}"));
        self.cut_links(&cuts);
        self.q_cut();
        self.partitions.push(Some(cuts));
        self.schedule(dur, Ev::HealPartition { id });
        id
    }

    pub(super) fn heal_partition(&mut self, id: usize) {
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
        for s in 1..=self.p.n as i64 {
            self.truth.release(s, now);
        }
        self.release_links(&cuts);
        self.q_release();
    }

    pub(super) fn heal_all(&mut self) {
        for id in 0..self.partitions.len() {
            self.heal_partition(id);
        }
        let paused: Vec<(i64, u32)> = self
            .peers
            .iter()
            .filter(|pp| pp.paused)
            .map(|pp| (pp.sid, pp.inc))
            .collect();
        for (s, inc) in paused {
            self.resume(s, inc);
        }
        let n = self.p.n as i64;
        let dead: Vec<i64> = (1..=n).filter(|&s| !self.alive(s)).collect();
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
                self.restart(s);
            }
        }
    }
}
