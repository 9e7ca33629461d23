//! The LogStore contract on FileLog and MemLog: reads and reopen, torn
//! tails and corruption on disk, padding, truncation, snapshots and
//! compaction, the Zab sync query. The model check is in
//! `tests/logstore_model.rs`.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use zkfle::logstore::{
    Entry, FileLog, FileLogOptions, LogError, LogStore, MemLog, ReadLimit, Snapshot, SyncSource,
};

fn e(z: i64) -> Entry {
    Entry::new(z, Bytes::from(format!("value of {z:#x}")))
}

fn batch(zs: impl IntoIterator<Item = i64>) -> Vec<Entry> {
    zs.into_iter().map(e).collect()
}

fn all(s: &impl LogStore) -> Vec<Entry> {
    s.read_after(0, ReadLimit::UNLIMITED).expect("read")
}

fn zxids(es: &[Entry]) -> Vec<i64> {
    es.iter().map(|e| e.zxid).collect()
}

/// Small segments, no padding: files hold exactly the frames, so tests can
/// cut and flip bytes at known offsets.
fn small() -> FileLogOptions {
    FileLogOptions {
        segment_bytes: 256,
        prealloc_bytes: 0,
    }
}

fn exact() -> FileLogOptions {
    FileLogOptions {
        prealloc_bytes: 0,
        ..FileLogOptions::default()
    }
}

/// Segment files in name (= zxid) order.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("log."))
        .collect();
    v.sort();
    v
}

fn snap(zxid: i64) -> Snapshot {
    Snapshot {
        zxid,
        data: Bytes::from(format!("state up to {zxid:#x}")),
    }
}

#[test]
fn appended_entries_read_back_in_order_and_survive_reopen() {
    let t = tempfile::tempdir().unwrap();
    let mut log = FileLog::open_with(t.path(), small()).unwrap();
    assert_eq!((log.last_zxid(), log.first_zxid()), (0, None));
    log.append(&batch([1, 2, 3])).unwrap();
    log.append(&batch([0x1_0000_0001])).unwrap();
    log.append(&[]).unwrap();
    for z in 0x1_0000_0002..0x1_0000_0040 {
        log.append(&batch([z])).unwrap();
    }
    assert!(log.segment_count() > 5, "small segments roll over");
    let want = all(&log);
    assert_eq!(want.len(), 3 + 0x3f);
    drop(log);

    let log = FileLog::open_with(t.path(), small()).unwrap();
    assert_eq!(all(&log), want);
    assert_eq!(log.last_zxid(), 0x1_0000_003f);
    assert_eq!(log.first_zxid(), Some(1));
    assert_eq!(
        zxids(&log.read_after(2, ReadLimit::entries(2)).unwrap()),
        [3, 0x1_0000_0001]
    );
    assert_eq!(log.floor_zxid(0x1_0000_0000).unwrap(), Some(3));
    assert_eq!(log.floor_zxid(0).unwrap(), None);
    assert_eq!(
        log.read_after(0x1_0000_003f, ReadLimit::UNLIMITED).unwrap(),
        []
    );
}

#[test]
fn out_of_order_appends_are_refused_and_leave_the_log_usable() {
    let t = tempfile::tempdir().unwrap();
    let mut log = FileLog::open(t.path()).unwrap();
    log.append(&batch([5])).unwrap();
    assert!(matches!(
        log.append(&batch([6, 6])),
        Err(LogError::OutOfOrder { zxid: 6, last: 6 })
    ));
    assert!(matches!(
        log.append(&batch([4])),
        Err(LogError::OutOfOrder { zxid: 4, last: 5 })
    ));
    log.append(&batch([6])).unwrap();
    assert_eq!(zxids(&all(&log)), [5, 6]);
}

/// Writes entries 1..=10 in batches of two into one segment and returns
/// the segment file and the offset where the last frame starts.
fn ten_in_one_segment(dir: &Path) -> (PathBuf, u64) {
    let mut log = FileLog::open_with(dir, exact()).unwrap();
    for z in (1..=8).step_by(2) {
        log.append(&batch([z, z + 1])).unwrap();
    }
    drop(log);
    let seg = segments(dir).pop().unwrap();
    let before = fs::metadata(&seg).unwrap().len();
    let mut log = FileLog::open_with(dir, exact()).unwrap();
    log.append(&batch([9, 10])).unwrap();
    (seg, before)
}

