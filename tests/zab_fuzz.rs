//! Random input sequences for `zab::Leader` and `zab::Learner`, both modes:
//! hostile or mistaken packets, completions early, late, duplicated or
//! matching nothing, timers, closes, requests. No input may panic, and the
//! ordering rules must hold on every action emitted:
//! leader — LEADERINFO after its acceptedEpoch write completed, NEWLEADER
//! and Established after currentEpoch, Deliver/ProposeDone only for durable
//! zxids, every request answered exactly once;
//! learner — ACKEPOCH after a raised acceptedEpoch completed, no ACK before
//! currentEpoch completed, currentEpoch requested only once every log action
//! before NEWLEADER completed, ACK(z)/Deliver only for durable z, nothing
//! applied before UPTODATE.

#[path = "common/zab_drive.rs"]
mod drive;

use bytes::Bytes;
use drive::{cfg_with, leader_info_data, learner_info, z, TICK};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use zkfle::wire::zab::{self as wz, QuorumPacket};
use zkfle::zab::{
    ConnId, Entry, Leader, LeaderAction, Learner, LearnerAction, LearnerRole, LogRead, Mode,
    PersistTarget, Persisted, SkippedSnapshot, SnapshotRead, StepDown,
};

#[derive(Debug, Clone)]
struct Gen {
    kind: u8,
    zxid: u8,
    data: u8,
    who: u8,
    raw_zxid: i64,
    raw: Vec<u8>,
}

fn gen() -> impl Strategy<Value = Gen> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<i64>(),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(kind, zxid, data, who, raw_zxid, raw)| Gen {
            kind,
            zxid,
            data,
            who,
            raw_zxid,
            raw,
        })
}

#[derive(Debug, Clone)]
enum Step {
    Connect(u8),
    Close(u8),
    Packet(Gen),
    /// Complete the oldest outstanding request as the contract says.
    Complete,
    /// A completion that may match nothing.
    Junk(Gen),
    Timer(u16),
    Request(bool),
    Stop,
    /// The packet a well-behaved peer would send next (with a choice among
    /// several), so runs reach sync and broadcast, not just the first
    /// refusal.
    Guided(u8),
}

/// Hostile runs: random packets and completions mixed with well-behaved
/// ones (they mostly end in a refusal or a protocol exit, early).
fn hostile_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0u8..5).prop_map(Step::Connect),
        1 => (0u8..5).prop_map(Step::Close),
        8 => gen().prop_map(Step::Packet),
        6 => Just(Step::Complete),
        1 => gen().prop_map(Step::Junk),
        2 => any::<u16>().prop_map(Step::Timer),
        2 => any::<bool>().prop_map(Step::Request),
        1 => Just(Step::Stop),
        12 => any::<u8>().prop_map(Step::Guided),
    ]
}

/// Cooperative runs: well-behaved peers whose packets, completions and
/// requests interleave at random, and short timer steps, so runs reach
/// synchronization and broadcast.
fn cooperative_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        30 => any::<u8>().prop_map(Step::Guided),
        12 => Just(Step::Complete),
        2 => (0u16..60).prop_map(Step::Timer),
        3 => any::<bool>().prop_map(Step::Request),
    ]
}

fn steps(hostile: bool) -> BoxedStrategy<Vec<Step>> {
    if hostile {
        prop::collection::vec(hostile_step(), 0..120).boxed()
    } else {
        prop::collection::vec(cooperative_step(), 0..200).boxed()
    }
}

fn data_for(g: &Gen, leader_side: bool) -> Option<Vec<u8>> {
    let sid = i64::from(g.who % 5);
    match g.data % 8 {
        0 => None,
        1 => Some(Vec::new()),
        2 if leader_side => Some(learner_info(sid, 0, true)),
        3 if leader_side => Some(learner_info(sid, 0, false)),
        2 => Some(leader_info_data(true)),
        3 => Some(leader_info_data(false)),
        4 => Some(((g.raw.len() % 3) as i32).to_be_bytes().to_vec()),
        5 => Some((g.raw.len() as i64).to_be_bytes().to_vec()),
        _ => Some(g.raw.clone()),
    }
}

