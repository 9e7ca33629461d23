//! [`PeerHandle`]: a running embedded peer, its state and its shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::admin::Admin;
use crate::config::ZkConfig;
use crate::peer::replica::ApiRequest;
use crate::peer::{PeerOptions, QuorumPeer, ReplicationError};

use super::state::Published;
use super::{Event, LeaderInfo, PeerState, Role, ZkfleError};

/// A running embedded peer. Cloning is cheap; every clone controls the
/// same peer. [`PeerHandle::shutdown`] (or
/// [`PeerHandle::shutdown_async`], or dropping the last clone) stops every
/// thread the peer started, safely from any thread or async runtime.
///
/// State reaches the embedder three ways, all fed by the peer's own threads
/// at the moment a change is made (no polling): [`PeerHandle::is_leader`]
/// and [`PeerHandle::state`] (read now), [`PeerHandle::watch`] and
/// [`PeerHandle::wait_until`] (async), [`PeerHandle::subscribe`] and
/// [`PeerHandle::wait_for`] (blocking).
///
/// # How stale can `is_leader()` be?
///
/// `is_leader()` turns true once the leader's Zab session has established
/// its epoch with a quorum and false as soon as that session ends. A leader
/// cut off from its quorum (partition, followers gone silent) finds out at
/// a tick: every `tickTime` it counts the followers it has heard from
/// within the last `syncLimit` ticks (any packet; followers answer the
/// PING it sends every half tick), and steps down when they and it are no
/// longer a quorum. So `is_leader()` stays true for at most about
/// **`syncLimit + 1` ticks** after the last packet from its quorum arrived
/// (plus a few milliseconds to stop the session) — with tickTime 2000 ms
/// and syncLimit 5, up to about 12 s. Followers give up on a silent leader
/// after `syncLimit` ticks and elect a new one within milliseconds, so an
/// old leader cut off from its quorum can still read `true` for up to
/// about one and a half ticks after a new leader is in service, and
/// without bound in a process that is paused (GC, SIGSTOP, a VM
/// migration) and resumes. `is_leader()` is therefore no lease: stamp
/// every side effect with the epoch ([`PeerHandle::current_epoch`],
/// [`Role::Leading`]'s `epoch`) and have whatever receives it refuse an
/// epoch older than one it has seen (`examples/leader_task.rs`,
/// `examples/replicated_kv.rs`). Measured: `tests/embed_staleness.rs`
/// (SIGSTOPped followers) and `tests/store_runtime.rs` (a partition:
/// 0.33–0.40 s with syncLimit 3 and tickTime 100 ms, bound 0.4 s). Followers
/// that stop cleanly close their connections, and the leader then steps
/// down at its next tick, within one `tickTime` (`tests/embed_resign.rs`
/// stops them in-process and checks that [`PeerHandle::quorum_confirmed_at`]
/// never moves past that moment and reads `None` once it has stepped
/// down).
///
/// In short, with `T = tickTime` and `S = syncLimit`: `is_leader()` can stay
/// true at most about `(S + 1) × T` after the last packet from the quorum
/// (silence), or `T` after the quorum's connections closed; no other leader
/// can be established before `quorum_confirmed_at + S × T` (by the
/// followers' clocks); a paused process has no bound at all.
///
/// With a replicated log the leader also says when it last *knew* it held
/// a quorum: [`PeerHandle::quorum_confirmed_at`], the send time of the
/// newest PING round a quorum answered. Each follower that answered heard
/// from it after that instant, so none gives up on it before
/// `quorum_confirmed_at + syncLimit × tickTime` by its own clock; that is
/// the basis of the optional read lease
/// ([`PeerBuilder::read_lease`](super::PeerBuilder::read_lease),
/// [`PeerHandle::lease_until`]). For reads that stay linearizable under any
/// timing, use [`PeerHandle::read_barrier`].
///
/// ```
/// # use std::time::Duration;
/// # fn main() -> Result<(), zkfle::ZkfleError> {
/// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
/// let peer = zkfle::PeerBuilder::new(1)
///     .server(1, "127.0.0.1:30231".parse().unwrap(), "127.0.0.1:30232".parse().unwrap())
///     .data_dir(d.path())
///     .start()?;
/// let for_requests = peer.clone();
/// std::thread::spawn(move || for_requests.is_leader()).join().unwrap();
/// peer.shutdown();
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PeerHandle {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for PeerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerHandle")
            .field("state", &self.state())
            .finish()
    }
}

