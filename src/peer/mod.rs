//! QuorumPeer: one ensemble member as operators run it (PROTOCOL.md §1,
//! §4.3, §5).
//!
//! Three threads besides the connection manager's own:
//!
//! * the **election thread** owns the sans-IO [`Driver`] (FLE plus the link
//!   bookkeeping) and the QCM's receive and event queues. It is a thin
//!   executor: every fact (a notification, a link up or closed, a failed
//!   dial, the timer, a command from the main loop) goes to the driver as
//!   an [`Input`], and what the driver returns (sends, dials, the next
//!   timer, a decision) is carried out. It keeps running while a role runs,
//!   so LOOKING peers that ask always get this peer's current vote (§4.3
//!   rule 3) — that is how late and restarted servers join;
//! * the **main loop** goes LOOKING → decision → role → LOOKING, publishing
//!   every step in [`PeerStatus`].
//!
//! The four-letter words and the metrics endpoint (`crate::admin`) read
//! [`PeerStatus`] and the connection manager; the binary and `PeerBuilder`
//! start them beside the peer, which knows nothing of them.

mod election_loop;
pub mod epoch;
mod role;
pub mod status;
pub mod timings;
pub mod zab;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{select, Receiver, Sender};
use parking_lot::Mutex;

use crate::cnx::{CnxError, Qcm, QcmConfig};
use crate::config::{LearnerType, ZkConfig};
use crate::election::{Decision, Driver, FleConfig};
use crate::wire::{HandshakeFormat, ServerState};

use election_loop::{CmdSender, ElectionCmd, ElectionLoop};
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
    /// A quorum TLS store could not be used (a configuration error: the
    /// binary exits with status 2).
    #[error(transparent)]
    Tls(Box<crate::tls::TlsError>),
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
        // Before any file is written or port opened: a bad store stops the
        // peer here.
        let tls = crate::tls::QuorumTls::load(&config).map_err(|e| PeerError::Tls(Box::new(e)))?;
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

        if let Some(t) = &tls {
            log::info!(
                "quorum TLS: sslQuorum={} portUnification={} ({t:?})",
                t.ssl_quorum(),
                t.port_unification()
            );
        }
        let mut qcm_cfg = qcm_config(&config, me);
        qcm_cfg.tls = tls.clone();
        let qcm = Qcm::start(qcm_cfg)?;
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

        let mut fle_cfg = FleConfig::new(config.my_sid, config.verifier.clone())
            .with_zkfle_timing(config.fast_decide);
        fle_cfg.min_notification_interval = config.min_notification_interval;
        fle_cfg.max_notification_interval = config.max_notification_interval;
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
            epochs: Arc::new(Mutex::new(epochs)),
            supplier,
            cmds: cmd_tx,
            decisions: dec_rx,
            stop: stop_rx,
            participant,
            tls,
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
    // Every message the election sends a peer is this server's current
    // vote: a newer one makes older queued ones pointless.
    q.coalesce_superseded = true;
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

/// The main loop's state.
struct MainLoop {
    config: Arc<ZkConfig>,
    status: Arc<PeerStatus>,
    epochs: Arc<Mutex<EpochFiles>>,
    supplier: ZxidSupplier,
    cmds: CmdSender,
    decisions: Receiver<Decision>,
    stop: Receiver<()>,
    participant: bool,
    tls: Option<crate::tls::QuorumTls>,
}

impl MainLoop {
    fn run(self) {
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
                tls: self.tls.as_ref(),
            };
            match role::run(&ctx, &decision) {
                role::RoleEnd::Shutdown => return,
                role::RoleEnd::LookAgain(reason) => {
                    log::info!(
                        "sid {}: {state} ended ({reason:?}); back to LOOKING",
                        self.config.my_sid
                    );
                    if self.cmds.send(ElectionCmd::RoleEnded(reason)).is_err() {
                        return;
                    }
                }
            }
        }
    }
}