fn zxid_for(g: &Gen, epoch: i64, last: i64) -> i64 {
    match g.zxid % 7 {
        0 => 0,
        1 => z(epoch, 0),
        2 => last + 1,
        3 => last,
        4 => z(epoch, i64::from(g.who % 4)),
        5 => z(epoch + 1, 1),
        _ => g.raw_zxid,
    }
}

/// What the leader asked for and the checker completed.
#[derive(Debug, Clone)]
enum LIo {
    Accepted(i64),
    Current(i64),
    Append(i64),
    Read(ConnId, i64),
    Snap(ConnId),
}

struct LeaderRun {
    l: Leader,
    now: Duration,
    mode: Mode,
    io: Vec<LIo>,
    log: Vec<Entry>,
    accepted_done: BTreeSet<i64>,
    current_done: BTreeSet<i64>,
    durable: i64,
    answers: BTreeMap<u64, u32>,
    next_req: u64,
    exited: bool,
}

impl LeaderRun {
    fn check(&mut self, out: Vec<LeaderAction>) {
        assert!(
            !self.exited
                || out.iter().all(|a| matches!(
                    a,
                    LeaderAction::ProposeDone { .. } | LeaderAction::BarrierDone { .. }
                )),
            "actions after Exit: {out:?}"
        );
        for a in out {
            match a {
                LeaderAction::Send { packet, .. } => match packet.packet_type {
                    wz::LEADERINFO => assert!(
                        self.accepted_done.contains(&(packet.zxid >> 32)),
                        "LEADERINFO before acceptedEpoch was durable"
                    ),
                    wz::NEWLEADER => assert!(
                        self.current_done.contains(&(packet.zxid >> 32)),
                        "NEWLEADER before currentEpoch was durable"
                    ),
                    _ => {}
                },
                LeaderAction::Established { epoch } => {
                    assert!(
                        self.current_done.contains(&epoch),
                        "established before currentEpoch"
                    )
                }
                LeaderAction::PersistAcceptedEpoch(e) => self.io.push(LIo::Accepted(e)),
                LeaderAction::PersistCurrentEpoch(e) => {
                    assert!(
                        self.accepted_done.contains(&e),
                        "currentEpoch before acceptedEpoch"
                    );
                    self.io.push(LIo::Current(e))
                }
                LeaderAction::AppendLog(es) => {
                    for e in &es {
                        assert!(self.log.last().map_or(true, |x| x.zxid < e.zxid));
                        self.log.push(e.clone());
                    }
                    if let Some(e) = es.last() {
                        self.io.push(LIo::Append(e.zxid));
                    }
                }
                LeaderAction::ReadLog { conn, after, .. } => self.io.push(LIo::Read(conn, after)),
                LeaderAction::ReadSnapshot { conn, .. } => self.io.push(LIo::Snap(conn)),
                LeaderAction::Deliver(es) => {
                    for e in es {
                        assert!(
                            e.zxid <= self.durable,
                            "delivered {:#x} not durable",
                            e.zxid
                        );
                    }
                }
                LeaderAction::ApplyFromLog { up_to } => assert!(up_to <= self.durable),
                LeaderAction::ProposeDone { req, result } => {
                    if let Ok(z) = result {
                        assert!(z <= self.durable, "acknowledged {z:#x} not durable");
                    }
                    *self.answers.entry(req).or_default() += 1;
                }
                LeaderAction::BarrierDone { req, .. } => *self.answers.entry(req).or_default() += 1,
                LeaderAction::Exit(_) => {
                    assert!(!self.exited, "two exits");
                    self.exited = true;
                }
                _ => {}
            }
        }
        assert!(
            self.answers.values().all(|&n| n <= 1),
            "a request answered twice"
        );
    }

