//! The leader state machine: one instance per leading term (created when
//! the election decides LEADING, dropped when it emits [`LeaderAction::Exit`]).
//! Split by stage: `discovery` (D1, D2, NEWLEADER, UPTODATE, D4, D8),
//! `syncing` (D3) and `broadcast` (D5–D7, D9).

mod broadcast;
mod discovery;
mod syncing;

use super::sync::{LogRead, SnapshotRead};
use super::types::{
    at, ConnId, Entry, Mode, PersistTarget, Persisted, ReqId, RequestError, StepDown, ZabConfig,
    ZabExit, ZabPhase,
};
use crate::wire::zab::{self as wz, QuorumPacket};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

pub use discovery::learner_ahead;

/// What the leader asks its runtime to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderAction {
    /// Write this packet to learner connection `conn` (packets to one
    /// connection keep their order).
    Send {
        /// The learner connection.
        conn: ConnId,
        /// The packet.
        packet: super::types::Packet,
    },
    /// Close the learner connection (refused, silent, or broken); `reason`
    /// is already logged by the machine. No `learner_closed` is needed
    /// afterwards (one is ignored).
    Close {
        /// The learner connection.
        conn: ConnId,
        /// Why, for the runtime's debug log.
        reason: String,
    },
    /// Write `acceptedEpoch` durably → [`Leader::accepted_epoch_durable`].
    PersistAcceptedEpoch(i64),
    /// Write `currentEpoch` durably → [`Leader::current_epoch_durable`].
    PersistCurrentEpoch(i64),
    /// Store mode: append these entries (strictly increasing zxids) to the
    /// log → [`Leader::log_durable`]. Log actions run in emission order;
    /// consecutive appends may share one fsync.
    AppendLog(Vec<Entry>),
    /// Store mode: read the leader's log for a learner at `after` and
    /// answer [`Leader::log_read`] (or [`Leader::read_failed`]). A log
    /// action: it runs after every earlier `AppendLog` and must see their
    /// entries (durable or not), i.e. its answer reaches at least
    /// `through`, the last zxid appended when it was emitted.
    ReadLog {
        /// The learner connection.
        conn: ConnId,
        /// The learner's last zxid (its ACKEPOCH zxid).
        after: i64,
        /// The answer must include every entry up to this zxid.
        through: i64,
    },
    /// Store mode: the log was compacted past the learner: read the
    /// embedder's latest snapshot and the log after it, and answer
    /// [`Leader::snapshot_read`] (or [`Leader::read_failed`]). Same ordering
    /// as `ReadLog`.
    ReadSnapshot {
        /// The learner connection.
        conn: ConnId,
        /// The answer's entries must reach at least this zxid.
        through: i64,
    },
    /// The role's phase changed (drives `zk_peer_state`, the served Mode).
    Phase(ZabPhase),
    /// A quorum ACKed NEWLEADER: the leader is established in `epoch`
    /// (Role::Leading; the election Driver's "Zab established" fact).
    Established {
        /// The new epoch.
        epoch: i64,
    },
    /// Interop mode: the zxid this peer advertises in its votes from now
    /// on (`newEpoch << 32` once established, as Java's
    /// lastProcessedZxid). Store mode votes with the log's last durable
    /// zxid and never sees this.
    SetVoteZxid(i64),
    /// Store mode, once, at establishment: the embedder's state machine
    /// applies every log entry with zxid ≤ `up_to` it has not applied yet,
    /// reading them from its log (the leader's whole history is committed
    /// now). Must finish before the next `Deliver` is applied.
    ApplyFromLog {
        /// The last zxid to apply.
        up_to: i64,
    },
    /// Store mode, hot path: newly committed entries, in zxid order, for
    /// the embedder's state machine (from memory, no log read).
    Deliver(Vec<Entry>),
    /// A `propose` finished: `Ok(zxid)` once a quorum, the leader included,
    /// has it durable and everything before it committed (emitted after the
    /// `Deliver` that carries it, and in zxid order).
    ProposeDone {
        /// The request.
        req: ReqId,
        /// The committed zxid, or why not.
        result: Result<i64, RequestError>,
    },
    /// A `read_barrier` finished: `Ok(commit zxid when it was asked)` once a
    /// quorum answered a PING sent after the request.
    BarrierDone {
        /// The request.
        req: ReqId,
        /// The commit zxid at the request, or why not.
        result: Result<i64, RequestError>,
    },
    /// The term is over: close every learner connection, drop the machine,
    /// report the reason to the election Driver (the runtime logs it:
    /// "LEADING: leaving the role: {reason}"). Always the last action.
    Exit(ZabExit),
}

