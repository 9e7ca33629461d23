//! The durability pipeline: ONE thread executes every write the Zab
//! machines ask for — `acceptedEpoch`/`currentEpoch` and the [`LogStore`]'s
//! appends, truncations and snapshot installs — and the log reads that must
//! see them, strictly in the order they were asked (ZAB_SPEC "Persistence
//! is requested, never assumed"), and reports each completion to the role
//! thread that asked.
//!
//! * **Group commit**: consecutive appends waiting in the queue become one
//!   [`LogStore::append`] (one fsync for the batch) and one completion,
//!   `LogDurable(last zxid)`, which covers them all.
//! * **Reads see every earlier write**: a `ReadLog`/`ReadSnapshot` runs after
//!   every append queued before it (the Leader's `through` rule), and the
//!   apply thread's reads for `ApplyFromLog` queue behind the writes too.
//! * **Failure**: a failed write is reported as `Failed` and every later
//!   request of the same role is failed without running, so nothing the
//!   role asked after a lost write can become durable behind its back.
//! * **Sync**: a round trip through the queue; when it returns, every
//!   earlier request is done. The peer uses it before building a vote or a
//!   role's starting state ("wait for the previous role's writes").
//!
//! The pipeline serves the apply thread (reads, snapshots) too; the
//! snapshot it saves is followed by a compaction of the entries it covers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};

use crate::logstore::{self, LogStore, ReadLimit, Snapshot};
use crate::zab::{ConnId, Entry, LogRead, PersistTarget, SnapshotRead};

/// Where epoch writes go (the peer's `EpochFiles`, or a test host).
pub(crate) trait EpochSink {
    /// Makes `acceptedEpoch = e` durable.
    fn write_accepted(&self, e: i64) -> Result<(), String>;
    /// Makes `currentEpoch = e` durable.
    fn write_current(&self, e: i64) -> Result<(), String>;
}

/// A write or ordered read a role asked for.
#[derive(Debug)]
pub(crate) enum IoOp {
    /// `PersistAcceptedEpoch`.
    AcceptedEpoch(i64),
    /// `PersistCurrentEpoch`.
    CurrentEpoch(i64),
    /// `AppendLog`.
    Append(Vec<Entry>),
    /// `TruncateLog { after }`.
    Truncate(i64),
    /// `InstallSnapshot`.
    Install {
        /// The snapshot's zxid.
        zxid: i64,
        /// Its bytes.
        data: Bytes,
    },
    /// The leader's `ReadLog`.
    ReadLog {
        /// For this learner.
        conn: ConnId,
        /// Its last zxid.
        after: i64,
    },
    /// The leader's `ReadSnapshot`.
    ReadSnapshot {
        /// For this learner.
        conn: ConnId,
    },
}

/// A completion for the role that asked.
#[derive(Debug)]
pub(crate) enum IoDone {
    AcceptedEpoch(i64),
    CurrentEpoch(i64),
    /// Every append up to this zxid is durable.
    LogDurable(i64),
    Truncated(i64),
    Installed(i64),
    LogRead(ConnId, LogRead),
    SnapshotRead(ConnId, SnapshotRead),
    ReadFailed(ConnId, String),
    /// A write failed (the role must exit).
    Failed(PersistTarget, String),
}

/// One role request in flight: counted by the [`IoHandle`] that queued it
/// until the pipeline is done with it (dropped after its completion is
/// sent), so the peer can tell "nothing pending" without a round trip
/// through the queue.
///
/// [`IoHandle`]: super::zab::IoHandle
#[derive(Debug, Default)]
pub(crate) struct Ticket(Option<Arc<AtomicUsize>>);

impl Ticket {
    /// Counts one more request in `outstanding` until dropped.
    pub(crate) fn new(outstanding: &Arc<AtomicUsize>) -> Ticket {
        outstanding.fetch_add(1, Ordering::AcqRel);
        Ticket(Some(outstanding.clone()))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(n) = self.0.take() {
            // Release: the request's effects (a durable epoch file) are
            // visible to whoever then sees the count at zero.
            n.fetch_sub(1, Ordering::Release);
        }
    }
}

/// A request to the pipeline.
pub(crate) enum IoMsg<R> {
    /// From a role; the completion goes to `reply`, wrapped by the role's
    /// input type.
    Role {
        op: IoOp,
        reply: Sender<R>,
        ticket: Ticket,
    },
    /// Apply thread: committed entries `(after, up_to]`, at most `limit`.
    ReadCommitted {
        after: i64,
        up_to: i64,
        reply: Sender<Result<Vec<logstore::Entry>, String>>,
    },
    /// Apply thread: the store's snapshot (to restore the state machine).
    ReadSnapshot {
        reply: Sender<Result<Option<Snapshot>, String>>,
    },
    /// Apply thread: keep this snapshot, then drop the entries it covers.
    SaveSnapshot(Snapshot),
    /// Round trip: answered with the log's last durable zxid (`None` without
    /// a store) once every earlier request is done.
    Sync { reply: Sender<Option<i64>> },
}