    fn step(&mut self, s: Step) {
        let now = self.now;
        let epoch = self.l.epoch().unwrap_or(1);
        let last = self.l.last_zxid();
        let out = match s {
            Step::Connect(c) => self.l.learner_connected(now, ConnId(c.into())),
            Step::Close(c) => self.l.learner_closed(now, ConnId(c.into())),
            Step::Packet(g) => {
                let t = match g.kind % 8 {
                    0 => wz::FOLLOWERINFO,
                    1 => wz::OBSERVERINFO,
                    2 => wz::ACKEPOCH,
                    3 | 4 => wz::ACK,
                    5 => wz::PING,
                    6 => wz::REQUEST,
                    _ => i32::from(g.raw.first().copied().unwrap_or(0) % 25),
                };
                let p = QuorumPacket::new(t, zxid_for(&g, epoch, last), data_for(&g, true));
                self.l.packet(now, ConnId(u64::from(g.who % 5)), p)
            }
            Step::Complete => {
                if self.io.is_empty() {
                    return;
                }
                let io = self.io.remove(0);
                match io {
                    LIo::Accepted(e) => {
                        self.accepted_done.insert(e);
                        self.l.accepted_epoch_durable(now, e)
                    }
                    LIo::Current(e) => {
                        self.current_done.insert(e);
                        self.l.current_epoch_durable(now, e)
                    }
                    LIo::Append(z) => {
                        self.durable = self.durable.max(z);
                        self.l.log_durable(now, z)
                    }
                    LIo::Read(conn, after) => {
                        let read = LogRead::from_log(&self.log, 0, after);
                        self.l.log_read(now, conn, read)
                    }
                    LIo::Snap(conn) => self.l.snapshot_read(now, conn, SnapshotRead::default()),
                }
            }
            Step::Junk(g) => {
                let conn = ConnId(u64::from(g.who % 5));
                match g.kind % 6 {
                    0 => self.l.accepted_epoch_durable(now, g.raw_zxid),
                    1 => self.l.current_epoch_durable(now, g.raw_zxid),
                    2 => {
                        let read = LogRead {
                            prefix: g.raw_zxid,
                            entries: g
                                .raw
                                .iter()
                                .map(|&b| Entry::new(i64::from(b), Bytes::new()))
                                .collect(),
                            compacted: g.zxid % 3 == 0,
                        };
                        self.l.log_read(now, conn, read)
                    }
                    3 => self.l.read_failed(now, conn, "junk"),
                    4 => self.l.snapshot_read(
                        now,
                        conn,
                        SnapshotRead {
                            zxid: g.raw_zxid,
                            data: Bytes::from(g.raw.clone()),
                            entries: Vec::new(),
                        },
                    ),
                    _ => self.l.persist_failed(now, PersistTarget::Log, "junk"),
                }
            }
            Step::Timer(ms) => {
                self.now += Duration::from_millis(u64::from(ms % 700));
                self.l.timer(self.now)
            }
            Step::Request(propose) => {
                let req = self.next_req;
                self.next_req += 1;
                self.answers.insert(req, 0);
                if propose {
                    self.l.propose(now, Bytes::from_static(b"p"), req)
                } else {
                    self.l.read_barrier(now, req)
                }
            }
            Step::Stop => self.l.step_down(now, StepDown::Shutdown),
            Step::Guided(c) => self.guided(c),
        };
        let _ = self.mode;
        self.check(out);
    }
}

