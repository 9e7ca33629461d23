//! The replicated log's storage: the [`LogStore`] contract an embedder
//! implements, zkfle's own file-backed [`FileLog`], and the in-memory
//! [`MemLog`] that tests and the simulator use.
//!
//! # The contract in one page
//! A log is a sequence of [`Entry`]s with strictly increasing zxids, plus at
//! most one [`Snapshot`]: the embedder's state machine serialised at an
//! applied zxid. Entries at or below the snapshot's zxid may have been
//! dropped (compaction), so the log *retains* a contiguous suffix of its
//! history: every entry above the snapshot's zxid is present, and some older
//! ones may be.
//!
//! - [`LogStore::append`] makes one batch durable: one call is one batch and
//!   costs at most one fsync (group commit: the runtime gathers consecutive
//!   `AppendLog` actions into one call). When it returns `Ok`, every entry of
//!   the batch survives a crash or a power loss.
//! - [`LogStore::last_zxid`] is the last durable zxid: the larger of the last
//!   retained entry and the snapshot's zxid, 0 for an empty log. It is what a
//!   peer votes with (ZAB_SPEC L5).
//! - [`LogStore::read_after`] reads retained entries above a zxid, within a
//!   [`ReadLimit`], for sync and for delivering committed entries.
//! - [`LogStore::sync_source`] answers the Zab leader's sync question
//!   (ZAB_SPEC D3) for a learner whose last zxid is `L`: the `prefix` (the
//!   largest zxid of this log that is `<= L`), the entries after it, and
//!   whether `L` lies in the compacted part (then the learner needs SNAP).
//! - [`LogStore::truncate_after`] drops every entry above a zxid, durably
//!   (TRUNC). Truncating below the snapshot is refused: those entries are
//!   committed and applied.
//! - [`LogStore::save_snapshot`] keeps the state machine's snapshot;
//!   [`LogStore::compact`] may then drop entries it covers;
//!   [`LogStore::install_snapshot`] replaces log and snapshot with a snapshot
//!   received from a leader (SNAP), durably and atomically.
//!
//! Every mutating call is durable when it returns `Ok`. After an I/O error a
//! store may refuse further calls ([`LogError::Poisoned`]): the runtime
//! reports `persist_failed`, the role exits, and reopening the store recovers
//! a consistent state (what a crash at that point would have left).

use std::io;
use std::path::PathBuf;

use bytes::Bytes;

mod file;
mod mem;

pub use file::{FileLog, FileLogOptions, FileLogStats, MAX_ENTRY_BYTES};
pub use mem::MemLog;

/// One log entry: a proposal's zxid and the embedder's opaque bytes.
///
/// `Bytes` so one proposal fans out to N learners and into the store
/// without copying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The proposal's zxid (`epoch << 32 | counter`); always > 0.
    pub zxid: i64,
    /// The embedder's payload.
    pub data: Bytes,
}

impl Entry {
    /// An entry from anything that converts into `Bytes`.
    pub fn new(zxid: i64, data: impl Into<Bytes>) -> Entry {
        Entry {
            zxid,
            data: data.into(),
        }
    }
}

/// The embedder's state machine serialised after applying every entry up to
/// and including `zxid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The last zxid the state contains.
    pub zxid: i64,
    /// The embedder's serialised state (opaque to zkfle).
    pub data: Bytes,
}

/// A bound on one read: at most `max_entries` entries and about `max_bytes`
/// bytes of entry data. A read that finds at least one entry always returns
/// at least one, even if that entry alone is larger than `max_bytes`, so a
/// caller that loops always makes progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimit {
    /// Most entries to return (0 is taken as 1).
    pub max_entries: usize,
    /// Stop before an entry that would take the data returned past this.
    pub max_bytes: usize,
}

impl ReadLimit {
    /// No bound: everything that matches.
    pub const UNLIMITED: ReadLimit = ReadLimit {
        max_entries: usize::MAX,
        max_bytes: usize::MAX,
    };

    /// At most `n` entries, any size.
    pub fn entries(n: usize) -> ReadLimit {
        ReadLimit {
            max_entries: n,
            max_bytes: usize::MAX,
        }
    }

    /// Whether `out` (holding `bytes` bytes of data) may take one more entry
    /// of `next` bytes.
    pub(crate) fn admits(&self, out: usize, bytes: usize, next: usize) -> bool {
        out == 0 || (out < self.max_entries && bytes.saturating_add(next) <= self.max_bytes)
    }
}

