//! The leader side (PROTOCOL.md §6.3–§6.6). The calling thread accepts
//! learners and drives the epoch's stages (persisting epochs, counting
//! quorums, ticking); one scoped thread per learner speaks the handshake and
//! forwards pings, so a slow or silent learner only ever delays itself.

use super::conn::{Conn, Fill};
use super::{config_version, type_name};
use super::{LearnerCounts, ZabConfig, ZabExit, ZabHost, ZabPhase};
use crate::wire::zab::{self, epoch_of_zxid as epoch_of, zxid_of_epoch, LearnerInfo, QuorumPacket};
use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// How often the accept loop wakes when nothing happens.
const ACCEPT_POLL: Duration = Duration::from_millis(20);
/// The accept poll while discovery and synchronisation run: a failover
/// waits on these connections, and the phase lasts at most initLimit ticks.
const SYNC_ACCEPT_POLL: Duration = Duration::from_millis(1);

/// The epoch's progress, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    /// Waiting for a quorum of FOLLOWERINFO to fix the new epoch.
    Discovery,
    /// Epoch fixed; waiting for a quorum of ACKEPOCH.
    EpochAcks,
    /// currentEpoch persisted; waiting for a quorum of NEWLEADER ACKs.
    NewLeaderAcks,
    /// Established: UPTODATE sent to each synced learner, pings flow.
    Broadcast,
}

/// A connected learner as the tick sees it.
struct Slot {
    sid: Option<i64>,
    participant: bool,
    /// None while the handler waits on the leader's stages (bounded by the
    /// stage timeouts, not by this learner).
    deadline: Option<Instant>,
    /// A second handle on the socket, so stepping down can close it even
    /// while the handler is blocked writing to a learner that stopped
    /// reading.
    socket: Option<TcpStream>,
    /// UPTODATE was sent: the learner is synced (metrics only).
    synced: bool,
}

struct State {
    stage: Stage,
    closing: bool,
    /// 1 + the largest acceptedEpoch seen, until fixed.
    proposed_epoch: i64,
    new_epoch: i64,
    connecting: BTreeSet<i64>,
    epoch_acks: BTreeSet<i64>,
    newleader_acks: BTreeSet<i64>,
    /// (currentEpoch, last zxid) when leading began: learners ahead of it
    /// are refused.
    summary: (i64, i64),
    ping_gen: u64,
    learners: BTreeMap<u64, Slot>,
}

struct Shared {
    st: Mutex<State>,
    cv: Condvar,
    config_version: i64,
}

/// Leads until the quorum is lost, a stage times out or shutdown is
/// requested; blocks the calling thread.
pub fn lead(cfg: &ZabConfig, host: &dyn ZabHost) -> ZabExit {
    host.phase(ZabPhase::Discovery);
    log::info!("LEADING - sid {}: discovery", cfg.my_sid);
    let listeners = match bind(cfg) {
        Ok(l) => l,
        Err(e) => {
            log::warn!("LEADING: cannot start: {e}");
            return e;
        }
    };
    let me = cfg.my_sid;
    let shared = Shared {
        st: Mutex::new(State {
            stage: Stage::Discovery,
            closing: false,
            proposed_epoch: host.accepted_epoch() + 1,
            new_epoch: -1,
            connecting: BTreeSet::from([me]),
            epoch_acks: BTreeSet::from([me]),
            newleader_acks: BTreeSet::from([me]),
            summary: (host.current_epoch(), host.last_zxid()),
            ping_gen: 0,
            learners: BTreeMap::new(),
        }),
        cv: Condvar::new(),
        config_version: config_version(&cfg.config_text),
    };
    let exit = std::thread::scope(|scope| {
        let exit = drive(cfg, host, &shared, &listeners, |id, stream| {
            let shared = &shared;
            let spawned = std::thread::Builder::new()
                .name(format!("zab-learner-{id}"))
                .spawn_scoped(scope, move || {
                    LearnerHandler::run(id, stream, cfg, shared, host.quorum_tls())
                });
            if let Err(e) = spawned {
                log::warn!("cannot start a learner handler thread: {e}");
            }
        });
        {
            let mut st = shared.st.lock();
            st.closing = true;
            for slot in st.learners.values() {
                if let Some(sock) = &slot.socket {
                    let _ = sock.shutdown(std::net::Shutdown::Both);
                }
            }
        }
        shared.cv.notify_all();
        exit
    });
    log::warn!("LEADING: leaving the role: {exit}");
    exit
}

