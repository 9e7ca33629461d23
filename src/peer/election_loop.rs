//! The election thread: a thin executor of the sans-IO [`Driver`]. Every
//! fact (a notification, a link up or closed, a failed dial, the timer, a
//! command from the main loop) goes to the driver as an [`Input`], and what
//! the driver returns (sends, dials, the next timer, a decision) is carried
//! out.
//!
//! Two things here are about cost, not behaviour:
//!
//! * The thread sleeps with `park_timeout` and is unparked by the QCM
//!   ([`Qcm::set_input_waker`]) and by the main loop ([`CmdSender`]),
//!   instead of waiting in a crossbeam `select!`, which spins and calls
//!   `sched_yield` several times on every wait.
//! * Inputs that are already queued are handed to the driver as one batch
//!   (up to [`BATCH`]) and the sends of the whole batch are executed
//!   together, after dropping every message that a later, different message
//!   to the same peer supersedes ([`coalesce`]). Every message the election
//!   sends a peer is this server's current vote (or proposal), so only the
//!   newest matters; ZooKeeper's one-slot send queue drops the older ones
//!   the same way. In a 51-peer failover each survivor adopts a better
//!   proposal about ln 50 ≈ 4 times as the votes arrive in random order,
//!   and broadcasts each to 49 peers; a batch sends only the last.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendError, Sender, TryRecvError};

use crate::cnx::{DialFailure, PeerEvent, Qcm, Received};
use crate::election::{self, Decision, DialError, Driver, Input, Message, Output};

/// Most inputs handed to the driver before their sends are executed: a
/// bound on how long a send waits behind other inputs (each step takes
/// well under a microsecond).
const BATCH: usize = 64;

/// Commands from the main loop to the election thread; each is one
/// [`Input`] for the driver.
pub(super) enum ElectionCmd {
    /// Enter LOOKING and start a new round.
    Start { last_zxid: i64, current_epoch: i64 },
    /// The role ended, and why.
    RoleEnded(election::RoleEnd),
    /// Zab established this epoch: replies to LOOKING peers carry it.
    EstablishedEpoch(i64),
}

/// The main loop's end of the command queue: every send (and the drop)
/// unparks the election thread, which waits by parking
/// ([`ElectionLoop::run`]).
pub(super) struct CmdSender {
    tx: Option<Sender<ElectionCmd>>,
    election: std::thread::Thread,
}

impl CmdSender {
    /// A sender that wakes `election` after every command.
    pub(super) fn new(tx: Sender<ElectionCmd>, election: std::thread::Thread) -> CmdSender {
        CmdSender {
            tx: Some(tx),
            election,
        }
    }

    /// Queues `cmd` and wakes the election thread.
    pub(super) fn send(&self, cmd: ElectionCmd) -> Result<(), SendError<ElectionCmd>> {
        let r = match &self.tx {
            Some(tx) => tx.send(cmd),
            None => Err(SendError(cmd)),
        };
        self.election.unpark();
        r
    }
}

impl Drop for CmdSender {
    fn drop(&mut self) {
        // Disconnect first, then wake: the election thread must see the
        // queue closed when it looks.
        self.tx.take();
        self.election.unpark();
    }
}

/// The election thread's state: the driver and the queues its facts come
/// from. It keeps no state of its own about links or peers; the driver
/// derives all of it from the facts, so the two cannot disagree.
pub(super) struct ElectionLoop {
    pub(super) driver: Driver,
    pub(super) qcm: Qcm,
    pub(super) recv: Receiver<Received>,
    pub(super) events: Receiver<PeerEvent>,
    pub(super) cmds: Receiver<ElectionCmd>,
    pub(super) decisions: Sender<Decision>,
    pub(super) base: Instant,
    /// Absolute (since `base`) time of the driver's next timer.
    pub(super) timer: Option<Duration>,
}

/// What the queues hold next.
enum Next {
    Input(Input),
    Empty,
    /// A queue's other end is gone: shutting down.
    Closed,
}

