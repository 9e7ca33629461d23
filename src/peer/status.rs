//! What a running peer publishes about itself: read by the four-letter-word
//! server, the `ensemble` command, tests and the embedding API, written by
//! the peer's main loop, its election thread and its role session.
//!
//! Readers never block the writers for long: one small `RwLock`ed snapshot
//! plus a condition variable, so a caller can wait for "state is X" instead
//! of sleeping (the openraft `wait().state(..)` idea). One listener (the
//! embedding API) may also be told of every change, by the thread that
//! makes it, so role changes reach embedders without a polling thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::election::DecidedBy;
use crate::wire::ServerState;

use super::timings::{History, Timings};
use super::zab::LearnerCounts;

/// The phase of a role, as ZooKeeper's `zk_peer_state` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// In an election (or about to be).
    Election,
    /// Zab discovery: epochs are being agreed.
    Discovery,
    /// Zab synchronization: the leader brings learners up to date.
    Synchronization,
    /// Zab broadcast: in service.
    Broadcast,
}

impl Phase {
    /// The word ZooKeeper appends after the state in `zk_peer_state`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Election => "election",
            Phase::Discovery => "discovery",
            Phase::Synchronization => "synchronization",
            Phase::Broadcast => "broadcast",
        }
    }
}

/// Election-port figures, taken from the connection manager on demand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Configured peers other than this one with a live election link.
    pub connected_peers: usize,
    /// Notification frames written.
    pub notifications_sent: u64,
    /// Notifications received and decoded.
    pub notifications_received: u64,
    /// Frames with a bad length or an undecodable body.
    pub bad_frames: u64,
}

/// A source of [`NetStats`] (the running QCM).
pub type NetSource = Arc<dyn Fn() -> NetStats + Send + Sync>;

/// Told of every status change, with the snapshot after it; see
/// [`PeerStatus::set_listener`].
pub type StatusListener = Arc<dyn Fn(&StatusSnapshot) + Send + Sync>;

/// One consistent view of a peer's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSnapshot {
    /// This server's sid.
    pub my_sid: i64,
    /// LOOKING, FOLLOWING, LEADING or OBSERVING (the election's view).
    pub state: ServerState,
    /// The phase of the current role.
    pub phase: Phase,
    /// True once the role serves (Zab synchronized; until the quorum-port
    /// session exists, as soon as the peer decides). `srvr`'s `Mode:` and
    /// `zk_server_state` only name the role when this is set.
    pub serving: bool,
    /// The sid this peer follows or is; -1 while looking.
    pub leader_sid: i64,
    /// `currentEpoch` as persisted.
    pub current_epoch: i64,
    /// `acceptedEpoch` as persisted.
    pub accepted_epoch: i64,
    /// The zxid this peer voted with in its last election, then the one
    /// the Zab session established (the leader's epoch start, a SNAP's).
    pub last_zxid: i64,
    /// The election round (logical clock) of the last decision; 0 before.
    pub election_epoch: i64,
    /// Entries into LOOKING so far.
    pub election_count: u64,
    /// The last election's span from entering LOOKING to the decision, in
    /// ms; `None` before the first decision.
    pub last_election_ms: Option<u64>,
    /// Voting members in the configuration (ZooKeeper's `quorum_size`:
    /// `QuorumPeer.getQuorumSize`, the size of the voting view).
    pub quorum_size: usize,
    /// Which rule ended the last election; `None` before the first.
    pub decided_by: Option<DecidedBy>,
    /// While leading: the learners, as the leader last reported them.
    pub learners: Option<LearnerCounts>,
}

impl StatusSnapshot {
    /// `zk_server_state` / `Mode:` text: the role once serving, else
    /// `looking`.
    pub fn server_state_text(&self) -> &'static str {
        if !self.serving {
            return "looking";
        }
        match self.state {
            ServerState::Leading => "leader",
            ServerState::Following => "follower",
            ServerState::Observing => "observer",
            ServerState::Looking => "looking",
        }
    }

    /// `zk_peer_state` text in ZooKeeper's words: `looking`, or
    /// `leading - discovery` and the like.
    pub fn peer_state_text(&self) -> String {
        match self.state {
            ServerState::Looking => "looking".to_string(),
            s => format!("{} - {}", s.name(), self.phase.name()),
        }
    }
}

/// The shared, live status of one peer. Cheap to read from any thread.
pub struct PeerStatus {
    snap: RwLock<StatusSnapshot>,
    history: Mutex<History>,
    net: RwLock<Option<NetSource>>,
    changed: Mutex<u64>,
    cv: Condvar,
    /// Held across a change and the call that reports it, so the listener
    /// sees changes one at a time and in the order they were made.
    listener: Mutex<Option<StatusListener>>,
}

impl std::fmt::Debug for PeerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerStatus")
            .field("snapshot", &*self.snap.read())
            .finish()
    }
}

