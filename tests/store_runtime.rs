//! The replicated log on real sockets and real files: three in-process
//! peers (`PeerBuilder` with a `FileLog` each in a temporary directory),
//! proposals through the leader, delivery to every state machine, catch-up
//! by DIFF, TRUNC and SNAP, leader loss with proposals in flight, and group
//! commit. Ports 28000..=28599 (one base of 100 per test; below the ephemeral range 32768+ so no outgoing connection takes them).

#[path = "common/store.rs"]
mod store;

use std::time::{Duration, Instant};

use store::*;
use zkfle::ReplicationError;

const LONG: Duration = Duration::from_secs(30);

fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

#[test]
fn proposals_on_the_leader_are_applied_in_order_on_every_peer() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(28000, dir.path());
    let nodes = setup.start_all();
    let refs: Vec<&Node> = nodes.iter().collect();
    let l = await_leader(&refs, LONG);
    let leader = &nodes[l].handle;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // 200 proposals in flight at once: they resolve in submission order
    // with increasing zxids of the leader's epoch.
    let zxids: Vec<i64> = rt.block_on(async {
        let futs: Vec<_> = (0..200)
            .map(|i| leader.propose(format!("v{i}").into_bytes()))
            .collect();
        let mut out = Vec::new();
        for f in futs {
            out.push(f.await.expect("committed"));
        }
        out
    });
    assert!(zxids.windows(2).all(|w| w[0] < w[1]), "{zxids:x?}");
    assert!(zxids.iter().all(|z| z >> 32 == leader.current_epoch()));
    let last = *zxids.last().unwrap();
    // Resolved means applied here.
    assert!(leader.applied_zxid() >= last);
    assert_eq!(nodes[l].applied.last(), last);
    for n in &nodes {
        eventually("every peer applies every entry", LONG, || {
            (n.applied.last() == last).then_some(())
        });
        assert_eq!(n.applied.zxids(), zxids, "sid {}", n.sid);
        let data = n.applied.map();
        assert_eq!(&data[&zxids[7]][..], b"v7");
        assert!(n.applied.violations.lock().is_empty());
    }
    // Followers refuse, naming the leader.
    let f = (l + 1) % 3;
    assert_eq!(
        nodes[f].handle.propose_blocking(b"x".to_vec()),
        Err(ReplicationError::NotLeader {
            leader: Some(nodes[l].sid)
        })
    );
    assert_eq!(
        nodes[f].handle.read_barrier_blocking(),
        Err(ReplicationError::NotLeader {
            leader: Some(nodes[l].sid)
        })
    );
    // A read barrier is at least as new as every acknowledged write.
    let at = leader.read_barrier_blocking().expect("barrier");
    assert!(at >= last, "{at:#x} < {last:#x}");
    let started = Instant::now();
    let big = vec![0u8; zkfle::MAX_PROPOSAL_BYTES + 1];
    assert!(matches!(
        leader.propose_blocking(big),
        Err(ReplicationError::TooLarge { .. })
    ));
    assert!(started.elapsed() < LONG);
    for n in &nodes {
        n.handle.shutdown();
    }
    assert_eq!(
        leader.propose_blocking(b"late".to_vec()),
        Err(ReplicationError::Shutdown)
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `n` proposals queued at once on `node`; their results in call order.
fn propose_many(node: &Node, n: usize, tag: &str) -> Vec<Result<i64, ReplicationError>> {
    let futs: Vec<_> = (0..n)
        .map(|i| node.handle.propose(format!("{tag}{i}").into_bytes()))
        .collect();
    runtime().block_on(async {
        let mut out = Vec::new();
        for f in futs {
            out.push(f.await);
        }
        out
    })
}

fn all_ok(rs: Vec<Result<i64, ReplicationError>>) -> Vec<i64> {
    rs.into_iter().map(|r| r.expect("committed")).collect()
}

#[test]
fn group_commit_makes_pipelined_proposals_durable_in_few_appends() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(28100, dir.path());
    let nodes = setup.start_all();
    let refs: Vec<&Node> = nodes.iter().collect();
    let l = await_leader(&refs, LONG);
    const N: u64 = 2000;
    let zxids = all_ok(propose_many(&nodes[l], N as usize, "g"));
    assert!(zxids.windows(2).all(|w| w[0] < w[1]));
    let last = *zxids.last().unwrap();
    for n in &nodes {
        eventually("every peer applies every entry", LONG, || {
            (n.applied.last() == last).then_some(())
        });
    }
    for n in &nodes {
        let appends = n.appends.load(std::sync::atomic::Ordering::SeqCst);
        let entries = n.appended.load(std::sync::atomic::Ordering::SeqCst);
        eprintln!(
            "sid {}{}: {entries} entries in {appends} appends (fsync batches)",
            n.sid,
            if n.sid == nodes[l].sid {
                " (leader)"
            } else {
                ""
            }
        );
        assert_eq!(entries, N, "sid {}", n.sid);
        // One append is one fsync (FileLog). Pipelined proposals must share
        // them: at least ten entries per fsync on every peer.
        assert!(
            appends * 10 <= N,
            "sid {}: {appends} appends for {N} pipelined entries: no group commit",
            n.sid
        );
    }
}