#[test]
fn a_torn_last_frame_is_cut_at_every_possible_length_and_the_prefix_survives() {
    let t = tempfile::tempdir().unwrap();
    let (seg, last_frame) = ten_in_one_segment(t.path());
    let full = fs::read(&seg).unwrap();
    for cut in last_frame..full.len() as u64 {
        fs::write(&seg, &full[..cut as usize]).unwrap();
        let mut log =
            FileLog::open_with(t.path(), exact()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(
            zxids(&all(&log)),
            (1..=8).collect::<Vec<_>>(),
            "cut at {cut}"
        );
        assert_eq!(
            fs::metadata(&seg).unwrap().len(),
            last_frame,
            "the torn bytes are gone"
        );
        // Appending after the cut continues the same file cleanly.
        log.append(&batch([9])).unwrap();
        drop(log);
        assert_eq!(
            zxids(&all(&FileLog::open(t.path()).unwrap())),
            (1..=9).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_zero_filled_tail_is_torn_not_corrupt() {
    // A file system may extend the file before the data reaches the disk.
    let t = tempfile::tempdir().unwrap();
    let (seg, _) = ten_in_one_segment(t.path());
    let mut bytes = fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0u8; 700]);
    fs::write(&seg, &bytes).unwrap();
    let log = FileLog::open_with(t.path(), exact()).unwrap();
    assert_eq!(log.last_zxid(), 10);
    assert_eq!(zxids(&all(&log)), (1..=10).collect::<Vec<_>>());
}

#[test]
fn a_torn_segment_creation_is_dropped_whole() {
    let t = tempfile::tempdir().unwrap();
    {
        let mut log = FileLog::open_with(t.path(), small()).unwrap();
        for z in 1..=20 {
            log.append(&batch([z])).unwrap();
        }
    }
    let segs = segments(t.path());
    let last = segs.last().unwrap();
    let bytes = fs::read(last).unwrap();
    let before: Vec<i64> = {
        fs::remove_file(last).unwrap();
        let v = zxids(&all(&FileLog::open_with(t.path(), small()).unwrap()));
        fs::write(last, &bytes).unwrap();
        v
    };
    for cut in [0usize, 5, 23, 24, 30] {
        fs::write(last, &bytes[..cut]).unwrap();
        let mut log = FileLog::open_with(t.path(), small()).unwrap();
        assert_eq!(zxids(&all(&log)), before, "header cut at {cut}");
        assert!(
            !last.exists(),
            "the empty segment is removed (cut at {cut})"
        );
        // The same first zxid can start a segment again.
        let next = log.last_zxid() + 1;
        log.append(&batch([next])).unwrap();
    }
}

#[test]
fn a_flipped_bit_before_valid_frames_is_corruption_naming_file_and_offset() {
    let t = tempfile::tempdir().unwrap();
    let (seg, last_frame) = ten_in_one_segment(t.path());
    let good = fs::read(&seg).unwrap();
    // Five equal frames after the 24-byte header: flip bytes of the third
    // (zxids 5, 6), in its header and in its data.
    let frame = (last_frame as usize - 24) / 4;
    let third = 24 + 2 * frame;
    for at in [third + 3, third + 40] {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        fs::write(&seg, &bad).unwrap();
        match FileLog::open(t.path()) {
            Err(LogError::Corrupt {
                path,
                offset,
                reason,
            }) => {
                assert_eq!(path, seg);
                assert_eq!(offset, third as u64, "{reason}");
                let msg = LogError::Corrupt {
                    path,
                    offset,
                    reason,
                }
                .to_string();
                let want = format!("offset {third}");
                assert!(
                    msg.contains("log.0000000000000001") && msg.contains(&want),
                    "{msg}"
                );
            }
            other => panic!("flip at {at}: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn a_flipped_bit_in_a_sealed_segment_is_corruption_even_at_its_end() {
    let t = tempfile::tempdir().unwrap();
    {
        let mut log = FileLog::open_with(t.path(), small()).unwrap();
        for z in 1..=20 {
            log.append(&batch([z])).unwrap();
        }
    }
    let first = segments(t.path()).remove(0);
    let mut bytes = fs::read(&first).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    fs::write(&first, &bytes).unwrap();
    assert!(
        matches!(FileLog::open_with(t.path(), small()), Err(LogError::Corrupt { path, .. }) if path == first)
    );
    // A bad header on a sealed segment too.
    bytes[n - 1] ^= 1;
    bytes[2] ^= 1;
    fs::write(&first, &bytes).unwrap();
    assert!(matches!(
        FileLog::open_with(t.path(), small()),
        Err(LogError::Corrupt { offset: 0, .. })
    ));
}

#[test]
fn a_flipped_bit_in_the_very_last_frame_looks_torn_and_drops_that_frame() {
    // Documented limit: the last frame's damage cannot be told from a torn
    // write; it is dropped, never served.
    let t = tempfile::tempdir().unwrap();
    let (seg, last_frame) = ten_in_one_segment(t.path());
    let mut bytes = fs::read(&seg).unwrap();
    bytes[last_frame as usize + 20] ^= 4;
    fs::write(&seg, &bytes).unwrap();
    assert_eq!(
        FileLog::open_with(t.path(), exact()).unwrap().last_zxid(),
        8
    );
}

#[test]
fn foreign_or_corrupt_files_are_errors_not_panics() {
    let t = tempfile::tempdir().unwrap();
    fs::write(
        t.path().join("log.0000000000000001"),
        b"not a segment at all, but long enough",
    )
    .unwrap();
    fs::write(t.path().join("log.0000000000000009"), b"").unwrap();
    assert!(matches!(
        FileLog::open(t.path()),
        Err(LogError::Corrupt { .. })
    ));

    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("intent"), b"garbage intent").unwrap();
    assert!(matches!(
        FileLog::open(t.path()),
        Err(LogError::Corrupt { .. })
    ));

    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("snapshot.0000000000000003"), b"short").unwrap();
    assert!(matches!(
        FileLog::open(t.path()),
        Err(LogError::Corrupt { .. })
    ));

    // Unknown files are left alone.
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("README"), b"hi").unwrap();
    let mut log = FileLog::open(t.path()).unwrap();
    log.append(&batch([1])).unwrap();
    assert!(t.path().join("README").exists());
}

#[test]
fn a_snapshot_with_flipped_data_is_reported_when_read() {
    let t = tempfile::tempdir().unwrap();
    let mut log = FileLog::open(t.path()).unwrap();
    log.append(&batch([1, 2])).unwrap();
    log.save_snapshot(snap(2)).unwrap();
    drop(log);
    let path = t.path().join("snapshot.0000000000000002");
    let mut b = fs::read(&path).unwrap();
    let n = b.len();
    b[n - 2] ^= 1;
    fs::write(&path, &b).unwrap();
    let log = FileLog::open(t.path()).unwrap();
    assert!(matches!(log.snapshot(), Err(LogError::Corrupt { .. })));
}

#[test]
fn truncate_after_is_durable_and_appends_continue_after_it() {
    let t = tempfile::tempdir().unwrap();
    let mut log = FileLog::open_with(t.path(), small()).unwrap();
    for z in (1..=30).step_by(3) {
        log.append(&batch([z, z + 1, z + 2])).unwrap();
    }
    let segs = log.segment_count();
    log.truncate_after(14).unwrap(); // inside the frame [13, 14, 15]
    assert_eq!(log.last_zxid(), 14);
    assert!(log.segment_count() < segs);
    log.truncate_after(20).unwrap(); // nothing above: no-op
    log.append(&batch([0x1_0000_0001])).unwrap();
    drop(log);
    let mut log = FileLog::open_with(t.path(), small()).unwrap();
    let mut want: Vec<i64> = (1..=14).collect();
    want.push(0x1_0000_0001);
    assert_eq!(zxids(&all(&log)), want);
    log.truncate_after(0).unwrap();
    assert_eq!(
        (log.last_zxid(), log.first_zxid(), log.segment_count()),
        (0, None, 0)
    );
    drop(log);
    assert_eq!(
        FileLog::open_with(t.path(), small()).unwrap().last_zxid(),
        0
    );
}

fn padded() -> FileLogOptions {
    FileLogOptions {
        segment_bytes: 1 << 20,
        prealloc_bytes: 64 << 10,
    }
}

#[test]
fn padding_is_allocated_ahead_kept_across_reopen_and_filled_in_place() {
    let t = tempfile::tempdir().unwrap();
    let mut log = FileLog::open_with(t.path(), padded()).unwrap();
    for z in 1..=10 {
        log.append(&batch([z])).unwrap();
    }
    let seg = segments(t.path()).pop().unwrap();
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        64 << 10,
        "one padded chunk"
    );
    drop(log);
    let mut log = FileLog::open_with(t.path(), padded()).unwrap();
    assert_eq!(zxids(&all(&log)), (1..=10).collect::<Vec<_>>());
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        64 << 10,
        "padding is not a torn tail"
    );
    for z in 11..=20 {
        log.append(&batch([z])).unwrap();
    }
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        64 << 10,
        "appends fill the padding"
    );
    // Past the padded size, the next chunk is zero-filled.
    let big: Vec<Entry> = (21..=30)
        .map(|z| Entry::new(z, vec![1u8; 8 << 10]))
        .collect();
    log.append(&big).unwrap();
    assert_eq!(fs::metadata(&seg).unwrap().len(), 128 << 10);
    drop(log);
    assert_eq!(
        FileLog::open_with(t.path(), padded()).unwrap().last_zxid(),
        30
    );
}

