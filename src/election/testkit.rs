//! An in-memory, virtual-time harness that drives several [`Fle`]s: it
//! delivers every [`Output::sends`] after a latency, fires timers, and models
//! process crashes as links going [`LinkState::Down`]. Deterministic: events
//! run in (time, sequence) order and the only randomness is a caller-seeded
//! [`SplitMix64`]. For tests and simulations; not part of the stable API.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::QuorumVerifier;
use crate::wire::{Notification, ServerState};

use super::fle::{Decision, Fle, FleConfig, LinkState, Output};

/// A small, seedable PRNG (splitmix64): enough for reproducible schedules.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; 0 gives 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

/// One message in flight or delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    /// Sender sid.
    pub from: i64,
    /// Receiver sid.
    pub to: i64,
    /// When it was sent.
    pub sent_at: Duration,
    /// The notification.
    pub notification: Notification,
}

/// What a filter does with a message about to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Deliver after the usual latency.
    Deliver,
    /// Lose it.
    Drop,
    /// Deliver this instead.
    Replace(Notification),
    /// Deliver after this extra delay.
    Delay(Duration),
}

/// A message filter: sees each send once.
pub type Filter = Box<dyn FnMut(&Envelope) -> Fate>;

/// What one [`Cluster::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A message reached a live node.
    Delivered(Envelope),
    /// A node's timer fired.
    Timer { sid: i64 },
    /// A scheduled link report was given to `sid`.
    Link {
        sid: i64,
        peer: i64,
        state: LinkState,
    },
    /// The Zab model checked `sid`'s role; `keeps` false means it looks
    /// again.
    RoleCheck { sid: i64, keeps: bool },
}

/// One simulated server.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its election machine.
    pub fle: Fle,
    /// Running (reachable) or not.
    pub up: bool,
    /// Last logged zxid passed to `start_election`.
    pub last_zxid: i64,
    /// currentEpoch passed to `start_election`.
    pub current_epoch: i64,
    /// Every decision, with its virtual time.
    pub decisions: Vec<(Duration, Decision)>,
    timer: Option<Duration>,
    /// When the crude Zab model checks this node's role.
    role_check: Option<Duration>,
}

/// N [`Fle`]s on a virtual network.
pub struct Cluster {
    /// Virtual time now.
    pub now: Duration,
    /// The servers by sid.
    pub nodes: BTreeMap<i64, Node>,
    /// Base one-way latency.
    pub latency: Duration,
    /// Extra random latency in `0..jitter` (needs [`Cluster::rng`]).
    pub jitter: Duration,
    /// Randomness for jitter (and for callers' own choices).
    pub rng: SplitMix64,
    /// A crude stand-in for Zab's initLimit: this long after deciding, a
    /// leader without a quorum of voters FOLLOWING it gives up and looks
    /// again, and a follower whose leader is not LEADING looks again. `None`
    /// (the default) leaves roles alone, as FLE alone does.
    pub zab_timeout: Option<Duration>,
    /// Every message sent, in order (drops and sends to down nodes
    /// included).
    pub sent: Vec<Envelope>,
    /// Dial requests seen, as (time, from, to).
    pub dials: Vec<(Duration, i64, i64)>,
    filter: Option<Filter>,
    in_flight: BTreeMap<(Duration, u64), Envelope>,
    /// Per directed link, the latest scheduled delivery (TCP keeps order).
    link_tail: BTreeMap<(i64, i64), Duration>,
    /// Scheduled link-state reports: (time, seq) → (sid, peer, state).
    link_events: BTreeMap<(Duration, u64), (i64, i64, LinkState)>,
    /// Last notification each node sent to each peer.
    last_sent: BTreeMap<(i64, i64), Notification>,
    seq: u64,
}

impl Cluster {
    /// A cluster of the given machines, all down and not started.
    pub fn new(configs: Vec<FleConfig>) -> Self {
        let nodes = configs
            .into_iter()
            .map(|c| {
                (
                    c.my_sid,
                    Node {
                        fle: Fle::new(c),
                        up: false,
                        last_zxid: 0,
                        current_epoch: 0,
                        decisions: Vec::new(),
                        timer: None,
                        role_check: None,
                    },
                )
            })
            .collect();
        Cluster {
            now: Duration::ZERO,
            nodes,
            latency: Duration::from_millis(1),
            jitter: Duration::ZERO,
            rng: SplitMix64::new(0),
            zab_timeout: None,
            sent: Vec::new(),
            dials: Vec::new(),
            filter: None,
            in_flight: BTreeMap::new(),
            link_tail: BTreeMap::new(),
            link_events: BTreeMap::new(),
            last_sent: BTreeMap::new(),
            seq: 0,
        }
    }