#[test]
fn a_restarted_follower_catches_up_by_diff_from_its_own_log() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(28200, dir.path());
    let mut nodes: Vec<Option<Node>> = setup.start_all().into_iter().map(Some).collect();
    let refs: Vec<&Node> = nodes.iter().flatten().collect();
    let l = await_leader(&refs, LONG);
    let first = all_ok(propose_many(nodes[l].as_ref().unwrap(), 20, "a"));
    let f = (l + 1) % 3;
    let fsid = nodes[f].as_ref().unwrap().sid;
    eventually("the follower applies the first 20", LONG, || {
        (nodes[f].as_ref().unwrap().applied.last() == first[19]).then_some(())
    });
    let down = nodes[f].take().unwrap();
    down.handle.shutdown();
    drop(down);
    // Two of three still commit.
    let more = all_ok(propose_many(nodes[l].as_ref().unwrap(), 30, "b"));
    let back = setup.start(fsid);
    let last = *more.last().unwrap();
    eventually("the restarted follower catches up", LONG, || {
        (back.applied.last() == last).then_some(())
    });
    let want: Vec<i64> = first.iter().chain(&more).copied().collect();
    assert_eq!(back.applied.zxids(), want, "every entry, in order, once");
    assert_eq!(back.applied.map()[&more[3]], "b3".as_bytes());
    assert_eq!(
        back.applied
            .restores
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no snapshot: a DIFF"
    );
    // Only what it missed crossed the wire into its log.
    assert_eq!(back.appended.load(std::sync::atomic::Ordering::SeqCst), 30);
    assert!(back.applied.violations.lock().is_empty());
}

#[test]
fn a_follower_behind_the_compaction_point_is_synced_by_snap() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(28300, dir.path());
    setup.segment_bytes = Some(4096);
    setup.snapshot_every = 25;
    let mut nodes: Vec<Option<Node>> = setup.start_all().into_iter().map(Some).collect();
    let refs: Vec<&Node> = nodes.iter().flatten().collect();
    let l = await_leader(&refs, LONG);
    let first = all_ok(propose_many(nodes[l].as_ref().unwrap(), 10, "s"));
    let f = (l + 1) % 3;
    let fsid = nodes[f].as_ref().unwrap().sid;
    eventually("the follower applies the first 10", LONG, || {
        (nodes[f].as_ref().unwrap().applied.last() == first[9]).then_some(())
    });
    let down = nodes[f].take().unwrap();
    down.handle.shutdown();
    drop(down);
    // Enough entries (~100 bytes each) for many 4 KiB segments; the leader
    // snapshots every 25 applied entries and drops covered segments.
    let pad = "x".repeat(100);
    let mut more = Vec::new();
    for round in 0..6 {
        more.extend(all_ok(propose_many(
            nodes[l].as_ref().unwrap(),
            50,
            &format!("{pad}{round}-"),
        )));
    }
    let leader_applied = nodes[l].as_ref().unwrap().applied.clone();
    assert!(
        leader_applied
            .snapshots
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 3
    );
    let back = setup.start(fsid);
    let last = *more.last().unwrap();
    eventually("the restarted follower catches up", LONG, || {
        (back.applied.last() == last).then_some(())
    });
    assert!(
        back.applied
            .restores
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 1,
        "synced from the leader's snapshot (SNAP)"
    );
    assert_eq!(back.applied.zxids(), leader_applied.zxids());
    assert_eq!(back.applied.map(), leader_applied.map());
    assert!(
        back.appended.load(std::sync::atomic::Ordering::SeqCst) < 300,
        "the snapshot replaced most of the entries"
    );
    assert!(back.applied.violations.lock().is_empty());
}