#[test]
fn a_torn_frame_inside_the_padding_is_cut_and_the_prefix_survives() {
    let t = tempfile::tempdir().unwrap();
    let mut log = FileLog::open_with(t.path(), padded()).unwrap();
    log.append(&batch([1, 2, 3])).unwrap();
    let seg = segments(t.path()).pop().unwrap();
    let before = fs::read(&seg).unwrap();
    log.append(&batch([4, 5, 6])).unwrap();
    drop(log);
    let after = fs::read(&seg).unwrap();
    assert_eq!(before.len(), after.len(), "the frame went into the padding");
    let start = before.iter().zip(&after).position(|(a, b)| a != b).unwrap();
    let end = after.len() - after.iter().rev().position(|&b| b != 0).unwrap();
    // Only the first half of the second frame reached the disk.
    let mut torn = after.clone();
    torn[start + (end - start) / 2..end].fill(0);
    fs::write(&seg, &torn).unwrap();
    let mut log = FileLog::open_with(t.path(), padded()).unwrap();
    assert_eq!(zxids(&all(&log)), [1, 2, 3]);
    log.append(&batch([4])).unwrap();
    drop(log);
    assert_eq!(
        zxids(&all(&FileLog::open_with(t.path(), padded()).unwrap())),
        [1, 2, 3, 4]
    );
}