    /// Sids `1..=n`, majority quorum, ZooKeeper timers.
    pub fn majority(n: i64, fast_decide: bool) -> Self {
        let q = QuorumVerifier::majority(1..=n);
        Cluster::new(
            (1..=n)
                .map(|s| {
                    let mut c = FleConfig::new(s, q.clone());
                    c.fast_decide = fast_decide;
                    c
                })
                .collect(),
        )
    }

    /// Sets the zxid and epoch a node will start its next election with.
    pub fn set_data(&mut self, sid: i64, last_zxid: i64, current_epoch: i64) {
        if let Some(n) = self.nodes.get_mut(&sid) {
            n.last_zxid = last_zxid;
            n.current_epoch = current_epoch;
        }
    }

    /// Installs a filter that sees every message as it is sent.
    pub fn set_filter(&mut self, f: impl FnMut(&Envelope) -> Fate + 'static) {
        self.filter = Some(Box::new(f));
    }

    /// Removes the filter.
    pub fn clear_filter(&mut self) {
        self.filter = None;
    }

    /// The machine of `sid`. Panics on an unknown sid (test code).
    pub fn fle(&self, sid: i64) -> &Fle {
        &self.nodes[&sid].fle
    }

    /// The latest decision of `sid`, if it is not LOOKING.
    pub fn decision(&self, sid: i64) -> Option<Decision> {
        let n = &self.nodes[&sid];
        if n.fle.state() == ServerState::Looking {
            None
        } else {
            n.decisions.last().map(|(_, d)| *d)
        }
    }

    /// Brings `sid` up (links Up both ways with every live node) if it is
    /// down, and starts an election on it.
    pub fn start(&mut self, sid: i64) {
        if !self.nodes[&sid].up {
            self.bring_up(sid);
        }
        let now = self.now;
        let (z, e) = {
            let n = &self.nodes[&sid];
            (n.last_zxid, n.current_epoch)
        };
        let out = self.node_mut(sid).fle.start_election(now, z, e);
        self.apply(sid, out);
    }

    /// Brings every node up, then starts them in sid order at the current
    /// time (so that no first broadcast is lost to a node not yet up).
    pub fn start_all(&mut self) {
        let sids: Vec<i64> = self.nodes.keys().copied().collect();
        for &s in &sids {
            if !self.nodes[&s].up {
                self.bring_up(s);
            }
        }
        for s in sids {
            self.start(s);
        }
    }

    /// At time `at`, `sid`'s machine learns that its link to `peer` is in
    /// `state` (via [`Fle::on_link`]). When the link comes Up, the last
    /// notification `sid` sent to `peer` is sent again, as QCM does on a new
    /// connection (PROTOCOL.md §3.6).
    pub fn schedule_link(&mut self, at: Duration, sid: i64, peer: i64, state: LinkState) {
        self.seq += 1;
        self.link_events.insert((at, self.seq), (sid, peer, state));
    }

    /// Role ended on `sid` (e.g. its leader died): LOOKING again, new round.
    pub fn reelect(&mut self, sid: i64) {
        let now = self.now;
        let (z, e) = {
            let n = &self.nodes[&sid];
            (n.last_zxid, n.current_epoch)
        };
        let node = self.node_mut(sid);
        node.fle.leave_role();
        let out = node.fle.start_election(now, z, e);
        self.apply(sid, out);
    }

    /// Tells every node that Zab established `epoch`
    /// ([`Fle::set_established_epoch`]) and stores it as their currentEpoch.
    pub fn establish_epoch(&mut self, epoch: i64) {
        for n in self.nodes.values_mut() {
            if n.up && n.fle.state() != ServerState::Looking {
                n.fle.set_established_epoch(epoch);
                n.current_epoch = epoch;
            }
        }
    }

    /// Kills `sid`: messages to it are lost from now on, its timers stop,
    /// and every live node sees its link go Down (connection refused).
    pub fn crash(&mut self, sid: i64) {
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(&sid) {
            n.up = false;
            n.timer = None;
        }
        self.in_flight.retain(|_, e| e.to != sid);
        let others: Vec<i64> = self
            .nodes
            .iter()
            .filter(|(s, n)| **s != sid && n.up)
            .map(|(s, _)| *s)
            .collect();
        for o in others {
            let out = self.node_mut(o).fle.on_link(now, sid, LinkState::Down);
            self.apply(o, out);
        }
    }

