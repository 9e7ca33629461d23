//! QCM over real loopback sockets: mesh formation, tie-break, restarts,
//! resend, ordering.

#[path = "common/cnx.rs"]
mod cnx;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use cnx::*;
use zkfle::cnx::{CnxError, DialFailure, PeerEvent, Qcm, QcmConfig};

static PORTS: PortPool = PortPool::new(21000, 21500);

const LONG: Duration = Duration::from_secs(15);

/// Every QCM connected to every other, and exactly n(n-1)/2 established
/// sockets accepted on the ensemble's ports (one per pair: a second socket
/// for any pair would show up as an extra entry).
fn full_mesh(qcms: &[Qcm], ports: &[u16]) -> bool {
    let n = qcms.len();
    let ok = qcms.iter().all(|q| q.connected_peers().len() == n - 1)
        && established_on(ports) == n * (n - 1) / 2;
    if !ok && std::env::var("QCM_DEBUG").is_ok() {
        for q in qcms {
            eprintln!(
                "sid {} peers {:?} {:?}",
                q.my_sid(),
                q.connected_peers(),
                q.stats()
            );
        }
        eprintln!("established {}", established_on(ports));
    }
    ok
}

fn mesh_rounds(n: usize, rounds: usize) {
    let ports = PORTS.take(n);
    for round in 0..rounds {
        let qcms = start_ensemble(&ports);
        // All at once, from n threads, as n servers booting together would:
        // even rounds only connect, odd rounds broadcast a first vote at once
        // (which is how an election starts: links come up because there is
        // something to send).
        let broadcast = round % 2 == 1;
        std::thread::scope(|s| {
            for q in &qcms {
                s.spawn(move || {
                    if broadcast {
                        for peer in 1..=n as i64 {
                            if peer != q.my_sid() {
                                q.send(peer, &note(q.my_sid(), -1));
                            }
                        }
                    } else {
                        q.connect_all()
                    }
                });
            }
        });
        wait_for(
            &format!("{n}-peer full mesh with one socket per pair (round {round})"),
            LONG,
            || full_mesh(&qcms, &ports),
        );
        // Every link carries traffic in both directions.
        for q in &qcms {
            for peer in 1..=n as i64 {
                if peer != q.my_sid() {
                    q.send(peer, &note(q.my_sid(), round as i64));
                }
            }
        }
        for q in &qcms {
            let rx = q.receiver();
            let mut from = std::collections::BTreeSet::new();
            wait_for(
                &format!("sid {} hears from all {} peers", q.my_sid(), n - 1),
                LONG,
                || {
                    while let Ok(r) = rx.try_recv() {
                        if broadcast && r.notification == note(r.sid, -1) {
                            continue; // the first vote, possibly re-sent on a new link
                        }
                        assert_eq!(
                            r.notification,
                            note(r.sid, round as i64),
                            "notification intact"
                        );
                        from.insert(r.sid);
                    }
                    from.len() == n - 1
                },
            );
        }
        wait_for("mesh still one socket per pair after traffic", LONG, || {
            full_mesh(&qcms, &ports)
        });
        for q in &qcms {
            let st = q.stats();
            assert_eq!(st.bad_frames, 0);
            assert_eq!(st.bad_handshakes, 0);
            assert_eq!(st.dropped_recv_queue, 0);
        }
        for q in &qcms {
            q.shutdown();
        }
        assert_eq!(established_on(&ports), 0, "shutdown closes every socket");
        // A socket one side closed and the other never did (a leak) would
        // linger in CLOSE_WAIT.
        assert_eq!(sockets_on(&ports, "08"), 0, "no CLOSE_WAIT left behind");
    }
}

#[test]
fn three_peers_form_a_full_mesh_every_round() {
    mesh_rounds(3, 20);
}

#[test]
fn five_peers_form_a_full_mesh_every_round() {
    mesh_rounds(5, 20);
}

#[test]
fn seven_peers_form_a_full_mesh_every_round() {
    mesh_rounds(7, 20);
}

