//! QuorumPeer: one ensemble member as operators run it (PROTOCOL.md §1,
//! §4.3, §5).
//!
//! Three threads besides the connection manager's own:
//!
//! * the **election thread** owns the sans-IO [`Driver`] (FLE plus the link
//!   bookkeeping) and the QCM's receive and event queues. It is a thin
//!   executor: every fact (a notification, a link up or closed, a failed
//!   dial, the timer, a command from the main loop) goes to the driver as
//!   an [`crate::election::Input`], and what the driver returns (sends, dials, the next
//!   timer, a decision) is carried out. It keeps running while a role runs,
//!   so LOOKING peers that ask always get this peer's current vote (§4.3
//!   rule 3) — that is how late and restarted servers join;
//! * the **main loop** goes LOOKING → decision → role → LOOKING, publishing
//!   every step in [`PeerStatus`].
//!
//! The four-letter words and the metrics endpoint (`crate::admin`) read
//! [`PeerStatus`] and the connection manager; the binary and `PeerBuilder`
//! start them beside the peer, which knows nothing of them.

pub(crate) mod apply;
pub(crate) mod durable;
mod election_loop;
pub mod epoch;
pub mod replica;
mod role;
pub mod status;
pub mod timings;
pub mod zab;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{select, Receiver, Sender};
use parking_lot::Mutex;

use crate::cnx::{CnxError, Qcm, QcmConfig};
use crate::config::{LearnerType, ZkConfig};
use crate::election::{Decision, Driver, FleConfig};
use crate::wire::ServerState;

use election_loop::{CmdSender, ElectionCmd, ElectionLoop};
pub use epoch::{EpochError, EpochFiles};
pub use replica::{Replica, ReplicaShared, ReplicationError, ReplicationResult, StateMachine};
pub use status::{NetStats, PeerStatus, Phase, StatusSnapshot};

use apply::{Applier, ApplyMsg};
use durable::{EpochSink, IoMsg};
use replica::ReplicaParts;
use zab::runtime::{IoHandle, LogLimiter, ResignRequest, RoleIn};

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
    /// A quorum TLS store could not be used (a configuration error: the
    /// binary exits with status 2).
    #[error(transparent)]
    Tls(Box<crate::tls::TlsError>),
    /// A thread could not be spawned.
    #[error("cannot spawn the {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The replicated log's store and state machine are in use by another
    /// running instance of this peer.
    #[error("the replicated log is already in use by a running peer")]
    ReplicaBusy,
}

/// Options beyond `zoo.cfg`, for the embedding API.
#[derive(Clone, Default)]
pub struct PeerOptions {
    /// The zxid to vote with; `None` = an empty store (zxid 0). Ignored in
    /// store mode, which votes with the log's last durable zxid.
    pub zxid_supplier: Option<ZxidSupplier>,
    /// Store mode: the replicated log (store, state machine, request
    /// queue). `None`: an election-only peer (interop mode).
    pub replica: Option<Arc<Replica>>,
}

impl std::fmt::Debug for PeerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerOptions")
            .field("zxid_supplier", &self.zxid_supplier.is_some())
            .field("replica", &self.replica)
            .finish()
    }
}

/// Epoch writes of the durability pipeline: the peer's `EpochFiles`, and
/// the status fields that show them.
struct PeerEpochs {
    epochs: Arc<Mutex<EpochFiles>>,
    status: Arc<PeerStatus>,
}

impl EpochSink for PeerEpochs {
    fn write_accepted(&self, e: i64) -> Result<(), String> {
        self.epochs
            .lock()
            .set_accepted(e)
            .map_err(|x| x.to_string())?;
        self.status.update(|s| s.accepted_epoch = e);
        Ok(())
    }
    fn write_current(&self, e: i64) -> Result<(), String> {
        self.epochs
            .lock()
            .set_current(e)
            .map_err(|x| x.to_string())?;
        self.status.update(|s| s.current_epoch = e);
        Ok(())
    }
}

/// What the apply thread hands back: the state machine and its applied
/// zxid.
type AppliedState = (Box<dyn StateMachine>, Option<i64>);

/// The store-mode threads of a running instance.
struct StoreThreads {
    replica: Arc<Replica>,
    /// Returns the state machine and its applied zxid when it ends.
    apply: Option<JoinHandle<AppliedState>>,
}

