//! The election network between the peers' drivers, as `cnx` runs it:
//! per-connection FIFO order (TCP), delays and reordering across
//! connections, loss only as a whole connection failing (in-flight
//! messages lost, link closed, redial), QCM's resend-last-message on
//! reconnect as the only duplication, QCM's send queue (drop-oldest while
//! not connected) and dial loop (retry with backoff while something is
//! queued), the tie-break on simultaneous dials, and partitions that reset
//! connections or black-hole them until a TCP timeout. It hands each
//! driver the facts `cnx` hands the runtime's: link up, link closed, dial
//! refused or timed out, notifications.

use std::collections::VecDeque;
use std::time::Duration;

use crate::election::{DialError, Input};
use crate::wire::Notification;

use super::schedule::{ms, us, Ev};
use super::script::{Envelope, Fate};
use super::world::{InjectedBug, World};

/// `Deliver`'s generation for a notification a script injects from a peer
/// that is not simulated (no link carries it).
pub(super) const INJECTED: u64 = u64::MAX;

/// One direction of a peer pair.
#[derive(Debug, Clone, Default)]
pub(super) struct Dir {
    /// QCM's per-peer send queue: filled while the link is not Up.
    queue: VecDeque<Notification>,
    /// The last notification written on any connection (resent first on a
    /// new connection when the queue is empty, as QCM does).
    last_sent: Option<Notification>,
    /// Delivery time of the last message in flight (FIFO per connection).
    last_at: Duration,
    /// Messages stuck behind a one-way/black-holed partition (TCP keeps
    /// retransmitting; delivered in order if it heals in time).
    held: VecDeque<Notification>,
    /// QCM's dial-loop backoff while something is queued and the peer
    /// cannot be reached (100 ms doubling to 1 s, reset by a link).
    backoff: Duration,
    /// The incarnation of the sender whose dial loop is waiting out its
    /// backoff: until the retry, sends and dial requests start no dial
    /// (QCM's `connect` finds the loop running).
    retry: Option<u32>,
}

/// The election link between two peers.
#[derive(Debug, Clone, Default)]
pub(super) struct Link {
    pub up: bool,
    /// Bumped whenever a connection starts or dies; in-flight messages of
    /// an older generation are lost.
    pub gen: u64,
    dialing: Option<(i64, u64)>,
    /// A side that wanted to dial while the other side's dial was running:
    /// its own QCM would be dialling too (simultaneous dials), so it gets
    /// the same failure when that dial fails. [lower, higher].
    want: [bool; 2],
    /// [lower sid → higher sid, higher → lower].
    dirs: [Dir; 2],
}

/// One partition, for the ground truth of `World::was_cut`.
pub(super) struct CutRecord {
    /// The ordered pairs (from, to) it blocked.
    pub pairs: Vec<(i64, i64)>,
    /// When it started.
    pub from: Duration,
    /// When it healed (`None`: not yet).
    pub until: Option<Duration>,
}

impl World {
    pub(super) fn link_idx(&self, a: i64, b: i64) -> usize {
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        self.idx(lo) * self.p.n + self.idx(hi)
    }

    fn dir_of(a: i64, b: i64) -> usize {
        usize::from(a > b)
    }

    /// A partition blocks packets from `from` to `to`.
    pub(super) fn blocked(&self, from: i64, to: i64) -> bool {
        self.blocked[self.idx(from) * self.p.n + self.idx(to)] > 0
    }

    /// No partition between them, either way.
    pub(super) fn reachable(&self, a: i64, b: i64) -> bool {
        !self.blocked(a, b) && !self.blocked(b, a)
    }

    /// One network delay (the slow tail when the schedule has one).
    pub(super) fn sample_delay(&mut self) -> Duration {
        let base = if self.p.slow_per_mille > 0 && self.rng.chance(self.p.slow_per_mille) {
            us(self
                .rng
                .range(self.p.finalize_wait.as_micros() as u64, self.p.slow_hi_us))
        } else {
            us(self.rng.range(self.p.delay_lo_us, self.p.delay_hi_us))
        };
        if self.hooks.jitter.is_zero() {
            base
        } else {
            base + us(self.rng.range(0, self.hooks.jitter.as_micros() as u64))
        }
    }