    /// Replaces `sid`'s machine with a fresh one (a restarted process:
    /// logical clock 0) and starts an election on it.
    pub fn restart(&mut self, sid: i64) {
        let cfg = self.nodes[&sid].fle.config().clone();
        let node = self.node_mut(sid);
        node.fle = Fle::new(cfg);
        node.up = false;
        self.start(sid);
    }

    /// Delivers `n` to `to` as if sent by `from` (a scripted peer), after
    /// the latency. `from` need not be a node of the cluster.
    pub fn inject(&mut self, from: i64, to: i64, n: Notification) {
        let env = Envelope {
            from,
            to,
            sent_at: self.now,
            notification: n,
        };
        self.schedule(env, Duration::ZERO);
    }

    fn node_mut(&mut self, sid: i64) -> &mut Node {
        self.nodes.get_mut(&sid).expect("testkit: unknown sid")
    }

    fn bring_up(&mut self, sid: i64) {
        let now = self.now;
        let live: Vec<i64> = self
            .nodes
            .iter()
            .filter(|(s, _)| **s != sid)
            .map(|(s, n)| (*s, n.up))
            .filter(|(_, up)| *up)
            .map(|(s, _)| s)
            .collect();
        let all: Vec<i64> = self.nodes.keys().copied().filter(|s| *s != sid).collect();
        {
            let node = self.node_mut(sid);
            node.up = true;
            for &o in &all {
                let st = if live.contains(&o) {
                    LinkState::Up
                } else {
                    LinkState::Down
                };
                node.fle.set_link(o, st);
            }
        }
        for o in live {
            let out = self.node_mut(o).fle.on_link(now, sid, LinkState::Up);
            self.apply(o, out);
        }
    }

    fn schedule(&mut self, env: Envelope, extra: Duration) {
        let mut at = self.now + self.latency + extra;
        if !self.jitter.is_zero() {
            let j = self.rng.below(self.jitter.as_micros() as u64);
            at += Duration::from_micros(j);
        }
        let tail = self.link_tail.entry((env.from, env.to)).or_default();
        if at < *tail {
            at = *tail;
        }
        *tail = at;
        self.seq += 1;
        self.in_flight.insert((at, self.seq), env);
    }

    /// Executes an [`Output`] of node `sid`.
    fn apply(&mut self, sid: i64, out: Output) {
        let now = self.now;
        if let Some(d) = out.decision {
            let zab = self.zab_timeout;
            let node = self.node_mut(sid);
            node.decisions.push((now, d));
            node.role_check = zab.map(|z| now + z);
        }
        self.node_mut(sid).timer = out.timer;
        for to in out.dial {
            self.dials.push((now, sid, to));
        }
        for s in out.sends {
            assert_ne!(s.to, sid, "testkit: Fle sent to itself");
            let mut env = Envelope {
                from: sid,
                to: s.to,
                sent_at: now,
                notification: s.notification,
            };
            let fate = match self.filter.as_mut() {
                Some(f) => f(&env),
                None => Fate::Deliver,
            };
            self.sent.push(env);
            self.last_sent.insert((sid, s.to), s.notification);
            let extra = match fate {
                Fate::Drop => continue,
                Fate::Deliver => Duration::ZERO,
                Fate::Replace(n) => {
                    env.notification = n;
                    Duration::ZERO
                }
                Fate::Delay(d) => d,
            };
            if self.nodes.get(&s.to).is_some_and(|n| n.up) {
                self.schedule(env, extra);
            }
        }
    }

    /// Time of the next event, if any.
    pub fn next_event_time(&self) -> Option<Duration> {
        let msg = self.in_flight.keys().next().map(|(t, _)| *t);
        let timer = self
            .nodes
            .values()
            .filter(|n| n.up)
            .filter_map(|n| n.timer)
            .min();
        let link = self.link_events.keys().next().map(|(t, _)| *t);
        let role = self
            .nodes
            .values()
            .filter(|n| n.up)
            .filter_map(|n| n.role_check)
            .min();
        [msg, timer, link, role].into_iter().flatten().min()
    }

