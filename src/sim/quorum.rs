//! Quorum connections: the TCP connections a learner dials to its leader's
//! quorum port and Zab's packets travel on. Connect is refused by a dead
//! process or a host without a listening leader, times out behind a
//! black-holing partition, and is accepted by the kernel of a paused
//! leader (the leader's process sees it when it resumes). Each direction
//! is FIFO with the network's delays; packets go through the real codec.
//! A closing side's FIN follows its last packet; a crash or a rejecting
//! partition resets the connection (both ends learn at once, in-flight
//! data is lost); a black-holing partition holds the packets until it
//! heals or a TCP timeout resets the connection. Silence (a paused peer, a
//! one-way cut) is only noticed by Zab's own read timeouts.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::wire::zab::{self as wz, QuorumPacket};
use crate::zab::{ConnId, Packet};

use super::peer::Role;
use super::schedule::{ms, Ev, QMsg};
use super::world::{InjectedBug, World};

/// One learner connection.
pub(super) struct QConn {
    pub leader: i64,
    pub learner: i64,
    /// Incarnation and role of each end: [leader, learner].
    pub inc: [u32; 2],
    pub role: [u64; 2],
    /// Each end still open: [leader, learner].
    pub open: [bool; 2],
    /// Delivery time of the last packet in flight, per direction
    /// (0: leader → learner, 1: learner → leader).
    last_at: [Duration; 2],
    /// Packets stuck behind a black-holing partition, per direction.
    held: [VecDeque<QMsg>; 2],
}

impl QConn {
    /// The sid at the sending end of direction `dir`.
    fn from(&self, dir: u8) -> i64 {
        if dir == 0 {
            self.leader
        } else {
            self.learner
        }
    }

    fn to(&self, dir: u8) -> i64 {
        if dir == 0 {
            self.learner
        } else {
            self.leader
        }
    }
}

impl World {
    /// A learner's dial reaches the leader's host.
    pub(super) fn q_connect(&mut self, learner: i64, inc: u32, role: u64, leader: i64) {
        let i = self.idx(learner);
        if self.peers[i].inc != inc || self.peers[i].role_gen != role {
            return;
        }
        let timeout = match &self.peers[i].role {
            Role::Learning(l) => l.connect_timeout,
            _ => return,
        };
        let refused = "connection refused";
        if !self.alive(leader) {
            return self.q_connect_failed(learner, inc, role, refused);
        }
        if !self.reachable(learner, leader) {
            if self.p.blackhole {
                let t = timeout.min(self.p.connect_timeout);
                self.schedule(
                    t,
                    Ev::QConnectFailed {
                        learner,
                        inc,
                        role,
                        error: "connect timed out",
                    },
                );
                return;
            }
            return self.q_connect_failed(learner, inc, role, refused);
        }
        let li = self.idx(leader);
        let listening =
            matches!(&self.peers[li].role, Role::Leading(l) if l.m.exit_reason().is_none());
        if !listening {
            return self.q_connect_failed(learner, inc, role, refused);
        }
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let lp = &self.peers[li];
        self.qconns.insert(
            conn,
            QConn {
                leader,
                learner,
                inc: [lp.inc, inc],
                role: [lp.role_gen, role],
                open: [true, true],
                last_at: [Duration::ZERO; 2],
                held: [VecDeque::new(), VecDeque::new()],
            },
        );
        let leader_inc = lp.inc;
        if let Role::Learning(l) = &mut self.peers[i].role {
            l.conn = Some(conn);
            l.leader_inc = Some(leader_inc);
        }
        self.log(|| format!("sid {learner}: connected to leader {leader} ({conn})"));
        // The leader's process accepts the connection (later, if paused).
        self.schedule(Duration::ZERO, Ev::QAccept { conn });
        self.learner_call(learner, Some(role), |m, now| m.connected(now));
    }

    pub(super) fn q_connect_failed(
        &mut self,
        learner: i64,
        inc: u32,
        role: u64,
        error: &'static str,
    ) {
        let i = self.idx(learner);
        if self.peers[i].inc != inc {
            return;
        }
        self.learner_call(learner, Some(role), |m, now| m.connect_failed(now, error));
    }

    pub(super) fn q_accept(&mut self, conn: ConnId) {
        let Some(c) = self.qconns.get(&conn) else {
            return;
        };
        let (leader, inc, role) = (c.leader, c.inc[0], c.role[0]);
        let pp = &self.peers[self.idx(leader)];
        if pp.inc != inc || pp.role_gen != role || !c.open[0] {
            return;
        }
        self.leader_call(leader, Some(role), |m, now| m.learner_connected(now, conn));
    }

