//! A simulated peer process and the executor of its Zab role: a
//! production [`Leader`] or [`Learner`] created on each decision from what
//! the disks hold, whose actions are run here exactly as `src/peer` runs
//! them (packets onto quorum connections, writes into the disk pipelines,
//! state-machine applies, client answers), whose timers are armed from
//! `next_deadline()`, and whose exit ends the role and is reported to the
//! election Driver with the reason mapped as `src/peer/role.rs` maps it.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;

use crate::election::{Decision, Driver, FleConfig, Input, RoleEnd, Vote};
use crate::wire::zab as wz;
use crate::wire::ServerState;
use crate::zab::{
    ConnId, Leader, LeaderAction, Learner, LearnerAction, LearnerRole, Mode, Packet, Persisted,
    ZabConfig, ZabExit, ZabPhase,
};

use super::disk::{Disk, EpochOp, LogOp};
use super::schedule::{us, Ev};
use super::store::Kv;
use super::world::{InjectedBug, World};

/// What one process lifetime heard, for the decision-time invariants.
#[derive(Debug, Clone, Default)]
pub(super) struct Obs {
    pub clock: i64,
    pub heard_round: i64,
    pub best_heard: Option<(i64, Vote)>,
    /// (sender, round, leader) of every LOOKING vote heard. Not only the
    /// latest: ZooKeeper's finalize wait drops non-better notifications
    /// unrecorded, so the tally may count an older vote of the round (even
    /// one from a sender's previous incarnation).
    pub looking: BTreeSet<(i64, i64, i64)>,
    /// (sender, round, leader) of every FOLLOWING/LEADING vote heard.
    pub settled: BTreeSet<(i64, i64, i64)>,
}

/// A leading term.
pub(super) struct Lead {
    pub m: Leader,
    pub timer: Option<Duration>,
    pub decision: Decision,
}

/// A following or observing term.
pub(super) struct Learn {
    pub m: Learner,
    pub timer: Option<Duration>,
    pub leader: i64,
    /// The connection to the leader, once dialled.
    pub conn: Option<ConnId>,
    /// The leader's incarnation at the other end of `conn`.
    pub leader_inc: Option<u32>,
    /// The time budget of the outstanding `Connect`.
    pub connect_timeout: Duration,
}

/// What a peer process is doing.
pub(super) enum Role {
    Dead,
    Looking,
    /// Decided, with Zab roles turned off (FLE alone, the test kit).
    Decided(Decision),
    Leading(Box<Lead>),
    Learning(Box<Learn>),
}

/// One simulated server.
pub(super) struct Peer {
    pub sid: i64,
    pub observer: bool,
    /// The process exists (running or paused).
    pub alive: bool,
    pub stay_dead: bool,
    /// Bumped on each crash: events of an older incarnation are stale.
    pub inc: u32,
    /// SIGSTOPped: its events wait in `held` until it resumes.
    pub paused: bool,
    pub held: Vec<Ev>,
    pub cfg: FleConfig,
    pub zcfg: ZabConfig,
    pub driver: Option<Driver>,
    pub timer: Option<Duration>,
    pub disk: Disk,
    /// Interop: the vote zxid Zab set in memory (`SetVoteZxid`), lost on
    /// a crash, as the runtime's status keeps it.
    pub vote_mem: i64,
    pub role: Role,
    /// Bumped on each role start: completions and timers of an older role
    /// are not given to a newer machine.
    pub role_gen: u64,
    pub obs: Obs,
    /// The key-value state machine (store mode).
    pub kv: Kv,
    /// Every decision of this process's lifetimes, with its time.
    pub decisions: Vec<(Duration, Decision)>,
    /// Started at least once (the test kit's "up").
    pub started: bool,
    /// The last leader this process left for silence: (leader, start of
    /// the silence, when it left).
    pub left_silent: Option<(i64, Duration, Duration)>,
    /// Ground truth of a resignation: the end of its hold-off (set when
    /// the fault injector resigns this peer's leadership).
    pub resigned_until: Option<Duration>,
}

/// `src/peer/role.rs`'s mapping of a Zab exit to the election Driver's
/// role-end fact (`None`: shutdown, which the simulator never asks for).
pub(super) fn role_end(exit: &ZabExit, leader: i64) -> Option<RoleEnd> {
    Some(match exit {
        ZabExit::Shutdown => return None,
        ZabExit::LeaderSilent { ms } => RoleEnd::LeaderSilent {
            leader,
            silent_for: Duration::from_millis(*ms),
        },
        ZabExit::LeaderSocketClosed => RoleEnd::LeaderClosed,
        ZabExit::QuorumLost { .. } => RoleEnd::QuorumLost,
        ZabExit::Resigned { hold_off } | ZabExit::HandedOff { hold_off, .. } => RoleEnd::Resigned {
            hold_off: *hold_off,
        },
        _ => RoleEnd::Other,
    })
}

