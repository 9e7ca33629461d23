//! [`PeerState`] and [`Event`], and how they reach embedders: the peer's
//! own threads report each change (status updates from its main loop and
//! role session, link changes from its connection threads) to one
//! [`Published`], which updates the state, the watch channel, the
//! subscribers and the sync waiters together, under one lock.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::peer::StatusSnapshot;

use super::role::role_of;
use super::{Role, RoleEvent, ZkfleError};

/// What a subscription delivers.
///
/// New variants may come (hence `#[non_exhaustive]`): match with a `_` arm.
///
/// ```
/// use zkfle::{Event, Role};
/// let e = Event::PeerUp(3);
/// assert!(matches!(e, Event::PeerUp(3)));
/// let r = Event::Role(Role::Looking);
/// assert_ne!(e, r);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// This peer's role changed.
    Role(RoleEvent),
    /// A configured peer's election link came up.
    PeerUp(i64),
    /// A configured peer's election link went down.
    PeerDown(i64),
}

/// One consistent view of an embedded peer, as [`PeerHandle::state`],
/// [`PeerHandle::watch`] and the waits see it.
///
/// Fields may be added (hence `#[non_exhaustive]`; the leader's lease, for
/// one, will come with the protocol core).
///
/// [`PeerHandle::state`]: super::PeerHandle::state
/// [`PeerHandle::watch`]: super::PeerHandle::watch
///
/// ```
/// # use zkfle::{PeerState, Role};
/// fn leads_with_both_followers(s: &PeerState) -> bool {
///     s.role.is_leader() && s.connected_peers.len() == 2
/// }
/// # let _ = leads_with_both_followers;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerState {
    /// This peer's sid.
    pub my_sid: i64,
    /// The role in service.
    pub role: Role,
    /// Configured peers with a live election link.
    pub connected_peers: BTreeSet<i64>,
    /// The persisted `currentEpoch`.
    pub current_epoch: i64,
    /// The zxid this peer voted with in its last election, then the one
    /// its Zab session established.
    pub last_zxid: i64,
    /// Elections entered since the handle started (restarts included).
    pub election_count: u64,
}

impl PeerState {
    fn initial(my_sid: i64) -> PeerState {
        PeerState {
            my_sid,
            role: Role::Looking,
            connected_peers: BTreeSet::new(),
            current_epoch: 0,
            last_zxid: 0,
            election_count: 0,
        }
    }
}

/// The published state of one handle, across peer restarts.
pub(crate) struct Published {
    /// Mirrors `state.role.is_leader()` so the hot-path question is one
    /// atomic load.
    is_leader: AtomicBool,
    cur: Mutex<Current>,
    /// Signalled (under `cur`) on every change and at shutdown.
    changed: Condvar,
}

struct Current {
    state: PeerState,
    /// `None` once shut down, so receivers see the channel close.
    watch: Option<watch::Sender<PeerState>>,
    subscribers: Vec<Sender<Event>>,
    closed: bool,
    /// The peer instance whose reports count. `restart_election` and
    /// shutdown move it on, so a report still in flight from a stopped
    /// instance is ignored.
    instance: u64,
    /// Elections entered by earlier instances.
    elections_before: u64,
}

