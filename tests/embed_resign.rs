//! `PeerHandle::resign` and the preferred leader, on in-process store-mode
//! ensembles (tick 100 ms): who leads next, that the resigned peer stays
//! out for its hold-off, that no committed entry is lost, and, for the
//! staleness contract, what `quorum_confirmed_at` says on a leader whose
//! followers stopped. The times printed are measurements for BENCHMARKS.md,
//! not thresholds. Ports 15100–15499.

#[path = "common/store.rs"]
mod store;

use std::time::{Duration, Instant};

use store::*;
use zkfle::{Event, Role, ZkfleError};

const LONG: Duration = Duration::from_secs(30);

fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// Proposes `n` entries through `node`; their committed zxids.
fn commit(node: &Node, n: usize, tag: &str) -> Vec<i64> {
    (0..n)
        .map(|i| {
            node.handle
                .propose_blocking(format!("{tag}{i}").into_bytes())
                .expect("committed")
        })
        .collect()
}

/// Waits until some node other than those in `not` leads with every node
/// of `nodes` serving; its index and when that was seen.
fn new_leader(nodes: &[&Node], not: &[i64]) -> (usize, Instant) {
    eventually("a new serving leader", LONG, || {
        leader_of(nodes)
            .filter(|&i| !not.contains(&nodes[i].sid))
            .map(|i| (i, Instant::now()))
    })
}

/// Every `Role::Leading` a subscription saw so far.
fn leading_events(events: &crossbeam_channel::Receiver<Event>) -> usize {
    events
        .try_iter()
        .filter(|e| matches!(e, Event::Role(Role::Leading { .. })))
        .count()
}

#[test]
fn a_resigned_leader_hands_over_keeps_out_for_its_hold_off_and_loses_nothing() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(15100, dir.path());
    let nodes = setup.start_all();
    let all: Vec<&Node> = nodes.iter().collect();
    let first = &nodes[await_leader(&all, LONG)];
    let committed = commit(first, 20, "a");

    // Not the leader: refused.
    let follower = nodes.iter().find(|n| n.sid != first.sid).unwrap();
    assert!(matches!(
        follower.handle.resign(Duration::from_secs(1)),
        Err(ZkfleError::NotLeader)
    ));

    let t0 = Instant::now();
    first
        .handle
        .resign(Duration::from_secs(8))
        .expect("resigns");
    let left = t0.elapsed();
    assert!(!first.handle.is_leader());
    // From now on (a subscription starts with the current role).
    let first_events = first.handle.subscribe();
    let (i, at) = new_leader(&all, &[first.sid]);
    let second = all[i];
    eprintln!(
        "resign: sid {} left in {left:?}; sid {} leads with every peer serving {:?} after the call",
        first.sid,
        second.sid,
        at - t0
    );
    // Nothing committed is lost, and the new leader commits after it.
    let newer = commit(second, 1, "b")[0];
    assert!(newer > *committed.last().unwrap());
    for n in &nodes {
        eventually("every peer applies every entry", LONG, || {
            (n.applied.last() >= newer).then_some(())
        });
        let applied = n.applied.zxids();
        for z in &committed {
            assert!(applied.contains(z), "sid {} lost {z:#x}", n.sid);
        }
        assert!(n.applied.violations.lock().is_empty());
    }

    // The second leader resigns too, within the first one's hold-off: the
    // third peer must win, never the first.
    second
        .handle
        .resign(Duration::from_secs(8))
        .expect("resigns");
    let (k, _) = new_leader(&all, &[first.sid, second.sid]);
    let third = all[k];
    commit(third, 1, "c");

    // The third resigns briefly while both others are held off: nobody can
    // be elected until its own hold-off ends, then it leads again.
    let t1 = Instant::now();
    third
        .handle
        .resign(Duration::from_millis(300))
        .expect("resigns");
    let (j, again) = new_leader(&all, &[]);
    assert_eq!(all[j].sid, third.sid, "only the peer whose hold-off ended");
    eprintln!(
        "resign with every other peer held off: sid {} leads again {:?} after a 300 ms hold-off",
        third.sid,
        again - t1
    );
    assert_eq!(
        leading_events(&first_events),
        0,
        "sid {} led during its hold-off",
        first.sid
    );
    commit(third, 1, "d");
}

#[test]
fn resign_in_a_tokio_program() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(15200, dir.path());
    let nodes = setup.start_all();
    let all: Vec<&Node> = nodes.iter().collect();
    let leader = &nodes[await_leader(&all, LONG)];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        leader
            .handle
            .resign_async(Duration::from_secs(5))
            .await
            .expect("resigns");
        assert!(!leader.handle.is_leader());
        let other = nodes.iter().find(|n| n.sid != leader.sid).unwrap();
        let old = leader.sid;
        let s = other
            .handle
            .wait_until(|s| match s.role {
                Role::Leading { .. } => true,
                Role::Following { leader, .. } => leader != old,
                _ => false,
            })
            .await
            .expect("a new leader");
        assert_ne!(s.role, Role::Looking);
    });
    new_leader(&all, &[leader.sid]);
}