impl World {
    /// The zxid a peer votes with: the log's last durable zxid (store),
    /// or the embedder's zxid raised by what Zab set in memory (interop).
    pub(super) fn vote_zxid(&self, sid: i64) -> i64 {
        let pp = &self.peers[self.idx(sid)];
        match self.p.mode {
            Mode::Store => pp.disk.last_durable_zxid(),
            Mode::Interop => pp.disk.app_zxid.max(pp.vote_mem),
        }
    }

    fn persisted(&self, sid: i64) -> Persisted {
        let pp = &self.peers[self.idx(sid)];
        Persisted {
            accepted_epoch: pp.disk.accepted,
            current_epoch: pp.disk.current,
            last_zxid: self.vote_zxid(sid),
        }
    }

    /// The election decided: start the role (a Zab machine built from what
    /// the disks hold now; every write of the previous role is done, as
    /// the election only started once they were).
    pub(super) fn start_role(&mut self, sid: i64, d: Decision) {
        let i = self.idx(sid);
        self.peers[i].role_gen += 1;
        if !self.roles {
            self.peers[i].role = Role::Decided(d);
            return;
        }
        let now = self.now;
        let persisted = self.persisted(sid);
        let cfg = self.peers[i].zcfg.clone();
        match d.state {
            ServerState::Leading => {
                let (m, out) = Leader::start(cfg, persisted, now);
                self.peers[i].role = Role::Leading(Box::new(Lead {
                    m,
                    timer: None,
                    decision: d,
                }));
                self.run_leader(sid, out);
            }
            ServerState::Following | ServerState::Observing => {
                let role = if d.state == ServerState::Observing {
                    LearnerRole::Observer
                } else {
                    LearnerRole::Follower
                };
                let leader = d.vote.leader;
                let (m, out) = Learner::start(cfg, leader, role, persisted, now);
                self.peers[i].role = Role::Learning(Box::new(Learn {
                    m,
                    timer: None,
                    leader,
                    conn: None,
                    leader_inc: None,
                    connect_timeout: Duration::ZERO,
                }));
                self.run_learner(sid, out);
            }
            ServerState::Looking => {
                self.peers[i].role = Role::Looking;
            }
        }
    }

    /// Calls the leader machine of `sid` if it still runs role `role`
    /// (`None`: whatever role runs), then executes its actions.
    pub(super) fn leader_call(
        &mut self,
        sid: i64,
        role: Option<u64>,
        f: impl FnOnce(&mut Leader, Duration) -> Vec<LeaderAction>,
    ) -> bool {
        let i = self.idx(sid);
        let now = self.now;
        let pp = &mut self.peers[i];
        if role.is_some_and(|r| r != pp.role_gen) || !pp.alive {
            return false;
        }
        let Role::Leading(l) = &mut pp.role else {
            return false;
        };
        let out = f(&mut l.m, now);
        self.run_leader(sid, out);
        true
    }

    /// [`World::leader_call`] for a learner.
    pub(super) fn learner_call(
        &mut self,
        sid: i64,
        role: Option<u64>,
        f: impl FnOnce(&mut Learner, Duration) -> Vec<LearnerAction>,
    ) -> bool {
        let i = self.idx(sid);
        let now = self.now;
        let pp = &mut self.peers[i];
        if role.is_some_and(|r| r != pp.role_gen) || !pp.alive {
            return false;
        }
        let Role::Learning(l) = &mut pp.role else {
            return false;
        };
        let out = f(&mut l.m, now);
        self.run_learner(sid, out);
        true
    }

    pub(super) fn zab_timer(&mut self, sid: i64, inc: u32, role: u64, at: Duration) {
        let i = self.idx(sid);
        let pp = &mut self.peers[i];
        if pp.inc != inc || pp.role_gen != role {
            return;
        }
        let due = match &mut pp.role {
            Role::Leading(l) if l.timer == Some(at) => {
                l.timer = None;
                1
            }
            Role::Learning(l) if l.timer == Some(at) => {
                l.timer = None;
                2
            }
            _ => 0,
        };
        match due {
            1 => {
                self.leader_call(sid, Some(role), |m, now| m.timer(now));
            }
            2 => {
                self.learner_call(sid, Some(role), |m, now| m.timer(now));
            }
            _ => {}
        }
    }

