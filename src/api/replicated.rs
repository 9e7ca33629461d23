//! The replicated-log half of [`PeerHandle`] (store mode): `propose`,
//! `read_barrier`, the applied zxid and the leader's quorum confirmation.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;

use super::handle::Inner;
use super::PeerHandle;
use crate::peer::replica::{ApiRequest, Completion};
use crate::peer::{ReplicationError, ReplicationResult};

/// The largest entry [`PeerHandle::propose`] takes: 1 MiB, inside both the
/// quorum port's packet bound (ZooKeeper's `jute.maxbuffer`, 1 MiB + 1 KiB)
/// and [`crate::logstore::MAX_ENTRY_BYTES`].
pub const MAX_PROPOSAL_BYTES: usize = 1 << 20;

impl Inner {
    /// Queues a request for the running role (store mode).
    pub(super) fn request(&self, make: impl FnOnce(Completion) -> ApiRequest, done: Completion) {
        let Some(tx) = &self.requests else {
            done.complete(Err(ReplicationError::NoReplicatedLog));
            return;
        };
        if self.closing.load(Ordering::SeqCst) {
            done.complete(Err(ReplicationError::Shutdown));
            return;
        }
        if let Err(e) = tx.send(make(done)) {
            e.into_inner().fail(ReplicationError::Shutdown);
            return;
        }
        // A shutdown that started meanwhile may have drained the queue
        // before this request arrived: drain again so it cannot wait forever.
        if self.closing.load(Ordering::SeqCst) {
            self.fail_queued();
        }
    }

    fn propose(&self, data: Bytes, done: Completion) {
        if data.len() > MAX_PROPOSAL_BYTES {
            done.complete(Err(ReplicationError::TooLarge {
                len: data.len(),
                max: MAX_PROPOSAL_BYTES,
            }));
            return;
        }
        self.request(|done| ApiRequest::Propose { data, done }, done);
    }
}

