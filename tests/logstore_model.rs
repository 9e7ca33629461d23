//! Model check of both LogStores: random sequences of append, truncate,
//! snapshot, compact, install and reopen (FileLog: close and open; MemLog:
//! a crash) against a Vec model; after every step the store must serve
//! exactly what the model allows (a retained suffix of the history holding
//! everything above the snapshot, the same last zxid and snapshot, and the
//! D3 sync answer for probe points).

use bytes::Bytes;
use proptest::prelude::*;
use zkfle::logstore::{
    Entry, FileLog, FileLogOptions, LogError, LogStore, MemLog, ReadLimit, Snapshot,
};

fn all(s: &impl LogStore) -> Vec<Entry> {
    s.read_after(0, ReadLimit::UNLIMITED).expect("read")
}

#[derive(Clone, Debug)]
enum Op {
    /// Append `n` entries; `epoch_jump` starts a new epoch first.
    Append {
        n: usize,
        size: usize,
        epoch_jump: bool,
    },
    /// Truncate after a point chosen by `pick` within the log's range.
    Truncate {
        pick: u32,
    },
    /// Snapshot at a point chosen by `pick` (possibly invalid on purpose).
    Snapshot {
        pick: u32,
    },
    Compact {
        pick: u32,
    },
    Install {
        above: bool,
        pick: u32,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..6, 0usize..80, prop::bool::weighted(0.1))
            .prop_map(|(n, size, epoch_jump)| Op::Append { n, size, epoch_jump }),
        2 => any::<u32>().prop_map(|pick| Op::Truncate { pick }),
        1 => any::<u32>().prop_map(|pick| Op::Snapshot { pick }),
        1 => any::<u32>().prop_map(|pick| Op::Compact { pick }),
        1 => (prop::bool::weighted(0.7), any::<u32>()).prop_map(|(above, pick)| Op::Install { above, pick }),
        2 => Just(Op::Reopen),
    ]
}

/// The model: the whole history (nothing is ever compacted here) and the
/// snapshot. A store may retain any suffix of `entries` that includes
/// every entry above the snapshot.
#[derive(Default)]
struct Model {
    entries: Vec<Entry>,
    snap: Option<Snapshot>,
}

impl Model {
    fn base(&self) -> i64 {
        self.snap.as_ref().map_or(0, |s| s.zxid)
    }
    fn last(&self) -> i64 {
        self.entries
            .last()
            .map_or(self.base(), |e| e.zxid.max(self.base()))
    }
    fn floor(&self, l: i64) -> i64 {
        self.entries
            .iter()
            .rev()
            .find(|e| e.zxid <= l)
            .map_or(0, |e| e.zxid)
    }
    fn after(&self, l: i64) -> Vec<Entry> {
        self.entries
            .iter()
            .filter(|e| e.zxid > l)
            .cloned()
            .collect()
    }
    /// A point in `[base, last]`-ish chosen by `pick`: an existing zxid or
    /// one between them.
    fn point(&self, pick: u32) -> i64 {
        let lo = self.base();
        let hi = self.last().max(lo);
        let span = (hi - lo + 2) as u64;
        lo + (pick as u64 % span) as i64
    }
}

/// Everything a store serves must agree with the model.
fn check_against(s: &impl LogStore, m: &Model, probes: &[u32]) -> Result<(), TestCaseError> {
    prop_assert_eq!(s.last_zxid(), m.last());
    let retained = all(s);
    prop_assert_eq!(retained.first().map(|e| e.zxid), s.first_zxid());
    let k = m.entries.len() - retained.len();
    prop_assert_eq!(
        &m.entries[k..],
        &retained[..],
        "retained entries are a suffix"
    );
    prop_assert!(
        retained.len() >= m.after(m.base()).len(),
        "everything above the snapshot is kept"
    );
    prop_assert_eq!(s.snapshot().unwrap(), m.snap.clone());
    prop_assert_eq!(s.snapshot_zxid(), m.snap.as_ref().map(|s| s.zxid));
    for &p in probes {
        let l = m.point(p) - 1 + (p % 3) as i64; // also just below/above points
        let got = s.sync_source(l, ReadLimit::UNLIMITED).unwrap();
        let base = m.base();
        if got.compacted {
            prop_assert!(l < base, "compacted only below the snapshot");
            prop_assert!(s.floor_zxid(l).unwrap().is_none());
            prop_assert_eq!(got.prefix, base);
            prop_assert_eq!(got.entries, m.after(base));
        } else {
            let want = if l >= base {
                m.floor(l).max(base)
            } else {
                m.floor(l)
            };
            prop_assert_eq!(got.prefix, want, "prefix for L={}", l);
            prop_assert_eq!(got.entries, m.after(l));
        }
    }
    Ok(())
}

