//! Whole `zkfle run` processes with the Zab session in the role step
//! (PROTOCOL.md §6.6, §9.2 I4/I6 with zkfle only): a SIGKILLed leader is
//! replaced, a SIGSTOPped (hung) leader is left after `syncLimit × tickTime`
//! and rejoins as a follower after SIGCONT, and the epoch files rise as
//! ZooKeeper's do. Ports 27000–27299.

#[path = "common/java.rs"]
mod java;
#[path = "common/peer.rs"]
mod peer;

use java::{java_available, JavaEnsemble};
use peer::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const AGREE: Duration = Duration::from_secs(30);
const TICK_MS: u64 = 200;
const SYNC: u64 = 5;

fn write_cfgs(dir: &Path, n: i64, ports: Ports) -> Vec<PathBuf> {
    let timing = format!("tickTime={TICK_MS}\ninitLimit=10\nsyncLimit={SYNC}\n");
    write_ensemble_timed(dir, n, ports, &timing, "")
}

fn epochs(dir: &Path, sid: i64) -> (String, String) {
    let v = dir.join(format!("node{sid}/version-2"));
    (
        std::fs::read_to_string(v.join("acceptedEpoch")).unwrap_or_default(),
        std::fs::read_to_string(v.join("currentEpoch")).unwrap_or_default(),
    )
}

fn signal(p: &Proc, sig: &str) {
    let pid = p.pid().expect("process running");
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill -{sig} {pid} failed");
}

fn peer_state(ports: Ports, sid: i64) -> String {
    mntr(ports.client_addr(sid))
        .and_then(|m| m.get("zk_peer_state").cloned())
        .unwrap_or_default()
}

/// Waits until `sids` serve under one leader other than `old`.
fn await_new_leader(ports: Ports, sids: &[i64], old: i64) -> i64 {
    poll(
        AGREE,
        &format!("sids {sids:?} serving under a leader other than {old}"),
        || {
            let mut leaders = Vec::new();
            for &sid in sids {
                let m = mntr(ports.client_addr(sid)).ok_or(format!("sid {sid}: no mntr"))?;
                let serving = matches!(
                    m.get("zk_server_state").map(String::as_str),
                    Some("leader" | "follower")
                );
                let l: i64 = m
                    .get("zk_leader_sid")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(-1);
                if !serving || l == old || l < 0 {
                    return Err(format!("sid {sid}: {m:?}"));
                }
                leaders.push(l);
            }
            leaders.dedup();
            match leaders[..] {
                [l] => Ok(l),
                _ => Err(format!("leaders {leaders:?}")),
            }
        },
    )
}

#[test]
fn leader_killed_then_hung_three_zkfle_processes_fail_over_and_rejoin() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ports = Ports { base: 27000 };
    let cfgs = write_cfgs(dir.path(), 3, ports);
    let mut procs: Vec<Option<Proc>> = vec![None, None, None];
    procs[2] = Some(Proc::run_cfg(&cfgs[2]));
    await_up(ports, 3, AGREE);
    procs[0] = Some(Proc::run_cfg(&cfgs[0]));
    procs[1] = Some(Proc::run_cfg(&cfgs[1]));
    let (leader, _) = await_agreement(ports, &[1, 2, 3], AGREE);
    assert_eq!(leader, 3);
    assert_eq!(peer_state(ports, 3), "leading - broadcast");
    for sid in 1..=2 {
        assert_eq!(peer_state(ports, sid), "following - broadcast", "sid {sid}");
    }
    for sid in 1..=3 {
        assert_eq!(
            epochs(dir.path(), sid),
            ("1".into(), "1".into()),
            "sid {sid}"
        );
    }

    // Crash: SIGKILL the leader. Sids 1, 2 see the FIN at once.
    let killed = Instant::now();
    drop(procs[2].take()); // SIGKILL by pid
    let leader = await_new_leader(ports, &[1, 2], 3);
    let failover = killed.elapsed();
    assert_eq!(
        leader, 2,
        "the higher of the survivors (equal epochs, zxid 0)"
    );
    for sid in 1..=2 {
        assert_eq!(
            epochs(dir.path(), sid),
            ("2".into(), "2".into()),
            "sid {sid}"
        );
    }
    println!("SIGKILL of leader 3: sids 1, 2 serving under leader 2 after {failover:?}");

    // The killed sid comes back and follows.
    procs[2] = Some(Proc::run_cfg(&cfgs[2]));
    let (leader, _) = await_agreement(ports, &[1, 2, 3], AGREE);
    assert_eq!(leader, 2);

    // Hang: SIGSTOP the leader. Its learners give up after syncLimit ticks.
    let hung = procs[1].as_ref().expect("sid 2");
    signal(hung, "STOP");
    let stopped = Instant::now();
    let leader = await_new_leader(ports, &[1, 3], 2);
    let hang_failover = stopped.elapsed();
    println!(
        "SIGSTOP of leader 2: sids 1, 3 serving under leader {leader} after {hang_failover:?} (syncLimit x tickTime = {} ms)",
        SYNC * TICK_MS
    );
    assert!(
        hang_failover >= Duration::from_millis(SYNC * TICK_MS),
        "a hung leader is only noticed after syncLimit ticks"
    );
    assert_eq!(leader, 3);

    // SIGCONT: the old leader finds no quorum, steps down, and follows 3
    // (its zxid 2 << 32 is an epoch start, not a transaction: accepted).
    signal(hung, "CONT");
    let resumed = Instant::now();
    let (leader, _) = await_agreement(ports, &[1, 2, 3], AGREE);
    assert_eq!(leader, 3);
    println!(
        "SIGCONT: former leader 2 following 3 after {:?}",
        resumed.elapsed()
    );
    for sid in 1..=3 {
        assert_eq!(
            epochs(dir.path(), sid),
            ("3".into(), "3".into()),
            "sid {sid}"
        );
    }

    // A follower's restart: leader 3 keeps its quorum with sid 2 (no new
    // election, no new epoch), and sid 1 rejoins it from its epoch files.
    let elections = |sid: i64| {
        mntr(ports.client_addr(sid))
            .and_then(|m| m.get("zk_election_count").cloned())
            .unwrap_or_default()
    };
    let before = elections(3);
    procs[0].as_mut().expect("sid 1").kill();
    hold_for(
        Duration::from_millis(3 * SYNC * TICK_MS),
        "leader 3 serving sid 2 without sid 1",
        || {
            let s = (peer_state(ports, 3), peer_state(ports, 2));
            if s == ("leading - broadcast".into(), "following - broadcast".into()) {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        },
    );
    procs[0] = Some(Proc::run_cfg(&cfgs[0]));
    let (leader, _) = await_agreement(ports, &[1, 2, 3], AGREE);
    assert_eq!(leader, 3);
    assert_eq!(peer_state(ports, 1), "following - broadcast");
    assert_eq!(elections(3), before, "the leader never re-elected");
    assert_eq!(epochs(dir.path(), 1), ("3".into(), "3".into()));
    println!("kill -9 and restart of follower 1: rejoined leader 3 in epoch 3");

    for p in procs.iter_mut().flatten() {
        let st = p.terminate(Duration::from_secs(10));
        assert!(
            st.is_some_and(|s| s.success()),
            "{} did not exit cleanly: {st:?}\n{}",
            p.name,
            p.log_text()
        );
    }
}

