//! Sync planning (store mode, rule D3): which of DIFF, TRUNC+DIFF or SNAP
//! brings a learner whose last zxid is `L` to the leader's history, from the
//! runtime's answer to a `ReadLog`. Pure functions over the leader's log
//! view; the leader machine turns the plan into packets.

use super::types::Entry;
use bytes::Bytes;

/// The runtime's answer to `LeaderAction::ReadLog { after: L, .. }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogRead {
    /// The largest zxid ≤ `L` among the entries of the leader's log and its
    /// compaction point (the zxid of the last entry a snapshot replaced), or
    /// 0 when there is none. `prefix == L` means the learner's log is a
    /// prefix of the leader's; `prefix < L` means the learner holds entries
    /// the leader does not (they are truncated).
    pub prefix: i64,
    /// Every entry of the leader's log after `prefix`, in zxid order, at
    /// least through the `through` zxid of the request (entries appended
    /// after it may be included or not). Ignored when `compacted`.
    pub entries: Vec<Entry>,
    /// `L` is older than the log's compaction point: entries after `L` were
    /// dropped, so the learner needs a snapshot.
    pub compacted: bool,
}

impl LogRead {
    /// Answers a `ReadLog { after }` from a log held as a slice in zxid
    /// order (what a simulator or a small in-memory store keeps).
    /// `compacted_through` is the zxid of the last entry a snapshot
    /// replaced (0 if the log was never compacted): the slice holds only
    /// entries after it.
    pub fn from_log(log: &[Entry], compacted_through: i64, after: i64) -> LogRead {
        if after < compacted_through {
            return LogRead {
                prefix: 0,
                entries: Vec::new(),
                compacted: true,
            };
        }
        let split = log.partition_point(|e| e.zxid <= after);
        let prefix = split
            .checked_sub(1)
            .and_then(|i| log.get(i))
            .map_or(compacted_through, |e| e.zxid.max(compacted_through));
        LogRead {
            prefix,
            entries: log[split..].to_vec(),
            compacted: false,
        }
    }
}

/// The runtime's answer to `LeaderAction::ReadSnapshot`: the embedder's
/// snapshot and the log entries after it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotRead {
    /// The zxid of the last entry the snapshot contains (a committed zxid).
    pub zxid: i64,
    /// The snapshot bytes, opaque to Zab (the embedder's format).
    pub data: Bytes,
    /// Every log entry after `zxid`, in zxid order, at least through the
    /// request's `through` (compaction never drops entries a snapshot does
    /// not cover, so there is no gap after the snapshot).
    pub entries: Vec<Entry>,
}

/// How a learner is brought up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// DIFF at the learner's last zxid, then the proposals after it.
    Diff {
        /// The learner's last zxid (the DIFF packet's zxid).
        zxid: i64,
    },
    /// TRUNC to `zxid` (the learner drops its entries after it), then the
    /// proposals after it.
    Trunc {
        /// The zxid to keep entries up to.
        zxid: i64,
    },
    /// The log no longer reaches back to the learner: a snapshot, then the
    /// proposals after the snapshot's zxid.
    Snap,
}

/// Decides the sync for a learner at `learner_last` from the leader's log
/// view. `Err` names a broken read (the runtime's contract, not the
/// learner's fault): the leader refuses the learner rather than send it a
/// history with holes.
pub fn plan(learner_last: i64, read: &LogRead, leader_last: i64) -> Result<SyncKind, String> {
    if read.compacted {
        return Ok(SyncKind::Snap);
    }
    if read.prefix > learner_last || read.prefix < 0 {
        return Err(format!(
            "log read prefix {:#x} is not at or below the learner's zxid {learner_last:#x}",
            read.prefix
        ));
    }
    check_entries(&read.entries, read.prefix, leader_last)?;
    Ok(if read.prefix == learner_last {
        SyncKind::Diff { zxid: learner_last }
    } else {
        SyncKind::Trunc { zxid: read.prefix }
    })
}

