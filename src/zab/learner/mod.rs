//! The learner state machine (follower or observer): one instance per
//! FOLLOWING/OBSERVING term. Split by stage: `handshake` (connect policy,
//! L1), `syncing` (L2, L3 up to UPTODATE, and the broadcast packets) and
//! `log` (the ordered log pipeline, L4 acknowledgements, delivery).

mod handshake;
mod log;
mod syncing;

use super::snapshot::SnapAssembly;
use super::types::{
    at, Entry, Mode, Packet, PersistTarget, Persisted, ProtocolViolation, SkippedSnapshot,
    StepDown, ZabConfig, ZabExit, ZabPhase,
};
use crate::wire::zab::QuorumPacket;
use crate::wire::WireError;
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::Duration;

/// What the learner asks its runtime to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnerAction {
    /// Dial the leader's quorum port (attempt `attempt`, counting from 0;
    /// multi-address leaders: use address `attempt % n`), giving up after
    /// `timeout` → [`Learner::connected`] or [`Learner::connect_failed`].
    Connect {
        /// Attempt number.
        attempt: u32,
        /// What is left of the `initLimit × tickTime` budget.
        timeout: Duration,
    },
    /// Write this packet to the leader.
    Send(Packet),
    /// Write `acceptedEpoch` durably → [`Learner::accepted_epoch_durable`].
    PersistAcceptedEpoch(i64),
    /// Write `currentEpoch` durably → [`Learner::current_epoch_durable`].
    PersistCurrentEpoch(i64),
    /// Store mode: append (strictly increasing zxids) → [`Learner::log_durable`].
    AppendLog(Vec<Entry>),
    /// Store mode: drop every log entry after `after` → [`Learner::log_truncated`].
    TruncateLog {
        /// The last zxid kept.
        after: i64,
    },
    /// Store mode: replace the log and the state machine with the snapshot
    /// at `zxid` (the state machine's applied zxid becomes `zxid`) →
    /// [`Learner::snapshot_installed`].
    InstallSnapshot {
        /// The snapshot's zxid.
        zxid: i64,
        /// The embedder's snapshot bytes.
        data: Bytes,
    },
    /// The role's phase changed.
    Phase(ZabPhase),
    /// Interop mode: the zxid this peer advertises in its votes from now on
    /// (TRUNC and SNAP from a Java leader move it, as before).
    SetVoteZxid(i64),
    /// Store mode: apply every log entry with zxid ≤ `up_to` not applied
    /// yet, reading them from the log (they are durable). At UPTODATE, and
    /// later whenever entries the learner's log held before this sync
    /// commit (they are in the log, not in memory). Must finish before the
    /// next `Deliver` is applied.
    ApplyFromLog {
        /// The last zxid to apply.
        up_to: i64,
    },
    /// Store mode, hot path: newly committed (and locally durable) entries
    /// in zxid order, from memory.
    Deliver(Vec<Entry>),
    /// The role is over: close the connection, drop the machine, report the
    /// reason (the runtime logs it). Always the last action.
    Exit(ZabExit),
}

/// Follower or observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LearnerRole {
    /// Sends FOLLOWERINFO, ACKs proposals, counts toward quorums if a voter.
    Follower,
    /// Sends OBSERVERINFO, never ACKs proposals, never counts.
    Observer,
}

/// The learner's progress through a term, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LearnerStage {
    /// Dialling the leader.
    Connecting,
    /// FOLLOWERINFO sent.
    AwaitingLeaderInfo,
    /// acceptedEpoch write outstanding (no ACKEPOCH yet).
    PersistingAcceptedEpoch,
    /// ACKEPOCH sent: DIFF/TRUNC/SNAP, proposals, until NEWLEADER.
    Syncing,
    /// NEWLEADER received: waiting for the sync's log writes, then for
    /// currentEpoch; its ACK goes out after both.
    NewLeader,
    /// NEWLEADER ACKed; waiting for UPTODATE.
    AwaitingUpToDate,
    /// UPTODATE received.
    Broadcast,
    /// The role ended.
    Exited,
}

/// One log action not yet completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogOp {
    seq: u64,
    kind: OpKind,
    /// The log's last zxid once this action is done.
    zxid: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Append,
    Truncate,
    Install,
}

