//! Interop with real Java ZooKeeper 3.8: a zkfle QCM takes sid 4 of a 4-server
//! ensemble whose sids 1..3 are Java, dials them, keeps the links (4 is the
//! larger sid) and decodes their answers to its LOOKING notification.
//!
//! Needs Debian's `zookeeper` package. Without it the test fails when `CI`
//! is set and prints a skip message otherwise.

#[path = "common/cnx.rs"]
mod cnx;
#[path = "common/java.rs"]
mod java;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cnx::*;
use zkfle::cnx::{Qcm, QcmConfig};
use zkfle::wire::{Notification, ServerState};

/// Client ports 22401.., quorum 22501.., election 22601.. (the layout of
/// tests/common/java.rs).
const BASE: u16 = 22400;
const ELECTION_BASE: u16 = BASE + 200;

#[test]
fn zkfle_sid_4_links_to_java_peers_and_decodes_their_votes() {
    if !java::java_available() {
        return;
    }
    // Sid 4 is listed but never started as Java: this QCM takes it.
    let ens = java::JavaEnsemble::new(BASE, 4).with_env("ZK_SIDS", "1 2 3");
    ens.cmd(&["start"], &[]);
    ens.cmd(&["wait", "60", "1", "2", "3"], &[]);
    let out = ens.cmd(&["leader"], &[]);
    let leader: i64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("leader sid");

    let election = |sid: u16| addr(ELECTION_BASE + sid);
    let peers: BTreeMap<i64, Vec<_>> = (1..=3).map(|s| (s as i64, vec![election(s)])).collect();
    let mut cfg = QcmConfig::new(4, vec![election(4)], peers);
    cfg.bind_retry = 3;
    let qcm = Qcm::start(cfg).expect("zkfle QCM as sid 4");
    qcm.connect_all();
    wait_for("links to Java sids 1..3", Duration::from_secs(20), || {
        qcm.connected_peers() == vec![1, 2, 3]
    });

    // A LOOKING vote for ourselves in round 1, as a fresh peer would send.
    let looking = Notification {
        state: ServerState::Looking,
        leader: 4,
        zxid: 0,
        election_epoch: 1,
        peer_epoch: 0,
        version: 0,
    };
    let rx = qcm.receiver();
    for sid in 1..=3 {
        qcm.send(sid, &looking);
    }
    let mut answered = BTreeSet::new();
    wait_for(
        "every Java peer answers with its current vote",
        Duration::from_secs(20),
        || {
            while let Ok(r) = rx.try_recv() {
                let n = r.notification;
                if n.state == ServerState::Looking {
                    continue; // a stale vote re-sent on the new connection
                }
                let want = if r.sid == leader {
                    ServerState::Leading
                } else {
                    ServerState::Following
                };
                assert_eq!(n.state, want, "sid {} state", r.sid);
                assert_eq!(n.leader, leader, "sid {} names the elected leader", r.sid);
                assert_eq!(n.version, 2, "3.8 sends 44+N notifications");
                assert!(n.peer_epoch >= 1, "an established epoch");
                answered.insert(r.sid);
            }
            answered.len() == 3
        },
    );

    // The Java peers keep the links (4 > their sids): nothing was rebuilt,
    // and their election listeners hold exactly our three connections plus
    // the three among themselves.
    let st = qcm.stats();
    assert_eq!(
        st.links_closed, 0,
        "no Java peer dropped or replaced our link"
    );
    assert_eq!(st.links_established, 3);
    assert_eq!(st.bad_frames, 0);
    for sid in 1..=3 {
        assert!(qcm.is_connected(sid));
    }
    let java_ports: Vec<u16> = (1..=3).map(|s| ELECTION_BASE + s).collect();
    wait_for(
        "6 established election connections on Java's ports",
        Duration::from_secs(10),
        || established_on(&java_ports) == 6,
    );
    assert_eq!(
        established_on(&[ELECTION_BASE + 4]),
        0,
        "no Java-dialled link survived"
    );

    // A second round is answered too (ZooKeeper's resend proves nothing on
    // its own).
    let looking2 = Notification {
        election_epoch: 2,
        ..looking
    };
    for sid in 1..=3 {
        qcm.send(sid, &looking2);
    }
    let mut answered = BTreeSet::new();
    wait_for("second answers", Duration::from_secs(20), || {
        while let Ok(r) = rx.try_recv() {
            if r.notification.state != ServerState::Looking {
                answered.insert(r.sid);
            }
        }
        answered.len() == 3
    });
    qcm.shutdown();
}