impl LeaderRun {
    /// Learner `2 + c % 3` (sid 4 observes) does what a zkfle learner
    /// would do next.
    fn guided(&mut self, c: u8) -> Vec<LeaderAction> {
        use zkfle::zab::LearnerStep as S;
        let now = self.now;
        let sid = 2 + i64::from(c % 3);
        let conn = ConnId(sid as u64);
        let marked = self.mode == Mode::Store;
        let e = self.l.epoch().unwrap_or(0);
        let Some(step) = self.l.learners().iter().find(|x| x.0 == conn).map(|x| x.2) else {
            return self.l.learner_connected(now, conn);
        };
        let p = match step {
            S::AwaitInfo => {
                let t = if sid == 4 {
                    wz::OBSERVERINFO
                } else {
                    wz::FOLLOWERINFO
                };
                QuorumPacket::new(t, 0, Some(learner_info(sid, 0, marked)))
            }
            S::AwaitAckEpoch => {
                QuorumPacket::new(wz::ACKEPOCH, 0, Some(0i32.to_be_bytes().to_vec()))
            }
            S::AwaitNewLeaderAck => QuorumPacket::new(wz::ACK, z(e, 0), None),
            S::Broadcast if c % 2 == 0 => QuorumPacket::ping_reply(z(e, 0)),
            S::Broadcast | S::AwaitEstablished => {
                let acked = self.l.last_zxid().max(z(e, 0));
                QuorumPacket::new(wz::ACK, acked, None)
            }
            _ => return self.l.timer(now),
        };
        self.l.packet(now, conn, p)
    }
}

fn run_leader(mode: Mode, steps: Vec<Step>) {
    let cfg = cfg_with(1, &[1, 2, 3], &[4], mode);
    let now = Duration::from_secs(1);
    let (l, out) = Leader::start(cfg, Persisted::default(), now);
    let mut r = LeaderRun {
        l,
        now,
        mode,
        io: Vec::new(),
        log: Vec::new(),
        accepted_done: BTreeSet::new(),
        current_done: BTreeSet::new(),
        durable: 0,
        answers: BTreeMap::new(),
        next_req: 1,
        exited: false,
    };
    r.check(out);
    for s in steps {
        r.step(s);
    }
    let out = r.l.step_down(r.now, StepDown::Shutdown);
    r.check(out);
    assert!(
        r.answers.values().all(|&n| n == 1),
        "unanswered requests: {:?}",
        r.answers
    );
}

/// The learner's log actions as the checker tracks them.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Append(i64),
    Truncate(i64),
    Install(i64),
}

struct LearnerRun {
    f: Learner,
    now: Duration,
    mode: Mode,
    initial_accepted: i64,
    accepted_done: BTreeSet<i64>,
    current_done: BTreeSet<i64>,
    leaderinfo_epoch: i64,
    io_epochs: Vec<(bool, i64)>,
    ops: Vec<(Op, bool)>,
    /// How many ops existed when NEWLEADER was fed (first time).
    at_newleader: Option<usize>,
    durable_end: i64,
    uptodate_fed: bool,
    sync_header: bool,
    /// Interop: a SNAP went out, the runtime is skipping its stream.
    skip_pending: bool,
    hostile: bool,
    applied: i64,
    exited: bool,
}

impl LearnerRun {
    fn complete_op(&mut self, upto: usize) {
        for i in 0..=upto {
            if !self.ops[i].1 {
                self.ops[i].1 = true;
                self.durable_end = match self.ops[i].0 {
                    Op::Append(z) | Op::Truncate(z) | Op::Install(z) => z,
                };
            }
        }
    }

