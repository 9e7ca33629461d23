//! Crash simulation of every multi-step FileLog operation: the process
//! stops before its k-th durable step (k = 0, 1, ... until the operation
//! completes), the log is reopened, and the state must be the old one or
//! the new one, never a mix, and the reopened log must keep working. The
//! crash is a process crash (what was written stays in the page cache);
//! torn writes of a power loss are covered by the torn-tail tests in
//! `tests/logstore.rs`.

use bytes::Bytes;

use super::*;

#[derive(Clone, Debug, PartialEq)]
struct State {
    last: i64,
    entries: Vec<(i64, Bytes)>,
    snapshot: Option<(i64, Bytes)>,
}

fn observe(log: &FileLog) -> State {
    let entries = log
        .read_after(0, ReadLimit::UNLIMITED)
        .expect("read")
        .into_iter()
        .map(|e| (e.zxid, e.data))
        .collect();
    State {
        last: log.last_zxid(),
        entries,
        snapshot: log.snapshot().expect("snapshot").map(|s| (s.zxid, s.data)),
    }
}

/// Small segments with padding, so appends both fill and extend it.
fn opts() -> FileLogOptions {
    FileLogOptions {
        segment_bytes: 300,
        prealloc_bytes: 256,
    }
}

fn batch(from: i64, n: i64) -> Vec<Entry> {
    (from..from + n)
        .map(|z| Entry::new(z, vec![z as u8; 50]))
        .collect()
}

/// Six batches of three 50-byte entries (zxids 1..=18) in three segments
/// of two frames each.
fn three_segments(log: &mut FileLog) {
    for b in 0..6 {
        log.append(&batch(1 + 3 * b, 3)).expect("setup append");
    }
    assert_eq!(log.segment_count(), 3);
}