/// A running peer. [`QuorumPeer::shutdown`] (or dropping it) stops every
/// thread it started and waits for them.
pub struct QuorumPeer {
    status: Arc<PeerStatus>,
    qcm: Qcm,
    /// Dropped to tell the main loop and the role to stop (a closed channel
    /// wakes every receiver at once).
    stop: Option<Sender<()>>,
    /// Resignations for the leader role.
    resign: Sender<ResignRequest>,
    threads: Vec<JoinHandle<()>>,
    /// The durability pipeline (interop mode: epochs only).
    io_thread: Option<JoinHandle<Option<Box<dyn crate::logstore::LogStore>>>>,
    store: Option<StoreThreads>,
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
        // Before any file is written or port opened: a bad store stops the
        // peer here.
        let tls = crate::tls::QuorumTls::load(&config).map_err(|e| PeerError::Tls(Box::new(e)))?;
        let supplier: ZxidSupplier = opts.zxid_supplier.clone().unwrap_or_else(|| Arc::new(|| 0));
        // Store mode: this instance takes the store and the state machine
        // (given back at shutdown) and votes with the log's last zxid.
        let mut parts = match &opts.replica {
            Some(r) => Some(r.parts.lock().take().ok_or(PeerError::ReplicaBusy)?),
            None => None,
        };
        let give_back = |parts: Option<ReplicaParts>| {
            if let (Some(r), Some(p)) = (&opts.replica, parts) {
                *r.parts.lock() = Some(p);
            }
        };
        let last_zxid = match &parts {
            Some(p) => p.store.last_zxid(),
            None => supplier(),
        };
        let opened = if parts.is_some() {
            EpochFiles::open_replicated(&config.data_dir, last_zxid)
        } else {
            EpochFiles::open(&config.data_dir, last_zxid)
        };
        let epochs = match opened {
            Ok(e) => e,
            Err(e) => {
                give_back(parts.take());
                return Err(e.into());
            }
        };
        log::info!(
            "sid {}: currentEpoch {} acceptedEpoch {} last zxid {:#x} ({}{})",
            config.my_sid,
            epochs.current(),
            epochs.accepted(),
            last_zxid,
            epochs.dir().display(),
            if parts.is_some() {
                ", replicated log"
            } else {
                ""
            }
        );
        let status = Arc::new(PeerStatus::new(
            config.my_sid,
            config.verifier.voters().len(),
            epochs.current(),
            epochs.accepted(),
        ));
        let epochs = Arc::new(Mutex::new(epochs));
        if let Some(t) = &tls {
            log::info!(
                "quorum TLS: sslQuorum={} portUnification={} ({t:?})",
                t.ssl_quorum(),
                t.port_unification()
            );
        }
        let mut qcm_cfg = QcmConfig::for_server(&config);
        qcm_cfg.tls = tls.clone();
        // Every message the election sends a peer is this server's current
        // vote: a newer one makes older queued ones pointless (Java's
        // SendWorker queue holds one message for the same reason).
        qcm_cfg.coalesce_superseded = true;
        let qcm = match Qcm::start(qcm_cfg) {
            Ok(q) => q,
            Err(e) => {
                give_back(parts.take());
                return Err(e.into());
            }
        };

        // The durability pipeline (a thread that cannot be spawned takes the
        // store down with it: the data stays on disk, this handle cannot
        // restart it): epochs always, the log in store mode.
        let (io_tx, io_rx) = crossbeam_channel::unbounded::<IoMsg<RoleIn>>();
        let (store_box, sm_parts) = match parts.take() {
            Some(p) => (Some(p.store), Some((p.state_machine, p.applied))),
            None => (None, None),
        };
        let sink = PeerEpochs {
            epochs: epochs.clone(),
            status: status.clone(),
        };
        let io_thread = std::thread::Builder::new()
            .name(format!("zab-io-{}", config.my_sid))
            .spawn(move || {
                let mut store = store_box;
                durable::run(io_rx, &sink, store.as_deref_mut().map(|s| s as _));
                store
            })
            .map_err(|source| PeerError::Thread {
                what: "durability pipeline",
                source,
            })?;
        let io = IoHandle::new(io_tx);
        let mut store_threads = None;
        let mut apply_tx = None;
        if let (Some(replica), Some((mut sm, applied))) = (opts.replica.clone(), sm_parts) {
            let (tx, rx) = crossbeam_channel::unbounded::<ApplyMsg>();
            let shared = replica.shared().clone();
            let every = replica.snapshot_every;
            let io_tx = io.tx.clone();
            let apply = std::thread::Builder::new()
                .name(format!("zab-apply-{}", config.my_sid))
                .spawn(move || {
                    let applier = Applier {
                        sm: &mut *sm,
                        applied,
                        io: io_tx,
                        shared: &shared,
                        snapshot_every: every,
                        since_snapshot: 0,
                    };
                    let applied = applier.run(rx);
                    (sm, applied)
                })
                .map_err(|source| PeerError::Thread {
                    what: "apply",
                    source,
                })?;
            apply_tx = Some(tx);
            store_threads = Some(StoreThreads {
                replica,
                apply: Some(apply),
            });
        }

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
        let (resign_tx, resign_rx) = crossbeam_channel::unbounded::<ResignRequest>();
        let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded::<ElectionCmd>();
        let (dec_tx, dec_rx) = crossbeam_channel::bounded::<Decision>(16);
        let participant = me.learner_type == LearnerType::Participant;

