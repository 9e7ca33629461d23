//! MemLog's durability model and the shared validation rules. The trait's
//! behaviour on both stores (sync query, reopen, model checks) is in
//! `tests/logstore.rs`.

use bytes::Bytes;

use super::*;

fn e(z: i64) -> Entry {
    Entry::new(z, Bytes::from(format!("v{z}")))
}

fn zxids(es: &[Entry]) -> Vec<i64> {
    es.iter().map(|e| e.zxid).collect()
}

#[test]
fn written_entries_are_readable_but_not_durable_until_sync() {
    let mut m = MemLog::new();
    m.append(&[e(1), e(2)]).unwrap();
    m.write(&[e(3)]).unwrap();
    m.write(&[e(4), e(5)]).unwrap();
    // Reads see the page cache; the vote (last_zxid) sees only the disk.
    assert_eq!(
        zxids(&m.read_after(0, ReadLimit::UNLIMITED).unwrap()),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(m.last_zxid(), 2);
    assert_eq!(m.written_last_zxid(), 5);
    assert_eq!(m.unsynced_entries(), 3);
    m.sync();
    assert_eq!(m.last_zxid(), 5);
    assert_eq!(m.unsynced_entries(), 0);
}

#[test]
fn crash_drops_exactly_what_was_not_synced() {
    let mut m = MemLog::new();
    m.append(&[e(1)]).unwrap();
    m.write(&[e(2)]).unwrap();
    m.write(&[e(3)]).unwrap();
    m.crash();
    assert_eq!(zxids(&m.read_after(0, ReadLimit::UNLIMITED).unwrap()), [1]);
    assert_eq!((m.last_zxid(), m.written_last_zxid()), (1, 1));
    // After the crash the log continues from what survived.
    m.append(&[e(2)]).unwrap();
    assert_eq!(m.last_zxid(), 2);
}

#[test]
fn crash_keeping_keeps_a_prefix_of_unsynced_batches_and_makes_it_durable() {
    let mut m = MemLog::new();
    m.write(&[e(1), e(2)]).unwrap();
    m.write(&[e(3)]).unwrap();
    m.write(&[e(4)]).unwrap();
    m.crash_keeping(2);
    assert_eq!(
        zxids(&m.read_after(0, ReadLimit::UNLIMITED).unwrap()),
        [1, 2, 3]
    );
    assert_eq!(m.last_zxid(), 3);
    m.crash();
    assert_eq!(m.last_zxid(), 3, "kept batches became durable");
}

#[test]
fn durable_operations_first_make_earlier_writes_durable() {
    let mut m = MemLog::new();
    m.write(&[e(1), e(2), e(3)]).unwrap();
    m.truncate_after(2).unwrap();
    m.crash();
    assert_eq!(
        zxids(&m.read_after(0, ReadLimit::UNLIMITED).unwrap()),
        [1, 2]
    );
    m.write(&[e(5)]).unwrap();
    m.save_snapshot(Snapshot {
        zxid: 5,
        data: Bytes::from_static(b"s"),
    })
    .unwrap();
    m.crash();
    assert_eq!(m.last_zxid(), 5);
}

#[test]
fn syncs_count_only_syncs_that_made_something_durable() {
    let mut m = MemLog::new();
    m.sync();
    assert_eq!(m.syncs(), 0);
    m.append(&[e(1), e(2)]).unwrap();
    m.write(&[e(3)]).unwrap();
    m.write(&[e(4)]).unwrap();
    m.sync();
    assert_eq!(
        m.syncs(),
        2,
        "one per append, one for the group of two writes"
    );
}

#[test]
fn batches_must_be_strictly_increasing_and_above_the_last_written() {
    let mut m = MemLog::new();
    assert!(matches!(
        m.append(&[e(0)]),
        Err(LogError::OutOfOrder { zxid: 0, last: 0 })
    ));
    assert!(matches!(
        m.append(&[e(2), e(2)]),
        Err(LogError::OutOfOrder { zxid: 2, last: 2 })
    ));
    m.write(&[e(3)]).unwrap();
    assert!(matches!(
        m.write(&[e(3)]),
        Err(LogError::OutOfOrder { zxid: 3, last: 3 })
    ));
    assert_eq!(m.len(), 1, "a refused batch leaves nothing behind");
    let big = Entry::new(9, Bytes::from(vec![0u8; MAX_ENTRY_BYTES + 1]));
    assert!(matches!(
        m.append(&[big]),
        Err(LogError::EntryTooLarge { zxid: 9, .. })
    ));
}

#[test]
fn read_limits_bound_entries_and_bytes_but_always_return_one() {
    let mut m = MemLog::new();
    let batch: Vec<Entry> = (1..=5).map(|z| Entry::new(z, vec![0u8; 10])).collect();
    m.append(&batch).unwrap();
    assert_eq!(
        zxids(&m.read_after(0, ReadLimit::entries(2)).unwrap()),
        [1, 2]
    );
    let by_bytes = ReadLimit {
        max_entries: usize::MAX,
        max_bytes: 25,
    };
    assert_eq!(zxids(&m.read_after(1, by_bytes).unwrap()), [2, 3]);
    let tiny = ReadLimit {
        max_entries: 0,
        max_bytes: 1,
    };
    assert_eq!(zxids(&m.read_after(3, tiny).unwrap()), [4]);
    assert!(m.read_after(5, tiny).unwrap().is_empty());
}

#[test]
fn truncate_below_the_snapshot_is_refused() {
    let mut m = MemLog::new();
    m.append(&[e(1), e(2), e(3)]).unwrap();
    m.save_snapshot(Snapshot {
        zxid: 2,
        data: Bytes::new(),
    })
    .unwrap();
    assert!(matches!(
        m.truncate_after(1),
        Err(LogError::TruncateBelowSnapshot {
            after: 1,
            snapshot: 2
        })
    ));
    m.truncate_after(2).unwrap();
    assert_eq!(m.last_zxid(), 2);
}

#[test]
fn snapshots_must_be_within_the_log_and_not_go_back() {
    let mut m = MemLog::new();
    m.append(&[e(1), e(2)]).unwrap();
    m.write(&[e(3)]).unwrap();
    let snap = |z| Snapshot {
        zxid: z,
        data: Bytes::new(),
    };
    assert!(matches!(
        m.save_snapshot(snap(4)),
        Err(LogError::SnapshotAhead { zxid: 4, last: 3 })
    ));
    m.save_snapshot(snap(3)).unwrap();
    assert!(matches!(
        m.save_snapshot(snap(2)),
        Err(LogError::SnapshotOlder {
            zxid: 2,
            current: 3
        })
    ));
}
