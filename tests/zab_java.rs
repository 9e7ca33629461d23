//! zkfle's Zab learner against real Java ZooKeeper 3.8 (PROTOCOL.md §9.2 I3,
//! I5, I6 without the election layer): Java sids 1–3 elect a Java leader;
//! zkfle then follows it as sid 4 (a listed participant that runs no Java)
//! and observes it as sid 5 (a listed observer). Java's `mntr` must count
//! both as synced; a SIGSTOPped leader must be left after
//! `syncLimit × tickTime`. Ports 26100–26399.
//!
//! Needs Debian's `zookeeper` package and `../shared/tools/zk-ensemble.sh`;
//! with `CI` set their absence fails the test, otherwise it is skipped.

#[path = "common/java.rs"]
mod java;
#[path = "common/zab.rs"]
mod zab;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use java::{java_available, JavaEnsemble};
use zab::{wait_for, MemHost};
use zkfle::config::QuorumVerifier;
use zkfle::peer::zab::{follow, ZabConfig, ZabExit, ZabHost, ZabPhase};

const CLIENT_BASE: u16 = 26100;
const QUORUM_BASE: u16 = 26200;
const ELECTION_BASE: u16 = 26300;
/// Ports of the second scenario (zkfle leading Java followers).
const L_CLIENT_BASE: u16 = 26400;
const L_QUORUM_BASE: u16 = 26500;
const L_ELECTION_BASE: u16 = 26600;

/// The JVMs of two scenarios at once would starve this 2-core machine.
static JAVA: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
const TICK_MS: u64 = 200;
const INIT: u32 = 10;
const SYNC: u32 = 5;

/// Java sids `sids` (space-separated) of a `size`-server zk-ensemble.sh
/// ensemble on client ports `base + sid` (quorum +100, election +200), with
/// this file's timing; stopped on drop.
fn start_java(size: u32, sids: &str, extra_cfg: &str, base: u16) -> JavaEnsemble {
    let ens = JavaEnsemble::new(base, size)
        .with_env("ZK_TICK", &TICK_MS.to_string())
        .with_env("ZK_INIT", &INIT.to_string())
        .with_env("ZK_SYNC", &SYNC.to_string())
        .with_env("ZK_HEAP_MB", "256")
        .with_env("ZK_EXTRA_CFG", extra_cfg);
    ens.cmd(&["start"], &[("ZK_SIDS", sids)]);
    ens
}

fn addr(base: u16, sid: i64) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], base + sid as u16))
}

fn learner_cfg(me: i64, observer: bool) -> ZabConfig {
    let quorum_addrs = (1..=5).map(|s| (s, vec![addr(QUORUM_BASE, s)])).collect();
    let mut text = String::new();
    for s in 1..=4 {
        text.push_str(&format!(
            "server.{s}=127.0.0.1:{}:{}:participant\n",
            QUORUM_BASE + s,
            ELECTION_BASE + s
        ));
    }
    text.push_str(&format!(
        "server.5=127.0.0.1:{}:{}:observer\nversion=0",
        QUORUM_BASE + 5,
        ELECTION_BASE + 5
    ));
    ZabConfig {
        my_sid: me,
        tick_time: Duration::from_millis(TICK_MS),
        init_limit: INIT,
        sync_limit: SYNC,
        verifier: QuorumVerifier::majority(1..=4),
        quorum_listen_addrs: vec![addr(QUORUM_BASE, me)],
        quorum_addrs,
        quorum_hosts: Default::default(),
        resolver: zkfle::net::system_resolver(),
        is_observer: observer,
        config_text: text,
    }
}

