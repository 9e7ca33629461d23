//! Simulated disks: per peer the two epoch files and a [`MemLog`], written
//! through two pipelines that execute a role's write requests strictly in
//! order, each taking a simulated fsync latency. A write is durable only
//! when its fsync completes, and only then is its completion given to the
//! machine that asked (never to a later role). Consecutive appends share
//! one fsync (group commit). A crash loses every write not yet durable
//! ([`MemLog::crash`]); epoch files keep their last durable value.
//!
//! Two deliberately lying disks exist for the injected bugs
//! ([`InjectedBug::AckBeforePersist`], [`InjectedBug::AckBeforeDurable`]):
//! they report completion at once and make the write durable later.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::logstore::{self, LogStore, MemLog, ReadLimit, Snapshot};
use crate::zab::{ConnId, Entry, LogRead, SnapshotRead};

use super::invariants;
use super::peer::Role;
use super::schedule::{ms, us, Early, Ev, Pipe};
use super::world::{InjectedBug, World};

/// An epoch file write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EpochOp {
    Accepted(i64),
    Current(i64),
}

/// A log action, in the order the machine emitted it.
#[derive(Debug, Clone)]
pub(super) enum LogOp {
    Append(Vec<Entry>),
    Truncate(i64),
    Install { zxid: i64, data: Bytes },
    Read { conn: ConnId, after: i64 },
    ReadSnap { conn: ConnId },
}

#[derive(Debug, Clone)]
struct EpochReq {
    op: EpochOp,
    role: u64,
    /// Give the completion to the machine (false: the lying disk already
    /// did).
    report: bool,
}

#[derive(Debug, Clone)]
struct LogReq {
    op: LogOp,
    role: u64,
}

/// A log action whose latency is running.
#[derive(Debug, Clone)]
enum InFlight {
    Appends {
        last: i64,
        role: u64,
    },
    Truncate {
        after: i64,
        role: u64,
    },
    Install {
        zxid: i64,
        role: u64,
    },
    Read {
        conn: ConnId,
        read: LogRead,
        role: u64,
    },
    ReadSnap {
        conn: ConnId,
        snap: Result<SnapshotRead, String>,
        role: u64,
    },
}

/// One peer's disk.
#[derive(Debug, Default)]
pub(super) struct Disk {
    /// The durable `acceptedEpoch` file.
    pub accepted: i64,
    /// The durable `currentEpoch` file.
    pub current: i64,
    /// Interop mode: the embedder's own last zxid (what its supplier
    /// reports at startup).
    pub app_zxid: i64,
    /// The replicated log (store mode).
    pub log: MemLog,
    epoch_q: VecDeque<EpochReq>,
    epoch_busy: Option<(u64, EpochReq)>,
    log_q: VecDeque<LogReq>,
    log_busy: Option<(u64, InFlight)>,
    token: u64,
    /// The lying log disk has unflushed writes and a flush scheduled.
    flush_pending: bool,
}

impl Disk {
    /// Nothing queued or running.
    pub(super) fn idle(&self) -> bool {
        self.epoch_q.is_empty()
            && self.epoch_busy.is_none()
            && self.log_q.is_empty()
            && self.log_busy.is_none()
    }

    /// The last durable zxid of the log (the snapshot's if it holds more).
    pub(super) fn last_durable_zxid(&self) -> i64 {
        self.log.last_zxid()
    }

    /// True if the log durably holds `zxid` (an entry, or covered by the
    /// snapshot).
    pub(super) fn durably_holds(&self, zxid: i64) -> bool {
        if self.log.snapshot_zxid().is_some_and(|s| zxid <= s) {
            return true;
        }
        if zxid > self.log.last_zxid() {
            return false;
        }
        matches!(self.log.floor_zxid(zxid), Ok(Some(z)) if z == zxid)
    }

    /// The power goes: unsynced log writes and queued writes are lost.
    pub(super) fn crash(&mut self) {
        self.log.crash();
        self.epoch_q.clear();
        self.epoch_busy = None;
        self.log_q.clear();
        self.log_busy = None;
        self.flush_pending = false;
    }
}