/// The quorum port's side of `sslQuorum`/`portUnification` (ZooKeeper's
/// `UnifiedServerSocket`): TLS for a TLS record, plaintext only with port
/// unification.
fn secure_accept(
    tls: Option<&crate::tls::QuorumTls>,
    stream: TcpStream,
    within: Duration,
) -> Result<crate::tls::PeerStream, String> {
    let Some(tls) = tls else {
        return Ok(crate::tls::PeerStream::Plain(stream));
    };
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    match crate::tls::peek_inbound(tls, &stream, within) {
        Ok(Some(crate::tls::Inbound::Tls)) => crate::tls::accept_blocking(tls, stream, within)
            .inspect(|s| {
                if let crate::tls::PeerStream::Tls(t) = s {
                    log::info!("learner TLS from {peer}: {}", t.session());
                }
            })
            .map_err(|e| format!("TLS handshake with {peer} failed: {e}")),
        Ok(Some(crate::tls::Inbound::Plain)) => Ok(crate::tls::PeerStream::Plain(stream)),
        Ok(Some(crate::tls::Inbound::RefusePlain)) => Err(format!(
            "Blocked insecure connection attempt: plaintext quorum connection from {peer} refused (sslQuorum=true, portUnification=false)"
        )),
        Ok(None) => Err(format!("{peer} closed before sending anything")),
        Err(e) => Err(format!("nothing from {peer} within {within:?}: {e}")),
    }
}

fn bind(cfg: &ZabConfig) -> Result<Vec<TcpListener>, ZabExit> {
    let mut out = Vec::new();
    let mut first_err = None;
    // std sets SO_REUSEADDR on Unix listeners, so a port left in TIME_WAIT
    // by the previous leading round binds again at once.
    for addr in &cfg.quorum_listen_addrs {
        match TcpListener::bind(addr).and_then(|l| l.set_nonblocking(true).map(|()| l)) {
            Ok(l) => out.push(l),
            Err(error) => {
                log::warn!("cannot bind quorum address {addr}: {error}");
                first_err.get_or_insert(ZabExit::BindFailed { addr: *addr, error });
            }
        }
    }
    if out.is_empty() {
        return Err(first_err.unwrap_or(ZabExit::NoQuorumAddress { sid: cfg.my_sid }));
    }
    Ok(out)
}

fn persist(r: io::Result<()>, what: &'static str) -> Result<(), ZabExit> {
    r.map_err(|error| ZabExit::Persist { what, error })
}

