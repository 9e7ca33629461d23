//! Leader rules D1, D2, D4 and D8: LearnerInfo validation, the new epoch
//! (acceptedEpoch durable before any LEADERINFO), the ACKEPOCH quorum
//! (currentEpoch durable before any NEWLEADER), NEWLEADER per learner, the
//! NEWLEADER ACK quorum that establishes the term, and UPTODATE.

use super::{Leader, LeaderAction, LeaderStage, LearnerStep};
use crate::wire::zab::{
    self as wz, epoch_of_zxid, zxid_of_epoch, AckEpoch, LearnerInfo, QuorumPacket, StoreMarker,
};
use crate::zab::types::{type_name, Mode, ZabPhase};
use crate::zab::ConnId;
use bytes::Bytes;
use std::time::Duration;

/// True if a learner's `(currentEpoch, last zxid)` is ahead of the
/// leader's starting point, so syncing it from the leader would hide (or
/// truncate) transactions the learner has: such a founding learner is
/// refused (Java: "Follower is ahead of the leader").
///
/// One refinement over Java: a zxid whose counter is 0 (`epoch << 32`) names
/// no transaction, only an epoch's start. An interop leader's zxid becomes
/// `newEpoch << 32` when it establishes while its DIFF-synced followers stay
/// at their old zxid, so without this rule a former leader that lost its
/// quorum (partition, SIGSTOP) but lived on would be refused by its
/// successor after every election, forever, in an ensemble without writes.
pub fn learner_ahead(learner: (i64, i64), leader: (i64, i64)) -> bool {
    let (l_epoch, l_zxid) = learner;
    let (epoch, zxid) = leader;
    l_epoch > epoch || (l_epoch == epoch && l_zxid > zxid && (l_zxid & 0xffff_ffff) != 0)
}

