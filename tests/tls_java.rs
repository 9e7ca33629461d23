//! Quorum TLS between zkfle and Java ZooKeeper 3.8 (issue 15 items 3 and
//! 4), as processes, with certificates made at test time (rcgen: one CA,
//! one ECDSA peer certificate with `IP:127.0.0.1`, a PEM key store holding
//! the certificate and an unencrypted PKCS#8 key, as Java's PEM loader
//! reads it).
//!
//! * `java_and_zkfle_lead_each_other_over_tls_and_refuse_plaintext_peers`:
//!   Java sids 1, 2 and zkfle sid 3, all `sslQuorum=true`. Java followers
//!   sync with the zkfle leader; a plaintext zkfle peer (sid 4) is refused
//!   by the TLS Java peers and by the TLS zkfle peer, then a plaintext Java
//!   sid 4 is refused too, and neither disturbs the ensemble; then the
//!   zkfle leader is SIGKILLed, a Java peer leads and the restarted zkfle
//!   peer follows it over TLS.
//! * `mixed_rolling_upgrade_to_tls_keeps_a_leader`: Java sid 3 leading
//!   zkfle sids 1 and 2 in plaintext; ZooKeeper's documented procedure
//!   (`portUnification=true`, then `sslQuorum=true`, then
//!   `portUnification=false`, one peer restarted at a time) keeps one
//!   leader after every restart, and at the end both kinds of peer refuse
//!   plaintext.
//!
//! Modes come from `srvr` on each peer's client port (zkfle and Java print
//! the same `Mode:` line), the sync state from `mntr`.
//!
//! Without Java ZooKeeper the tests skip with a message, unless `CI` is set:
//! then they fail. Ports 19001..=19604 (bases 19000 and 19400).

#[path = "common/certs.rs"]
mod certs;
#[path = "common/java.rs"]
mod java;
#[path = "common/peer.rs"]
mod peer;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use java::{java_available, JavaEnsemble};
use peer::{hold_for, listening, mntr, mode, poll, Ports, Proc};

/// Two JVMs at once per test is what this 2-core machine takes; the tests
/// run one after the other.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Java's JVM start-up dominates every wait (seconds on a loaded machine).
const SETTLE: Duration = Duration::from_secs(60);

/// The CA and the one peer certificate every peer uses; returns the
/// `ssl.quorum.*` lines naming them.
fn stores(dir: &Path) -> String {
    let ca = certs::Ca::new("zk-test-ca");
    let ks = ca.peer("zk-peer").write_pem(&dir.join("peer.pem"));
    let ts = certs::write_trust(&dir.join("trust.pem"), &[&ca]);
    certs::tls_lines(&ks, &ts)
}

/// A zk-ensemble.sh ensemble on `base` with tickTime 1000 and small heaps.
fn java_ensemble(base: u16, size: u32, extra: &str) -> JavaEnsemble {
    JavaEnsemble::new(base, size)
        .with_env("ZK_TICK", "1000")
        .with_env("ZK_INIT", "10")
        .with_env("ZK_SYNC", "5")
        .with_env("ZK_HEAP_MB", "200")
        .with_env("ZK_EXTRA_CFG", extra)
}

/// Waits until `srvr` on every `(sid, mode)` reports that mode.
fn await_modes(ports: Ports, want: &[(i64, &str)], limit: Duration) {
    poll(limit, &format!("modes {want:?}"), || modes_are(ports, want));
}

fn modes_are(ports: Ports, want: &[(i64, &str)]) -> Result<(), String> {
    let seen: Vec<(i64, Option<String>)> = want
        .iter()
        .map(|&(sid, _)| (sid, mode(ports.client_addr(sid))))
        .collect();
    if want
        .iter()
        .zip(&seen)
        .all(|((_, w), (_, s))| s.as_deref() == Some(*w))
    {
        Ok(())
    } else {
        Err(format!("{seen:?}"))
    }
}

/// One `mntr` value of `sid` (zkfle or Java).
fn m(ports: Ports, sid: i64, key: &str) -> Option<String> {
    mntr(ports.client_addr(sid)).and_then(|m| m.get(key).cloned())
}

