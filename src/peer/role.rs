//! The role a peer takes after an election: the quorum-port Zab session
//! (`crate::peer::zab`, PROTOCOL.md §6) run by the role runtime. The role
//! reports `serving` (Java's Mode) only once the session reaches the
//! broadcast phase; any end other than shutdown sends the peer back to
//! LOOKING.

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::config::ZkConfig;
use crate::election::{self, Decision};
use crate::wire::ServerState;

use super::apply::ApplyMsg;
use super::replica::{ApiRequest, ReplicaShared};
use super::status::Phase;
use super::zab;
use super::zab::runtime::{IoHandle, LogLimiter, ResignRequest, RoleEnv};

use super::epoch::EpochFiles;
use super::status::PeerStatus;

/// What a role session gets from the main loop.
pub(crate) struct RoleContext<'a> {
    /// The peer's configuration (quorum addresses, tickTime, limits).
    pub config: &'a ZkConfig,
    /// Status to publish the phase and `serving` in.
    pub status: &'a PeerStatus,
    /// The epoch files (written by the durability pipeline; read here).
    pub epochs: &'a Mutex<EpochFiles>,
    /// Closed when the peer shuts down; a role must return soon after.
    pub stop: &'a Receiver<()>,
    /// The embedder's resignations (`PeerHandle::resign`).
    pub resign: &'a Receiver<ResignRequest>,
    /// Reports the epoch Zab established, so replies to LOOKING peers carry
    /// it (PROTOCOL.md §4.3).
    pub established_epoch: &'a (dyn Fn(i64) + Sync),
    /// Tells the election a resigning leader's term is over before its
    /// learners' connections close (the main loop reports it again after
    /// the teardown; a second report changes nothing).
    pub resigning: &'a (dyn Fn(election::RoleEnd) + Sync),
    /// Quorum TLS (`sslQuorum`/`portUnification`), if configured.
    pub tls: Option<&'a crate::tls::QuorumTls>,
    /// The durability pipeline.
    pub io: &'a IoHandle,
    /// Store mode: the apply thread, the embedder's requests and the
    /// figures published for it.
    pub store: Option<StoreContext<'a>>,
    /// The zxid the role starts from: the log's last durable zxid (store
    /// mode) or the interop vote zxid, as the election used it.
    pub last_zxid: i64,
    /// Rate limits repeated error lines across roles.
    pub limiter: &'a LogLimiter,
}

/// The store-mode parts of a [`RoleContext`].
pub(crate) struct StoreContext<'a> {
    pub apply: &'a Sender<ApplyMsg>,
    pub requests: &'a Receiver<ApiRequest>,
    pub shared: &'a ReplicaShared,
}

/// How a role ended.
pub(crate) enum RoleEnd {
    /// The peer is shutting down.
    Shutdown,
    /// The role failed or the leader went away: elect again. The reason is
    /// a fact for the election driver (a leader that stopped talking
    /// without closing its connections, hung, SIGSTOPped or partitioned one
    /// way, counts as Down in the next election).
    LookAgain(election::RoleEnd),
    /// Store mode: the elected leader does not replicate a log (a Java or
    /// election-only peer). Elect again, but not at once: the same leader
    /// would be chosen and refused again in a loop.
    Refused(election::RoleEnd),
}

/// Runs the decided role until it ends: LEADING runs the Zab leader on the
/// quorum port, FOLLOWING/OBSERVING the learner (PROTOCOL.md §6). The peer is
/// `serving` only in the broadcast phase, as Java reports a Mode only once
/// it serves.
pub(crate) fn run(ctx: &RoleContext<'_>, decision: &Decision) -> RoleEnd {
    let cfg = zab_config(ctx.config, decision.state == ServerState::Observing);
    let host = RoleHost { ctx };
    let persisted = {
        let e = ctx.epochs.lock();
        crate::zab::Persisted {
            accepted_epoch: e.accepted(),
            current_epoch: e.current(),
            last_zxid: ctx.last_zxid,
        }
    };
    let env = RoleEnv {
        cfg: &cfg,
        host: &host,
        mode: if ctx.store.is_some() {
            crate::zab::Mode::Store
        } else {
            crate::zab::Mode::Interop
        },
        persisted,
        io: ctx.io,
        apply: ctx.store.as_ref().map(|s| s.apply),
        requests: ctx.store.as_ref().map(|s| s.requests),
        shared: ctx.store.as_ref().map(|s| s.shared),
        stop: Some(ctx.stop),
        resign: Some(ctx.resign),
        preferred_leader: ctx.config.preferred_leader,
        limiter: ctx.limiter,
    };
    let exit = match decision.state {
        ServerState::Leading => zab::run_leader(&env),
        ServerState::Following | ServerState::Observing => {
            zab::run_learner(&env, decision.vote.leader)
        }
        ServerState::Looking => return RoleEnd::LookAgain(election::RoleEnd::Other),
    };
    ctx.status.update(|s| {
        s.serving = false;
        s.learners = None;
    });
    if let zab::ZabExit::LeaderNotReplicating { .. } = exit {
        return RoleEnd::Refused(election::RoleEnd::Other);
    }
    RoleEnd::LookAgain(match exit {
        zab::ZabExit::Shutdown => return RoleEnd::Shutdown,
        zab::ZabExit::LeaderSilent { ms } => election::RoleEnd::LeaderSilent {
            leader: decision.vote.leader,
            silent_for: std::time::Duration::from_millis(ms),
        },
        zab::ZabExit::LeaderSocketClosed => election::RoleEnd::LeaderClosed,
        zab::ZabExit::QuorumLost { .. } => election::RoleEnd::QuorumLost,
        zab::ZabExit::Resigned { hold_off } | zab::ZabExit::HandedOff { hold_off, .. } => {
            election::RoleEnd::Resigned { hold_off }
        }
        _ => election::RoleEnd::Other,
    })
}

