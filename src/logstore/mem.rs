//! [`MemLog`]: an in-memory [`LogStore`] with an explicit durability model,
//! for tests and for the simulator (no `std::fs`, deterministic).
//!
//! Durability model. Entries are *written* by [`MemLog::write`] (like a
//! `write(2)` into the page cache: visible to reads, not yet durable) and
//! become *durable* at [`MemLog::sync`] (the fsync). [`MemLog::crash`] drops
//! everything written since the last sync, as a power loss would;
//! [`MemLog::crash_keeping`] keeps the first few unsynced batches, as a disk
//! that persisted some of them before the power went would. The trait's
//! mutating calls are durable on return, like [`super::FileLog`]'s: `append`
//! is `write` + `sync`; `truncate_after`, `save_snapshot`, `compact` and
//! `install_snapshot` first make earlier writes durable (they are ordered
//! after them, as the runtime executes log actions in order) and then take
//! effect durably.

use std::collections::VecDeque;

use super::{check_batch, Entry, LogError, LogStore, ReadLimit, Snapshot};

/// An in-memory log; see the module docs for its durability model.
#[derive(Clone, Debug, Default)]
pub struct MemLog {
    /// Retained entries, written ones included (they are at the tail).
    entries: VecDeque<Entry>,
    /// Sizes of the written-but-not-durable batches at the tail, oldest
    /// first.
    unsynced: Vec<usize>,
    snapshot: Option<Snapshot>,
    syncs: u64,
}

impl MemLog {
    /// An empty log.
    pub fn new() -> MemLog {
        MemLog::default()
    }

    /// Writes a batch without making it durable (the simulator's
    /// `AppendLog` before its completion). Checked like `append`, against
    /// the last *written* zxid.
    pub fn write(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        check_batch(entries, self.written_last_zxid())?;
        if entries.is_empty() {
            return Ok(());
        }
        self.entries.extend(entries.iter().cloned());
        self.unsynced.push(entries.len());
        Ok(())
    }

    /// Makes every written entry durable (one fsync, counted only if
    /// something was pending).
    pub fn sync(&mut self) {
        if !self.unsynced.is_empty() {
            self.unsynced.clear();
            self.syncs += 1;
        }
    }

    /// A power loss: every entry not yet durable is gone.
    pub fn crash(&mut self) {
        self.crash_keeping(0);
    }

    /// A power loss after the disk persisted the first `batches` unsynced
    /// batches (in order) but not the rest. Those kept become durable.
    pub fn crash_keeping(&mut self, batches: usize) {
        let keep = batches.min(self.unsynced.len());
        let dropped: usize = self.unsynced[keep..].iter().sum();
        self.entries.truncate(self.entries.len() - dropped);
        self.unsynced.clear();
    }

    /// The last written zxid (durable or not), or the snapshot's.
    pub fn written_last_zxid(&self) -> i64 {
        let snap = self.snapshot.as_ref().map_or(0, |s| s.zxid);
        self.entries.back().map_or(snap, |e| e.zxid.max(snap))
    }

    /// How many written entries are not durable yet.
    pub fn unsynced_entries(&self) -> usize {
        self.unsynced.iter().sum()
    }

    /// How many syncs made something durable (the fsync count).
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// Number of retained entries (durable or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entry retained.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn snapshot_base(&self) -> i64 {
        self.snapshot.as_ref().map_or(0, |s| s.zxid)
    }
}

impl LogStore for MemLog {
    fn append(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        self.write(entries)?;
        self.sync();
        Ok(())
    }

    fn last_zxid(&self) -> i64 {
        let durable = self.entries.len() - self.unsynced_entries();
        let snap = self.snapshot_base();
        match durable.checked_sub(1).and_then(|i| self.entries.get(i)) {
            Some(e) => e.zxid.max(snap),
            None => snap,
        }
    }

    fn first_zxid(&self) -> Option<i64> {
        self.entries.front().map(|e| e.zxid)
    }

    fn floor_zxid(&self, zxid: i64) -> Result<Option<i64>, LogError> {
        let n = self.entries.partition_point(|e| e.zxid <= zxid);
        Ok(n.checked_sub(1).map(|i| self.entries[i].zxid))
    }

    fn read_after(&self, after: i64, limit: ReadLimit) -> Result<Vec<Entry>, LogError> {
        let start = self.entries.partition_point(|e| e.zxid <= after);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for e in self.entries.range(start..) {
            if !limit.admits(out.len(), bytes, e.data.len()) {
                break;
            }
            bytes += e.data.len();
            out.push(e.clone());
        }
        Ok(out)
    }

    fn truncate_after(&mut self, zxid: i64) -> Result<(), LogError> {
        self.sync();
        if let Some(s) = &self.snapshot {
            if zxid < s.zxid {
                return Err(LogError::TruncateBelowSnapshot {
                    after: zxid,
                    snapshot: s.zxid,
                });
            }
        }
        let keep = self.entries.partition_point(|e| e.zxid <= zxid);
        self.entries.truncate(keep);
        Ok(())
    }

    fn snapshot_zxid(&self) -> Option<i64> {
        self.snapshot.as_ref().map(|s| s.zxid)
    }

    fn snapshot(&self) -> Result<Option<Snapshot>, LogError> {
        Ok(self.snapshot.clone())
    }

    fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError> {
        self.sync();
        let last = self.last_zxid();
        if snapshot.zxid > last {
            return Err(LogError::SnapshotAhead {
                zxid: snapshot.zxid,
                last,
            });
        }
        if let Some(cur) = &self.snapshot {
            if snapshot.zxid < cur.zxid {
                return Err(LogError::SnapshotOlder {
                    zxid: snapshot.zxid,
                    current: cur.zxid,
                });
            }
        }
        self.snapshot = Some(snapshot);
        Ok(())
    }

    fn compact(&mut self, up_to: i64) -> Result<(), LogError> {
        self.sync();
        let Some(snap) = &self.snapshot else {
            return Ok(());
        };
        let limit = up_to.min(snap.zxid);
        let drop = self.entries.partition_point(|e| e.zxid <= limit);
        self.entries.drain(..drop);
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError> {
        self.sync();
        self.entries.clear();
        self.snapshot = Some(snapshot);
        Ok(())
    }
}