impl Published {
    pub(crate) fn new(my_sid: i64) -> Published {
        let state = PeerState::initial(my_sid);
        let (tx, _) = watch::channel(state.clone());
        Published {
            is_leader: AtomicBool::new(false),
            cur: Mutex::new(Current {
                state,
                watch: Some(tx),
                subscribers: Vec::new(),
                closed: false,
                instance: 0,
                elections_before: 0,
            }),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn is_leader(&self) -> bool {
        self.is_leader.load(Ordering::Acquire)
    }

    pub(crate) fn state(&self) -> PeerState {
        self.cur.lock().state.clone()
    }

    /// The instance whose reports count now.
    pub(crate) fn instance(&self) -> u64 {
        self.cur.lock().instance
    }

    /// A status change of peer instance `instance`.
    pub(crate) fn on_status(&self, instance: u64, snap: &StatusSnapshot) {
        let mut cur = self.cur.lock();
        if cur.instance != instance {
            return;
        }
        let mut next = cur.state.clone();
        next.role = role_of(snap);
        next.current_epoch = snap.current_epoch;
        next.last_zxid = snap.last_zxid;
        next.election_count = cur.elections_before + snap.election_count;
        let mut events = Vec::new();
        if next.role != cur.state.role {
            events.push(Event::Role(next.role));
        }
        self.apply(&mut cur, next, &events);
    }

    /// The configured peers with a live election link of peer instance
    /// `instance`, after one came up or went down.
    pub(crate) fn on_links(&self, instance: u64, up: &[i64]) {
        let mut cur = self.cur.lock();
        if cur.instance != instance {
            return;
        }
        let now: BTreeSet<i64> = up.iter().copied().collect();
        let events = link_events(&cur.state.connected_peers, &now);
        let mut next = cur.state.clone();
        next.connected_peers = now;
        self.apply(&mut cur, next, &events);
    }

    /// Leaves the current peer instance (its later reports are ignored):
    /// the role drops to `Looking` and every link counts as down. Returns
    /// the instance whose reports count from now on.
    pub(crate) fn retire_instance(&self, elections: u64) -> u64 {
        let mut cur = self.cur.lock();
        cur.instance += 1;
        cur.elections_before += elections;
        self.reset(&mut cur);
        cur.instance
    }

    /// Shutdown: `Looking`, no links, waiters woken with
    /// [`ZkfleError::Shutdown`], the watch channel and every subscription
    /// closed.
    pub(crate) fn close(&self) {
        let mut cur = self.cur.lock();
        if cur.closed {
            return;
        }
        cur.instance += 1;
        self.reset(&mut cur);
        cur.closed = true;
        cur.watch = None;
        cur.subscribers.clear();
        self.changed.notify_all();
    }

    fn reset(&self, cur: &mut Current) {
        let mut next = cur.state.clone();
        next.role = Role::Looking;
        next.connected_peers.clear();
        let mut events = Vec::new();
        if cur.state.role != Role::Looking {
            events.push(Event::Role(Role::Looking));
        }
        events.extend(link_events(
            &cur.state.connected_peers,
            &next.connected_peers,
        ));
        self.apply(cur, next, &events);
    }

    /// Installs `next` and hands out `events`. Everything happens under
    /// the lock, so a subscriber or a watcher that registers meanwhile sees
    /// each change exactly once (in its starting state or after it). The
    /// order matters to whoever wakes first: the atomic, then the
    /// subscriptions, then the watch channel and the blocking waiters, so
    /// code woken by the watch channel finds the events already queued and
    /// `is_leader()` already agreeing. Nothing here blocks (unbounded
    /// channels, a watch send).
    fn apply(&self, cur: &mut Current, next: PeerState, events: &[Event]) {
        if next == cur.state {
            return;
        }
        self.is_leader
            .store(next.role.is_leader(), Ordering::Release);
        if !events.is_empty() {
            cur.subscribers
                .retain(|tx| events.iter().all(|e| tx.send(*e).is_ok()));
        }
        if let Some(tx) = &cur.watch {
            tx.send_replace(next.clone());
        }
        cur.state = next;
        self.changed.notify_all();
    }

    /// See [`super::PeerHandle::subscribe`].
    pub(crate) fn subscribe(&self) -> Receiver<Event> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut cur = self.cur.lock();
        let _ = tx.send(Event::Role(cur.state.role));
        for &sid in &cur.state.connected_peers {
            let _ = tx.send(Event::PeerUp(sid));
        }
        if !cur.closed {
            cur.subscribers.push(tx);
        }
        rx
    }

    /// See [`super::PeerHandle::watch`].
    pub(crate) fn watch(&self) -> watch::Receiver<PeerState> {
        let cur = self.cur.lock();
        match &cur.watch {
            Some(tx) => tx.subscribe(),
            None => {
                // Shut down: a receiver holding the last state whose
                // channel is already closed.
                let (tx, rx) = watch::channel(cur.state.clone());
                drop(tx);
                rx
            }
        }
    }

    /// See [`super::PeerHandle::wait_for`].
    pub(crate) fn wait_blocking<P>(
        &self,
        pred: P,
        timeout: Duration,
    ) -> Result<PeerState, ZkfleError>
    where
        P: Fn(&PeerState) -> bool,
    {
        let deadline = Instant::now() + timeout;
        let mut cur = self.cur.lock();
        loop {
            if pred(&cur.state) {
                return Ok(cur.state.clone());
            }
            if cur.closed {
                return Err(ZkfleError::Shutdown);
            }
            if self.changed.wait_until(&mut cur, deadline).timed_out() {
                if pred(&cur.state) {
                    return Ok(cur.state.clone());
                }
                return Err(ZkfleError::Timeout {
                    timeout,
                    last: Box::new(cur.state.clone()),
                });
            }
        }
    }
}

/// `PeerUp` for every peer in `now` only, `PeerDown` for every peer in
/// `before` only.
fn link_events(before: &BTreeSet<i64>, now: &BTreeSet<i64>) -> Vec<Event> {
    let up = now.difference(before).map(|&p| Event::PeerUp(p));
    let down = before.difference(now).map(|&p| Event::PeerDown(p));
    up.chain(down).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ServerState;

    fn leading(epoch: i64) -> StatusSnapshot {
        let st = crate::peer::PeerStatus::new(1, 2, epoch, epoch);
        st.update(|s| {
            s.state = ServerState::Leading;
            s.serving = true;
            s.leader_sid = 1;
            s.election_count = 1;
        });
        st.snapshot()
    }

    #[test]
    fn one_change_reaches_the_atomic_the_watch_and_every_subscriber() {
        let p = Published::new(1);
        let events = p.subscribe();
        let mut rx = p.watch();
        assert!(!rx.has_changed().unwrap());
        p.on_status(0, &leading(3));
        assert!(p.is_leader());
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().role, Role::Leading { epoch: 3 });
        p.on_links(0, &[2, 3]);
        p.on_links(0, &[3]);
        let got: Vec<Event> = events.try_iter().collect();
        assert_eq!(
            got,
            vec![
                Event::Role(Role::Looking),
                Event::Role(Role::Leading { epoch: 3 }),
                Event::PeerUp(2),
                Event::PeerUp(3),
                Event::PeerDown(2),
            ]
        );
        assert_eq!(rx.borrow().connected_peers, BTreeSet::from([3]));
    }

