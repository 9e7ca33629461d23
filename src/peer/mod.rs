//! QuorumPeer: one ensemble member as operators run it (PROTOCOL.md §1,
//! §4.3, §5).
//!
//! Three threads besides the connection manager's own:
//!
//! * the **election thread** owns the sans-IO [`Fle`] and the QCM's receive
//!   queue. It sleeps until a notification arrives or the FLE timer fires,
//!   feeds the state machine and carries out what it returns (sends, dials,
//!   the next timer, a decision). It keeps running while a role runs, so
//!   LOOKING peers that ask always get this peer's current vote (§4.3 rule 3)
//!   — that is how late and restarted servers join;
//! * the **main loop** goes LOOKING → decision → role → LOOKING, publishing
//!   every step in [`PeerStatus`].
//!
//! The four-letter words and the metrics endpoint (`crate::admin`) read
//! [`PeerStatus`] and the connection manager; the binary and `PeerBuilder`
//! start them beside the peer, which knows nothing of them.

pub mod epoch;
mod role;
pub mod status;
pub mod timings;
pub mod zab;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use parking_lot::Mutex;

use crate::cnx::{CnxError, PeerEvent, Qcm, QcmConfig, Received};
use crate::config::{LearnerType, ZkConfig};
use crate::election::{Decision, Fle, FleConfig, LinkState, Output};
use crate::wire::{HandshakeFormat, ServerState};

pub use epoch::{EpochError, EpochFiles};
pub use status::{NetStats, PeerStatus, Phase, StatusSnapshot};

/// Supplies the zxid a peer votes with: the last zxid of the embedding
/// store's log. Called at the start of every election.
pub type ZxidSupplier = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Why a peer could not start.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// `zoo.cfg` has no `server.N` line for this peer's own sid.
    #[error("{path}: no server.{sid} line for this server's own sid")]
    NotInConfig {
        /// The configuration file.
        path: std::path::PathBuf,
        /// The sid.
        sid: i64,
    },
    /// The epoch files are unreadable or inconsistent.
    #[error(transparent)]
    Epoch(#[from] EpochError),
    /// The election port could not be opened.
    #[error(transparent)]
    Cnx(#[from] CnxError),
    /// A thread could not be spawned.
    #[error("cannot spawn the {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Options beyond `zoo.cfg`, for the embedding API.
#[derive(Clone, Default)]
pub struct PeerOptions {
    /// The zxid to vote with; `None` = an empty store (zxid 0).
    pub zxid_supplier: Option<ZxidSupplier>,
}

impl std::fmt::Debug for PeerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerOptions")
            .field("zxid_supplier", &self.zxid_supplier.is_some())
            .finish()
    }
}

/// Commands from the main loop to the election thread.
enum ElectionCmd {
    /// Enter LOOKING and start a new round. `silent_leader`: the leader
    /// this peer just left because it went silent.
    Start {
        last_zxid: i64,
        current_epoch: i64,
        silent_leader: Option<i64>,
    },
    /// The role ended: the FLE leaves its decided state.
    LeaveRole,
    /// Zab established this epoch: replies to LOOKING peers carry it.
    EstablishedEpoch(i64),
}

/// A running peer. [`QuorumPeer::shutdown`] (or dropping it) stops every
/// thread it started and waits for them.
pub struct QuorumPeer {
    status: Arc<PeerStatus>,
    qcm: Qcm,
    /// Dropped to tell the main loop and the role to stop (a closed channel
    /// wakes every receiver at once).
    stop: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    config: Arc<ZkConfig>,
}

impl std::fmt::Debug for QuorumPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumPeer")
            .field("sid", &self.config.my_sid)
            .field("status", &self.status.snapshot())
            .finish()
    }
}