impl Leader {
    /// D1: FOLLOWERINFO / OBSERVERINFO.
    pub(super) fn on_info(&mut self, now: Duration, conn: ConnId, p: QuorumPacket) {
        let info = match LearnerInfo::from_packet(&p) {
            Ok(i) => i,
            Err(e) => return self.drop_peer(conn, format!("refused: {e}")),
        };
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.sid = Some(info.sid);
        }
        if info.sid == self.cfg.my_sid {
            return self.drop_peer(conn, "refused: learner claims the leader's own sid".into());
        }
        if !self.cfg.servers.contains(&info.sid) {
            return self.drop_peer(conn, format!("refused: sid {} is not configured", info.sid));
        }
        if info.protocol_version < wz::PROTOCOL_VERSION {
            return self.drop_peer(
                conn,
                format!(
                    "refused: pre-3.4 learner protocol {:#x} not supported",
                    info.protocol_version
                ),
            );
        }
        let learner_config = info.config_version.unwrap_or(0);
        let mine = self.cfg.config_version();
        if learner_config > mine {
            return self.drop_peer(
                conn,
                format!(
                    "refused: learner has a later config version {learner_config:#x} > {mine:#x}"
                ),
            );
        }
        if self.cfg.mode == Mode::Store {
            let marked = p
                .data
                .as_deref()
                .and_then(StoreMarker::in_learner_info)
                .is_some_and(|m| m.replicates_log());
            if !marked {
                return self.refuse_unmarked(conn, info.sid);
            }
        }
        let observer = p.packet_type == wz::OBSERVERINFO;
        let voter = !observer && self.cfg.verifier.is_voter(info.sid);
        let accepted = epoch_of_zxid(p.zxid);
        log::info!(
            "learner sid {} ({}) connected, acceptedEpoch {accepted}",
            info.sid,
            type_name(p.packet_type)
        );
        if let Some(peer) = self.peers.get_mut(&conn) {
            peer.observer = observer;
            peer.voter = voter;
            peer.enter(LearnerStep::AwaitEpoch, now);
        }
        if self.stage == LeaderStage::Discovery && voter {
            self.proposed_epoch = self.proposed_epoch.max(accepted.saturating_add(1));
            self.connecting.insert(info.sid);
            self.check_discovery_quorum(now);
        } else if self.stage >= LeaderStage::AwaitingEpochAcks {
            // D8: the epoch is durable already, LEADERINFO at once.
            self.send_leaderinfo(now, conn);
        }
    }

    /// A learner without the store marker, refused by a store-mode leader
    /// (a Java learner or an election-only zkfle peer would not hold the
    /// replicated log). Logged at warn once per sid, then at debug.
    fn refuse_unmarked(&mut self, conn: ConnId, sid: i64) {
        let reason = format!(
            "refused: learner sid {sid} does not replicate a log (a Java ZooKeeper server or an \
             election-only zkfle peer); this leader replicates a LogStore and only syncs zkfle \
             peers that do"
        );
        if self.refused_unmarked.insert(sid) {
            log::warn!("{reason}");
        } else {
            log::debug!("{reason}");
        }
        if self.peers.remove(&conn).is_some() {
            self.out.push(LeaderAction::Close { conn, reason });
        }
    }

    /// Fixes the epoch once a quorum (the leader included) sent FOLLOWERINFO.
    pub(super) fn check_discovery_quorum(&mut self, now: Duration) {
        if self.stage != LeaderStage::Discovery
            || !self
                .cfg
                .verifier
                .contains_quorum(self.connecting.iter().copied())
        {
            return;
        }
        self.new_epoch = self.proposed_epoch;
        self.stage = LeaderStage::PersistingAcceptedEpoch;
        self.stage_deadline = crate::zab::types::at(now, self.cfg.init_timeout());
        self.out
            .push(LeaderAction::PersistAcceptedEpoch(self.new_epoch));
    }

    pub(super) fn on_accepted_durable(&mut self, now: Duration, epoch: i64) {
        if self.stage != LeaderStage::PersistingAcceptedEpoch || epoch != self.new_epoch {
            log::debug!("acceptedEpoch {epoch} durable: not awaited, ignored");
            return;
        }
        self.accepted_epoch = epoch;
        self.stage = LeaderStage::AwaitingEpochAcks;
        log::info!(
            "new epoch {epoch} agreed by sids {:?}; sending LEADERINFO",
            self.connecting
        );
        let waiting: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.step == LearnerStep::AwaitEpoch)
            .map(|(c, _)| *c)
            .collect();
        for conn in waiting {
            self.send_leaderinfo(now, conn);
        }
        self.check_epoch_ack_quorum(now);
    }

    /// LEADERINFO(newEpoch << 32, 0x10000 [+ store marker]).
    fn send_leaderinfo(&mut self, now: Duration, conn: ConnId) {
        let mut data = wz::PROTOCOL_VERSION.to_be_bytes().to_vec();
        if self.cfg.mode == Mode::Store {
            data.extend_from_slice(&StoreMarker::replicated_log().encode());
        }
        self.send(
            conn,
            wz::LEADERINFO,
            zxid_of_epoch(self.new_epoch),
            Some(Bytes::from(data)),
        );
        if let Some(p) = self.peers.get_mut(&conn) {
            p.enter(LearnerStep::AwaitAckEpoch, now);
        }
    }

    /// D2: ACKEPOCH; starts this learner's sync (D3).
    pub(super) fn on_ack_epoch(&mut self, now: Duration, conn: ConnId, p: QuorumPacket) {
        let ack = match AckEpoch::from_packet(&p) {
            Ok(a) => a,
            Err(e) => return self.drop_peer(conn, format!("refused: {e}")),
        };
        let theirs = (i64::from(ack.current_epoch), ack.last_zxid);
        // As in 3.8, only learners of the founding quorum are checked: once
        // the epoch is acknowledged the leader's state is the reference
        // (Java returns early from waitForEpochAck after the quorum).
        if self.stage <= LeaderStage::AwaitingEpochAcks && learner_ahead(theirs, self.summary) {
            return self.drop_peer(
                conn,
                format!(
                    "refused: learner is ahead of the leader: (currentEpoch {}, zxid {:#x}) > ({}, {:#x})",
                    theirs.0, theirs.1, self.summary.0, self.summary.1
                ),
            );
        }
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        peer.learner_zxid = ack.last_zxid;
        let (voter, sid) = (peer.voter, peer.sid);
        if let (true, Some(sid), LeaderStage::AwaitingEpochAcks) = (voter, sid, self.stage) {
            self.epoch_acks.insert(sid);
        }
        self.start_sync(now, conn);
        self.check_epoch_ack_quorum(now);
    }

    fn check_epoch_ack_quorum(&mut self, now: Duration) {
        if self.stage != LeaderStage::AwaitingEpochAcks
            || !self
                .cfg
                .verifier
                .contains_quorum(self.epoch_acks.iter().copied())
        {
            return;
        }
        self.stage = LeaderStage::PersistingCurrentEpoch;
        self.stage_deadline = crate::zab::types::at(now, self.cfg.init_timeout());
        self.out
            .push(LeaderAction::PersistCurrentEpoch(self.new_epoch));
    }

    pub(super) fn on_current_durable(&mut self, now: Duration, epoch: i64) {
        if self.stage != LeaderStage::PersistingCurrentEpoch || epoch != self.new_epoch {
            log::debug!("currentEpoch {epoch} durable: not awaited, ignored");
            return;
        }
        self.current_epoch = epoch;
        self.stage = LeaderStage::AwaitingNewLeaderAcks;
        self.out
            .push(LeaderAction::Phase(ZabPhase::Synchronization));
        log::info!(
            "LEADING - synchronization: epoch {epoch} ACKed by sids {:?}",
            self.epoch_acks
        );
        let ready: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.step == LearnerStep::AwaitNewLeaderSend)
            .map(|(c, _)| *c)
            .collect();
        for conn in ready {
            self.maybe_send_newleader(now, conn);
        }
        self.check_established(now);
    }

    /// NEWLEADER once the learner's sync packets are out and currentEpoch
    /// is durable.
    pub(super) fn maybe_send_newleader(&mut self, now: Duration, conn: ConnId) {
        if self.stage < LeaderStage::AwaitingNewLeaderAcks {
            return;
        }
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        if p.step != LearnerStep::AwaitNewLeaderSend {
            return;
        }
        p.newleader_cover = p.last_sent;
        p.enter(LearnerStep::AwaitNewLeaderAck, now);
        log::info!(
            "learner sid {}: {}, NEWLEADER sent",
            p.sid_text(),
            p.sync_summary
        );
        let text = Bytes::copy_from_slice(self.cfg.config_text.as_bytes());
        self.send(
            conn,
            wz::NEWLEADER,
            zxid_of_epoch(self.new_epoch),
            Some(text),
        );
    }

    /// The ACK of NEWLEADER: in store mode it also acknowledges every entry
    /// sent before NEWLEADER (the learner made them durable, then its
    /// currentEpoch, before answering).
    pub(super) fn on_newleader_ack(&mut self, now: Duration, conn: ConnId, p: QuorumPacket) {
        let expected = zxid_of_epoch(self.new_epoch);
        let sync = self.cfg.sync_timeout();
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        if p.zxid != expected {
            // Java logs and ignores an ACK from another epoch.
            log::warn!(
                "learner sid {}: NEWLEADER ACK for {:#x}, expected {expected:#x}; ignored",
                peer.sid_text(),
                p.zxid
            );
            return;
        }
        peer.limit = sync;
        if !peer.observer {
            peer.acked = peer.newleader_cover;
        }
        if let (true, Some(sid)) = (peer.voter, peer.sid) {
            if self.stage == LeaderStage::AwaitingNewLeaderAcks {
                self.newleader_acks.insert(sid);
            }
        }
        if self.stage == LeaderStage::Broadcast {
            self.send_uptodate(now, conn);
            // What it holds may complete a quorum for pending proposals.
            self.try_commit(now);
        } else {
            peer.enter(LearnerStep::AwaitEstablished, now);
            self.check_established(now);
        }
    }

    fn check_established(&mut self, now: Duration) {
        if self.stage != LeaderStage::AwaitingNewLeaderAcks
            || !self
                .cfg
                .verifier
                .contains_quorum(self.newleader_acks.iter().copied())
        {
            return;
        }
        self.establish(now);
    }

    /// D4: a quorum ACKed NEWLEADER.
    fn establish(&mut self, now: Duration) {
        self.stage = LeaderStage::Broadcast;
        self.established_by = self.newleader_acks.clone();
        let epoch = self.new_epoch;
        log::info!(
            "LEADING - broadcast: established epoch {epoch} with sids {:?}",
            self.established_by
        );
        match self.cfg.mode {
            Mode::Store => {
                // The whole history the term started with is on a quorum
                // now: it is committed (Zab's new-leader commit).
                self.commit_zxid = self.initial_last;
                self.out.push(LeaderAction::ApplyFromLog {
                    up_to: self.initial_last,
                });
            }
            Mode::Interop => {
                self.out
                    .push(LeaderAction::SetVoteZxid(zxid_of_epoch(epoch)));
            }
        }
        self.out.push(LeaderAction::Phase(ZabPhase::Broadcast));
        self.out.push(LeaderAction::Established { epoch });
        let waiting: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.step == LearnerStep::AwaitEstablished)
            .map(|(c, _)| *c)
            .collect();
        for conn in waiting {
            self.send_uptodate(now, conn);
        }
        self.next_ping = Some(now);
        self.next_tick = Some(crate::zab::types::at(now, self.cfg.tick_time));
    }

    /// UPTODATE: zxid −1 in interop mode (as Java); in store mode the
    /// leader's commit zxid, which the learner may apply up to.
    fn send_uptodate(&mut self, now: Duration, conn: ConnId) {
        let zxid = match self.cfg.mode {
            Mode::Interop => -1,
            Mode::Store => self.commit_zxid,
        };
        self.send(conn, wz::UPTODATE, zxid, None);
        if let Some(p) = self.peers.get_mut(&conn) {
            p.enter(LearnerStep::Broadcast, now);
            log::info!("learner sid {}: UPTODATE sent, synced", p.sid_text());
        }
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