/// The leader's own loop: accept, advance stages, tick.
fn drive(
    cfg: &ZabConfig,
    host: &dyn ZabHost,
    shared: &Shared,
    listeners: &[TcpListener],
    mut spawn: impl FnMut(u64, TcpStream),
) -> ZabExit {
    let q = &cfg.verifier;
    let mut next_id = 0u64;
    let mut stage_deadline = Instant::now() + cfg.init_timeout();
    let half_tick = (cfg.tick_time / 2).max(Duration::from_millis(1));
    let mut next_ping = Instant::now();
    let mut next_tick = Instant::now();
    let mut counts = LearnerCounts::default();
    loop {
        if host.stopping() {
            return ZabExit::Shutdown;
        }
        for l in listeners {
            loop {
                match l.accept() {
                    Ok((stream, addr)) => {
                        log::info!("learner connection {next_id} from {addr}");
                        shared.st.lock().learners.insert(
                            next_id,
                            Slot {
                                sid: None,
                                participant: false,
                                deadline: Some(Instant::now() + cfg.init_timeout()),
                                socket: stream.try_clone().ok(),
                                synced: false,
                            },
                        );
                        spawn(next_id, stream);
                        next_id += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        // EMFILE and friends: keep leading, try again later.
                        log::warn!("accept on the quorum port failed: {e}");
                        break;
                    }
                }
            }
        }
        let now = Instant::now();
        let mut st = shared.st.lock();
        let latest = learner_counts(&st, q);
        if latest != counts {
            counts = latest;
            host.learners(counts);
        }
        match st.stage {
            Stage::Discovery => {
                if q.contains_quorum(st.connecting.iter().copied()) {
                    let e = st.proposed_epoch;
                    if let Err(x) = persist(host.set_accepted_epoch(e), "acceptedEpoch") {
                        return x;
                    }
                    st.new_epoch = e;
                    st.stage = Stage::EpochAcks;
                    stage_deadline = now + cfg.init_timeout();
                    log::info!(
                        "new epoch {e} agreed by sids {:?}; sending LEADERINFO",
                        st.connecting
                    );
                    shared.cv.notify_all();
                } else if now >= stage_deadline {
                    return ZabExit::DiscoveryTimeout {
                        stage: "no quorum of FOLLOWERINFO",
                    };
                }
            }
            Stage::EpochAcks => {
                if q.contains_quorum(st.epoch_acks.iter().copied()) {
                    if let Err(x) = persist(host.set_current_epoch(st.new_epoch), "currentEpoch") {
                        return x;
                    }
                    st.stage = Stage::NewLeaderAcks;
                    stage_deadline = now + cfg.init_timeout();
                    host.phase(ZabPhase::Synchronization);
                    log::info!(
                        "LEADING - synchronization: epoch {} ACKed by sids {:?}",
                        st.new_epoch,
                        st.epoch_acks
                    );
                    shared.cv.notify_all();
                } else if now >= stage_deadline {
                    return ZabExit::DiscoveryTimeout {
                        stage: "no quorum of ACKEPOCH",
                    };
                }
            }
            Stage::NewLeaderAcks => {
                if q.contains_quorum(st.newleader_acks.iter().copied()) {
                    host.set_last_zxid(zxid_of_epoch(st.new_epoch));
                    st.stage = Stage::Broadcast;
                    host.phase(ZabPhase::Broadcast);
                    log::info!(
                        "LEADING - broadcast: established epoch {} with sids {:?}",
                        st.new_epoch,
                        st.newleader_acks
                    );
                    next_ping = now;
                    next_tick = now + cfg.tick_time;
                    shared.cv.notify_all();
                } else if now >= stage_deadline {
                    return ZabExit::SyncTimeout;
                }
            }
            Stage::Broadcast => {
                if now >= next_ping {
                    st.ping_gen += 1;
                    next_ping += half_tick;
                    if next_ping < now {
                        next_ping = now + half_tick;
                    }
                    shared.cv.notify_all();
                }
                if now >= next_tick {
                    next_tick += cfg.tick_time;
                    if next_tick < now {
                        next_tick = now + cfg.tick_time;
                    }
                    let mut synced = BTreeSet::from([cfg.my_sid]);
                    for s in st.learners.values() {
                        if let (Some(sid), true) = (s.sid, s.participant) {
                            if s.deadline.map_or(true, |d| d > now) {
                                synced.insert(sid);
                            }
                        }
                    }
                    if !q.contains_quorum(synced.iter().copied()) {
                        return ZabExit::QuorumLost {
                            synced: synced.into_iter().collect(),
                        };
                    }
                }
            }
        }
        let wake = match st.stage {
            Stage::Broadcast => next_ping.min(next_tick),
            _ => stage_deadline,
        };
        let poll = if st.stage == Stage::Broadcast {
            ACCEPT_POLL
        } else {
            SYNC_ACCEPT_POLL
        };
        let wait = wake.saturating_duration_since(Instant::now()).min(poll);
        shared.cv.wait_for(&mut st, wait);
    }
}

