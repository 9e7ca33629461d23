//! Learner rules L2 and L3, and what the leader may send in each stage:
//! DIFF / TRUNC / SNAP, the synced proposals, NEWLEADER in ZooKeeper 3.9's
//! order (sync durable → currentEpoch durable → ACK), UPTODATE, and the
//! broadcast packets.

use super::{Learner, LearnerAction, LearnerRole, LearnerStage, OpKind};
use crate::wire::zab::{self as wz, epoch_of_zxid, zxid_of_epoch, QuorumPacket};
use crate::zab::snapshot::SnapAssembly;
use crate::zab::types::{type_name, Entry, Packet, SkippedSnapshot, ZabPhase};
use bytes::Bytes;
use std::time::Duration;

impl Learner {
    pub(super) fn on_packet(&mut self, now: Duration, p: QuorumPacket) {
        if self.awaiting_skip.is_some() {
            // The runtime reports the end of a Java snapshot stream before
            // decoding the packet after it.
            return self.unexpected(now, p.packet_type, "skipping a SNAP stream");
        }
        match self.stage {
            LearnerStage::Connecting => {
                ::log::debug!("{} before the connection is up: ignored", p.type_name())
            }
            LearnerStage::AwaitingLeaderInfo => self.on_leader_info(now, p),
            LearnerStage::PersistingAcceptedEpoch => {
                self.unexpected(now, p.packet_type, "awaiting our ACKEPOCH")
            }
            LearnerStage::Syncing if self.store() => self.store_sync_packet(now, p),
            LearnerStage::Syncing => self.interop_sync_packet(now, p),
            LearnerStage::NewLeader => self.newleader_wait_packet(now, p),
            LearnerStage::AwaitingUpToDate | LearnerStage::Broadcast => self.synced_packet(now, p),
            LearnerStage::Exited => {}
        }
    }

    /// L2, interop: accept whatever sync a Java or zkfle leader chose; keep
    /// no history (PROTOCOL.md §6.4).
    fn interop_sync_packet(&mut self, now: Duration, p: QuorumPacket) {
        match p.packet_type {
            wz::DIFF => ::log::info!("sync: DIFF at zxid {:#x}", p.zxid),
            wz::TRUNC => {
                ::log::info!("sync: TRUNC to zxid {:#x}", p.zxid);
                self.set_vote_zxid(p.zxid);
            }
            wz::SNAP => self.awaiting_skip = Some(p.zxid),
            // History carried by a DIFF: an interop peer keeps none of it.
            wz::PROPOSAL | wz::COMMIT | wz::INFORM => {}
            wz::PING => self.ping_reply(p.zxid),
            wz::NEWLEADER => self.on_newleader(now, p.zxid),
            other => self.unexpected(now, other, "synchronization"),
        }
    }

    fn set_vote_zxid(&mut self, zxid: i64) {
        self.durable_zxid = zxid;
        self.position = zxid;
        self.out.push(LearnerAction::SetVoteZxid(zxid));
    }

    pub(super) fn on_snapshot_skipped(&mut self, _now: Duration, s: SkippedSnapshot) {
        let Some(zxid) = self.awaiting_skip.take() else {
            ::log::debug!("snapshot skipped without a SNAP: ignored");
            return;
        };
        ::log::info!(
            "sync: SNAP at zxid {zxid:#x} ({} bytes, {} znodes, {} sessions; not stored)",
            s.bytes,
            s.nodes,
            s.sessions
        );
        self.set_vote_zxid(zxid);
    }