impl PeerHandle {
    /// Replicates `data` through Zab (store mode: a peer built with
    /// [`PeerBuilder::replicated_log`](super::PeerBuilder::replicated_log)).
    /// Resolves with the entry's zxid once a quorum of voters *including
    /// this leader* has it durable, it is committed, and this peer's state
    /// machine has applied it (so a read of the local state right after
    /// sees it). Call it on the leader; many calls may be in flight at once
    /// (they are pipelined, batched into group commits, and resolve in zxid
    /// order). The request is queued when `propose` is *called*, not when
    /// the future is first polled: calls made one after the other are
    /// proposed in that order, and their futures may be awaited in any
    /// order. Dropping the future does not withdraw the proposal.
    ///
    /// Errors say what happened: [`ReplicationError::NotLeader`] (with the
    /// leader's sid when known; nothing was proposed),
    /// [`ReplicationError::NotEstablished`] (leading, not yet synced; retry),
    /// [`ReplicationError::OutcomeUnknown`] (the term ended with the entry
    /// pending: the next leader decides whether it survives),
    /// [`ReplicationError::TooLarge`], [`ReplicationError::NoReplicatedLog`],
    /// [`ReplicationError::Shutdown`] (outcome unknown too if it was sent).
    /// Any executor: the future needs no tokio runtime.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use zkfle::logstore::{Entry, Snapshot};
    /// # #[derive(Default)] struct Count(u64);
    /// # impl zkfle::StateMachine for Count {
    /// #     fn apply(&mut self, e: &[Entry]) { self.0 += e.len() as u64; }
    /// #     fn snapshot(&mut self) -> bytes::Bytes { bytes::Bytes::new() }
    /// #     fn restore(&mut self, _: &Snapshot) {}
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let d = tempfile::tempdir()?;
    /// let peer = zkfle::PeerBuilder::new(1)
    ///     .server(1, "127.0.0.1:30281".parse()?, "127.0.0.1:30282".parse()?)
    ///     .data_dir(d.path())
    ///     .replicated_log(Count::default())
    ///     .start()?;
    /// peer.wait_until(|s| s.role.is_leader()).await?;
    /// let zxid = peer.propose(b"hello".to_vec()).await?;
    /// assert_eq!(zxid >> 32, peer.current_epoch());
    /// assert!(peer.applied_zxid() >= zxid);
    /// # peer.shutdown_async().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn propose(
        &self,
        data: impl Into<Bytes>,
    ) -> impl std::future::Future<Output = ReplicationResult> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner.propose(data.into(), Completion::Async(tx));
        async move { rx.await.unwrap_or(Err(ReplicationError::Shutdown)) }
    }

    /// [`PeerHandle::propose`] for synchronous code: blocks the calling
    /// thread until the result is known. Do not call it on an async
    /// executor's thread (use `propose` there).
    pub fn propose_blocking(&self, data: impl Into<Bytes>) -> ReplicationResult {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.inner.propose(data.into(), Completion::Blocking(tx));
        rx.recv().unwrap_or(Err(ReplicationError::Shutdown))
    }

    /// A linearizable read point on the leader (store mode). Resolves with
    /// the commit zxid `c` of the moment of the call once (1) a quorum of
    /// voters answered a PING this leader sent *after* the call, so no
    /// other leader can have committed anything newer meanwhile, and (2)
    /// this peer's state machine has applied everything up to `c`. Then
    /// read the local state: the read reflects every write acknowledged
    /// before `read_barrier` was called. Concurrent barriers share one PING
    /// round. With [`PeerBuilder::read_lease`](super::PeerBuilder::read_lease)
    /// the round is skipped while the lease holds. As with `propose`, the
    /// request is made when `read_barrier` is called: that call is the
    /// read's point in time.
    ///
    /// A leader cut off from its quorum never answers `Ok`: the barrier
    /// fails with [`ReplicationError::TermEnded`] when it steps down (after
    /// at most about `syncLimit + 1` ticks). On a follower:
    /// [`ReplicationError::NotLeader`] with the leader's sid.
    pub fn read_barrier(
        &self,
    ) -> impl std::future::Future<Output = ReplicationResult> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner
            .request(|done| ApiRequest::Barrier { done }, Completion::Async(tx));
        async move { rx.await.unwrap_or(Err(ReplicationError::Shutdown)) }
    }

    /// [`PeerHandle::read_barrier`] for synchronous code (blocks the
    /// calling thread).
    pub fn read_barrier_blocking(&self) -> ReplicationResult {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.inner.request(
            |done| ApiRequest::Barrier { done },
            Completion::Blocking(tx),
        );
        rx.recv().unwrap_or(Err(ReplicationError::Shutdown))
    }

    /// The zxid of the last entry this peer's state machine applied (or of
    /// the snapshot it was restored from); 0 without a replicated log.
    pub fn applied_zxid(&self) -> i64 {
        self.inner
            .opts
            .replica
            .as_ref()
            .map_or(0, |r| r.shared().applied_zxid())
    }

    /// While this peer leads (store mode): the instant it sent the newest
    /// PING round that a quorum of voters (itself included) answered. At
    /// that instant a quorum still followed it, and none of those
    /// followers gives up on it before `syncLimit × tickTime` later by its
    /// own clock, so no other leader can be established before roughly
    /// `quorum_confirmed_at + syncLimit × tickTime` (see [How stale can
    /// `is_leader()` be?](PeerHandle#how-stale-can-is_leader-be)). `None`
    /// when not leading, before the first answered round, and in a
    /// one-voter ensemble (no PINGs; the leader alone is the quorum).
    pub fn quorum_confirmed_at(&self) -> Option<Instant> {
        self.inner
            .opts
            .replica
            .as_ref()
            .and_then(|r| r.shared().quorum_confirmed_at())
    }

    /// With a [`read lease`](super::PeerBuilder::read_lease): the instant
    /// until which read barriers on this leader answer without a PING round
    /// (`quorum_confirmed_at + syncLimit × tickTime − margin`); `None`
    /// without a lease or when not leading.
    pub fn lease_until(&self) -> Option<Instant> {
        self.inner
            .opts
            .replica
            .as_ref()
            .and_then(|r| r.shared().lease_until())
    }
}
