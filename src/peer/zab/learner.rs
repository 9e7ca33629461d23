//! The learner's role thread (follower or observer): dials the leader as
//! [`zab::Learner`] asks (one connect thread per attempt, which becomes the
//! connection's reader once connected), runs a writer thread, and executes
//! the machine's actions (see `runtime` for the thread layout).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::conn::{read_loop, write_loop, CloseCause, ConnEvent, WriteQueue};
use super::net::{self, Closer};
use super::runtime::{spawn, wait, Clock, RoleEnv, RoleIn, SendBatch, Wake, TURN};
use super::{ZabExit, ZabPhase};
use crate::net::{HostPort, Resolver};
use crate::peer::apply::ApplyMsg;
use crate::peer::durable::{IoDone, IoOp};
use crate::peer::replica::{ApiRequest, ReplicationError};
use crate::tls::QuorumTls;
use crate::zab::{ConnId, Learner, LearnerAction, LearnerRole, Mode, StepDown};

/// The learner's one connection, as the send batch names it.
const LEADER: ConnId = ConnId(0);

/// How long a refused store-mode follow is logged at error once per
/// leader (the election keeps choosing the same Java leader).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// Follows (or observes) `leader_sid` until the role ends; returns why.
pub(crate) fn run(env: &RoleEnv<'_>, leader_sid: i64) -> ZabExit {
    let role_name = if env.cfg.is_observer {
        "OBSERVING"
    } else {
        "FOLLOWING"
    };
    let targets = dial_targets(env.cfg, leader_sid);
    if targets.is_empty() {
        env.host.phase(ZabPhase::Discovery);
        let exit = ZabExit::NoQuorumAddress { sid: leader_sid };
        log::warn!("{role_name}: leaving the role for leader sid {leader_sid}: {exit}");
        return exit;
    }
    let role = if env.cfg.is_observer {
        LearnerRole::Observer
    } else {
        LearnerRole::Follower
    };
    let (tx, rx) = crossbeam_channel::unbounded::<RoleIn>();
    let clock = Clock::new();
    let (machine, first) = Learner::start(
        env.zab_config(),
        leader_sid,
        role,
        env.persisted,
        clock.now(),
    );
    let mut run = Run {
        env,
        clock,
        machine,
        tx,
        targets,
        leader_sid,
        conn: None,
        sends: SendBatch::default(),
        threads: Vec::new(),
        exit: None,
    };
    run.execute(first);
    run.flush();
    run.main_loop(&rx);
    let connected = run.conn.is_some();
    if let Some((queue, closer)) = run.conn.take() {
        queue.close();
        closer.close();
    }
    // A connection that arrived after the end (a late dial).
    while let Ok(m) = rx.try_recv() {
        if let RoleIn::Connected { queue, closer, .. } = m {
            queue.close();
            closer.close();
        }
    }
    for h in std::mem::take(&mut run.threads) {
        // Connect threads still dialling end by themselves at their
        // timeout and close what they get (their role channel is gone);
        // joining them could hold the next role for up to initLimit.
        if h.is_finished() || connected {
            let _ = h.join();
        }
    }
    let exit = run.exit.take().unwrap_or(ZabExit::Shutdown);
    if let ZabExit::LeaderNotReplicating { sid } = exit {
        let key = format!("not-replicating {} {sid}", env.cfg.my_sid);
        if env.limiter.allow(&key, REFUSAL_LOG_EVERY) {
            log::error!("{role_name}: refusing to follow leader sid {sid}: {exit}");
        } else {
            log::debug!("{role_name}: refusing to follow leader sid {sid}: {exit}");
        }
    } else {
        log::warn!("{role_name}: leaving the role for leader sid {leader_sid}: {exit}");
    }
    exit
}

