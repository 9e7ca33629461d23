//! How long `is_leader()` stays true on a leader whose quorum went silent
//! (the bound `PeerHandle`'s docs and the README state): an in-process
//! leader, two `zkfle run` followers SIGSTOPped at once (their kernels keep
//! the TCP connections open, so the leader hears nothing, not an EOF). The
//! leader steps down at the first tick at which no follower was heard from
//! within `syncLimit` ticks: after about `syncLimit` and at most
//! `syncLimit + 1` ticks. Ports 32401..=32603.

#[path = "common/peer.rs"]
mod peer;

use std::process::Command;
use std::time::{Duration, Instant};

use peer::*;
use zkfle::PeerBuilder;

const TICK_MS: u64 = 200;
const SYNC: u64 = 3;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_quorum_goes_silent_stops_leading_within_sync_limit_plus_one_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 32400 };
    let cfgs = write_ensemble_timed(
        dir.path(),
        3,
        ports,
        &format!("tickTime={TICK_MS}\ninitLimit=10\nsyncLimit={SYNC}\n"),
        "",
    );
    // Sid 3 (equal zxids: the largest sid leads) runs in this process and
    // starts first, so it leads.
    let leader = PeerBuilder::from_config_file(&cfgs[2]).start().unwrap();
    let followers: Vec<Proc> = cfgs[..2].iter().map(|c| Proc::run_cfg(c)).collect();
    let (l, _) = await_agreement(ports, &[1, 2, 3], Duration::from_secs(30));
    assert_eq!(l, 3);
    assert!(leader.is_leader());
    let mut states = leader.watch();

    let stopped = Instant::now();
    for f in &followers {
        signal(f, "STOP");
    }
    tokio::time::timeout(
        Duration::from_secs(30),
        states.wait_for(|s| !s.role.is_leader()),
    )
    .await
    .expect("the leader stepped down")
    .expect("the peer runs");
    let stale = stopped.elapsed();
    let tick = Duration::from_millis(TICK_MS);
    println!(
        "is_leader() true for {stale:?} after the quorum went silent (tickTime {TICK_MS} ms, syncLimit {SYNC})"
    );
    assert!(!leader.is_leader());
    // Lower bound: followers answered a PING at most half a tick before the
    // stop, so no deadline ran out before syncLimit - 1/2 ticks.
    assert!(
        stale >= tick * (2 * SYNC as u32 - 1) / 2,
        "stepped down before the followers' syncLimit ran out: {stale:?}"
    );
    // Upper bound, with room for a loaded machine's scheduling: the stated
    // syncLimit + 1 ticks.
    assert!(
        stale <= tick * (SYNC as u32 + 1) + Duration::from_millis(300),
        "is_leader() stayed true longer than syncLimit + 1 ticks: {stale:?}"
    );
    for f in &followers {
        signal(f, "CONT");
    }
    leader.shutdown_async().await;
}