#[test]
fn a_deposed_leaders_uncommitted_entries_are_truncated_when_it_rejoins() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(28400, dir.path());
    // Sid 3 and the others reach each other through proxies that can cut.
    setup.isolated = vec![3];
    let proxy = Partition::new(&setup);
    let mut nodes: Vec<Option<Node>> = led_by_3(&setup).into_iter().map(Some).collect();
    let refs: Vec<&Node> = nodes.iter().flatten().collect();
    let l = 2;
    let committed = all_ok(propose_many(refs[l], 5, "c"));
    for n in &refs {
        eventually("all apply the committed entries", LONG, || {
            (n.applied.last() == committed[4]).then_some(())
        });
    }
    // Partition the leader, then propose: its own log gets the entries,
    // nobody else does, nothing commits.
    proxy.cut();
    let old = nodes[2].take().unwrap();
    let pending: Vec<_> = (0..3)
        .map(|i| old.handle.propose(format!("lost{i}").into_bytes()))
        .collect();
    eventually("the deposed leader logs its proposals", LONG, || {
        (old.appended.load(std::sync::atomic::Ordering::SeqCst) == 8).then_some(())
    });
    old.handle.shutdown();
    let results: Vec<_> = runtime().block_on(async {
        let mut out = Vec::new();
        for p in pending {
            out.push(p.await);
        }
        out
    });
    for r in &results {
        assert!(
            matches!(
                r,
                Err(ReplicationError::OutcomeUnknown | ReplicationError::Shutdown)
            ),
            "never acknowledged: {r:?}"
        );
    }
    let old_applied = old.applied.clone();
    drop(old);
    assert_eq!(old_applied.last(), committed[4], "never applied");
    // The other two elect a leader of a new epoch and commit there.
    let rest: Vec<&Node> = nodes.iter().flatten().collect();
    let nl = await_leader(&rest, LONG);
    let newer = all_ok(propose_many(rest[nl], 4, "n"));
    assert!(newer[0] >> 32 > committed[0] >> 32, "a new epoch");
    proxy.heal();
    // The deposed leader restarts from its log (8 entries, 3 of them
    // never committed): it loses the election to the newer epoch, follows,
    // and is truncated to the new leader's history.
    let back = setup.start(3);
    let last = *newer.last().unwrap();
    eventually("the old leader catches up", LONG, || {
        (back.applied.last() == last).then_some(())
    });
    let want: Vec<i64> = committed.iter().chain(&newer).copied().collect();
    assert_eq!(back.applied.zxids(), want);
    assert_eq!(rest[nl].applied.zxids(), want);
    assert!(back.applied.violations.lock().is_empty());
    back.handle.shutdown();
    for n in nodes.iter().flatten() {
        n.handle.shutdown();
    }
    drop(back);
    // On disk: the uncommitted entries are gone from sid 3's log.
    let log = zkfle::logstore::FileLog::open(setup.data(3).join("log")).unwrap();
    let on_disk: Vec<i64> =
        zkfle::logstore::LogStore::read_after(&log, 0, zkfle::logstore::ReadLimit::UNLIMITED)
            .unwrap()
            .iter()
            .map(|e| e.zxid)
            .collect();
    assert_eq!(
        on_disk, want,
        "TRUNC removed the deposed leader's extra entries"
    );
}

