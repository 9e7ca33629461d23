//! Whole `zkfle run` processes from generated zoo.cfg files: fresh
//! ensembles elect the highest sid and every follower names it, restarts keep
//! the epoch files, peers started one by one in a seeded random order agree,
//! a late peer joins an established ensemble, a bad config exits 2, and
//! `zkfle ensemble --exit-after-election` works.
//!
//! Ports: 23001..=25003 (bases 300 apart from 23000; each base uses
//! +1..7, +101..107, +201..207).

#[path = "common/peer.rs"]
mod peer;

use peer::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Processes compete for two cores; one scenario at a time keeps the printed
/// election times meaningful and the machine usable.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// "Within a second" is the goal on loopback; the deadline here is
/// generous so a loaded CI machine does not fail the test.
const AGREE: Duration = Duration::from_secs(20);

fn epoch_files(data: &Path) -> (String, String) {
    let v = data.join("version-2");
    (
        std::fs::read_to_string(v.join("currentEpoch")).unwrap_or_else(|e| panic!("{v:?}: {e}")),
        std::fs::read_to_string(v.join("acceptedEpoch")).unwrap_or_else(|e| panic!("{v:?}: {e}")),
    )
}

fn fresh_ensemble_elects_highest_sid_and_restarts(n: i64, base: u16) {
    let _g = SERIAL.lock();
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base };
    let cfgs = write_ensemble(dir.path(), n, ports, "");
    let sids: Vec<i64> = (1..=n).collect();

    // The highest sid starts first and the rest once its ports are open:
    // with every process racing, a quorum that hears the highest sid's port
    // refuse (not bound yet) may rightly elect without it, which is a
    // correct election but not the one this test pins down.
    let t0 = Instant::now();
    let mut procs = vec![Proc::run_cfg(&cfgs[(n - 1) as usize])];
    await_up(ports, n, AGREE);
    procs.extend(cfgs[..(n - 1) as usize].iter().map(|c| Proc::run_cfg(c)));
    let (leader, all) = await_agreement(ports, &sids, AGREE);
    let wall = t0.elapsed();
    assert_eq!(leader, n, "a fresh ensemble elects the highest sid");
    for (sid, m) in &all {
        let want = if *sid == n { "leader" } else { "follower" };
        assert_eq!(m["zk_server_state"], want, "sid {sid}");
        assert_eq!(m["zk_election_count"], "1", "sid {sid}: one election");
        assert_eq!(mode(ports.client_addr(*sid)).as_deref(), Some(want));
    }
    let ms: Vec<&str> = all
        .values()
        .map(|m| m["zk_last_election_ms"].as_str())
        .collect();
    println!("n={n} fresh: zk_last_election_ms per sid {ms:?}; launch to agreement {wall:?}");

    // Graceful stop: SIGTERM, every thread joined, exit status 0.
    for p in procs.iter_mut() {
        let st = p.terminate(Duration::from_secs(10));
        assert!(
            st.is_some_and(|s| s.success()),
            "{} did not exit cleanly on SIGTERM: {st:?}\n{}",
            p.name,
            p.log_text()
        );
    }
    let before: Vec<(String, String)> = (1..=n)
        .map(|s| epoch_files(&dir.path().join(format!("node{s}"))))
        .collect();
    for (c, a) in &before {
        assert!(
            c.parse::<i64>().is_ok() && !c.ends_with('\n'),
            "currentEpoch {c:?}"
        );
        assert!(a.parse::<i64>().unwrap() >= c.parse::<i64>().unwrap());
    }

    // Restart with the data kept: they elect again, epoch files intact.
    let t1 = Instant::now();
    let mut _procs = vec![Proc::run_cfg(&cfgs[(n - 1) as usize])];
    await_up(ports, n, AGREE);
    _procs.extend(cfgs[..(n - 1) as usize].iter().map(|c| Proc::run_cfg(c)));
    let (leader2, all2) = await_agreement(ports, &sids, AGREE);
    let ms2: Vec<&str> = all2
        .values()
        .map(|m| m["zk_last_election_ms"].as_str())
        .collect();
    println!(
        "n={n} restart: zk_last_election_ms per sid {ms2:?}; launch to agreement {:?}",
        t1.elapsed()
    );
    // The vote order is (peerEpoch, zxid, sid) and a restarted empty peer
    // votes with zxid 0, so the restart elects the highest sid among those
    // with the highest currentEpoch on disk. (Stopping the leader first
    // lets the others establish a newer epoch before they stop.)
    let expected = (1..=n)
        .max_by_key(|&s| (before[(s - 1) as usize].0.parse::<i64>().unwrap_or(-1), s))
        .unwrap_or(n);
    assert_eq!(
        leader2, expected,
        "the best (currentEpoch, sid) on disk leads again: {before:?}"
    );
    for (i, sid) in sids.iter().enumerate() {
        let now = epoch_files(&dir.path().join(format!("node{sid}")));
        assert!(
            now.0.parse::<i64>().unwrap() >= before[i].0.parse::<i64>().unwrap(),
            "sid {sid}: currentEpoch went back: {:?} -> {now:?}",
            before[i]
        );
        assert_eq!(
            all2[sid]["zk_current_epoch"], now.0,
            "sid {sid}: mntr vs file"
        );
        assert_eq!(
            all2[sid]["zk_accepted_epoch"], now.1,
            "sid {sid}: mntr vs file"
        );
    }
}