fn to_log_entries(es: &[Entry]) -> Vec<logstore::Entry> {
    es.iter()
        .map(|e| logstore::Entry::new(e.zxid, e.data.clone()))
        .collect()
}

fn to_zab_entries(es: Vec<logstore::Entry>) -> Vec<Entry> {
    es.into_iter().map(|e| Entry::new(e.zxid, e.data)).collect()
}

impl World {
    fn fsync_latency(&mut self, sid: i64) -> Duration {
        if let Some(d) = self.hooks.slow_disk.get(&sid) {
            return *d;
        }
        if self.p.fsync_slow_per_mille > 0 && self.rng.chance(self.p.fsync_slow_per_mille) {
            us(self.rng.range(self.p.fsync_hi_us, self.p.fsync_slow_hi_us))
        } else {
            us(self.rng.range(self.p.fsync_lo_us, self.p.fsync_hi_us))
        }
    }

    fn next_token(&mut self, sid: i64) -> u64 {
        let i = self.idx(sid);
        self.peers[i].disk.token += 1;
        self.peers[i].disk.token
    }

    /// A machine of role `role` asks for an epoch file write.
    pub(super) fn epoch_write(&mut self, sid: i64, op: EpochOp, role: u64, learner: bool) {
        let i = self.idx(sid);
        let lying = learner && self.bug == Some(InjectedBug::AckBeforePersist);
        if lying {
            let what = match op {
                EpochOp::Accepted(e) => Early::AcceptedEpoch(e),
                EpochOp::Current(e) => Early::CurrentEpoch(e),
            };
            let inc = self.peers[i].inc;
            self.schedule(
                Duration::ZERO,
                Ev::IoEarly {
                    sid,
                    inc,
                    role,
                    what,
                },
            );
        }
        self.peers[i].disk.epoch_q.push_back(EpochReq {
            op,
            role,
            report: !lying,
        });
        self.start_epoch_io(sid);
    }

    fn start_epoch_io(&mut self, sid: i64) {
        let i = self.idx(sid);
        if self.peers[i].disk.epoch_busy.is_some() {
            return;
        }
        let Some(req) = self.peers[i].disk.epoch_q.pop_front() else {
            return;
        };
        let token = self.next_token(sid);
        self.peers[i].disk.epoch_busy = Some((token, req));
        let lat = self.fsync_latency(sid);
        let inc = self.peers[i].inc;
        self.schedule(
            lat,
            Ev::IoDone {
                sid,
                inc,
                pipe: Pipe::Epoch,
                token,
            },
        );
    }

    /// A machine of role `role` asks for a log action.
    pub(super) fn log_action(&mut self, sid: i64, op: LogOp, role: u64) {
        let i = self.idx(sid);
        let lying = self.bug == Some(InjectedBug::AckBeforeDurable)
            && !matches!(op, LogOp::Read { .. } | LogOp::ReadSnap { .. });
        if lying && self.peers[i].disk.log_busy.is_none() && self.peers[i].disk.log_q.is_empty() {
            // The lying disk: done at once, durable at the next flush.
            let early = match op {
                LogOp::Append(es) => {
                    let last = es.last().map_or(0, |e| e.zxid);
                    if !self.write_entries(sid, &es) {
                        return;
                    }
                    Early::Log(last)
                }
                LogOp::Truncate(after) => {
                    self.truncate_log(sid, after);
                    Early::Truncated(after)
                }
                LogOp::Install { zxid, data } => {
                    self.install_snapshot(sid, zxid, data);
                    Early::Installed(zxid)
                }
                LogOp::Read { .. } | LogOp::ReadSnap { .. } => return,
            };
            let inc = self.peers[i].inc;
            self.schedule(
                Duration::ZERO,
                Ev::IoEarly {
                    sid,
                    inc,
                    role,
                    what: early,
                },
            );
            if !self.peers[i].disk.flush_pending {
                self.peers[i].disk.flush_pending = true;
                let d = ms(self.rng.range(20, 200));
                self.schedule(d, Ev::Flush { sid, inc });
            }
            return;
        }
        self.peers[i].disk.log_q.push_back(LogReq { op, role });
        self.start_log_io(sid);
    }