#[test]
fn acknowledged_writes_survive_a_leader_shutdown_and_none_is_applied_twice() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(28500, dir.path());
    let mut nodes: Vec<Option<Node>> = setup.start_all().into_iter().map(Some).collect();
    let refs: Vec<&Node> = nodes.iter().flatten().collect();
    let l = await_leader(&refs, LONG);
    let leader = nodes[l].take().unwrap();
    let handle = leader.handle.clone();
    // A writer keeps 64 proposals in flight until the leader goes away.
    let writer = std::thread::spawn(move || {
        let rt = runtime();
        rt.block_on(async move {
            let mut acked: Vec<(i64, String)> = Vec::new();
            let mut failed = 0;
            let mut inflight = std::collections::VecDeque::new();
            let mut i = 0u64;
            loop {
                while inflight.len() < 64 && failed == 0 {
                    let v = format!("w{i}");
                    i += 1;
                    inflight.push_back((v.clone(), handle.propose(v.into_bytes())));
                }
                let Some((v, f)) = inflight.pop_front() else {
                    break;
                };
                match f.await {
                    Ok(z) => acked.push((z, v)),
                    Err(_) => failed += 1,
                }
            }
            (acked, failed)
        })
    });
    eventually("a few hundred writes acknowledged", LONG, || {
        (leader.applied.len() >= 300).then_some(())
    });
    leader.handle.shutdown();
    let (acked, failed) = writer.join().unwrap();
    eprintln!(
        "{} writes acknowledged before the leader stopped, {failed} failed",
        acked.len()
    );
    assert!(acked.len() >= 300);
    assert!(leader.applied.violations.lock().is_empty());
    let rest: Vec<&Node> = nodes.iter().flatten().collect();
    let nl = await_leader(&rest, LONG);
    // A write of the new term: its leader has applied its whole history.
    let z = rest[nl]
        .handle
        .propose_blocking(b"after".to_vec())
        .expect("the new leader commits");
    for n in &rest {
        eventually("both survivors apply the new term's write", LONG, || {
            (n.applied.last() >= z).then_some(())
        });
        let got = n.applied.map();
        for (zxid, v) in &acked {
            assert_eq!(
                got.get(zxid).map(|b| &b[..]),
                Some(v.as_bytes()),
                "sid {}: acknowledged write {zxid:#x} lost",
                n.sid
            );
        }
        assert!(
            n.applied.violations.lock().is_empty(),
            "sid {}: {:?}",
            n.sid,
            n.applied.violations.lock()
        );
        let zs = n.applied.zxids();
        assert!(
            zs.windows(2).all(|w| w[0] < w[1]),
            "applied once each, in order"
        );
    }
    assert_eq!(rest[0].applied.zxids(), rest[1].applied.zxids());
    // And durably: each survivor's log holds every acknowledged write.
    let sids: Vec<i64> = rest.iter().map(|n| n.sid).collect();
    for n in nodes.iter().flatten() {
        n.handle.shutdown();
    }
    drop(nodes);
    for sid in sids {
        let log = zkfle::logstore::FileLog::open(setup.data(sid).join("log")).unwrap();
        let on_disk: std::collections::BTreeMap<i64, bytes::Bytes> =
            zkfle::logstore::LogStore::read_after(&log, 0, zkfle::logstore::ReadLimit::UNLIMITED)
                .unwrap()
                .into_iter()
                .map(|e| (e.zxid, e.data))
                .collect();
        for (zxid, v) in &acked {
            assert_eq!(
                on_disk.get(zxid).map(|b| &b[..]),
                Some(v.as_bytes()),
                "sid {sid}: acknowledged write {zxid:#x} not in its log"
            );
        }
    }
}