/// The leader's progress through a term, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LeaderStage {
    /// Waiting for a quorum of FOLLOWERINFO to fix the new epoch.
    Discovery,
    /// Epoch fixed, acceptedEpoch write outstanding (no LEADERINFO yet).
    PersistingAcceptedEpoch,
    /// LEADERINFO sent; waiting for a quorum of ACKEPOCH.
    AwaitingEpochAcks,
    /// currentEpoch write outstanding (no NEWLEADER yet).
    PersistingCurrentEpoch,
    /// NEWLEADER sent; waiting for a quorum of NEWLEADER ACKs.
    AwaitingNewLeaderAcks,
    /// Established.
    Broadcast,
    /// The term ended.
    Exited,
}

/// Where one learner connection is, from the leader's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LearnerStep {
    /// Connected; waiting for FOLLOWERINFO/OBSERVERINFO.
    AwaitInfo,
    /// LearnerInfo accepted; LEADERINFO waits for the epoch to be durable.
    AwaitEpoch,
    /// LEADERINFO sent; waiting for ACKEPOCH.
    AwaitAckEpoch,
    /// Store mode: `ReadLog` outstanding.
    ReadingLog,
    /// Store mode: `ReadSnapshot` outstanding.
    ReadingSnapshot,
    /// Sync packets sent; NEWLEADER waits for currentEpoch to be durable.
    AwaitNewLeaderSend,
    /// NEWLEADER sent; waiting for its ACK.
    AwaitNewLeaderAck,
    /// NEWLEADER ACKed; UPTODATE waits for establishment.
    AwaitEstablished,
    /// UPTODATE sent: pings, proposals and commits flow.
    Broadcast,
}

impl LearnerStep {
    /// Steps in which the learner owes us a packet, so its deadline runs
    /// (in the others we owe it one).
    fn reads(self) -> bool {
        matches!(
            self,
            LearnerStep::AwaitInfo
                | LearnerStep::AwaitAckEpoch
                | LearnerStep::AwaitNewLeaderAck
                | LearnerStep::Broadcast
        )
    }
}

/// A learner connection.
#[derive(Debug, Clone)]
struct Peer {
    sid: Option<i64>,
    observer: bool,
    /// FOLLOWERINFO from a voting member: counts toward quorums.
    voter: bool,
    step: LearnerStep,
    deadline: Option<Duration>,
    /// `initLimit` until the NEWLEADER ACK, then `syncLimit`.
    limit: Duration,
    /// Its ACKEPOCH zxid.
    learner_zxid: i64,
    /// Sync packets sent: live proposals, commits and informs reach it.
    forwarding: bool,
    /// The last zxid sent to it (PROPOSAL or INFORM).
    last_sent: i64,
    /// `last_sent` when NEWLEADER went out: its ACK says all of it is
    /// durable under the new currentEpoch.
    newleader_cover: i64,
    /// Cumulative acknowledgement (followers, after their NEWLEADER ACK).
    acked: i64,
    /// Rounds of the PINGs sent and not yet answered, oldest first.
    pings: VecDeque<u64>,
    /// Round of the last PING it answered.
    answered_round: u64,
    /// Outstanding read's `through`.
    read_through: i64,
    requests_dropped: u64,
    /// How it was synced, for the NEWLEADER log line.
    sync_summary: String,
}