/// The learners as ZooKeeper's leader metrics count them.
fn learner_counts(st: &State, q: &crate::config::QuorumVerifier) -> LearnerCounts {
    let mut c = LearnerCounts {
        learners: st.learners.len(),
        ..LearnerCounts::default()
    };
    for s in st.learners.values().filter(|s| s.synced) {
        match (s.participant, s.sid) {
            (true, Some(sid)) if q.is_voter(sid) => c.synced_followers += 1,
            (true, _) => {
                c.synced_followers += 1;
                c.synced_non_voting_followers += 1;
            }
            (false, _) => c.synced_observers += 1,
        }
    }
    c
}

/// True if a learner's `(currentEpoch, last zxid)` is ahead of the
/// leader's starting point, so an empty DIFF would hide transactions the
/// learner has: such a learner is refused (Java: "Follower is ahead of the
/// leader").
///
/// One refinement over Java: a zxid whose counter is 0 (`epoch << 32`) names
/// no transaction, only an epoch's start. A leader's zxid becomes
/// `newEpoch << 32` when it establishes while its DIFF-synced followers stay
/// at their old zxid, so without this rule a former leader that lost its
/// quorum (partition, SIGSTOP) but lived on would be refused by its
/// successor after every election, forever, in an ensemble without writes.
fn learner_ahead(learner: (i64, i64), leader: (i64, i64)) -> bool {
    let (l_epoch, l_zxid) = learner;
    let (epoch, zxid) = leader;
    l_epoch > epoch || (l_epoch == epoch && l_zxid > zxid && (l_zxid & 0xffff_ffff) != 0)
}

/// Where one learner's handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hs {
    AwaitInfo,
    AwaitEpoch,
    AwaitAckEpoch,
    AwaitEpochQuorum,
    AwaitNewLeaderAck,
    AwaitEstablished,
    Broadcast,
}

impl Hs {
    /// States in which the learner owes us a packet (its deadline runs).
    fn reads(self) -> bool {
        matches!(
            self,
            Hs::AwaitInfo | Hs::AwaitAckEpoch | Hs::AwaitNewLeaderAck | Hs::Broadcast
        )
    }
}

/// Why a handler dropped its learner (logged, never propagated: one bad
/// learner must not end the leader).
#[derive(Debug, thiserror::Error)]
enum Dropped {
    #[error("leader stepping down")]
    Closing,
    #[error("learner closed the connection")]
    Eof,
    #[error("learner silent for {0} ms")]
    Silent(u64),
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
    #[error("refused: {0}")]
    Refused(String),
}

struct LearnerHandler<'a> {
    id: u64,
    cfg: &'a ZabConfig,
    shared: &'a Shared,
    conn: Conn,
    hs: Hs,
    sid: i64,
    participant: bool,
    learner_zxid: i64,
    new_epoch: i64,
    ping_gen: u64,
    /// `initLimit` until the NEWLEADER ACK, then `syncLimit`.
    limit: Duration,
    /// Client requests this learner forwarded and zkfle dropped.
    requests_dropped: u64,
}