/// How a completion is wrapped into the asking role's input type.
pub(crate) trait FromIo: Send + 'static {
    fn from_io(done: IoDone) -> Self;
}

/// How much one apply read returns (the apply thread loops).
const APPLY_READ: ReadLimit = ReadLimit {
    max_entries: 4096,
    max_bytes: 16 << 20,
};

/// The pipeline thread's body: runs until every sender is gone, then
/// returns (the caller takes its store back).
pub(crate) fn run<R: FromIo>(
    rx: Receiver<IoMsg<R>>,
    epochs: &dyn EpochSink,
    mut store: Option<&mut dyn LogStore>,
) {
    let mut queue: VecDeque<IoMsg<R>> = VecDeque::new();
    // The reply channel of the last role whose write failed.
    let mut failed: Option<Sender<R>> = None;
    loop {
        if queue.is_empty() {
            match rx.recv() {
                Ok(m) => queue.push_back(m),
                Err(_) => return,
            }
        }
        // Everything already waiting: consecutive appends are one batch.
        while let Ok(m) = rx.try_recv() {
            queue.push_back(m);
        }
        let Some(msg) = queue.pop_front() else {
            continue;
        };
        match msg {
            IoMsg::Role {
                op,
                reply,
                ticket: _ticket,
            } => {
                if failed.as_ref().is_some_and(|f| f.same_channel(&reply)) {
                    let target = target_of(&op);
                    let _ = reply.send(R::from_io(fail_after_failure(op, target)));
                    continue;
                }
                // The tickets of appends folded into this one: released
                // with it, once the batch is durable.
                let mut _folded: Vec<Ticket> = Vec::new();
                let done = match op {
                    IoOp::Append(mut entries) => {
                        // Group commit: take the appends of the same role
                        // queued right behind this one.
                        while let Some(IoMsg::Role {
                            op: IoOp::Append(_),
                            reply: r,
                            ..
                        }) = queue.front()
                        {
                            if !r.same_channel(&reply) {
                                break;
                            }
                            if let Some(IoMsg::Role {
                                op: IoOp::Append(more),
                                ticket,
                                ..
                            }) = queue.pop_front()
                            {
                                entries.extend(more);
                                _folded.push(ticket);
                            }
                        }
                        append(store.as_deref_mut(), entries)
                    }
                    op => execute(op, epochs, store.as_deref_mut()),
                };
                if matches!(done, IoDone::Failed(..)) {
                    failed = Some(reply.clone());
                }
                let _ = reply.send(R::from_io(done));
            }
            IoMsg::ReadCommitted {
                after,
                up_to,
                reply,
            } => {
                let r = match store.as_deref() {
                    Some(s) => s
                        .read_after(after, APPLY_READ)
                        .map(|mut es| {
                            es.retain(|e| e.zxid <= up_to);
                            es
                        })
                        .map_err(|e| e.to_string()),
                    None => Err("no log store".to_string()),
                };
                let _ = reply.send(r);
            }
            IoMsg::ReadSnapshot { reply } => {
                let r = match store.as_deref() {
                    Some(s) => s.snapshot().map_err(|e| e.to_string()),
                    None => Ok(None),
                };
                let _ = reply.send(r);
            }
            IoMsg::SaveSnapshot(snap) => {
                if let Some(s) = store.as_deref_mut() {
                    let zxid = snap.zxid;
                    let r = s.save_snapshot(snap).and_then(|()| s.compact(zxid));
                    match r {
                        Ok(()) => log::info!("snapshot at zxid {zxid:#x} saved, log compacted"),
                        Err(e) => log::warn!("cannot save the snapshot at zxid {zxid:#x}: {e}"),
                    }
                }
            }
            IoMsg::Sync { reply } => {
                let _ = reply.send(store.as_deref().map(|s| s.last_zxid()));
            }
        }
    }
}

fn target_of(op: &IoOp) -> PersistTarget {
    match op {
        IoOp::AcceptedEpoch(_) => PersistTarget::AcceptedEpoch,
        IoOp::CurrentEpoch(_) => PersistTarget::CurrentEpoch,
        IoOp::Install { .. } => PersistTarget::Snapshot,
        _ => PersistTarget::Log,
    }
}

