//! Leader rules D5–D7 and D9: proposals, cumulative ACKs and in-order
//! commits, read barriers, pings, the quorum tick, and what synced learners
//! may send.

use super::{Barrier, Leader, LeaderAction, LeaderStage, LearnerStep, Pending};
use crate::wire::zab::{self as wz, epoch_of_zxid, zxid_of_epoch, QuorumPacket};
use crate::zab::types::{at, type_name, Entry, Mode, ReqId, RequestError, ZabExit};
use crate::zab::ConnId;
use bytes::Bytes;
use std::collections::BTreeSet;
use std::time::Duration;

/// ZooKeeper never uses counter 0xffffffff: a proposal that would take it
/// forces a new epoch instead (`XidRolloverException`).
const LAST_COUNTER: u32 = 0xffff_fffe;

impl Leader {
    /// D5: new proposals.
    pub(super) fn on_propose(&mut self, now: Duration, batch: Vec<(Bytes, ReqId)>) {
        let refuse = match (self.cfg.mode, self.stage) {
            (Mode::Interop, _) => Some(RequestError::NoReplicatedLog),
            (_, LeaderStage::Broadcast) => None,
            _ => Some(RequestError::NotEstablished),
        };
        if let Some(err) = refuse {
            for (_, req) in batch {
                self.out.push(LeaderAction::ProposeDone {
                    req,
                    result: Err(err),
                });
            }
            return;
        }
        let mut entries = Vec::with_capacity(batch.len());
        let mut refused = Vec::new();
        for (data, req) in batch {
            if self.counter >= LAST_COUNTER {
                refused.push(req);
                continue;
            }
            self.counter += 1;
            let zxid = zxid_of_epoch(self.new_epoch) | i64::from(self.counter);
            let entry = Entry { zxid, data };
            self.recent.push_back(Pending {
                entry: entry.clone(),
                req: Some(req),
            });
            entries.push(entry);
        }
        if let Some(last) = entries.last() {
            self.last_zxid = last.zxid;
            let followers: Vec<ConnId> = self
                .peers
                .iter_mut()
                .filter(|(_, p)| p.forwarding && !p.observer)
                .map(|(c, p)| {
                    p.last_sent = last.zxid;
                    *c
                })
                .collect();
            self.out.push(LeaderAction::AppendLog(entries.clone()));
            for conn in followers {
                for e in &entries {
                    self.send(conn, wz::PROPOSAL, e.zxid, Some(e.data.clone()));
                }
            }
        }
        if !refused.is_empty() {
            for req in refused {
                self.out.push(LeaderAction::ProposeDone {
                    req,
                    result: Err(RequestError::NotEstablished),
                });
            }
            let epoch = self.new_epoch;
            self.finish(now, ZabExit::CounterRollover { epoch });
        }
    }

    /// Packets from a learner that ACKed NEWLEADER.
    pub(super) fn on_synced_packet(
        &mut self,
        now: Duration,
        conn: ConnId,
        step: LearnerStep,
        p: QuorumPacket,
    ) {
        match p.packet_type {
            wz::ACK => self.on_ack(now, conn, p.zxid),
            // PING replies carry session touches; zkfle has no sessions, so
            // only their count matters (null data, which kills a Java
            // leader's handler, is fine here).
            wz::PING if step == LearnerStep::Broadcast => self.on_ping_reply(conn),
            wz::PING => {}
            wz::REQUEST if self.cfg.mode == Mode::Store => self.drop_peer(
                conn,
                "refused: REQUEST (client requests are not forwarded in a store-mode ensemble)"
                    .into(),
            ),
            wz::REQUEST => self.on_request(conn, &p),
            other if step == LearnerStep::Broadcast => {
                let sid = self.peers.get(&conn).map_or(-1, |x| x.sid.unwrap_or(-1));
                log::debug!("learner sid {sid}: {} ignored", type_name(other));
            }
            other => self.drop_peer(
                conn,
                format!("refused: unexpected {} in state {step:?}", type_name(other)),
            ),
        }
    }