#[test]
fn sealed_segments_keep_their_padding_and_garbage_in_it_is_corruption() {
    let t = tempfile::tempdir().unwrap();
    let opts = FileLogOptions {
        segment_bytes: 200,
        prealloc_bytes: 512,
    };
    let mut log = FileLog::open_with(t.path(), opts).unwrap();
    for z in (1..=36).step_by(3) {
        log.append(&batch([z, z + 1])).unwrap();
        log.append(&batch([z + 2])).unwrap();
    }
    drop(log);
    let segs = segments(t.path());
    assert!(segs.len() > 3);
    assert!(segs
        .iter()
        .all(|p| fs::metadata(p).unwrap().len() % 512 == 0));
    let log = FileLog::open_with(t.path(), opts).unwrap();
    assert_eq!(all(&log).len(), 36);
    drop(log);
    let mut b = fs::read(&segs[0]).unwrap();
    let n = b.len();
    b[n - 3] = 0x55;
    fs::write(&segs[0], &b).unwrap();
    assert!(
        matches!(FileLog::open_with(t.path(), opts), Err(LogError::Corrupt { path, .. }) if path == segs[0])
    );
}

/// The Zab leader's sync question on any store with zxids 1..=30 and, if
/// asked, a snapshot at 20 with everything it covers compacted away.
fn sync_cases(s: &mut impl LogStore, compacted_store: bool) {
    for z in (1..=30).step_by(3) {
        s.append(&batch([z, z + 1, z + 2])).unwrap();
    }
    let src = |s: &dyn Fn(i64) -> SyncSource, l| {
        let r = s(l);
        (
            r.prefix,
            r.entries.first().map(|e| e.zxid),
            r.entries.len(),
            r.compacted,
        )
    };
    let q = |l: i64| s.sync_source(l, ReadLimit::UNLIMITED).unwrap();
    // Learner up to date: empty DIFF.
    assert_eq!(src(&q, 30), (30, None, 0, false));
    // Learner behind on a zxid the leader has: DIFF from there.
    assert_eq!(src(&q, 25), (25, Some(26), 5, false));
    // Learner holds a zxid the leader lacks (between 30 and a new epoch):
    // prefix below it, then TRUNC.
    assert_eq!(src(&q, 0xdead), (30, None, 0, false));
    assert_eq!(src(&q, 0), (0, Some(1), 30, false));
    if !compacted_store {
        return;
    }
    s.save_snapshot(snap(20)).unwrap();
    s.compact(20).unwrap();
    let first = s.first_zxid().unwrap();
    assert!(
        first <= 21 && first > 1,
        "compaction dropped something, kept all above 20: {first}"
    );
    let q = |l: i64| s.sync_source(l, ReadLimit::UNLIMITED).unwrap();
    // Older than anything retained: SNAP, then the entries after it.
    assert_eq!(src(&q, 0), (20, Some(21), 10, true));
    if first - 1 < 20 {
        assert_eq!(src(&q, first - 1), (20, Some(21), 10, true));
    }
    // Below the snapshot but still retained: a DIFF still works.
    if first < 20 {
        assert_eq!(
            src(&q, first),
            (first, Some(first + 1), (30 - first) as usize, false)
        );
    }
    // At the snapshot or above: DIFF.
    assert_eq!(src(&q, 20), (20, Some(21), 10, false));
    assert_eq!(src(&q, 27), (27, Some(28), 3, false));
    // Bounded sync reads continue with read_after.
    let part = s.sync_source(0, ReadLimit::entries(4)).unwrap();
    assert_eq!(zxids(&part.entries), [21, 22, 23, 24]);
    assert_eq!(
        zxids(&s.read_after(24, ReadLimit::UNLIMITED).unwrap()).len(),
        6
    );
    // Everything compacted: the snapshot alone answers.
    s.append(&batch([31])).unwrap();
    s.save_snapshot(snap(31)).unwrap();
    s.compact(i64::MAX).unwrap();
    assert_eq!(s.last_zxid(), 31);
    let q = |l: i64| s.sync_source(l, ReadLimit::UNLIMITED).unwrap();
    assert_eq!(src(&q, 31), (31, None, 0, false));
    assert_eq!(src(&q, 30), (31, None, 0, true));
    assert_eq!(src(&q, 40), (31, None, 0, false));
}