    /// Writes entries into the log's page cache (not durable yet), after
    /// the checks of the log's contract.
    fn write_entries(&mut self, sid: i64, es: &[Entry]) -> bool {
        let now = self.now;
        for e in es {
            let r = self.truth.record_zxid(now, sid, e);
            self.fail(r);
        }
        let i = self.idx(sid);
        let r = self.peers[i].disk.log.write(&to_log_entries(es));
        let r = invariants::log_request_valid(now, sid, "append", r);
        let ok = r.is_ok();
        self.fail(r);
        ok
    }

    fn truncate_log(&mut self, sid: i64, after: i64) {
        let now = self.now;
        let i = self.idx(sid);
        let applied = self.peers[i].kv.applied;
        let r = self.peers[i].disk.log.truncate_after(after);
        let r = invariants::log_request_valid(now, sid, "truncate", r);
        self.fail(r);
        let r = invariants::applied_not_ahead_of_log(
            now,
            sid,
            applied,
            self.peers[i].disk.last_durable_zxid(),
        );
        self.fail(r);
    }

    fn install_snapshot(&mut self, sid: i64, zxid: i64, data: Bytes) {
        let now = self.now;
        let i = self.idx(sid);
        let r = self.peers[i].disk.log.install_snapshot(Snapshot {
            zxid,
            data: data.clone(),
        });
        let r = invariants::log_request_valid(now, sid, "install a snapshot", r);
        self.fail(r);
        self.install_state(sid, zxid, &data);
    }