    fn check(&mut self, out: Vec<LearnerAction>) {
        assert!(
            !self.exited || out.is_empty(),
            "actions after Exit: {out:?}"
        );
        for a in out {
            match a {
                LearnerAction::Send(p) => match p.packet_type {
                    wz::ACKEPOCH => assert!(
                        self.leaderinfo_epoch <= self.initial_accepted
                            || self.accepted_done.contains(&self.leaderinfo_epoch),
                        "ACKEPOCH before acceptedEpoch was durable"
                    ),
                    wz::ACK => {
                        let e = self.f.epoch().expect("an ACK follows LEADERINFO");
                        assert!(
                            self.current_done.contains(&e),
                            "ACK before currentEpoch was durable"
                        );
                        if self.mode == Mode::Store && p.zxid & 0xffff_ffff != 0 {
                            assert!(p.zxid <= self.durable_end, "ACK {:#x} not durable", p.zxid);
                        }
                    }
                    _ => {}
                },
                LearnerAction::PersistAcceptedEpoch(e) => self.io_epochs.push((true, e)),
                LearnerAction::PersistCurrentEpoch(e) => {
                    let n = self
                        .at_newleader
                        .expect("currentEpoch only after NEWLEADER");
                    assert!(
                        self.ops[..n.min(self.ops.len())]
                            .iter()
                            .all(|(_, done)| *done),
                        "currentEpoch before the sync was durable"
                    );
                    self.io_epochs.push((false, e));
                }
                LearnerAction::AppendLog(es) => {
                    for e in es {
                        self.ops.push((Op::Append(e.zxid), false));
                    }
                }
                LearnerAction::TruncateLog { after } => self.ops.push((Op::Truncate(after), false)),
                LearnerAction::InstallSnapshot { zxid, .. } => {
                    self.ops.push((Op::Install(zxid), false));
                    self.applied = zxid;
                }
                LearnerAction::ApplyFromLog { up_to } => {
                    assert!(self.uptodate_fed, "applied before UPTODATE");
                    assert!(
                        up_to <= self.durable_end.max(self.applied),
                        "ApplyFromLog past the durable log"
                    );
                    self.applied = self.applied.max(up_to);
                }
                LearnerAction::Deliver(es) => {
                    assert!(self.uptodate_fed, "delivered before UPTODATE");
                    for e in es {
                        assert!(e.zxid > self.applied, "delivered out of order");
                        assert!(
                            e.zxid <= self.durable_end,
                            "delivered {:#x} not durable",
                            e.zxid
                        );
                        self.applied = e.zxid;
                    }
                }
                LearnerAction::Exit(_) => {
                    assert!(!self.exited);
                    self.exited = true;
                }
                _ => {}
            }
        }
    }