impl Peer {
    fn new(now: Duration, limit: Duration) -> Peer {
        Peer {
            sid: None,
            observer: false,
            voter: false,
            step: LearnerStep::AwaitInfo,
            deadline: Some(at(now, limit)),
            limit,
            learner_zxid: 0,
            forwarding: false,
            last_sent: 0,
            newleader_cover: 0,
            acked: 0,
            pings: VecDeque::new(),
            answered_round: 0,
            read_through: 0,
            requests_dropped: 0,
            sync_summary: String::new(),
        }
    }

    fn enter(&mut self, step: LearnerStep, now: Duration) {
        self.step = step;
        self.touch(now);
    }

    /// Every packet from the learner restarts its deadline (as in Java).
    fn touch(&mut self, now: Duration) {
        self.deadline = self.step.reads().then(|| at(now, self.limit));
    }

    fn sid_text(&self) -> String {
        self.sid.map_or_else(|| "?".to_string(), |s| s.to_string())
    }
}

/// One proposal of this term kept in memory: uncommitted, or needed by a
/// learner whose log read is outstanding.
#[derive(Debug, Clone)]
struct Pending {
    entry: Entry,
    req: Option<ReqId>,
}

#[derive(Debug, Clone, Copy)]
struct Barrier {
    req: ReqId,
    commit: i64,
    /// The last ping round sent before the request.
    after_round: u64,
}

/// The leader of one term. See the module docs of [`crate::zab`] for the
/// inputs, actions and completions.
#[derive(Debug)]
pub struct Leader {
    cfg: ZabConfig,
    stage: LeaderStage,
    /// 1 + the largest acceptedEpoch seen, until fixed.
    proposed_epoch: i64,
    new_epoch: i64,
    accepted_epoch: i64,
    current_epoch: i64,
    /// (currentEpoch, last zxid) when leading began: founding learners ahead
    /// of it are refused.
    summary: (i64, i64),
    connecting: BTreeSet<i64>,
    epoch_acks: BTreeSet<i64>,
    newleader_acks: BTreeSet<i64>,
    established_by: BTreeSet<i64>,
    stage_deadline: Duration,
    peers: BTreeMap<ConnId, Peer>,
    /// Sids refused for lacking the store marker (logged once each).
    refused_unmarked: BTreeSet<i64>,
    /// The last zxid of the history the term started with.
    initial_last: i64,
    /// The last zxid appended (initial history or this term's proposals).
    last_zxid: i64,
    durable_zxid: i64,
    commit_zxid: i64,
    /// The last zxid counter used in this epoch.
    counter: u32,
    /// This term's entries still needed in memory, in zxid order; the first
    /// `committed_in_recent` are committed.
    recent: VecDeque<Pending>,
    committed_in_recent: usize,
    /// The last zxid dropped from `recent` (0: none).
    trimmed_upto: i64,
    ping_round: u64,
    /// Send times of the PING rounds not yet known to be answered by a
    /// quorum, oldest first (for [`Leader::quorum_confirmed_at`]).
    round_sent: VecDeque<(u64, Duration)>,
    /// The send time of the newest round a quorum of voters answered.
    quorum_confirmed: Option<Duration>,
    next_ping: Option<Duration>,
    next_tick: Option<Duration>,
    /// A read barrier asked for a ping round at this time.
    barrier_due: Option<Duration>,
    barriers: VecDeque<Barrier>,
    out: Vec<LeaderAction>,
    exit: Option<ZabExit>,
    /// zkfle.preferredLeader ([`Leader::set_preferred_leader`]).
    preferred_leader: Option<i64>,
}

