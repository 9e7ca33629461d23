//! A small in-memory exchanger for `zab::Leader` and `zab::Learner`: one
//! leader, learners on FIFO links (packets go through the real codec),
//! disks whose writes become durable only when the test lets the IO
//! complete, a state machine per node (the zxids it applied), virtual time.
//! Test-only; the real simulator lives in `src/sim/`.
#![allow(dead_code)]

use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;
use zkfle::config::QuorumVerifier;
use zkfle::wire::zab::QuorumPacket;
use zkfle::zab::{
    ConnId, Entry, Leader, LeaderAction, Learner, LearnerAction, LearnerRole, LogRead, Mode,
    Persisted, ReqId, RequestError, SnapshotRead, StepDown, ZabConfig, ZabExit,
};

pub const TICK: Duration = Duration::from_millis(100);

/// A zxid from epoch and counter.
pub fn z(epoch: i64, counter: i64) -> i64 {
    (epoch << 32) | counter
}

/// An entry whose data names its zxid.
pub fn entry(zxid: i64) -> Entry {
    Entry::new(zxid, format!("v{zxid:x}").into_bytes())
}

/// The ensemble config seen from `me`: `voters` vote, `observers` observe.
pub fn config(me: i64, voters: &[i64], observers: &[i64], mode: Mode) -> ZabConfig {
    ZabConfig {
        my_sid: me,
        tick_time: TICK,
        init_limit: 10,
        sync_limit: 3,
        verifier: QuorumVerifier::majority(voters.iter().copied()),
        servers: voters.iter().chain(observers).copied().collect(),
        config_text: "server.1=a:1:2\nversion=0".into(),
        mode,
    }
}

/// What one node keeps on disk, and its state machine.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    pub accepted: i64,
    pub current: i64,
    /// Written entries (durable or not), zxid order.
    pub log: Vec<Entry>,
    /// How many of `log` are durable.
    pub durable: usize,
    /// The zxid of the last entry replaced by the snapshot.
    pub compacted_through: i64,
    /// The embedder's snapshot: (zxid, the applied zxids it holds).
    pub snapshot: Option<(i64, Vec<i64>)>,
    /// The state machine: every zxid applied, in order.
    pub applied: Vec<i64>,
    /// Interop vote zxid (SetVoteZxid).
    pub vote_zxid: i64,
}

impl Disk {
    pub fn with_log(accepted: i64, current: i64, zxids: &[i64]) -> Disk {
        Disk {
            accepted,
            current,
            log: zxids.iter().map(|&x| entry(x)).collect(),
            durable: zxids.len(),
            ..Disk::default()
        }
    }

    /// The last durable zxid (the vote's zxid).
    pub fn last_durable(&self) -> i64 {
        self.durable
            .checked_sub(1)
            .and_then(|i| self.log.get(i))
            .map_or(self.compacted_through, |e| e.zxid)
    }

    pub fn persisted(&self) -> Persisted {
        Persisted {
            accepted_epoch: self.accepted,
            current_epoch: self.current,
            last_zxid: self.last_durable(),
        }
    }

    pub fn log_zxids(&self) -> Vec<i64> {
        self.log.iter().map(|e| e.zxid).collect()
    }

    /// Snapshot of the state machine at `upto`, dropping the log before it.
    pub fn compact(&mut self, upto: i64) {
        let state: Vec<i64> = self
            .applied
            .iter()
            .copied()
            .filter(|&x| x <= upto)
            .collect();
        let n = self.log.partition_point(|e| e.zxid <= upto);
        self.log.drain(..n);
        self.durable -= n.min(self.durable);
        self.compacted_through = upto;
        self.snapshot = Some((upto, state));
    }

    fn apply(&mut self, zxid: i64) {
        let last = self.applied.last().copied().unwrap_or(0);
        assert!(zxid > last, "applied {zxid:#x} after {last:#x}");
        assert!(
            zxid <= self.last_durable(),
            "applied {zxid:#x} before it is durable (durable {:#x})",
            self.last_durable()
        );
        self.applied.push(zxid);
    }
}

fn encode_state(applied: &[i64]) -> Bytes {
    applied
        .iter()
        .flat_map(|z| z.to_be_bytes())
        .collect::<Vec<u8>>()
        .into()
}

