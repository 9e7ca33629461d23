//! Store mode: the key-value state machine every peer applies committed
//! entries to (in zxid order), and the clients that write (propose) and
//! read (through the read barrier) via whoever they believe leads, with
//! redirects, retries, time-outs and unknown outcomes. Every answer they
//! get goes into a history that `linearizability` checks at the end, per
//! key; every write a leader acknowledged must survive.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use crate::logstore::{LogStore, ReadLimit};
use crate::zab::{Entry, ReqId, RequestError};

use super::invariants::{self, Violation};
use super::linearizability::{self, CheckOptions, KeyVerdict, Op};
use super::peer::Role;
use super::schedule::{ms, us, Ev, Reply};
use super::world::{InjectedBug, World};

/// The replicated key-value map of one peer.
#[derive(Debug, Clone, Default)]
pub(super) struct Kv {
    pub map: BTreeMap<u8, u64>,
    /// The last zxid applied (or installed with a snapshot).
    pub applied: i64,
}

impl Kv {
    /// The snapshot bytes: `i64 applied`, `u32 count`, then `(u8 key, u64
    /// value)` pairs.
    pub(super) fn encode(&self) -> Bytes {
        let mut b = Vec::with_capacity(12 + self.map.len() * 9);
        b.extend_from_slice(&self.applied.to_be_bytes());
        b.extend_from_slice(&(self.map.len() as u32).to_be_bytes());
        for (k, v) in &self.map {
            b.push(*k);
            b.extend_from_slice(&v.to_be_bytes());
        }
        Bytes::from(b)
    }

    fn decode(b: &[u8]) -> Option<Kv> {
        let applied = i64::from_be_bytes(b.get(..8)?.try_into().ok()?);
        let n = u32::from_be_bytes(b.get(8..12)?.try_into().ok()?) as usize;
        let mut map = BTreeMap::new();
        for i in 0..n {
            let at = 12 + i * 9;
            let k = *b.get(at)?;
            let v = u64::from_be_bytes(b.get(at + 1..at + 9)?.try_into().ok()?);
            map.insert(k, v);
        }
        Some(Kv { map, applied })
    }
}

/// A `SET key value` entry.
fn entry_data(key: u8, value: u64) -> Bytes {
    let mut b = vec![key];
    b.extend_from_slice(&value.to_be_bytes());
    Bytes::from(b)
}

fn parse_entry(data: &[u8]) -> Option<(u8, u64)> {
    let k = *data.first()?;
    let v = u64::from_be_bytes(data.get(1..9)?.try_into().ok()?);
    Some((k, v))
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Write(u8, u64),
    Read(u8),
}

#[derive(Debug, Clone, Copy)]
struct OpInfo {
    client: usize,
    kind: Kind,
    invoke: Duration,
    attempts: u32,
}

#[derive(Debug, Clone, Default)]
struct Client {
    target: i64,
    pending: Option<u64>,
    counter: u64,
}

/// The clients and what they saw.
pub(super) struct Store {
    clients: Vec<Client>,
    ops: BTreeMap<u64, OpInfo>,
    next_op: u64,
    next_req: ReqId,
    /// (peer, request) → operation.
    reqs: BTreeMap<(i64, ReqId), u64>,
    /// Every client-visible outcome, for the linearizability check.
    pub history: Vec<Op<u8, u64>>,
    /// Writes a leader acknowledged: (zxid, key, value).
    pub acked: Vec<(i64, u8, u64)>,
}