/// What the leader needs to sync one learner (ZAB_SPEC D3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncSource {
    /// The largest zxid of the leader's log that is `<= L` (the learner's
    /// last zxid), the snapshot's zxid counting as one; 0 if there is none.
    /// When `compacted`, the snapshot's zxid.
    pub prefix: i64,
    /// Retained entries after `prefix`, oldest first, within the read's
    /// [`ReadLimit`]. If the last one is below [`LogStore::last_zxid`] the
    /// caller continues with [`LogStore::read_after`].
    pub entries: Vec<Entry>,
    /// `L` is older than what the log retains: the learner needs the
    /// snapshot (SNAP), then `entries` (which then follow the snapshot).
    pub compacted: bool,
}

/// Why a log operation failed. Every variant names what an operator needs
/// (the file, the offset, the zxids).
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file-system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("fsync", "rename", ...).
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A durable file holds bytes zkfle did not write (bit rot, a foreign
    /// file, a bug). Recovery never guesses past this.
    #[error("corrupt log data in {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the bad record or header.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An appended zxid is not above the previous one.
    #[error("zxid {zxid:#x} out of order: the log's last zxid is {last:#x}")]
    OutOfOrder {
        /// The offending zxid.
        zxid: i64,
        /// The zxid it must exceed.
        last: i64,
    },
    /// An entry larger than the store accepts.
    #[error("entry {zxid:#x} holds {len} bytes, more than the limit of {max}")]
    EntryTooLarge {
        /// The entry's zxid.
        zxid: i64,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// TRUNC below the snapshot: those entries are committed and already in
    /// the applied state, so a leader asking for this is wrong.
    #[error("cannot truncate after {after:#x}: the snapshot at {snapshot:#x} already holds later entries")]
    TruncateBelowSnapshot {
        /// The requested truncation point.
        after: i64,
        /// The snapshot's zxid.
        snapshot: i64,
    },
    /// A snapshot at a zxid the log does not durably hold yet.
    #[error("snapshot at {zxid:#x} is ahead of the log's last durable zxid {last:#x}")]
    SnapshotAhead {
        /// The snapshot's zxid.
        zxid: i64,
        /// The log's last durable zxid.
        last: i64,
    },
    /// A snapshot older than the one kept.
    #[error("snapshot at {zxid:#x} is older than the kept snapshot at {current:#x}")]
    SnapshotOlder {
        /// The offered snapshot's zxid.
        zxid: i64,
        /// The kept snapshot's zxid.
        current: i64,
    },
    /// An earlier I/O failure left the in-memory view uncertain (after a
    /// failed fsync the kernel may have dropped the dirty pages, so retrying
    /// proves nothing); reopen the store to recover from what is on disk.
    #[error("the log is unusable after an earlier I/O failure; reopen it to recover")]
    Poisoned,
}

/// The storage the replicated log needs. The embedder implements it (or
/// uses [`FileLog`]); the runtime calls it to execute the Zab machines'
/// `AppendLog`, `TruncateLog`, `ReadLog`, `ReadSnapshot` and
/// `InstallSnapshot` actions, strictly in order.
///
/// Mutating calls are durable when they return `Ok`. Reads take `&self` and
/// see everything appended so far.
pub trait LogStore: Send + 'static {
    /// Appends one batch durably (at most one fsync for the batch). Zxids
    /// must be strictly increasing and above [`LogStore::last_zxid`]; an
    /// empty batch is a no-op.
    fn append(&mut self, entries: &[Entry]) -> Result<(), LogError>;

    /// The last durable zxid: the larger of the last retained entry's and
    /// the snapshot's; 0 for an empty log.
    fn last_zxid(&self) -> i64;

    /// The zxid of the oldest retained entry, `None` if no entry is retained.
    fn first_zxid(&self) -> Option<i64>;

    /// The largest zxid of a retained entry that is `<= zxid`.
    fn floor_zxid(&self, zxid: i64) -> Result<Option<i64>, LogError>;

    /// Retained entries with zxid `> after`, oldest first, within `limit`.
    fn read_after(&self, after: i64, limit: ReadLimit) -> Result<Vec<Entry>, LogError>;

    /// Durably drops every entry above `zxid` (keeps `<= zxid`). A no-op if
    /// nothing is above it; [`LogError::TruncateBelowSnapshot`] if `zxid` is
    /// below the snapshot's zxid.
    fn truncate_after(&mut self, zxid: i64) -> Result<(), LogError>;

    /// The kept snapshot's zxid, if there is one.
    fn snapshot_zxid(&self) -> Option<i64>;

    /// The kept snapshot, read back (and checked) from the store.
    fn snapshot(&self) -> Result<Option<Snapshot>, LogError>;

    /// Durably keeps `snapshot` as the latest, replacing the previous one.
    /// Its zxid must be `<= last_zxid()` and `>=` the kept snapshot's. The
    /// log is unchanged; [`LogStore::compact`] drops what it covers.
    fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError>;

    /// Drops retained entries `<= min(up_to, snapshot zxid)`, as far as the
    /// store's granularity allows ([`FileLog`] drops whole segments), oldest
    /// first. Without a snapshot nothing is dropped.
    fn compact(&mut self, up_to: i64) -> Result<(), LogError>;

    /// A learner's SNAP: durably and atomically replaces the whole log and
    /// the snapshot with `snapshot` (afterwards the log retains no entry and
    /// `last_zxid() == snapshot.zxid`).
    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError>;

    /// The sync question of ZAB_SPEC D3 for a learner whose last zxid is
    /// `learner_last`. Provided in terms of the methods above:
    /// - `learner_last >= snapshot zxid` (0 if none): `prefix` = the larger of
    ///   the snapshot's zxid and the last retained entry `<= learner_last`;
    /// - below the snapshot but at or after the oldest retained entry: the
    ///   retained entries still answer it (they are a contiguous suffix);
    /// - otherwise `compacted`: `prefix` = the snapshot's zxid and `entries`
    ///   follow it. This is also the answer when nothing was actually dropped
    ///   but `learner_last` precedes every retained entry: the store cannot
    ///   tell, and SNAP is correct either way.
    ///
    /// `entries` are the retained entries after `prefix`; as no entry lies in
    /// `(prefix, learner_last]`, they are those after `learner_last`.
    fn sync_source(&self, learner_last: i64, limit: ReadLimit) -> Result<SyncSource, LogError> {
        let base = self.snapshot_zxid().unwrap_or(0);
        let floor = self.floor_zxid(learner_last)?;
        if learner_last >= base {
            Ok(SyncSource {
                prefix: floor.map_or(base, |f| f.max(base)),
                entries: self.read_after(learner_last, limit)?,
                compacted: false,
            })
        } else if let Some(prefix) = floor {
            Ok(SyncSource {
                prefix,
                entries: self.read_after(learner_last, limit)?,
                compacted: false,
            })
        } else {
            Ok(SyncSource {
                prefix: base,
                entries: self.read_after(base, limit)?,
                compacted: true,
            })
        }
    }
}