/// Starts sid 3 first (it leads), on one side of a partition that can be
/// cut (quorum and election ports, both ways).
fn partitionable(setup: &mut Setup) -> (Partition, Vec<Node>) {
    setup.isolated = vec![3];
    let proxy = Partition::new(setup);
    (proxy, led_by_3(setup))
}

/// Sids 1, 2, 3 (in that order) with sid 3 leading: it starts with sid 1
/// (equal logs: the larger sid wins), sid 2 joins them.
fn led_by_3(setup: &Setup) -> Vec<Node> {
    let n3 = setup.start(3);
    let n1 = setup.start(1);
    let l = await_leader(&[&n1, &n3], LONG);
    assert_eq!(l, 1, "equal logs: the largest sid leads");
    let n2 = setup.start(2);
    let nodes = vec![n1, n2, n3];
    let refs: Vec<&Node> = nodes.iter().collect();
    assert_eq!(await_leader(&refs, LONG), 2);
    nodes
}

/// Polls until `node` serves as leader; the instant it was first seen.
fn leads_at(nodes: &[&Node], timeout: Duration) -> (usize, Instant) {
    let end = Instant::now() + timeout;
    loop {
        if let Some(i) = nodes.iter().position(|n| n.handle.is_leader()) {
            return (i, Instant::now());
        }
        assert!(Instant::now() < end, "no new leader within {timeout:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_partitioned_leader_never_answers_a_read_barrier_and_steps_down_within_sync_limit_plus_one_ticks(
) {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(28600, dir.path());
    setup.sync_limit = 3;
    let (proxy, nodes) = partitionable(&mut setup);
    let old = &nodes[2];
    let before = all_ok(propose_many(old, 10, "p"));
    let at = old
        .handle
        .read_barrier_blocking()
        .expect("a barrier with the quorum");
    assert!(at >= before[9]);
    // Wait for a fresh quorum confirmation, then cut.
    let seen = old.handle.quorum_confirmed_at().expect("confirmed");
    eventually("a newer PING round answered", LONG, || {
        (old.handle.quorum_confirmed_at() > Some(seen)).then_some(())
    });
    let cut = Instant::now();
    proxy.cut();
    let confirmed = old.handle.quorum_confirmed_at().expect("confirmed");
    assert!(confirmed <= cut);
    // Asked after the partition: no quorum can answer a PING sent after it.
    let barrier = old.handle.read_barrier();
    // The majority elects a new leader and commits a newer write.
    let rest = [&nodes[0], &nodes[1]];
    let (nl, _) = leads_at(&rest, LONG);
    let newer = rest[nl]
        .handle
        .propose_blocking(b"newer".to_vec())
        .expect("the majority commits");
    let r = runtime().block_on(barrier);
    assert!(
        matches!(
            r,
            Err(ReplicationError::TermEnded | ReplicationError::NotLeader { .. })
        ),
        "a stale leader must not confirm a read: {r:?} (the majority committed {newer:#x})"
    );
    // How long `is_leader()` stayed true: the leader checks its quorum
    // every tick, counting followers heard from within syncLimit ticks.
    let stopped = eventually("the old leader steps down", LONG, || {
        (!old.handle.is_leader()).then(Instant::now)
    });
    let stale = stopped - cut;
    let bound = setup.tick * (setup.sync_limit + 1);
    eprintln!(
        "is_leader() stayed true {stale:?} after the partition (bound {bound:?}, syncLimit {} × tick {:?}; last quorum confirmation {:?} before the cut)",
        setup.sync_limit,
        setup.tick,
        cut - confirmed
    );
    assert!(
        stale < bound + Duration::from_millis(250),
        "{stale:?} exceeds (syncLimit + 1) ticks = {bound:?} (+ scheduling slack)"
    );
    assert!(
        stale >= setup.tick * setup.sync_limit - (cut - confirmed).min(setup.tick),
        "{stale:?}: a leader waits syncLimit ticks of silence before it gives up"
    );
    assert_eq!(old.handle.quorum_confirmed_at(), None, "no longer leading");
}

#[test]
fn a_read_lease_answers_only_while_no_other_leader_can_exist() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(28700, dir.path());
    setup.sync_limit = 5;
    setup.lease_margin = Some(Duration::from_millis(100));
    let (proxy, nodes) = partitionable(&mut setup);
    let old = &nodes[2];
    let w = all_ok(propose_many(old, 5, "l"));
    let seen = old.handle.quorum_confirmed_at().expect("confirmed");
    eventually("a newer PING round answered", LONG, || {
        (old.handle.quorum_confirmed_at() > Some(seen)).then_some(())
    });
    proxy.cut();
    let lease_until = old.handle.lease_until().expect("a lease while leading");
    let confirmed = old.handle.quorum_confirmed_at().unwrap();
    assert_eq!(lease_until, confirmed + Duration::from_millis(400));
    // Inside the lease: answered without a PING round (none could succeed).
    if Instant::now() < lease_until {
        let r = old.handle.read_barrier_blocking();
        assert!(
            Instant::now() < lease_until + Duration::from_millis(50),
            "answered within the lease"
        );
        assert_eq!(r, Ok(w[4]), "the lease answers with the commit point");
    }
    let rest = [&nodes[0], &nodes[1]];
    let (nl, serving_at) = leads_at(&rest, LONG);
    eprintln!(
        "old leader's lease ended {:?} before the new leader served",
        serving_at.saturating_duration_since(lease_until)
    );
    assert!(
        serving_at > lease_until,
        "a new leader served inside the old leader's lease"
    );
    rest[nl].handle.propose_blocking(b"newer".to_vec()).unwrap();
    // After the lease a barrier needs a quorum again, and fails.
    while Instant::now() <= lease_until {
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = old.handle.read_barrier_blocking();
    assert!(
        matches!(
            r,
            Err(ReplicationError::TermEnded | ReplicationError::NotLeader { .. })
        ),
        "{r:?}"
    );
}

#[test]
fn an_observer_applies_every_committed_entry_and_refuses_proposals() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(28800, dir.path());
    setup.n = 4;
    setup.observers = vec![4];
    let nodes = setup.start_all();
    let voters: Vec<&Node> = nodes[..3].iter().collect();
    let l = await_leader(&voters, LONG);
    let observer = &nodes[3];
    eventually("the observer serves", LONG, || {
        matches!(observer.handle.role(), zkfle::Role::Observing { .. }).then_some(())
    });
    let zxids = all_ok(propose_many(&nodes[l], 100, "o"));
    let last = *zxids.last().unwrap();
    eventually("the observer applies every entry", LONG, || {
        (observer.applied.last() == last).then_some(())
    });
    assert_eq!(observer.applied.zxids(), zxids);
    assert!(observer.applied.violations.lock().is_empty());
    assert_eq!(
        observer.handle.propose_blocking(b"x".to_vec()),
        Err(ReplicationError::NotLeader {
            leader: Some(nodes[l].sid)
        })
    );
}

#[test]
fn restart_election_keeps_the_store_and_the_state_machine() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(28950, dir.path());
    let nodes = setup.start_all();
    let refs: Vec<&Node> = nodes.iter().collect();
    let l = await_leader(&refs, LONG);
    let first = all_ok(propose_many(&nodes[l], 10, "r"));
    let f = (l + 1) % 3;
    eventually("the follower applies the first writes", LONG, || {
        (nodes[f].applied.last() == first[9]).then_some(())
    });
    // A new peer instance over the same store and state machine.
    nodes[f].handle.restart_election().unwrap();
    let l = await_leader(&refs, LONG);
    let more = all_ok(propose_many(&nodes[l], 10, "s"));
    for n in &nodes {
        eventually("everyone applies the later writes", LONG, || {
            (n.applied.last() == more[9]).then_some(())
        });
        let want: Vec<i64> = first.iter().chain(&more).copied().collect();
        assert_eq!(
            n.applied.zxids(),
            want,
            "sid {}: once each, in order",
            n.sid
        );
        assert!(n.applied.violations.lock().is_empty());
    }
}
