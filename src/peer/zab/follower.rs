//! The learner side (PROTOCOL.md §6.3–§6.6): connect, FOLLOWERINFO or
//! OBSERVERINFO, epoch agreement, accept whatever sync the leader chose,
//! then answer pings until the leader dies, hangs or closes.

use super::conn::{is_disconnect, Conn, Fill, POLL};
use super::snap::SnapshotSkipper;
use super::{config_version, type_name};
use super::{ProtocolViolation, ZabConfig, ZabExit, ZabHost, ZabPhase};
use crate::wire::zab::{
    self, epoch_of_zxid as epoch_of, zxid_of_epoch, LearnerInfo, QuorumPacket, PROTOCOL_VERSION,
};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// ZooKeeper's learner tries the leader 5 times, 100 ms apart, all within
/// `initLimit × tickTime` (`Learner.connectToLeader`). zkfle keeps about the
/// same window (~0.55 s) but starts retrying after 5 ms, doubling to 100 ms:
/// after a failover the new leader binds its quorum port at the moment its
/// followers decide, so the first dial often comes a millisecond early and
/// a flat 100 ms wait would be most of the failover time.
const CONNECT_ATTEMPTS: u32 = 10;
const CONNECT_RETRY_FIRST: Duration = Duration::from_millis(5);
const CONNECT_RETRY_MAX: Duration = Duration::from_millis(100);

/// Follows (or observes, with `cfg.is_observer`) `leader_sid` until the role
/// ends; blocks the calling thread.
pub fn follow(cfg: &ZabConfig, host: &dyn ZabHost, leader_sid: i64) -> ZabExit {
    let role = if cfg.is_observer {
        "OBSERVING"
    } else {
        "FOLLOWING"
    };
    host.phase(ZabPhase::Discovery);
    log::info!("{role} - LEADER sid {leader_sid}: discovery");
    let exit = match Learner::connect(cfg, host, leader_sid) {
        Ok(mut l) => l.run(),
        Err(e) => e,
    };
    log::warn!("{role}: leaving the role for leader sid {leader_sid}: {exit}");
    exit
}

/// `connect_timeout` on a helper thread, so a black-holed leader address
/// cannot hold off a shutdown request for the whole initLimit (the helper
/// ends by itself when its timeout expires). `Err(None)` = stopping.
fn connect_polling(
    addr: std::net::SocketAddr,
    timeout: Duration,
    host: &dyn ZabHost,
) -> Result<TcpStream, Option<std::io::Error>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let spawned = std::thread::Builder::new()
        .name("zab-connect".into())
        .spawn(move || {
            let _ = tx.send(TcpStream::connect_timeout(&addr, timeout));
        });
    if let Err(e) = spawned {
        return Err(Some(e));
    }
    loop {
        match rx.recv_timeout(POLL) {
            Ok(r) => return r.map_err(Some),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if host.stopping() {
                    return Err(None);
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(Some(std::io::Error::other("connect thread ended")))
            }
        }
    }
}

struct Learner<'a> {
    cfg: &'a ZabConfig,
    host: &'a dyn ZabHost,
    conn: Conn,
    /// Bytes or packets arrived here last: the read timeout counts from it,
    /// as Java's per-read socket timeout does.
    last_heard: Instant,
    read_timeout: Duration,
}

enum Step {
    Packet(QuorumPacket),
    Exit(ZabExit),
}

/// `sslQuorum`: the TLS handshake with the leader, within what is left of
/// the connect budget; plaintext otherwise (`portUnification` alone still
/// dials plaintext, as ZooKeeper's `Learner` does).
fn secure_dial(
    host: &dyn ZabHost,
    tcp: TcpStream,
    left: std::time::Duration,
) -> std::io::Result<crate::tls::PeerStream> {
    match host.quorum_tls() {
        Some(tls) if tls.ssl_quorum() => {
            let s = crate::tls::connect_blocking(tls, tcp, &[], left)?;
            if let crate::tls::PeerStream::Tls(t) = &s {
                log::info!("TLS to the leader: {}", t.session());
            }
            Ok(s)
        }
        _ => Ok(crate::tls::PeerStream::Plain(tcp)),
    }
}