    /// D9, interop: zkfle serves no client API (PROTOCOL.md §6.5): sessions
    /// and writes a Java follower forwards get no PROPOSAL, so the client's
    /// library gives up with a connection loss after its own timeout, and
    /// the follower stays in sync. Said once per learner at warn so an
    /// operator sees why clients of a mixed ensemble fail; the rest at debug.
    fn on_request(&mut self, conn: ConnId, p: &QuorumPacket) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        peer.requests_dropped += 1;
        let what = match wz::ForwardedRequest::from_packet(p) {
            Ok(r) => format!(
                "{} (session {:#x}, cxid {})",
                r.op_name(),
                r.session_id,
                r.cxid
            ),
            Err(e) => format!("undecodable request ({e})"),
        };
        if peer.requests_dropped == 1 {
            log::warn!(
                "learner sid {} forwarded a client request, {what}: dropped, zkfle serves no ZooKeeper client API (the client will see a connection loss)",
                peer.sid_text()
            );
        } else {
            log::debug!(
                "learner sid {}: client request {what} dropped ({} so far)",
                peer.sid_text(),
                peer.requests_dropped
            );
        }
    }

    /// A follower's ACK(z) acknowledges every zxid ≤ z it was sent
    /// (store-mode learners ACK only what is durable, in order).
    fn on_ack(&mut self, now: Duration, conn: ConnId, zxid: i64) {
        let epoch = self.new_epoch;
        let store = self.cfg.mode == Mode::Store;
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        if peer.observer || epoch_of_zxid(zxid) < epoch || zxid == zxid_of_epoch(epoch) {
            // Observers never count; older epochs and the UPTODATE ACK
            // (newEpoch << 32) acknowledge nothing new.
            return;
        }
        if zxid > peer.last_sent {
            if store {
                let why = format!(
                    "refused: ACK for {zxid:#x}, past the last proposal sent to it ({:#x})",
                    peer.last_sent
                );
                self.drop_peer(conn, why);
            }
            return;
        }
        if zxid > peer.acked {
            peer.acked = zxid;
            self.try_commit(now);
        }
    }

    /// True if a quorum of voters that includes the leader has `zxid`
    /// durable (the design's rule: a write is acknowledged only once the
    /// leader itself holds it, so the leader's applied state never runs
    /// ahead of its own log).
    fn acked_by_quorum(&self, zxid: i64) -> bool {
        if self.durable_zxid < zxid {
            return false;
        }
        let followers = self
            .peers
            .values()
            .filter(|p| p.voter && p.acked >= zxid)
            .filter_map(|p| p.sid);
        self.cfg
            .verifier
            .contains_quorum(followers.chain([self.cfg.my_sid]))
    }

    /// Commits, in zxid order, every pending proposal a quorum has durable.
    pub(super) fn try_commit(&mut self, _now: Duration) {
        if self.stage != LeaderStage::Broadcast {
            return;
        }
        // "A quorum has z durable" is monotone in z (ACKs are cumulative,
        // durability only grows): a binary search finds the new commit
        // point with O(log n) quorum checks however long the pipeline.
        let end = self
            .recent
            .partition_point(|p| self.acked_by_quorum(p.entry.zxid));
        let mut committed: Vec<Entry> = Vec::new();
        let mut done: Vec<(ReqId, i64)> = Vec::new();
        for p in self.recent.range(self.committed_in_recent.min(end)..end) {
            committed.push(p.entry.clone());
            if let Some(req) = p.req {
                done.push((req, p.entry.zxid));
            }
        }
        if end > self.committed_in_recent {
            self.committed_in_recent = end;
            if let Some(last) = committed.last() {
                self.commit_zxid = last.zxid;
            }
        }
        if committed.is_empty() {
            return;
        }
        let commit = self.commit_zxid;
        let live: Vec<(ConnId, bool)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.forwarding)
            .map(|(c, p)| (*c, p.observer))
            .collect();
        for (conn, observer) in live {
            if observer {
                for e in &committed {
                    self.send(conn, wz::INFORM, e.zxid, Some(e.data.clone()));
                }
            } else {
                // COMMIT is cumulative between zkfle peers: one per batch.
                self.send(conn, wz::COMMIT, commit, None);
            }
        }
        self.out.push(LeaderAction::Deliver(committed));
        for (req, zxid) in done {
            self.out.push(LeaderAction::ProposeDone {
                req,
                result: Ok(zxid),
            });
        }
        self.trim();
    }

    /// D6: a read barrier.
    pub(super) fn on_read_barrier(&mut self, now: Duration, req: ReqId) {
        if self.stage != LeaderStage::Broadcast {
            self.out.push(LeaderAction::BarrierDone {
                req,
                result: Err(RequestError::NotEstablished),
            });
            return;
        }
        self.barriers.push_back(Barrier {
            req,
            commit: self.commit_zxid,
            after_round: self.ping_round,
        });
        self.check_barriers();
        if !self.barriers.is_empty() && self.barrier_due.is_none() {
            self.barrier_due = Some(now);
        }
    }

    fn on_ping_reply(&mut self, conn: ConnId) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        // TCP keeps order and a learner answers each PING once: the reply
        // answers the oldest unanswered PING. A reply with none pending
        // (unsolicited) proves nothing.
        if let Some(round) = peer.pings.pop_front() {
            peer.answered_round = round;
            self.check_barriers();
            self.update_quorum_confirmed();
        }
    }

    /// The newest round a quorum of voters (the leader included) answered,
    /// and its send time: the largest `r` such that the voters whose last
    /// answered round is `≥ r`, with the leader, form a quorum.
    fn update_quorum_confirmed(&mut self) {
        let mut rounds: Vec<u64> = self
            .peers
            .values()
            .filter(|p| p.voter && p.answered_round > 0)
            .map(|p| p.answered_round)
            .collect();
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        rounds.dedup();
        let confirmed = rounds.into_iter().find(|&r| {
            let sids = self
                .peers
                .values()
                .filter(|p| p.voter && p.answered_round >= r)
                .filter_map(|p| p.sid)
                .chain([self.cfg.my_sid]);
            self.cfg.verifier.contains_quorum(sids)
        });
        let Some(round) = confirmed else {
            return;
        };
        // Rounds up to the confirmed one are no longer needed.
        while let Some(&(r, sent)) = self.round_sent.front() {
            if r > round {
                break;
            }
            self.round_sent.pop_front();
            if r == round {
                self.quorum_confirmed = Some(self.quorum_confirmed.map_or(sent, |c| c.max(sent)));
            }
        }
    }

    /// Completes, oldest first, the barriers a quorum confirmed with
    /// replies to PINGs sent after them.
    fn check_barriers(&mut self) {
        while let Some(b) = self.barriers.front().copied() {
            let confirmed: BTreeSet<i64> = self
                .peers
                .values()
                .filter(|p| p.voter && p.answered_round > b.after_round)
                .filter_map(|p| p.sid)
                .chain([self.cfg.my_sid])
                .collect();
            if !self.cfg.verifier.contains_quorum(confirmed) {
                break;
            }
            self.barriers.pop_front();
            self.out.push(LeaderAction::BarrierDone {
                req: b.req,
                result: Ok(b.commit),
            });
        }
    }

    /// D7: pings every half tick (and on demand for barriers), the quorum
    /// check every tick.
    pub(super) fn broadcast_timer(&mut self, now: Duration) {
        let half_tick = (self.cfg.tick_time / 2).max(Duration::from_millis(1));
        let ping_due = self.next_ping.is_some_and(|t| now >= t);
        let barrier_due = self.barrier_due.is_some_and(|t| now >= t);
        if ping_due {
            let mut next = self.next_ping.map_or(now, |t| at(t, half_tick));
            if next < now {
                next = at(now, half_tick);
            }
            self.next_ping = Some(next);
        }
        if ping_due || barrier_due {
            self.barrier_due = None;
            self.ping_round(now);
        }
        if let Some(tick) = self.next_tick.filter(|t| now >= *t) {
            let mut next = at(tick, self.cfg.tick_time);
            if next < now {
                next = at(now, self.cfg.tick_time);
            }
            self.next_tick = Some(next);
            let mut synced = BTreeSet::from([self.cfg.my_sid]);
            for p in self.peers.values() {
                if let (Some(sid), true) = (p.sid, p.voter) {
                    if p.deadline.map_or(true, |d| d > now) {
                        synced.insert(sid);
                    }
                }
            }
            if !self.cfg.verifier.contains_quorum(synced.iter().copied()) {
                let synced = synced.into_iter().collect();
                self.finish(now, ZabExit::QuorumLost { synced });
            } else if let Some(to) = self.hand_off_target(now) {
                let hold_off = self.cfg.init_timeout();
                log::info!(
                    "LEADING - sid {}: preferred leader {to} is synced with every proposal; handing off",
                    self.cfg.my_sid
                );
                self.finish(now, ZabExit::HandedOff { to, hold_off });
            }
        }
    }

    /// The preferred leader, if it is another voter, synced, not silent,
    /// and holds every proposal of the term
    /// ([`Leader::set_preferred_leader`]).
    fn hand_off_target(&self, now: Duration) -> Option<i64> {
        let to = self.preferred_leader?;
        if to == self.cfg.my_sid || !self.cfg.verifier.is_voter(to) {
            return None;
        }
        let caught_up = |p: &super::Peer| {
            p.sid == Some(to)
                && p.voter
                && p.step == LearnerStep::Broadcast
                && p.deadline.map_or(true, |d| d > now)
                && (p.acked >= self.last_zxid || self.last_zxid == self.initial_last)
        };
        self.peers.values().any(caught_up).then_some(to)
    }

    /// One PING to every learner in Broadcast. zxid: `newEpoch << 32` in
    /// interop mode (today's bytes); the last proposed zxid in store mode
    /// (as Java), which is `newEpoch << 32` until the first proposal.
    fn ping_round(&mut self, now: Duration) {
        self.ping_round += 1;
        let round = self.ping_round;
        self.round_sent.push_back((round, now));
        let epoch_start = zxid_of_epoch(self.new_epoch);
        let zxid = match self.cfg.mode {
            Mode::Interop => epoch_start,
            Mode::Store => self.last_zxid.max(epoch_start),
        };
        let targets: Vec<ConnId> = self
            .peers
            .iter_mut()
            .filter(|(_, p)| p.step == LearnerStep::Broadcast)
            .map(|(c, p)| {
                p.pings.push_back(round);
                *c
            })
            .collect();
        for conn in targets {
            self.send(conn, wz::PING, zxid, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LAST_COUNTER;
    use crate::config::QuorumVerifier;
    use crate::zab::{Leader, LeaderAction, Mode, Persisted, RequestError, ZabConfig, ZabExit};
    use bytes::Bytes;
    use std::time::Duration;

    fn solo() -> Leader {
        let cfg = ZabConfig {
            my_sid: 1,
            tick_time: Duration::from_millis(100),
            init_limit: 10,
            sync_limit: 3,
            verifier: QuorumVerifier::majority([1]),
            servers: [1].into(),
            config_text: String::new(),
            mode: Mode::Store,
        };
        let now = Duration::ZERO;
        let (mut l, _) = Leader::start(cfg, Persisted::default(), now);
        l.accepted_epoch_durable(now, 1);
        l.current_epoch_durable(now, 1);
        assert!(l.is_established());
        l
    }

    #[test]
    fn counter_rollover_forces_a_new_epoch_instead_of_wrapping() {
        let mut l = solo();
        l.counter = LAST_COUNTER - 1;
        let now = Duration::ZERO;
        let out = l.propose_batch(now, vec![(Bytes::new(), 1), (Bytes::new(), 2)]);
        let last = (1i64 << 32) | i64::from(LAST_COUNTER);
        assert!(
            matches!(&out[0], LeaderAction::AppendLog(es) if es.len() == 1 && es[0].zxid == last)
        );
        assert_eq!(
            out[1..],
            [
                LeaderAction::ProposeDone {
                    req: 2,
                    result: Err(RequestError::NotEstablished)
                },
                LeaderAction::ProposeDone {
                    req: 1,
                    result: Err(RequestError::OutcomeUnknown)
                },
                LeaderAction::Exit(ZabExit::CounterRollover { epoch: 1 }),
            ]
        );
    }
}