impl Store {
    pub(super) fn new(clients: usize) -> Store {
        Store {
            clients: vec![Client::default(); clients],
            ops: BTreeMap::new(),
            next_op: 1,
            next_req: 1,
            reqs: BTreeMap::new(),
            history: Vec::new(),
            acked: Vec::new(),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos() as u64
}

impl World {
    fn client_delay(&mut self) -> Duration {
        us(self.rng.range(20, 1000))
    }

    pub(super) fn start_clients(&mut self) {
        let Some(st) = self.store.as_mut() else {
            return;
        };
        let n = st.clients.len();
        for c in 0..n {
            let target = self.rng.range(1, self.p.n as u64) as i64;
            if let Some(st) = self.store.as_mut() {
                st.clients[c].target = target;
            }
            let d = ms(self.rng.range(50, 500));
            self.schedule(d, Ev::ClientNext { client: c });
        }
    }

    pub(super) fn client_next(&mut self, c: usize) {
        let keys = self.p.keys.max(1);
        let write = self.rng.chance(600);
        let key = self.rng.range(0, u64::from(keys) - 1) as u8;
        // Now and then a client asks another server than the one it
        // believes leads (a load balancer, a stale address book): that is
        // how a deposed leader gets asked after the majority moved on.
        let stray = self.rng.chance(200);
        let random = self.rng.range(1, self.p.n as u64) as i64;
        let now = self.now;
        let Some(st) = self.store.as_mut() else {
            return;
        };
        let cl = &mut st.clients[c];
        cl.counter += 1;
        let kind = if write {
            Kind::Write(key, ((c as u64 + 1) << 40) | cl.counter)
        } else {
            Kind::Read(key)
        };
        let op = st.next_op;
        st.next_op += 1;
        st.ops.insert(
            op,
            OpInfo {
                client: c,
                kind,
                invoke: now,
                attempts: 0,
            },
        );
        cl.pending = Some(op);
        let target = if stray { random } else { cl.target };
        let d = self.client_delay();
        self.schedule(
            d,
            Ev::ClientArrive {
                client: c,
                peer: target,
                op,
            },
        );
        let t = self.p.client_timeout;
        self.schedule(t, Ev::ClientTimeout { client: c, op });
    }

    fn reply(&mut self, c: usize, op: u64, reply: Reply) {
        let d = self.client_delay();
        self.schedule(
            d,
            Ev::ClientReply {
                client: c,
                op,
                reply,
            },
        );
    }

    /// A client request reaches `peer`.
    pub(super) fn client_arrive(&mut self, c: usize, peer: i64, op: u64) {
        let Some(info) = self.store.as_ref().and_then(|st| st.ops.get(&op).copied()) else {
            return;
        };
        if !self.alive(peer) {
            return self.reply(c, op, Reply::NotApplied { redirect: None });
        }
        let i = self.idx(peer);
        let redirect = match &self.peers[i].role {
            Role::Leading(l) if l.m.is_established() => None,
            Role::Leading(_) => Some(Some(peer)),
            Role::Learning(l) => Some(Some(l.leader)),
            _ => Some(None),
        };
        if let Some(redirect) = redirect {
            return self.reply(c, op, Reply::NotApplied { redirect });
        }
        if let (Kind::Read(key), Some(InjectedBug::StaleRead)) = (info.kind, self.bug) {
            let v = self.peers[i].kv.map.get(&key).copied();
            return self.reply(c, op, Reply::Read(v));
        }
        let Some(st) = self.store.as_mut() else {
            return;
        };
        let req = st.next_req;
        st.next_req += 1;
        st.reqs.insert((peer, req), op);
        match info.kind {
            Kind::Write(key, value) => {
                self.leader_call(peer, None, |m, now| {
                    m.propose(now, entry_data(key, value), req)
                });
            }
            Kind::Read(_) => {
                self.leader_call(peer, None, |m, now| m.read_barrier(now, req));
            }
        }
    }

    pub(super) fn propose_done(&mut self, sid: i64, req: ReqId, result: Result<i64, RequestError>) {
        let Some(op) = self
            .store
            .as_mut()
            .and_then(|st| st.reqs.remove(&(sid, req)))
        else {
            return;
        };
        let Some(info) = self.store.as_ref().and_then(|st| st.ops.get(&op).copied()) else {
            return;
        };
        let reply = match result {
            Ok(z) => {
                self.check_acknowledged_write(sid, z);
                if let (Kind::Write(key, value), Some(st)) = (info.kind, self.store.as_mut()) {
                    st.acked.push((z, key, value));
                }
                Reply::Written(z)
            }
            Err(RequestError::NotEstablished | RequestError::NoReplicatedLog) => {
                Reply::NotApplied {
                    redirect: Some(sid),
                }
            }
            Err(RequestError::OutcomeUnknown | RequestError::TermEnded) => Reply::Unknown,
        };
        self.reply(info.client, op, reply);
    }

    pub(super) fn barrier_done(&mut self, sid: i64, req: ReqId, result: Result<i64, RequestError>) {
        let Some(op) = self
            .store
            .as_mut()
            .and_then(|st| st.reqs.remove(&(sid, req)))
        else {
            return;
        };
        let Some(info) = self.store.as_ref().and_then(|st| st.ops.get(&op).copied()) else {
            return;
        };
        let reply = match (result, info.kind) {
            (Ok(_), Kind::Read(key)) => {
                Reply::Read(self.peers[self.idx(sid)].kv.map.get(&key).copied())
            }
            _ => Reply::Unknown,
        };
        self.reply(info.client, op, reply);
    }

    /// A crash drops the connections of the clients waiting on `sid`.
    pub(super) fn store_crashed(&mut self, sid: i64) {
        let Some(st) = self.store.as_mut() else {
            return;
        };
        let lost: Vec<u64> = st
            .reqs
            .iter()
            .filter(|((s, _), _)| *s == sid)
            .map(|(_, op)| *op)
            .collect();
        st.reqs.retain(|(s, _), _| *s != sid);
        for op in lost {
            if let Some(info) = self.store.as_ref().and_then(|st| st.ops.get(&op).copied()) {
                self.reply(info.client, op, Reply::Unknown);
            }
        }
    }

    pub(super) fn client_reply(&mut self, c: usize, op: u64, reply: Reply) {
        let now = self.now;
        let n = self.p.n as u64;
        let random = self.rng.range(1, n) as i64;
        let backoff = ms(self.rng.range(1, 30));
        let think = us(self.rng.range(0, self.p.think_hi_us));
        let Some(st) = self.store.as_mut() else {
            return;
        };
        if st.clients[c].pending != Some(op) {
            return;
        }
        let Some(info) = st.ops.get_mut(&op) else {
            return;
        };
        match (reply, info.kind) {
            (Reply::NotApplied { redirect }, _) => {
                info.attempts += 1;
                st.clients[c].target = redirect.unwrap_or(random);
                if info.attempts < 50 {
                    let target = st.clients[c].target;
                    self.schedule(
                        backoff,
                        Ev::ClientArrive {
                            client: c,
                            peer: target,
                            op,
                        },
                    );
                    return;
                }
            }
            (Reply::Written(_), Kind::Write(key, value)) => {
                st.history.push(Op::write(
                    c as u64,
                    key,
                    value,
                    nanos(info.invoke),
                    nanos(now),
                ));
                self.stats.writes_acked += 1;
            }
            (Reply::Read(v), Kind::Read(key)) => {
                st.history
                    .push(Op::read(c as u64, key, v, nanos(info.invoke), nanos(now)));
                self.stats.reads_checked += 1;
            }
            (Reply::Unknown, Kind::Write(key, value)) => {
                st.history
                    .push(Op::write_unknown(c as u64, key, value, nanos(info.invoke)));
                self.stats.writes_unknown += 1;
                st.clients[c].target = random;
            }
            _ => st.clients[c].target = random,
        }
        st.clients[c].pending = None;
        self.schedule(think, Ev::ClientNext { client: c });
    }

    pub(super) fn client_timeout(&mut self, c: usize, op: u64) {
        let pending = self
            .store
            .as_ref()
            .is_some_and(|st| st.clients[c].pending == Some(op));
        if pending {
            self.client_reply(c, op, Reply::Unknown);
        }
    }

    // ----- the state machine -------------------------------------------------

    /// Applies committed entries in order (`Deliver`).
    pub(super) fn apply_entries(&mut self, sid: i64, es: &[Entry]) {
        if self.p.mode != crate::zab::Mode::Store {
            return;
        }
        let now = self.now;
        let i = self.idx(sid);
        for e in es {
            let prev = self.peers[i].kv.applied;
            let r = invariants::applied_only_committed_in_order(
                now,
                sid,
                &self.truth.committed,
                prev,
                e.zxid,
                super::truth::hash(&e.data),
            );
            self.fail(r);
            let durable = self.peers[i].disk.last_durable_zxid();
            let r = invariants::applied_not_ahead_of_log(now, sid, e.zxid, durable);
            self.fail(r);
            if let Some((k, v)) = parse_entry(&e.data) {
                self.peers[i].kv.map.insert(k, v);
            }
            self.peers[i].kv.applied = e.zxid;
        }
    }

    /// `ApplyFromLog`: applies the log's entries after the applied zxid, up
    /// to `up_to`.
    pub(super) fn apply_from_log(&mut self, sid: i64, up_to: i64) {
        let i = self.idx(sid);
        let applied = self.peers[i].kv.applied;
        let entries: Vec<Entry> = match self.peers[i]
            .disk
            .log
            .read_after(applied, ReadLimit::UNLIMITED)
        {
            Ok(es) => es
                .into_iter()
                .filter(|e| e.zxid <= up_to)
                .map(|e| Entry::new(e.zxid, e.data))
                .collect(),
            Err(_) => Vec::new(),
        };
        self.apply_entries(sid, &entries);
        let now = self.now;
        let got = self.peers[i].kv.applied;
        if got < up_to && self.checks && !self.end_to_end_only {
            self.fail(Err(Violation {
                invariant: "applied_only_committed_in_order",
                at: now,
                detail: format!(
                    "sid {sid}: ApplyFromLog up to {up_to:#x}, but the log only holds entries to {got:#x}"
                ),
            }));
        }
    }

    /// A snapshot replaces the state machine (SNAP, or a restart).
    pub(super) fn install_state(&mut self, sid: i64, zxid: i64, data: &[u8]) {
        let i = self.idx(sid);
        let mut kv = Kv::decode(data).unwrap_or_default();
        kv.applied = zxid;
        self.peers[i].kv = kv;
    }

    /// A (re)started process loads its state machine from its snapshot.
    pub(super) fn load_state(&mut self, sid: i64) {
        let i = self.idx(sid);
        let snap = self.peers[i].disk.log.snapshot().ok().flatten();
        match snap {
            Some(s) => self.install_state(sid, s.zxid, &s.data),
            None => self.peers[i].kv = Kv::default(),
        }
    }

    /// A role ended (nothing to do: the machine failed its pending
    /// requests before its `Exit`).
    pub(super) fn store_role_ended(&mut self, _sid: i64) {}

    /// The end of the schedule: final reads on the converged leader, the
    /// linearizability check, and no acknowledged write lost.
    pub(super) fn final_store_checks(&mut self) {
        let now = self.now;
        let leader = self
            .peers
            .iter()
            .find(|pp| pp.alive && matches!(&pp.role, Role::Leading(l) if l.m.is_established()))
            .map(|pp| pp.sid);
        let keys = self.p.keys;
        let Some(st) = self.store.as_mut() else {
            return;
        };
        // Writes still in flight: their outcome is unknown.
        for cl in &st.clients {
            if let Some(info) = cl.pending.and_then(|op| st.ops.get(&op)) {
                if let Kind::Write(key, value) = info.kind {
                    st.history.push(Op::write_unknown(
                        info.client as u64,
                        key,
                        value,
                        nanos(info.invoke),
                    ));
                }
            }
        }
        let acked = st.acked.clone();
        if let Some(l) = leader {
            let li = self.idx(l);
            for key in 0..keys {
                let v = self.peers[li].kv.map.get(&key).copied();
                if let Some(st) = self.store.as_mut() {
                    st.history
                        .push(Op::read(u64::MAX, key, v, nanos(now), nanos(now)));
                }
            }
            let disk = &self.peers[li].disk;
            let r = invariants::no_lost_write(now, l, &acked, |z| disk.durably_holds(z));
            self.fail(r);
        }
        let Some(st) = self.store.as_ref() else {
            return;
        };
        match linearizability::check(&st.history, CheckOptions::default()) {
            Ok(report) => {
                for k in &report.keys {
                    match &k.verdict {
                        KeyVerdict::NotLinearizable(v) => {
                            let detail = format!("{} ({} ops on the key)", v.reason, k.ops);
                            self.fail(Err(Violation {
                                invariant: "linearizable",
                                at: now,
                                detail,
                            }));
                            break;
                        }
                        KeyVerdict::Undecided => self.stats.keys_undecided += 1,
                        KeyVerdict::Linearizable { .. } => {}
                    }
                }
            }
            Err(e) => self.fail(Err(Violation {
                invariant: "linearizable",
                at: now,
                detail: format!("malformed history: {e}"),
            })),
        }
    }
}