    /// One delay on a quorum connection: the network's ordinary range,
    /// without the election network's slow tail. A packet held up for
    /// syncLimit ticks is a one-way cut (partitions model those), and would
    /// make a live, reachable leader look hung to the Down rule's ground
    /// truth.
    pub(super) fn packet_delay(&mut self) -> Duration {
        let base = us(self.rng.range(self.p.delay_lo_us, self.p.delay_hi_us));
        if self.hooks.jitter.is_zero() {
            base
        } else {
            base + us(self.rng.range(0, self.hooks.jitter.as_micros() as u64))
        }
    }

    pub(super) fn connect_delay(&mut self) -> Duration {
        us(self.rng.range(self.p.connect_lo_us, self.p.connect_hi_us))
    }

    /// QCM's `send` (and `send_if_idle` when `if_idle`: nothing is sent
    /// while something is queued for `to`). The queue only holds messages
    /// while there is no link: with a link up, the SendWorker drains it at
    /// once.
    pub(super) fn send(&mut self, from: i64, to: i64, n: Notification, if_idle: bool) {
        if !self.valid(to) || to == from {
            return;
        }
        let li = self.link_idx(from, to);
        let di = Self::dir_of(from, to);
        if self.links[li].up {
            self.write(from, to, n);
        } else {
            if if_idle && !self.links[li].dirs[di].queue.is_empty() {
                return;
            }
            let cap = self.p.queue_cap;
            let q = &mut self.links[li].dirs[di].queue;
            q.push_back(n);
            while q.len() > cap {
                q.pop_front();
            }
            // QCM's toSend dials when there is no connection.
            self.dial(from, to);
        }
    }

    fn write(&mut self, from: i64, to: i64, n: Notification) {
        let li = self.link_idx(from, to);
        let di = Self::dir_of(from, to);
        self.links[li].dirs[di].last_sent = Some(n);
        let env = Envelope {
            from,
            to,
            sent_at: self.now,
            notification: n,
        };
        let fate = self.hooks.fate(&env);
        let (n, extra) = match fate {
            Fate::Drop => return,
            Fate::Deliver => (n, Duration::ZERO),
            Fate::Replace(r) => (r, Duration::ZERO),
            Fate::Delay(d) => (n, d),
        };
        let delay = self.sample_delay() + extra;
        let gen = self.links[li].gen;
        let d = &mut self.links[li].dirs[di];
        let at = (self.now + delay).max(d.last_at);
        d.last_at = at;
        if at - self.now > self.p.finalize_wait {
            // A vote slower than the finalize wait: a fault for the
            // same-round agreement check.
            self.truth.touch(from, at);
            self.truth.touch(to, at);
        }
        self.stats.messages += 1;
        self.schedule_at(at, Ev::Deliver { from, to, gen, n });
    }

    /// A script's notification from `from` (simulated or not) to `to`,
    /// delivered after the usual delay without a link.
    #[cfg(any(test, feature = "testkit"))]
    pub(super) fn inject_notification(&mut self, from: i64, to: i64, n: Notification) {
        let delay = self.sample_delay();
        self.schedule(
            delay,
            Ev::Deliver {
                from,
                to,
                gen: INJECTED,
                n,
            },
        );
    }

    pub(super) fn deliver(&mut self, from: i64, to: i64, gen: u64, n: Notification) {
        if !self.alive(to) {
            return;
        }
        if gen != INJECTED {
            let li = self.link_idx(from, to);
            let di = Self::dir_of(from, to);
            if !self.links[li].up || self.links[li].gen != gen {
                return;
            }
            if self.blocked(from, to) || !self.links[li].dirs[di].held.is_empty() {
                self.links[li].dirs[di].held.push_back(n);
                return;
            }
        }
        self.deliver_now(from, to, n);
    }