    /// Runs the next event (link reports, then messages, then timers in sid
    /// order at the same instant). `None` when nothing is left to do.
    pub fn step(&mut self) -> Option<Event> {
        let t = self.next_event_time()?;
        if t > self.now {
            self.now = t;
        }
        let now = self.now;
        if let Some((&key, _)) = self.link_events.iter().next() {
            if key.0 <= now {
                let (sid, peer, state) = self.link_events.remove(&key)?;
                if self.nodes.get(&sid).is_some_and(|n| n.up) {
                    let out = self.node_mut(sid).fle.on_link(now, peer, state);
                    self.apply(sid, out);
                    if state == LinkState::Up {
                        if let Some(n) = self.last_sent.get(&(sid, peer)).copied() {
                            let env = Envelope {
                                from: sid,
                                to: peer,
                                sent_at: now,
                                notification: n,
                            };
                            self.sent.push(env);
                            if self.nodes.get(&peer).is_some_and(|n| n.up) {
                                self.schedule(env, Duration::ZERO);
                            }
                        }
                    }
                }
                return Some(Event::Link { sid, peer, state });
            }
        }
        if let Some((&key, _)) = self.in_flight.iter().next() {
            if key.0 <= now {
                let env = self.in_flight.remove(&key)?;
                if !self.nodes.get(&env.to).is_some_and(|n| n.up) {
                    return Some(Event::Delivered(env));
                }
                let out =
                    self.node_mut(env.to)
                        .fle
                        .on_notification(now, env.from, &env.notification);
                self.apply(env.to, out);
                return Some(Event::Delivered(env));
            }
        }
        if let Some(sid) = self
            .nodes
            .iter()
            .find(|(_, n)| n.up && n.timer.is_some_and(|d| d <= now))
            .map(|(s, _)| *s)
        {
            let out = self.node_mut(sid).fle.on_timer(now);
            self.apply(sid, out);
            return Some(Event::Timer { sid });
        }
        let sid = self
            .nodes
            .iter()
            .find(|(_, n)| n.up && n.role_check.is_some_and(|d| d <= now))
            .map(|(s, _)| *s)?;
        self.node_mut(sid).role_check = None;
        let keeps = self.role_holds(sid);
        if !keeps {
            self.reelect(sid);
        }
        Some(Event::RoleCheck { sid, keeps })
    }

    /// True if every live node has decided and its role would survive the
    /// Zab check (one leader with a quorum following it).
    pub fn settled_with_quorum(&self) -> bool {
        self.all_up_decided()
            && self
                .nodes
                .iter()
                .filter(|(_, n)| n.up)
                .all(|(s, _)| self.role_holds(*s))
    }

    /// The crude Zab check behind [`Cluster::zab_timeout`].
    fn role_holds(&self, sid: i64) -> bool {
        let node = &self.nodes[&sid];
        let Some(d) = self.decision(sid) else {
            return true;
        };
        let leader = d.vote.leader;
        let lead_ok = |l: i64| {
            let Some(ln) = self.nodes.get(&l) else {
                return false;
            };
            if !ln.up || ln.fle.state() != ServerState::Leading {
                return false;
            }
            let q = &ln.fle.config().verifier;
            let followers = self.nodes.iter().filter(|(s, n)| {
                **s == l
                    || (n.up
                        && n.fle.state() == ServerState::Following
                        && self.decision(**s).is_some_and(|d| d.vote.leader == l))
            });
            q.contains_quorum(followers.map(|(s, _)| *s))
        };
        match node.fle.state() {
            ServerState::Looking => true,
            _ => lead_ok(leader),
        }
    }

    /// Steps until `cond` holds (true) or virtual time would pass `limit`
    /// (then `cond` is checked one last time at `limit`).
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Cluster) -> bool) -> bool {
        loop {
            if cond(self) {
                return true;
            }
            match self.next_event_time() {
                Some(t) if t <= limit => {
                    self.step();
                }
                _ => {
                    if self.now < limit {
                        self.now = limit;
                    }
                    return cond(self);
                }
            }
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let limit = self.now + d;
        self.run_until(limit, |_| false);
    }

    /// True if every live node has decided.
    pub fn all_up_decided(&self) -> bool {
        self.nodes
            .values()
            .filter(|n| n.up)
            .all(|n| n.fle.state() != ServerState::Looking)
    }

    /// Sids of live nodes in `state`.
    pub fn in_state(&self, state: ServerState) -> Vec<i64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.up && n.fle.state() == state)
            .map(|(s, _)| *s)
            .collect()
    }
}

/// A LOOKING/FOLLOWING/... notification literal, version 0.
pub fn notif(
    state: ServerState,
    leader: i64,
    zxid: i64,
    round: i64,
    peer_epoch: i64,
) -> Notification {
    Notification {
        state,
        leader,
        zxid,
        election_epoch: round,
        peer_epoch,
        version: 0,
    }
}

/// Milliseconds as a [`Duration`].
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