    /// Arms the role's timer from the machine's next deadline.
    fn rearm(&mut self, sid: i64) {
        let i = self.idx(sid);
        let now = self.now;
        let (inc, role) = (self.peers[i].inc, self.peers[i].role_gen);
        let next = match &mut self.peers[i].role {
            Role::Leading(l) => {
                let d = l.m.next_deadline();
                (d != l.timer).then(|| {
                    l.timer = d;
                    d
                })
            }
            Role::Learning(l) => {
                let d = l.m.next_deadline();
                (d != l.timer).then(|| {
                    l.timer = d;
                    d
                })
            }
            _ => None,
        };
        if let Some(Some(at)) = next {
            self.schedule_at(at.max(now), Ev::ZabTimer { sid, inc, role, at });
        }
    }

    /// Executes a leader's actions in order.
    pub(super) fn run_leader(&mut self, sid: i64, actions: Vec<LeaderAction>) {
        let role = self.peers[self.idx(sid)].role_gen;
        if actions
            .iter()
            .any(|a| matches!(a, LeaderAction::Established { .. }))
        {
            // The establishment's checks see the log before this term adds
            // anything, and its history becomes committed before the
            // actions that apply it run.
            if let Some(LeaderAction::Established { epoch }) = actions
                .iter()
                .find(|a| matches!(a, LeaderAction::Established { .. }))
            {
                self.on_established(sid, *epoch);
            }
        }
        let mut exit = None;
        for a in actions {
            match a {
                LeaderAction::Send { conn, packet } => {
                    if self.bug == Some(InjectedBug::ServeWithoutQuorum)
                        && packet.packet_type == wz::NEWLEADER
                    {
                        self.forge_newleader_ack(conn, packet.zxid);
                    }
                    self.q_send(conn, 0, &packet);
                }
                LeaderAction::Close { conn, reason } => {
                    self.log(|| format!("sid {sid}: closes learner connection {conn}: {reason}"));
                    self.q_close(conn, 0);
                }
                LeaderAction::PersistAcceptedEpoch(e) => {
                    self.epoch_write(sid, EpochOp::Accepted(e), role, false)
                }
                LeaderAction::PersistCurrentEpoch(e) => {
                    self.note_epoch_history(sid, e);
                    self.epoch_write(sid, EpochOp::Current(e), role, false)
                }
                LeaderAction::AppendLog(es) => self.log_action(sid, LogOp::Append(es), role),
                LeaderAction::ReadLog { conn, after, .. } => {
                    self.log_action(sid, LogOp::Read { conn, after }, role)
                }
                LeaderAction::ReadSnapshot { conn, .. } => {
                    self.log_action(sid, LogOp::ReadSnap { conn }, role)
                }
                LeaderAction::Phase(ph) => {
                    self.log(|| format!("sid {sid}: LEADING {ph:?}"));
                    if ph == ZabPhase::Broadcast {
                        self.epoch_established_fact(sid);
                    }
                }
                LeaderAction::Established { epoch } => {
                    self.log(|| format!("sid {sid}: LEADING, established epoch {epoch}"));
                }
                LeaderAction::SetVoteZxid(z) => {
                    let i = self.idx(sid);
                    self.peers[i].vote_mem = z;
                }
                LeaderAction::ApplyFromLog { up_to } => self.apply_from_log(sid, up_to),
                LeaderAction::Deliver(es) => {
                    self.note_committed(sid, &es);
                    self.apply_entries(sid, &es);
                }
                LeaderAction::ProposeDone { req, result } => self.propose_done(sid, req, result),
                LeaderAction::BarrierDone { req, result } => self.barrier_done(sid, req, result),
                LeaderAction::Exit(reason) => exit = Some(reason),
            }
        }
        match exit {
            Some(reason) => self.end_role(sid, reason),
            None => self.rearm(sid),
        }
    }

