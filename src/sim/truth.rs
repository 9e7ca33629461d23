//! The ground truth the invariants are checked against (what really
//! happened, not what the machines believe): when each process was not
//! running or cut off, which faults touched which peer, every log entry
//! ever written, the committed history, the history each epoch's leader
//! started from, and the epochs leaders established; plus the calls into
//! `invariants` that use it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::wire::zab::{self as wz, zxid_of_epoch};
use crate::zab::{Entry, LearnerStage, Packet};

use super::invariants::{self, Violation};
use super::peer::Role;
use super::world::World;

/// FNV-1a over an entry's bytes: entries are compared by it.
pub(super) fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The history a leader started its term with: its snapshot's zxid and
/// the entries after it.
#[derive(Debug, Clone, Default)]
pub(super) struct History {
    pub snapshot: i64,
    pub entries: Vec<(i64, u64)>,
}

/// One election round, for `invariants::untouched_round_agrees`.
#[derive(Debug, Clone, Default)]
pub(super) struct Round {
    /// (decider, leader) of each looking-path decision, in order.
    pub decisions: Vec<(i64, i64)>,
    /// The deciders and every voter whose vote of the round they heard.
    pub voters: BTreeSet<i64>,
}

/// What the invariants compare against.
pub(super) struct Truth {
    /// Per sid, the intervals in which its process was not running (dead
    /// or paused; end `None`: still).
    pub not_running: Vec<Vec<(Duration, Option<Duration>)>>,
    /// Per sid, until when the latest fault touched it (`Duration::MAX`
    /// while one still does).
    pub touched_until: Vec<Duration>,
    /// Per sid, faults still touching it (partitions, its process being
    /// down or paused).
    pub holds: Vec<u32>,
    /// Per sid, its process is not running now.
    pub down: Vec<bool>,
    /// Per sid, its process ran at least once (the first start is no
    /// fault).
    pub started: Vec<bool>,
    /// Epoch → the sid that established it (from the machines' own
    /// `Established`).
    pub epoch_leaders: BTreeMap<i64, i64>,
    /// Every zxid ever written to a log → its entry's hash.
    pub zxids: BTreeMap<i64, u64>,
    /// The committed history: zxid → hash.
    pub committed: BTreeMap<i64, u64>,
    /// Epoch → the history its leader started from (recorded when it
    /// persisted currentEpoch, before any NEWLEADER).
    pub epoch_history: BTreeMap<i64, History>,
    /// Round → what happened in it.
    pub rounds: BTreeMap<i64, Round>,
}

impl Truth {
    pub(super) fn new(n: usize) -> Truth {
        Truth {
            not_running: vec![vec![(Duration::ZERO, None)]; n],
            touched_until: vec![Duration::ZERO; n],
            holds: vec![1; n],
            down: vec![true; n],
            started: vec![false; n],
            epoch_leaders: BTreeMap::new(),
            zxids: BTreeMap::new(),
            committed: BTreeMap::new(),
            epoch_history: BTreeMap::new(),
            rounds: BTreeMap::new(),
        }
    }

    /// Entries with one zxid are one entry, on every disk.
    pub(super) fn record_zxid(
        &mut self,
        at: Duration,
        sid: i64,
        e: &Entry,
    ) -> Result<(), Violation> {
        let h = hash(&e.data);
        let known = *self.zxids.entry(e.zxid).or_insert(h);
        invariants::same_zxid_same_entry(at, sid, e.zxid, known, h)
    }

    /// A fault touches `sid` until `until`.
    pub(super) fn touch(&mut self, sid: i64, until: Duration) {
        let i = (sid - 1) as usize;
        if let Some(t) = self.touched_until.get_mut(i) {
            *t = (*t).max(until);
        }
    }

    /// A fault starts touching `sid` until further notice.
    pub(super) fn hold(&mut self, sid: i64) {
        let i = (sid - 1) as usize;
        self.holds[i] += 1;
        self.touched_until[i] = Duration::MAX;
    }

    /// One fault that touched `sid` until further notice is over.
    pub(super) fn release(&mut self, sid: i64, now: Duration) {
        let i = (sid - 1) as usize;
        self.holds[i] = self.holds[i].saturating_sub(1);
        if self.holds[i] == 0 {
            self.touched_until[i] = now;
        }
    }