#[test]
fn three_fresh_peers_elect_sid_3_and_again_after_restart() {
    fresh_ensemble_elects_highest_sid_and_restarts(3, 23000);
}

#[test]
fn five_fresh_peers_elect_sid_5_and_again_after_restart() {
    fresh_ensemble_elects_highest_sid_and_restarts(5, 23300);
}

#[test]
fn seven_fresh_peers_elect_sid_7_and_again_after_restart() {
    fresh_ensemble_elects_highest_sid_and_restarts(7, 23600);
}

#[test]
fn peers_started_one_by_one_in_seeded_random_order_agree() {
    let _g = SERIAL.lock();
    let seed: u64 = std::env::var("ZKFLE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026);
    let n = 5;
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 23900 };
    let cfgs = write_ensemble(dir.path(), n, ports, "");
    let mut order: Vec<i64> = (1..=n).collect();
    Rng(seed).shuffle(&mut order);
    println!("seed {seed} (ZKFLE_TEST_SEED): start order {order:?}");
    let mut procs = Vec::new();
    for &sid in &order {
        procs.push(Proc::run_cfg(&cfgs[(sid - 1) as usize]));
        await_up(ports, sid, AGREE);
    }
    let sids: Vec<i64> = (1..=n).collect();
    let (leader, all) = await_agreement(ports, &sids, AGREE);
    // The first three to start form a quorum by themselves and elect the
    // best of them; a later peer can only win if it joined that election.
    let first_quorum_best = *order[..3].iter().max().unwrap();
    assert!(
        leader >= first_quorum_best,
        "leader {leader} below the best of the first quorum {first_quorum_best}"
    );
    assert_eq!(all[&leader]["zk_server_state"], "leader");
    let followers = all
        .values()
        .filter(|m| m["zk_server_state"] == "follower")
        .count();
    assert_eq!(followers as i64, n - 1);
}

#[test]
fn late_peer_joins_the_established_ensemble_as_follower() {
    let _g = SERIAL.lock();
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 24200 };
    let cfgs = write_ensemble(dir.path(), 3, ports, "");
    let _p1 = Proc::run_cfg(&cfgs[0]);
    let _p2 = Proc::run_cfg(&cfgs[1]);
    let (leader, _) = await_agreement(ports, &[1, 2], AGREE);
    assert_eq!(leader, 2, "2 of 3 is a quorum: sid 2 leads");
    let _p3 = Proc::run_cfg(&cfgs[2]);
    let (leader, all) = await_agreement(ports, &[1, 2, 3], AGREE);
    assert_eq!(
        leader, 2,
        "sid 3 joins the established leader, no new election"
    );
    assert_eq!(all[&3]["zk_server_state"], "follower");
    for sid in [1, 2] {
        assert_eq!(
            all[&sid]["zk_election_count"], "1",
            "sid {sid} was not disturbed by the newcomer"
        );
    }
    println!(
        "late joiner: sid 3 decided in {} ms",
        all[&3]["zk_last_election_ms"]
    );
}

#[test]
fn bad_config_exits_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dataDir={}\nclientPort=24501\ntickTime=two-thousand\nserver.1=127.0.0.1:24601:24701\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(zkfle_bin())
        .args(["run", cfg.to_str().unwrap(), "--myid", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains("zoo.cfg"), "names the file: {err}");
    assert!(err.contains("tickTime"), "names the key: {err}");
    assert!(err.contains('3'), "names line 3: {err}");
}

#[test]
fn ensemble_command_prints_the_leader_and_exits() {
    let _g = SERIAL.lock();
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 24800 };
    write_ensemble(dir.path(), 3, ports, "");
    let out = Command::new(zkfle_bin())
        .args([
            "ensemble",
            "--conf",
            dir.path().to_str().unwrap(),
            "--exit-after-election",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "status {:?}\nstdout {stdout}\nstderr {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "one line per peer: {stdout}");
    assert!(lines[2].starts_with("sid 3: leader, leader 3"), "{stdout}");
    assert!(
        lines[0].starts_with("sid 1: follower, leader 3"),
        "{stdout}"
    );
}

#[test]
fn accepted_epoch_below_current_epoch_refuses_to_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 24500 };
    let cfgs = write_ensemble(dir.path(), 3, ports, "");
    let v = dir.path().join("node1/version-2");
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("currentEpoch"), "4").unwrap();
    std::fs::write(v.join("acceptedEpoch"), "3").unwrap();
    let out = Command::new(zkfle_bin())
        .args(["run", cfgs[0].to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started anyway: {err}");
    assert!(
        err.contains("acceptedEpoch") && err.contains("node1/version-2"),
        "the message names the file: {err}"
    );
    assert_eq!(
        std::fs::read(v.join("currentEpoch")).unwrap(),
        b"4",
        "left alone"
    );
    assert!(!listening(ports.election(1)), "no election port opened");
}