impl Leader {
    /// Starts a leading term from the durable state the runtime read. The
    /// first actions are `Phase(Discovery)` and, in a one-voter ensemble,
    /// already the acceptedEpoch write.
    pub fn start(
        cfg: ZabConfig,
        persisted: Persisted,
        now: Duration,
    ) -> (Leader, Vec<LeaderAction>) {
        let me = cfg.my_sid;
        let init = cfg.init_timeout();
        let mut l = Leader {
            stage: LeaderStage::Discovery,
            proposed_epoch: persisted.accepted_epoch.saturating_add(1),
            new_epoch: 0,
            accepted_epoch: persisted.accepted_epoch,
            current_epoch: persisted.current_epoch,
            summary: (persisted.current_epoch, persisted.last_zxid),
            connecting: BTreeSet::from([me]),
            epoch_acks: BTreeSet::from([me]),
            newleader_acks: BTreeSet::from([me]),
            established_by: BTreeSet::new(),
            stage_deadline: at(now, init),
            peers: BTreeMap::new(),
            refused_unmarked: BTreeSet::new(),
            initial_last: persisted.last_zxid,
            last_zxid: persisted.last_zxid,
            durable_zxid: persisted.last_zxid,
            commit_zxid: 0,
            counter: 0,
            recent: VecDeque::new(),
            committed_in_recent: 0,
            trimmed_upto: 0,
            ping_round: 0,
            round_sent: VecDeque::new(),
            quorum_confirmed: None,
            next_ping: None,
            next_tick: None,
            barrier_due: None,
            barriers: VecDeque::new(),
            out: Vec::new(),
            exit: None,
            preferred_leader: None,
            cfg,
        };
        log::info!("LEADING - sid {me}: discovery");
        l.out.push(LeaderAction::Phase(ZabPhase::Discovery));
        l.check_discovery_quorum(now);
        let out = std::mem::take(&mut l.out);
        (l, out)
    }

    /// Runs `f` unless the term is over and returns the actions it queued.
    fn run(&mut self, f: impl FnOnce(&mut Self)) -> Vec<LeaderAction> {
        if self.exit.is_none() {
            f(self);
        }
        std::mem::take(&mut self.out)
    }

    /// A learner connected on `conn` (before any of its packets).
    pub fn learner_connected(&mut self, now: Duration, conn: ConnId) -> Vec<LeaderAction> {
        self.run(|l| {
            let limit = l.cfg.init_timeout();
            l.peers.insert(conn, Peer::new(now, limit));
        })
    }

    /// A packet arrived from `conn`.
    pub fn packet(&mut self, now: Duration, conn: ConnId, p: QuorumPacket) -> Vec<LeaderAction> {
        self.run(|l| l.on_packet(now, conn, p))
    }

    /// The learner connection closed (EOF, reset, or undecodable bytes the
    /// runtime's reader gave up on).
    pub fn learner_closed(&mut self, now: Duration, conn: ConnId) -> Vec<LeaderAction> {
        self.run(|l| {
            if let Some(p) = l.peers.remove(&conn) {
                log::warn!(
                    "dropping learner sid {} (connection {conn}, {:?}): learner closed the connection",
                    p.sid_text(),
                    p.step
                );
                l.trim();
            }
            let _ = now;
        })
    }

    /// Time is `now`: stage and learner deadlines, pings, the tick.
    pub fn timer(&mut self, now: Duration) -> Vec<LeaderAction> {
        self.run(|l| l.on_timer(now))
    }

    /// The `PersistAcceptedEpoch(epoch)` write is durable.
    pub fn accepted_epoch_durable(&mut self, now: Duration, epoch: i64) -> Vec<LeaderAction> {
        self.run(|l| l.on_accepted_durable(now, epoch))
    }

    /// The `PersistCurrentEpoch(epoch)` write is durable.
    pub fn current_epoch_durable(&mut self, now: Duration, epoch: i64) -> Vec<LeaderAction> {
        self.run(|l| l.on_current_durable(now, epoch))
    }

    /// Every `AppendLog` entry with zxid ≤ `zxid` is durable (the leader's
    /// own acknowledgement).
    pub fn log_durable(&mut self, now: Duration, zxid: i64) -> Vec<LeaderAction> {
        self.run(|l| {
            let z = zxid.min(l.last_zxid);
            if z > l.durable_zxid {
                l.durable_zxid = z;
                l.try_commit(now);
            }
        })
    }