pub(super) struct Inner {
    pub(super) config: ZkConfig,
    pub(super) opts: PeerOptions,
    /// Store mode: where `propose` and `read_barrier` queue their requests
    /// (the running role takes them).
    pub(super) requests: Option<Sender<ApiRequest>>,
    /// Set when shutdown starts: no new request is queued after it.
    pub(super) closing: AtomicBool,
    published: Arc<Published>,
    /// Serve four-letter words and metrics beside the peer.
    admin: bool,
    /// The running peer; `None` once shut down. Held while a peer stops or
    /// starts, so a second `shutdown` returns only once the first is done.
    running: Mutex<Option<Running>>,
}

/// One running peer instance and the admin listeners started beside it
/// (the peer never starts them itself: DESIGN.md's import rules).
struct Running {
    peer: QuorumPeer,
    admin: Option<Admin>,
}

impl Running {
    /// Stops the admin listeners, then the peer; joins their threads.
    fn shutdown(mut self) {
        if let Some(a) = self.admin.as_mut() {
            a.shutdown();
        }
        self.peer.shutdown();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.published.close();
        self.closing.store(true, Ordering::SeqCst);
        if let Some(running) = self.running.get_mut().take() {
            // Joins the peer's threads; safe on an async runtime's thread
            // (its private runtimes stop on a helper thread there).
            running.shutdown();
        }
        self.fail_queued();
    }
}

impl Inner {
    /// Fails every request no role will take any more.
    pub(super) fn fail_queued(&self) {
        if let Some(r) = &self.opts.replica {
            r.fail_queued(ReplicationError::Shutdown);
        }
    }
}

impl PeerHandle {
    pub(super) fn start(
        config: ZkConfig,
        opts: PeerOptions,
        admin: bool,
        requests: Option<Sender<ApiRequest>>,
    ) -> Result<PeerHandle, ZkfleError> {
        let inner = Arc::new(Inner {
            published: Arc::new(Published::new(config.my_sid)),
            config,
            opts,
            requests,
            closing: AtomicBool::new(false),
            admin,
            running: Mutex::new(None),
        });
        let peer = launch(&inner)?;
        *inner.running.lock() = Some(peer);
        Ok(PeerHandle { inner })
    }

    /// This peer's sid.
    ///
    /// ```
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(4)
    ///     .server(4, "127.0.0.1:30121".parse().unwrap(), "127.0.0.1:30122".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// assert_eq!(peer.my_sid(), 4);
    /// # Ok(())
    /// # }
    /// ```
    pub fn my_sid(&self) -> i64 {
        self.inner.config.my_sid
    }