/// The surviving connection of a pair is the one the larger sid dialled,
/// whichever side started (PROTOCOL.md §2.4).
#[test]
fn link_survives_whichever_side_dials_and_after_a_forced_redial() {
    let ports = PORTS.take(2);
    for lower_starts in [true, false] {
        let qcms = start_ensemble(&ports);
        let (a, b) = (&qcms[0], &qcms[1]);
        if lower_starts {
            a.send(2, &note(1, 1));
        } else {
            b.send(1, &note(2, 1));
        }
        wait_for("one link between sids 1 and 2", LONG, || {
            full_mesh(&qcms, &ports)
        });
        // The accepted socket is on sid 1's port: sid 2 dialled it.
        assert_eq!(
            sockets_on(&ports[..1], "01"),
            1,
            "sid 2 dialled the surviving link"
        );
        assert_eq!(
            sockets_on(&ports[1..], "01"),
            0,
            "no link accepted by sid 2 survives"
        );
        let (sender, receiver, from) = if lower_starts { (a, b, 1) } else { (b, a, 2) };
        let rx = receiver.receiver();
        let got = rx.recv_timeout(LONG).expect("first notification arrives");
        assert_eq!((got.sid, got.notification), (from, note(from, 1)));

        // Forced re-dial: a dial-in from the lower sid makes the larger one
        // dial back and replace its link.
        let before = b.stats().dial_backs;
        let mut s = raw_peer(addr(ports[1]), &v1_handshake(1, ports[0]));
        assert!(
            closed_within(&mut s, Duration::from_secs(3)),
            "lower sid's dial-in closed"
        );
        wait_for("sid 2 dialled sid 1 back", LONG, || {
            b.stats().dial_backs > before
        });
        wait_for("mesh back to one link", LONG, || full_mesh(&qcms, &ports));
        sender.send(if from == 1 { 2 } else { 1 }, &note(from, 2));
        // The new link may first carry the last message again (resend on a
        // new connection); the new one comes after it.
        loop {
            let got = rx
                .recv_timeout(LONG)
                .expect("notification after the re-dial");
            assert_eq!(got.sid, from);
            match got.notification.election_epoch {
                1 => continue,
                2 => break,
                other => panic!("unexpected round {other}"),
            }
        }
        for q in &qcms {
            q.shutdown();
        }
    }
}

/// Notifications arrive intact and in send order, both directions, and the
/// newest is the last one delivered.
#[test]
fn notifications_arrive_intact_and_in_order() {
    let ports = PORTS.take(2);
    let qcms = start_ensemble(&ports);
    let (a, b) = (&qcms[0], &qcms[1]);
    a.connect_all();
    wait_for("link up", LONG, || full_mesh(&qcms, &ports));
    const N: i64 = 200; // below both queue capacities: nothing may drop
    for (from, to) in [(a, b), (b, a)] {
        let rx = to.receiver();
        for i in 0..N {
            from.send(to.my_sid(), &note(from.my_sid(), i));
        }
        for i in 0..N {
            let r = rx.recv_timeout(LONG).expect("notification arrives");
            assert_eq!(r.sid, from.my_sid());
            assert_eq!(
                r.notification,
                note(from.my_sid(), i),
                "in order and intact"
            );
        }
    }
    assert_eq!(
        a.stats().dropped_send_queue + b.stats().dropped_send_queue,
        0
    );
    // Own sid: loopback into the receive queue, no network.
    let rx = a.receiver();
    a.send(1, &note(1, 77));
    let r = rx.recv_timeout(LONG).expect("loopback");
    assert_eq!((r.sid, r.notification), (1, note(1, 77)));
}

/// ZooKeeper's one-slot send queue keeps only the newest vote for a peer
/// that cannot be reached; when it comes, that vote is what it gets.
#[test]
fn one_slot_send_queue_delivers_the_newest_vote() {
    let ports = PORTS.take(2);
    let a = Qcm::start(ensemble_config(1, &ports).zookeeper_queues()).expect("start sid 1");
    for i in 0..10 {
        a.send(2, &note(1, i));
    }
    assert!(a.has_pending(2));
    assert_eq!(
        a.stats().dropped_send_queue,
        9,
        "one slot: each send evicts the previous"
    );
    let b = Qcm::start(ensemble_config(2, &ports)).expect("start sid 2");
    // Sid 1 keeps prompting sid 2 while something is queued.
    let rx = b.receiver();
    let mut last = None;
    wait_for("sid 2 receives sid 1's newest vote", LONG, || {
        while let Ok(r) = rx.try_recv() {
            last = Some(r.notification.election_epoch);
        }
        last == Some(9)
    });
    assert!(!a.has_pending(2));
    a.shutdown();
    b.shutdown();
}