        let mut fle_cfg = FleConfig::new(config.my_sid, config.verifier.clone())
            .with_zkfle_timing(config.fast_decide);
        fle_cfg.min_notification_interval = config.min_notification_interval;
        fle_cfg.max_notification_interval = config.max_notification_interval;
        fle_cfg.preferred_leader = config.preferred_leader;
        let mut threads = Vec::new();
        let election = ElectionLoop {
            driver: Driver::new(fle_cfg),
            qcm: qcm.clone(),
            recv: qcm.receiver(),
            events: qcm.peer_events(),
            cmds: cmd_rx,
            decisions: dec_tx,
            base: Instant::now(),
            timer: None,
        };
        let election_thread = std::thread::Builder::new()
            .name(format!("election{}", config.my_sid))
            .spawn(move || election.run())
            .map_err(|source| PeerError::Thread {
                what: "election",
                source,
            })?;
        let cmd_tx = CmdSender::new(cmd_tx, election_thread.thread().clone());
        threads.push(election_thread);
        let main = MainLoop {
            config: config.clone(),
            status: status.clone(),
            epochs,
            supplier,
            cmds: cmd_tx,
            decisions: dec_rx,
            stop: stop_rx,
            resign: resign_rx,
            participant,
            tls,
            io,
            apply: apply_tx,
            replica: opts.replica.clone(),
            limiter: LogLimiter::default(),
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
            resign: resign_tx,
            threads,
            io_thread: Some(io_thread),
            store: store_threads,
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

    /// Asks the leader role of term `epoch` (`None`: whichever runs) to
    /// give leadership up; the peer then does not stand for leader for
    /// `hold_off` (`election::Driver`'s "Resigning"). A request that finds
    /// no leader of that term is dropped. Returns at once.
    pub fn resign(&self, epoch: Option<i64>, hold_off: std::time::Duration) {
        let _ = self.resign.send(ResignRequest { epoch, hold_off });
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
        // The main loop held the pipeline's and the apply thread's queues:
        // with it gone, the apply thread finishes what is queued, then the
        // pipeline finishes and hands the store back.
        let (sm, applied) = match self.store.as_mut().and_then(|s| s.apply.take()) {
            Some(h) => match h.join() {
                Ok((sm, applied)) => (Some(sm), applied),
                Err(_) => (None, None),
            },
            None => (None, None),
        };
        let store = self.io_thread.take().and_then(|h| h.join().ok()).flatten();
        if let Some(st) = self.store.take() {
            if let (Some(store), Some(state_machine)) = (store, sm) {
                *st.replica.parts.lock() = Some(ReplicaParts {
                    store,
                    state_machine,
                    applied,
                });
            } else {
                log::error!(
                    "sid {}: the replicated log's threads panicked; the store is lost to this handle",
                    self.config.my_sid
                );
            }
        }
    }
}

impl Drop for QuorumPeer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The main loop's state.
struct MainLoop {
    config: Arc<ZkConfig>,
    status: Arc<PeerStatus>,
    epochs: Arc<Mutex<EpochFiles>>,
    supplier: ZxidSupplier,
    cmds: CmdSender,
    decisions: Receiver<Decision>,
    stop: Receiver<()>,
    resign: Receiver<ResignRequest>,
    participant: bool,
    /// Quorum TLS for the quorum port, if configured.
    tls: Option<crate::tls::QuorumTls>,
    /// The durability pipeline.
    io: IoHandle,
    /// Store mode: the apply thread's queue.
    apply: Option<Sender<ApplyMsg>>,
    /// Store mode: requests, published figures.
    replica: Option<Arc<Replica>>,
    limiter: LogLimiter,
}

impl MainLoop {
    /// The zxid to vote with, once every write of the previous role is done
    /// (its queued appends and epoch writes; ZAB_SPEC: build the next
    /// role's state only after the previous role's writes).
    fn vote_zxid(&self) -> i64 {
        if self.replica.is_some() {
            // Store mode (ZAB_SPEC L5): the log's last *durable* zxid.
            return self.io.sync().unwrap_or(0);
        }
        // Interop: only the epoch writes must be done, and with none in
        // flight the round trip through the pipeline would only confirm it.
        if !self.io.idle() {
            self.io.sync();
        }
        // A zxid the Zab session set (leading: newEpoch << 32; SNAP: the
        // leader's zxid) counts too, as Java votes with its in-memory
        // lastProcessedZxid.
        (self.supplier)().max(self.status.snapshot().last_zxid)
    }