/// zk-ensemble.sh driving Java sids 1, 2 of a 3-server ensemble whose sid 3
/// is a `zkfle run` process (PROTOCOL.md §9.2 I3/I5/I6). Ports 27300–27599.
mod mixed {
    use super::*;

    /// Client ports; quorum +100, election +200 (zk-ensemble.sh's bases).
    const CLIENT: u16 = 27300;

    /// Java sids 1, 2 of a 3-server ensemble with this file's timing; the
    /// configs are written (`init`) but no JVM runs until `start`.
    pub fn java() -> JavaEnsemble {
        let java = JavaEnsemble::new(CLIENT, 3)
            .with_env("ZK_SIDS", "1 2")
            .with_env("ZK_TICK", &TICK_MS.to_string())
            .with_env("ZK_INIT", "10")
            .with_env("ZK_SYNC", &SYNC.to_string())
            .with_env("ZK_HEAP_MB", "256")
            .with_env("ZK_KEEP_DATA", "1");
        java.cmd(&["init"], &[]);
        java
    }

    pub fn ports() -> Ports {
        Ports { base: CLIENT }
    }

    /// (leader, its `zk_server_state` per sid) once all of `sids` serve
    /// under one leader; `srvr`'s Mode for Java, mntr for zkfle.
    pub fn agreed(java: &JavaEnsemble, sids: &[i64], not: i64) -> i64 {
        poll(
            AGREE,
            &format!("sids {sids:?} serving under one leader != {not}"),
            || {
                let mut leaders = Vec::new();
                for &sid in sids {
                    let mode = java.srvr_mode(sid).unwrap_or_default();
                    match mode.as_str() {
                        "leader" => leaders.push(sid),
                        "follower" => {}
                        _ => return Err(format!("sid {sid}: mode {mode:?}")),
                    }
                }
                match leaders[..] {
                    [l] if l != not => Ok(l),
                    _ => Err(format!("leaders {leaders:?}")),
                }
            },
        )
    }
}

#[test]
fn mixed_java_and_zkfle_survive_hung_leaders_in_turn() {
    if !java_available() {
        return;
    }
    let java = mixed::java();
    let zkfle = Proc::run_cfg(&java.cfg(3));
    await_up(mixed::ports(), 3, AGREE);
    java.cmd(&["start"], &[]);
    let mut leader = mixed::agreed(&java, &[1, 2, 3], -1);
    println!(
        "mixed ensemble up: leader sid {leader} ({})",
        if leader == 3 { "zkfle" } else { "Java" }
    );

    // Three rounds: hang whoever leads, wait for the other two, resume it.
    for round in 1..=3 {
        let stop = |sig: &str| {
            if leader == 3 {
                signal(&zkfle, sig);
            } else {
                java.cmd(&["kill", &leader.to_string(), sig], &[]);
            }
        };
        stop("STOP");
        let t = Instant::now();
        let others: Vec<i64> = (1..=3).filter(|&s| s != leader).collect();
        let next = mixed::agreed(&java, &others, leader);
        let took = t.elapsed();
        stop("CONT");
        let t2 = Instant::now();
        let all = mixed::agreed(&java, &[1, 2, 3], -1);
        println!(
            "round {round}: SIGSTOP {} leader {leader} -> {} leader {next} after {took:?}; SIGCONT -> all serving under {all} after {:?}",
            if leader == 3 { "zkfle" } else { "Java" },
            if next == 3 { "zkfle" } else { "Java" },
            t2.elapsed()
        );
        assert!(
            took >= Duration::from_millis(SYNC * TICK_MS),
            "a hung leader is only left after syncLimit ticks"
        );
        assert_eq!(all, next, "the resumed peer follows the new leader");
        leader = next;
    }
    drop(zkfle);
}