    /// The configuration the peer runs with (including keys zkfle does
    /// not use, in [`ZkConfig::extra`]).
    ///
    /// ```
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30131".parse().unwrap(), "127.0.0.1:30132".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .setting("kvAddress.1", "127.0.0.1:30133")
    ///     .start()?;
    /// assert_eq!(peer.config().extra_value("kvAddress.1"), Some("127.0.0.1:30133"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn config(&self) -> &ZkConfig {
        &self.inner.config
    }

    /// True while this peer leads: one atomic load, no lock, cheap enough
    /// for every request of a store. It can stay true for a while after the
    /// leader lost its quorum (about `syncLimit + 1` ticks; see [How stale
    /// can `is_leader()` be?](PeerHandle#how-stale-can-is_leader-be)):
    /// fence side effects with [`PeerHandle::current_epoch`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30141".parse().unwrap(), "127.0.0.1:30142".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))?;
    /// assert!(peer.is_leader());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_leader(&self) -> bool {
        self.inner.published.is_leader()
    }

    /// The role in service now.
    ///
    /// ```
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// // Sid 1 of a three-server ensemble whose other servers never run:
    /// // it can never win, so it stays Looking.
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30151".parse().unwrap(), "127.0.0.1:30152".parse().unwrap())
    ///     .server(2, "127.0.0.1:30153".parse().unwrap(), "127.0.0.1:30154".parse().unwrap())
    ///     .server(3, "127.0.0.1:30155".parse().unwrap(), "127.0.0.1:30156".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// assert_eq!(peer.role(), zkfle::Role::Looking);
    /// # Ok(())
    /// # }
    /// ```
    pub fn role(&self) -> Role {
        self.inner.published.state().role
    }

    /// The leader and its epoch, if this peer is in service (leading,
    /// following or observing).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30161".parse().unwrap(), "127.0.0.1:30162".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))?;
    /// assert_eq!(peer.leader().map(|l| l.sid), Some(1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn leader(&self) -> Option<LeaderInfo> {
        let s = self.inner.published.state();
        match s.role {
            Role::Looking => None,
            Role::Leading { epoch } => Some(LeaderInfo {
                sid: s.my_sid,
                epoch,
            }),
            Role::Following { leader, epoch } | Role::Observing { leader, epoch } => {
                Some(LeaderInfo { sid: leader, epoch })
            }
        }
    }

    /// The fencing token: the epoch of the leadership this peer serves in,
    /// or, while looking, the last persisted `currentEpoch`. A store stamps
    /// writes with it (zxid = epoch << 32 | counter) and rejects anything
    /// stamped with an older one.
    ///
    /// The epoch is the persisted `currentEpoch`, which the quorum-port
    /// (Zab) session advances for every new leadership: a leader's epoch is
    /// one past the highest accepted epoch of the quorum that elected it, so
    /// it is larger than that of any earlier leader a quorum accepted. The
    /// `replicated_kv` example stamps its writes with it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30171".parse().unwrap(), "127.0.0.1:30172".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// let s = peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))?;
    /// assert_eq!(Some(peer.current_epoch()), s.role.epoch());
    /// # Ok(())
    /// # }
    /// ```
    pub fn current_epoch(&self) -> i64 {
        let s = self.inner.published.state();
        s.role.epoch().unwrap_or(s.current_epoch)
    }

    /// A copy of the whole state.
    ///
    /// ```
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30181".parse().unwrap(), "127.0.0.1:30182".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// assert_eq!(peer.state().my_sid, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn state(&self) -> PeerState {
        self.inner.published.state()
    }

    /// Role changes and election-link up/down events from now on, for
    /// synchronous code (a crossbeam receiver). Each subscription gets
    /// every event, from the same publication as [`PeerHandle::watch`]
    /// (unbounded; drop the receiver to unsubscribe). The current role
    /// comes first, then a `PeerUp` for every peer connected now, so a
    /// subscriber never misses the state it starts from. The channel closes
    /// when the peer shuts down, after a last `Role(Looking)` if it was in
    /// service and a `PeerDown` for every link.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// use zkfle::{Event, Role};
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30191".parse().unwrap(), "127.0.0.1:30192".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// let events = peer.subscribe();
    /// loop {
    ///     match events.recv_timeout(Duration::from_secs(10)) {
    ///         Ok(Event::Role(Role::Leading { .. })) => break,
    ///         Ok(_) => continue,
    ///         Err(e) => panic!("no Leading event: {e}"),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe(&self) -> Receiver<Event> {
        self.inner.published.subscribe()
    }

    /// Waits until `pred` holds for the state, or `timeout` passes (then
    /// [`ZkfleError::Timeout`] carries the last state seen). Tests use this
    /// instead of sleeping.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30201".parse().unwrap(), "127.0.0.1:30202".parse().unwrap())
    ///     .server(2, "127.0.0.1:30203".parse().unwrap(), "127.0.0.1:30204".parse().unwrap())
    ///     .server(3, "127.0.0.1:30205".parse().unwrap(), "127.0.0.1:30206".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// // Alone, sid 1 cannot lead a three-server ensemble.
    /// let err = peer.wait_for(|s| s.role.is_leader(), Duration::from_millis(300)).unwrap_err();
    /// assert!(matches!(err, zkfle::ZkfleError::Timeout { .. }));
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait_for<P>(&self, pred: P, timeout: Duration) -> Result<PeerState, ZkfleError>
    where
        P: Fn(&PeerState) -> bool,
    {
        self.inner.published.wait_blocking(pred, timeout)
    }

    /// Leaves the current role and elects again, without closing the
    /// handle: the embedded peer (election port, connection manager,
    /// threads) is stopped and started afresh, and votes with the
    /// supplier's new last zxid. A store calls this when it has its own
    /// evidence that the leader is gone (its replication link to the leader
    /// died) or that it lost its quorum as leader. Subscribers see
    /// [`Role::Looking`] and then the new role.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30211".parse().unwrap(), "127.0.0.1:30212".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))?;
    /// peer.restart_election()?;
    /// let s = peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))?;
    /// assert_eq!(s.election_count, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn restart_election(&self) -> Result<(), ZkfleError> {
        let mut running = self.inner.running.lock();
        let old = running.take().ok_or(ZkfleError::Shutdown)?;
        let count = old.peer.status().snapshot().election_count;
        // Retired first: nothing the stopping instance still reports counts.
        self.inner.published.retire_instance(count);
        old.shutdown();
        match launch(&self.inner) {
            Ok(peer) => {
                *running = Some(peer);
                Ok(())
            }
            Err(e) => {
                // No peer runs any more: waiters must not wait for one.
                self.inner.published.close();
                Err(e)
            }
        }
    }

    /// Gives leadership up: the leader ends its term (closing its
    /// followers' quorum connections, so they elect at once instead of
    /// after `syncLimit` ticks) and, for `hold_off`, takes part in
    /// elections without standing for leader; another peer leads. Returns
    /// once this peer no longer leads ([`ZkfleError::NotLeader`] if it did
    /// not lead when called, [`ZkfleError::Timeout`] if its term did not end
    /// within 10 s). Blocks the calling thread for that long (milliseconds);
    /// in async code use [`PeerHandle::resign_async`].
    ///
    /// What happens next is decided by the election (the Driver's
    /// "Resigning" rules):
    ///
    /// * This peer never proposes itself during the hold-off and ignores
    ///   votes naming it, so it cannot be elected, by zkfle or Java peers.
    /// * It votes only for a candidate whose history `(epoch, zxid)` is at
    ///   least its own, so no committed entry is lost even if it held
    ///   entries some followers lacked.
    /// * If the others cannot elect without it (too few of them, or none
    ///   with its history and no quorum without it), nobody leads until the
    ///   hold-off ends; then it stands again and is elected as usual. A
    ///   short hold-off (a few hundred milliseconds) is enough to move
    ///   leadership; a long one keeps this peer out longer.
    ///
    /// With Java peers in the ensemble the same holds (a Java peer never
    /// receives a vote for it and logs its placeholder vote like an
    /// observer's); the hold-off binds only this peer.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// // A one-voter ensemble: nobody else can lead, so the leader returns
    /// // once its hold-off is over, in a new epoch.
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:15001".parse().unwrap(), "127.0.0.1:15002".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// let before = peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))?;
    /// peer.resign(Duration::from_millis(300))?;
    /// assert!(!peer.is_leader());
    /// let after = peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))?;
    /// assert!(after.role.epoch() > before.role.epoch());
    /// assert!(matches!(
    ///     zkfle::PeerBuilder::new(2)
    ///         .server(2, "127.0.0.1:15003".parse().unwrap(), "127.0.0.1:15004".parse().unwrap())
    ///         .server(3, "127.0.0.1:15005".parse().unwrap(), "127.0.0.1:15006".parse().unwrap())
    ///         .server(4, "127.0.0.1:15007".parse().unwrap(), "127.0.0.1:15008".parse().unwrap())
    ///         .data_dir(d.path().join("2"))
    ///         .start()?
    ///         .resign(Duration::from_millis(300)),
    ///     Err(zkfle::ZkfleError::NotLeader)
    /// ));
    /// # Ok(())
    /// # }
    /// ```
    pub fn resign(&self, hold_off: Duration) -> Result<(), ZkfleError> {
        let epoch = self.request_resign(hold_off)?;
        self.wait_for(|s| s.role != Role::Leading { epoch }, RESIGN_WAIT)
            .map(|_| ())
    }

    /// [`PeerHandle::resign`] for async code: awaits the end of the term on
    /// the watch channel instead of blocking the executor (no time limit of
    /// its own; wrap it in a timeout if needed). Any executor.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:15011".parse().unwrap(), "127.0.0.1:15012".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// peer.wait_until(|s| s.role.is_leader()).await?;
    /// peer.resign_async(Duration::from_millis(200)).await?;
    /// assert!(!peer.is_leader());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn resign_async(&self, hold_off: Duration) -> Result<(), ZkfleError> {
        let epoch = self.request_resign(hold_off)?;
        self.wait_until(|s| s.role != Role::Leading { epoch })
            .await
            .map(|_| ())
    }

    /// Queues a resignation for the leadership in service now; its epoch.
    fn request_resign(&self, hold_off: Duration) -> Result<i64, ZkfleError> {
        let running = self.inner.running.lock();
        let r = running.as_ref().ok_or(ZkfleError::Shutdown)?;
        let Role::Leading { epoch } = self.inner.published.state().role else {
            return Err(ZkfleError::NotLeader);
        };
        r.peer.resign(Some(epoch), hold_off);
        Ok(epoch)
    }

    /// The state now and every later change, on a tokio watch channel: the
    /// peer's own threads publish each change as they make it (a role
    /// taken or left, an epoch persisted, an election link up or down), so
    /// async code awaits `changed()` instead of polling. The receiver
    /// starts with the current state marked seen; a watch channel keeps
    /// only the newest state, so a state that lasted a moment may be
    /// skipped (use [`PeerHandle::subscribe`] to see every role change).
    /// At shutdown the state drops to [`Role::Looking`] with no links, and
    /// then the channel closes (`changed()` fails once that last state was
    /// seen).
    ///
    /// Do not hold a `borrow()` across slow work: the peer's thread that
    /// publishes the next change waits for it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30241".parse().unwrap(), "127.0.0.1:30242".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// let mut states = peer.watch();
    /// while !states.borrow_and_update().role.is_leader() {
    ///     states.changed().await.expect("the peer is running");
    /// }
    /// peer.shutdown_async().await;
    /// // A last change to Looking, then the channel is closed.
    /// while states.changed().await.is_ok() {}
    /// assert_eq!(states.borrow().role, zkfle::Role::Looking);
    /// # Ok(())
    /// # }
    /// ```
    pub fn watch(&self) -> tokio::sync::watch::Receiver<PeerState> {
        self.inner.published.watch()
    }

    /// Waits, without blocking the executor, until `pred` holds for the
    /// state (checked at once, then on every change published on
    /// [`PeerHandle::watch`]); [`ZkfleError::Shutdown`] if the peer shuts
    /// down first. Works on any executor.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30251".parse().unwrap(), "127.0.0.1:30252".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// let s = peer.wait_until(|s| s.role.is_leader()).await?;
    /// assert_eq!(s.role.epoch(), Some(peer.current_epoch()));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_until<P>(&self, pred: P) -> Result<PeerState, ZkfleError>
    where
        P: FnMut(&PeerState) -> bool,
    {
        let mut rx = self.watch();
        let r = rx.wait_for(pred).await;
        match r {
            Ok(state) => Ok(state.clone()),
            Err(_) => Err(ZkfleError::Shutdown),
        }
    }

    /// [`PeerHandle::wait_until`] for at most `timeout`; then
    /// [`ZkfleError::Timeout`] carries the last state. Needs a tokio
    /// runtime with its time driver (`enable_time`/`enable_all`, as
    /// `#[tokio::main]` has).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// // Alone in a three-voter ensemble: sid 1 never leads.
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30261".parse().unwrap(), "127.0.0.1:30262".parse().unwrap())
    ///     .server(2, "127.0.0.1:30263".parse().unwrap(), "127.0.0.1:30264".parse().unwrap())
    ///     .server(3, "127.0.0.1:30265".parse().unwrap(), "127.0.0.1:30266".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// let r = peer.wait_until_timeout(|s| s.role.is_leader(), Duration::from_millis(200)).await;
    /// assert!(matches!(r, Err(zkfle::ZkfleError::Timeout { .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_until_timeout<P>(
        &self,
        pred: P,
        timeout: Duration,
    ) -> Result<PeerState, ZkfleError>
    where
        P: FnMut(&PeerState) -> bool,
    {
        match tokio::time::timeout(timeout, self.wait_until(pred)).await {
            Ok(r) => r,
            Err(_) => Err(ZkfleError::Timeout {
                timeout,
                last: Box::new(self.state()),
            }),
        }
    }

    /// Stops the peer and joins every thread it started (election,
    /// connection manager, role session, admin server). Blocks the calling
    /// thread until then (typically tens of milliseconds; in async code
    /// [`PeerHandle::shutdown_async`] does not block the executor). Safe
    /// from any thread, including a multi-thread or current-thread tokio
    /// runtime's: zkfle's private runtimes are stopped from a helper thread
    /// there. Idempotent: a second call returns once the first is done.
    /// Every clone sees [`ZkfleError::Shutdown`] from the waits afterwards,
    /// [`PeerHandle::watch`] channels and subscriptions close, and
    /// [`PeerHandle::is_leader`] is false from the moment it starts.
    /// Dropping the last clone does the same.
    ///
    /// ```
    /// # fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30221".parse().unwrap(), "127.0.0.1:30222".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// peer.shutdown();
    /// assert_eq!(peer.role(), zkfle::Role::Looking);
    /// # Ok(())
    /// # }
    /// ```
    pub fn shutdown(&self) {
        // Closed first: an embedder stops acting as leader before the peer
        // has finished stopping, never after.
        self.inner.published.close();
        self.inner.closing.store(true, Ordering::SeqCst);
        let mut running = self.inner.running.lock();
        if let Some(r) = running.take() {
            r.shutdown();
        }
        self.inner.fail_queued();
    }

    /// [`PeerHandle::shutdown`] for async code: the joins run on a helper
    /// thread and this future completes once they are done, without
    /// blocking the executor (any executor). If the future is dropped
    /// early, the shutdown still completes in the background.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), zkfle::ZkfleError> {
    /// # let d = tempfile::tempdir().map_err(zkfle::ZkfleError::Io)?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30271".parse().unwrap(), "127.0.0.1:30272".parse().unwrap())
    ///     .data_dir(d.path())
    ///     .start()?;
    /// peer.shutdown_async().await;
    /// assert!(matches!(peer.wait_until(|_| false).await, Err(zkfle::ZkfleError::Shutdown)));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown_async(&self) {
        self.inner.published.close();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("zkfle{}-stop", self.my_sid()))
            .spawn(move || {
                me.shutdown();
                let _ = done_tx.send(());
            });
        match spawned {
            Ok(_) => {
                let _ = done_rx.await;
            }
            // No thread to spare: stop here, blocking, which is still safe.
            Err(_) => self.shutdown(),
        }
    }
}

/// How long [`PeerHandle::resign`] waits for the term to end (it takes
/// milliseconds; the bound only keeps a wedged role from blocking forever).
const RESIGN_WAIT: Duration = Duration::from_secs(10);

/// Starts one peer instance whose status and election links publish into
/// the handle's state, from the peer's own threads.
fn launch(inner: &Inner) -> Result<Running, ZkfleError> {
    let mut peer = QuorumPeer::start(inner.config.clone(), inner.opts.clone())?;
    // The peer never starts its admin side itself (DESIGN.md's import
    // rules); the builder does, beside it.
    let admin = if inner.admin {
        match Admin::start(&peer) {
            Ok(a) => Some(a),
            Err(e) => {
                peer.shutdown();
                return Err(e.into());
            }
        }
    } else {
        None
    };
    let instance = inner.published.instance();
    let p = inner.published.clone();
    peer.status()
        .set_listener(Arc::new(move |snap| p.on_status(instance, snap)));
    let p = inner.published.clone();
    peer.qcm()
        .set_link_listener(Arc::new(move |up| p.on_links(instance, up)));
    Ok(Running { peer, admin })
}