struct Run<'a, 'e> {
    env: &'a RoleEnv<'e>,
    clock: Clock,
    machine: Learner,
    tx: Sender<RoleIn>,
    targets: Vec<DialTarget>,
    leader_sid: i64,
    conn: Option<(Arc<WriteQueue>, Closer)>,
    sends: SendBatch,
    threads: Vec<std::thread::JoinHandle<()>>,
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
                    Wake::Request(r) => self.on_request(r),
                    Wake::Stop => {
                        let out = self.machine.step_down(self.clock.now(), StepDown::Shutdown);
                        self.execute(out);
                    }
                    Wake::Resign(r) => {
                        log::debug!("not leading: resignation {r:?} dropped")
                    }
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
        }
    }

    /// A learner serves no requests: the leader is elsewhere.
    fn on_request(&mut self, r: ApiRequest) {
        r.fail(ReplicationError::NotLeader {
            leader: Some(self.leader_sid),
        });
        if let Some(reqs) = self.env.requests {
            while let Ok(r) = reqs.try_recv() {
                r.fail(ReplicationError::NotLeader {
                    leader: Some(self.leader_sid),
                });
            }
        }
    }

    fn on_input(&mut self, m: RoleIn) {
        let now = self.clock.now();
        let out = match m {
            RoleIn::Connected {
                queue,
                closer,
                peer,
            } => {
                if self.conn.is_some() || self.exit.is_some() {
                    queue.close();
                    closer.close();
                    Vec::new()
                } else {
                    log::debug!("connected to leader sid {} at {peer}", self.leader_sid);
                    self.conn = Some((queue, closer));
                    self.machine.connected(now)
                }
            }
            RoleIn::ConnectFailed(e) => self.machine.connect_failed(now, &e),
            RoleIn::Conn(_, ConnEvent::Packets(packets)) => {
                let mut out = Vec::new();
                for p in packets {
                    out.extend(self.machine.packet(now, p));
                }
                out
            }
            RoleIn::Conn(_, ConnEvent::Heard) => self.machine.heard(now),
            RoleIn::Conn(_, ConnEvent::SnapshotSkipped(s)) => self.machine.snapshot_skipped(now, s),
            RoleIn::Conn(_, ConnEvent::Closed(cause)) => match cause {
                CloseCause::Bad(e) => self.machine.stream_error(now, e),
                CloseCause::Eof => self.machine.closed(now),
                CloseCause::Io(e) => {
                    log::debug!("leader connection: {e}");
                    self.machine.closed(now)
                }
            },
            RoleIn::Accepted { closer, .. } => {
                closer.close();
                Vec::new()
            }
            RoleIn::Io(done) => match done {
                IoDone::AcceptedEpoch(e) => self.machine.accepted_epoch_durable(now, e),
                IoDone::CurrentEpoch(e) => self.machine.current_epoch_durable(now, e),
                IoDone::LogDurable(z) => self.machine.log_durable(now, z),
                IoDone::Truncated(z) => self.machine.log_truncated(now, z),
                IoDone::Installed(z) => self.machine.snapshot_installed(now, z),
                IoDone::Failed(what, e) => self.machine.persist_failed(now, what, &e),
                IoDone::LogRead(..) | IoDone::SnapshotRead(..) | IoDone::ReadFailed(..) => {
                    Vec::new()
                }
            },
        };
        self.execute(out);
    }

    fn execute(&mut self, actions: Vec<LearnerAction>) {
        for a in actions {
            match a {
                LearnerAction::Connect { attempt, timeout } => self.dial(attempt, timeout),
                LearnerAction::Send(p) => self.sends.push(LEADER, p),
                LearnerAction::PersistAcceptedEpoch(e) => {
                    self.env.submit(IoOp::AcceptedEpoch(e), &self.tx)
                }
                LearnerAction::PersistCurrentEpoch(e) => {
                    self.env.submit(IoOp::CurrentEpoch(e), &self.tx)
                }
                LearnerAction::AppendLog(entries) => {
                    self.env.submit(IoOp::Append(entries), &self.tx)
                }
                LearnerAction::TruncateLog { after } => {
                    self.env.submit(IoOp::Truncate(after), &self.tx)
                }
                LearnerAction::InstallSnapshot { zxid, data } => {
                    self.env.submit(IoOp::Install { zxid, data }, &self.tx);
                    // Queued behind the install: the apply thread reads the
                    // store's snapshot only after it is in place.
                    self.env.to_apply(ApplyMsg::Restore);
                }
                LearnerAction::Phase(p) => self.env.host.phase(p),
                LearnerAction::SetVoteZxid(z) => self.env.host.set_last_zxid(z),
                LearnerAction::ApplyFromLog { up_to } => {
                    self.env.to_apply(ApplyMsg::FromLog(up_to))
                }
                LearnerAction::Deliver(entries) => self.env.to_apply(ApplyMsg::Deliver(entries)),
                LearnerAction::Exit(reason) => self.exit = Some(reason),
            }
        }
    }

    /// One dial, on its own thread (a black-holed address must not hold the
    /// role thread); once connected that thread reads the connection.
    fn dial(&mut self, attempt: u32, timeout: Duration) {
        let target = self.targets[attempt as usize % self.targets.len()].clone();
        let resolver = self.env.cfg.resolver.clone();
        let tx = self.tx.clone();
        let mode = self.env.mode;
        let sid = self.leader_sid;
        let name = format!("zab-leader-{sid}-rd");
        let tls = self.env.host.quorum_tls().cloned();
        let h = spawn(name, move || {
            let Some(addr) = target.address(&*resolver, &tx) else {
                return;
            };
            dial_and_read(sid, addr, timeout, mode, tls.as_ref(), tx)
        });
        match h {
            Some(h) => self.threads.push(h),
            None => {
                let out = self
                    .machine
                    .connect_failed(self.clock.now(), "cannot start a connect thread");
                self.execute(out);
            }
        }
    }

    fn flush(&mut self) {
        let queue = self.conn.as_ref().map(|(q, _)| q.clone());
        let overflowed = self.sends.flush(|_| queue.clone());
        if let (Some((_, o)), Some((q, c))) = (overflowed.first(), self.conn.as_ref()) {
            // The leader stopped reading: close; the reader reports the end.
            log::warn!(
                "leader sid {}: {} bytes queued and not read; closing the connection",
                self.leader_sid,
                o.0
            );
            q.close();
            c.close();
        }
    }
}