/// A boxed store is a store, so the runtime can hold the embedder's choice
/// as `Box<dyn LogStore>`.
impl<S: LogStore + ?Sized> LogStore for Box<S> {
    fn append(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        (**self).append(entries)
    }
    fn last_zxid(&self) -> i64 {
        (**self).last_zxid()
    }
    fn first_zxid(&self) -> Option<i64> {
        (**self).first_zxid()
    }
    fn floor_zxid(&self, zxid: i64) -> Result<Option<i64>, LogError> {
        (**self).floor_zxid(zxid)
    }
    fn read_after(&self, after: i64, limit: ReadLimit) -> Result<Vec<Entry>, LogError> {
        (**self).read_after(after, limit)
    }
    fn truncate_after(&mut self, zxid: i64) -> Result<(), LogError> {
        (**self).truncate_after(zxid)
    }
    fn snapshot_zxid(&self) -> Option<i64> {
        (**self).snapshot_zxid()
    }
    fn snapshot(&self) -> Result<Option<Snapshot>, LogError> {
        (**self).snapshot()
    }
    fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError> {
        (**self).save_snapshot(snapshot)
    }
    fn compact(&mut self, up_to: i64) -> Result<(), LogError> {
        (**self).compact(up_to)
    }
    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError> {
        (**self).install_snapshot(snapshot)
    }
    fn sync_source(&self, learner_last: i64, limit: ReadLimit) -> Result<SyncSource, LogError> {
        (**self).sync_source(learner_last, limit)
    }
}

/// Checks a batch against the log's last zxid and the entry size limit;
/// shared by every store so they refuse the same inputs.
pub(crate) fn check_batch(entries: &[Entry], mut last: i64) -> Result<(), LogError> {
    for e in entries {
        if e.zxid <= last {
            return Err(LogError::OutOfOrder { zxid: e.zxid, last });
        }
        if e.data.len() > MAX_ENTRY_BYTES {
            return Err(LogError::EntryTooLarge {
                zxid: e.zxid,
                len: e.data.len(),
                max: MAX_ENTRY_BYTES,
            });
        }
        last = e.zxid;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
