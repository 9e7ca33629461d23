//! zkfle-only ensembles with quorum TLS, as processes (issue 15 items 2,
//! 3, 6): both ports speak TLS (election links and the Zab session), the
//! plaintext probes of `shared/tools/zk-election-probe.py` and other
//! hostile input are refused without disturbing the ensemble, and
//! ZooKeeper's rolling upgrade (portUnification=true, then sslQuorum=true,
//! then portUnification=false, one peer restarted at a time) keeps a
//! leader throughout.

#[path = "common/certs.rs"]
mod certs;
#[path = "common/peer.rs"]
mod peer;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use peer::{await_agreement, mntr, Ports, Proc};

const AGREE: Duration = Duration::from_secs(30);

fn probe_script() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/tools/zk-election-probe.py"
    ))
}

/// One CA and one key store for every peer (all on 127.0.0.1).
fn pki(dir: &Path) -> String {
    let ca = certs::Ca::new("zk-ca");
    let ks = ca.peer("zk-peer").write_pem(&dir.join("peer.pem"));
    let ts = certs::write_trust(&dir.join("trust.pem"), &[&ca]);
    certs::tls_lines(&ks, &ts)
}

fn m(ports: Ports, sid: i64, key: &str) -> Option<String> {
    mntr(ports.client_addr(sid)).and_then(|m| m.get(key).cloned())
}

/// Every running peer linked to the other two (sid 4 never runs).
fn linked(ports: Ports, sids: &[i64]) {
    for &sid in sids {
        peer::poll(
            Duration::from_secs(10),
            &format!("sid {sid} linked"),
            || match m(ports, sid, "zk_connected_peers").as_deref() {
                Some("2") => Ok(()),
                other => Err(format!("zk_connected_peers {other:?}")),
            },
        );
    }
}

#[test]
fn tls_ensemble_elects_syncs_over_tls_and_refuses_plaintext_probes() {
    let ports = Ports { base: 18000 };
    let dir = tempfile::tempdir().unwrap();
    let tls = format!("sslQuorum=true\n{}", pki(dir.path()));
    let cfgs = peer::write_ensemble(dir.path(), 4, ports, &tls);
    let mut procs: Vec<Proc> = cfgs[..3].iter().rev().map(|c| Proc::run_cfg(c)).collect();
    procs.reverse();
    let sids = [1, 2, 3];
    let (leader, _) = await_agreement(ports, &sids, AGREE);
    linked(ports, &sids);
    // Both ports ran TLS: the learners' Zab sessions say so in the logs.
    let logs: String = procs.iter().map(|p| p.log_text()).collect();
    // (net::connect logs "TLS to the leader at <addr>: <version> <suite>".)
    assert!(
        logs.lines()
            .any(|l| l.contains("TLS to the leader at ") && l.contains(": TLSv1_2 ")),
        "{logs}"
    );
    assert!(logs.contains("learner TLS from"), "{logs}");
    for &sid in &sids {
        assert_eq!(m(ports, sid, "zk_tls_refused").as_deref(), Some("0"));
    }
    let elections: Vec<Option<String>> = sids
        .iter()
        .map(|&s| m(ports, s, "zk_election_count"))
        .collect();

    // The probe script speaks plaintext: its very first (baseline)
    // handshake is refused, so it stops with exit 2 and probes nothing
    // further; the target counts the refusal.
    let target = 1;
    let out = Command::new("python3")
        .arg(probe_script())
        .args(["--target", &format!("127.0.0.1:{}", ports.election(target))])
        .args(["--target-sid", "1", "--as-sid", "4"])
        .args(["--client", &format!("127.0.0.1:{}", ports.client(target))])
        .output()
        .expect("python3 runs the probe script");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    // The rest of the probe families, by hand, on the TLS election port
    // and on the leader's TLS quorum port: plaintext handshakes, garbage,
    // a port scanner's GET, half a TLS record left hanging, a flood.
    let v1 = {
        let mut b = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0];
        b.extend_from_slice(&4i64.to_be_bytes());
        let a = format!("127.0.0.1:{}", ports.election(4));
        b.extend_from_slice(&(a.len() as i32).to_be_bytes());
        b.extend_from_slice(a.as_bytes());
        b
    };
    let mut held = Vec::new();
    for port in [ports.election(target), ports.quorum(leader)] {
        for payload in [
            v1.clone(),
            b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            vec![0x5a; 300],
            vec![0x16, 0x03, 0x01, 0x00],
            vec![0x16, 0x03, 0x03, 0xff, 0xff, 1, 2, 3],
        ] {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(&payload);
                held.push(s);
            }
        }
        for _ in 0..100 {
            let _ = TcpStream::connect(("127.0.0.1", port));
        }
    }
    peer::poll(Duration::from_secs(10), "refusals counted", || {
        let n: u64 = m(ports, target, "zk_tls_refused")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if n >= 3 {
            Ok(())
        } else {
            Err(format!("zk_tls_refused {n}"))
        }
    });
    let (after, _) = await_agreement(ports, &sids, AGREE);
    assert_eq!(after, leader, "hostile input changed the leader");
    linked(ports, &sids);
    let elections_after: Vec<Option<String>> = sids
        .iter()
        .map(|&s| m(ports, s, "zk_election_count"))
        .collect();
    assert_eq!(
        elections, elections_after,
        "hostile input caused an election"
    );
    drop(held);
    for p in &mut procs {
        assert!(p.pid().is_some());
    }
}

#[test]
fn rolling_upgrade_to_tls_one_peer_at_a_time_keeps_a_leader() {
    let ports = Ports { base: 18300 };
    let dir = tempfile::tempdir().unwrap();
    let stores = pki(dir.path());
    let cfgs = peer::write_ensemble(dir.path(), 4, ports, "");
    let mut procs: Vec<Option<Proc>> = cfgs[..3]
        .iter()
        .rev()
        .map(|c| Some(Proc::run_cfg(c)))
        .collect();
    procs.reverse();
    let sids = [1, 2, 3];
    await_agreement(ports, &sids, AGREE);
    let steps = [
        "portUnification=true\n",
        "sslQuorum=true\nportUnification=true\n",
        "sslQuorum=true\nportUnification=false\n",
    ];
    for step in steps {
        let extra = format!("{step}{stores}");
        for sid in [1i64, 2, 3] {
            // Rewrites every zoo.cfg; only the restarted peer reads its own.
            peer::write_ensemble(dir.path(), 4, ports, &extra);
            let i = (sid - 1) as usize;
            if let Some(mut p) = procs[i].take() {
                p.terminate(Duration::from_secs(10));
            }
            procs[i] = Some(Proc::run_cfg(&cfgs[i]));
            let (leader, _) = await_agreement(ports, &sids, AGREE);
            linked(ports, &sids);
            eprintln!("step {step:?}: sid {sid} restarted, leader {leader}");
        }
    }
    // All on sslQuorum alone now: plaintext is refused, TLS links hold.
    let before: u64 = m(ports, 1, "zk_tls_refused")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut s = TcpStream::connect(("127.0.0.1", ports.election(1))).unwrap();
    s.write_all(&[0xff; 24]).unwrap();
    peer::poll(Duration::from_secs(10), "plaintext refused", || {
        let n: u64 = m(ports, 1, "zk_tls_refused")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if n > before {
            Ok(())
        } else {
            Err(format!("zk_tls_refused {n}"))
        }
    });
    await_agreement(ports, &sids, AGREE);
}