/// The learner of one term. See the module docs of [`crate::zab`].
#[derive(Debug)]
pub struct Learner {
    cfg: ZabConfig,
    leader_sid: i64,
    role: LearnerRole,
    stage: LearnerStage,
    accepted_epoch: i64,
    current_epoch: i64,
    /// The epoch of LEADERINFO (0 before).
    new_epoch: i64,
    /// ACKEPOCH's epoch field while acceptedEpoch is being written.
    ack_epoch_data: i32,
    attempts: u32,
    dialing: bool,
    retry_at: Option<Duration>,
    connect_deadline: Duration,
    last_heard: Duration,
    read_limit: Duration,
    /// We owe the next packet (waiting on our own writes): no read timeout,
    /// as Java's socket timeout only runs while it reads.
    read_paused: bool,
    durable_zxid: i64,
    /// The log's last zxid once every requested action is done.
    position: i64,
    ops: VecDeque<LogOp>,
    next_seq: u64,
    /// The seq of the last log action requested before NEWLEADER.
    newleader_seq: u64,
    sync_started: bool,
    snap: Option<SnapAssembly>,
    /// Interop SNAP: the runtime is skipping the Java stream.
    awaiting_skip: Option<i64>,
    newleader_zxid: i64,
    current_requested: bool,
    /// The NEWLEADER ACK is out.
    newleader_acked: bool,
    /// The log position when NEWLEADER arrived.
    sync_end: i64,
    commit_zxid: i64,
    applied_zxid: i64,
    /// Received entries not yet delivered (their data, for the hot path).
    retained: VecDeque<Entry>,
    acked_zxid: i64,
    /// Replies held back until the NEWLEADER ACK is out (a Java leader's
    /// handler reads that ACK first and drops a learner that sends anything
    /// else before it).
    deferred: Vec<Packet>,
    out: Vec<LearnerAction>,
    exit: Option<ZabExit>,
}

impl Learner {
    /// Starts following (or observing) `leader_sid` from the durable state
    /// the runtime read. The first actions are `Phase(Discovery)` and
    /// `Connect { attempt: 0, .. }`.
    pub fn start(
        cfg: ZabConfig,
        leader_sid: i64,
        role: LearnerRole,
        persisted: Persisted,
        now: Duration,
    ) -> (Learner, Vec<LearnerAction>) {
        let init = cfg.init_timeout();
        let mut l = Learner {
            leader_sid,
            role,
            stage: LearnerStage::Connecting,
            accepted_epoch: persisted.accepted_epoch,
            current_epoch: persisted.current_epoch,
            new_epoch: 0,
            ack_epoch_data: 0,
            attempts: 0,
            dialing: false,
            retry_at: None,
            connect_deadline: at(now, init),
            last_heard: now,
            read_limit: init,
            read_paused: false,
            durable_zxid: persisted.last_zxid,
            position: persisted.last_zxid,
            ops: VecDeque::new(),
            next_seq: 0,
            newleader_seq: 0,
            sync_started: false,
            snap: None,
            awaiting_skip: None,
            newleader_zxid: 0,
            current_requested: false,
            newleader_acked: false,
            sync_end: 0,
            commit_zxid: 0,
            applied_zxid: 0,
            retained: VecDeque::new(),
            acked_zxid: 0,
            deferred: Vec::new(),
            out: Vec::new(),
            exit: None,
            cfg,
        };
        ::log::info!("{} - LEADER sid {leader_sid}: discovery", l.role_name());
        l.out.push(LearnerAction::Phase(ZabPhase::Discovery));
        l.dial(now);
        let out = std::mem::take(&mut l.out);
        (l, out)
    }

    fn run(&mut self, f: impl FnOnce(&mut Self)) -> Vec<LearnerAction> {
        if self.exit.is_none() {
            f(self);
        }
        std::mem::take(&mut self.out)
    }