fn fail_after_failure(op: IoOp, target: PersistTarget) -> IoDone {
    let why = "not run: an earlier write of this role failed".to_string();
    match op {
        IoOp::ReadLog { conn, .. } | IoOp::ReadSnapshot { conn } => IoDone::ReadFailed(conn, why),
        _ => IoDone::Failed(target, why),
    }
}

fn no_store(target: PersistTarget) -> IoDone {
    IoDone::Failed(target, "this peer has no log store (interop mode)".into())
}

fn append(store: Option<&mut dyn LogStore>, entries: Vec<Entry>) -> IoDone {
    let Some(store) = store else {
        return no_store(PersistTarget::Log);
    };
    let Some(last) = entries.last().map(|e| e.zxid) else {
        return IoDone::LogDurable(store.last_zxid());
    };
    let batch: Vec<logstore::Entry> = entries
        .into_iter()
        .map(|e| logstore::Entry::new(e.zxid, e.data))
        .collect();
    match store.append(&batch) {
        Ok(()) => IoDone::LogDurable(last),
        Err(e) => IoDone::Failed(PersistTarget::Log, e.to_string()),
    }
}

fn execute(op: IoOp, epochs: &dyn EpochSink, store: Option<&mut dyn LogStore>) -> IoDone {
    match op {
        IoOp::AcceptedEpoch(e) => match epochs.write_accepted(e) {
            Ok(()) => IoDone::AcceptedEpoch(e),
            Err(err) => IoDone::Failed(PersistTarget::AcceptedEpoch, err),
        },
        IoOp::CurrentEpoch(e) => match epochs.write_current(e) {
            Ok(()) => IoDone::CurrentEpoch(e),
            Err(err) => IoDone::Failed(PersistTarget::CurrentEpoch, err),
        },
        IoOp::Append(entries) => append(store, entries),
        IoOp::Truncate(after) => match store {
            None => no_store(PersistTarget::Log),
            Some(s) => match s.truncate_after(after) {
                Ok(()) => IoDone::Truncated(after),
                Err(e) => IoDone::Failed(PersistTarget::Log, e.to_string()),
            },
        },
        IoOp::Install { zxid, data } => match store {
            None => no_store(PersistTarget::Snapshot),
            Some(s) => match s.install_snapshot(Snapshot { zxid, data }) {
                Ok(()) => IoDone::Installed(zxid),
                Err(e) => IoDone::Failed(PersistTarget::Snapshot, e.to_string()),
            },
        },
        IoOp::ReadLog { conn, after } => match store {
            None => IoDone::ReadFailed(conn, "no log store".into()),
            Some(s) => match s.sync_source(after, ReadLimit::UNLIMITED) {
                Ok(src) => IoDone::LogRead(
                    conn,
                    LogRead {
                        prefix: src.prefix,
                        entries: src.entries.into_iter().map(zab_entry).collect(),
                        compacted: src.compacted,
                    },
                ),
                Err(e) => IoDone::ReadFailed(conn, e.to_string()),
            },
        },
        IoOp::ReadSnapshot { conn } => match store {
            None => IoDone::ReadFailed(conn, "no log store".into()),
            Some(s) => match s.snapshot() {
                Ok(Some(snap)) => match s.read_after(snap.zxid, ReadLimit::UNLIMITED) {
                    Ok(entries) => IoDone::SnapshotRead(
                        conn,
                        SnapshotRead {
                            zxid: snap.zxid,
                            data: snap.data,
                            entries: entries.into_iter().map(zab_entry).collect(),
                        },
                    ),
                    Err(e) => IoDone::ReadFailed(conn, e.to_string()),
                },
                Ok(None) => {
                    IoDone::ReadFailed(conn, "the log was compacted but holds no snapshot".into())
                }
                Err(e) => IoDone::ReadFailed(conn, e.to_string()),
            },
        },
    }
}