    /// L2, store mode: the history, into the log, in order.
    fn store_sync_packet(&mut self, now: Duration, p: QuorumPacket) {
        if let Some(mut snap) = self.snap.take() {
            if p.packet_type != wz::SNAP {
                return self.unexpected(now, p.packet_type, "receiving a snapshot");
            }
            if let Err(e) = snap.feed(p.zxid, p.data.as_deref()) {
                return self.invalid(now, e);
            }
            return self.snap_progress(snap);
        }
        let first = !self.sync_started;
        match p.packet_type {
            wz::DIFF | wz::TRUNC | wz::SNAP if !first => {
                self.unexpected(now, p.packet_type, "synchronization (second sync header)")
            }
            wz::DIFF => {
                if p.zxid != self.position {
                    let text = format!(
                        "DIFF at {:#x} but our log ends at {:#x}",
                        p.zxid, self.position
                    );
                    return self.invalid(now, text);
                }
                self.sync_started = true;
                ::log::info!("sync: DIFF at zxid {:#x}", p.zxid);
            }
            wz::TRUNC => {
                if p.zxid > self.position || p.zxid < 0 {
                    let text = format!(
                        "TRUNC to {:#x} but our log ends at {:#x}",
                        p.zxid, self.position
                    );
                    return self.invalid(now, text);
                }
                self.sync_started = true;
                ::log::warn!("sync: truncating the log to zxid {:#x}", p.zxid);
                self.push_op(OpKind::Truncate, p.zxid);
                self.out.push(LearnerAction::TruncateLog { after: p.zxid });
                self.retained.clear();
            }
            wz::SNAP => match SnapAssembly::start(p.zxid, p.data.as_deref()) {
                Ok(snap) => {
                    self.sync_started = true;
                    self.snap_progress(snap);
                }
                Err(e) => self.invalid(now, e),
            },
            wz::PING => self.ping_reply(p.zxid),
            _ if first => self.unexpected(now, p.packet_type, "awaiting DIFF, TRUNC or SNAP"),
            wz::PROPOSAL => self.receive_entry(now, p, false),
            wz::INFORM => self.receive_entry(now, p, true),
            wz::COMMIT => self.receive_commit(now, p.zxid),
            wz::NEWLEADER => self.on_newleader(now, p.zxid),
            other => self.unexpected(now, other, "synchronization"),
        }
    }

    /// Keeps collecting chunks, or installs the complete snapshot.
    fn snap_progress(&mut self, snap: SnapAssembly) {
        if !snap.is_complete() {
            self.snap = Some(snap);
            return;
        }
        let zxid = snap.zxid();
        let data = snap.finish();
        ::log::info!("sync: SNAP at zxid {zxid:#x} ({} bytes)", data.len());
        self.push_op(OpKind::Install, zxid);
        self.out.push(LearnerAction::InstallSnapshot { zxid, data });
        // The snapshot is the leader's applied (committed) state; installing
        // it replaces our state machine.
        self.retained.clear();
        self.commit_zxid = self.commit_zxid.max(zxid);
        self.applied_zxid = zxid;
    }

    /// A PROPOSAL (or INFORM: an already committed proposal, observers) to
    /// append: zxids strictly increase, never past the new epoch.
    fn receive_entry(&mut self, now: Duration, p: QuorumPacket, committed: bool) {
        // A leader proposes counters 1, 2, 3... in each epoch, and a log is
        // a contiguous history: the next entry is our last zxid + 1, or the
        // first of a later epoch. Anything else is a hole (ZOOKEEPER-4925:
        // a hole taken in is later applied around and propagated).
        let contiguous = if epoch_of_zxid(p.zxid) == epoch_of_zxid(self.position) {
            p.zxid == self.position + 1
        } else {
            p.zxid & 0xffff_ffff == 1
        };
        if p.zxid <= self.position || epoch_of_zxid(p.zxid) > self.new_epoch || !contiguous {
            let text = format!(
                "{} {:#x} does not follow our last zxid {:#x} in epoch {}",
                p.type_name(),
                p.zxid,
                self.position,
                self.new_epoch
            );
            return self.invalid(now, text);
        }
        let entry = Entry {
            zxid: p.zxid,
            data: p.data.map(Bytes::from).unwrap_or_default(),
        };
        self.push_op(OpKind::Append, entry.zxid);
        self.out.push(LearnerAction::AppendLog(vec![entry.clone()]));
        self.retained.push_back(entry);
        if committed {
            self.receive_commit(now, p.zxid);
        }
    }