    /// The process of `sid` stops running (crash or pause).
    pub(super) fn stopped(&mut self, sid: i64, now: Duration) {
        let i = (sid - 1) as usize;
        if self.down[i] {
            return;
        }
        self.down[i] = true;
        self.not_running[i].push((now, None));
        self.hold(sid);
    }

    /// The process of `sid` runs again (restart or resume).
    pub(super) fn running(&mut self, sid: i64, now: Duration) {
        let i = (sid - 1) as usize;
        if !self.down[i] {
            return;
        }
        self.down[i] = false;
        if let Some(d) = self.not_running[i].last_mut() {
            if d.1.is_none() {
                d.1 = Some(now);
            }
        }
        // A first start after time 0 counts too: the process was not
        // running while the others may have voted.
        self.started[i] = true;
        self.release(sid, now);
    }
}

impl World {
    /// Ground truth: at some time in `[from, to]`, was `v`'s process not
    /// running, or was the pair `x`–`v` cut in either direction by a
    /// partition? (Either way no connection between them could carry a
    /// vote or a packet then.) The intervals are closed: an instant at which
    /// the cut starts or ends counts as cut.
    pub(super) fn was_cut(&self, x: i64, v: i64, from: Duration, to: Duration) -> bool {
        let overlaps =
            |start: Duration, end: Option<Duration>| start <= to && end.map_or(true, |e| from <= e);
        let down = |s: i64| {
            self.truth.not_running[self.idx(s)]
                .iter()
                .any(|&(a, b)| overlaps(a, b))
        };
        down(v)
            || down(x)
            || self.cut_log.iter().any(|c| {
                overlaps(c.from, c.until) && c.pairs.iter().any(|&p| p == (x, v) || p == (v, x))
            })
    }

    /// Per-step invariants (cheap, O(n)).
    pub(super) fn check_step(&self) -> Result<(), Violation> {
        if self.end_to_end_only {
            return Ok(());
        }
        let now = self.now;
        for pp in &self.peers {
            invariants::accepted_ge_current(now, pp.sid, pp.disk.accepted, pp.disk.current)?;
        }
        let mut established = Vec::new();
        let mut serving = Vec::new();
        for pp in self.peers.iter().filter(|pp| pp.alive) {
            match &pp.role {
                Role::Leading(l) if l.m.is_established() => {
                    if let Some(e) = l.m.epoch() {
                        established.push((pp.sid, e));
                        serving.push((pp.sid, pp.sid, e));
                    }
                }
                Role::Learning(l) if l.m.stage() == LearnerStage::Broadcast => {
                    if let Some(e) = l.m.epoch() {
                        serving.push((pp.sid, l.leader, e));
                    }
                }
                _ => {}
            }
        }
        invariants::one_established_leader_per_epoch(now, &established)?;
        invariants::synced_peers_agree(now, &self.truth.epoch_leaders, serving.into_iter())
    }

