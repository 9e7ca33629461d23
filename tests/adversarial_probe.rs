//! Adversarial process tests (PROTOCOL.md §8, §9.3): every probe of
//! `shared/tools/zk-election-probe.py` against a running zkfle ensemble, as
//! a follower and as the leader. Afterwards the ensemble must still have
//! exactly one leader and every peer its full set of election links.
//!
//! The zoo.cfg lists four participants and runs three, so the probe can
//! impersonate the configured-but-absent sid 4, which is larger than every
//! running sid (the tie-break keeps its connections).

#[path = "common/peer.rs"]
mod peer;

use peer::{await_agreement, mntr, Ports, Proc};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const PORTS: Ports = Ports { base: 29000 };

fn probe_script() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/tools/zk-election-probe.py"
    ))
}

/// Runs every probe against `target`; returns (exit status, output).
fn run_probes(target: i64, others: &[i64], pid: u32, log: &std::path::Path) -> (i32, String) {
    let peers = others
        .iter()
        .map(|s| format!("127.0.0.1:{}", PORTS.client(*s)))
        .collect::<Vec<_>>()
        .join(",");
    let out = Command::new("python3")
        .arg(probe_script())
        .args(["--target", &format!("127.0.0.1:{}", PORTS.election(target))])
        .args(["--target-sid", &target.to_string()])
        .args(["--as-sid", "4"])
        .args(["--client", &format!("127.0.0.1:{}", PORTS.client(target))])
        .args(["--peers", &peers])
        .args(["--pid", &pid.to_string()])
        .args(["--log", log.to_str().expect("utf-8 temp path")])
        .output()
        .expect("python3 runs the probe script");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn assert_healthy(sids: &[i64]) -> i64 {
    let (leader, all) = await_agreement(PORTS, sids, Duration::from_secs(20));
    let leaders = all
        .values()
        .filter(|m| m.get("zk_server_state").map(String::as_str) == Some("leader"))
        .count();
    assert_eq!(leaders, 1, "exactly one leader after probing: {all:?}");
    for &sid in sids {
        // Every running peer has a live link to the other two; the absent
        // sid 4 is not counted (it never runs).
        peer::poll(
            Duration::from_secs(5),
            &format!("sid {sid} linked to both peers"),
            || {
                let m = mntr(PORTS.client_addr(sid)).ok_or("no mntr")?;
                match m.get("zk_connected_peers").map(String::as_str) {
                    Some("2") => Ok(()),
                    other => Err(format!("zk_connected_peers {other:?}")),
                }
            },
        );
    }
    leader
}

#[test]
fn every_probe_passes_against_follower_and_leader() {
    if probe_script().exists().then_some(()).is_none() {
        panic!(
            "{} is missing: shared/ must sit beside the checkout",
            probe_script().display()
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let cfgs = peer::write_ensemble(dir.path(), 4, PORTS, "");
    // Highest sid first, so the fresh ensemble elects 3 at once.
    let mut procs: Vec<Proc> = cfgs[..3].iter().rev().map(|c| Proc::run_cfg(c)).collect();
    procs.reverse();
    let sids = [1, 2, 3];
    let leader = assert_healthy(&sids);
    assert_eq!(leader, 3, "fresh ensemble elects the highest sid");

    for (role, target) in [("follower", 1), ("leader", leader)] {
        let idx = (target - 1) as usize;
        let pid = procs[idx].pid().expect("target running");
        let others: Vec<i64> = sids.iter().copied().filter(|s| *s != target).collect();
        let (code, text) = run_probes(target, &others, pid, &procs[idx].log);
        assert!(
            code == 0 && text.contains("probes passed 27/27"),
            "probing the {role} (sid {target}) failed (exit {code}):\n{text}"
        );
        let after = assert_healthy(&sids);
        assert_eq!(after, leader, "probing the {role} changed the leader");
    }
}