    fn start_log_io(&mut self, sid: i64) {
        let i = self.idx(sid);
        if self.peers[i].disk.log_busy.is_some() {
            return;
        }
        let Some(req) = self.peers[i].disk.log_q.pop_front() else {
            return;
        };
        let role = req.role;
        let (flight, lat) = match req.op {
            LogOp::Append(es) => {
                // Group commit: every append queued right behind this one
                // shares its fsync.
                let mut last = es.last().map_or(0, |e| e.zxid);
                let mut ok = self.write_entries(sid, &es);
                while let Some(LogReq {
                    op: LogOp::Append(_),
                    ..
                }) = self.peers[i].disk.log_q.front()
                {
                    if let Some(LogReq {
                        op: LogOp::Append(more),
                        ..
                    }) = self.peers[i].disk.log_q.pop_front()
                    {
                        last = more.last().map_or(last, |e| e.zxid);
                        ok &= self.write_entries(sid, &more);
                    }
                }
                if !ok {
                    return;
                }
                (InFlight::Appends { last, role }, self.fsync_latency(sid))
            }
            LogOp::Truncate(after) => {
                self.truncate_log(sid, after);
                (InFlight::Truncate { after, role }, self.fsync_latency(sid))
            }
            LogOp::Install { zxid, data } => {
                self.install_snapshot(sid, zxid, data);
                (InFlight::Install { zxid, role }, self.fsync_latency(sid))
            }
            LogOp::Read { conn, after } => {
                let read = self.read_log(sid, after);
                let lat = us(self.rng.range(10, 300));
                (InFlight::Read { conn, read, role }, lat)
            }
            LogOp::ReadSnap { conn } => {
                let log = &self.peers[i].disk.log;
                let snap = match log.snapshot() {
                    Ok(Some(s)) => match log.read_after(s.zxid, ReadLimit::UNLIMITED) {
                        Ok(es) => Ok(SnapshotRead {
                            zxid: s.zxid,
                            data: s.data,
                            entries: to_zab_entries(es),
                        }),
                        Err(e) => Err(e.to_string()),
                    },
                    Ok(None) => Err("no snapshot".to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let lat = us(self.rng.range(10, 300));
                (InFlight::ReadSnap { conn, snap, role }, lat)
            }
        };
        let token = self.next_token(sid);
        self.peers[i].disk.log_busy = Some((token, flight));
        let inc = self.peers[i].inc;
        self.schedule(
            lat,
            Ev::IoDone {
                sid,
                inc,
                pipe: Pipe::Log,
                token,
            },
        );
    }

    /// The leader's sync question, answered from its log as the runtime
    /// does with `LogStore::sync_source`. The read runs after every earlier
    /// append of the pipeline and sees all of them, so it reaches the
    /// action's `through` (the leader checks that itself).
    fn read_log(&mut self, sid: i64, after: i64) -> LogRead {
        let i = self.idx(sid);
        let log = &self.peers[i].disk.log;
        match log.sync_source(after, ReadLimit::UNLIMITED) {
            Ok(s) => LogRead {
                prefix: s.prefix,
                entries: to_zab_entries(s.entries),
                compacted: s.compacted,
            },
            Err(_) => LogRead::default(),
        }
    }

    pub(super) fn io_done(&mut self, sid: i64, inc: u32, pipe: Pipe, token: u64) {
        let i = self.idx(sid);
        if !self.peers[i].alive || self.peers[i].inc != inc {
            return;
        }
        match pipe {
            Pipe::Epoch => {
                let Some((t, req)) = self.peers[i].disk.epoch_busy.take() else {
                    return;
                };
                if t != token {
                    self.peers[i].disk.epoch_busy = Some((t, req));
                    return;
                }
                match req.op {
                    EpochOp::Accepted(e) => self.peers[i].disk.accepted = e,
                    EpochOp::Current(e) => {
                        self.peers[i].disk.current = e;
                        self.check_current_epoch_history(sid, e);
                    }
                }
                if req.report {
                    self.epoch_completion(sid, req.role, req.op);
                }
                self.start_epoch_io(sid);
            }
            Pipe::Log => {
                let Some((t, flight)) = self.peers[i].disk.log_busy.take() else {
                    return;
                };
                if t != token {
                    self.peers[i].disk.log_busy = Some((t, flight));
                    return;
                }
                match flight {
                    InFlight::Appends { last, role } => {
                        self.peers[i].disk.log.sync();
                        self.zab_log_durable(sid, role, last);
                    }
                    InFlight::Truncate { after, role } => {
                        self.learner_call(sid, Some(role), |m, now| m.log_truncated(now, after));
                    }
                    InFlight::Install { zxid, role } => {
                        self.learner_call(sid, Some(role), |m, now| {
                            m.snapshot_installed(now, zxid)
                        });
                    }
                    InFlight::Read { conn, read, role } => {
                        self.leader_call(sid, Some(role), |m, now| m.log_read(now, conn, read));
                    }
                    InFlight::ReadSnap { conn, snap, role } => {
                        self.leader_call(sid, Some(role), |m, now| match snap {
                            Ok(s) => m.snapshot_read(now, conn, s),
                            Err(e) => m.read_failed(now, conn, &e),
                        });
                    }
                }
                self.start_log_io(sid);
            }
        }
    }

    fn zab_log_durable(&mut self, sid: i64, role: u64, last: i64) {
        let i = self.idx(sid);
        match &self.peers[i].role {
            Role::Leading(_) => {
                self.leader_call(sid, Some(role), |m, now| m.log_durable(now, last));
            }
            Role::Learning(_) => {
                self.learner_call(sid, Some(role), |m, now| m.log_durable(now, last));
            }
            _ => {}
        }
    }

    fn epoch_completion(&mut self, sid: i64, role: u64, op: EpochOp) {
        let i = self.idx(sid);
        let leading = matches!(self.peers[i].role, Role::Leading(_));
        match (op, leading) {
            (EpochOp::Accepted(e), true) => {
                self.leader_call(sid, Some(role), |m, now| m.accepted_epoch_durable(now, e));
            }
            (EpochOp::Current(e), true) => {
                self.leader_call(sid, Some(role), |m, now| m.current_epoch_durable(now, e));
            }
            (EpochOp::Accepted(e), false) => {
                self.learner_call(sid, Some(role), |m, now| m.accepted_epoch_durable(now, e));
            }
            (EpochOp::Current(e), false) => {
                self.learner_call(sid, Some(role), |m, now| m.current_epoch_durable(now, e));
            }
        }
    }

    /// A completion a lying disk reports before the write is durable.
    pub(super) fn io_early(&mut self, sid: i64, inc: u32, role: u64, what: Early) {
        let i = self.idx(sid);
        if !self.peers[i].alive || self.peers[i].inc != inc {
            return;
        }
        match what {
            Early::AcceptedEpoch(e) => self.epoch_completion(sid, role, EpochOp::Accepted(e)),
            Early::CurrentEpoch(e) => self.epoch_completion(sid, role, EpochOp::Current(e)),
            Early::Log(z) => self.zab_log_durable(sid, role, z),
            Early::Truncated(z) => {
                self.learner_call(sid, Some(role), |m, now| m.log_truncated(now, z));
            }
            Early::Installed(z) => {
                self.learner_call(sid, Some(role), |m, now| m.snapshot_installed(now, z));
            }
        }
    }

    /// The lying log disk's lazy flush.
    pub(super) fn flush(&mut self, sid: i64, inc: u32) {
        let i = self.idx(sid);
        if !self.peers[i].alive || self.peers[i].inc != inc {
            return;
        }
        self.peers[i].disk.log.sync();
        self.peers[i].disk.flush_pending = false;
    }

    /// [`InjectedBug::EpochBeforeSync`]: ZooKeeper 3.8 sets currentEpoch
    /// as NEWLEADER arrives, before the synced proposals are logged.
    pub(super) fn epoch_before_sync(&mut self, sid: i64, epoch: i64) {
        let i = self.idx(sid);
        let d = &mut self.peers[i].disk;
        if d.current < epoch && d.accepted >= epoch {
            d.current = epoch;
            self.log(|| format!("sid {sid}: currentEpoch {epoch} written at NEWLEADER (3.8)"));
            self.check_current_epoch_history(sid, epoch);
        }
    }

    /// Store mode: the embedder of `sid` snapshots its applied state and
    /// compacts its log behind it (when its log pipeline is idle).
    pub(super) fn compact(&mut self, sid: i64, inc: u32) {
        let i = self.idx(sid);
        if !self.peers[i].alive || self.peers[i].inc != inc {
            return;
        }
        let every = ms(self.rng.range(200, 1500));
        self.schedule(every, Ev::Compact { sid, inc });
        let d = &self.peers[i].disk;
        if d.log_busy.is_some() || !d.log_q.is_empty() || d.flush_pending {
            return;
        }
        let applied = self.peers[i].kv.applied;
        let base = d.log.snapshot_zxid().unwrap_or(0);
        if applied <= base || applied > d.log.last_zxid() {
            return;
        }
        let data = self.peers[i].kv.encode();
        let keep = self.rng.range(0, 3) as usize;
        let log = &mut self.peers[i].disk.log;
        let r = log.save_snapshot(Snapshot {
            zxid: applied,
            data,
        });
        let r = r.and_then(|()| {
            // Keep a few entries behind the snapshot, as a store compacting
            // whole segments would.
            let upto = match log.read_after(base, ReadLimit::UNLIMITED) {
                Ok(es) => {
                    let covered: Vec<i64> = es
                        .iter()
                        .map(|e| e.zxid)
                        .filter(|&z| z <= applied)
                        .collect();
                    covered
                        .len()
                        .checked_sub(keep + 1)
                        .map_or(base, |k| covered[k])
                }
                Err(_) => base,
            };
            log.compact(upto)
        });
        let now = self.now;
        let r = invariants::log_request_valid(now, sid, "snapshot and compact", r);
        self.fail(r);
        self.log(|| format!("sid {sid}: snapshot at {applied:#x}, log compacted"));
    }

    /// True while any write of `sid` is queued or running.
    pub(super) fn io_pending(&self, sid: i64) -> bool {
        !self.peers[self.idx(sid)].disk.idle()
    }
}