impl QuorumPeer {
    /// Checks the epoch files, opens the election port and starts
    /// electing.
    pub fn start(config: ZkConfig, opts: PeerOptions) -> Result<QuorumPeer, PeerError> {
        let config = Arc::new(config);
        let me = config.me().ok_or_else(|| PeerError::NotInConfig {
            path: config.path.clone(),
            sid: config.my_sid,
        })?;
        let supplier: ZxidSupplier = opts.zxid_supplier.clone().unwrap_or_else(|| Arc::new(|| 0));
        let last_zxid = supplier();
        let epochs = EpochFiles::open(&config.data_dir, last_zxid)?;
        log::info!(
            "sid {}: currentEpoch {} acceptedEpoch {} last zxid {:#x} ({})",
            config.my_sid,
            epochs.current(),
            epochs.accepted(),
            last_zxid,
            epochs.dir().display()
        );
        let status = Arc::new(PeerStatus::new(
            config.my_sid,
            config.verifier.voters().len(),
            epochs.current(),
            epochs.accepted(),
        ));

        let qcm = Qcm::start(qcm_config(&config, me))?;
        {
            let q = qcm.clone();
            status.set_net_source(Arc::new(move || {
                let st = q.stats();
                NetStats {
                    connected_peers: q.connected_peers().len(),
                    notifications_sent: st.notifications_sent,
                    notifications_received: st.notifications_received,
                    bad_frames: st.bad_frames,
                }
            }));
        }

        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded::<ElectionCmd>();
        let (dec_tx, dec_rx) = crossbeam_channel::bounded::<Decision>(16);
        let participant = me.learner_type == LearnerType::Participant;

        let mut fle_cfg = FleConfig::new(config.my_sid, config.verifier.clone());
        fle_cfg.min_notification_interval = config.min_notification_interval;
        fle_cfg.max_notification_interval = config.max_notification_interval;
        let mut threads = Vec::new();
        let election = ElectionLoop {
            fle: Fle::new(fle_cfg),
            qcm: qcm.clone(),
            recv: qcm.receiver(),
            events: qcm.peer_events(),
            cmds: cmd_rx,
            decisions: dec_tx,
            base: Instant::now(),
            timer: None,
            dialled: BTreeSet::new(),
            silent: BTreeSet::new(),
            peers: config
                .servers
                .iter()
                .map(|s| s.sid)
                .filter(|&s| s != config.my_sid)
                .collect(),
        };
        threads.push(
            std::thread::Builder::new()
                .name(format!("election{}", config.my_sid))
                .spawn(move || election.run())
                .map_err(|source| PeerError::Thread {
                    what: "election",
                    source,
                })?,
        );
        let main = MainLoop {
            config: config.clone(),
            status: status.clone(),
            epochs: Arc::new(Mutex::new(epochs)),
            supplier,
            cmds: cmd_tx,
            decisions: dec_rx,
            stop: stop_rx,
            participant,
        };
        threads.push(
            std::thread::Builder::new()
                .name(format!("peer{}", config.my_sid))
                .spawn(move || main.run())
                .map_err(|source| PeerError::Thread {
                    what: "main loop",
                    source,
                })?,
        );
        Ok(QuorumPeer {
            status,
            qcm,
            stop: Some(stop_tx),
            threads,
            config,
        })
    }

    /// The live status (shared with the admin server).
    pub fn status(&self) -> &Arc<PeerStatus> {
        &self.status
    }

    /// This peer's sid.
    pub fn my_sid(&self) -> i64 {
        self.config.my_sid
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ZkConfig {
        &self.config
    }

    /// The election connection manager (hook for the embedding API, which
    /// polls its connected peers; its `peer_events` queue belongs to the
    /// election thread).
    pub fn qcm(&self) -> &Qcm {
        &self.qcm
    }

    /// Stops the role, the election and the connection manager, and joins
    /// every thread. Idempotent.
    pub fn shutdown(&mut self) {
        if self.stop.take().is_none() {
            return;
        }
        log::info!("sid {}: shutting down", self.config.my_sid);
        self.status.poke();
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
        self.qcm.shutdown();
    }
}

impl Drop for QuorumPeer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The QCM settings for this server, from `zoo.cfg`.
fn qcm_config(config: &ZkConfig, me: &crate::config::ServerSpec) -> QcmConfig {
    let listen: Vec<SocketAddr> = if config.listen_on_all_ips {
        // quorumListenOnAllIPs: bind the wildcard on the configured port,
        // still advertise the configured address.
        me.election_addrs
            .iter()
            .map(|a| {
                let any = match a.ip() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                };
                SocketAddr::new(any, a.port())
            })
            .collect()
    } else {
        me.election_addrs.clone()
    };
    let peers: BTreeMap<i64, Vec<SocketAddr>> = config
        .servers
        .iter()
        .filter(|s| s.sid != config.my_sid)
        .map(|s| (s.sid, s.election_addrs.clone()))
        .collect();
    let mut q = QcmConfig::new(config.my_sid, listen, peers);
    q.advertised_addrs = me
        .election_addrs
        .iter()
        .copied()
        .filter(|a| !a.ip().is_unspecified())
        .collect();
    if q.advertised_addrs.is_empty() {
        q.advertised_addrs = me.election_addrs.clone();
    }
    if config.multi_address_enabled {
        q.handshake_format = HandshakeFormat::V2;
    }
    q.cnx_timeout = config.cnx_timeout;
    q.handshake_timeout = config.handshake_timeout;
    q.bind_retry = config.election_port_bind_retry;
    q
}

