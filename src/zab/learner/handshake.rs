//! Learner connect policy and rule L1: FOLLOWERINFO/OBSERVERINFO,
//! LEADERINFO (store marker, epoch checks), ACKEPOCH only once a raised
//! acceptedEpoch is durable.

use super::{Learner, LearnerAction, LearnerRole, LearnerStage};
use crate::wire::zab::{self as wz, zxid_of_epoch, LeaderInfo, LearnerInfo, StoreMarker};
use crate::zab::types::{at, Mode, ZabExit, ZabPhase};
use bytes::Bytes;
use std::time::Duration;

/// ZooKeeper's learner tries the leader 5 times, 100 ms apart, all within
/// `initLimit × tickTime` (`Learner.connectToLeader`). zkfle keeps about the
/// same window (~0.55 s) but starts retrying after 5 ms, doubling to 100 ms:
/// after a failover the new leader binds its quorum port at the moment its
/// followers decide, so the first dial often comes a millisecond early and
/// a flat 100 ms wait would be most of the failover time.
pub(crate) const CONNECT_ATTEMPTS: u32 = 10;
const CONNECT_RETRY_FIRST: Duration = Duration::from_millis(5);
const CONNECT_RETRY_MAX: Duration = Duration::from_millis(100);

impl Learner {
    pub(super) fn dial(&mut self, now: Duration) {
        self.dialing = true;
        self.retry_at = None;
        self.out.push(LearnerAction::Connect {
            attempt: self.attempts,
            timeout: self.connect_deadline.saturating_sub(now),
        });
    }

    pub(super) fn on_connected(&mut self, now: Duration) {
        if self.stage != LearnerStage::Connecting || !self.dialing {
            ::log::debug!("connected without a dial outstanding: ignored");
            return;
        }
        self.dialing = false;
        ::log::info!("connected to leader sid {}", self.leader_sid);
        let info = LearnerInfo {
            sid: self.cfg.my_sid,
            protocol_version: wz::PROTOCOL_VERSION,
            config_version: Some(self.cfg.config_version()),
        };
        let mut data = info.encode();
        if self.store() {
            data.extend_from_slice(&StoreMarker::replicated_log().encode());
        }
        let kind = match self.role {
            LearnerRole::Follower => wz::FOLLOWERINFO,
            LearnerRole::Observer => wz::OBSERVERINFO,
        };
        self.send(
            kind,
            zxid_of_epoch(self.accepted_epoch),
            Some(Bytes::from(data)),
        );
        self.stage = LearnerStage::AwaitingLeaderInfo;
        self.last_heard = now;
        self.read_limit = self.cfg.init_timeout();
    }

    pub(super) fn on_connect_failed(&mut self, now: Duration, error: &str) {
        if self.stage != LearnerStage::Connecting || !self.dialing {
            ::log::debug!("connect failure without a dial outstanding: ignored");
            return;
        }
        self.dialing = false;
        ::log::debug!(
            "connect to leader sid {} failed (attempt {}): {error}",
            self.leader_sid,
            self.attempts
        );
        let failed = self.attempts;
        self.attempts += 1;
        if self.attempts >= CONNECT_ATTEMPTS || now >= self.connect_deadline {
            let exit = ZabExit::ConnectFailed {
                sid: self.leader_sid,
                attempts: self.attempts,
                error: error.to_string(),
            };
            return self.finish(now, exit);
        }
        let delay = CONNECT_RETRY_FIRST
            .saturating_mul(1 << failed.min(5))
            .min(CONNECT_RETRY_MAX)
            .min(self.connect_deadline.saturating_sub(now));
        self.retry_at = Some(at(now, delay));
    }

    pub(super) fn connect_timer(&mut self, now: Duration) {
        if self.retry_at.is_some_and(|t| now >= t) {
            return self.dial(now);
        }
        if now >= self.connect_deadline {
            let exit = ZabExit::ConnectFailed {
                sid: self.leader_sid,
                attempts: self.attempts.max(1),
                error: "initLimit spent".to_string(),
            };
            self.finish(now, exit);
        }
    }

    /// L1: LEADERINFO.
    pub(super) fn on_leader_info(&mut self, now: Duration, p: wz::QuorumPacket) {
        if p.packet_type != wz::LEADERINFO {
            return self.unexpected(now, p.packet_type, "awaiting LEADERINFO");
        }
        let li = match LeaderInfo::from_packet(&p) {
            Ok(li) => li,
            Err(e) => return self.invalid(now, e.to_string()),
        };
        if self.cfg.mode == Mode::Store {
            let marked = p
                .data
                .as_deref()
                .and_then(StoreMarker::in_leader_info)
                .is_some_and(|m| m.replicates_log());
            if !marked {
                let sid = self.leader_sid;
                return self.finish(now, ZabExit::LeaderNotReplicating { sid });
            }
        }
        let e = li.new_epoch;
        if e < self.accepted_epoch {
            let exit = ZabExit::EpochRejected {
                proposed: e,
                accepted: self.accepted_epoch,
            };
            return self.finish(now, exit);
        }
        self.new_epoch = e;
        ::log::info!(
            "leader proposed epoch {e} (protocol {:#x}); sending ACKEPOCH",
            li.protocol_version
        );
        if e > self.accepted_epoch {
            // ZooKeeper writes the i32 of its currentEpoch.
            self.ack_epoch_data = self.current_epoch as i32;
            self.stage = LearnerStage::PersistingAcceptedEpoch;
            self.read_paused = true;
            self.out.push(LearnerAction::PersistAcceptedEpoch(e));
        } else {
            // Java's marker for "I already accepted this epoch".
            self.send_ackepoch(now, wz::EPOCH_ALREADY_ACCEPTED);
        }
    }

    pub(super) fn on_accepted_durable(&mut self, now: Duration, epoch: i64) {
        if self.stage != LearnerStage::PersistingAcceptedEpoch || epoch != self.new_epoch {
            ::log::debug!("acceptedEpoch {epoch} durable: not awaited, ignored");
            return;
        }
        self.accepted_epoch = epoch;
        self.send_ackepoch(now, self.ack_epoch_data);
    }

    /// ACKEPOCH(last durable zxid, epoch field), then synchronization.
    fn send_ackepoch(&mut self, now: Duration, epoch_field: i32) {
        self.send(
            wz::ACKEPOCH,
            self.durable_zxid,
            Some(Bytes::copy_from_slice(&epoch_field.to_be_bytes())),
        );
        self.stage = LearnerStage::Syncing;
        self.read_paused = false;
        self.last_heard = self.last_heard.max(now);
        self.out
            .push(LearnerAction::Phase(ZabPhase::Synchronization));
    }
}