/// A QCM shut down and restarted on the same port is reconnected and first
/// receives the last message its peer wrote (PROTOCOL.md §3.6), whichever
/// side restarts.
#[test]
fn restarted_peer_is_reconnected_and_gets_the_last_message_again() {
    let ports = PORTS.take(2);
    for restart_sid in [2i64, 1] {
        let mut qcms = start_ensemble(&ports);
        qcms[0].send(2, &note(1, 5));
        qcms[1].send(1, &note(2, 6));
        let r0 = qcms[0]
            .receiver()
            .recv_timeout(LONG)
            .expect("sid 1 hears sid 2");
        let r1 = qcms[1]
            .receiver()
            .recv_timeout(LONG)
            .expect("sid 2 hears sid 1");
        assert_eq!(r0.notification, note(2, 6));
        assert_eq!(r1.notification, note(1, 5));

        let idx = (restart_sid - 1) as usize;
        let survivor = &qcms[1 - idx];
        let events = survivor.peer_events();
        // The message came over a link, whose LinkUp was emitted before
        // its workers started.
        let before: Vec<PeerEvent> = events.try_iter().collect();
        assert_eq!(
            before.last(),
            Some(&PeerEvent::LinkUp(restart_sid)),
            "{before:?}"
        );
        qcms[idx].shutdown();
        // The events are the link's history: wait for them, not for a
        // snapshot of the link, which may change before its event is read.
        let closed = events.recv_timeout(LONG).expect("an event");
        assert_eq!(closed, PeerEvent::LinkClosed(restart_sid));
        assert!(!survivor.is_connected(restart_sid));

        // Restart on the same port; its election layer would broadcast, which
        // starts the connection (a dial for sid 2, a prompt for sid 1).
        qcms[idx] =
            Qcm::start(ensemble_config(restart_sid, &ports)).expect("restart on the same port");
        let restarted = &qcms[idx];
        restarted.connect_all();
        wait_for("restarted peer reconnected", LONG, || {
            full_mesh(&qcms, &ports)
        });
        let expect = if restart_sid == 2 {
            note(1, 5)
        } else {
            note(2, 6)
        };
        let got = qcms[idx]
            .receiver()
            .recv_timeout(LONG)
            .expect("last message re-sent");
        assert_eq!(
            got.notification, expect,
            "the survivor's last message comes first"
        );
        // Whatever happened while it was down, the link's history ends with
        // it up again.
        let after: Vec<PeerEvent> = events.try_iter().collect();
        assert_eq!(
            after.last(),
            Some(&PeerEvent::LinkUp(restart_sid)),
            "{after:?}"
        );
        for q in &qcms {
            q.shutdown();
        }
    }
}

/// 9.1 (7): in a 3-peer ensemble each peer holds two links, one while a
/// peer is stopped, two again after its restart (five rounds).
#[test]
fn three_peers_lose_and_regain_a_member_five_times() {
    let ports = PORTS.take(3);
    let mut qcms = start_ensemble(&ports);
    for q in &qcms {
        q.connect_all();
    }
    wait_for("initial mesh", LONG, || full_mesh(&qcms, &ports));
    for round in 0..5 {
        let victim = round % 3;
        qcms[victim].shutdown();
        wait_for(
            "survivors hold one link each to the other survivor",
            LONG,
            || {
                qcms.iter()
                    .enumerate()
                    .filter(|(i, _)| *i != victim)
                    .all(|(_, q)| q.connected_peers().len() == 1)
                    && established_on(&ports) == 1
            },
        );
        qcms[victim] = Qcm::start(ensemble_config(victim as i64 + 1, &ports)).expect("restart");
        qcms[victim].connect_all();
        wait_for("mesh restored", LONG, || full_mesh(&qcms, &ports));
    }
    for q in &qcms {
        q.shutdown();
    }
}

/// 9.1 (2): sending to a peer nobody listens for returns at once, and the
/// link reports it is being established, not up. Sid 3's address is
/// black-holed and the dial timeout 30 s: a send that waited for the dial
/// would take that long (the 10 s bound is a generous "never waits").
#[test]
fn send_to_an_unreachable_peer_returns_at_once() {
    let ports = PORTS.take(2);
    let mut cfg = ensemble_config(2, &ports);
    cfg.cnx_timeout = Duration::from_secs(30);
    cfg.peers
        .insert(3, vec!["10.255.255.1:21999".parse().expect("addr")]);
    let q = Qcm::start(cfg).expect("start");
    let t = Instant::now();
    for i in 0..100 {
        q.send(1, &note(2, i));
        q.send(3, &note(2, i));
    }
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "send never waits for a dial"
    );
    assert!(!q.is_connected(1));
    assert!(q.has_pending(1));
    // The election's poll-timeout resend: skipped while anything is queued.
    assert!(!q.send_if_idle(1, &note(2, 1000)), "something is queued");
    wait_for("dial to sid 1 fails", LONG, || q.stats().dial_failures > 0);
    // Sid 1 appears: the queued votes reach it without another send.
    let a = Qcm::start(ensemble_config(1, &ports)).expect("start sid 1");
    let rx = a.receiver();
    let mut last = -1;
    wait_for("queued votes delivered after sid 1 came up", LONG, || {
        while let Ok(r) = rx.try_recv() {
            assert!(r.notification.election_epoch > last, "in order");
            last = r.notification.election_epoch;
        }
        last == 99
    });
    // Delivered: now the resend goes out.
    wait_for("queue to sid 1 drained", LONG, || !q.has_pending(1));
    assert!(q.send_if_idle(1, &note(2, 1001)));
    let r = rx.recv_timeout(LONG).expect("the resend");
    assert_eq!(r.notification.election_epoch, 1001, "1000 was never queued");
    q.shutdown();
    a.shutdown();
}