impl<'a> LearnerHandler<'a> {
    fn run(
        id: u64,
        stream: TcpStream,
        cfg: &'a ZabConfig,
        shared: &'a Shared,
        tls: Option<&crate::tls::QuorumTls>,
    ) {
        // TLS (or the plaintext check) on this learner's own thread, within
        // initLimit: a stalled client holds up nobody else.
        let stream = match secure_accept(tls, stream, cfg.init_timeout()) {
            Ok(s) => s,
            Err(why) => {
                log::warn!("learner connection {id}: {why}");
                shared.st.lock().learners.remove(&id);
                return;
            }
        };
        let conn = match Conn::new(stream, cfg.sync_timeout()) {
            Ok(c) => c,
            Err(e) => {
                log::warn!("learner connection {id}: setup failed: {e}");
                shared.st.lock().learners.remove(&id);
                return;
            }
        };
        let mut h = LearnerHandler {
            id,
            cfg,
            shared,
            conn,
            hs: Hs::AwaitInfo,
            sid: -1,
            participant: false,
            learner_zxid: 0,
            new_epoch: -1,
            ping_gen: 0,
            limit: cfg.init_timeout(),
            requests_dropped: 0,
        };
        let why = h.serve();
        h.conn.shutdown();
        shared.st.lock().learners.remove(&id);
        match why {
            Dropped::Closing => log::debug!("learner sid {} ({}): {why}", h.sid, h.id),
            _ => log::warn!(
                "dropping learner sid {} (connection {}, {:?}): {why}",
                h.sid,
                h.id,
                h.hs
            ),
        }
    }

    /// Restarts the learner's deadline (every packet does, as in Java).
    fn touch(&self) {
        let deadline = self.hs.reads().then(|| Instant::now() + self.limit);
        if let Some(s) = self.shared.st.lock().learners.get_mut(&self.id) {
            s.deadline = deadline;
        }
    }