    fn step(&mut self, s: Step) {
        let now = self.now;
        let epoch = self.f.epoch().unwrap_or(self.initial_accepted + 1);
        let last = self.f.last_zxid();
        let out = match s {
            Step::Connect(_) => self.f.connected(now),
            Step::Close(0) => self.f.closed(now),
            Step::Close(_) => self.f.connect_failed(now, "refused"),
            Step::Packet(g) => {
                let t = match g.kind % 12 {
                    0 => wz::LEADERINFO,
                    1 => wz::DIFF,
                    2 => wz::TRUNC,
                    3 => wz::SNAP,
                    4 | 5 => wz::PROPOSAL,
                    6 => wz::COMMIT,
                    7 => wz::INFORM,
                    8 => wz::NEWLEADER,
                    9 => wz::UPTODATE,
                    10 => wz::PING,
                    _ => i32::from(g.raw.first().copied().unwrap_or(0) % 25),
                };
                let e = match t {
                    wz::LEADERINFO => self.initial_accepted + i64::from(g.who % 3) - 1,
                    _ => epoch,
                };
                let p = QuorumPacket::new(t, zxid_for(&g, e, last), data_for(&g, false));
                if t == wz::LEADERINFO
                    && self.f.stage() == zkfle::zab::LearnerStage::AwaitingLeaderInfo
                {
                    self.leaderinfo_epoch = p.zxid >> 32;
                }
                let syncing = self.f.stage() == zkfle::zab::LearnerStage::Syncing;
                if t == wz::NEWLEADER && syncing && self.at_newleader.is_none() {
                    self.at_newleader = Some(self.ops.len());
                }
                if matches!(t, wz::DIFF | wz::TRUNC | wz::SNAP) && syncing {
                    self.sync_header = true;
                }
                if t == wz::UPTODATE {
                    self.uptodate_fed = true;
                }
                self.f.packet(now, p)
            }
            Step::Complete => {
                if let Some(i) = self.io_epochs.first().copied() {
                    self.io_epochs.remove(0);
                    if i.0 {
                        self.accepted_done.insert(i.1);
                        self.f.accepted_epoch_durable(now, i.1)
                    } else {
                        self.current_done.insert(i.1);
                        self.f.current_epoch_durable(now, i.1)
                    }
                } else if let Some(i) = self.ops.iter().position(|(_, done)| !done) {
                    let op = self.ops[i].0;
                    self.complete_op(i);
                    match op {
                        Op::Append(z) => self.f.log_durable(now, z),
                        Op::Truncate(z) => self.f.log_truncated(now, z),
                        Op::Install(z) => self.f.snapshot_installed(now, z),
                    }
                } else {
                    self.f.snapshot_skipped(now, SkippedSnapshot::default())
                }
            }
            Step::Junk(g) => match g.kind % 4 {
                // Junk epochs never match an outstanding write (those come
                // from the leader's small epochs), so the checker need not
                // mirror them.
                0 => self.f.accepted_epoch_durable(now, g.raw_zxid | (1 << 40)),
                1 => self.f.current_epoch_durable(now, g.raw_zxid | (1 << 40)),
                2 => self.f.heard(now),
                _ => self.f.persist_failed(now, PersistTarget::Log, "junk"),
            },
            Step::Timer(ms) => {
                self.now += Duration::from_millis(u64::from(ms % 700));
                self.f.timer(self.now)
            }
            Step::Request(true) => self.f.heard(now),
            Step::Request(false) if !self.hostile => self.f.heard(now),
            Step::Request(false) => self
                .f
                .stream_error(now, zkfle::wire::WireError::BadJuteLength(-2)),
            Step::Stop => self.f.step_down(now, StepDown::Shutdown),
            Step::Guided(c) => self.guided(c),
        };
        self.check(out);
    }
}

impl LearnerRun {
    /// What a zkfle leader would send next (a choice among several).
    fn guided(&mut self, c: u8) -> Vec<LearnerAction> {
        use zkfle::zab::LearnerStage as S;
        let now = self.now;
        let e = self.f.epoch().unwrap_or(self.initial_accepted + 1);
        let last = self.f.last_zxid();
        let next = if last >> 32 == e { last + 1 } else { z(e, 1) };
        let data = Some(vec![c]);
        if std::mem::take(&mut self.skip_pending) {
            return self.f.snapshot_skipped(now, SkippedSnapshot::default());
        }
        let p = match self.f.stage() {
            S::Connecting => return self.f.connected(now),
            S::AwaitingLeaderInfo => {
                let marked = self.mode == Mode::Store;
                self.leaderinfo_epoch = e;
                QuorumPacket::new(wz::LEADERINFO, z(e, 0), Some(leader_info_data(marked)))
            }
            S::Syncing if !self.sync_header => {
                self.sync_header = true;
                match c % 3 {
                    0 => QuorumPacket::new(wz::DIFF, last, None),
                    1 => QuorumPacket::new(wz::TRUNC, last.min(z(1, 1)), None),
                    _ => {
                        self.skip_pending = self.mode == Mode::Interop;
                        QuorumPacket::new(wz::SNAP, z(1, 2), Some(0i64.to_be_bytes().to_vec()))
                    }
                }
            }
            S::Syncing => match c % 4 {
                0 | 1 => QuorumPacket::new(wz::PROPOSAL, next, data),
                2 if last > 0 => QuorumPacket::new(wz::COMMIT, last, None),
                _ => {
                    if self.at_newleader.is_none() {
                        self.at_newleader = Some(self.ops.len());
                    }
                    QuorumPacket::new(wz::NEWLEADER, z(e, 0), None)
                }
            },
            S::AwaitingUpToDate if c % 3 == 0 => {
                self.uptodate_fed = true;
                QuorumPacket::new(wz::UPTODATE, last, None)
            }
            S::AwaitingUpToDate | S::Broadcast | S::NewLeader => match c % 4 {
                0 | 1 if self.f.role() == LearnerRole::Observer => {
                    QuorumPacket::new(wz::INFORM, next, data)
                }
                0 | 1 => QuorumPacket::new(wz::PROPOSAL, next, data),
                2 => QuorumPacket::new(wz::COMMIT, last, None),
                _ => QuorumPacket::new(wz::PING, z(e, 0), None),
            },
            _ => return self.f.timer(now),
        };
        self.f.packet(now, p)
    }
}

