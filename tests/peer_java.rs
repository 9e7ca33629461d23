//! Mixed ensembles of `zkfle run` processes and real Java ZooKeeper 3.8
//! peers (`../shared/tools/zk-ensemble.sh`, PROTOCOL.md §9.2 I2 and I3):
//! both sides elect the same leader in their first election, and the
//! followers then synchronize with it over the quorum port and serve.
//!
//! Without Java ZooKeeper the tests skip with a message, unless `CI` is set:
//! then they fail. Ports: 25101..=25603 (bases 25100 and 25400).

#[path = "common/java.rs"]
mod java;
#[path = "common/peer.rs"]
mod peer;

use java::{java_available, JavaEnsemble};
use peer::*;
use std::time::Duration;

static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// The Java peer's log lines from its first decision: the bare state line
/// (`FOLLOWING`/`LEADING`) and the `LEADER ELECTION TOOK` line.
fn java_decided(log: &str, state: &str) -> Option<String> {
    log.lines()
        .find(|l| l.contains(&format!("- {state} - LEADER ELECTION TOOK - ")))
        .map(str::to_string)
}

#[test]
fn java_peers_follow_a_zkfle_sid_3_started_first() {
    if !java_available() {
        return;
    }
    let _g = SERIAL.lock();
    let base = 25100;
    let ports = Ports { base };
    let java = JavaEnsemble::new(base, 3);
    java.cmd(&["init"], &[]);
    let mut z3 = Proc::run_cfg(&java.cfg(3));
    // Its client port answers once the election port is bound.
    await_up(ports, 3, Duration::from_secs(20));
    java.cmd(&["start"], &[("ZK_KEEP_DATA", "1"), ("ZK_SIDS", "1 2")]);

    // Both JVMs decide first; then each must have decided FOLLOWING (a Java
    // sid 2 that leads means zkfle's vote came too late for their round).
    let mut decided = Vec::new();
    for sid in [1, 2] {
        let line = poll(
            Duration::from_secs(60),
            &format!("Java sid {sid} to log its first decision"),
            || {
                let log = java.log(sid);
                java_decided(&log, "FOLLOWING")
                    .or_else(|| java_decided(&log, "LEADING"))
                    .ok_or_else(|| "no LEADER ELECTION TOOK line yet".to_string())
            },
        );
        println!("Java sid {sid}: {line}");
        decided.push((sid, line));
    }
    for (sid, line) in &decided {
        assert!(
            line.contains("FOLLOWING - LEADER ELECTION TOOK"),
            "Java sid {sid} decided something else: {line}"
        );
    }
    for sid in [1, 2] {
        let leader_q = format!("127.0.0.1:{}", ports.quorum(3));
        let connector = poll(
            Duration::from_secs(20),
            &format!("Java sid {sid} to dial leader 3's quorum port {leader_q}"),
            || {
                let log = java.log(sid);
                log.lines()
                    .find(|l| l.contains("LeaderConnector") && l.contains(&leader_q))
                    .map(str::to_string)
                    .ok_or_else(|| {
                        log.lines()
                            .rfind(|l| l.contains("Learner") || l.contains("leader"))
                            .unwrap_or("")
                            .to_string()
                    })
            },
        );
        println!("Java sid {sid}: {connector}");
        let log = java.log(sid);
        assert!(
            !log.lines().any(|l| l.contains("- LEADING")),
            "Java sid {sid} led"
        );
    }
    // PROTOCOL.md §9.2 I2: the Java followers sync with the zkfle leader
    // over the quorum port (empty DIFF) and serve.
    poll(
        Duration::from_secs(30),
        "Mode: follower on Java sids 1 and 2 and Mode: leader on zkfle sid 3",
        || {
            let modes: Vec<Option<String>> = (1..=3).map(|s| mode(ports.client_addr(s))).collect();
            let want = [Some("follower"), Some("follower"), Some("leader")];
            if modes.iter().map(Option::as_deref).eq(want) {
                Ok(())
            } else {
                Err(format!("{modes:?}"))
            }
        },
    );
    let m = mntr(ports.client_addr(3)).expect("zkfle sid 3 answers mntr");
    assert_eq!(m["zk_leader_sid"], "3");
    assert_eq!(m["zk_current_epoch"], "1", "epoch 1 established with Java");
    assert_eq!(m["zk_election_count"], "1", "zkfle sid 3 decided once");
    println!(
        "zkfle sid 3: {} after {} ms",
        m["zk_server_state"], m["zk_last_election_ms"]
    );
    let st = z3.terminate(Duration::from_secs(10));
    assert!(st.is_some_and(|s| s.success()), "zkfle sid 3 exit {st:?}");
}

#[test]
fn zkfle_peers_follow_a_java_sid_3_started_first() {
    if !java_available() {
        return;
    }
    let _g = SERIAL.lock();
    let base = 25400;
    let ports = Ports { base };
    let java = JavaEnsemble::new(base, 3);
    java.cmd(&["init"], &[]);
    java.cmd(&["start"], &[("ZK_KEEP_DATA", "1"), ("ZK_SIDS", "3")]);
    poll(
        Duration::from_secs(30),
        "Java sid 3's election port to listen",
        || {
            if listening(ports.election(3)) {
                Ok(())
            } else {
                Err("not yet".into())
            }
        },
    );
    let _z1 = Proc::run_cfg(&java.cfg(1));
    let _z2 = Proc::run_cfg(&java.cfg(2));
    poll(
        Duration::from_secs(30),
        "zkfle sids 1 and 2 to decide for leader 3",
        || {
            let mut v = Vec::new();
            for sid in [1, 2] {
                let m = mntr(ports.client_addr(sid)).ok_or(format!("sid {sid}: no mntr"))?;
                if m.get("zk_leader_sid").map(String::as_str) != Some("3") {
                    return Err(format!("sid {sid}: {:?}", m.get("zk_leader_sid")));
                }
                v.push(m);
            }
            Ok(v)
        },
    );
    // PROTOCOL.md §9.2 I3: the zkfle followers sync with the Java leader.
    let all = poll(
        Duration::from_secs(30),
        "zkfle sids 1 and 2 to serve as followers of Java sid 3",
        || {
            let ms: Vec<_> = [1, 2]
                .iter()
                .filter_map(|&s| mntr(ports.client_addr(s)))
                .collect();
            if ms.len() == 2 && ms.iter().all(|m| m["zk_server_state"] == "follower") {
                Ok(ms)
            } else {
                Err(format!(
                    "{:?}",
                    ms.iter()
                        .map(|m| m["zk_peer_state"].clone())
                        .collect::<Vec<_>>()
                ))
            }
        },
    );
    for (i, m) in all.iter().enumerate() {
        assert_eq!(m["zk_election_count"], "1", "sid {}: first election", i + 1);
        assert_eq!(m["zk_leader_sid"], "3");
        assert!(
            m["zk_peer_state"].starts_with("following"),
            "sid {}: {}",
            i + 1,
            m["zk_peer_state"]
        );
        println!(
            "zkfle sid {}: following 3 after {} ms",
            i + 1,
            m["zk_last_election_ms"]
        );
    }
    let line = poll(
        Duration::from_secs(30),
        "Java sid 3 to log its decision",
        || java_decided(&java.log(3), "LEADING").ok_or_else(|| "not yet".to_string()),
    );
    println!("Java sid 3: {line}");
}
