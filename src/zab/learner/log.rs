//! The learner's view of its log pipeline: log actions run in emission
//! order, so a completion covers every earlier action. Drives NEWLEADER
//! step (1), rule L4 (ACK only what is durable) and delivery of committed,
//! locally durable entries.

use super::{Learner, LearnerAction, LearnerStage, LogOp, OpKind};
use crate::wire::zab as wz;
use std::time::Duration;

impl Learner {
    pub(super) fn push_op(&mut self, kind: OpKind, zxid: i64) {
        self.ops.push_back(LogOp {
            seq: self.next_seq,
            kind,
            zxid,
        });
        self.next_seq += 1;
        self.position = zxid;
    }

    /// A completion: the matching action and every earlier one are done.
    /// A completion that matches nothing outstanding (late, from another
    /// term, or a runtime slip) is ignored rather than trusted.
    pub(super) fn on_log_done(&mut self, now: Duration, kind: OpKind, zxid: i64) {
        let hit = match kind {
            // `log_durable(z)` covers the appends up to z (the runtime may
            // batch several into one fsync and report the last).
            OpKind::Append => self
                .ops
                .iter()
                .rposition(|op| op.kind == OpKind::Append && op.zxid <= zxid),
            _ => self
                .ops
                .iter()
                .position(|op| op.kind == kind && op.zxid == zxid),
        };
        let Some(i) = hit else {
            ::log::debug!("log completion {kind:?} {zxid:#x} matches no outstanding action");
            return;
        };
        let mut done = None;
        for _ in 0..=i {
            done = self.ops.pop_front();
        }
        if let Some(op) = done {
            self.durable_zxid = op.zxid;
        }
        let _ = now;
        self.newleader_progress();
        self.maybe_ack();
        self.deliver();
    }

    /// L4: a follower ACKs (cumulatively) what is durable, once its
    /// NEWLEADER ACK is out; entries of the sync itself are covered by that
    /// ACK.
    pub(super) fn maybe_ack(&mut self) {
        if !self.store() || !self.is_follower() || !self.newleader_acked {
            return;
        }
        if self.durable_zxid > self.acked_zxid && self.durable_zxid > self.sync_end {
            self.acked_zxid = self.durable_zxid;
            self.send(wz::ACK, self.durable_zxid, None);
        }
    }

    /// Hands the state machine every entry that is committed and durable
    /// here (so the applied state never runs ahead of the log), in order
    /// and without holes. Entries up to the end of the sync are durable in
    /// the log, but only those received in this sync are in memory: a
    /// learner that rejoins a leader with part of the leader's uncommitted
    /// tail already in its own log (DIFF at its last zxid, commit point
    /// below it) applies that part from the log once it commits.
    pub(super) fn deliver(&mut self) {
        if !self.store() || self.stage != LearnerStage::Broadcast {
            return;
        }
        let limit = self.commit_zxid.min(self.durable_zxid);
        let from_log = limit.min(self.sync_end);
        if from_log > self.applied_zxid {
            self.out
                .push(LearnerAction::ApplyFromLog { up_to: from_log });
            self.applied_zxid = from_log;
            while self.retained.front().is_some_and(|e| e.zxid <= from_log) {
                self.retained.pop_front();
            }
        }
        let mut batch = Vec::new();
        while self.retained.front().is_some_and(|e| e.zxid <= limit) {
            if let Some(e) = self.retained.pop_front() {
                batch.push(e);
            }
        }
        if let Some(last) = batch.last() {
            self.applied_zxid = last.zxid;
            self.out.push(LearnerAction::Deliver(batch));
        }
    }
}