impl<'a> Learner<'a> {
    fn connect(cfg: &'a ZabConfig, host: &'a dyn ZabHost, sid: i64) -> Result<Self, ZabExit> {
        let addrs = match cfg.quorum_addrs.get(&sid) {
            Some(a) if !a.is_empty() => a.clone(),
            _ => return Err(ZabExit::NoQuorumAddress { sid }),
        };
        let start = Instant::now();
        let budget = cfg.init_timeout();
        let mut last_err = (
            addrs[0],
            std::io::Error::new(std::io::ErrorKind::TimedOut, "initLimit spent"),
        );
        for attempt in 0..CONNECT_ATTEMPTS {
            if host.stopping() {
                return Err(ZabExit::Shutdown);
            }
            let left = budget.saturating_sub(start.elapsed());
            if left.is_zero() {
                break;
            }
            // Multi-address leaders: cycle through their addresses.
            let addr = addrs[attempt as usize % addrs.len()];
            match connect_polling(addr, left, host) {
                Ok(s) => match secure_dial(host, s, left)
                    .and_then(|s| Conn::new(s, cfg.sync_timeout()))
                {
                    Ok(conn) => {
                        log::info!("connected to leader sid {sid} at {addr}");
                        return Ok(Learner {
                            cfg,
                            host,
                            conn,
                            last_heard: Instant::now(),
                            read_timeout: cfg.init_timeout(),
                        });
                    }
                    Err(e) => last_err = (addr, e),
                },
                Err(None) => return Err(ZabExit::Shutdown),
                Err(Some(e)) => {
                    log::debug!("connect to leader sid {sid} at {addr} failed: {e}");
                    last_err = (addr, e);
                }
            }
            if attempt + 1 < CONNECT_ATTEMPTS {
                let delay = (CONNECT_RETRY_FIRST * 2u32.pow(attempt.min(5))).min(CONNECT_RETRY_MAX);
                let resume = Instant::now() + delay.min(budget.saturating_sub(start.elapsed()));
                while Instant::now() < resume {
                    if host.stopping() {
                        return Err(ZabExit::Shutdown);
                    }
                    std::thread::sleep(POLL.min(resume.saturating_duration_since(Instant::now())));
                }
            }
        }
        Err(ZabExit::ConnectFailed {
            sid,
            addr: last_err.0,
            error: last_err.1,
        })
    }

    fn send(&mut self, p: QuorumPacket) -> Result<(), ZabExit> {
        self.conn.send(&p).map_err(|e| {
            if is_disconnect(&e) {
                ZabExit::LeaderSocketClosed
            } else {
                ZabExit::Io(e)
            }
        })
    }

    /// Waits for the next packet, watching the read timeout and shutdown.
    fn next(&mut self) -> Step {
        loop {
            match self.conn.try_packet() {
                Ok(Some(p)) => return Step::Packet(p),
                Ok(None) => {}
                Err(e) => return Step::Exit(ProtocolViolation::Wire(e).into()),
            }
            if let Err(exit) = self.wait_bytes() {
                return Step::Exit(exit);
            }
        }
    }

    /// One read slice; Err when the role must end.
    fn wait_bytes(&mut self) -> Result<(), ZabExit> {
        if self.host.stopping() {
            return Err(ZabExit::Shutdown);
        }
        let silent = self.last_heard.elapsed();
        if silent >= self.read_timeout {
            return Err(ZabExit::LeaderSilent {
                ms: silent.as_millis() as u64,
            });
        }
        match self.conn.fill() {
            Ok(Fill::Data(_)) => {
                self.last_heard = Instant::now();
                Ok(())
            }
            Ok(Fill::Idle) => Ok(()),
            Ok(Fill::Eof) => Err(ZabExit::LeaderSocketClosed),
            Err(e) if is_disconnect(&e) => Err(ZabExit::LeaderSocketClosed),
            Err(e) => Err(ZabExit::Io(e)),
        }
    }

    fn run(&mut self) -> ZabExit {
        let r = self.handshake();
        self.conn.shutdown();
        match r {
            Ok(()) => ZabExit::Shutdown,
            Err(e) => e,
        }
    }