/// The election thread's state.
struct ElectionLoop {
    fle: Fle,
    qcm: Qcm,
    recv: Receiver<Received>,
    events: Receiver<PeerEvent>,
    cmds: Receiver<ElectionCmd>,
    decisions: Sender<Decision>,
    base: Instant,
    /// Absolute (since `base`) time of the FLE's next timer.
    timer: Option<Duration>,
    /// Every configured sid but this one.
    peers: Vec<i64>,
    /// Peers we have sent to or dialled. Only their link states are told to
    /// the FLE: the QCM reports a peer never dialled as `Down`, but to the
    /// FLE `Down` means "the last dial failed", which lets it stop waiting
    /// for that peer (`fast_decide` rule (b)). A peer not dialled yet is
    /// unknown, not unreachable.
    dialled: BTreeSet<i64>,
    /// Leaders this peer left for silence and has not heard from since:
    /// reported to the FLE as Down whatever their TCP link says.
    silent: BTreeSet<i64>,
}

impl ElectionLoop {
    fn run(mut self) {
        loop {
            let now = self.base.elapsed();
            if let Some(t) = self.timer {
                if t <= now {
                    self.timer = None;
                    self.push_links();
                    let out = self.fle.on_timer(now);
                    self.execute(out);
                    continue;
                }
            }
            let wait = self
                .timer
                .map(|t| t.saturating_sub(now))
                .unwrap_or(Duration::from_secs(3600));
            select! {
                recv(self.recv) -> r => match r {
                    Ok(r) => {
                        self.silent.remove(&r.sid);
                        if self.fle.is_electing() {
                            self.push_links();
                        }
                        let out = self.fle.on_notification(self.base.elapsed(), r.sid, &r.notification);
                        self.execute(out);
                    }
                    Err(_) => break,
                },
                recv(self.events) -> e => match e {
                    Ok(PeerEvent::Up(sid) | PeerEvent::Down(sid) | PeerEvent::Unreachable(sid)) => {
                        if self.dialled.contains(&sid) {
                            let state = self.link_of(sid);
                            let pending = self.qcm.has_pending(sid);
                            let out = self.fle.on_link(self.base.elapsed(), sid, state, pending);
                            self.execute(out);
                        }
                    }
                    Err(_) => break,
                },
                recv(self.cmds) -> c => match c {
                    Ok(ElectionCmd::Start { last_zxid, current_epoch, silent_leader }) => {
                        self.silent.clear();
                        if let Some(sid) = silent_leader {
                            // Its election link is still up (a stopped
                            // process's kernel keeps ACKing), so without this
                            // the survivors would wait finalizeWait for a
                            // vote it cannot send. Hearing from it again
                            // lifts the mark.
                            self.silent.insert(sid);
                            self.dialled.insert(sid);
                        }
                        self.push_links();
                        let out = self.fle.start_election(self.base.elapsed(), last_zxid, current_epoch);
                        self.execute(out);
                    }
                    Ok(ElectionCmd::LeaveRole) => self.fle.leave_role(),
                    Ok(ElectionCmd::EstablishedEpoch(e)) => self.fle.set_established_epoch(e),
                    // The main loop is gone: shutting down.
                    Err(_) => break,
                },
                default(wait) => {}
            }
        }
    }