    /// The leader of `epoch` persists currentEpoch: the history it starts
    /// from is what every learner must hold before its own currentEpoch
    /// moves.
    pub(super) fn note_epoch_history(&mut self, sid: i64, epoch: i64) {
        if self.p.mode != crate::zab::Mode::Store {
            return;
        }
        let log = &self.peers[self.idx(sid)].disk.log;
        let snapshot = crate::logstore::LogStore::snapshot_zxid(log).unwrap_or(0);
        let entries = crate::logstore::LogStore::read_after(
            log,
            snapshot,
            crate::logstore::ReadLimit::UNLIMITED,
        )
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.zxid, hash(&e.data)))
        .collect();
        self.truth
            .epoch_history
            .insert(epoch, History { snapshot, entries });
    }

    /// `sid`'s currentEpoch just became durable at `epoch`: its log must
    /// durably hold the history of that epoch's leader.
    pub(super) fn check_current_epoch_history(&mut self, sid: i64, epoch: i64) {
        let Some(h) = self.truth.epoch_history.get(&epoch) else {
            return;
        };
        let disk = &self.peers[self.idx(sid)].disk;
        let missing = std::iter::once(h.snapshot)
            .filter(|&z| z > 0)
            .chain(h.entries.iter().map(|e| e.0))
            .find(|&z| !disk.durably_holds(z));
        let r = invariants::current_epoch_implies_history(self.now, sid, epoch, missing);
        self.fail(r);
    }

    /// A leader's machine reported `Established { epoch }`.
    pub(super) fn on_established(&mut self, sid: i64, epoch: i64) {
        let now = self.now;
        self.stats.established += 1;
        self.mix(0xe5ab ^ (epoch as u64) << 8 ^ sid as u64);
        let r = invariants::one_leader_per_epoch(now, &self.truth.epoch_leaders, epoch, sid);
        self.fail(r);
        self.truth.epoch_leaders.insert(epoch, sid);
        let by: Vec<i64> = match &self.peers[self.idx(sid)].role {
            Role::Leading(l) => l.m.established_by().iter().copied().collect(),
            _ => Vec::new(),
        };
        let disks: Vec<(i64, i64)> = by
            .iter()
            .map(|&s| (s, self.peers[self.idx(s)].disk.current))
            .collect();
        let r =
            invariants::established_by_durable_quorum(now, sid, epoch, &disks, &self.p.verifier);
        self.fail(r);
        if self.p.mode != crate::zab::Mode::Store {
            return;
        }
        // Every entry committed in an earlier epoch is in the new leader's
        // log; then the leader's whole history is committed (Zab's
        // new-leader commit). A leader of an older epoch that establishes
        // late (paused while its quorum's ACKs waited in its socket) owes
        // nothing to newer epochs.
        let disk = &self.peers[self.idx(sid)].disk;
        let missing = self
            .truth
            .committed
            .range(..crate::wire::zab::zxid_of_epoch(epoch))
            .map(|(z, _)| *z)
            .find(|&z| !disk.durably_holds(z));
        let r = invariants::committed_in_later_leader(now, sid, epoch, missing);
        self.fail(r);
        let log = &self.peers[self.idx(sid)].disk.log;
        let snapshot = crate::logstore::LogStore::snapshot_zxid(log).unwrap_or(0);
        let entries = crate::logstore::LogStore::read_after(
            log,
            snapshot,
            crate::logstore::ReadLimit::UNLIMITED,
        )
        .unwrap_or_default();
        for e in entries {
            let h = hash(&e.data);
            let known = *self.truth.committed.entry(e.zxid).or_insert(h);
            let r = invariants::same_zxid_same_entry(now, sid, e.zxid, known, h);
            self.fail(r);
        }
    }

    /// A leader delivered (committed) these entries.
    pub(super) fn note_committed(&mut self, sid: i64, es: &[Entry]) {
        let now = self.now;
        for e in es {
            let h = hash(&e.data);
            let known = *self.truth.committed.entry(e.zxid).or_insert(h);
            let r = invariants::same_zxid_same_entry(now, sid, e.zxid, known, h);
            self.fail(r);
        }
    }

    /// A write was acknowledged: a quorum, the leader included, must have
    /// it durable.
    pub(super) fn check_acknowledged_write(&mut self, leader: i64, zxid: i64) {
        let holders: Vec<i64> = self
            .peers
            .iter()
            .filter(|pp| pp.disk.durably_holds(zxid))
            .map(|pp| pp.sid)
            .collect();
        let r = invariants::acknowledged_write_durable(
            self.now,
            leader,
            zxid,
            &holders,
            &self.p.verifier,
        );
        self.fail(r);
    }

    /// A learner is about to send `packet`: if it acknowledges an epoch
    /// (ACKEPOCH, the NEWLEADER ACK), check that promise against its disk.
    pub(super) fn check_learner_ack(&mut self, sid: i64, packet: &Packet) {
        let i = self.idx(sid);
        let Role::Learning(l) = &self.peers[i].role else {
            return;
        };
        let Some(epoch) = l.m.epoch() else {
            return;
        };
        let newleader_ack = packet.packet_type == wz::ACK
            && packet.zxid == zxid_of_epoch(epoch)
            && l.m.stage() == LearnerStage::AwaitingUpToDate;
        let (what, durable) = match packet.packet_type {
            wz::ACKEPOCH => ("ACKEPOCH", self.peers[i].disk.accepted),
            _ if newleader_ack => ("NEWLEADER ACK", self.peers[i].disk.current),
            _ => return,
        };
        let now = self.now;
        let accepted = self.peers[i].disk.accepted;
        let r = invariants::epoch_ack_not_below_accepted(now, sid, what, epoch, accepted);
        self.fail(r);
        let r = invariants::epoch_ack_durable(now, sid, what, epoch, durable);
        self.fail(r);
    }
}