fn run_learner(mode: Mode, observer: bool, hostile: bool, steps: Vec<Step>) {
    let cfg = cfg_with(2, &[1, 2, 3], &[4], mode);
    let now = Duration::from_secs(1);
    let persisted = Persisted {
        accepted_epoch: 1,
        current_epoch: 1,
        last_zxid: z(1, 2),
    };
    let role = if observer {
        LearnerRole::Observer
    } else {
        LearnerRole::Follower
    };
    let (f, out) = Learner::start(cfg, 1, role, persisted, now);
    let mut r = LearnerRun {
        f,
        now,
        mode,
        initial_accepted: 1,
        accepted_done: BTreeSet::new(),
        current_done: BTreeSet::new(),
        leaderinfo_epoch: 0,
        io_epochs: Vec::new(),
        ops: Vec::new(),
        at_newleader: None,
        durable_end: z(1, 2),
        uptodate_fed: false,
        sync_header: false,
        skip_pending: false,
        hostile,
        applied: 0,
        exited: false,
    };
    r.check(out);
    for s in steps {
        r.step(s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn leader_survives_random_inputs_and_keeps_its_ordering_rules(
        store in any::<bool>(),
        steps in any::<bool>().prop_flat_map(steps),
    ) {
        run_leader(if store { Mode::Store } else { Mode::Interop }, steps);
    }

    #[test]
    fn learner_survives_random_inputs_and_keeps_its_ordering_rules(
        store in any::<bool>(),
        observer in any::<bool>(),
        (hostile, steps) in any::<bool>().prop_flat_map(|h| (Just(h), steps(h))),
    ) {
        run_learner(if store { Mode::Store } else { Mode::Interop }, observer, hostile, steps);
    }
}

/// The generators reach deep states, not just the first refusal: a
/// cooperative script through the fuzz runner ends in Broadcast.
#[test]
fn the_fuzz_runner_reaches_broadcast_on_a_cooperative_script() {
    let g = |kind: u8, zxid: u8, data: u8, who: u8| {
        Step::Packet(Gen {
            kind,
            zxid,
            data,
            who,
            raw_zxid: 0,
            raw: Vec::new(),
        })
    };
    let cfg = cfg_with(1, &[1, 2, 3], &[4], Mode::Store);
    let now = Duration::from_secs(1);
    let (l, _) = Leader::start(cfg, Persisted::default(), now);
    let mut r = LeaderRun {
        l,
        now,
        mode: Mode::Store,
        io: Vec::new(),
        log: Vec::new(),
        accepted_done: BTreeSet::new(),
        current_done: BTreeSet::new(),
        durable: 0,
        answers: BTreeMap::new(),
        next_req: 1,
        exited: false,
    };
    // Conn 2 (who 2): FOLLOWERINFO from sid 2, marked; ACKEPOCH(0, 0);
    // completions; ACK of NEWLEADER.
    for s in [
        Step::Connect(2),
        g(0, 0, 2, 2),
        Step::Complete,
        g(2, 0, 4, 2),
        Step::Complete,
        Step::Complete,
        g(3, 1, 0, 2),
    ] {
        r.step(s);
    }
    assert!(r.l.is_established(), "{:?}", r.l.stage());
    let _ = TICK;
}