impl PeerStatus {
    /// A LOOKING status for `my_sid` with `voters` voting members and the
    /// given persisted epochs.
    pub fn new(my_sid: i64, voters: usize, current_epoch: i64, accepted_epoch: i64) -> Self {
        PeerStatus {
            snap: RwLock::new(StatusSnapshot {
                my_sid,
                state: ServerState::Looking,
                phase: Phase::Election,
                serving: false,
                leader_sid: -1,
                current_epoch,
                accepted_epoch,
                last_zxid: 0,
                election_epoch: 0,
                election_count: 0,
                last_election_ms: None,
                quorum_size: voters,
                decided_by: None,
                learners: None,
            }),
            history: Mutex::new(History::default()),
            net: RwLock::new(None),
            changed: Mutex::new(0),
            cv: Condvar::new(),
            listener: Mutex::new(None),
        }
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> StatusSnapshot {
        self.snap.read().clone()
    }

    /// Applies `f` to the state, tells the listener (on this thread) and
    /// wakes every waiter. The transition also feeds ZooKeeper's timing
    /// metrics ([`PeerStatus::timings`]).
    pub fn update<F: FnOnce(&mut StatusSnapshot)>(&self, f: F) {
        let listener = self.listener.lock();
        let after = {
            let mut snap = self.snap.write();
            let before = snap.clone();
            f(&mut snap);
            self.history
                .lock()
                .transition(&before, &snap, Instant::now());
            listener.as_ref().map(|_| snap.clone())
        };
        if let (Some(l), Some(after)) = (listener.as_ref(), after) {
            l(&after);
        }
        drop(listener);
        let mut gen = self.changed.lock();
        *gen = gen.wrapping_add(1);
        self.cv.notify_all();
    }

    /// Installs the listener told of every later change (replacing any
    /// earlier one) and calls it at once with the current state, so it
    /// misses nothing. It runs on the updating thread (the peer's main
    /// loop, its role session) while updates wait: it must be quick and
    /// must not call [`PeerStatus::update`].
    pub fn set_listener(&self, listener: StatusListener) {
        let mut slot = self.listener.lock();
        listener(&self.snapshot());
        *slot = Some(listener);
    }

    /// ZooKeeper's election and availability timings as of now.
    pub fn timings(&self) -> Timings {
        self.history.lock().at(Instant::now())
    }

    /// Installs the source of election-port figures.
    pub fn set_net_source(&self, src: NetSource) {
        *self.net.write() = Some(src);
    }

    /// Election-port figures now (zeros before the QCM runs).
    pub fn net(&self) -> NetStats {
        let src = self.net.read().clone();
        src.map(|f| f()).unwrap_or_default()
    }

    /// Waits until `pred` holds for the state or `timeout` passes; returns
    /// the last snapshot seen and whether `pred` held.
    pub fn wait_until<P: Fn(&StatusSnapshot) -> bool>(
        &self,
        timeout: Duration,
        pred: P,
    ) -> (StatusSnapshot, bool) {
        let deadline = Instant::now() + timeout;
        let mut gen = self.changed.lock();
        loop {
            let s = self.snapshot();
            if pred(&s) {
                return (s, true);
            }
            if self.cv.wait_until(&mut gen, deadline).timed_out() {
                let s = self.snapshot();
                let ok = pred(&s);
                return (s, ok);
            }
        }
    }

    /// Wakes every waiter without a change (used on shutdown).
    pub fn poke(&self) {
        let _g = self.changed.lock();
        self.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_follow_zookeeper_words() {
        let st = PeerStatus::new(3, 2, 0, 0);
        let s = st.snapshot();
        assert_eq!(s.server_state_text(), "looking");
        assert_eq!(s.peer_state_text(), "looking");
        st.update(|s| {
            s.state = ServerState::Following;
            s.phase = Phase::Synchronization;
            s.leader_sid = 5;
        });
        let s = st.snapshot();
        assert_eq!(s.server_state_text(), "looking", "not serving yet");
        assert_eq!(s.peer_state_text(), "following - synchronization");
        st.update(|s| {
            s.serving = true;
            s.phase = Phase::Broadcast;
        });
        assert_eq!(st.snapshot().server_state_text(), "follower");
    }

    #[test]
    fn wait_until_wakes_on_update_from_another_thread() {
        let st = Arc::new(PeerStatus::new(1, 2, 0, 0));
        let st2 = st.clone();
        let h = std::thread::spawn(move || {
            st2.update(|s| s.leader_sid = 9);
        });
        let (s, ok) = st.wait_until(Duration::from_secs(10), |s| s.leader_sid == 9);
        assert!(ok, "leader_sid 9 was awaited, saw {}", s.leader_sid);
        h.join().unwrap();
        let (_, ok) = st.wait_until(Duration::from_millis(30), |s| s.leader_sid == 1);
        assert!(!ok);
    }

    #[test]
    fn the_listener_sees_the_current_state_then_every_change_in_order() {
        let st = PeerStatus::new(1, 2, 0, 0);
        st.update(|s| s.leader_sid = 4);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        st.set_listener(Arc::new(move |s: &StatusSnapshot| {
            s2.lock().push(s.leader_sid)
        }));
        for sid in 5..=7 {
            st.update(|s| s.leader_sid = sid);
        }
        assert_eq!(*seen.lock(), vec![4, 5, 6, 7]);
    }
}