    /// Tells the FLE which links are up and which have unsent messages; it
    /// decides per peer whether to re-send or re-dial (PROTOCOL.md §4.4).
    fn push_links(&mut self) {
        for &sid in &self.peers {
            if self.dialled.contains(&sid) {
                let state = self.link_of(sid);
                self.fle.set_link(sid, state, self.qcm.has_pending(sid));
            }
        }
    }

    fn link_of(&self, sid: i64) -> LinkState {
        if self.silent.contains(&sid) {
            return LinkState::Down;
        }
        self.qcm.link_state(sid)
    }

    fn execute(&mut self, out: Output) {
        for s in &out.sends {
            self.qcm.send(s.to, &s.notification);
            self.dialled.insert(s.to);
        }
        for &sid in &out.dial {
            self.qcm.connect_one(sid);
            self.dialled.insert(sid);
        }
        // The FLE's deadline replaces any earlier one; None = no timer.
        self.timer = out.timer;
        if let Some(d) = out.decision {
            // The main loop may be gone (shutdown); nothing to tell then.
            let _ = self.decisions.send(d);
        }
    }
}

/// The main loop's state.
struct MainLoop {
    config: Arc<ZkConfig>,
    status: Arc<PeerStatus>,
    epochs: Arc<Mutex<EpochFiles>>,
    supplier: ZxidSupplier,
    cmds: Sender<ElectionCmd>,
    decisions: Receiver<Decision>,
    stop: Receiver<()>,
    participant: bool,
}

impl MainLoop {
    fn run(self) {
        let mut silent_leader: Option<i64> = None;
        loop {
            // zab: a zxid the Zab session set (leading: newEpoch << 32; SNAP:
            // the leader's zxid) counts too, as Java votes with its in-memory
            // lastProcessedZxid.
            let last_zxid = (self.supplier)().max(self.status.snapshot().last_zxid);
            let current_epoch = self.epochs.lock().current();
            self.status.update(|s| {
                s.state = ServerState::Looking;
                s.phase = Phase::Election;
                s.serving = false;
                s.leader_sid = -1;
                s.last_zxid = last_zxid;
                s.election_count += 1;
            });
            log::info!(
                "LOOKING (sid {}): new election, proposed zxid={:#x}, currentEpoch {current_epoch}",
                self.config.my_sid,
                last_zxid
            );
            let started = Instant::now();
            if self
                .cmds
                .send(ElectionCmd::Start {
                    last_zxid,
                    current_epoch,
                    silent_leader: silent_leader.take(),
                })
                .is_err()
            {
                log::error!("sid {}: election thread is gone", self.config.my_sid);
                return;
            }
            let decision = select! {
                recv(self.decisions) -> d => match d {
                    Ok(d) => d,
                    Err(_) => {
                        log::error!("sid {}: election thread is gone", self.config.my_sid);
                        return;
                    }
                },
                recv(self.stop) -> _ => return,
            };
            let took = started.elapsed().as_millis() as u64;
            let state = decision.state;
            log::info!(
                "{state} (sid {}, leader {}, round {:#x})",
                self.config.my_sid,
                decision.vote.leader,
                decision.election_epoch
            );
            log::info!("{state} - LEADER ELECTION TOOK - {took} MS");
            if !self.participant && state != ServerState::Observing {
                log::warn!("sid {}: an observer decided {state}", self.config.my_sid);
            }
            self.status.update(|s| {
                s.state = state;
                s.phase = Phase::Discovery;
                s.leader_sid = decision.vote.leader;
                s.election_epoch = decision.election_epoch;
                s.last_election_ms = Some(took);
                s.decided_by = Some(decision.decided_by);
            });
            let ctx = role::RoleContext {
                config: &self.config,
                status: &self.status,
                epochs: &self.epochs,
                stop: &self.stop,
                established_epoch: &|e| {
                    let _ = self.cmds.send(ElectionCmd::EstablishedEpoch(e));
                },
            };
            match role::run(&ctx, &decision) {
                role::RoleEnd::Shutdown => return,
                role::RoleEnd::LookAgain { silent_leader: s } => {
                    silent_leader = s;
                    log::info!("sid {}: {state} ended; back to LOOKING", self.config.my_sid);
                    if self.cmds.send(ElectionCmd::LeaveRole).is_err() {
                        return;
                    }
                }
            }
        }
    }
}