/// One of the leader's quorum addresses, as a learner dials it.
#[derive(Clone)]
struct DialTarget {
    /// As written in `zoo.cfg` (a name is looked up before every dial).
    host: HostPort,
    /// What the name resolved to last (shared by the dial threads): used
    /// when a lookup fails, as ZooKeeper keeps the address it had
    /// (`MultipleAddresses.recreateSocketAddresses`).
    last: Arc<parking_lot::Mutex<Option<SocketAddr>>>,
}

impl DialTarget {
    /// The address to dial now, or `None` after reporting the attempt
    /// failed (the name does not resolve and never did).
    fn address(&self, resolver: &dyn Resolver, tx: &Sender<RoleIn>) -> Option<SocketAddr> {
        match self.host.resolve(resolver) {
            Ok(addr) => {
                let mut last = self.last.lock();
                if last.is_some_and(|l| l != addr) {
                    log::info!("leader quorum address {} now resolves to {addr}", self.host);
                }
                *last = Some(addr);
                Some(addr)
            }
            Err(e) => {
                let last = *self.last.lock();
                match last {
                    Some(addr) => {
                        log::warn!("{e}; dialling {} at its last address {addr}", self.host);
                        Some(addr)
                    }
                    None => {
                        let _ = tx.send(RoleIn::ConnectFailed(e.to_string()));
                        None
                    }
                }
            }
        }
    }
}

/// The leader's quorum addresses: as written when the configuration has
/// them (names resolved per dial), else the resolved snapshot.
fn dial_targets(cfg: &super::ZabConfig, leader_sid: i64) -> Vec<DialTarget> {
    let snapshot = cfg
        .quorum_addrs
        .get(&leader_sid)
        .cloned()
        .unwrap_or_default();
    match cfg.quorum_hosts.get(&leader_sid) {
        Some(hosts) if !hosts.is_empty() => hosts
            .iter()
            .map(|h| {
                // The snapshot skips names that did not resolve at start,
                // so it is matched by value, not position.
                let known = h.literal().or_else(|| {
                    snapshot
                        .iter()
                        .find(|a| a.port() == h.port())
                        .copied()
                        .filter(|_| hosts.len() == snapshot.len())
                });
                DialTarget {
                    host: h.clone(),
                    last: Arc::new(parking_lot::Mutex::new(known)),
                }
            })
            .collect(),
        _ => snapshot
            .into_iter()
            .map(|a| DialTarget {
                host: HostPort::from(a),
                last: Arc::new(parking_lot::Mutex::new(Some(a))),
            })
            .collect(),
    }
}

/// Dials `addr`; on success starts the writer, reports the connection and
/// becomes its reader.
fn dial_and_read(
    leader_sid: i64,
    addr: std::net::SocketAddr,
    timeout: Duration,
    mode: Mode,
    tls: Option<&QuorumTls>,
    tx: Sender<RoleIn>,
) {
    let stream = match net::connect(addr, timeout, tls) {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(RoleIn::ConnectFailed(format!("{addr}: {e}")));
            return;
        }
    };
    let peer = stream.peer_addr();
    let (reader, writer, closer) = match stream.split() {
        Ok(parts) => parts,
        Err(e) => {
            let _ = tx.send(RoleIn::ConnectFailed(format!("{addr}: {e}")));
            return;
        }
    };
    let queue = WriteQueue::new();
    let (q, c) = (queue.clone(), closer.clone());
    let writer = match spawn(format!("zab-leader-{leader_sid}-wr"), move || {
        write_loop(q, writer, c)
    }) {
        Some(h) => h,
        None => {
            closer.close();
            let _ = tx.send(RoleIn::ConnectFailed(format!("{addr}: no writer thread")));
            return;
        }
    };
    let connected = RoleIn::Connected {
        queue: queue.clone(),
        closer: closer.clone(),
        peer,
    };
    if tx.send(connected).is_err() {
        // The role is over.
        queue.close();
        closer.close();
        let _ = writer.join();
        return;
    }
    read_loop(reader, Some(mode), tx, |ev| RoleIn::Conn(LEADER, ev));
    queue.close();
    closer.close();
    let _ = writer.join();
}