    fn run(self) {
        let never = crossbeam_channel::never();
        let requests = self.replica.as_ref().map_or(&never, |r| &r.requests);
        // Refused leaders in a row (store mode).
        let mut refusals: u32 = 0;
        loop {
            let last_zxid = self.vote_zxid();
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
                })
                .is_err()
            {
                log::error!("sid {}: election thread is gone", self.config.my_sid);
                return;
            }
            let decision = loop {
                select! {
                    recv(self.decisions) -> d => match d {
                        Ok(d) => break d,
                        Err(_) => {
                            log::error!("sid {}: election thread is gone", self.config.my_sid);
                            return;
                        }
                    },
                    recv(requests) -> r => {
                        // No leader while electing: fail fast, the caller
                        // retries once a leader is known.
                        if let Ok(r) = r {
                            r.fail(ReplicationError::NotLeader { leader: None });
                        }
                    },
                    recv(self.stop) -> _ => return,
                }
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
            let store = match (&self.apply, &self.replica) {
                (Some(apply), Some(r)) => Some(role::StoreContext {
                    apply,
                    requests: &r.requests,
                    shared: r.shared(),
                }),
                _ => None,
            };
            let ctx = role::RoleContext {
                config: &self.config,
                status: &self.status,
                epochs: &self.epochs,
                stop: &self.stop,
                resign: &self.resign,
                established_epoch: &|e| {
                    let _ = self.cmds.send(ElectionCmd::EstablishedEpoch(e));
                },
                resigning: &|r| {
                    let _ = self.cmds.send(ElectionCmd::RoleEnded(r));
                },
                tls: self.tls.as_ref(),
                io: &self.io,
                store,
                last_zxid,
                limiter: &self.limiter,
            };
            let (reason, hold) = match role::run(&ctx, &decision) {
                role::RoleEnd::Shutdown => return,
                role::RoleEnd::LookAgain(reason) => {
                    refusals = 0;
                    (reason, None)
                }
                role::RoleEnd::Refused(reason) => {
                    // tickTime, doubling per refusal in a row, at most
                    // initLimit ticks: the election would hand us the same
                    // leader again at once.
                    let limit = self.config.tick_time.saturating_mul(self.config.init_limit);
                    let hold = self
                        .config
                        .tick_time
                        .saturating_mul(1 << refusals.min(16))
                        .min(limit);
                    refusals += 1;
                    (reason, Some(hold))
                }
            };
            log::info!(
                "sid {}: {state} ended ({reason:?}); back to LOOKING{}",
                self.config.my_sid,
                hold.map_or(String::new(), |h| format!(" in {} ms", h.as_millis()))
            );
            if self.cmds.send(ElectionCmd::RoleEnded(reason)).is_err() {
                return;
            }
            if let Some(hold) = hold {
                self.status.update(|s| {
                    s.state = ServerState::Looking;
                    s.phase = Phase::Election;
                    s.leader_sid = -1;
                });
                let until = Instant::now() + hold;
                loop {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    select! {
                        recv(requests) -> r => {
                            if let Ok(r) = r {
                                r.fail(ReplicationError::NotLeader { leader: None });
                            }
                        },
                        recv(self.stop) -> _ => return,
                        default(left) => break,
                    }
                }
            }
        }
    }
}