    fn deliver_now(&mut self, from: i64, to: i64, n: Notification) {
        self.mix(from as u64);
        self.mix(to as u64);
        self.mix(n.state.code() as u64);
        self.mix(n.leader as u64);
        self.mix(n.election_epoch as u64);
        self.log(|| {
            format!(
                "{from} -> {to}: {} leader {} zxid {:#x} round {} peerEpoch {}",
                n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch
            )
        });
        self.feed(
            to,
            Input::Notification {
                from,
                notification: n,
            },
        );
    }

    pub(super) fn dial(&mut self, from: i64, to: i64) {
        if !self.valid(to) || to == from || !self.alive(from) {
            return;
        }
        let li = self.link_idx(from, to);
        // PROTOCOL.md R13: never re-dial a live link; one dial at a time
        // per pair (the tie-break would keep only one connection anyway).
        if self.links[li].up {
            return;
        }
        if self.links[li].dialing.is_some() {
            self.links[li].want[Self::dir_of(from, to)] = true;
            return;
        }
        if self.links[li].dirs[Self::dir_of(from, to)].retry.is_some() {
            // QCM's dial loop is waiting out its backoff and will dial then.
            return;
        }
        self.dial_attempts += 1;
        let attempt = self.dial_attempts;
        self.log(|| format!("sid {from} dials sid {to} (attempt {attempt})"));
        self.links[li].dialing = Some((from, attempt));
        let d = self
            .connect_delay()
            .max(self.hooks.slow_dial(from, to, self.now));
        self.schedule(
            d,
            Ev::DialDone {
                from,
                to,
                attempt,
                leg: 0,
            },
        );
        if self.p.blackhole {
            let t = self.p.connect_timeout;
            self.schedule(t, Ev::DialFail { from, to, attempt });
        }
    }

    pub(super) fn dial_done(&mut self, from: i64, to: i64, attempt: u64, leg: u8) {
        let li = self.link_idx(from, to);
        if self.links[li].dialing != Some((from, attempt)) {
            return;
        }
        if !self.alive(from) {
            self.links[li].dialing = None;
            return;
        }
        let wait = self.hooks.slow_dial(from, to, self.now);
        if !wait.is_zero() {
            // A script holds this pair's dials (a slow handshake): the dial
            // is still in progress, neither up nor failed.
            self.schedule(
                wait,
                Ev::DialDone {
                    from,
                    to,
                    attempt,
                    leg,
                },
            );
            return;
        }
        if self.alive(to) && self.reachable(from, to) {
            if from > to || leg == 1 {
                self.link_up(from, to);
            } else {
                // Tie-break (PROTOCOL.md §2.4): the lower sid's connection
                // is closed and the higher sid dials back.
                let d = self.connect_delay();
                self.schedule(
                    d,
                    Ev::DialDone {
                        from,
                        to,
                        attempt,
                        leg: 1,
                    },
                );
            }
        } else if !self.alive(to) || !self.p.blackhole {
            // Refused: a dead process, or a partition that rejects (a
            // firewall's REJECT answers with "port unreachable").
            self.dial_failed(from, to, DialError::Refused);
        }
        // Black-holed: DialFail fires at the connect timeout.
    }

    /// The connect timeout of a black-holed dial. TCP kept retransmitting
    /// the SYN: if the partition healed meanwhile, the last retransmission
    /// got through (and a dead process's host refused it). So a time-out
    /// is reported only while the pair is still cut.
    pub(super) fn dial_timeout(&mut self, from: i64, to: i64, attempt: u64) {
        let li = self.link_idx(from, to);
        if self.links[li].dialing != Some((from, attempt)) {
            return;
        }
        if !self.reachable(from, to) {
            self.dial_failed(from, to, DialError::TimedOut);
        } else if !self.alive(to) {
            self.dial_failed(from, to, DialError::Refused);
        } else {
            self.link_up(from, to);
        }
    }