    /// The answer to `ReadLog { conn, .. }`.
    pub fn log_read(&mut self, now: Duration, conn: ConnId, read: LogRead) -> Vec<LeaderAction> {
        self.run(|l| l.on_log_read(now, conn, read))
    }

    /// The answer to `ReadSnapshot { conn, .. }`.
    pub fn snapshot_read(
        &mut self,
        now: Duration,
        conn: ConnId,
        snap: SnapshotRead,
    ) -> Vec<LeaderAction> {
        self.run(|l| l.on_snapshot_read(now, conn, snap))
    }

    /// A `ReadLog`/`ReadSnapshot` for `conn` failed: that learner is
    /// dropped (it retries), the leader goes on.
    pub fn read_failed(&mut self, now: Duration, conn: ConnId, error: &str) -> Vec<LeaderAction> {
        self.run(|l| {
            if l.peers.contains_key(&conn) {
                l.drop_peer(conn, format!("cannot read the log to sync it: {error}"));
            }
            let _ = now;
        })
    }

    /// A write failed: the term ends with [`ZabExit::Persist`].
    pub fn persist_failed(
        &mut self,
        now: Duration,
        what: PersistTarget,
        error: &str,
    ) -> Vec<LeaderAction> {
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

    /// Store mode: replicate `data`. Answered by a `ProposeDone` (at once
    /// with an error when not established or in interop mode).
    pub fn propose(&mut self, now: Duration, data: Bytes, req: ReqId) -> Vec<LeaderAction> {
        self.propose_batch(now, vec![(data, req)])
    }

    /// Store mode: replicate several entries with one `AppendLog`.
    pub fn propose_batch(
        &mut self,
        now: Duration,
        batch: Vec<(Bytes, ReqId)>,
    ) -> Vec<LeaderAction> {
        self.on_propose(now, batch);
        std::mem::take(&mut self.out)
    }

    /// A linearizable read point: answered by `BarrierDone` once a quorum
    /// answered a PING sent after this call. Asks for a ping round at once
    /// ([`Leader::next_deadline`] becomes `now`); every barrier requested
    /// before the runtime's next `timer` call shares that round.
    pub fn read_barrier(&mut self, now: Duration, req: ReqId) -> Vec<LeaderAction> {
        self.on_read_barrier(now, req);
        std::mem::take(&mut self.out)
    }

    /// zoo.cfg's `zkfle.preferredLeader`. When it names another voter,
    /// the established leader hands leadership to it at the first tick at
    /// which that voter is a synced follower (UPTODATE sent, not silent)
    /// holding every proposal of the term (its ACKs reach the last zxid
    /// proposed, or nothing was proposed since it synced): the term ends
    /// with [`ZabExit::HandedOff`], whose runtime makes this peer a
    /// non-candidate for `initLimit` ticks while the preferred leader, which
    /// then has the best history and wins the election's ties, is elected.
    /// A leader that is the preferred one, or whose preferred leader is
    /// absent, lagging or not a voter, leads on.
    pub fn set_preferred_leader(&mut self, sid: Option<i64>) {
        self.preferred_leader = sid;
    }

    /// The runtime or the embedder ends the term.
    pub fn step_down(&mut self, now: Duration, why: StepDown) -> Vec<LeaderAction> {
        self.run(|l| l.finish(now, why.exit()))
    }

    /// Ends the term: pending requests fail, `Exit` is the last action.
    fn finish(&mut self, _now: Duration, reason: ZabExit) {
        if self.exit.is_some() {
            return;
        }
        self.stage = LeaderStage::Exited;
        let pending: Vec<ReqId> = self
            .recent
            .iter()
            .skip(self.committed_in_recent)
            .filter_map(|p| p.req)
            .collect();
        for req in pending {
            self.out.push(LeaderAction::ProposeDone {
                req,
                result: Err(RequestError::OutcomeUnknown),
            });
        }
        for b in std::mem::take(&mut self.barriers) {
            self.out.push(LeaderAction::BarrierDone {
                req: b.req,
                result: Err(RequestError::TermEnded),
            });
        }
        self.out.push(LeaderAction::Exit(reason.clone()));
        self.exit = Some(reason);
    }

    /// Drops a learner: logs why, asks the runtime to close it.
    fn drop_peer(&mut self, conn: ConnId, reason: String) {
        if let Some(p) = self.peers.remove(&conn) {
            log::warn!(
                "dropping learner sid {} (connection {conn}, {:?}): {reason}",
                p.sid_text(),
                p.step
            );
            self.out.push(LeaderAction::Close { conn, reason });
            self.trim();
        }
    }

    fn send(&mut self, conn: ConnId, packet_type: i32, zxid: i64, data: Option<Bytes>) {
        self.out.push(LeaderAction::Send {
            conn,
            packet: super::types::Packet::new(packet_type, zxid, data),
        });
    }

    fn on_packet(&mut self, now: Duration, conn: ConnId, p: QuorumPacket) {
        let Some(step) = self.peers.get(&conn).map(|x| x.step) else {
            log::debug!(
                "packet {} from closed connection {conn} ignored",
                p.type_name()
            );
            return;
        };
        match (step, p.packet_type) {
            (LearnerStep::AwaitInfo, wz::FOLLOWERINFO | wz::OBSERVERINFO) => {
                self.on_info(now, conn, p)
            }
            (LearnerStep::AwaitAckEpoch, wz::ACKEPOCH) => self.on_ack_epoch(now, conn, p),
            (LearnerStep::AwaitNewLeaderAck, wz::ACK) => self.on_newleader_ack(now, conn, p),
            (LearnerStep::Broadcast | LearnerStep::AwaitEstablished, _) => {
                self.on_synced_packet(now, conn, step, p)
            }
            (step, other) => self.drop_peer(
                conn,
                format!(
                    "refused: unexpected {} in state {step:?}",
                    super::types::type_name(other)
                ),
            ),
        }
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.touch(now);
        }
    }