    /// COMMIT(z): everything ≤ z we hold is committed. Before NEWLEADER
    /// such entries leave memory: they are applied from the (then durable)
    /// log at UPTODATE, never before (ZOOKEEPER-4394).
    fn receive_commit(&mut self, now: Duration, zxid: i64) {
        if zxid > self.position {
            let text = format!(
                "COMMIT of {zxid:#x}, past our last received zxid {:#x}",
                self.position
            );
            return self.invalid(now, text);
        }
        self.commit_zxid = self.commit_zxid.max(zxid);
        match self.stage {
            LearnerStage::Syncing => {
                while self.retained.front().is_some_and(|e| e.zxid <= zxid) {
                    self.retained.pop_front();
                }
            }
            LearnerStage::Broadcast => self.deliver(),
            _ => {}
        }
    }

    /// NEWLEADER: remember where the sync ended; the ACK waits for (1) the
    /// sync's log actions, (2) currentEpoch (3.9's order; 3.8 ACKs while
    /// the proposals are still being logged: ZOOKEEPER-3911, 4643, 4646,
    /// 4685).
    fn on_newleader(&mut self, now: Duration, zxid: i64) {
        if self.store() && !self.sync_started {
            return self.unexpected(now, wz::NEWLEADER, "awaiting DIFF, TRUNC or SNAP");
        }
        if self.store() && zxid != zxid_of_epoch(self.new_epoch) {
            // Interop echoes whatever a Java leader sent, as before; a
            // zkfle leader always announces its epoch's start.
            let text = format!(
                "NEWLEADER {zxid:#x} is not the start of epoch {}",
                self.new_epoch
            );
            return self.invalid(now, text);
        }
        self.newleader_zxid = zxid;
        self.sync_end = self.position;
        self.newleader_seq = self.next_seq;
        self.stage = LearnerStage::NewLeader;
        self.read_paused = true;
        self.newleader_progress();
    }

    /// Step (2) once step (1) is done.
    pub(super) fn newleader_progress(&mut self) {
        if self.stage != LearnerStage::NewLeader || self.current_requested {
            return;
        }
        if self
            .ops
            .front()
            .is_some_and(|op| op.seq < self.newleader_seq)
        {
            return;
        }
        self.current_requested = true;
        self.out
            .push(LearnerAction::PersistCurrentEpoch(self.new_epoch));
    }

    /// Step (3).
    pub(super) fn on_current_durable(&mut self, now: Duration, epoch: i64) {
        if self.stage != LearnerStage::NewLeader
            || !self.current_requested
            || epoch != self.new_epoch
        {
            ::log::debug!("currentEpoch {epoch} durable: not awaited, ignored");
            return;
        }
        self.current_epoch = epoch;
        self.send(wz::ACK, self.newleader_zxid, None);
        self.newleader_acked = true;
        self.acked_zxid = self.sync_end;
        self.stage = LearnerStage::AwaitingUpToDate;
        // The leader is up: from here on it owes us a packet each syncLimit.
        self.read_paused = false;
        self.last_heard = self.last_heard.max(now);
        self.read_limit = self.cfg.sync_timeout();
        ::log::info!(
            "NEWLEADER {:#x} ACKed; currentEpoch {epoch}",
            self.newleader_zxid
        );
        for packet in std::mem::take(&mut self.deferred) {
            self.out.push(LearnerAction::Send(packet));
        }
        self.maybe_ack();
    }