    fn handshake(&mut self) -> Result<(), ZabExit> {
        let accepted = self.host.accepted_epoch();
        let info = LearnerInfo {
            sid: self.cfg.my_sid,
            protocol_version: PROTOCOL_VERSION,
            config_version: Some(config_version(&self.cfg.config_text)),
        };
        let info_kind = if self.cfg.is_observer {
            zab::OBSERVERINFO
        } else {
            zab::FOLLOWERINFO
        };
        self.send(QuorumPacket::new(
            info_kind,
            zxid_of_epoch(accepted),
            Some(info.encode()),
        ))?;

        // Discovery: LEADERINFO → ACKEPOCH.
        let li = self.expect(zab::LEADERINFO, "awaiting LEADERINFO")?;
        let new_epoch = epoch_of(li.zxid);
        let ack_data = if new_epoch > accepted {
            let current = self.host.current_epoch();
            self.host
                .set_accepted_epoch(new_epoch)
                .map_err(|error| ZabExit::Persist {
                    what: "acceptedEpoch",
                    error,
                })?;
            current as i32
        } else if new_epoch == accepted {
            // Java's marker for "I already accepted this epoch".
            -1
        } else {
            return Err(ZabExit::EpochRejected {
                proposed: new_epoch,
                accepted,
            });
        };
        log::info!(
            "leader proposed epoch {new_epoch} (protocol {:#x}); sending ACKEPOCH",
            super::data_i32(&li).unwrap_or(0)
        );
        self.send(QuorumPacket::new(
            zab::ACKEPOCH,
            self.host.last_zxid(),
            Some(ack_data.to_be_bytes().to_vec()),
        ))?;

        // Synchronization: DIFF / TRUNC / SNAP, maybe proposals, NEWLEADER.
        self.host.phase(ZabPhase::Synchronization);
        let new_leader_zxid = loop {
            let p = self.packet()?;
            match p.packet_type {
                zab::DIFF => log::info!("sync: DIFF at zxid {:#x}", p.zxid),
                zab::TRUNC => {
                    log::info!("sync: TRUNC to zxid {:#x}", p.zxid);
                    self.host.set_last_zxid(p.zxid);
                }
                zab::SNAP => {
                    let snap = self.skip_snapshot()?;
                    log::info!(
                        "sync: SNAP at zxid {:#x} ({} bytes, {} znodes, {} sessions; not stored)",
                        p.zxid,
                        snap.bytes,
                        snap.nodes,
                        snap.sessions
                    );
                    self.host.set_last_zxid(p.zxid);
                }
                // History carried by a DIFF: zkfle keeps none of it.
                zab::PROPOSAL | zab::COMMIT | zab::INFORM | zab::PING => {
                    if p.packet_type == zab::PING {
                        self.ping_reply(&p)?;
                    }
                }
                zab::NEWLEADER => break p.zxid,
                other => {
                    return Err(ProtocolViolation::Unexpected {
                        got: other,
                        during: "synchronization",
                    }
                    .into())
                }
            }
        };
        // The epoch is only ours once persisted, so persist before the ACK
        // (a crash between the two must not leave the leader counting us).
        self.host
            .set_current_epoch(new_epoch)
            .map_err(|error| ZabExit::Persist {
                what: "currentEpoch",
                error,
            })?;
        self.send(QuorumPacket::new(zab::ACK, new_leader_zxid, None))?;
        // The leader is up: from here on it owes us a packet each syncLimit.
        self.read_timeout = self.cfg.sync_timeout();
        log::info!("NEWLEADER {new_leader_zxid:#x} ACKed; currentEpoch {new_epoch}");

        loop {
            let p = self.packet()?;
            match p.packet_type {
                zab::UPTODATE => break,
                zab::PROPOSAL => self.ack_proposal(&p)?,
                zab::PING => self.ping_reply(&p)?,
                _ => log::debug!("ignoring {} before UPTODATE", type_name(p.packet_type)),
            }
        }
        self.send(QuorumPacket::new(zab::ACK, zxid_of_epoch(new_epoch), None))?;
        self.host.phase(ZabPhase::Broadcast);
        log::info!(
            "{} - broadcast: synced with the leader in epoch {new_epoch}",
            if self.cfg.is_observer {
                "OBSERVING"
            } else {
                "FOLLOWING"
            }
        );

        loop {
            let p = self.packet()?;
            match p.packet_type {
                zab::PING => self.ping_reply(&p)?,
                zab::PROPOSAL => self.ack_proposal(&p)?,
                zab::COMMIT | zab::INFORM | zab::SYNC | zab::COMMITANDACTIVATE => {
                    log::debug!(
                        "ignoring {} {:#x} (no data tree)",
                        type_name(p.packet_type),
                        p.zxid
                    )
                }
                other => log::debug!("ignoring {} from the leader", type_name(other)),
            }
        }
    }

    fn packet(&mut self) -> Result<QuorumPacket, ZabExit> {
        match self.next() {
            Step::Packet(p) => Ok(p),
            Step::Exit(e) => Err(e),
        }
    }

    fn expect(&mut self, want: i32, during: &'static str) -> Result<QuorumPacket, ZabExit> {
        let p = self.packet()?;
        if p.packet_type != want {
            return Err(ProtocolViolation::Unexpected {
                got: p.packet_type,
                during,
            }
            .into());
        }
        Ok(p)
    }

    /// An empty (never null) buffer: a 3.8 leader's learner handler dies on
    /// a null PING reply and drops the learner (PROTOCOL.md §6.5).
    fn ping_reply(&mut self, p: &QuorumPacket) -> Result<(), ZabExit> {
        self.send(QuorumPacket::new(zab::PING, p.zxid, Some(Vec::new())))
    }

    fn ack_proposal(&mut self, p: &QuorumPacket) -> Result<(), ZabExit> {
        // Observers get INFORM, never PROPOSAL, and never ACK.
        if self.cfg.is_observer {
            return Ok(());
        }
        self.send(QuorumPacket::new(zab::ACK, p.zxid, None))
    }

    fn skip_snapshot(&mut self) -> Result<SnapshotSkipper, ZabExit> {
        let mut snap = SnapshotSkipper::new();
        loop {
            match self.conn.feed_snapshot(&mut snap) {
                Ok(true) => return Ok(snap),
                Ok(false) => {}
                Err(e) => return Err(ProtocolViolation::Snapshot(e).into()),
            }
            self.wait_bytes()?;
        }
    }
}