fn decode_state(b: &[u8]) -> Vec<i64> {
    b.chunks_exact(8)
        .map(|c| i64::from_be_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

#[derive(Debug, Clone)]
enum Io {
    Accepted(i64),
    Current(i64),
    Append(i64),
    Truncate(i64),
    Install(i64),
}

pub enum Role {
    Leader(Leader),
    Learner(Learner),
    Down,
}

pub struct Node {
    pub disk: Disk,
    pub role: Role,
    io: VecDeque<Io>,
    /// Learner: its connection id on the leader.
    conn: Option<ConnId>,
}

/// Everything observable that happened, for assertions.
#[derive(Debug, Default)]
pub struct Seen {
    pub proposals: Vec<(ReqId, Result<i64, RequestError>)>,
    pub barriers: Vec<(ReqId, Result<i64, RequestError>)>,
    pub exits: BTreeMap<i64, ZabExit>,
    pub established: Vec<(i64, i64)>,
    /// Every packet: (from, to, type, zxid).
    pub packets: Vec<(i64, i64, i32, i64)>,
    /// Refused learners: (sid, reason).
    pub closes: Vec<(i64, String)>,
}

pub struct Net {
    pub now: Duration,
    pub voters: Vec<i64>,
    pub observers: Vec<i64>,
    pub mode: Mode,
    pub nodes: BTreeMap<i64, Node>,
    pub leader: Option<i64>,
    /// (from, to) → encoded packets in flight.
    links: BTreeMap<(i64, i64), VecDeque<Vec<u8>>>,
    conns: BTreeMap<ConnId, i64>,
    next_conn: u64,
    pending_connects: VecDeque<i64>,
    /// Answers to the leader's reads, delivered unless `hold_reads`.
    reads: VecDeque<(ConnId, Result<LogRead, SnapshotRead>)>,
    pub hold_io: BTreeSet<i64>,
    pub hold_links: BTreeSet<(i64, i64)>,
    pub hold_reads: bool,
    next_req: ReqId,
    pub seen: Seen,
}

impl Net {
    pub fn new(voters: &[i64], observers: &[i64], mode: Mode) -> Net {
        let _ = env_logger::builder().is_test(true).try_init();
        Net {
            now: Duration::from_secs(1),
            voters: voters.to_vec(),
            observers: observers.to_vec(),
            mode,
            nodes: BTreeMap::new(),
            leader: None,
            links: BTreeMap::new(),
            conns: BTreeMap::new(),
            next_conn: 1,
            pending_connects: VecDeque::new(),
            reads: VecDeque::new(),
            hold_io: BTreeSet::new(),
            hold_links: BTreeSet::new(),
            hold_reads: false,
            next_req: 1,
            seen: Seen::default(),
        }
    }

    fn cfg(&self, sid: i64) -> ZabConfig {
        config(sid, &self.voters, &self.observers, self.mode)
    }

    /// Adds (or replaces) a node's disk; it starts Down.
    pub fn disk(&mut self, sid: i64, disk: Disk) {
        self.nodes.insert(
            sid,
            Node {
                disk,
                role: Role::Down,
                io: VecDeque::new(),
                conn: None,
            },
        );
    }

    fn node(&mut self, sid: i64) -> &mut Node {
        self.nodes.entry(sid).or_insert_with(|| Node {
            disk: Disk::default(),
            role: Role::Down,
            io: VecDeque::new(),
            conn: None,
        })
    }

    pub fn start_leader(&mut self, sid: i64) {
        let cfg = self.cfg(sid);
        let persisted = self.node(sid).disk.persisted();
        let (l, out) = Leader::start(cfg, persisted, self.now);
        self.node(sid).role = Role::Leader(l);
        self.leader = Some(sid);
        self.leader_actions(sid, out);
    }

    pub fn start_learner(&mut self, sid: i64, leader: i64) {
        let role = if self.observers.contains(&sid) {
            LearnerRole::Observer
        } else {
            LearnerRole::Follower
        };
        let cfg = self.cfg(sid);
        let persisted = self.node(sid).disk.persisted();
        let (l, out) = Learner::start(cfg, leader, role, persisted, self.now);
        self.node(sid).role = Role::Learner(l);
        self.learner_actions(sid, out);
    }

    pub fn leader(&mut self) -> &mut Leader {
        let sid = self.leader.expect("a leader was started");
        match &mut self.node(sid).role {
            Role::Leader(l) => l,
            _ => panic!("sid {sid} is not leading"),
        }
    }

    pub fn learner(&mut self, sid: i64) -> &mut Learner {
        match &mut self.node(sid).role {
            Role::Learner(l) => l,
            _ => panic!("sid {sid} is not a learner"),
        }
    }

    pub fn is_up(&self, sid: i64) -> bool {
        self.nodes
            .get(&sid)
            .is_some_and(|n| !matches!(n.role, Role::Down))
    }

    pub fn applied(&self, sid: i64) -> Vec<i64> {
        self.nodes[&sid].disk.applied.clone()
    }

    pub fn log(&self, sid: i64) -> Vec<i64> {
        self.nodes[&sid].disk.log_zxids()
    }

    pub fn propose(&mut self, data: &str) -> ReqId {
        let req = self.next_req;
        self.next_req += 1;
        let now = self.now;
        let out = self
            .leader()
            .propose(now, Bytes::copy_from_slice(data.as_bytes()), req);
        let sid = self.leader.expect("leader");
        self.leader_actions(sid, out);
        req
    }

    pub fn barrier(&mut self) -> ReqId {
        let req = self.next_req;
        self.next_req += 1;
        let now = self.now;
        let out = self.leader().read_barrier(now, req);
        let sid = self.leader.expect("leader");
        self.leader_actions(sid, out);
        req
    }

    pub fn step_down(&mut self, sid: i64) {
        let now = self.now;
        match &mut self.node(sid).role {
            Role::Leader(l) => {
                let out = l.step_down(now, StepDown::Shutdown);
                self.leader_actions(sid, out);
            }
            Role::Learner(l) => {
                let out = l.step_down(now, StepDown::Shutdown);
                self.learner_actions(sid, out);
            }
            Role::Down => {}
        }
    }

    pub fn proposal_result(&self, req: ReqId) -> Option<Result<i64, RequestError>> {
        self.seen
            .proposals
            .iter()
            .find(|(r, _)| *r == req)
            .map(|(_, x)| *x)
    }

    pub fn barrier_result(&self, req: ReqId) -> Option<Result<i64, RequestError>> {
        self.seen
            .barriers
            .iter()
            .find(|(r, _)| *r == req)
            .map(|(_, x)| *x)
    }

    /// Packets of `packet_type` sent from `from` to `to` so far.
    pub fn count(&self, from: i64, to: i64, packet_type: i32) -> usize {
        self.seen
            .packets
            .iter()
            .filter(|p| p.0 == from && p.1 == to && p.2 == packet_type)
            .count()
    }

    fn push_packet(&mut self, from: i64, to: i64, p: &zkfle::zab::Packet) {
        self.seen.packets.push((from, to, p.packet_type, p.zxid));
        self.links
            .entry((from, to))
            .or_default()
            .push_back(p.to_bytes());
    }

    fn leader_actions(&mut self, sid: i64, actions: Vec<LeaderAction>) {
        for a in actions {
            match a {
                LeaderAction::Send { conn, packet } => {
                    if let Some(&to) = self.conns.get(&conn) {
                        self.push_packet(sid, to, &packet);
                    }
                }
                LeaderAction::Close { conn, reason } => {
                    if let Some(to) = self.conns.remove(&conn) {
                        self.seen.closes.push((to, reason));
                        self.drop_links(sid, to);
                        self.close_learner(to);
                    }
                }
                LeaderAction::PersistAcceptedEpoch(e) => {
                    self.node(sid).io.push_back(Io::Accepted(e))
                }
                LeaderAction::PersistCurrentEpoch(e) => self.node(sid).io.push_back(Io::Current(e)),
                LeaderAction::AppendLog(es) => self.append(sid, es),
                LeaderAction::ReadLog {
                    conn,
                    after,
                    through,
                } => {
                    let d = &self.nodes[&sid].disk;
                    let read = LogRead::from_log(&d.log, d.compacted_through, after);
                    if !read.compacted {
                        let reached = read.entries.last().map_or(read.prefix, |e| e.zxid);
                        assert!(reached >= through.min(d.log.last().map_or(0, |e| e.zxid)));
                    }
                    self.reads.push_back((conn, Ok(read)));
                }
                LeaderAction::ReadSnapshot { conn, .. } => {
                    let d = &self.nodes[&sid].disk;
                    let (zxid, state) = d.snapshot.clone().expect("a snapshot to read");
                    let entries = d.log.iter().filter(|e| e.zxid > zxid).cloned().collect();
                    let data = encode_state(&state);
                    self.reads.push_back((
                        conn,
                        Err(SnapshotRead {
                            zxid,
                            data,
                            entries,
                        }),
                    ));
                }
                LeaderAction::Phase(_) => {}
                LeaderAction::SetVoteZxid(v) => self.node(sid).disk.vote_zxid = v,
                LeaderAction::Established { epoch } => self.seen.established.push((sid, epoch)),
                LeaderAction::ApplyFromLog { up_to } => self.apply_from_log(sid, up_to),
                LeaderAction::Deliver(es) => {
                    for e in es {
                        self.node(sid).disk.apply(e.zxid);
                    }
                }
                LeaderAction::ProposeDone { req, result } => {
                    self.seen.proposals.push((req, result))
                }
                LeaderAction::BarrierDone { req, result } => self.seen.barriers.push((req, result)),
                LeaderAction::Exit(r) => {
                    self.seen.exits.insert(sid, r);
                    self.node(sid).role = Role::Down;
                    let conns: Vec<(ConnId, i64)> =
                        self.conns.iter().map(|(c, s)| (*c, *s)).collect();
                    self.conns.clear();
                    for (_, to) in conns {
                        self.drop_links(sid, to);
                        self.close_learner(to);
                    }
                }
            }
        }
    }

    fn learner_actions(&mut self, sid: i64, actions: Vec<LearnerAction>) {
        for a in actions {
            match a {
                LearnerAction::Connect { .. } => self.pending_connects.push_back(sid),
                LearnerAction::Send(p) => {
                    if let (Some(_), Some(leader)) = (self.nodes[&sid].conn, self.leader) {
                        self.push_packet(sid, leader, &p);
                    }
                }
                LearnerAction::PersistAcceptedEpoch(e) => {
                    self.node(sid).io.push_back(Io::Accepted(e))
                }
                LearnerAction::PersistCurrentEpoch(e) => {
                    self.node(sid).io.push_back(Io::Current(e))
                }
                LearnerAction::AppendLog(es) => self.append(sid, es),
                LearnerAction::TruncateLog { after } => {
                    let d = &mut self.node(sid).disk;
                    let keep = d.log.partition_point(|e| e.zxid <= after);
                    d.log.truncate(keep);
                    d.durable = d.durable.min(keep);
                    assert!(
                        d.applied.last().map_or(true, |&x| x <= after),
                        "TRUNC below what the state machine applied"
                    );
                    self.node(sid).io.push_back(Io::Truncate(after));
                }
                LearnerAction::InstallSnapshot { zxid, data } => {
                    let d = &mut self.node(sid).disk;
                    d.log.clear();
                    d.durable = 0;
                    d.compacted_through = zxid;
                    let state = decode_state(&data);
                    d.snapshot = Some((zxid, state.clone()));
                    d.applied = state;
                    self.node(sid).io.push_back(Io::Install(zxid));
                }
                LearnerAction::Phase(_) => {}
                LearnerAction::SetVoteZxid(v) => self.node(sid).disk.vote_zxid = v,
                LearnerAction::ApplyFromLog { up_to } => self.apply_from_log(sid, up_to),
                LearnerAction::Deliver(es) => {
                    for e in es {
                        self.node(sid).disk.apply(e.zxid);
                    }
                }
                LearnerAction::Exit(r) => {
                    self.seen.exits.insert(sid, r);
                    self.node(sid).role = Role::Down;
                    if let (Some(conn), Some(leader)) = (self.node(sid).conn.take(), self.leader) {
                        self.conns.remove(&conn);
                        self.drop_links(sid, leader);
                        let now = self.now;
                        if let Role::Leader(l) = &mut self.node(leader).role {
                            let out = l.learner_closed(now, conn);
                            self.leader_actions(leader, out);
                        }
                    }
                }
            }
        }
    }

    fn append(&mut self, sid: i64, es: Vec<Entry>) {
        let d = &mut self.node(sid).disk;
        for e in &es {
            let last = d.log.last().map_or(d.compacted_through, |x| x.zxid);
            assert!(
                e.zxid > last,
                "sid {sid}: append {:#x} after {last:#x}",
                e.zxid
            );
            d.log.push(e.clone());
        }
        if let Some(last) = es.last() {
            self.node(sid).io.push_back(Io::Append(last.zxid));
        }
    }

    fn apply_from_log(&mut self, sid: i64, up_to: i64) {
        let d = &mut self.node(sid).disk;
        let from = d.applied.last().copied().unwrap_or(0);
        let todo: Vec<i64> = d
            .log
            .iter()
            .map(|e| e.zxid)
            .filter(|&x| x > from && x <= up_to)
            .collect();
        for x in todo {
            d.apply(x);
        }
    }

    fn drop_links(&mut self, a: i64, b: i64) {
        self.links.remove(&(a, b));
        self.links.remove(&(b, a));
    }

    fn close_learner(&mut self, sid: i64) {
        let now = self.now;
        let node = self.node(sid);
        node.conn = None;
        if let Role::Learner(l) = &mut node.role {
            let out = l.closed(now);
            self.learner_actions(sid, out);
        }
    }

    /// Completes every queued write of `sid` (consecutive appends share one
    /// completion, as a group commit would).
    pub fn complete_io(&mut self, sid: i64) -> bool {
        let mut did = false;
        while let Some(io) = self.node(sid).io.pop_front() {
            did = true;
            let now = self.now;
            match io {
                Io::Append(mut last) => {
                    while let Some(Io::Append(next)) = self.node(sid).io.front().cloned() {
                        last = next;
                        self.node(sid).io.pop_front();
                    }
                    let d = &mut self.node(sid).disk;
                    d.durable = d.log.partition_point(|e| e.zxid <= last);
                    self.completion(sid, |r| match r {
                        Role::Leader(l) => Ok(l.log_durable(now, last)),
                        Role::Learner(l) => Err(l.log_durable(now, last)),
                        Role::Down => Ok(vec![]),
                    });
                }
                Io::Accepted(e) => {
                    self.node(sid).disk.accepted = e;
                    self.completion(sid, |r| match r {
                        Role::Leader(l) => Ok(l.accepted_epoch_durable(now, e)),
                        Role::Learner(l) => Err(l.accepted_epoch_durable(now, e)),
                        Role::Down => Ok(vec![]),
                    });
                }
                Io::Current(e) => {
                    let d = &mut self.node(sid).disk;
                    assert!(
                        d.accepted >= e,
                        "currentEpoch {e} > acceptedEpoch {}",
                        d.accepted
                    );
                    d.current = e;
                    self.completion(sid, |r| match r {
                        Role::Leader(l) => Ok(l.current_epoch_durable(now, e)),
                        Role::Learner(l) => Err(l.current_epoch_durable(now, e)),
                        Role::Down => Ok(vec![]),
                    });
                }
                Io::Truncate(after) => self.completion(sid, |r| match r {
                    Role::Learner(l) => Err(l.log_truncated(now, after)),
                    _ => Ok(vec![]),
                }),
                Io::Install(zxid) => self.completion(sid, |r| match r {
                    Role::Learner(l) => Err(l.snapshot_installed(now, zxid)),
                    _ => Ok(vec![]),
                }),
            }
        }
        did
    }

    fn completion(
        &mut self,
        sid: i64,
        f: impl FnOnce(&mut Role) -> Result<Vec<LeaderAction>, Vec<LearnerAction>>,
    ) {
        match f(&mut self.node(sid).role) {
            Ok(out) => self.leader_actions(sid, out),
            Err(out) => self.learner_actions(sid, out),
        }
    }

    /// Delivers one queued packet from `from` to `to`, if any.
    pub fn deliver_one(&mut self, from: i64, to: i64) -> bool {
        let Some(bytes) = self
            .links
            .get_mut(&(from, to))
            .and_then(VecDeque::pop_front)
        else {
            return false;
        };
        let (p, used) = QuorumPacket::decode(&bytes).expect("our own packets decode");
        assert_eq!(used, bytes.len());
        self.input_packet(from, to, p);
        true
    }

    /// Feeds `to` a packet as if `from` had sent it.
    pub fn input_packet(&mut self, from: i64, to: i64, p: QuorumPacket) {
        let now = self.now;
        if Some(to) == self.leader {
            let Some(conn) = self.nodes.get(&from).and_then(|n| n.conn) else {
                return;
            };
            if let Role::Leader(l) = &mut self.node(to).role {
                let out = l.packet(now, conn, p);
                self.leader_actions(to, out);
            }
        } else if let Role::Learner(l) = &mut self.node(to).role {
            let out = l.packet(now, p);
            self.learner_actions(to, out);
        }
    }

    fn connect(&mut self, sid: i64) {
        let now = self.now;
        let leader = self
            .leader
            .filter(|&l| matches!(self.nodes.get(&l).map(|n| &n.role), Some(Role::Leader(_))));
        let Some(leader) = leader else {
            let out = self.learner(sid).connect_failed(now, "connection refused");
            return self.learner_actions(sid, out);
        };
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(conn, sid);
        self.node(sid).conn = Some(conn);
        let out = self.leader().learner_connected(now, conn);
        self.leader_actions(leader, out);
        let out = self.learner(sid).connected(now);
        self.learner_actions(sid, out);
    }

    /// One round of everything that can happen without time passing.
    fn step(&mut self) -> bool {
        let mut did = false;
        while let Some(sid) = self.pending_connects.pop_front() {
            if matches!(self.nodes[&sid].role, Role::Learner(_)) {
                self.connect(sid);
                did = true;
            }
        }
        let links: Vec<(i64, i64)> = self.links.keys().copied().collect();
        for (from, to) in links {
            if !self.hold_links.contains(&(from, to)) {
                did |= self.deliver_one(from, to);
            }
        }
        if !self.hold_reads {
            if let Some((conn, read)) = self.reads.pop_front() {
                did = true;
                let now = self.now;
                let out = match read {
                    Ok(r) => self.leader().log_read(now, conn, r),
                    Err(s) => self.leader().snapshot_read(now, conn, s),
                };
                let sid = self.leader.expect("leader");
                self.leader_actions(sid, out);
            }
        }
        let sids: Vec<i64> = self.nodes.keys().copied().collect();
        for sid in sids {
            if !self.hold_io.contains(&sid) {
                did |= self.complete_io(sid);
            }
            did |= self.fire_timer(sid);
        }
        did
    }

    fn fire_timer(&mut self, sid: i64) -> bool {
        let now = self.now;
        match &mut self.node(sid).role {
            Role::Leader(l) if l.next_deadline().is_some_and(|d| d <= now) => {
                let out = l.timer(now);
                self.leader_actions(sid, out);
                true
            }
            Role::Learner(l) if l.next_deadline().is_some_and(|d| d <= now) => {
                let out = l.timer(now);
                self.learner_actions(sid, out);
                true
            }
            _ => false,
        }
    }

    /// Runs until nothing moves without time passing.
    pub fn run(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the exchange did not settle");
    }

    /// Moves time forward in steps of at most `step`, settling at each.
    pub fn advance(&mut self, total: Duration, step: Duration) {
        let end = self.now + total;
        while self.now < end {
            self.now = (self.now + step).min(end);
            self.run();
        }
    }

    /// Every node's state machine is a prefix of the longest one.
    pub fn assert_applied_consistent(&self) {
        let longest = self
            .nodes
            .values()
            .map(|n| &n.disk.applied)
            .max_by_key(|a| a.len())
            .cloned()
            .unwrap_or_default();
        for (sid, n) in &self.nodes {
            assert_eq!(
                n.disk.applied[..],
                longest[..n.disk.applied.len()],
                "sid {sid}'s state machine diverges"
            );
        }
    }
}