    /// Writes `packet` on `conn` from `side` (0 leader, 1 learner).
    pub(super) fn q_send(&mut self, conn: ConnId, side: u8, packet: &Packet) {
        let mut bytes = Vec::new();
        packet.encode(&mut bytes);
        self.q_push(conn, side, QMsg::Packet(Bytes::from(bytes)));
    }

    fn q_push(&mut self, conn: ConnId, dir: u8, msg: QMsg) {
        let Some(c) = self.qconns.get(&conn) else {
            return;
        };
        if !c.open[dir as usize] {
            return;
        }
        if matches!(msg, QMsg::Packet(_)) {
            self.stats.packets += 1;
        }
        // Always through the wire, even behind a partition: the delivery
        // holds it, after whatever is still in flight (FIFO).
        let delay = self.packet_delay();
        let now = self.now;
        let Some(c) = self.qconns.get_mut(&conn) else {
            return;
        };
        let d = dir as usize;
        let at = (now + delay).max(c.last_at[d]);
        c.last_at[d] = at;
        self.schedule_at(at, Ev::QDeliver { conn, dir, msg });
    }

    pub(super) fn q_deliver(&mut self, conn: ConnId, dir: u8, msg: QMsg) {
        let Some(c) = self.qconns.get(&conn) else {
            return;
        };
        let (from, to) = (c.from(dir), c.to(dir));
        if !c.open[1 - dir as usize] {
            return;
        }
        let cut = self.blocked(from, to);
        let Some(c) = self.qconns.get_mut(&conn) else {
            return;
        };
        if cut || !c.held[dir as usize].is_empty() {
            c.held[dir as usize].push_back(msg);
            return;
        }
        self.q_receive(conn, dir, msg);
    }

    /// The receiving end reads `msg`.
    fn q_receive(&mut self, conn: ConnId, dir: u8, msg: QMsg) {
        let Some(c) = self.qconns.get(&conn) else {
            return;
        };
        let (from, to) = (c.from(dir), c.to(dir));
        let recv = 1 - dir as usize;
        if !c.open[recv] {
            return;
        }
        let (inc, role) = (c.inc[recv], c.role[recv]);
        let pp = &self.peers[self.idx(to)];
        if !pp.alive || pp.inc != inc {
            return;
        }
        match msg {
            QMsg::Eof => {
                if let Some(c) = self.qconns.get_mut(&conn) {
                    c.open[recv] = false;
                    if !c.open[0] && !c.open[1] {
                        self.qconns.remove(&conn);
                    }
                }
                self.log(|| format!("{from} -> {to}: EOF on {conn}"));
                if recv == 0 {
                    self.leader_call(to, Some(role), |m, now| m.learner_closed(now, conn));
                } else {
                    self.learner_call(to, Some(role), |m, now| m.closed(now));
                }
            }
            QMsg::Packet(bytes) => {
                let p = match QuorumPacket::decode(&bytes) {
                    Ok((p, used)) if used == bytes.len() => p,
                    other => {
                        let detail = format!(
                            "{from} -> {to}: the simulator's own packet did not decode: {other:?}"
                        );
                        self.fail(Err(super::invariants::Violation {
                            invariant: "packets_decode",
                            at: self.now,
                            detail,
                        }));
                        return;
                    }
                };
                self.mix(0x9a_c4e7 ^ (p.packet_type as u64) << 8 ^ to as u64);
                self.log(|| {
                    format!(
                        "{from} -> {to}: {} {:#x}{}",
                        p.type_name(),
                        p.zxid,
                        p.data
                            .as_ref()
                            .map(|d| format!(" ({} bytes)", d.len()))
                            .unwrap_or_default()
                    )
                });
                if recv == 0 {
                    self.leader_call(to, Some(role), |m, now| m.packet(now, conn, p));
                } else {
                    if p.packet_type == wz::NEWLEADER
                        && self.bug == Some(InjectedBug::EpochBeforeSync)
                    {
                        self.epoch_before_sync(to, wz::epoch_of_zxid(p.zxid));
                    }
                    self.learner_call(to, Some(role), |m, now| m.packet(now, p));
                }
            }
        }
    }

