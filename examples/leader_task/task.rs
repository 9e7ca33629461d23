//! The leader task itself: one job that runs on whichever peer leads, only
//! while it leads, with every side effect stamped with the leadership's
//! epoch. Used by `examples/leader_task.rs` and by `tests/leader_task.rs`.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use zkfle::{PeerHandle, Role};

/// One side effect of the job, stamped with the epoch (the fencing token)
/// of the leadership it ran under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The peer that ran the job.
    pub sid: i64,
    /// The epoch it led.
    pub epoch: i64,
    /// The job's run number within that leadership, from 1.
    pub run: u64,
}

/// What the resource the job acts on saw, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// A side effect it took.
    Accepted(Stamp),
    /// A side effect it refused: its epoch is older than one it took.
    Refused(Stamp),
    /// The job of `sid` for `epoch` has stopped (and will add nothing).
    Stopped { sid: i64, epoch: i64 },
}

/// The resource the job acts on. It makes the check a real one makes (a
/// conditional write on an epoch column, an object store's precondition):
/// a side effect stamped with an epoch older than the newest it took is
/// refused. `is_leader()` alone is no such guard: a leader cut off from its
/// quorum keeps it for up to about `syncLimit + 1` ticks.
#[derive(Debug, Default)]
pub struct FencedResource {
    newest: i64,
    log: Vec<Entry>,
}

impl FencedResource {
    /// Takes `s` unless it is fenced off; true if taken.
    pub fn apply(&mut self, s: Stamp) -> bool {
        if s.epoch < self.newest {
            self.log.push(Entry::Refused(s));
            return false;
        }
        self.newest = s.epoch;
        self.log.push(Entry::Accepted(s));
        true
    }

    /// Everything seen so far, in order.
    pub fn log(&self) -> &[Entry] {
        &self.log
    }
}

/// Shared by the jobs of every peer (in one process, as in the test; across
/// processes it would be a database or a store).
pub type Resource = Arc<Mutex<FencedResource>>;

/// Runs the job on `peer` from the moment it leads until the moment it does
/// not, as often as it leads again; returns once the peer shuts down.
pub async fn lead_singleton(peer: PeerHandle, resource: Resource, period: Duration) {
    let sid = peer.my_sid();
    let mut states = peer.watch();
    loop {
        // Wait to lead. The channel closes when the peer shuts down.
        let epoch = match states.wait_for(|s| s.role.is_leader()).await {
            Ok(s) => s.role.epoch(),
            Err(_) => return,
        };
        let Some(epoch) = epoch else { continue };
        log::info!("sid {sid}: leading epoch {epoch}: job starts");
        let job = tokio::spawn(job(sid, epoch, resource.clone(), period));
        // This leadership ends when the role is anything else: Looking, or
        // Leading a later epoch after a quick re-election (the watch
        // channel keeps only the newest state).
        let _ = states.wait_for(|s| s.role != Role::Leading { epoch }).await;
        job.abort();
        let _ = job.await;
        resource.lock().log.push(Entry::Stopped { sid, epoch });
        log::info!("sid {sid}: no longer leading epoch {epoch}: job stopped");
    }
}

/// The singleton job: every `period`, one side effect stamped with `epoch`.
async fn job(sid: i64, epoch: i64, resource: Resource, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    for run in 1.. {
        ticks.tick().await;
        let stamp = Stamp { sid, epoch, run };
        if !resource.lock().apply(stamp) {
            log::warn!("sid {sid}: epoch {epoch} is fenced off; job ends");
            return;
        }
        log::info!("sid {sid}: run {run} in epoch {epoch}");
    }
}