    /// `"FOLLOWING"` or `"OBSERVING"`, for log lines.
    fn role_name(&self) -> &'static str {
        match self.role {
            LearnerRole::Follower => "FOLLOWING",
            LearnerRole::Observer => "OBSERVING",
        }
    }

    fn is_follower(&self) -> bool {
        self.role == LearnerRole::Follower
    }

    fn store(&self) -> bool {
        self.cfg.mode == Mode::Store
    }

    /// The dial asked for by the last `Connect` succeeded.
    pub fn connected(&mut self, now: Duration) -> Vec<LearnerAction> {
        self.run(|l| l.on_connected(now))
    }

    /// The dial asked for by the last `Connect` failed.
    pub fn connect_failed(&mut self, now: Duration, error: &str) -> Vec<LearnerAction> {
        self.run(|l| l.on_connect_failed(now, error))
    }

    /// Bytes arrived from the leader (possibly not a whole packet yet):
    /// restarts the read timeout, as Java's per-read socket timeout does.
    /// Optional; [`Learner::packet`] does the same.
    pub fn heard(&mut self, now: Duration) -> Vec<LearnerAction> {
        self.run(|l| l.last_heard = l.last_heard.max(now))
    }

    /// A packet arrived from the leader. In interop mode, after a SNAP
    /// packet the runtime's reader must skip the Java snapshot stream that
    /// follows it and report [`Learner::snapshot_skipped`] before decoding
    /// the next packet (see [`crate::zab::raw_snapshot_follows`]).
    pub fn packet(&mut self, now: Duration, p: QuorumPacket) -> Vec<LearnerAction> {
        self.run(|l| {
            l.last_heard = l.last_heard.max(now);
            l.on_packet(now, p)
        })
    }

    /// Interop: the Java snapshot stream after SNAP was read to its
    /// signature.
    pub fn snapshot_skipped(&mut self, now: Duration, s: SkippedSnapshot) -> Vec<LearnerAction> {
        self.run(|l| l.on_snapshot_skipped(now, s))
    }

    /// The runtime's reader hit bytes it cannot decode (a bad jute length,
    /// a broken snapshot stream): the role ends with a protocol error.
    pub fn stream_error(&mut self, now: Duration, e: WireError) -> Vec<LearnerAction> {
        self.run(|l| {
            let v = if l.awaiting_skip.is_some() {
                ProtocolViolation::Snapshot(e)
            } else {
                ProtocolViolation::Wire(e)
            };
            l.finish(now, ZabExit::Protocol(v))
        })
    }

    /// The leader closed the connection.
    pub fn closed(&mut self, now: Duration) -> Vec<LearnerAction> {
        self.run(|l| {
            if l.stage > LearnerStage::Connecting {
                l.finish(now, ZabExit::LeaderSocketClosed)
            }
        })
    }

    /// Time is `now`: connect retries and the read timeout.
    pub fn timer(&mut self, now: Duration) -> Vec<LearnerAction> {
        self.run(|l| l.on_timer(now))
    }

    /// The `PersistAcceptedEpoch(epoch)` write is durable.
    pub fn accepted_epoch_durable(&mut self, now: Duration, epoch: i64) -> Vec<LearnerAction> {
        self.run(|l| l.on_accepted_durable(now, epoch))
    }

    /// The `PersistCurrentEpoch(epoch)` write is durable.
    pub fn current_epoch_durable(&mut self, now: Duration, epoch: i64) -> Vec<LearnerAction> {
        self.run(|l| l.on_current_durable(now, epoch))
    }

    /// Every log action up to the `AppendLog` of `zxid` is durable (one
    /// completion may cover many appends).
    pub fn log_durable(&mut self, now: Duration, zxid: i64) -> Vec<LearnerAction> {
        self.run(|l| l.on_log_done(now, OpKind::Append, zxid))
    }

    /// The `TruncateLog { after: zxid }` (and everything before it) is durable.
    pub fn log_truncated(&mut self, now: Duration, zxid: i64) -> Vec<LearnerAction> {
        self.run(|l| l.on_log_done(now, OpKind::Truncate, zxid))
    }

    /// The `InstallSnapshot { zxid, .. }` (and everything before it) is durable.
    pub fn snapshot_installed(&mut self, now: Duration, zxid: i64) -> Vec<LearnerAction> {
        self.run(|l| l.on_log_done(now, OpKind::Install, zxid))
    }

    /// A write failed: the role ends with [`ZabExit::Persist`].
    pub fn persist_failed(
        &mut self,
        now: Duration,
        what: PersistTarget,
        error: &str,
    ) -> Vec<LearnerAction> {
        self.run(|l| {
            l.finish(
                now,
                ZabExit::Persist {
                    what,
                    error: error.to_string(),
                },
            )
        })
    }

    /// The runtime ends the role.
    pub fn step_down(&mut self, now: Duration, why: StepDown) -> Vec<LearnerAction> {
        self.run(|l| l.finish(now, why.exit()))
    }

    fn finish(&mut self, _now: Duration, reason: ZabExit) {
        if self.exit.is_some() {
            return;
        }
        self.stage = LearnerStage::Exited;
        self.out.push(LearnerAction::Exit(reason.clone()));
        self.exit = Some(reason);
    }

    fn violation(&mut self, now: Duration, v: ProtocolViolation) {
        self.finish(now, ZabExit::Protocol(v));
    }

    fn invalid(&mut self, now: Duration, text: String) {
        self.violation(now, ProtocolViolation::Invalid(text));
    }

    fn unexpected(&mut self, now: Duration, got: i32, during: &'static str) {
        self.violation(now, ProtocolViolation::Unexpected { got, during });
    }

    fn send(&mut self, packet_type: i32, zxid: i64, data: Option<Bytes>) {
        self.out
            .push(LearnerAction::Send(Packet::new(packet_type, zxid, data)));
    }

    fn on_timer(&mut self, now: Duration) {
        if self.stage == LearnerStage::Connecting {
            return self.connect_timer(now);
        }
        if self.read_paused {
            return;
        }
        let silent = now.saturating_sub(self.last_heard);
        if silent >= self.read_limit {
            let ms = silent.as_millis() as u64;
            // Only a leader in broadcast owes us a PING every half tick:
            // before that it may legitimately say nothing while it waits
            // for its quorum (FOLLOWERINFO, ACKEPOCH, NEWLEADER ACKs), so
            // the silence says nothing about whether it is alive, and the
            // election must not count it Down (`LeaderSilent` does).
            let exit = match self.stage {
                LearnerStage::Broadcast => ZabExit::LeaderSilent { ms },
                LearnerStage::AwaitingUpToDate => ZabExit::LeaderNotReady {
                    ms,
                    awaiting: "UPTODATE",
                },
                LearnerStage::AwaitingLeaderInfo => ZabExit::LeaderNotReady {
                    ms,
                    awaiting: "LEADERINFO",
                },
                _ => ZabExit::LeaderNotReady {
                    ms,
                    awaiting: "the sync",
                },
            };
            self.finish(now, exit);
        }
    }

    /// The earliest time at which [`Learner::timer`] has something to do;
    /// `None` when only an input can move the machine (or once exited).
    pub fn next_deadline(&self) -> Option<Duration> {
        match self.stage {
            LearnerStage::Exited => None,
            LearnerStage::Connecting => Some(self.retry_at.unwrap_or(self.connect_deadline)),
            _ if self.read_paused => None,
            _ => Some(at(self.last_heard, self.read_limit)),
        }
    }

    /// The stage of the term.
    pub fn stage(&self) -> LearnerStage {
        self.stage
    }

    /// The phase as `zk_peer_state` reports it.
    pub fn phase(&self) -> ZabPhase {
        match self.stage {
            LearnerStage::Connecting
            | LearnerStage::AwaitingLeaderInfo
            | LearnerStage::PersistingAcceptedEpoch => ZabPhase::Discovery,
            LearnerStage::Syncing | LearnerStage::NewLeader | LearnerStage::AwaitingUpToDate => {
                ZabPhase::Synchronization
            }
            LearnerStage::Broadcast | LearnerStage::Exited => ZabPhase::Broadcast,
        }
    }

    /// The leader's epoch from LEADERINFO, once received.
    pub fn epoch(&self) -> Option<i64> {
        (self.new_epoch > 0).then_some(self.new_epoch)
    }

    /// The leader this learner follows.
    pub fn leader_sid(&self) -> i64 {
        self.leader_sid
    }

    /// Follower or observer.
    pub fn role(&self) -> LearnerRole {
        self.role
    }

    /// acceptedEpoch as the machine believes it durable.
    pub fn accepted_epoch(&self) -> i64 {
        self.accepted_epoch
    }

    /// currentEpoch as the machine believes it durable.
    pub fn current_epoch(&self) -> i64 {
        self.current_epoch
    }

    /// Store: the log's last durable zxid as completions said (the vote's
    /// zxid). Interop: the vote zxid (moved by TRUNC/SNAP).
    pub fn durable_zxid(&self) -> i64 {
        self.durable_zxid
    }

    /// The log's last zxid once every requested action completes.
    pub fn last_zxid(&self) -> i64 {
        self.position
    }

    /// The highest zxid known committed.
    pub fn commit_zxid(&self) -> i64 {
        self.commit_zxid
    }

    /// The highest zxid handed to the state machine (`ApplyFromLog`,
    /// `Deliver` or a snapshot install).
    pub fn applied_zxid(&self) -> i64 {
        self.applied_zxid
    }

    /// True once the NEWLEADER ACK was sent (currentEpoch durable and the
    /// synced history durable before it).
    pub fn acked_newleader(&self) -> bool {
        self.newleader_acked
    }

    /// Why the role ended, once it has.
    pub fn exit_reason(&self) -> Option<&ZabExit> {
        self.exit.as_ref()
    }

    /// The mode the machine runs in.
    pub fn mode(&self) -> Mode {
        self.cfg.mode
    }
}