/// 9.1 (4): an address that cannot be bound gives up after the retries.
#[test]
fn unbindable_address_gives_up_after_retries() {
    let ports = PORTS.take(1);
    let _holder = TcpListener::bind(("127.0.0.1", ports[0])).expect("hold the port");
    let mut cfg = QcmConfig::new(1, vec![addr(ports[0])], BTreeMap::new());
    cfg.bind_retry = 2;
    let t = Instant::now();
    match Qcm::start(cfg) {
        Err(CnxError::Bind {
            attempts, addr: a, ..
        }) => {
            assert_eq!(attempts, 2);
            assert_eq!(a, addr(ports[0]));
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "1 s between attempts"
    );
}

/// Shutdown joins every thread the QCM started (its runtime and every
/// SendWorker/RecvWorker). Sids 901..903 make the thread names unique to
/// this test.
#[test]
fn shutdown_leaves_no_thread_behind() {
    let ports = PORTS.take(3);
    let sids = [901i64, 902, 903];
    let ours = || -> usize {
        std::fs::read_dir("/proc/self/task")
            .map(|d| {
                d.flatten()
                    .filter(|t| {
                        std::fs::read_to_string(t.path().join("comm"))
                            .is_ok_and(|c| c.starts_with("qcm90"))
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    let qcms: Vec<Qcm> = sids
        .iter()
        .zip(&ports)
        .map(|(&sid, &port)| {
            let peers = sids
                .iter()
                .zip(&ports)
                .filter(|(s, _)| **s != sid)
                .map(|(s, p)| (*s, vec![addr(*p)]))
                .collect();
            Qcm::start(QcmConfig::new(sid, vec![addr(port)], peers)).expect("start")
        })
        .collect();
    for q in &qcms {
        q.connect_all();
    }
    wait_for("mesh", LONG, || full_mesh(&qcms, &ports));
    // 3 runtimes + 2 workers per link end (6 ends).
    assert!(
        ours() >= 3 + 12,
        "workers run as named OS threads, saw {}",
        ours()
    );
    for q in &qcms {
        q.shutdown();
    }
    assert_eq!(ours(), 0, "every QCM thread joined by shutdown");
    for q in &qcms {
        q.shutdown(); // idempotent
        assert!(q.connected_peers().is_empty());
    }
}

/// Every failed dial to a configured peer is reported as a fact with how it
/// failed, whether or not the peer was ever reached (what that means for
/// the election is `election::Driver`'s business), and the events of one
/// peer are its link's history in order: up, closed, failed dials, never a
/// failed dial while the link is up.
#[test]
fn link_facts_are_reported_in_order_with_how_dials_failed() {
    let ports = PORTS.take(3);
    let q1 = Qcm::start(ensemble_config(1, &ports)).expect("sid 1 starts");
    let events = q1.peer_events();
    let mut seen = Vec::new();
    let mut wait_event = |what: &str, want: PeerEvent| {
        wait_for(what, LONG, || {
            seen.extend(events.try_iter());
            seen.contains(&want)
        });
        std::mem::take(&mut seen)
    };
    // Sid 3 never runs: sending to it queues the vote and dials (refused).
    q1.send(3, &note(1, 1));
    let refused3 = PeerEvent::DialFailed {
        sid: 3,
        failure: DialFailure::Refused,
    };
    wait_event("a refused dial to sid 3", refused3);

    // Sid 2 links up, then dies; the next send to it is refused.
    let q2 = Qcm::start(ensemble_config(2, &ports)).expect("sid 2 starts");
    q2.connect_all();
    let got = wait_event("link 1-2 up", PeerEvent::LinkUp(2));
    assert!(!got
        .iter()
        .any(|e| matches!(e, PeerEvent::DialFailed { sid: 2, .. })));
    q2.shutdown();
    let got = wait_event("link 1-2 closed", PeerEvent::LinkClosed(2));
    assert!(!got
        .iter()
        .any(|e| matches!(e, PeerEvent::DialFailed { sid: 2, .. })));
    q1.send(2, &note(1, 2));
    let refused2 = PeerEvent::DialFailed {
        sid: 2,
        failure: DialFailure::Refused,
    };
    let got = wait_event("a refused dial to sid 2", refused2);
    assert!(
        !got.iter().any(|e| matches!(e, PeerEvent::LinkUp(2))),
        "{got:?}"
    );
    q1.shutdown();
}
