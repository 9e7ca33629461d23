//! Leader rule D3: bringing one learner up to date after its ACKEPOCH.
//! Interop: an empty DIFF at the learner's zxid. Store: `ReadLog`, then
//! DIFF / TRUNC / SNAP from the plan, the entries the read returned, and the
//! entries proposed while the read was outstanding (kept in memory), so
//! nothing falls between the read and live forwarding (ZooKeeper's
//! `startForwarding` under the log lock).

use super::{Leader, LearnerStep};
use crate::wire::zab as wz;
use crate::zab::snapshot::snap_packets;
use crate::zab::sync::{check_entries, plan, LogRead, SnapshotRead, SyncKind};
use crate::zab::types::{Entry, Mode, Packet};
use crate::zab::{ConnId, LeaderAction};
use std::time::Duration;

impl Leader {
    /// Starts the sync of a learner whose ACKEPOCH just arrived.
    pub(super) fn start_sync(&mut self, now: Duration, conn: ConnId) {
        let mode = self.cfg.mode;
        let through = self.last_zxid;
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let l = p.learner_zxid;
        match mode {
            Mode::Interop => {
                // zkfle keeps no history in interop mode: the learner is
                // always "in sync", so an empty DIFF at its own zxid; never
                // TRUNC (a Java learner that cannot truncate exits) nor SNAP.
                p.sync_summary = format!("empty DIFF at {l:#x}");
                p.forwarding = true;
                p.enter(LearnerStep::AwaitNewLeaderSend, now);
                self.send(conn, wz::DIFF, l, None);
                self.maybe_send_newleader(now, conn);
            }
            Mode::Store => {
                p.read_through = through;
                p.enter(LearnerStep::ReadingLog, now);
                self.out.push(LeaderAction::ReadLog {
                    conn,
                    after: l,
                    through,
                });
            }
        }
    }

    pub(super) fn on_log_read(&mut self, now: Duration, conn: ConnId, read: LogRead) {
        let Some(p) = self.peers.get_mut(&conn) else {
            log::debug!("log read for closed connection {conn} ignored");
            return;
        };
        if p.step != LearnerStep::ReadingLog {
            log::debug!("log read for connection {conn} in {:?} ignored", p.step);
            return;
        }
        if read.compacted {
            p.step = LearnerStep::ReadingSnapshot;
            let through = p.read_through;
            self.out.push(LeaderAction::ReadSnapshot { conn, through });
            return;
        }
        let learner = p.learner_zxid;
        let header = match plan(learner, &read, self.last_zxid) {
            Ok(SyncKind::Diff { zxid }) => Packet::new(wz::DIFF, zxid, None),
            Ok(SyncKind::Trunc { zxid }) => Packet::new(wz::TRUNC, zxid, None),
            Ok(SyncKind::Snap) => return self.drop_peer(conn, "no plan".into()),
            Err(e) => return self.drop_peer(conn, format!("cannot sync it: {e}")),
        };
        let base = read.entries.last().map_or(read.prefix, |e| e.zxid);
        let what = format!(
            "{} at {:#x} (learner at {learner:#x})",
            header.type_name(),
            header.zxid
        );
        self.send_history(now, conn, vec![header], read.entries, base, what);
    }

    pub(super) fn on_snapshot_read(&mut self, now: Duration, conn: ConnId, snap: SnapshotRead) {
        let Some(p) = self.peers.get(&conn) else {
            log::debug!("snapshot read for closed connection {conn} ignored");
            return;
        };
        if p.step != LearnerStep::ReadingSnapshot {
            log::debug!(
                "snapshot read for connection {conn} in {:?} ignored",
                p.step
            );
            return;
        }
        if snap.zxid < 0 || snap.zxid > self.last_zxid {
            let why = format!(
                "cannot sync it: snapshot at {:#x} is past the leader's last zxid {:#x}",
                snap.zxid, self.last_zxid
            );
            return self.drop_peer(conn, why);
        }
        if let Err(e) = check_entries(&snap.entries, snap.zxid, self.last_zxid) {
            return self.drop_peer(conn, format!("cannot sync it: {e}"));
        }
        let headers = snap_packets(snap.zxid, &snap.data);
        let base = snap.entries.last().map_or(snap.zxid, |e| e.zxid);
        let what = format!("SNAP at {:#x} ({} bytes)", snap.zxid, snap.data.len());
        self.send_history(now, conn, headers, snap.entries, base, what);
    }

    /// True if `zxid` is committed, or will be at establishment (the
    /// history the term started with).
    pub(super) fn is_committed(&self, zxid: i64) -> bool {
        zxid <= self.initial_last || zxid <= self.commit_zxid
    }

    /// Sends the sync header(s), the entries read, then this term's
    /// in-memory entries after `base`; the learner then joins live
    /// forwarding. Committed entries go as PROPOSAL + COMMIT; uncommitted
    /// ones as PROPOSAL alone to followers (their COMMIT follows live) and
    /// not at all to observers (an INFORM follows live when they commit).
    fn send_history(
        &mut self,
        now: Duration,
        conn: ConnId,
        headers: Vec<Packet>,
        read: Vec<Entry>,
        base: i64,
        what: String,
    ) {
        if base < self.trimmed_upto {
            let why = format!(
                "cannot sync it: the log read ended at {base:#x} but entries up to {:#x} were \
                 already released from memory (ReadLog must run after every earlier AppendLog)",
                self.trimmed_upto
            );
            return self.drop_peer(conn, why);
        }
        let Some(observer) = self.peers.get(&conn).map(|p| p.observer) else {
            return;
        };
        let tail = self
            .recent
            .iter()
            .map(|p| &p.entry)
            .filter(|e| e.zxid > base);
        let mut packets = headers;
        let mut last_sent = None;
        let mut proposals = 0usize;
        for e in read.iter().chain(tail) {
            let committed = self.is_committed(e.zxid);
            if observer && !committed {
                break;
            }
            packets.push(Packet::new(wz::PROPOSAL, e.zxid, Some(e.data.clone())));
            if committed {
                packets.push(Packet::new(wz::COMMIT, e.zxid, None));
            }
            last_sent = Some(e.zxid);
            proposals += 1;
        }
        for packet in packets {
            self.out.push(LeaderAction::Send { conn, packet });
        }
        if let Some(p) = self.peers.get_mut(&conn) {
            if let Some(z) = last_sent {
                p.last_sent = z;
            }
            p.forwarding = true;
            p.sync_summary = format!("{what} + {proposals} proposals");
            p.enter(LearnerStep::AwaitNewLeaderSend, now);
        }
        self.trim();
        self.maybe_send_newleader(now, conn);
    }

    /// Drops entries from memory that are committed and that no outstanding
    /// log read still needs (a read returns at least its `through`).
    pub(super) fn trim(&mut self) {
        let reads = self
            .peers
            .values()
            .filter(|p| {
                matches!(
                    p.step,
                    LearnerStep::ReadingLog | LearnerStep::ReadingSnapshot
                )
            })
            .map(|p| p.read_through);
        let floor = reads.fold(self.commit_zxid, i64::min);
        while self.committed_in_recent > 0 {
            match self.recent.front() {
                Some(p) if p.entry.zxid <= floor => {
                    self.trimmed_upto = p.entry.zxid;
                    self.recent.pop_front();
                    self.committed_in_recent -= 1;
                }
                _ => break,
            }
        }
    }
}