/// The Zab view of this peer's configuration.
fn zab_config(config: &ZkConfig, is_observer: bool) -> zab::ZabConfig {
    let mut listen: Vec<SocketAddr> = config
        .me()
        .map(|m| m.quorum_addrs.clone())
        .unwrap_or_default();
    if config.listen_on_all_ips {
        // quorumListenOnAllIPs: bind the wildcard on the configured ports.
        for a in &mut listen {
            let any: IpAddr = if a.is_ipv4() {
                Ipv4Addr::UNSPECIFIED.into()
            } else {
                Ipv6Addr::UNSPECIFIED.into()
            };
            a.set_ip(any);
        }
        listen.dedup();
    }
    zab::ZabConfig {
        my_sid: config.my_sid,
        tick_time: config.tick_time,
        init_limit: config.init_limit,
        sync_limit: config.sync_limit,
        verifier: config.verifier.clone(),
        quorum_listen_addrs: listen,
        quorum_addrs: config
            .servers
            .iter()
            .map(|s| (s.sid, s.quorum_addrs.clone()))
            .collect(),
        quorum_hosts: config
            .servers
            .iter()
            .map(|s| {
                (
                    s.sid,
                    s.endpoints.iter().map(|e| e.quorum.clone()).collect(),
                )
            })
            .collect(),
        resolver: config.resolver.clone(),
        is_observer,
        config_text: config.config_text(),
    }
}

/// The peer as the Zab session sees it: epoch files, status, stop signal.
struct RoleHost<'a> {
    ctx: &'a RoleContext<'a>,
}

impl zab::ZabHost for RoleHost<'_> {
    fn accepted_epoch(&self) -> i64 {
        self.ctx.epochs.lock().accepted()
    }
    fn set_accepted_epoch(&self, e: i64) -> std::io::Result<()> {
        self.ctx
            .epochs
            .lock()
            .set_accepted(e)
            .map_err(std::io::Error::other)?;
        self.ctx.status.update(|s| s.accepted_epoch = e);
        Ok(())
    }
    fn current_epoch(&self) -> i64 {
        self.ctx.epochs.lock().current()
    }
    fn set_current_epoch(&self, e: i64) -> std::io::Result<()> {
        self.ctx
            .epochs
            .lock()
            .set_current(e)
            .map_err(std::io::Error::other)?;
        self.ctx.status.update(|s| s.current_epoch = e);
        Ok(())
    }
    fn last_zxid(&self) -> i64 {
        self.ctx.status.snapshot().last_zxid
    }
    fn set_last_zxid(&self, zxid: i64) {
        self.ctx.status.update(|s| s.last_zxid = zxid);
    }
    fn phase(&self, phase: zab::ZabPhase) {
        let (p, serving) = match phase {
            zab::ZabPhase::Discovery => (Phase::Discovery, false),
            zab::ZabPhase::Synchronization => (Phase::Synchronization, false),
            zab::ZabPhase::Broadcast => (Phase::Broadcast, true),
        };
        if phase == zab::ZabPhase::Broadcast {
            // Replies to LOOKING peers now carry the established epoch, as
            // Java's vote does once the epoch is set.
            (self.ctx.established_epoch)(self.current_epoch());
        }
        self.ctx.status.update(|s| {
            s.phase = p;
            s.serving = serving;
        });
    }
    fn leader_ending(&self, exit: &zab::ZabExit) {
        // Only a resignation: the process is alive and would otherwise
        // answer LOOKING followers with LEADING for the few milliseconds
        // of its teardown, and a follower that joins on that answer dials
        // a closed quorum port until it gives up (seen: +550 ms).
        if let zab::ZabExit::Resigned { hold_off } | zab::ZabExit::HandedOff { hold_off, .. } = exit
        {
            (self.ctx.resigning)(election::RoleEnd::Resigned {
                hold_off: *hold_off,
            });
        }
    }
    fn learners(&self, counts: zab::LearnerCounts) {
        self.ctx.status.update(|s| s.learners = Some(counts));
    }
    fn quorum_tls(&self) -> Option<&crate::tls::QuorumTls> {
        self.ctx.tls
    }
    fn stopping(&self) -> bool {
        // The peer closes the channel to stop its threads.
        matches!(
            self.ctx.stop.try_recv(),
            Ok(()) | Err(crossbeam_channel::TryRecvError::Disconnected)
        )
    }
}