    fn serve(&mut self) -> Dropped {
        loop {
            if let Err(d) = self.advance() {
                return d;
            }
            if self.hs.reads() {
                match self.conn.try_packet() {
                    Ok(Some(p)) => {
                        if let Err(d) = self.on_packet(p) {
                            return d;
                        }
                        self.touch();
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => return Dropped::Refused(format!("bad packet: {e}")),
                }
            }
            if !self.hs.reads() {
                // Waiting on the leader's progress, not on the learner:
                // `advance` sleeps on the condition variable, which a stage
                // change wakes at once. A blocking read here would hold the
                // next packet back by up to a read slice per step.
                continue;
            }
            match self.conn.fill() {
                Ok(Fill::Data(_)) | Ok(Fill::Idle) => {}
                Ok(Fill::Eof) => return Dropped::Eof,
                Err(e) => return Dropped::Io(e),
            }
        }
    }

    /// Sends whatever the leader's progress allows, checks the deadline.
    fn advance(&mut self) -> Result<(), Dropped> {
        let (stage, closing, new_epoch, ping_gen, deadline) = {
            let st = self.shared.st.lock();
            let deadline = st.learners.get(&self.id).and_then(|s| s.deadline);
            (st.stage, st.closing, st.new_epoch, st.ping_gen, deadline)
        };
        if closing {
            return Err(Dropped::Closing);
        }
        if let (true, Some(d)) = (self.hs.reads(), deadline) {
            let now = Instant::now();
            if now >= d {
                let silent = self.limit + now.saturating_duration_since(d);
                return Err(Dropped::Silent(silent.as_millis() as u64));
            }
        }
        match self.hs {
            Hs::AwaitEpoch if stage >= Stage::EpochAcks => {
                self.new_epoch = new_epoch;
                let data = zab::PROTOCOL_VERSION.to_be_bytes().to_vec();
                self.send(zab::LEADERINFO, zxid_of_epoch(new_epoch), Some(data))?;
                self.enter(Hs::AwaitAckEpoch);
            }
            Hs::AwaitEpochQuorum if stage >= Stage::NewLeaderAcks => {
                // zkfle keeps no history: the learner is always "in sync",
                // so an empty DIFF at its own zxid; never TRUNC (a Java
                // learner that cannot truncate exits) nor SNAP.
                self.send(zab::DIFF, self.learner_zxid, None)?;
                let text = self.cfg.config_text.as_bytes().to_vec();
                self.send(zab::NEWLEADER, zxid_of_epoch(self.new_epoch), Some(text))?;
                log::info!(
                    "learner sid {}: empty DIFF at {:#x}, NEWLEADER sent",
                    self.sid,
                    self.learner_zxid
                );
                self.enter(Hs::AwaitNewLeaderAck);
            }
            Hs::AwaitEstablished if stage >= Stage::Broadcast => {
                self.send(zab::UPTODATE, -1, None)?;
                self.ping_gen = ping_gen;
                self.enter(Hs::Broadcast);
                if let Some(s) = self.shared.st.lock().learners.get_mut(&self.id) {
                    s.synced = true;
                }
                log::info!("learner sid {}: UPTODATE sent, synced", self.sid);
            }
            Hs::Broadcast if ping_gen != self.ping_gen => {
                self.ping_gen = ping_gen;
                self.send(zab::PING, zxid_of_epoch(self.new_epoch), None)?;
            }
            Hs::AwaitEpoch | Hs::AwaitEpochQuorum | Hs::AwaitEstablished => {
                // Not reading: sleep on the leader's progress instead.
                let mut st = self.shared.st.lock();
                if st.stage == stage && !st.closing {
                    self.shared.cv.wait_for(&mut st, super::conn::POLL);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn enter(&mut self, hs: Hs) {
        self.hs = hs;
        self.touch();
    }

    fn send(&mut self, t: i32, zxid: i64, data: Option<Vec<u8>>) -> Result<(), Dropped> {
        self.conn.send(&QuorumPacket::new(t, zxid, data))?;
        Ok(())
    }

    fn on_packet(&mut self, p: QuorumPacket) -> Result<(), Dropped> {
        match (self.hs, p.packet_type) {
            (Hs::AwaitInfo, zab::FOLLOWERINFO | zab::OBSERVERINFO) => self.on_info(p),
            (Hs::AwaitAckEpoch, zab::ACKEPOCH) => self.on_ack_epoch(p),
            (Hs::AwaitNewLeaderAck, zab::ACK) => {
                if p.zxid != zxid_of_epoch(self.new_epoch) {
                    // Java logs and ignores an ACK from another epoch.
                    log::warn!(
                        "learner sid {}: NEWLEADER ACK for {:#x}, expected {:#x}; ignored",
                        self.sid,
                        p.zxid,
                        zxid_of_epoch(self.new_epoch)
                    );
                    return Ok(());
                }
                if self.participant {
                    self.shared.st.lock().newleader_acks.insert(self.sid);
                    self.shared.cv.notify_all();
                }
                self.limit = self.cfg.sync_timeout();
                self.enter(Hs::AwaitEstablished);
                Ok(())
            }
            (Hs::Broadcast, zab::PING | zab::ACK) => Ok(()),
            (Hs::Broadcast, zab::REQUEST) => {
                // zkfle serves no client API (PROTOCOL.md §6.5): sessions
                // and writes a Java follower forwards get no PROPOSAL, so
                // the client's library gives up with a connection loss after
                // its own timeout, and the follower stays in sync. Said once
                // per learner at warn so an operator sees why clients of a
                // mixed ensemble fail; the rest at debug.
                self.requests_dropped += 1;
                let what = match zab::ForwardedRequest::from_packet(&p) {
                    Ok(r) => format!(
                        "{} (session {:#x}, cxid {})",
                        r.op_name(),
                        r.session_id,
                        r.cxid
                    ),
                    Err(e) => format!("undecodable request ({e})"),
                };
                if self.requests_dropped == 1 {
                    log::warn!(
                        "learner sid {} forwarded a client request, {what}: dropped, zkfle serves no ZooKeeper client API (the client will see a connection loss)",
                        self.sid
                    );
                } else {
                    log::debug!(
                        "learner sid {}: client request {what} dropped ({} so far)",
                        self.sid,
                        self.requests_dropped
                    );
                }
                Ok(())
            }
            (Hs::Broadcast, other) => {
                log::debug!("learner sid {}: {} ignored", self.sid, type_name(other));
                Ok(())
            }
            (hs, other) => Err(Dropped::Refused(format!(
                "unexpected {} in state {hs:?}",
                type_name(other)
            ))),
        }
    }

    fn on_info(&mut self, p: QuorumPacket) -> Result<(), Dropped> {
        let data = p.data.as_deref().unwrap_or_default();
        let info = LearnerInfo::decode(data).map_err(|e| Dropped::Refused(e.to_string()))?;
        self.sid = info.sid;
        if info.sid == self.cfg.my_sid {
            return Err(Dropped::Refused(
                "learner claims the leader's own sid".into(),
            ));
        }
        if !self.cfg.quorum_addrs.contains_key(&info.sid) {
            return Err(Dropped::Refused(format!(
                "sid {} is not configured",
                info.sid
            )));
        }
        if info.protocol_version < zab::PROTOCOL_VERSION {
            return Err(Dropped::Refused(format!(
                "pre-3.4 learner protocol {:#x} not supported",
                info.protocol_version
            )));
        }
        let learner_config = info.config_version.unwrap_or(0);
        if learner_config > self.shared.config_version {
            return Err(Dropped::Refused(format!(
                "learner has a later config version {:#x} > {:#x}",
                learner_config, self.shared.config_version
            )));
        }
        self.participant =
            p.packet_type == zab::FOLLOWERINFO && self.cfg.verifier.is_voter(info.sid);
        let accepted = epoch_of(p.zxid);
        log::info!(
            "learner sid {} ({}) connected, acceptedEpoch {accepted}",
            info.sid,
            type_name(p.packet_type)
        );
        {
            let mut st = self.shared.st.lock();
            if let Some(s) = st.learners.get_mut(&self.id) {
                s.sid = Some(info.sid);
                s.participant = self.participant;
            }
            if st.stage == Stage::Discovery && self.participant {
                st.proposed_epoch = st.proposed_epoch.max(accepted + 1);
                st.connecting.insert(info.sid);
            }
        }
        self.shared.cv.notify_all();
        self.enter(Hs::AwaitEpoch);
        Ok(())
    }

    fn on_ack_epoch(&mut self, p: QuorumPacket) -> Result<(), Dropped> {
        let epoch = super::data_i32(&p)
            .ok_or_else(|| Dropped::Refused("ACKEPOCH without a 4-byte epoch".into()))?;
        let theirs = (i64::from(epoch), p.zxid);
        let mut st = self.shared.st.lock();
        // As in 3.8, only learners of the founding quorum are checked: once
        // the epoch is acknowledged the leader's state is the reference
        // (Java returns early from waitForEpochAck after the election).
        if st.stage <= Stage::EpochAcks && learner_ahead(theirs, st.summary) {
            return Err(Dropped::Refused(format!(
                "learner is ahead of the leader: (currentEpoch {}, zxid {:#x}) > ({}, {:#x})",
                theirs.0, theirs.1, st.summary.0, st.summary.1
            )));
        }
        self.learner_zxid = p.zxid;
        if self.participant && st.stage <= Stage::EpochAcks {
            st.epoch_acks.insert(self.sid);
        }
        drop(st);
        self.shared.cv.notify_all();
        self.enter(Hs::AwaitEpochQuorum);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::learner_ahead;

    #[test]
    fn ahead_means_newer_epoch_or_real_transactions() {
        assert!(learner_ahead((2, 0), (1, 5 << 32)), "newer currentEpoch");
        assert!(learner_ahead((1, (1 << 32) | 3), (1, 1 << 32)), "more txns");
        assert!(
            !learner_ahead((1, 1 << 32), (1, 0)),
            "an epoch start is no txn"
        );
        assert!(!learner_ahead((1, 0), (1, 0)), "equal");
        assert!(
            !learner_ahead((-1, 7 << 32), (1, 0)),
            "ACKEPOCH -1 never ahead"
        );
    }
}