    fn on_timer(&mut self, now: Duration) {
        if self.stage < LeaderStage::Broadcast && now >= self.stage_deadline {
            let exit = match self.stage {
                LeaderStage::Discovery => ZabExit::DiscoveryTimeout {
                    stage: "no quorum of FOLLOWERINFO",
                },
                LeaderStage::PersistingAcceptedEpoch | LeaderStage::AwaitingEpochAcks => {
                    ZabExit::DiscoveryTimeout {
                        stage: "no quorum of ACKEPOCH",
                    }
                }
                _ => ZabExit::SyncTimeout,
            };
            return self.finish(now, exit);
        }
        let silent: Vec<(ConnId, Duration)> = self
            .peers
            .iter()
            .filter_map(|(c, p)| match p.deadline {
                Some(d) if now >= d => Some((*c, p.limit.saturating_add(now - d))),
                _ => None,
            })
            .collect();
        for (conn, silent_for) in silent {
            self.drop_peer(
                conn,
                format!("learner silent for {} ms", silent_for.as_millis()),
            );
        }
        if self.stage == LeaderStage::Broadcast {
            self.broadcast_timer(now);
        }
    }

    /// The earliest time at which [`Leader::timer`] has something to do;
    /// `None` once exited. The runtime calls `timer(now)` when `now`
    /// reaches it (late calls are fine; nothing is lost).
    pub fn next_deadline(&self) -> Option<Duration> {
        if self.exit.is_some() {
            return None;
        }
        let peers = self.peers.values().filter_map(|p| p.deadline);
        let own = if self.stage == LeaderStage::Broadcast {
            [self.next_ping, self.next_tick, self.barrier_due]
                .into_iter()
                .flatten()
                .min()
        } else {
            Some(self.stage_deadline)
        };
        peers.chain(own).min()
    }

    /// The stage of the term.
    pub fn stage(&self) -> LeaderStage {
        self.stage
    }