    /// Executes a learner's actions in order.
    pub(super) fn run_learner(&mut self, sid: i64, actions: Vec<LearnerAction>) {
        let i = self.idx(sid);
        let role = self.peers[i].role_gen;
        let mut exit = None;
        for a in actions {
            match a {
                LearnerAction::Connect { attempt, timeout } => {
                    let leader = match &mut self.peers[i].role {
                        Role::Learning(l) => {
                            l.connect_timeout = timeout;
                            l.leader
                        }
                        _ => continue,
                    };
                    let inc = self.peers[i].inc;
                    let d = self.connect_delay();
                    self.log(|| format!("sid {sid}: dials leader {leader} (attempt {attempt})"));
                    self.schedule(
                        d,
                        Ev::QConnect {
                            learner: sid,
                            inc,
                            role,
                            leader,
                        },
                    );
                }
                LearnerAction::Send(packet) => {
                    self.check_learner_ack(sid, &packet);
                    if let Role::Learning(l) = &self.peers[i].role {
                        if let Some(conn) = l.conn {
                            self.q_send(conn, 1, &packet);
                        }
                    }
                }
                LearnerAction::PersistAcceptedEpoch(e) => {
                    self.epoch_write(sid, EpochOp::Accepted(e), role, true)
                }
                LearnerAction::PersistCurrentEpoch(e) => {
                    self.epoch_write(sid, EpochOp::Current(e), role, true)
                }
                LearnerAction::AppendLog(es) => self.log_action(sid, LogOp::Append(es), role),
                LearnerAction::TruncateLog { after } => {
                    self.stats.truncations += 1;
                    self.log_action(sid, LogOp::Truncate(after), role)
                }
                LearnerAction::InstallSnapshot { zxid, data } => {
                    self.stats.snapshots_installed += 1;
                    self.log_action(sid, LogOp::Install { zxid, data }, role)
                }
                LearnerAction::Phase(ph) => {
                    self.log(|| format!("sid {sid}: LEARNING {ph:?}"));
                    if ph == ZabPhase::Broadcast {
                        self.epoch_established_fact(sid);
                    }
                }
                LearnerAction::SetVoteZxid(z) => self.peers[i].vote_mem = z,
                LearnerAction::ApplyFromLog { up_to } => self.apply_from_log(sid, up_to),
                LearnerAction::Deliver(es) => self.apply_entries(sid, &es),
                LearnerAction::Exit(reason) => {
                    if matches!(reason, ZabExit::EpochRejected { .. }) {
                        self.stats.epoch_rejections += 1;
                    }
                    exit = Some(reason)
                }
            }
        }
        match exit {
            Some(reason) => self.end_role(sid, reason),
            None => self.rearm(sid),
        }
    }

    /// The role reached its broadcast phase: replies to LOOKING askers
    /// carry the epoch from the epoch file, as `role.rs` reads it.
    fn epoch_established_fact(&mut self, sid: i64) {
        let epoch = self.peers[self.idx(sid)].disk.current;
        self.feed(sid, Input::EpochEstablished { epoch });
    }

    /// The role is over: its connections close, the Driver learns why, and
    /// a new election follows once the role's writes are done.
    pub(super) fn end_role(&mut self, sid: i64, reason: ZabExit) {
        let i = self.idx(sid);
        let old = std::mem::replace(&mut self.peers[i].role, Role::Looking);
        let (leader, conns) = match &old {
            Role::Leading(l) => (
                l.decision.vote.leader,
                self.qconns
                    .iter()
                    .filter(|(_, c)| c.leader == sid)
                    .map(|(id, _)| (*id, 0u8))
                    .collect::<Vec<_>>(),
            ),
            Role::Learning(l) => (l.leader, l.conn.map(|c| (c, 1u8)).into_iter().collect()),
            _ => (-1, Vec::new()),
        };
        for (conn, side) in conns {
            self.q_close(conn, side);
        }
        self.log(|| format!("sid {sid}: leaves its role ({reason}), LOOKING"));
        self.mix(0x1ea7e ^ sid as u64);
        self.store_role_ended(sid);
        let reason = match role_end(&reason, leader) {
            // The injected bug: the resignation reaches the Driver as an
            // ordinary role end, so the peer stands again at once.
            Some(RoleEnd::Resigned { .. }) if self.bug == Some(InjectedBug::ResignStands) => {
                Some(RoleEnd::Other)
            }
            r => r,
        };
        if let Some(reason) = reason {
            if let RoleEnd::LeaderSilent { leader, silent_for } = reason {
                let now = self.now;
                self.peers[i].left_silent = Some((leader, now.saturating_sub(silent_for), now));
            }
            self.feed(sid, Input::RoleEnded { reason });
            self.peers[i].timer = None;
            let inc = self.peers[i].inc;
            // The peer loop re-enters lookForLeader after shutting the role
            // down; notifications arriving meanwhile are buffered by Fle.
            let d = us(self.rng.range(0, 3000));
            self.schedule(d, Ev::ElectAgain { sid, inc });
        }
    }

    /// [`InjectedBug::ServeWithoutQuorum`]: the network hands the leader a
    /// NEWLEADER ACK from the learner on `conn` that the learner never
    /// sent.
    fn forge_newleader_ack(&mut self, conn: ConnId, zxid: i64) {
        if !self.qconns.contains_key(&conn) {
            return;
        }
        let forged = Packet::new(wz::ACK, zxid, None);
        let mut bytes = Vec::new();
        forged.encode(&mut bytes);
        self.schedule(
            Duration::ZERO,
            Ev::QDeliver {
                conn,
                dir: 1,
                msg: super::schedule::QMsg::Packet(Bytes::from(bytes)),
            },
        );
    }
}