#[test]
fn sync_source_answers_diff_trunc_and_snap_on_both_stores() {
    sync_cases(&mut MemLog::new(), true);
    let t = tempfile::tempdir().unwrap();
    sync_cases(&mut FileLog::open_with(t.path(), small()).unwrap(), true);
    let t = tempfile::tempdir().unwrap();
    sync_cases(&mut FileLog::open(t.path()).unwrap(), false);
    // Through a trait object, as the runtime holds the embedder's store.
    let t = tempfile::tempdir().unwrap();
    let mut boxed: Box<dyn LogStore> = Box::new(FileLog::open_with(t.path(), small()).unwrap());
    sync_cases(&mut boxed, true);
}

#[test]
fn compaction_removes_whole_segments_only_and_survives_reopen() {
    let t = tempfile::tempdir().unwrap();
    let mut log = FileLog::open_with(t.path(), small()).unwrap();
    for z in 1..=40 {
        log.append(&batch([z])).unwrap();
    }
    let files = segments(t.path()).len();
    log.compact(30).unwrap();
    assert_eq!(
        segments(t.path()).len(),
        files,
        "no snapshot: nothing may go"
    );
    log.save_snapshot(snap(25)).unwrap();
    log.compact(30).unwrap();
    let first = log.first_zxid().unwrap();
    assert!(first > 1 && first <= 26, "{first}");
    assert_eq!(zxids(&all(&log)), (first..=40).collect::<Vec<_>>());
    drop(log);
    let log = FileLog::open_with(t.path(), small()).unwrap();
    assert_eq!(log.first_zxid(), Some(first));
    assert_eq!(log.snapshot().unwrap(), Some(snap(25)));
    assert!(matches!(
        FileLog::open_with(t.path(), small())
            .unwrap()
            .truncate_after(24),
        Err(LogError::TruncateBelowSnapshot {
            after: 24,
            snapshot: 25
        })
    ));
}

#[test]
fn install_snapshot_replaces_log_and_snapshot_durably() {
    let t = tempfile::tempdir().unwrap();
    let mut log = FileLog::open_with(t.path(), small()).unwrap();
    for z in 1..=20 {
        log.append(&batch([z])).unwrap();
    }
    log.save_snapshot(snap(5)).unwrap();
    log.install_snapshot(snap(0x2_0000_0003)).unwrap();
    assert_eq!((log.last_zxid(), log.first_zxid()), (0x2_0000_0003, None));
    assert!(matches!(
        log.append(&batch([7])),
        Err(LogError::OutOfOrder { .. })
    ));
    log.append(&batch([0x2_0000_0004])).unwrap();
    drop(log);
    let log = FileLog::open_with(t.path(), small()).unwrap();
    assert_eq!(log.snapshot().unwrap(), Some(snap(0x2_0000_0003)));
    assert_eq!(zxids(&all(&log)), [0x2_0000_0004]);
    let names: Vec<String> = fs::read_dir(t.path())
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("snapshot.")).count(),
        1,
        "{names:?}"
    );
}