fn zab_entry(e: logstore::Entry) -> Entry {
    Entry {
        zxid: e.zxid,
        data: e.data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logstore::MemLog;
    use std::cell::RefCell;

    #[derive(Debug)]
    struct Done(IoDone);
    impl FromIo for Done {
        fn from_io(d: IoDone) -> Self {
            Done(d)
        }
    }

    #[derive(Default)]
    struct Epochs(RefCell<Vec<String>>);
    impl EpochSink for Epochs {
        fn write_accepted(&self, e: i64) -> Result<(), String> {
            self.0.borrow_mut().push(format!("accepted={e}"));
            Ok(())
        }
        fn write_current(&self, e: i64) -> Result<(), String> {
            self.0.borrow_mut().push(format!("current={e}"));
            Ok(())
        }
    }

    fn e(z: i64) -> Entry {
        Entry::new(z, vec![z as u8])
    }

    /// Counts what was outstanding when each epoch write ran.
    struct Watching<'a>(&'a AtomicUsize, RefCell<Vec<usize>>);
    impl EpochSink for Watching<'_> {
        fn write_accepted(&self, _: i64) -> Result<(), String> {
            self.1.borrow_mut().push(self.0.load(Ordering::Acquire));
            Ok(())
        }
        fn write_current(&self, _: i64) -> Result<(), String> {
            self.1.borrow_mut().push(self.0.load(Ordering::Acquire));
            Ok(())
        }
    }

    #[test]
    fn a_request_counts_as_outstanding_until_it_is_done() {
        let outstanding = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = crossbeam_channel::unbounded::<IoMsg<Done>>();
        let (rtx, rrx) = crossbeam_channel::unbounded::<Done>();
        for op in [
            IoOp::AcceptedEpoch(2),
            IoOp::Append(vec![e(1)]),
            IoOp::Append(vec![e(2)]),
            IoOp::CurrentEpoch(2),
        ] {
            tx.send(IoMsg::Role {
                op,
                reply: rtx.clone(),
                ticket: Ticket::new(&outstanding),
            })
            .unwrap();
        }
        assert_eq!(outstanding.load(Ordering::Acquire), 4);
        drop(tx);
        let sink = Watching(&outstanding, RefCell::new(Vec::new()));
        let mut log = MemLog::new();
        run(rx, &sink, Some(&mut log));
        // While each epoch write ran, it and everything behind it counted
        // (the two appends were one batch, released together after it).
        assert_eq!(*sink.1.borrow(), vec![4, 1]);
        assert_eq!(outstanding.load(Ordering::Acquire), 0);
        assert_eq!(rrx.try_iter().count(), 3, "two writes and one batch");
    }

    #[test]
    fn queued_appends_share_one_batch_and_reads_see_them() {
        let (tx, rx) = crossbeam_channel::unbounded::<IoMsg<Done>>();
        let (rtx, rrx) = crossbeam_channel::unbounded::<Done>();
        // Everything is queued before the pipeline runs: one batch.
        for z in 1..=5 {
            tx.send(IoMsg::Role {
                op: IoOp::Append(vec![e(z)]),
                reply: rtx.clone(),
                ticket: Ticket::default(),
            })
            .unwrap();
        }
        tx.send(IoMsg::Role {
            op: IoOp::ReadLog {
                conn: ConnId(7),
                after: 2,
            },
            reply: rtx.clone(),
            ticket: Ticket::default(),
        })
        .unwrap();
        tx.send(IoMsg::Role {
            op: IoOp::CurrentEpoch(3),
            reply: rtx.clone(),
            ticket: Ticket::default(),
        })
        .unwrap();
        drop(tx);
        let mut log = MemLog::new();
        let epochs = Epochs::default();
        run(rx, &epochs, Some(&mut log));
        let got: Vec<IoDone> = rrx.try_iter().map(|d| d.0).collect();
        assert!(matches!(got[0], IoDone::LogDurable(5)), "{got:?}");
        match &got[1] {
            IoDone::LogRead(ConnId(7), r) => {
                assert_eq!(r.prefix, 2);
                assert_eq!(
                    r.entries.iter().map(|e| e.zxid).collect::<Vec<_>>(),
                    [3, 4, 5]
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(got[2], IoDone::CurrentEpoch(3)));
        assert_eq!(got.len(), 3);
        assert_eq!(log.syncs(), 1, "one fsync for five appends");
    }

    #[test]
    fn after_a_failed_write_the_role_gets_nothing_more_done() {
        let (tx, rx) = crossbeam_channel::unbounded::<IoMsg<Done>>();
        let (rtx, rrx) = crossbeam_channel::unbounded::<Done>();
        for op in [
            IoOp::Append(vec![e(5)]),
            IoOp::Append(vec![e(4)]), // out of order: fails
            IoOp::CurrentEpoch(2),
        ] {
            tx.send(IoMsg::Role {
                op,
                reply: rtx.clone(),
                ticket: Ticket::default(),
            })
            .unwrap();
            // One message at a time: no batching across the failure.
        }
        drop(tx);
        let mut log = MemLog::new();
        let epochs = Epochs::default();
        run(rx, &epochs, Some(&mut log));
        let got: Vec<IoDone> = rrx.try_iter().map(|d| d.0).collect();
        assert!(
            matches!(got[0], IoDone::Failed(PersistTarget::Log, _)),
            "the batch 5,4 is out of order: {got:?}"
        );
        assert!(matches!(
            got[1],
            IoDone::Failed(PersistTarget::CurrentEpoch, _)
        ));
        assert!(
            epochs.0.borrow().is_empty(),
            "no epoch written after a failure"
        );
    }
}
