//! The apply thread of a store-mode peer: it owns the embedder's
//! [`StateMachine`] and applies committed entries in zxid order, exactly
//! once each, across roles.
//!
//! Its queue carries, in the order the role thread executed the machine's
//! actions: `Deliver` (committed entries from memory: the hot path),
//! `FromLog { up_to }` (committed entries read back from the log through
//! the durability pipeline, at establishment/UPTODATE), `Restore` (after a
//! SNAP install) and request completions. A completion queued after the
//! entries it waits for resolves only once they are applied, which is what
//! makes `propose` mean "applied here" and `read_barrier` mean "this peer's
//! state is at least as new as the commit point".
//!
//! Every `snapshot_every` applied entries it asks the state machine for a
//! snapshot and hands it to the pipeline, which saves it and compacts the
//! log up to it.

use crossbeam_channel::{Receiver, Sender};

use super::durable::{FromIo, IoMsg};
use super::replica::{Completion, ReplicaShared, ReplicationResult};
use crate::logstore::{self, Snapshot};
use crate::zab::Entry;

/// Work for the apply thread, in order.
#[derive(Debug)]
pub(crate) enum ApplyMsg {
    /// Newly committed entries (zxid order).
    Deliver(Vec<Entry>),
    /// Apply every logged entry after the applied zxid up to this one.
    FromLog(i64),
    /// The store installed a snapshot: restore the state machine from it.
    Restore,
    /// Resolve a request once everything queued before is applied.
    Complete(Completion, ReplicationResult),
}

/// The apply thread's state.
pub(crate) struct Applier<'a, R> {
    pub sm: &'a mut dyn crate::peer::replica::StateMachine,
    /// The state machine's applied zxid (`None`: restore from the store
    /// first).
    pub applied: Option<i64>,
    pub io: Sender<IoMsg<R>>,
    pub shared: &'a ReplicaShared,
    pub snapshot_every: u64,
    pub since_snapshot: u64,
}

impl<R: FromIo> Applier<'_, R> {
    /// Runs until the queue's senders are gone; returns the applied zxid.
    pub(crate) fn run(mut self, rx: Receiver<ApplyMsg>) -> Option<i64> {
        if self.applied.is_none() {
            self.restore();
        }
        while let Ok(msg) = rx.recv() {
            match msg {
                ApplyMsg::Deliver(entries) => self.deliver(entries),
                ApplyMsg::FromLog(up_to) => self.apply_from_log(up_to),
                ApplyMsg::Restore => self.restore(),
                ApplyMsg::Complete(done, r) => done.complete(r),
            }
        }
        self.applied
    }

    fn applied(&self) -> i64 {
        self.applied.unwrap_or(0)
    }

    fn deliver(&mut self, entries: Vec<Entry>) {
        let after = self.applied();
        let batch: Vec<logstore::Entry> = entries
            .into_iter()
            .filter(|e| e.zxid > after)
            .map(|e| logstore::Entry::new(e.zxid, e.data))
            .collect();
        self.apply(batch);
    }

    fn apply(&mut self, batch: Vec<logstore::Entry>) {
        let Some(last) = batch.last().map(|e| e.zxid) else {
            return;
        };
        self.sm.apply(&batch);
        self.applied = Some(last);
        self.shared.set_applied(last);
        self.since_snapshot += batch.len() as u64;
        if self.snapshot_every > 0 && self.since_snapshot >= self.snapshot_every {
            self.since_snapshot = 0;
            let data = self.sm.snapshot();
            log::debug!(
                "snapshot of the state machine at zxid {last:#x}: {} bytes",
                data.len()
            );
            let _ = self
                .io
                .send(IoMsg::SaveSnapshot(Snapshot { zxid: last, data }));
        }
    }

    /// Committed entries from the log, in bounded reads.
    fn apply_from_log(&mut self, up_to: i64) {
        loop {
            let after = self.applied();
            if after >= up_to {
                return;
            }
            let (tx, rx) = crossbeam_channel::bounded(1);
            let asked = self.io.send(IoMsg::ReadCommitted {
                after,
                up_to,
                reply: tx,
            });
            let got = match asked.ok().and_then(|()| rx.recv().ok()) {
                Some(r) => r,
                None => return, // the pipeline is gone: shutting down
            };
            match got {
                Ok(entries) if entries.is_empty() => {
                    // Committed entries the log does not hold would be a
                    // broken store; nothing to apply is the safe reading.
                    log::error!(
                        "the log holds no entry after {after:#x} up to the commit point {up_to:#x}"
                    );
                    return;
                }
                Ok(entries) => self.apply(entries),
                Err(e) => {
                    log::error!("cannot read committed entries after {after:#x}: {e}");
                    return;
                }
            }
        }
    }

    /// The store's snapshot replaces the state (at start, and after SNAP).
    fn restore(&mut self) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.io.send(IoMsg::ReadSnapshot { reply: tx }).is_err() {
            return;
        }
        match rx.recv() {
            Ok(Ok(Some(snap))) => {
                if self.applied.is_some_and(|a| a >= snap.zxid) {
                    return;
                }
                self.sm.restore(&snap);
                log::info!(
                    "state machine restored from the snapshot at zxid {:#x}",
                    snap.zxid
                );
                self.applied = Some(snap.zxid);
                self.shared.set_applied(snap.zxid);
                self.since_snapshot = 0;
            }
            Ok(Ok(None)) => {
                if self.applied.is_none() {
                    self.applied = Some(0);
                    self.shared.set_applied(0);
                }
            }
            Ok(Err(e)) => log::error!("cannot read the snapshot to restore: {e}"),
            Err(_) => {}
        }
    }
}