    /// The running dial between `from` and `to` failed: the dialer's QCM
    /// reports it, and so does the other side's if it wanted to dial too
    /// (its own dial would have met the same dead process or partition).
    /// A side with something still queued retries after its backoff, as
    /// QCM's dial loop does.
    pub(super) fn dial_failed(&mut self, from: i64, to: i64, error: DialError) {
        self.log(|| format!("dial {from}->{to} failed: {error:?}"));
        let li = self.link_idx(from, to);
        let want = self.links[li].want;
        self.links[li].dialing = None;
        self.links[li].want = [false; 2];
        for (x, y, told) in [(from, to, true), (to, from, want[Self::dir_of(to, from)])] {
            if !told || !self.alive(x) {
                continue;
            }
            self.feed(x, Input::DialFailed { sid: y, error });
            self.schedule_redial(x, y);
        }
    }

    /// QCM's dial loop: while something is queued for an unreachable peer,
    /// try again after a backoff (100 ms doubling to 1 s).
    pub(super) fn schedule_redial(&mut self, x: i64, y: i64) {
        let li = self.link_idx(x, y);
        let di = Self::dir_of(x, y);
        let up = self.links[li].up;
        let inc = self.peers[self.idx(x)].inc;
        let d = &mut self.links[li].dirs[di];
        if d.queue.is_empty() || d.retry.is_some() || up {
            return;
        }
        let wait = d.backoff.max(ms(100));
        d.backoff = (wait * 2).min(ms(1000));
        d.retry = Some(inc);
        self.schedule(
            wait,
            Ev::Redial {
                from: x,
                to: y,
                inc,
            },
        );
    }

    pub(super) fn redial(&mut self, from: i64, to: i64, inc: u32) {
        let li = self.link_idx(from, to);
        let di = Self::dir_of(from, to);
        if self.links[li].dirs[di].retry == Some(inc) {
            self.links[li].dirs[di].retry = None;
            if !self.links[li].up && !self.links[li].dirs[di].queue.is_empty() {
                self.dial(from, to);
            }
        }
    }

    pub(super) fn link_timeout(&mut self, a: i64, b: i64, gen: u64) {
        let li = self.link_idx(a, b);
        if self.links[li].up && self.links[li].gen == gen && !self.reachable(a, b) {
            self.log(|| format!("link {a}-{b}: TCP timeout behind the partition"));
            self.fail_link(a, b);
        }
    }

    pub(super) fn link_up(&mut self, a: i64, b: i64) {
        let li = self.link_idx(a, b);
        {
            let l = &mut self.links[li];
            l.up = true;
            l.gen += 1;
            l.dialing = None;
            l.want = [false; 2];
            for d in &mut l.dirs {
                d.held.clear();
                d.backoff = Duration::ZERO;
                d.retry = None;
            }
        }
        self.log(|| format!("link {a}-{b}: up"));
        for (x, y) in [(a, b), (b, a)] {
            if !self.alive(x) {
                continue;
            }
            let di = Self::dir_of(x, y);
            let queued: Vec<Notification> = self.links[li].dirs[di].queue.drain(..).collect();
            if queued.is_empty() {
                // QCM resends the last message on a new connection.
                if let Some(last) = self.links[li].dirs[di].last_sent {
                    self.write(x, y, last);
                }
            } else {
                for n in queued {
                    self.write(x, y, n);
                }
            }
        }
        for (x, y) in [(a, b), (b, a)] {
            if self.alive(x) {
                self.feed(x, Input::LinkUp { sid: y });
                if self.bug == Some(InjectedBug::EagerDown) {
                    // The lie: the link "closed" and a redial was refused,
                    // while the connection stays up and keeps carrying
                    // votes.
                    self.feed(x, Input::LinkClosed { sid: y });
                    self.feed(
                        x,
                        Input::DialFailed {
                            sid: y,
                            error: DialError::Refused,
                        },
                    );
                }
            }
        }
    }

    /// Brings the link up at once if both processes are running (scripted
    /// starts: the old test kit's instant links).
    pub(super) fn connect_now(&mut self, a: i64, b: i64) {
        let li = self.link_idx(a, b);
        if a != b && !self.links[li].up && self.alive(a) && self.alive(b) {
            self.links[li].dialing = None;
            self.link_up(a, b);
        }
    }