fn hold_secs() -> u64 {
    std::env::var("ZKFLE_ZAB_HOLD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

#[test]
fn zkfle_follower_and_observer_stay_synced_with_a_java_leader() {
    if !java_available() {
        return;
    }
    let _serial = JAVA.lock();
    let _ = env_logger::builder().is_test(true).try_init();
    let extra = format!(
        "server.5=127.0.0.1:{}:{}:observer",
        QUORUM_BASE + 5,
        ELECTION_BASE + 5
    );
    let ens = start_java(4, "1 2 3", &extra, CLIENT_BASE);
    let (ok, text) = ens.try_cmd(&["wait", "60", "1", "2", "3"]);
    assert!(ok, "Java sids 1-3 did not elect a leader: {text}");
    let leader: i64 = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("leader="))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no leader= in {text:?}"));
    println!("Java leader: sid {leader} ({})", text.trim());

    let fhost = Arc::new(MemHost::new());
    let ohost = Arc::new(MemHost::new());
    let f = {
        let (cfg, h) = (learner_cfg(4, false), fhost.clone());
        std::thread::spawn(move || follow(&cfg, &*h, leader))
    };
    let o = {
        let (cfg, h) = (learner_cfg(5, true), ohost.clone());
        std::thread::spawn(move || follow(&cfg, &*h, leader))
    };
    let started = Instant::now();
    wait_for(
        "zkfle sids 4 and 5 in Broadcast with the Java leader",
        Duration::from_secs(30),
        || {
            fhost.phase_now() == Some(ZabPhase::Broadcast)
                && ohost.phase_now() == Some(ZabPhase::Broadcast)
        },
    );
    println!(
        "zkfle follower + observer synced {:?} after connecting; follower zxid {:#x} (SNAP sets it, DIFF keeps 0)",
        started.elapsed(),
        fhost.last_zxid()
    );
    let synced = |m: &BTreeMap<String, String>| {
        m.get("zk_synced_followers").map(String::as_str) == Some("3")
            && m.get("zk_synced_observers").map(String::as_str) == Some("1")
    };
    wait_for(
        "Java leader mntr: zk_synced_followers 3, zk_synced_observers 1",
        Duration::from_secs(10),
        || synced(&ens.mntr(leader)),
    );

    // Stay synced, answering pings, for the hold period.
    let hold = Duration::from_secs(hold_secs());
    let end = Instant::now() + hold;
    while Instant::now() < end {
        assert!(
            !f.is_finished() && !o.is_finished(),
            "a zkfle learner left the Java leader during the hold"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let m = ens.mntr(leader);
    assert!(synced(&m), "after {hold:?}: Java leader mntr {m:?}");
    for (sid, h) in [(4, &fhost), (5, &ohost)] {
        let s = h.snapshot();
        assert_eq!(s.phases.last(), Some(&ZabPhase::Broadcast), "sid {sid}");
        assert_eq!(
            (s.accepted_epoch, s.current_epoch),
            (1, 1),
            "sid {sid} epochs persisted as Java's"
        );
    }
    println!(
        "held {hold:?} synced: zk_synced_followers={} zk_synced_observers={}",
        m["zk_synced_followers"], m["zk_synced_observers"]
    );

    // Hung Java leader: both learners leave after syncLimit x tickTime.
    let (ok, text) = ens.try_cmd(&["kill", &leader.to_string(), "STOP"]);
    assert!(ok, "SIGSTOP failed: {text}");
    let stopped = Instant::now();
    let fexit = f.join().expect("follower thread");
    let took_f = stopped.elapsed();
    let oexit = o.join().expect("observer thread");
    let took_o = stopped.elapsed();
    let _ = ens.try_cmd(&["kill", &leader.to_string(), "CONT"]);
    println!(
        "SIGSTOPped Java leader left by the follower after {took_f:?} ({fexit}), by the observer after {took_o:?} ({oexit}); syncLimit x tickTime = {} ms",
        TICK_MS * u64::from(SYNC)
    );
    for exit in [&fexit, &oexit] {
        assert!(
            matches!(exit, ZabExit::LeaderSilent { .. }),
            "expected LeaderSilent, got {exit}"
        );
    }
}

/// Plays sid 3's part of Fast Leader Election: dials `sid`'s election port
/// (only connections from the larger sid survive, PROTOCOL.md §2.4), sends a
/// V1 handshake and a LOOKING vote for itself. A fresh Java peer adopts the
/// larger sid and follows it. Returns the connection (kept open).
fn vote_for_sid_3(sid: i64) -> std::net::TcpStream {
    use std::io::Write;
    use zkfle::wire::{Handshake, HandshakeFormat, Notification, PeerAddress, ServerState};
    let target = addr(L_ELECTION_BASE, sid);
    let end = Instant::now() + Duration::from_secs(60);
    let mut s = loop {
        match std::net::TcpStream::connect(target) {
            Ok(s) => break s,
            Err(e) => {
                assert!(
                    Instant::now() < end,
                    "Java sid {sid} election port never opened: {e}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    let mut out = Vec::new();
    Handshake {
        format: HandshakeFormat::V1,
        sid: 3,
        addresses: vec![PeerAddress {
            host: "127.0.0.1".into(),
            port: L_ELECTION_BASE + 3,
        }],
    }
    .encode(&mut out);
    let vote = Notification {
        state: ServerState::Looking,
        leader: 3,
        zxid: 0,
        election_epoch: 1,
        peer_epoch: 0,
        version: 0,
    };
    out.extend_from_slice(&vote.encode_frame_40());
    s.write_all(&out).expect("send handshake and vote");
    s
}

#[test]
fn java_followers_sync_with_a_zkfle_leader_and_reelect_when_it_leaves() {
    if !java_available() {
        return;
    }
    let _serial = JAVA.lock();
    let _ = env_logger::builder().is_test(true).try_init();
    let ens = start_java(3, "1 2", "", L_CLIENT_BASE);

    // The zkfle leader listens first; Java learners arrive whenever their
    // JVMs have booted and decided, so give discovery a long initLimit.
    let sids = [1i64, 2, 3];
    let mut text = String::new();
    for s in sids {
        text.push_str(&format!(
            "server.{s}=127.0.0.1:{}:{}:participant\n",
            L_QUORUM_BASE + s as u16,
            L_ELECTION_BASE + s as u16
        ));
    }
    text.push_str("version=0");
    let cfg = ZabConfig {
        my_sid: 3,
        tick_time: Duration::from_millis(TICK_MS),
        init_limit: 300,
        sync_limit: SYNC,
        verifier: QuorumVerifier::majority(sids),
        quorum_listen_addrs: vec![addr(L_QUORUM_BASE, 3)],
        quorum_addrs: sids
            .iter()
            .map(|&s| (s, vec![addr(L_QUORUM_BASE, s)]))
            .collect(),
        quorum_hosts: Default::default(),
        resolver: zkfle::net::system_resolver(),
        is_observer: false,
        config_text: text,
    };
    let host = Arc::new(MemHost::new());
    let l = {
        let h = host.clone();
        std::thread::spawn(move || zkfle::peer::zab::lead(&cfg, &*h))
    };
    let votes: Vec<_> = [1, 2].into_iter().map(vote_for_sid_3).collect();

    wait_for("zkfle leader in Broadcast", Duration::from_secs(60), || {
        host.phase_now() == Some(ZabPhase::Broadcast)
    });
    wait_for(
        "Java sids 1 and 2 report Mode: follower",
        Duration::from_secs(30),
        || (1..=2).all(|s| ens.srvr_mode(s).as_deref() == Some("follower")),
    );
    let s = host.snapshot();
    assert_eq!(
        (s.accepted_epoch, s.current_epoch, s.last_zxid),
        (1, 1, 1 << 32)
    );
    for sid in 1..=2 {
        let v2 = ens.zk_dir.join(format!("node{sid}/data/version-2"));
        for f in ["acceptedEpoch", "currentEpoch"] {
            let t = std::fs::read_to_string(v2.join(f)).unwrap_or_default();
            assert_eq!(t, "1", "Java sid {sid} {f} after syncing with zkfle");
        }
    }
    // Pings keep them: still followers after several syncLimits.
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        assert!(!l.is_finished(), "zkfle leader lost its Java followers");
        std::thread::sleep(Duration::from_millis(250));
    }
    for sid in 1..=2 {
        assert_eq!(ens.srvr_mode(sid).as_deref(), Some("follower"), "sid {sid}");
    }
    println!("Java sids 1, 2 followed the zkfle leader (empty DIFF) and stayed 5 s");

    // The zkfle leader goes away (its sockets close): Java elects anew.
    drop(votes);
    host.request_stop();
    let left = Instant::now();
    let exit = l.join().expect("leader thread");
    assert!(matches!(exit, ZabExit::Shutdown), "{exit}");
    let (ok, out) = ens.try_cmd(&["wait", "30", "1", "2"]);
    assert!(ok, "Java sids 1, 2 did not re-elect: {out}");
    println!(
        "after the zkfle leader left, Java re-elected: {} ({:?} since leaving)",
        out.trim(),
        left.elapsed()
    );
}
