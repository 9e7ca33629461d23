//! Interop with real Java ZooKeeper 3.8: a zkfle QCM takes sid 4 of a 4-server
//! ensemble whose sids 1..3 are Java, dials them, keeps the links (4 is the
//! larger sid) and decodes their answers to its LOOKING notification.
//!
//! Needs Debian's `zookeeper` package. Without it the test fails when `CI`
//! is set and prints a skip message otherwise.

#[path = "common/cnx.rs"]
mod cnx;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use cnx::*;
use zkfle::cnx::{LinkState, Qcm, QcmConfig};
use zkfle::wire::{Notification, ServerState};

const CLIENT_BASE: u16 = 22100;
const QUORUM_BASE: u16 = 22120;
const ELECTION_BASE: u16 = 22140;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/zk-ensemble.sh")
}

/// Runs zk-ensemble.sh with this test's ports and working dir.
struct Ensemble {
    dir: tempfile::TempDir,
}

impl Ensemble {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("bash")
            .arg(script())
            .args(args)
            .env("ZK_DIR", self.dir.path().join("zk"))
            .env("ZK_CLIENT_BASE", CLIENT_BASE.to_string())
            .env("ZK_QUORUM_BASE", QUORUM_BASE.to_string())
            .env("ZK_ELECTION_BASE", ELECTION_BASE.to_string())
            .env("ZK_SIZE", "4")
            .env("ZK_SIDS", "1 2 3")
            .output()
            .expect("run zk-ensemble.sh")
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        // Always stop the JVMs this test started (the script signals only
        // its own processes, by pid).
        let out = self.run(&["stop"]);
        if !out.status.success() {
            eprintln!(
                "zk-ensemble.sh stop: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn java_zookeeper_available() -> bool {
    std::path::Path::new("/usr/share/java/zookeeper.jar").exists()
        && Command::new("java")
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
        && script().exists()
}

#[test]
fn zkfle_sid_4_links_to_java_peers_and_decodes_their_votes() {
    if !java_zookeeper_available() {
        if std::env::var_os("CI").is_some() {
            panic!("Java ZooKeeper (apt-get install zookeeper) or shared/tools/zk-ensemble.sh missing, and CI is set");
        }
        eprintln!("SKIPPED: Java ZooKeeper not installed (apt-get install -y zookeeper)");
        return;
    }
    let ens = Ensemble {
        dir: tempfile::tempdir().expect("temp dir"),
    };
    let out = ens.run(&["start"]);
    assert!(
        out.status.success(),
        "zk-ensemble.sh start failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ens.run(&["wait", "60", "1", "2", "3"]);
    assert!(
        out.status.success(),
        "Java sids 1..3 did not settle: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ens.run(&["leader"]);
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
        assert_eq!(qcm.link_state(sid), LinkState::Up);
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