    pub(super) fn fail_link(&mut self, a: i64, b: i64) {
        let li = self.link_idx(a, b);
        if !self.links[li].up {
            return;
        }
        {
            let l = &mut self.links[li];
            l.up = false;
            l.gen += 1;
            for d in &mut l.dirs {
                d.held.clear();
            }
        }
        self.mix(0x11_4b ^ (a as u64) << 8 ^ b as u64);
        self.log(|| format!("link {a}-{b}: down (in-flight messages lost)"));
        for (x, y) in [(a, b), (b, a)] {
            if self.alive(x) {
                self.feed(x, Input::LinkClosed { sid: y });
            }
        }
    }

    /// A crashed process's QCM state (queues, last message, dial loop) dies
    /// with it, and so do its connections.
    pub(super) fn crash_links(&mut self, sid: i64) {
        let n = self.p.n as i64;
        for x in 1..=n {
            if x == sid {
                continue;
            }
            let li = self.link_idx(sid, x);
            let di = Self::dir_of(sid, x);
            self.links[li].dirs[di].queue.clear();
            self.links[li].dirs[di].last_sent = None;
            self.links[li].dirs[di].backoff = Duration::ZERO;
            self.links[li].dirs[di].retry = None;
            self.links[li].want[di] = false;
            if self.links[li].dialing.is_some_and(|(d, _)| d == sid) {
                self.links[li].dialing = None;
                if self.links[li].want[Self::dir_of(x, sid)] {
                    // The survivor's own dial would now run into a dead
                    // process: refused.
                    self.links[li].want = [false; 2];
                    self.feed(
                        x,
                        Input::DialFailed {
                            sid,
                            error: DialError::Refused,
                        },
                    );
                    self.schedule_redial(x, sid);
                }
            }
            self.fail_link(sid, x);
        }
    }

    /// A new partition cut these pairs: election links either die at once
    /// (reset) or after a TCP timeout (black hole).
    pub(super) fn cut_links(&mut self, cuts: &[(i64, i64)]) {
        for &(a, b) in cuts {
            let li = self.link_idx(a, b);
            if self.links[li].up {
                if self.p.blackhole {
                    let gen = self.links[li].gen;
                    let t = ms(self
                        .rng
                        .range(200, self.p.tcp_timeout_hi.as_millis() as u64));
                    self.schedule(t, Ev::LinkTimeout { a, b, gen });
                } else {
                    self.fail_link(a, b);
                }
            }
        }
    }

    /// A partition healed: TCP retransmits what was stuck, in order and
    /// after everything still in flight (which joins the held queue when it
    /// arrives first).
    pub(super) fn release_links(&mut self, cuts: &[(i64, i64)]) {
        for &(a, b) in cuts {
            if self.blocked(a, b) {
                continue;
            }
            let li = self.link_idx(a, b);
            let di = Self::dir_of(a, b);
            if !self.links[li].up || self.links[li].dirs[di].held.is_empty() {
                continue;
            }
            let gen = self.links[li].gen;
            let delay = self.sample_delay();
            let at = (self.now + delay).max(self.links[li].dirs[di].last_at);
            self.links[li].dirs[di].last_at = at;
            self.schedule_at(
                at,
                Ev::Release {
                    from: a,
                    to: b,
                    gen,
                },
            );
        }
    }

    pub(super) fn release(&mut self, from: i64, to: i64, gen: u64) {
        let li = self.link_idx(from, to);
        let di = Self::dir_of(from, to);
        if !self.links[li].up || self.links[li].gen != gen || self.blocked(from, to) {
            return;
        }
        let held: Vec<Notification> = self.links[li].dirs[di].held.drain(..).collect();
        for n in held {
            if !self.links[li].up || self.links[li].gen != gen {
                return;
            }
            self.deliver_now(from, to, n);
        }
    }

    /// The live election links, as (lower, higher) pairs.
    pub(super) fn up_links(&self) -> Vec<(i64, i64)> {
        let n = self.p.n as i64;
        (1..=n)
            .flat_map(|a| (a + 1..=n).map(move |b| (a, b)))
            .filter(|&(a, b)| self.links[self.link_idx(a, b)].up)
            .collect()
    }
}