fn snap(zxid: i64, tag: &str) -> Snapshot {
    Snapshot {
        zxid,
        data: Bytes::from(format!("state at {zxid} ({tag})")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Old,
    New,
}

type Setup = dyn Fn(&mut FileLog);
type Op = dyn Fn(&mut FileLog) -> Result<(), LogError>;

/// Runs the crash matrix; `Err` describes the first crash point that left
/// a mixed state or an unreadable log.
fn crash_matrix(setup: &Setup, op: &Op) -> Result<Vec<Seen>, String> {
    let old = {
        let t = tempfile::tempdir().expect("tempdir");
        let mut log = FileLog::open_with(t.path(), opts()).expect("open");
        setup(&mut log);
        drop(log);
        observe(&FileLog::open_with(t.path(), opts()).expect("reopen"))
    };
    let new = {
        let t = tempfile::tempdir().expect("tempdir");
        let mut log = FileLog::open_with(t.path(), opts()).expect("open");
        setup(&mut log);
        op(&mut log).expect("the operation succeeds without a crash");
        let live = observe(&log);
        drop(log);
        let reopened = observe(&FileLog::open_with(t.path(), opts()).expect("reopen"));
        assert_eq!(live, reopened, "what the log served is what is on disk");
        reopened
    };
    assert_ne!(old, new, "the operation changes something");

    let mut seen = Vec::new();
    for k in 0..100 {
        let t = tempfile::tempdir().expect("tempdir");
        let mut log = FileLog::open_with(t.path(), opts()).expect("open");
        setup(&mut log);
        log.crash_before_step(Some(k));
        let done = op(&mut log).is_ok();
        if !done && !matches!(log.append(&batch(1000, 1)), Err(LogError::Poisoned)) {
            return Err(format!("crash before step {k}: the log was not poisoned"));
        }
        drop(log);
        let mut log = FileLog::open_with(t.path(), opts())
            .map_err(|e| format!("crash before step {k}: reopen failed: {e}"))?;
        let state = observe(&log);
        let which = if state == new {
            Seen::New
        } else if state == old {
            Seen::Old
        } else {
            let zxids: Vec<i64> = state.entries.iter().map(|e| e.0).collect();
            let snap = state.snapshot.as_ref().map(|s| s.0);
            return Err(format!(
                "crash before step {k}: mixed state: last {}, entries {zxids:?}, snapshot {snap:?}",
                state.last
            ));
        };
        // The recovered log keeps working and keeps what it said.
        let next = log.last_zxid() + 1;
        log.append(&batch(next, 2))
            .map_err(|e| format!("crash before step {k}: append after recovery: {e}"))?;
        drop(log);
        let log = FileLog::open_with(t.path(), opts()).expect("reopen after append");
        assert_eq!(log.last_zxid(), next + 1);
        seen.push(which);
        if done {
            if which != Seen::New {
                return Err(format!("completed after {k} steps but reopened as old"));
            }
            break;
        }
    }
    let pivot = seen
        .iter()
        .position(|&s| s == Seen::New)
        .unwrap_or(seen.len());
    if seen[pivot..].contains(&Seen::Old) {
        return Err(format!("old state after new in {seen:?}"));
    }
    Ok(seen)
}

fn check(setup: &Setup, op: &Op) -> Vec<Seen> {
    let seen = crash_matrix(setup, op).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        seen[0],
        Seen::Old,
        "a crash before any step keeps the old state"
    );
    assert_eq!(*seen.last().unwrap(), Seen::New);
    seen
}

#[test]
fn append_into_the_active_segment_is_old_or_new_at_every_step() {
    let seen = check(&|log| log.append(&batch(1, 3)).unwrap(), &|log| {
        log.append(&batch(4, 3))
    });
    // write, fdatasync, then done.
    assert_eq!(seen.len(), 3);
}

#[test]
fn append_that_creates_a_segment_is_old_or_new_at_every_step() {
    let seen = check(
        &|log| {
            log.append(&batch(1, 3)).unwrap();
            log.append(&batch(4, 3)).unwrap();
        },
        &|log| {
            log.append(&batch(7, 3))?;
            assert_eq!(log.segment_count(), 2);
            Ok(())
        },
    );
    // create, write, fsync, directory fsync, then done.
    assert_eq!(seen.len(), 5);
}

#[test]
fn truncate_inside_a_frame_and_across_segments_is_old_or_new_at_every_step() {
    let seen = check(&three_segments, &|log| log.truncate_after(8));
    assert!(seen.len() > 8, "intent, deletion, cut: {seen:?}");
}

#[test]
fn truncate_inside_the_last_frame_is_old_or_new_at_every_step() {
    check(&three_segments, &|log| log.truncate_after(16));
}

#[test]
fn truncate_on_a_segment_boundary_is_old_or_new_at_every_step() {
    check(&three_segments, &|log| log.truncate_after(6));
}

#[test]
fn truncate_without_its_intent_is_caught_by_the_crash_matrix() {
    // The injected bug: the same steps with no intent to redo them.
    let err = crash_matrix(&three_segments, &|log| {
        log.skip_truncate_intent = true;
        log.truncate_after(8)
    })
    .expect_err("a non-atomic truncate must be caught");
    eprintln!("caught: {err}");
    assert!(
        err.contains("mixed state") || err.contains("reopen failed"),
        "{err}"
    );
}

#[test]
fn save_snapshot_is_old_or_new_at_every_step() {
    check(
        &|log| {
            three_segments(log);
            log.save_snapshot(snap(6, "old")).unwrap();
        },
        &|log| log.save_snapshot(snap(12, "new")),
    );
}

#[test]
fn compaction_is_old_or_new_at_every_step() {
    let seen = check(
        &|log| {
            three_segments(log);
            log.save_snapshot(snap(13, "s")).unwrap();
        },
        &|log| {
            log.compact(i64::MAX)?;
            assert_eq!(
                log.segment_count(),
                1,
                "segments [1..6] and [7..12] are covered"
            );
            Ok(())
        },
    );
    assert!(seen.len() > 5);
}

#[test]
fn install_snapshot_is_old_or_new_at_every_step() {
    check(
        &|log| {
            three_segments(log);
            log.save_snapshot(snap(3, "old")).unwrap();
        },
        &|log| log.install_snapshot(snap(0x1_0000_0000, "from the leader")),
    );
}

#[test]
fn install_of_a_lower_zxid_replaces_a_longer_log_at_every_step() {
    // SNAP from a leader whose snapshot is below this log's divergent tail.
    check(&three_segments, &|log| {
        log.install_snapshot(snap(10, "leader"))
    });
}

#[test]
fn sparse_index_points_are_used_and_reads_agree_with_a_full_scan() {
    let t = tempfile::tempdir().unwrap();
    let mut log = FileLog::open_with(
        t.path(),
        FileLogOptions {
            segment_bytes: 4 << 20,
            ..FileLogOptions::default()
        },
    )
    .unwrap();
    // 3,000 frames of ~1 KiB: ~3 MiB in one segment, about 12 index points.
    for z in 1..=3000 {
        log.append(&[Entry::new(z, vec![7u8; 1000])]).unwrap();
    }
    assert_eq!(log.segment_count(), 1);
    assert!(
        log.segments[0].index.len() >= 10,
        "{} points",
        log.segments[0].index.len()
    );
    for after in [0, 1, 255, 256, 257, 1500, 2999, 3000] {
        let got = log.read_after(after, ReadLimit::entries(3)).unwrap();
        let want: Vec<i64> = (after + 1..=3000).take(3).collect();
        assert_eq!(
            got.iter().map(|e| e.zxid).collect::<Vec<_>>(),
            want,
            "after {after}"
        );
        assert_eq!(
            log.floor_zxid(after).unwrap(),
            (after >= 1).then_some(after)
        );
    }
    log.truncate_after(1234).unwrap();
    assert!(log.segments[0].index.iter().all(|&(z, _)| z <= 1234));
    drop(log);
    let log = FileLog::open(t.path()).unwrap();
    assert_eq!(log.last_zxid(), 1234);
    assert_eq!(
        log.read_after(1200, ReadLimit::UNLIMITED).unwrap().len(),
        34
    );
}