#[test]
fn leadership_moves_to_the_preferred_leader_once_it_is_synced() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(15300, dir.path());
    // Sid 1 loses every tie of ZooKeeper's order (the largest sid wins).
    setup.preferred_leader = Some(1);
    let two = setup.start(2);
    let three = setup.start(3);
    let pair = [&two, &three];
    let (i, _) = new_leader(&pair, &[]);
    let before = commit(pair[i], 10, "p");
    assert_ne!(pair[i].sid, 1);

    let t0 = Instant::now();
    let one = setup.start(1);
    let all = [&one, &two, &three];
    let (l, at) = new_leader(&all, &[2, 3]);
    assert_eq!(all[l].sid, 1);
    eprintln!(
        "preferred leader: sid 1 started, synced and leads with every peer serving {:?} later",
        at - t0
    );
    let after = commit(&one, 5, "q");
    assert!(after[0] > *before.last().unwrap());
    for n in all {
        eventually("every peer applies every entry", LONG, || {
            (n.applied.last() >= after[4]).then_some(())
        });
        let applied = n.applied.zxids();
        for z in before.iter().chain(&after) {
            assert!(applied.contains(z), "sid {} lost {z:#x}", n.sid);
        }
    }
    // It stays: the preferred leader never hands off.
    assert_eq!(leader_of(&all), Some(0));
    assert_eq!(one.handle.leader().map(|x| x.sid), Some(1));
}

#[test]
fn a_leader_whose_followers_stopped_stops_confirming_its_quorum_and_steps_down() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(15400, dir.path());
    setup.sync_limit = 3;
    let nodes = setup.start_all();
    let all: Vec<&Node> = nodes.iter().collect();
    let leader = &nodes[await_leader(&all, LONG)];
    commit(leader, 3, "s");
    let seen = eventually("a PING round answered by a quorum", LONG, || {
        leader.handle.quorum_confirmed_at()
    });
    eventually("a newer PING round answered", LONG, || {
        (leader.handle.quorum_confirmed_at() > Some(seen)).then_some(())
    });
    let mut states = leader.handle.subscribe();
    let stopped = Instant::now();
    for n in nodes.iter().filter(|n| n.sid != leader.sid) {
        n.handle.shutdown();
    }
    let gone = Instant::now();
    // While it still says it leads, its confirmation never moves past the
    // moment its followers went away.
    let mut last = None;
    let not_leading = eventually("the leader steps down", LONG, || {
        let c = leader.handle.quorum_confirmed_at();
        if leader.handle.is_leader() {
            if let Some(c) = c {
                assert!(c <= gone, "a quorum confirmed after its followers stopped");
                last = Some(c);
            }
            None
        } else {
            Some(Instant::now())
        }
    });
    assert_eq!(leader.handle.quorum_confirmed_at(), None, "not leading");
    assert!(leader.handle.lease_until().is_none());
    let last = last.expect("a confirmation while leading");
    eprintln!(
        "followers stopped in-process (syncLimit {} × tick {:?}): is_leader() true {:?} after the stop, {:?} after the last quorum confirmation",
        setup.sync_limit,
        setup.tick,
        not_leading - stopped,
        not_leading - last
    );
    // The subscription saw it leave.
    let left = states
        .try_iter()
        .any(|e| matches!(e, Event::Role(Role::Looking)));
    assert!(left, "a Role(Looking) event");
    let _ = &mut states;
}

/// Not a test: the hand-over times BENCHMARKS.md reports. 30 resignations
/// in a row on a 3-peer store-mode ensemble (tick 100 ms, hold-off 200 ms,
/// 250 ms apart so that no earlier hold-off still runs), each timed from
/// the call to a different leader serving with every peer serving. Run:
/// `cargo test --release --test embed_resign -- --ignored --nocapture
/// --test-threads 1`.
#[test]
#[ignore]
fn measure_resign_handover() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(15450, dir.path());
    let nodes = setup.start_all();
    let all: Vec<&Node> = nodes.iter().collect();
    let mut leader = await_leader(&all, LONG);
    let mut times = Vec::new();
    for i in 0..30 {
        // Past the previous resigners' hold-offs: with every other peer
        // held off nobody could be elected, which is not what this times.
        std::thread::sleep(Duration::from_millis(250));
        commit(all[leader], 1, &format!("m{i}"));
        let t0 = Instant::now();
        all[leader]
            .handle
            .resign(Duration::from_millis(200))
            .expect("resigns");
        let (next, at) = new_leader(&all, &[all[leader].sid]);
        eprintln!(
            "iteration {i}: sid {} resigned, sid {} serving after {:?}",
            all[leader].sid,
            all[next].sid,
            at - t0
        );
        times.push(at - t0);
        leader = next;
    }
    times.sort();
    eprintln!(
        "resign -> new leader serving, {} runs: min {:?} median {:?} p90 {:?} max {:?}",
        times.len(),
        times[0],
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        times[times.len() - 1]
    );
}