fn next_zxid(m: &Model, epoch_jump: bool) -> i64 {
    let last = m.last();
    if epoch_jump {
        ((last >> 32) + 1) << 32 | 1
    } else {
        last + 1 + (last % 3)
    }
}

/// Runs `ops` on a store and the model; `reopen` turns the store into its
/// recovered self (FileLog: close and open; MemLog: a crash, which after
/// durable-only calls must lose nothing).
fn run_model<S: LogStore>(
    mut s: S,
    ops: &[Op],
    probes: &[u32],
    reopen: impl Fn(S) -> S,
) -> Result<(), TestCaseError> {
    let mut m = Model::default();
    let mut tag = 0u32;
    for op in ops {
        match *op {
            Op::Append {
                n,
                size,
                epoch_jump,
            } => {
                let first = next_zxid(&m, epoch_jump);
                let b: Vec<Entry> = (0..n)
                    .map(|i| {
                        let z = first + i as i64;
                        Entry::new(z, vec![(z as u8).wrapping_add(i as u8); size])
                    })
                    .collect();
                s.append(&b).unwrap();
                m.entries.extend(b);
            }
            Op::Truncate { pick } => {
                let at = m.point(pick) - (pick % 4 == 0) as i64;
                match s.truncate_after(at) {
                    Ok(()) => {
                        prop_assert!(m.snap.is_none() || at >= m.base());
                        m.entries.retain(|e| e.zxid <= at);
                    }
                    Err(LogError::TruncateBelowSnapshot { .. }) => {
                        prop_assert!(m.snap.is_some() && at < m.base())
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("truncate {at}: {e}"))),
                }
            }
            Op::Snapshot { pick } => {
                tag += 1;
                let at = m.point(pick);
                let sn = Snapshot {
                    zxid: at,
                    data: Bytes::from(format!("snap {tag} at {at}")),
                };
                match s.save_snapshot(sn.clone()) {
                    Ok(()) => {
                        prop_assert!(at <= m.last());
                        m.snap = Some(sn);
                    }
                    Err(LogError::SnapshotAhead { .. }) => prop_assert!(at > m.last()),
                    Err(e) => return Err(TestCaseError::fail(format!("snapshot {at}: {e}"))),
                }
            }
            Op::Compact { pick } => s.compact(m.point(pick)).unwrap(),
            Op::Install { above, pick } => {
                tag += 1;
                let at = if above {
                    m.last() + 1 + (pick % 5) as i64
                } else {
                    m.point(pick)
                };
                let sn = Snapshot {
                    zxid: at,
                    data: Bytes::from(format!("installed {tag}")),
                };
                s.install_snapshot(sn.clone()).unwrap();
                m.entries.clear();
                m.snap = Some(sn);
            }
            Op::Reopen => s = reopen(s),
        }
        check_against(&s, &m, probes)?;
    }
    let s = reopen(s);
    check_against(&s, &m, probes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn filelog_agrees_with_the_model_across_reopens(
        ops in prop::collection::vec(op(), 1..40),
        probes in prop::collection::vec(any::<u32>(), 4),
        seg in 150u64..2_000,
        prealloc in prop::sample::select(vec![0u64, 64, 300, 4096]),
    ) {
        let t = tempfile::tempdir().unwrap();
        let opts = FileLogOptions { segment_bytes: seg, prealloc_bytes: prealloc };
        let log = FileLog::open_with(t.path(), opts).unwrap();
        let dir = t.path().to_path_buf();
        run_model(log, &ops, &probes, move |l| {
            drop(l);
            FileLog::open_with(&dir, opts).unwrap()
        })?;
    }

    #[test]
    fn memlog_agrees_with_the_model_across_crashes(
        ops in prop::collection::vec(op(), 1..60),
        probes in prop::collection::vec(any::<u32>(), 4),
    ) {
        run_model(MemLog::new(), &ops, &probes, |mut m| {
            m.crash();
            m
        })?;
    }
}
