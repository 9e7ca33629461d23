//! Mixed ensembles of `zkfle run` processes and real Java ZooKeeper 3.8
//! peers (`../shared/tools/zk-ensemble.sh`, PROTOCOL.md §9.2 I2 and I3):
//! both sides elect the same leader in their first election, and the
//! followers then synchronize with it over the quorum port and serve.
//!
//! Each test then holds the mixed ensemble for 30 s (`ZKFLE_INTEROP_HOLD_SECS`
//! overrides), checking every 250 ms that nobody changed role, and ends by
//! SIGKILLing the leader: the survivors must agree on a new one. The first
//! also sends a real ZooKeeper client (Debian's `zkCli.sh`) to a Java
//! follower of the zkfle leader: zkfle serves no client API, so the client
//! must fail cleanly on its own (connection loss), not hang, and the Java
//! follower must keep following.
//!
//! Without Java ZooKeeper the tests skip with a message, unless `CI` is set:
//! then they fail. Ports: 25101..=25603 (bases 25100 and 25400).

#[path = "common/java.rs"]
mod java;
#[path = "common/peer.rs"]
mod peer;

use java::{java_available, zk_client, JavaEnsemble};
use peer::*;
use std::time::{Duration, Instant};

fn hold_secs() -> u64 {
    std::env::var("ZKFLE_INTEROP_HOLD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

/// The `srvr` modes of `sids`, or an error naming what differs from `want`.
fn modes_are(ports: Ports, sids: &[i64], want: &[&str]) -> Result<(), String> {
    let modes: Vec<Option<String>> = sids.iter().map(|&s| mode(ports.client_addr(s))).collect();
    if modes
        .iter()
        .map(Option::as_deref)
        .eq(want.iter().map(|w| Some(*w)))
    {
        Ok(())
    } else {
        Err(format!("sids {sids:?} report {modes:?}, want {want:?}"))
    }
}

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
    // Serial only up to the steady state: the first election is what the
    // JVMs' boot timing can disturb; the holds may overlap.
    let g = SERIAL.lock();
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
        || modes_are(ports, &[1, 2, 3], &["follower", "follower", "leader"]),
    );
    let m = mntr(ports.client_addr(3)).expect("zkfle sid 3 answers mntr");
    assert_eq!(m["zk_leader_sid"], "3");
    assert_eq!(m["zk_current_epoch"], "1", "epoch 1 established with Java");
    assert_eq!(m["zk_election_count"], "1", "zkfle sid 3 decided once");
    println!(
        "zkfle sid 3: {} after {} ms",
        m["zk_server_state"], m["zk_last_election_ms"]
    );
    drop(g);

    // Issue 6 item 6: Java followers stay FOLLOWING under a zkfle leader,
    // and a client of a Java follower gets a clean error, never a hang.
    let client = std::thread::spawn(move || {
        zk_client(
            ports.client_addr(1),
            4000,
            &["create", "/zkfle-interop", "x"],
            Duration::from_secs(60),
        )
    });
    let hold = Duration::from_secs(hold_secs());
    hold_for(hold, "Java sids 1, 2 following zkfle leader 3", || {
        modes_are(ports, &[1, 2, 3], &["follower", "follower", "leader"])
    });
    println!("Java sids 1, 2 stayed Mode: follower under zkfle sid 3 for {hold:?}");
    let run = client.join().expect("client thread");
    println!(
        "zkCli.sh create via Java sid 1: exit {:?} after {:?}: {}",
        run.exit,
        run.elapsed,
        run.output
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("")
    );
    assert!(!run.hung, "the client hung: {}", run.output);
    assert!(
        run.exit.is_some_and(|c| c != 0) && run.output.contains("ConnectionLoss"),
        "want a connection-loss error from the client, got exit {:?}: {}",
        run.exit,
        run.output
    );
    let log = z3.log_text();
    assert!(
        log.contains("learner sid 1 forwarded a client request, createSession"),
        "zkfle leader did not report the dropped session request:\n{log}"
    );
    modes_are(ports, &[1, 2], &["follower", "follower"]).expect("Java still follows");

    // kill -9 of the zkfle leader: the Java survivors agree on a new one.
    let killed = Instant::now();
    z3.kill();
    let (ok, out) = java.try_cmd(&["wait", "30", "1", "2"]);
    assert!(
        ok,
        "Java sids 1, 2 did not elect after zkfle sid 3 died: {out}"
    );
    poll(Duration::from_secs(30), "Java sid 2 leading sid 1", || {
        modes_are(ports, &[1, 2], &["follower", "leader"])
    });
    println!(
        "kill -9 of zkfle sid 3: Java sid 2 leads sid 1 after {:?}",
        killed.elapsed()
    );
}

#[test]
fn zkfle_peers_follow_a_java_sid_3_started_first() {
    if !java_available() {
        return;
    }
    let g = SERIAL.lock();
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
    drop(g);

    // Issue 6 item 6: the Java leader stays LEADING with zkfle followers.
    let hold = Duration::from_secs(hold_secs());
    hold_for(hold, "zkfle sids 1, 2 following Java leader 3", || {
        modes_are(ports, &[1, 2, 3], &["follower", "follower", "leader"])
    });
    println!("Java sid 3 stayed Mode: leader with zkfle sids 1, 2 for {hold:?}");

    // kill -9 of the Java leader: the zkfle survivors agree on sid 2 and
    // establish epoch 2 between them.
    let killed = Instant::now();
    java.cmd(&["kill", "3"], &[]);
    let ms = poll(
        Duration::from_secs(30),
        "zkfle sid 2 leading sid 1 after Java sid 3 died",
        || {
            modes_are(ports, &[1, 2], &["follower", "leader"])?;
            let ms: Vec<_> = [1, 2]
                .iter()
                .filter_map(|&s| mntr(ports.client_addr(s)))
                .collect();
            if ms.len() == 2 {
                Ok(ms)
            } else {
                Err("mntr unanswered".into())
            }
        },
    );
    println!(
        "kill -9 of Java sid 3: zkfle sid 2 leads sid 1 after {:?}",
        killed.elapsed()
    );
    for m in &ms {
        assert_eq!(m["zk_leader_sid"], "2");
        assert_eq!(m["zk_current_epoch"], "2", "epoch after Java's epoch 1");
    }
}
