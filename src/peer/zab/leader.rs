//! The leader's role thread: binds the quorum port at once, accepts
//! learners on one thread per listen address, runs a reader and a writer
//! thread per learner, and executes [`zab::Leader`]'s actions (see
//! `runtime` for the thread layout).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};

use super::conn::{read_loop, write_loop, CloseCause, ConnEvent, WriteQueue};
use super::net::{Closer, ListenerStopper, QuorumListener, QuorumStream};
use super::runtime::{spawn, wait, Clock, ResignRequest, RoleEnv, RoleIn, SendBatch, Wake, TURN};
use super::{LearnerCounts, ZabExit, ZabPhase};
use crate::peer::apply::ApplyMsg;
use crate::peer::durable::{IoDone, IoOp};
use crate::peer::replica::{ApiRequest, Completion, ReplicationError};
use crate::tls::QuorumTls;
use crate::zab::{ConnId, Leader, LeaderAction, ReqId, StepDown};

/// A learner connection as the role thread holds it.
struct Conn {
    queue: Arc<WriteQueue>,
    closer: Closer,
}

/// Leads until the term ends; returns why.
pub(crate) fn run(env: &RoleEnv<'_>) -> ZabExit {
    let listeners = match bind(env) {
        Ok(l) => l,
        Err(e) => {
            env.host.phase(ZabPhase::Discovery);
            log::warn!("LEADING: cannot start: {e}");
            return e;
        }
    };
    let (tx, rx) = crossbeam_channel::unbounded::<RoleIn>();
    let next_conn = Arc::new(AtomicU64::new(1));
    let threads: Arc<parking_lot::Mutex<Vec<JoinHandle<()>>>> = Arc::default();
    let mut stoppers: Vec<ListenerStopper> = Vec::new();
    let mut acceptors: Vec<JoinHandle<()>> = Vec::new();
    // Disconnected once every acceptor has returned.
    let (alive_tx, alive_rx) = crossbeam_channel::bounded::<()>(0);
    for l in listeners {
        stoppers.push(l.stopper());
        let (tx, next, threads) = (tx.clone(), next_conn.clone(), threads.clone());
        let tls = env.host.quorum_tls().cloned();
        let within = env.cfg.init_timeout();
        let alive = alive_tx.clone();
        let name = format!("zab-accept-{}", l.local_addr().port());
        if let Some(h) = spawn(name, move || {
            accept_loop(l, tx, next, threads, tls, within);
            drop(alive);
        }) {
            acceptors.push(h);
        }
    }
    drop(alive_tx);
    let clock = Clock::new();
    let (mut machine, first) = Leader::start(env.zab_config(), env.persisted, clock.now());
    machine.set_preferred_leader(env.preferred_leader);
    let mut run = Run {
        env,
        clock,
        machine,
        tx,
        conns: BTreeMap::new(),
        sends: SendBatch::default(),
        reqs: HashMap::new(),
        next_req: 1,
        counts: None,
        confirmed: None,
        exit: None,
    };
    run.execute(first);
    run.flush();
    run.main_loop(&rx);
    if let Some(exit) = &run.exit {
        env.host.leader_ending(exit);
    }
    // Tear down: no new learners, every connection closed, threads joined.
    for s in &stoppers {
        s.stop();
    }
    // The wake-up connection ends each acceptor at once; should one not
    // arrive (a firewall on loopback?), do not hang the role's end on it.
    let stopped = matches!(
        alive_rx.recv_timeout(Duration::from_secs(1)),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected)
    );
    if stopped {
        for h in acceptors {
            let _ = h.join();
        }
    } else {
        log::warn!("a quorum-port acceptor did not stop within 1 s; leaving it behind");
    }
    for c in run.conns.values() {
        c.queue.close();
        c.closer.close();
    }
    // Connections accepted but not yet seen by the role thread.
    while let Ok(m) = rx.try_recv() {
        if let RoleIn::Accepted { queue, closer, .. } = m {
            queue.close();
            closer.close();
        }
    }
    let handles = std::mem::take(&mut *threads.lock());
    for h in handles {
        let _ = h.join();
    }
    env.host.learners(LearnerCounts::default());
    if let Some(s) = env.shared {
        s.set_quorum_confirmed(None);
    }
    let exit = run.exit.take().unwrap_or(ZabExit::Shutdown);
    log::warn!("LEADING: leaving the role: {exit}");
    exit
}