/// Entries must be strictly increasing, all after `after` and none past the
/// leader's last appended zxid.
pub fn check_entries(entries: &[Entry], after: i64, leader_last: i64) -> Result<(), String> {
    let mut prev = after;
    for e in entries {
        if e.zxid <= prev {
            return Err(format!(
                "log read entry {:#x} does not follow {prev:#x}",
                e.zxid
            ));
        }
        if e.zxid > leader_last {
            return Err(format!(
                "log read entry {:#x} is past the leader's last zxid {leader_last:#x}",
                e.zxid
            ));
        }
        prev = e.zxid;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(zxids: &[i64]) -> Vec<Entry> {
        zxids
            .iter()
            .map(|&z| Entry::new(z, z.to_be_bytes().to_vec()))
            .collect()
    }

    const E1: i64 = 1 << 32;
    const E2: i64 = 2 << 32;

    #[test]
    fn in_sync_learner_gets_an_empty_diff() {
        let l = log(&[E1 | 1, E1 | 2]);
        let r = LogRead::from_log(&l, 0, E1 | 2);
        assert_eq!((r.prefix, r.entries.len(), r.compacted), (E1 | 2, 0, false));
        assert_eq!(
            plan(E1 | 2, &r, E1 | 2),
            Ok(SyncKind::Diff { zxid: E1 | 2 })
        );
    }

    #[test]
    fn lagging_learner_gets_a_diff_with_the_missing_entries() {
        let l = log(&[E1 | 1, E1 | 2, E2 | 1]);
        let r = LogRead::from_log(&l, 0, E1 | 1);
        assert_eq!(r.prefix, E1 | 1);
        assert_eq!(
            r.entries.iter().map(|e| e.zxid).collect::<Vec<_>>(),
            [E1 | 2, E2 | 1]
        );
        assert_eq!(
            plan(E1 | 1, &r, E2 | 1),
            Ok(SyncKind::Diff { zxid: E1 | 1 })
        );
        // A fresh learner: DIFF at 0 with everything.
        let r = LogRead::from_log(&l, 0, 0);
        assert_eq!((r.prefix, r.entries.len()), (0, 3));
        assert_eq!(plan(0, &r, E2 | 1), Ok(SyncKind::Diff { zxid: 0 }));
    }

    #[test]
    fn deposed_leader_with_extra_entries_is_truncated() {
        // The learner led epoch 1 and logged E1|3 that nobody else has; the
        // new leader's history goes E1|2 then epoch 2.
        let l = log(&[E1 | 1, E1 | 2, E2 | 1]);
        let r = LogRead::from_log(&l, 0, E1 | 3);
        assert_eq!(r.prefix, E1 | 2);
        assert_eq!(
            plan(E1 | 3, &r, E2 | 1),
            Ok(SyncKind::Trunc { zxid: E1 | 2 })
        );
        // Ahead of everything the leader has: TRUNC to the leader's last.
        let r = LogRead::from_log(&l, 0, E2 | 7);
        assert_eq!((r.prefix, r.entries.len()), (E2 | 1, 0));
        assert_eq!(
            plan(E2 | 7, &r, E2 | 1),
            Ok(SyncKind::Trunc { zxid: E2 | 1 })
        );
    }

    #[test]
    fn compaction_point_counts_as_a_position_and_older_learners_need_a_snapshot() {
        // Entries up to E1|5 were compacted into a snapshot.
        let l = log(&[E1 | 6, E1 | 7]);
        let r = LogRead::from_log(&l, E1 | 5, E1 | 5);
        assert_eq!((r.prefix, r.entries.len(), r.compacted), (E1 | 5, 2, false));
        assert_eq!(
            plan(E1 | 5, &r, E1 | 7),
            Ok(SyncKind::Diff { zxid: E1 | 5 })
        );
        let r = LogRead::from_log(&l, E1 | 5, E1 | 4);
        assert!(r.compacted);
        assert_eq!(plan(E1 | 4, &r, E1 | 7), Ok(SyncKind::Snap));
        let r = LogRead::from_log(&[], E1 | 5, 0);
        assert!(r.compacted, "a fresh learner of a compacted log");
    }

    #[test]
    fn broken_reads_are_refused_not_trusted() {
        let bad_prefix = LogRead {
            prefix: E1 | 9,
            ..LogRead::default()
        };
        assert!(plan(E1 | 2, &bad_prefix, E1 | 9).is_err());
        let unordered = LogRead {
            prefix: 0,
            entries: log(&[E1 | 2, E1 | 1]),
            compacted: false,
        };
        assert!(plan(0, &unordered, E1 | 2).is_err());
        let not_after_prefix = LogRead {
            prefix: E1 | 2,
            entries: log(&[E1 | 2]),
            compacted: false,
        };
        assert!(plan(E1 | 2, &not_after_prefix, E1 | 2).is_err());
        let past_leader = LogRead {
            prefix: 0,
            entries: log(&[E1 | 1]),
            compacted: false,
        };
        assert!(plan(0, &past_leader, 0).is_err());
    }
}
