//! `zkfle bench notify` as users run it (DESIGN.md contract): a figure
//! against a settled zkfle peer and a Java ZooKeeper 3.8 peer, and a clear
//! message with a non-zero exit when there is nothing to measure.

#[path = "common/java.rs"]
mod java;
#[path = "common/peer.rs"]
mod peer;

use peer::{await_agreement, Ports, Proc};
use std::process::Command;
use std::time::Duration;

/// sid 100 is listed as an observer that never runs: the benchmark's sid.
const OBSERVER_100: &str = "server.100=127.0.0.1:29898:29899:observer\n";

fn bench(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(peer::zkfle_bin())
        .arg("bench")
        .arg("notify")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("zkfle runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The figure on the last line, which the contract fixes.
fn figure(stdout: &str) -> f64 {
    let last = stdout.lines().last().unwrap_or_default();
    let value = last
        .strip_prefix("notifications_per_sec ")
        .unwrap_or_else(|| panic!("last line is not the figure: {last:?}\n{stdout}"));
    value.parse().expect("a number")
}

#[test]
fn measures_a_settled_zkfle_peer_and_rejects_what_cannot_be_measured() {
    let ports = Ports { base: 29800 };
    let dir = tempfile::tempdir().expect("temp dir");
    let cfgs = peer::write_ensemble(dir.path(), 3, ports, OBSERVER_100);
    let _procs: Vec<Proc> = cfgs.iter().rev().map(|c| Proc::run_cfg(c)).collect();
    let (leader, _) = await_agreement(ports, &[1, 2, 3], Duration::from_secs(20));
    let target = format!("127.0.0.1:{}", ports.election(leader));

    // Replies are counted and each must decode as the leader's vote.
    let (code, stdout, stderr) = bench(&["--peer", &target, "--sid", "100", "--duration", "1"]);
    assert_eq!(code, 0, "bench against zkfle failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("target_vote state=LEADING leader={leader}")),
        "{stdout}"
    );
    assert!(figure(&stdout) > 0.0, "{stdout}");
    let (code, stdout, _) = bench(&[
        "--peer",
        &target,
        "--sid",
        "100",
        "--duration",
        "1",
        "--mode",
        "latency",
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("latency_us p50 "), "{stdout}");

    // A sid below the target's: the tie-break hangs up; the tool says why.
    let (code, _, stderr) = bench(&["--peer", &target, "--sid", "1", "--duration", "1"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("closed the connection of sid 1 right after the handshake"),
        "{stderr}"
    );

    // Nothing listening: a connect error, not a zero figure.
    let (code, _, stderr) = bench(&[
        "--peer",
        "127.0.0.1:29897",
        "--sid",
        "100",
        "--duration",
        "1",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cannot connect to 127.0.0.1:29897"),
        "{stderr}"
    );
}

#[test]
fn a_looking_target_is_refused_with_a_clear_message() {
    // One peer of three cannot elect: it stays LOOKING and answers so.
    let ports = Ports { base: 29830 };
    let dir = tempfile::tempdir().expect("temp dir");
    let cfgs = peer::write_ensemble(dir.path(), 3, ports, OBSERVER_100);
    let _lonely = Proc::run_cfg(&cfgs[0]);
    peer::await_up(ports, 1, Duration::from_secs(20));
    let target = format!("127.0.0.1:{}", ports.election(1));
    let (code, stdout, stderr) = bench(&["--peer", &target, "--sid", "100", "--duration", "1"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("is LOOKING"), "{stderr}");
}

#[test]
fn measures_a_java_zookeeper_peer() {
    if !java::java_available() {
        return;
    }
    let zk = java::JavaEnsemble::new(29850, 3)
        .with_env("ZK_EXTRA_CFG", "server.100=127.0.0.1:29848:29849:observer");
    zk.cmd(&["start"], &[]);
    zk.cmd(&["wait", "60"], &[]);
    let out = zk.cmd(&["leader"], &[]);
    let leader: u16 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("leader sid");
    let target = format!("127.0.0.1:{}", 29850 + 200 + leader);
    let (code, stdout, stderr) = bench(&["--peer", &target, "--sid", "100", "--duration", "1"]);
    assert_eq!(code, 0, "bench against Java failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("target_vote state=LEADING leader={leader}")),
        "{stdout}"
    );
    assert!(figure(&stdout) > 0.0, "{stdout}");
}