/// Binds every quorum listen address; one is enough to lead.
fn bind(env: &RoleEnv<'_>) -> Result<Vec<QuorumListener>, ZabExit> {
    let mut out = Vec::new();
    let mut first_err = None;
    for (i, addr) in env.cfg.quorum_listen_addrs.iter().enumerate() {
        let addr = &listen_address(env, i, *addr);
        match QuorumListener::bind(*addr) {
            Ok(l) => out.push(l),
            Err(error) => {
                log::warn!("cannot bind quorum address {addr}: {error}");
                first_err.get_or_insert(ZabExit::BindFailed {
                    addr: addr.to_string(),
                    error: error.to_string(),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(first_err.unwrap_or(ZabExit::NoQuorumAddress {
            sid: env.cfg.my_sid,
        }));
    }
    Ok(out)
}

/// The `i`th quorum address to bind: a name in this server's own line is
/// looked up again now (its address may have changed since start-up, as
/// in a Kubernetes pod restart), falling back to the start-up answer;
/// wildcard binds (`quorumListenOnAllIPs`) stay as they are.
fn listen_address(env: &RoleEnv<'_>, i: usize, start_up: SocketAddr) -> SocketAddr {
    let hosts = env.cfg.quorum_hosts.get(&env.cfg.my_sid);
    let host = match hosts {
        Some(h) if h.len() == env.cfg.quorum_listen_addrs.len() => &h[i],
        _ => return start_up,
    };
    if start_up.ip().is_unspecified() || !host.is_name() {
        return start_up;
    }
    match host.resolve(&*env.cfg.resolver) {
        Ok(now) => now,
        Err(e) => {
            log::warn!("{e}; binding the quorum port at {start_up} as resolved at start-up");
            start_up
        }
    }
}

/// One listen address: accept, then set each connection up (with quorum
/// TLS, on a thread of its own: the handshake must not hold up the next
/// accept).
fn accept_loop(
    l: QuorumListener,
    tx: Sender<RoleIn>,
    next: Arc<AtomicU64>,
    threads: Arc<parking_lot::Mutex<Vec<JoinHandle<()>>>>,
    tls: Option<QuorumTls>,
    within: Duration,
) {
    loop {
        let stream = match l.accept() {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => {
                if l.is_stopped() {
                    return;
                }
                // EMFILE and friends: keep leading, try again shortly.
                log::warn!("accept on the quorum port failed: {e}");
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let conn = ConnId(next.fetch_add(1, Ordering::Relaxed));
        match &tls {
            None => {
                if !start_conn(stream, conn, &tx, &threads) {
                    return;
                }
            }
            Some(t) => {
                let (t, tx2, threads2) = (t.clone(), tx.clone(), threads.clone());
                let h = spawn(format!("zab-learner-{}-tls", conn.0), move || match stream
                    .secure_inbound(Some(&t), within)
                {
                    Ok(s) => {
                        start_conn(s, conn, &tx2, &threads2);
                    }
                    Err(why) => log::warn!("learner connection {conn}: {why}"),
                });
                threads.lock().extend(h);
            }
        }
    }
}

/// Starts a connection's writer and reader and tells the role thread
/// (before the reader can report anything). False once the role is over.
fn start_conn(
    stream: QuorumStream,
    conn: ConnId,
    tx: &Sender<RoleIn>,
    threads: &parking_lot::Mutex<Vec<JoinHandle<()>>>,
) -> bool {
    let peer = stream.peer_addr();
    let (reader, writer, closer) = match stream.split() {
        Ok(parts) => parts,
        Err(e) => {
            log::warn!("learner connection {conn} from {peer}: setup failed: {e}");
            return true;
        }
    };
    log::info!("learner connection {conn} from {peer}");
    let queue = WriteQueue::new();
    let accepted = RoleIn::Accepted {
        conn,
        queue: queue.clone(),
        closer: closer.clone(),
    };
    if tx.send(accepted).is_err() {
        closer.close();
        return false;
    }
    let mut started = Vec::new();
    let (q, c) = (queue.clone(), closer.clone());
    started.extend(spawn(format!("zab-learner-{}-wr", conn.0), move || {
        write_loop(q, writer, c)
    }));
    let to_role = tx.clone();
    started.extend(spawn(format!("zab-learner-{}-rd", conn.0), move || {
        read_loop(reader, None, to_role, move |ev| RoleIn::Conn(conn, ev))
    }));
    if started.len() < 2 {
        closer.close();
        queue.close();
    }
    threads.lock().extend(started);
    true
}

struct Run<'a, 'e> {
    env: &'a RoleEnv<'e>,
    clock: Clock,
    machine: Leader,
    tx: Sender<RoleIn>,
    conns: BTreeMap<ConnId, Conn>,
    sends: SendBatch,
    reqs: HashMap<ReqId, Completion>,
    next_req: ReqId,
    counts: Option<LearnerCounts>,
    confirmed: Option<Duration>,
    exit: Option<ZabExit>,
}

impl Run<'_, '_> {
    fn main_loop(&mut self, rx: &Receiver<RoleIn>) {
        while self.exit.is_none() {
            let deadline = self.machine.next_deadline();
            let wake = wait(self.env, rx, &self.clock, deadline);
            let mut handled = 0;
            let mut next = Some(wake);
            while let Some(w) = next.take() {
                match w {
                    Wake::Input(m) => self.on_input(m),
                    Wake::Request(r) => self.on_requests(r),
                    Wake::Stop => {
                        let out = self.machine.step_down(self.clock.now(), StepDown::Shutdown);
                        self.execute(out);
                    }
                    Wake::Resign(r) => self.on_resign(r),
                    Wake::Timer => {}
                }
                handled += 1;
                if self.exit.is_some() || handled >= TURN {
                    break;
                }
                next = rx.try_recv().ok().map(Wake::Input);
            }
            let now = self.clock.now();
            if self.exit.is_none() && self.machine.next_deadline().is_some_and(|d| d <= now) {
                let out = self.machine.timer(now);
                self.execute(out);
            }
            self.flush();
            self.publish();
        }
    }

    fn on_input(&mut self, m: RoleIn) {
        let now = self.clock.now();
        let out = match m {
            RoleIn::Accepted {
                conn,
                queue,
                closer,
            } => {
                self.conns.insert(conn, Conn { queue, closer });
                self.machine.learner_connected(now, conn)
            }
            RoleIn::Conn(conn, ConnEvent::Packets(packets)) => {
                let mut out = Vec::new();
                for p in packets {
                    out.extend(self.machine.packet(now, conn, p));
                }
                out
            }
            RoleIn::Conn(_, ConnEvent::Heard | ConnEvent::SnapshotSkipped(_)) => Vec::new(),
            RoleIn::Conn(conn, ConnEvent::Closed(cause)) => {
                if let Some(c) = self.conns.remove(&conn) {
                    self.sends.discard(conn);
                    c.queue.close();
                    c.closer.close();
                    if !matches!(cause, CloseCause::Eof) {
                        log::debug!("learner connection {conn}: {cause}");
                    }
                    self.machine.learner_closed(now, conn)
                } else {
                    Vec::new()
                }
            }
            RoleIn::Connected { closer, .. } => {
                closer.close();
                Vec::new()
            }
            RoleIn::ConnectFailed(_) => Vec::new(),
            RoleIn::Io(done) => match done {
                IoDone::AcceptedEpoch(e) => self.machine.accepted_epoch_durable(now, e),
                IoDone::CurrentEpoch(e) => self.machine.current_epoch_durable(now, e),
                IoDone::LogDurable(z) => self.machine.log_durable(now, z),
                IoDone::LogRead(conn, r) => self.machine.log_read(now, conn, r),
                IoDone::SnapshotRead(conn, s) => self.machine.snapshot_read(now, conn, s),
                IoDone::ReadFailed(conn, e) => self.machine.read_failed(now, conn, &e),
                IoDone::Failed(what, e) => self.machine.persist_failed(now, what, &e),
                IoDone::Truncated(_) | IoDone::Installed(_) => Vec::new(),
            },
        };
        self.execute(out);
    }

    /// Requests: every proposal already queued goes into one batch (one
    /// `AppendLog`, one PROPOSAL burst per follower).
    fn on_requests(&mut self, first: ApiRequest) {
        let mut batch: Vec<(Bytes, ReqId)> = Vec::new();
        let mut pending = Some(first);
        let mut taken = 0;
        while let Some(r) = pending.take() {
            match r {
                ApiRequest::Propose { data, done } => {
                    let req = self.new_req(done);
                    batch.push((data, req));
                }
                ApiRequest::Barrier { done } => self.barrier(done),
            }
            taken += 1;
            if taken < 4 * TURN {
                pending = self.env.requests.and_then(|r| r.try_recv().ok());
            }
        }
        if !batch.is_empty() {
            let out = self.machine.propose_batch(self.clock.now(), batch);
            self.execute(out);
        }
    }

    /// The embedder resigns: the machine ends the term (its connections
    /// close at the role's end, so followers look again at once). A
    /// request meant for another term is dropped.
    fn on_resign(&mut self, r: ResignRequest) {
        if r.epoch.is_some_and(|e| Some(e) != self.machine.epoch()) {
            log::debug!("resignation {r:?} is for another term; dropped");
            return;
        }
        log::info!(
            "LEADING - sid {}: resigning (not a candidate for {} ms)",
            self.env.cfg.my_sid,
            r.hold_off.as_millis()
        );
        let out = self.machine.step_down(
            self.clock.now(),
            StepDown::Resign {
                hold_off: r.hold_off,
            },
        );
        self.execute(out);
    }

    fn new_req(&mut self, done: Completion) -> ReqId {
        let req = self.next_req;
        self.next_req += 1;
        self.reqs.insert(req, done);
        req
    }

    /// A read barrier: the lease fast path when one is configured and
    /// still valid, else a PING round with a quorum.
    fn barrier(&mut self, done: Completion) {
        let now = self.clock.now();
        let lease = self.env.shared.and_then(|s| s.lease());
        if let (Some(lease), Some(at), true) = (
            lease,
            self.machine.quorum_confirmed_at(),
            self.machine.is_established(),
        ) {
            if now < at + lease {
                let commit = self.machine.commit_zxid();
                self.env.to_apply(ApplyMsg::Complete(done, Ok(commit)));
                return;
            }
        }
        let req = self.new_req(done);
        let out = self.machine.read_barrier(now, req);
        self.execute(out);
    }

    fn execute(&mut self, actions: Vec<LeaderAction>) {
        for a in actions {
            match a {
                LeaderAction::Send { conn, packet } => self.sends.push(conn, packet),
                LeaderAction::Close { conn, reason } => {
                    self.sends.discard(conn);
                    if let Some(c) = self.conns.remove(&conn) {
                        log::debug!("closing learner connection {conn}: {reason}");
                        c.queue.close();
                        c.closer.close();
                    }
                }
                LeaderAction::PersistAcceptedEpoch(e) => {
                    self.env.submit(IoOp::AcceptedEpoch(e), &self.tx)
                }
                LeaderAction::PersistCurrentEpoch(e) => {
                    self.env.submit(IoOp::CurrentEpoch(e), &self.tx)
                }
                LeaderAction::AppendLog(entries) => {
                    self.env.submit(IoOp::Append(entries), &self.tx)
                }
                LeaderAction::ReadLog { conn, after, .. } => {
                    self.env.submit(IoOp::ReadLog { conn, after }, &self.tx)
                }
                LeaderAction::ReadSnapshot { conn, .. } => {
                    self.env.submit(IoOp::ReadSnapshot { conn }, &self.tx)
                }
                LeaderAction::Phase(p) => self.env.host.phase(p),
                LeaderAction::Established { epoch } => {
                    log::debug!(
                        "leader sid {} established epoch {epoch}",
                        self.env.cfg.my_sid
                    )
                }
                LeaderAction::SetVoteZxid(z) => self.env.host.set_last_zxid(z),
                LeaderAction::ApplyFromLog { up_to } => self.env.to_apply(ApplyMsg::FromLog(up_to)),
                LeaderAction::Deliver(entries) => self.env.to_apply(ApplyMsg::Deliver(entries)),
                LeaderAction::ProposeDone { req, result } => self.complete(req, result),
                LeaderAction::BarrierDone { req, result } => self.complete(req, result),
                LeaderAction::Exit(reason) => self.exit = Some(reason),
            }
        }
    }

    /// A request's result: successes through the apply thread (they wait
    /// for the entries applied before them), failures at once.
    fn complete(&mut self, req: ReqId, result: Result<i64, crate::zab::RequestError>) {
        let Some(done) = self.reqs.remove(&req) else {
            return;
        };
        match result {
            Ok(z) => self.env.to_apply(ApplyMsg::Complete(done, Ok(z))),
            Err(e) => done.complete(Err(ReplicationError::from_request(e))),
        }
    }

    /// Hands the turn's packets to the writers; overflowing learners are
    /// closed (a learner that stopped reading must not hold the leader).
    fn flush(&mut self) {
        let conns = &self.conns;
        let overflowed = self.sends.flush(|c| conns.get(&c).map(|x| x.queue.clone()));
        for (conn, o) in overflowed {
            if let Some(c) = self.conns.remove(&conn) {
                log::warn!(
                    "learner connection {conn}: {} bytes queued and not read; closing it",
                    o.0
                );
                c.queue.close();
                c.closer.close();
                let out = self.machine.learner_closed(self.clock.now(), conn);
                self.execute(out);
            }
        }
    }

    /// Learner counts for the leader metrics, and the quorum confirmation
    /// time for the embedder, when they change.
    fn publish(&mut self) {
        let counts = self.learner_counts();
        if self.counts != Some(counts) {
            self.counts = Some(counts);
            self.env.host.learners(counts);
        }
        let confirmed = self.machine.quorum_confirmed_at();
        if confirmed != self.confirmed {
            self.confirmed = confirmed;
            if let Some(s) = self.env.shared {
                s.set_quorum_confirmed(confirmed.map(|d| self.clock.instant(d)));
            }
        }
    }

    fn learner_counts(&self) -> LearnerCounts {
        let kinds = self.machine.learner_kinds();
        let mut c = LearnerCounts {
            learners: kinds.len(),
            ..LearnerCounts::default()
        };
        for (_, observer, voter, synced) in kinds {
            if !synced {
                continue;
            }
            if observer {
                c.synced_observers += 1;
            } else {
                c.synced_followers += 1;
                if !voter {
                    c.synced_non_voting_followers += 1;
                }
            }
        }
        c
    }
}

impl Drop for Run<'_, '_> {
    fn drop(&mut self) {
        // Requests the machine never answered (it answers every pending one
        // at Exit; this covers a role that ends another way).
        for (_, done) in self.reqs.drain() {
            done.complete(Err(ReplicationError::OutcomeUnknown));
        }
    }
}