    /// `side` closes its end: its FIN follows what it already sent.
    pub(super) fn q_close(&mut self, conn: ConnId, side: u8) {
        let Some(c) = self.qconns.get(&conn) else {
            return;
        };
        if !c.open[side as usize] {
            return;
        }
        self.q_push(conn, side, QMsg::Eof);
        if let Some(c) = self.qconns.get_mut(&conn) {
            c.open[side as usize] = false;
            if !c.open[0] && !c.open[1] {
                self.qconns.remove(&conn);
            }
        }
    }

    /// The connection is reset: in-flight data is lost and each end still
    /// open learns it at once (a crashed end learns nothing).
    pub(super) fn q_reset(&mut self, conn: ConnId) {
        let Some(c) = self.qconns.remove(&conn) else {
            return;
        };
        self.log(|| format!("connection {conn} ({}-{}) reset", c.leader, c.learner));
        for side in 0..2u8 {
            let sid = if side == 0 { c.leader } else { c.learner };
            if c.open[side as usize] && self.alive(sid) {
                self.schedule(
                    Duration::ZERO,
                    Ev::QReset {
                        sid,
                        inc: c.inc[side as usize],
                        role: c.role[side as usize],
                        conn,
                        side,
                    },
                );
            }
        }
    }

    pub(super) fn q_reset_seen(&mut self, sid: i64, inc: u32, role: u64, conn: ConnId, side: u8) {
        if self.peers[self.idx(sid)].inc != inc {
            return;
        }
        if side == 0 {
            self.leader_call(sid, Some(role), |m, now| m.learner_closed(now, conn));
        } else {
            self.learner_call(sid, Some(role), |m, now| m.closed(now));
        }
    }

    pub(super) fn q_timeout(&mut self, conn: ConnId) {
        let Some(c) = self.qconns.get(&conn) else {
            return;
        };
        if !self.reachable(c.leader, c.learner) {
            self.log(|| format!("connection {conn}: TCP timeout behind the partition"));
            self.q_reset(conn);
        }
    }

    /// Every connection with `sid` at one end.
    pub(super) fn q_conns_of(&self, sid: i64) -> Vec<ConnId> {
        self.qconns
            .iter()
            .filter(|(_, c)| c.leader == sid || c.learner == sid)
            .map(|(id, _)| *id)
            .collect()
    }

    /// A crash resets every connection of the process.
    pub(super) fn q_crash(&mut self, sid: i64) {
        for conn in self.q_conns_of(sid) {
            if let Some(c) = self.qconns.get_mut(&conn) {
                // The crashed end learns nothing.
                let side = usize::from(c.learner == sid);
                c.open[side] = false;
            }
            self.q_reset(conn);
        }
    }

    /// A partition started: connections across it are reset at once, or
    /// (black hole) hold their packets and die after a TCP timeout.
    pub(super) fn q_cut(&mut self) {
        let cut: Vec<ConnId> = self
            .qconns
            .iter()
            .filter(|(_, c)| !self.reachable(c.leader, c.learner))
            .map(|(id, _)| *id)
            .collect();
        for conn in cut {
            if self.p.blackhole {
                let t = ms(self
                    .rng
                    .range(200, self.p.tcp_timeout_hi.as_millis() as u64));
                self.schedule(t, Ev::QTimeout { conn });
            } else {
                self.q_reset(conn);
            }
        }
    }

    /// A partition healed: held packets go out in order, after everything
    /// still in flight (which joins the held queue when it arrives first).
    pub(super) fn q_release(&mut self) {
        let ids: Vec<ConnId> = self.qconns.keys().copied().collect();
        for conn in ids {
            for dir in 0..2u8 {
                let Some(c) = self.qconns.get(&conn) else {
                    continue;
                };
                if c.held[dir as usize].is_empty() || self.blocked(c.from(dir), c.to(dir)) {
                    continue;
                }
                let delay = self.packet_delay();
                let now = self.now;
                let Some(c) = self.qconns.get_mut(&conn) else {
                    continue;
                };
                let at = (now + delay).max(c.last_at[dir as usize]);
                c.last_at[dir as usize] = at;
                self.schedule_at(at, Ev::QRelease { conn, dir });
            }
        }
    }

    pub(super) fn q_release_now(&mut self, conn: ConnId, dir: u8) {
        let Some(c) = self.qconns.get(&conn) else {
            return;
        };
        if self.blocked(c.from(dir), c.to(dir)) {
            return;
        }
        loop {
            let Some(msg) = self
                .qconns
                .get_mut(&conn)
                .and_then(|c| c.held[dir as usize].pop_front())
            else {
                return;
            };
            self.q_receive(conn, dir, msg);
        }
    }
}