impl ElectionLoop {
    pub(super) fn run(mut self) {
        self.qcm.set_input_waker(std::thread::current());
        // Kept across batches so that a stream of notifications allocates
        // nothing per batch.
        let mut batch = Output::default();
        let mut run = Vec::new();
        loop {
            // One clock read per batch: the inputs of a batch were all
            // queued by now, and a batch takes microseconds, far below any
            // of the driver's timeouts. A read per input was 3 % of the
            // election thread's time at window 64.
            let now = self.base.elapsed();
            let mut taken = 0;
            let mut closed = false;
            if self.timer.is_some_and(|t| t <= now) {
                self.timer = None;
                self.step(now, Input::Timer, &mut batch);
                taken += 1;
            }
            while taken < BATCH && batch.decision.is_none() {
                // The first look of each batch takes the slow path, which
                // notices a closed command queue even under a stream of
                // notifications.
                let next = if taken == 0 {
                    self.next_input_slow()
                } else {
                    self.next_input()
                };
                match next {
                    Next::Input(input) => {
                        self.step(now, input, &mut batch);
                        taken += 1;
                    }
                    Next::Empty => break,
                    Next::Closed => {
                        closed = true;
                        break;
                    }
                }
            }
            if taken > 0 {
                self.execute(&mut batch, &mut run);
            }
            if closed {
                return;
            }
            if taken == 0 {
                let wait = self
                    .timer
                    .map(|t| t.saturating_sub(self.base.elapsed()))
                    .unwrap_or(Duration::from_secs(3600));
                std::thread::park_timeout(wait);
            }
        }
    }

    /// The next queued input: link facts and commands before
    /// notifications.
    fn next_input(&self) -> Next {
        // `is_empty` reads two indices; a `try_recv` on an empty queue
        // costs several times that, and at window 64 these two queues are
        // looked at once per notification.
        if self.events.is_empty() && self.cmds.is_empty() {
            return match self.recv.try_recv() {
                Ok(r) => Next::Input(Input::Notification {
                    from: r.sid,
                    notification: r.notification,
                }),
                // A closed queue shows in the slow path.
                Err(_) => self.next_input_slow(),
            };
        }
        self.next_input_slow()
    }

    /// [`Self::next_input`] when something other than a notification may
    /// be queued, or a queue may be closed.
    fn next_input_slow(&self) -> Next {
        match self.events.try_recv() {
            Ok(e) => return Next::Input(link_fact(e)),
            Err(TryRecvError::Disconnected) => return Next::Closed,
            Err(TryRecvError::Empty) => {}
        }
        match self.cmds.try_recv() {
            Ok(ElectionCmd::Start {
                last_zxid,
                current_epoch,
            }) => {
                return Next::Input(Input::StartElection {
                    last_zxid,
                    current_epoch,
                })
            }
            Ok(ElectionCmd::RoleEnded(reason)) => return Next::Input(Input::RoleEnded { reason }),
            Ok(ElectionCmd::EstablishedEpoch(epoch)) => {
                return Next::Input(Input::EpochEstablished { epoch })
            }
            // The main loop is gone: shutting down.
            Err(TryRecvError::Disconnected) => return Next::Closed,
            Err(TryRecvError::Empty) => {}
        }
        match self.recv.try_recv() {
            Ok(r) => Next::Input(Input::Notification {
                from: r.sid,
                notification: r.notification,
            }),
            Err(TryRecvError::Disconnected) => Next::Closed,
            Err(TryRecvError::Empty) => Next::Empty,
        }
    }

    /// One driver step; its output joins the batch.
    fn step(&mut self, now: Duration, input: Input, batch: &mut Output) {
        let out = self.driver.step(now, input);
        batch.sends.extend(out.sends);
        batch.dial.extend(out.dial);
        // Every step returns the driver's only deadline: the last one holds.
        batch.timer = out.timer;
        if batch.decision.is_none() {
            batch.decision = out.decision;
        }
    }

    /// Carries out a batch's output and leaves `out` empty (its buffers
    /// are reused by the next batch); `run` is scratch space.
    fn execute(&mut self, out: &mut Output, run: &mut Vec<crate::wire::Notification>) {
        coalesce(&mut out.sends);
        // Consecutive unconditional sends to one peer (the replies to a
        // burst of notifications from it) are queued as one run: one wake
        // of its SendWorker, one write.
        let mut i = 0;
        while i < out.sends.len() {
            let m = &out.sends[i];
            if m.if_idle {
                self.qcm.send_if_idle(m.to, &m.notification);
                i += 1;
                continue;
            }
            run.clear();
            let to = m.to;
            while let Some(m) = out.sends.get(i).filter(|m| m.to == to && !m.if_idle) {
                run.push(m.notification);
                i += 1;
            }
            self.qcm.send_many(to, run);
        }
        out.sends.clear();
        out.dial.sort_unstable();
        out.dial.dedup();
        for &sid in &out.dial {
            self.qcm.connect_one(sid);
        }
        out.dial.clear();
        // The driver's deadline replaces any earlier one; None = no timer.
        self.timer = out.timer.take();
        if let Some(d) = out.decision.take() {
            // The main loop may be gone (shutdown); nothing to tell then.
            let _ = self.decisions.send(d);
        }
    }
}

