//! The embedding API end to end: peers built in code, the supplied zxid in
//! the vote, role and link events, `wait_for`, `restart_election`, typed
//! errors. Ports 31000..=31099.

#[path = "common/embed.rs"]
mod embed;

use std::path::Path;
use std::time::Duration;

use embed::*;
use zkfle::{Event, PeerBuilder, PeerHandle, Role, ZkfleError};

const T: Duration = Duration::from_secs(30);

fn builder(sid: i64, ports: Ports, dir: &Path, zxid: i64) -> PeerBuilder {
    let mut b = PeerBuilder::new(sid)
        .tick_time(Duration::from_millis(100))
        .limits(20, 10)
        .data_dir(dir.join(format!("node{sid}")))
        .last_zxid(move || zxid);
    for s in 1..=3 {
        b = b.server(s, ports.quorum(s), ports.election(s));
    }
    b
}

fn in_service(p: &PeerHandle) -> Role {
    p.wait_for(|s| s.role != Role::Looking, T)
        .unwrap_or_else(|e| panic!("sid {} never got a role: {e}", p.my_sid()))
        .role
}

/// Receives events until `pred` matches one; panics after `T`.
fn await_event(rx: &crossbeam_channel::Receiver<Event>, what: &str, pred: impl Fn(&Event) -> bool) {
    eventually(what, T, || {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(e) if pred(&e) => Some(()),
            _ => None,
        }
    });
}

#[test]
fn the_peer_with_the_newest_data_leads_and_every_handle_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 31000 };
    // Sid 1 has the newest log: it must lead even though sid 3 is larger.
    let zxids = [0x1_0000_0009, 0x1_0000_0003, 0x1_0000_0003];
    let p2 = builder(2, ports, dir.path(), zxids[1]).start().unwrap();
    let events = p2.subscribe();
    let p1 = builder(1, ports, dir.path(), zxids[0]).start().unwrap();
    let p3 = builder(3, ports, dir.path(), zxids[2]).start().unwrap();

    let roles: Vec<Role> = [&p1, &p2, &p3].iter().map(|p| in_service(p)).collect();
    assert!(matches!(roles[0], Role::Leading { .. }), "{roles:?}");
    assert!(
        matches!(roles[1], Role::Following { leader: 1, .. }),
        "{roles:?}"
    );
    assert!(
        matches!(roles[2], Role::Following { leader: 1, .. }),
        "{roles:?}"
    );
    assert!(p1.is_leader());
    assert!(!p2.is_leader() && !p3.is_leader());
    let l = p1.leader().unwrap();
    assert_eq!(l.sid, 1);
    assert_eq!(p2.leader(), Some(l));
    assert_eq!(p3.leader(), Some(l));
    assert_eq!(p1.current_epoch(), l.epoch);
    assert_eq!(p2.current_epoch(), l.epoch);
    // Sid 1 won on the supplied zxid alone. Once its quorum-port session
    // established the next epoch (the supplied zxids are of epoch 1), the
    // leader's zxid is that epoch's start, as a Java leader's would be.
    assert_eq!(l.epoch, 2, "one past the epoch of the supplied zxids");
    assert_eq!(p1.state().last_zxid, 2 << 32);

    // The subscription saw the role and both election links come up.
    let mut seen = Vec::new();
    eventually("Following{1}, PeerUp(1) and PeerUp(3) on sid 2", T, || {
        while let Ok(e) = events.try_recv() {
            seen.push(e);
        }
        let ok = seen
            .iter()
            .any(|e| matches!(e, Event::Role(Role::Following { leader: 1, .. })))
            && seen.contains(&Event::PeerUp(1))
            && seen.contains(&Event::PeerUp(3));
        ok.then_some(())
    });
    assert_eq!(
        seen[0],
        Event::Role(Role::Looking),
        "the current role comes first"
    );

    // A peer going away shows up as PeerDown and in the state (idle
    // election links may also close by themselves, so the PeerDown may
    // already be among the events seen).
    p3.shutdown();
    p2.wait_for(|s| !s.connected_peers.contains(&3), T).unwrap();
    eventually("PeerDown(3) on sid 2", T, || {
        while let Ok(e) = events.try_recv() {
            seen.push(e);
        }
        seen.contains(&Event::PeerDown(3)).then_some(())
    });
    assert!(matches!(
        p3.wait_for(|_| false, T),
        Err(ZkfleError::Shutdown)
    ));
    p1.shutdown();
    p2.shutdown();
}