fn refused(ports: Ports, sid: i64) -> u64 {
    m(ports, sid, "zk_tls_refused")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Waits until `mntr` of `sid` has `key` = `value`.
fn await_mntr(ports: Ports, sid: i64, key: &str, value: &str) {
    poll(
        Duration::from_secs(20),
        &format!("sid {sid}: {key} = {value}"),
        || match m(ports, sid, key) {
            Some(v) if v == value => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}

/// `cfg` with every TLS line dropped: the same peer, in plaintext.
fn plaintext_copy(cfg: &Path, to: &Path) -> PathBuf {
    let text = std::fs::read_to_string(cfg).unwrap();
    let plain: String = text
        .lines()
        .filter(|l| !l.starts_with("sslQuorum") && !l.starts_with("ssl.quorum."))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(to, plain).unwrap();
    to.to_path_buf()
}

/// Number of lines of Java `sid`'s log naming a refused plaintext peer.
fn java_blocked(java: &JavaEnsemble, sid: i64) -> usize {
    java.log(sid)
        .lines()
        .filter(|l| l.contains("Blocked insecure connection attempt"))
        .count()
}

#[test]
fn java_and_zkfle_lead_each_other_over_tls_and_refuse_plaintext_peers() {
    if !java_available() {
        return;
    }
    let _serial = SERIAL.lock();
    let ports = Ports { base: 19000 };
    let dir = tempfile::tempdir().unwrap();
    let tls = format!("sslQuorum=true\n{}", stores(dir.path()));
    // Three voters and sid 4, listed as an observer: the plaintext
    // intruder later on (an observer, so voters 1 and 2 still make a
    // quorum once sid 3 is killed).
    let java = java_ensemble(ports.base, 4, &tls);
    java.cmd(&["init"], &[]);
    for sid in 1..=4 {
        let cfg = java.cfg(sid);
        let text = std::fs::read_to_string(&cfg).unwrap();
        let observer: String = text
            .lines()
            .map(|l| {
                if l.starts_with("server.4=") {
                    format!("{l}:observer\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&cfg, observer).unwrap();
    }

    // zkfle sid 3 first, so it is the best vote the JVMs see.
    let mut z3 = Proc::run_cfg(&java.cfg(3));
    poll(Duration::from_secs(20), "zkfle sid 3 listening", || {
        listening(ports.election(3)).then_some(()).ok_or_default()
    });
    // `restart` launches with the zoo.cfg as edited (`start` rewrites it).
    java.cmd(&["restart", "1"], &[]);
    java.cmd(&["restart", "2"], &[]);
    await_modes(
        ports,
        &[(1, "follower"), (2, "follower"), (3, "leader")],
        SETTLE,
    );
    // The Java followers synced with the zkfle leader over its TLS quorum
    // port; nothing was refused.
    await_mntr(ports, 3, "zk_synced_followers", "2");
    await_mntr(ports, 3, "zk_connected_peers", "2");
    assert_eq!(refused(ports, 3), 0, "a TLS Java peer was refused");
    let log = z3.log_text();
    assert!(
        log.contains("learner TLS from 127.0.0.1"),
        "no TLS learner session in zkfle's log: {log}"
    );
    let elections = m(ports, 3, "zk_election_count");
    let undisturbed = || {
        modes_are(ports, &[(1, "follower"), (2, "follower"), (3, "leader")])?;
        match m(ports, 3, "zk_synced_followers").as_deref() {
            Some("2") => {}
            other => return Err(format!("zk_synced_followers {other:?}")),
        }
        let now = m(ports, 3, "zk_election_count");
        if now == elections {
            Ok(())
        } else {
            Err(format!("elections {elections:?} -> {now:?}"))
        }
    };

    // A plaintext zkfle observer sid 4: it dials every voter in plaintext.
    // The Java peers block it, zkfle sid 3 counts the refusal; sid 4 never
    // gets a vote back, so it never serves.
    let plain4 = plaintext_copy(&java.cfg(4), &dir.path().join("zoo4-plain.cfg"));
    let mut z4 = Proc::run_cfg(&plain4);
    poll(
        Duration::from_secs(20),
        "plaintext zkfle sid 4 refused by Java sids 1, 2 and zkfle sid 3",
        || {
            let seen = (
                java_blocked(&java, 1),
                java_blocked(&java, 2),
                refused(ports, 3),
            );
            if seen.0 > 0 && seen.1 > 0 && seen.2 > 0 {
                Ok(())
            } else {
                Err(format!("(java 1, java 2, zkfle 3) refusals {seen:?}"))
            }
        },
    );
    hold_for(
        Duration::from_secs(2),
        "ensemble beside zkfle sid 4",
        || {
            undisturbed()?;
            match mode(ports.client_addr(4)).as_deref() {
                Some("leader" | "follower" | "observer") => Err("plaintext sid 4 joined".into()),
                _ => Ok(()),
            }
        },
    );
    z4.terminate(Duration::from_secs(10));

    // A plaintext Java sid 4: refused by zkfle sid 3 (and by the TLS JVMs).
    let before = refused(ports, 3);
    let blocked = (java_blocked(&java, 1), java_blocked(&java, 2));
    let cfg4 = java.cfg(4);
    plaintext_copy(&cfg4.clone(), &cfg4);
    java.cmd(&["restart", "4"], &[]);
    poll(
        Duration::from_secs(40),
        "plaintext Java sid 4 refused by zkfle sid 3 and Java sids 1, 2",
        || {
            let seen = (
                java_blocked(&java, 1),
                java_blocked(&java, 2),
                refused(ports, 3),
            );
            if seen.0 > blocked.0 && seen.1 > blocked.1 && seen.2 > before {
                Ok(())
            } else {
                Err(format!("(java 1, java 2, zkfle 3) refusals {seen:?}"))
            }
        },
    );
    hold_for(Duration::from_secs(2), "ensemble beside Java sid 4", || {
        undisturbed()?;
        match mode(ports.client_addr(4)).as_deref() {
            Some("leader" | "follower" | "observer") => Err("plaintext Java sid 4 joined".into()),
            _ => Ok(()),
        }
    });
    java.cmd(&["kill", "4"], &[]);

    // SIGKILL the zkfle leader: Java sid 2 leads sid 1; zkfle sid 3,
    // restarted, follows the Java leader over TLS.
    z3.kill();
    await_modes(ports, &[(1, "follower"), (2, "leader")], SETTLE);
    let z3 = Proc::run_cfg(&java.cfg(3));
    await_modes(
        ports,
        &[(1, "follower"), (2, "leader"), (3, "follower")],
        SETTLE,
    );
    await_mntr(ports, 3, "zk_leader_sid", "2");
    await_mntr(ports, 3, "zk_peer_state", "following - broadcast");
    await_mntr(ports, 2, "zk_synced_followers", "2");
    let log = z3.log_text();
    assert!(
        log.contains("TLS to the leader at 127.0.0.1:") && log.contains("TLSv1_2"),
        "zkfle sid 3 did not reach the Java leader over TLS 1.2: {log}"
    );
    assert_eq!(
        refused(ports, 3),
        0,
        "the restarted sid 3 refused a TLS peer"
    );
}

/// The three steps of ZooKeeper's rolling upgrade to quorum TLS.
const STEPS: [&str; 3] = [
    "portUnification=true\n",
    "sslQuorum=true\nportUnification=true\n",
    "sslQuorum=true\nportUnification=false\n",
];

#[test]
fn mixed_rolling_upgrade_to_tls_keeps_a_leader() {
    if !java_available() {
        return;
    }
    let _serial = SERIAL.lock();
    let ports = Ports { base: 19400 };
    let dir = tempfile::tempdir().unwrap();
    let stores = stores(dir.path());
    let java = java_ensemble(ports.base, 3, "");
    java.cmd(&["init"], &[]);
    let base_cfg: Vec<String> = (1..=3)
        .map(|s| std::fs::read_to_string(java.cfg(s)).unwrap())
        .collect();

    // Java sid 3 first (the best vote), then zkfle sids 1 and 2 follow it.
    java.cmd(&["start"], &[("ZK_KEEP_DATA", "1"), ("ZK_SIDS", "3")]);
    poll(Duration::from_secs(30), "Java sid 3 listening", || {
        listening(ports.election(3)).then_some(()).ok_or_default()
    });
    let mut zk: Vec<Option<Proc>> = vec![
        Some(Proc::run_cfg(&java.cfg(1))),
        Some(Proc::run_cfg(&java.cfg(2))),
    ];
    await_modes(
        ports,
        &[(1, "follower"), (2, "follower"), (3, "leader")],
        SETTLE,
    );
    await_mntr(ports, 3, "zk_synced_followers", "2");

    for (n, step) in STEPS.iter().enumerate() {
        for sid in [1i64, 2, 3] {
            let i = (sid - 1) as usize;
            std::fs::write(java.cfg(sid), format!("{}{step}{stores}", base_cfg[i])).unwrap();
            if sid == 3 {
                java.cmd(&["kill", "3", "TERM"], &[]);
                poll(Duration::from_secs(20), "Java sid 3 gone", || {
                    let (_, pids) = java.try_cmd(&["pids"]);
                    if pids.trim().is_empty() && !listening(ports.election(3)) {
                        Ok(())
                    } else {
                        Err(pids)
                    }
                });
                java.cmd(&["restart", "3"], &[]);
            } else {
                if let Some(mut p) = zk[i].take() {
                    p.terminate(Duration::from_secs(10));
                }
                zk[i] = Some(Proc::run_cfg(&java.cfg(sid)));
            }
            let (leader, modes) = poll(
                SETTLE,
                &format!("step {} ({step:?}), sid {sid} restarted: one leader", n + 1),
                || one_leader(ports, &[1, 2, 3]),
            );
            eprintln!(
                "step {} {:?}: sid {sid} restarted, leader {leader}, modes {modes:?}",
                n + 1,
                step.trim()
            );
        }
    }

    // TLS only now: both kinds of peer refuse plaintext, TLS links hold.
    let (leader, _) = poll(SETTLE, "one leader", || one_leader(ports, &[1, 2, 3]));
    let before = (refused(ports, 1), java_blocked(&java, 3));
    for sid in [1, 3] {
        let mut s = TcpStream::connect(("127.0.0.1", ports.election(sid))).unwrap();
        s.write_all(&[0xff; 24]).unwrap();
    }
    poll(
        Duration::from_secs(10),
        "plaintext refused by zkfle sid 1 and Java sid 3",
        || {
            let seen = (refused(ports, 1), java_blocked(&java, 3));
            if seen.0 > before.0 && seen.1 > before.1 {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            }
        },
    );
    let (after, _) = poll(SETTLE, "one leader", || one_leader(ports, &[1, 2, 3]));
    assert_eq!(after, leader, "plaintext probes changed the leader");
    // The zkfle peers' last sessions ran over TLS.
    let logs: String = zk.iter().flatten().map(|p| p.log_text()).collect();
    assert!(
        logs.contains("TLS to the leader") || logs.contains("learner TLS from"),
        "no TLS Zab session in the zkfle logs: {logs}"
    );
}

/// Exactly one `leader` and only `follower`s among `sids`, by `srvr`.
fn one_leader(ports: Ports, sids: &[i64]) -> Result<(i64, Vec<Option<String>>), String> {
    let modes: Vec<Option<String>> = sids.iter().map(|&s| mode(ports.client_addr(s))).collect();
    let leaders: Vec<i64> = sids
        .iter()
        .zip(&modes)
        .filter(|(_, m)| m.as_deref() == Some("leader"))
        .map(|(s, _)| *s)
        .collect();
    let rest_follow = modes
        .iter()
        .all(|m| matches!(m.as_deref(), Some("leader" | "follower")));
    if leaders.len() == 1 && rest_follow {
        Ok((leaders[0], modes))
    } else {
        Err(format!("{modes:?}"))
    }
}

/// `Option<()>` to a poll result.
trait OkOrDefault {
    fn ok_or_default(self) -> Result<(), String>;
}

impl OkOrDefault for Option<()> {
    fn ok_or_default(self) -> Result<(), String> {
        self.ok_or_else(|| "not yet".to_string())
    }
}