    #[test]
    fn an_unchanged_state_wakes_nobody() {
        let p = Published::new(1);
        p.on_status(0, &leading(3));
        let rx = p.watch();
        let events = p.subscribe();
        let _ = events.try_iter().count();
        p.on_status(0, &leading(3));
        assert!(!rx.has_changed().unwrap());
        assert_eq!(events.try_iter().count(), 0);
    }

    #[test]
    fn a_retired_instance_is_ignored_and_shutdown_closes_everything() {
        let p = Published::new(1);
        p.on_status(0, &leading(3));
        p.on_links(0, &[2]);
        let events = p.subscribe();
        let rx = p.watch();
        let next = p.retire_instance(1);
        assert_eq!(next, 1);
        assert!(!p.is_leader());
        p.on_status(0, &leading(3));
        p.on_links(0, &[2, 3]);
        assert_eq!(p.state().role, Role::Looking, "stale instance ignored");
        assert!(p.state().connected_peers.is_empty());
        p.on_status(1, &leading(4));
        assert_eq!(p.state().election_count, 2, "1 before + 1 now");
        p.close();
        assert!(!p.is_leader());
        assert!(rx.has_changed().is_err(), "the watch channel is closed");
        assert!(p.watch().has_changed().is_err());
        let got: Vec<Event> = events.iter().collect();
        assert_eq!(
            got,
            vec![
                Event::Role(Role::Leading { epoch: 3 }),
                Event::PeerUp(2),
                Event::Role(Role::Looking),
                Event::PeerDown(2),
                Event::Role(Role::Leading { epoch: 4 }),
                Event::Role(Role::Looking),
            ],
            "the iterator ends: the subscription closed"
        );
        assert!(matches!(
            p.wait_blocking(|_| false, Duration::from_secs(5)),
            Err(ZkfleError::Shutdown)
        ));
    }
}