    /// The phase as `zk_peer_state` reports it.
    pub fn phase(&self) -> ZabPhase {
        match self.stage {
            LeaderStage::Discovery
            | LeaderStage::PersistingAcceptedEpoch
            | LeaderStage::AwaitingEpochAcks => ZabPhase::Discovery,
            LeaderStage::PersistingCurrentEpoch | LeaderStage::AwaitingNewLeaderAcks => {
                ZabPhase::Synchronization
            }
            LeaderStage::Broadcast => ZabPhase::Broadcast,
            LeaderStage::Exited if !self.established_by.is_empty() => ZabPhase::Broadcast,
            LeaderStage::Exited => ZabPhase::Discovery,
        }
    }

    /// The new epoch once fixed by a FOLLOWERINFO quorum.
    pub fn epoch(&self) -> Option<i64> {
        (self.new_epoch > 0).then_some(self.new_epoch)
    }

    /// True while established (a quorum ACKed NEWLEADER, term not over).
    pub fn is_established(&self) -> bool {
        self.stage == LeaderStage::Broadcast
    }

    /// The sids (the leader included) whose NEWLEADER ACKs established the
    /// term; empty if it never was. For the invariant "an established
    /// leader had a quorum ACK NEWLEADER".
    pub fn established_by(&self) -> &BTreeSet<i64> {
        &self.established_by
    }

    /// acceptedEpoch as the machine believes it durable.
    pub fn accepted_epoch(&self) -> i64 {
        self.accepted_epoch
    }

    /// currentEpoch as the machine believes it durable.
    pub fn current_epoch(&self) -> i64 {
        self.current_epoch
    }

    /// The highest committed zxid (0 before establishment).
    pub fn commit_zxid(&self) -> i64 {
        self.commit_zxid
    }

    /// The last zxid durable in the leader's own log, as completions said.
    pub fn durable_zxid(&self) -> i64 {
        self.durable_zxid
    }

    /// The last zxid appended (proposed).
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Proposals made and not yet committed.
    pub fn outstanding_proposals(&self) -> usize {
        self.recent.len() - self.committed_in_recent
    }

    /// `(connection, sid, step)` of every learner connection.
    pub fn learners(&self) -> Vec<(ConnId, Option<i64>, LearnerStep)> {
        self.peers
            .iter()
            .map(|(c, p)| (*c, p.sid, p.step))
            .collect()
    }

    /// Every learner connection as metrics count them: `(sid, observer,
    /// voter, synced)` where synced means UPTODATE was sent (ZooKeeper's
    /// forwarding learners); sid and kinds are unknown (`None`, false)
    /// until its FOLLOWERINFO/OBSERVERINFO was accepted.
    pub fn learner_kinds(&self) -> Vec<(Option<i64>, bool, bool, bool)> {
        self.peers
            .values()
            .map(|p| (p.sid, p.observer, p.voter, p.step == LearnerStep::Broadcast))
            .collect()
    }

    /// The time (the machine's clock) the leader last sent a PING round
    /// that a quorum of voters, the leader included, has answered: at that
    /// moment a quorum still followed this leader, and each of those
    /// followers restarted its `syncLimit` read timeout no earlier than
    /// that (it received the PING after it was sent). `None` before the
    /// first such round, after the term ended, and always in a one-voter
    /// ensemble (no PINGs; the leader alone is a quorum). The runtime
    /// publishes it so an embedder can bound its staleness and, with a
    /// stated clock-drift margin, derive a read lease.
    pub fn quorum_confirmed_at(&self) -> Option<Duration> {
        if self.exit.is_some() {
            return None;
        }
        self.quorum_confirmed
    }

    /// Voting followers in Broadcast (mntr's `zk_synced_followers`).
    pub fn synced_followers(&self) -> usize {
        self.peers
            .values()
            .filter(|p| p.voter && p.step == LearnerStep::Broadcast)
            .count()
    }

    /// Why the term ended, once it has.
    pub fn exit_reason(&self) -> Option<&ZabExit> {
        self.exit.as_ref()
    }

    /// The mode the machine runs in.
    pub fn mode(&self) -> Mode {
        self.cfg.mode
    }
}