    /// Packets after NEWLEADER, before our ACK of it is out: replies wait.
    fn newleader_wait_packet(&mut self, now: Duration, p: QuorumPacket) {
        match p.packet_type {
            wz::PING => self.deferred.push(ping_reply_packet(p.zxid)),
            wz::PROPOSAL if self.store() => self.receive_entry(now, p, false),
            wz::INFORM if self.store() => self.receive_entry(now, p, true),
            wz::COMMIT if self.store() => self.receive_commit(now, p.zxid),
            wz::PROPOSAL if self.is_follower() => {
                self.deferred.push(Packet::new(wz::ACK, p.zxid, None))
            }
            wz::UPTODATE | wz::NEWLEADER | wz::DIFF | wz::TRUNC | wz::SNAP => {
                self.unexpected(now, p.packet_type, "awaiting our NEWLEADER ACK")
            }
            other => ::log::debug!("ignoring {} before UPTODATE", type_name(other)),
        }
    }

    /// After our NEWLEADER ACK: UPTODATE, then broadcast.
    fn synced_packet(&mut self, now: Duration, p: QuorumPacket) {
        let broadcast = self.stage == LearnerStage::Broadcast;
        match p.packet_type {
            wz::PING => self.ping_reply(p.zxid),
            wz::UPTODATE if !broadcast => self.on_uptodate(now, p.zxid),
            wz::PROPOSAL if self.store() && self.role == LearnerRole::Observer => {
                self.unexpected(now, wz::PROPOSAL, "observing (observers get INFORM)")
            }
            wz::PROPOSAL if self.store() => {
                if broadcast && epoch_of_zxid(p.zxid) != self.new_epoch {
                    let text = format!(
                        "PROPOSAL {:#x} outside the leader's epoch {}",
                        p.zxid, self.new_epoch
                    );
                    return self.invalid(now, text);
                }
                self.receive_entry(now, p, false)
            }
            wz::INFORM if self.store() => self.receive_entry(now, p, true),
            wz::COMMIT if self.store() => self.receive_commit(now, p.zxid),
            // Interop: ACK at once without storing (documented
            // non-durability); observers get INFORM, never PROPOSAL, and
            // never ACK.
            wz::PROPOSAL if self.is_follower() => self.send(wz::ACK, p.zxid, None),
            other if broadcast => ::log::debug!(
                "ignoring {} {:#x} from the leader",
                type_name(other),
                p.zxid
            ),
            other => ::log::debug!("ignoring {} before UPTODATE", type_name(other)),
        }
    }

    /// L3: UPTODATE. Store mode: its zxid is the leader's commit point; the
    /// synced history up to it is applied from the log (durable since our
    /// NEWLEADER ACK), later entries from memory as they commit.
    fn on_uptodate(&mut self, now: Duration, zxid: i64) {
        if self.store() {
            let commit = self.commit_zxid.max(zxid);
            if commit > self.position {
                let text = format!(
                    "UPTODATE commits {commit:#x}, past our last received zxid {:#x}",
                    self.position
                );
                return self.invalid(now, text);
            }
            self.commit_zxid = commit;
            let up_to = commit.min(self.sync_end).max(self.applied_zxid);
            self.out.push(LearnerAction::ApplyFromLog { up_to });
            self.applied_zxid = up_to;
            while self.retained.front().is_some_and(|e| e.zxid <= up_to) {
                self.retained.pop_front();
            }
        }
        let e = self.new_epoch;
        self.send(wz::ACK, zxid_of_epoch(e), None);
        self.stage = LearnerStage::Broadcast;
        self.out.push(LearnerAction::Phase(ZabPhase::Broadcast));
        ::log::info!(
            "{} - broadcast: synced with the leader in epoch {e}",
            self.role_name()
        );
        self.deliver();
    }

    /// An empty (never null) buffer: a 3.8 leader's learner handler dies on
    /// a null PING reply and drops the learner (PROTOCOL.md §6.5).
    fn ping_reply(&mut self, zxid: i64) {
        self.out.push(LearnerAction::Send(ping_reply_packet(zxid)));
    }
}

fn ping_reply_packet(zxid: i64) -> Packet {
    Packet::new(wz::PING, zxid, Some(Bytes::new()))
}