#[test]
fn restart_election_goes_looking_and_rejoins_the_same_leader() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 31040 };
    let peers: Vec<PeerHandle> = (1..=3)
        .map(|sid| builder(sid, ports, dir.path(), 0).start().unwrap())
        .collect();
    for p in &peers {
        in_service(p);
    }
    let leader = peers[2].leader().unwrap();
    assert_eq!(leader.sid, 3, "equal zxids: the largest sid leads");
    let follower = &peers[0];
    let before = follower.state().election_count;
    let events = follower.subscribe();
    follower.restart_election().unwrap();
    await_event(&events, "Looking after restart_election", |e| {
        *e == Event::Role(Role::Looking)
    });
    await_event(&events, "Following{3} again", |e| {
        matches!(e, Event::Role(Role::Following { leader: 3, .. }))
    });
    assert!(follower.state().election_count > before);
    assert!(peers[2].is_leader(), "the leader kept its role");
    for p in &peers {
        p.shutdown();
    }
    assert!(matches!(
        follower.restart_election(),
        Err(ZkfleError::Shutdown)
    ));
}

#[test]
fn wait_for_times_out_with_the_last_state() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 31080 };
    // Alone in a three-voter ensemble: never in service.
    let p = builder(1, ports, dir.path(), 0).start().unwrap();
    match p.wait_for(|s| s.role.is_leader(), Duration::from_millis(300)) {
        Err(ZkfleError::Timeout { last, .. }) => {
            assert_eq!(last.role, Role::Looking);
            assert_eq!(last.my_sid, 1);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(p.leader(), None);
    assert!(!p.is_leader());
}

#[test]
fn bad_builder_input_is_a_typed_error() {
    assert!(matches!(
        PeerBuilder::new(1).start(),
        Err(ZkfleError::NoServers)
    ));
    let ports = Ports { base: 31090 };
    assert!(matches!(
        PeerBuilder::new(1)
            .server(1, ports.quorum(1), ports.election(1))
            .start(),
        Err(ZkfleError::NoDataDir)
    ));
    assert!(matches!(
        PeerBuilder::from_config_file("/nonexistent/zoo.cfg")
            .myid(1)
            .start(),
        Err(ZkfleError::Config(_))
    ));
    let dir = tempfile::tempdir().unwrap();
    // Sid 5 has no server line.
    let r = PeerBuilder::new(5)
        .server(1, ports.quorum(1), ports.election(1))
        .server(2, ports.quorum(2), ports.election(2))
        .data_dir(dir.path())
        .start();
    assert!(
        matches!(r, Err(ZkfleError::Config(_)) | Err(ZkfleError::Start(_))),
        "{r:?}"
    );
}

#[test]
fn an_observer_reports_observing_and_never_leads() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 31060 };
    let mk = |sid: i64, zxid: i64| {
        PeerBuilder::new(sid)
            .tick_time(Duration::from_millis(100))
            .data_dir(dir.path().join(format!("node{sid}")))
            .server(1, ports.quorum(1), ports.election(1))
            .server(2, ports.quorum(2), ports.election(2))
            .observer(3, ports.quorum(3), ports.election(3))
            .last_zxid(move || zxid)
            .start()
            .unwrap()
    };
    // The observer has the newest data and the largest sid, yet never
    // leads: it does not vote. (Its data is of the same epoch as the
    // others': a learner whose accepted epoch is above the one the leader
    // establishes is refused by Zab, in ZooKeeper too.)
    let obs = mk(3, 0x9);
    let p1 = mk(1, 0);
    let p2 = mk(2, 0);
    assert!(matches!(in_service(&p2), Role::Leading { .. }));
    assert!(matches!(in_service(&p1), Role::Following { leader: 2, .. }));
    let r = in_service(&obs);
    assert!(matches!(r, Role::Observing { leader: 2, .. }), "{r:?}");
    assert_eq!(obs.leader().map(|l| l.sid), Some(2));
    assert!(!obs.is_leader());
}
