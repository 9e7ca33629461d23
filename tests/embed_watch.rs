//! `PeerHandle::watch()` and the async waits on in-process ensembles: the
//! channel follows a failover as the peer's own threads publish it, agrees
//! with `subscribe()`, reports a leader losing its quorum, and closes at
//! shutdown. Every wait is on the watch channel. Ports 32100..=32199.

#[path = "common/embed.rs"]
mod embed;

use std::path::Path;
use std::time::Duration;

use embed::*;
use zkfle::{Event, PeerBuilder, PeerHandle, Role, ZkfleError};

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

/// `f`, or a panic naming `what` after `T`: a broken publication fails
/// the test instead of hanging it.
async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(T, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {T:?} waiting for {what}"))
}

async fn in_service(p: &PeerHandle) -> Role {
    p.wait_until_timeout(|s| s.role != Role::Looking, T)
        .await
        .unwrap_or_else(|e| panic!("sid {} never got a role: {e}", p.my_sid()))
        .role
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_channel_follows_a_failover_and_agrees_with_subscribe() {
    let dir = tempfile::tempdir().unwrap();
    let peers = start3(32100, dir.path());
    for p in &peers {
        in_service(p).await;
    }
    let old = peers.iter().find(|p| p.is_leader()).expect("a leader");
    let old_sid = old.my_sid();
    let old_epoch = old.current_epoch();
    let follower = peers.iter().find(|p| !p.is_leader()).unwrap();
    assert_eq!(
        follower.leader().map(|l| (l.sid, l.epoch)),
        Some((old_sid, old_epoch))
    );
    follower
        .wait_until_timeout(|s| s.connected_peers.len() == 2, T)
        .await
        .unwrap();
    let mut states = follower.watch();
    assert_eq!(
        *states.borrow(),
        follower.state(),
        "starts at the state now"
    );
    let events = follower.subscribe();
    let mut old_states = old.watch();

    old.shutdown_async().await;
    // The stopped peer's channel ends with Looking, then closes.
    within("the stopped peer's channel to close", async {
        while old_states.changed().await.is_ok() {}
    })
    .await;
    assert_eq!(old_states.borrow().role, Role::Looking);

    // The follower's channel: a new leader of a later epoch, and the old
    // leader's election link gone.
    let s = within(
        "a later epoch without the old leader's link",
        states.wait_for(|s| {
            s.role.epoch() > Some(old_epoch) && !s.connected_peers.contains(&old_sid)
        }),
    )
    .await
    .unwrap()
    .clone();
    let new_leader = follower.leader().expect("in service").sid;
    assert_ne!(new_leader, old_sid);
    assert!(matches!(
        s.role,
        Role::Leading { .. } | Role::Following { .. }
    ));
    assert_eq!(s, follower.state(), "watch and state() agree");

    // subscribe() saw every step, in order, from the same source.
    let seen: Vec<Event> = events.try_iter().collect();
    let pos = |e: &Event| seen.iter().position(|x| x == e);
    let first = pos(&Event::Role(Role::Following {
        leader: old_sid,
        epoch: old_epoch,
    }));
    let looking = pos(&Event::Role(Role::Looking));
    let last = pos(&Event::Role(s.role));
    assert_eq!(first, Some(0), "the current role first: {seen:?}");
    assert!(
        looking > first && last > looking,
        "Following(old) < Looking < new role: {seen:?}"
    );
    assert!(seen.contains(&Event::PeerDown(old_sid)), "{seen:?}");
    for p in &peers {
        p.shutdown_async().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_its_quorum_is_looking_on_the_watch_channel() {
    let dir = tempfile::tempdir().unwrap();
    let peers = start3(32130, dir.path());
    for p in &peers {
        in_service(p).await;
    }
    let leader = peers.iter().find(|p| p.is_leader()).expect("a leader");
    let mut states = leader.watch();
    for p in peers.iter().filter(|p| !p.is_leader()) {
        p.shutdown_async().await;
    }
    // The peer keeps running; only its role goes.
    within(
        "Looking with no links",
        states.wait_for(|s| s.role == Role::Looking && s.connected_peers.is_empty()),
    )
    .await
    .expect("the peer still runs: the channel stays open");
    assert!(!leader.is_leader());
    let r = leader
        .wait_until_timeout(|s| s.role.is_leader(), Duration::from_millis(300))
        .await;
    assert!(
        matches!(r, Err(ZkfleError::Timeout { ref last, .. }) if last.role == Role::Looking),
        "{r:?}"
    );
    leader.shutdown_async().await;
    assert!(matches!(
        leader.wait_until(|_| false).await,
        Err(ZkfleError::Shutdown)
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn restart_election_shows_on_the_watch_channel_and_counts_elections() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 32160 };
    let p = PeerBuilder::new(1)
        .tick_time(Duration::from_millis(100))
        .server(1, ports.quorum(1), ports.election(1))
        .data_dir(dir.path())
        .start()
        .unwrap();
    let first = p
        .wait_until_timeout(|s| s.role.is_leader(), T)
        .await
        .unwrap();
    assert_eq!(first.election_count, 1);
    let events = p.subscribe();
    // restart_election blocks while the peer restarts: off the executor.
    let p2 = p.clone();
    tokio::task::spawn_blocking(move || p2.restart_election())
        .await
        .unwrap()
        .unwrap();
    let second = p
        .wait_until_timeout(|s| s.role.is_leader() && s.election_count == 2, T)
        .await
        .unwrap();
    assert!(
        second.role.epoch() > first.role.epoch(),
        "a new leadership: {first:?} then {second:?}"
    );
    let seen: Vec<Event> = events.try_iter().collect();
    assert_eq!(
        seen,
        vec![
            Event::Role(first.role),
            Event::Role(Role::Looking),
            Event::Role(second.role)
        ]
    );
    p.shutdown_async().await;
}
