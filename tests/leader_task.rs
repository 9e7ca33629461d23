//! `examples/leader_task.rs` on three in-process peers sharing one fenced
//! resource: the job runs on the leader only, moves to the new leader (in a
//! higher epoch) when the leader's peer stops, stops on a leader that loses
//! its quorum while its peer keeps running, and the resource never takes two
//! peers' side effects in one epoch or an epoch older than one it took.
//! Ports 32200..=32299.

#[path = "common/embed.rs"]
mod embed;
#[path = "../examples/leader_task/task.rs"]
mod task;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use embed::Ports;
use parking_lot::Mutex;
use task::{Entry, FencedResource, Resource, Stamp};
use zkfle::{PeerBuilder, PeerHandle, Role};

const T: Duration = Duration::from_secs(30);

fn start3(base: u16, dir: &Path) -> Vec<PeerHandle> {
    let ports = Ports { base };
    (1..=3)
        .map(|sid| {
            let mut b = PeerBuilder::new(sid)
                .tick_time(Duration::from_millis(100))
                .limits(20, 10)
                .data_dir(dir.join(format!("node{sid}")));
            for s in 1..=3 {
                b = b.server(s, ports.quorum(s), ports.election(s));
            }
            b.start().unwrap()
        })
        .collect()
}

/// Checks the resource's log every 10 ms until `pred` holds for it.
async fn resource_shows(r: &Resource, what: &str, pred: impl Fn(&[Entry]) -> bool) {
    let deadline = Instant::now() + T;
    while !pred(r.lock().log()) {
        if Instant::now() >= deadline {
            let log = r.lock().log().to_vec();
            let tail = &log[log.len().saturating_sub(10)..];
            panic!(
                "timed out waiting for {what}; {} entries, the last: {tail:?}",
                log.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn accepted(log: &[Entry]) -> Vec<Stamp> {
    log.iter()
        .filter_map(|e| match e {
            Entry::Accepted(s) => Some(*s),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_follows_leadership_and_its_epoch_rises() {
    let dir = tempfile::tempdir().unwrap();
    let peers = start3(32200, dir.path());
    let resource: Resource = Arc::new(Mutex::new(FencedResource::default()));
    let tasks: Vec<_> = peers
        .iter()
        .map(|p| {
            tokio::spawn(task::lead_singleton(
                p.clone(),
                resource.clone(),
                Duration::from_millis(20),
            ))
        })
        .collect();

    // The first leader runs the job.
    let mut first = None;
    for (i, p) in peers.iter().enumerate() {
        let s = p
            .wait_until_timeout(|s| s.role != Role::Looking, T)
            .await
            .unwrap();
        if let Role::Leading { epoch } = s.role {
            first = Some((i, p.my_sid(), epoch));
        }
    }
    let (old_i, old_sid, e1) = first.expect("a leader");
    resource_shows(&resource, "three runs of the first leader", |log| {
        accepted(log).iter().filter(|s| s.sid == old_sid).count() >= 3
    })
    .await;

    // Its peer stops: its scheduler returns, the job moves in a later epoch.
    peers[old_i].shutdown_async().await;
    tokio::time::timeout(T, tasks.into_iter().nth(old_i).unwrap())
        .await
        .expect("the stopped peer's scheduler returns")
        .unwrap();
    resource_shows(&resource, "three runs in a later epoch", |log| {
        accepted(log).iter().filter(|s| s.epoch > e1).count() >= 3
    })
    .await;
    let (new_i, new_sid, e2) = {
        let log = resource.lock();
        let s = *accepted(log.log()).last().unwrap();
        (
            peers.iter().position(|p| p.my_sid() == s.sid).unwrap(),
            s.sid,
            s.epoch,
        )
    };
    assert_ne!(new_sid, old_sid);
    assert!(e2 > e1, "epoch {e2} after {e1}");
    assert_eq!(peers[new_i].role(), Role::Leading { epoch: e2 });

    // The new leader loses its quorum (the last follower stops) while its
    // own peer keeps running: its job stops.
    let last = (0..3).find(|&i| i != old_i && i != new_i).unwrap();
    peers[last].shutdown_async().await;
    peers[new_i]
        .wait_until_timeout(|s| s.role == Role::Looking, T)
        .await
        .unwrap();
    resource_shows(&resource, "the new leader's job stopping", |log| {
        log.contains(&Entry::Stopped {
            sid: new_sid,
            epoch: e2,
        })
    })
    .await;
    peers[new_i].shutdown_async().await;

    // The resource's history: one peer per epoch, epochs never going back,
    // nothing refused (every job stopped before a later epoch began acting
    // or was fenced), nothing from a job after it stopped.
    let log = resource.lock().log().to_vec();
    let taken = accepted(&log);
    for w in taken.windows(2) {
        assert!(w[0].epoch <= w[1].epoch, "epoch went back: {w:?}");
        if w[0].epoch == w[1].epoch {
            assert_eq!(w[0].sid, w[1].sid, "two jobs in one epoch: {w:?}");
        }
    }
    assert!(
        !log.iter().any(|e| matches!(e, Entry::Refused(_))),
        "{log:?}"
    );
    for (i, e) in log.iter().enumerate() {
        if let Entry::Stopped { sid, epoch } = *e {
            assert!(
                !log[i..]
                    .iter()
                    .any(|x| matches!(x, Entry::Accepted(s) if s.sid == sid && s.epoch == epoch)),
                "sid {sid}'s job acted after it stopped in epoch {epoch}: {log:?}"
            );
        }
    }
    assert!(log.contains(&Entry::Stopped {
        sid: old_sid,
        epoch: e1
    }));
}

#[test]
fn the_resource_refuses_a_side_effect_of_an_older_epoch() {
    let mut r = FencedResource::default();
    assert!(r.apply(Stamp {
        sid: 3,
        epoch: 1,
        run: 1
    }));
    assert!(r.apply(Stamp {
        sid: 2,
        epoch: 2,
        run: 1
    }));
    // A deposed leader that has not noticed yet.
    let stale = Stamp {
        sid: 3,
        epoch: 1,
        run: 2,
    };
    assert!(!r.apply(stale));
    assert_eq!(r.log().last(), Some(&Entry::Refused(stale)));
}