/// Drops every message followed, for the same peer, by a message with a
/// different notification: per peer only the trailing run of messages
/// equal to its last one is kept, in order. Identical messages are all
/// kept: each answers its own question (a window of notifications from
/// `zkfle bench notify` gets one reply each), and the newest vote stays the
/// last one sent.
fn coalesce(sends: &mut Vec<Message>) {
    if sends.len() < 2 {
        return;
    }
    // The last notification per destination.
    let mut last: Vec<(i64, crate::wire::Notification)> = Vec::new();
    for m in sends.iter().rev() {
        if !last.iter().any(|(to, _)| *to == m.to) {
            last.push((m.to, m.notification));
        }
    }
    // Walking backwards, a message survives while its destination's run of
    // equal notifications has not been broken yet.
    let mut broken: Vec<i64> = Vec::new();
    let mut keep = vec![false; sends.len()];
    for (i, m) in sends.iter().enumerate().rev() {
        if broken.contains(&m.to) {
            continue;
        }
        let newest = last.iter().find(|(to, _)| *to == m.to).map(|(_, n)| *n);
        if newest == Some(m.notification) {
            keep[i] = true;
        } else {
            broken.push(m.to);
        }
    }
    // A dropped message that was to be sent unconditionally makes the
    // message that replaces it unconditional too: it would have been
    // queued, so the newer vote must be.
    let forced: Vec<i64> = sends
        .iter()
        .zip(&keep)
        .filter(|(m, k)| !**k && !m.if_idle)
        .map(|(m, _)| m.to)
        .collect();
    let mut i = 0;
    sends.retain_mut(|m| {
        let k = keep[i];
        i += 1;
        if k && forced.contains(&m.to) {
            m.if_idle = false;
        }
        k
    });
}

/// The driver's view of a connection-layer event (the two layers keep
/// their own types: `cnx` imports nothing from `election`).
fn link_fact(e: PeerEvent) -> Input {
    match e {
        PeerEvent::LinkUp(sid) => Input::LinkUp { sid },
        PeerEvent::LinkClosed(sid) => Input::LinkClosed { sid },
        PeerEvent::DialFailed { sid, failure } => Input::DialFailed {
            sid,
            error: match failure {
                DialFailure::Refused => DialError::Refused,
                DialFailure::TimedOut => DialError::TimedOut,
                DialFailure::Other => DialError::Other,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Notification, ServerState};

    fn vote(leader: i64) -> Notification {
        Notification {
            state: ServerState::Looking,
            leader,
            zxid: 0,
            election_epoch: 1,
            peer_epoch: 0,
            version: 0,
        }
    }

    fn msg(to: i64, leader: i64) -> Message {
        Message::new(to, vote(leader))
    }

    fn shape(sends: &[Message]) -> Vec<(i64, i64)> {
        sends
            .iter()
            .map(|m| (m.to, m.notification.leader))
            .collect()
    }

    #[test]
    fn only_the_newest_vote_per_peer_survives_and_identical_replies_all_do() {
        // Two broadcasts to 2 and 3 (proposal 5, then 7), replies to 9.
        let mut s = vec![
            msg(2, 5),
            msg(3, 5),
            msg(9, 5),
            msg(9, 5),
            msg(2, 7),
            msg(3, 7),
            msg(9, 7),
            msg(9, 7),
            msg(4, 5),
        ];
        coalesce(&mut s);
        assert_eq!(
            shape(&s),
            vec![(2, 7), (3, 7), (9, 7), (9, 7), (4, 5)],
            "superseded votes dropped, order kept"
        );
        // A run broken by a different vote keeps only what follows it.
        let mut s = vec![msg(2, 7), msg(2, 5), msg(2, 7), msg(2, 7)];
        coalesce(&mut s);
        assert_eq!(shape(&s), vec![(2, 7), (2, 7)]);
        // Nothing to drop.
        let mut s = vec![msg(2, 7), msg(3, 7), msg(2, 7)];
        coalesce(&mut s);
        assert_eq!(shape(&s), vec![(2, 7), (3, 7), (2, 7)]);
    }

    #[test]
    fn a_resend_that_replaces_a_send_is_sent_unconditionally() {
        let mut resend = msg(2, 7);
        resend.if_idle = true;
        let mut s = vec![msg(2, 5), resend];
        coalesce(&mut s);
        assert_eq!(s, vec![msg(2, 7)], "5 would have been queued: 7 must be");
        let mut old_resend = msg(2, 5);
        old_resend.if_idle = true;
        let mut s = vec![old_resend, resend];
        coalesce(&mut s);
        assert_eq!(s, vec![resend], "replacing a resend keeps the condition");
    }
}
