//! The hostile-input probes of `shared/tools/zk-election-probe.py` inside
//! TLS (issue 15 item 6). The script speaks plaintext, so against a TLS
//! election port its baseline handshake is refused and it probes nothing
//! (tests/tls_ensemble.rs checks that refusal). Here a relay terminates
//! TLS for it: the script talks plaintext to the relay, which opens one
//! mutually authenticated TLS connection to the target per connection
//! (with a certificate the target trusts) and copies bytes both ways,
//! closing one side when the other closes. So every probe reaches the
//! layer behind the TLS handshake (framing, handshake parsing, the
//! per-connection deadline for stalled handshakes, 64 stalled connections
//! at once) exactly as a compromised-but-trusted peer would send it.
//!
//! The ensemble lists four participants and runs three; the script
//! impersonates the absent sid 4. Every probe must pass against a
//! follower and against the leader, and afterwards the ensemble keeps
//! its leader, its election count and all its links.
//!
//! Ports 20001..=20204 (base 20000) and the relay on 20300.

#[path = "common/certs.rs"]
mod certs;
#[path = "common/peer.rs"]
mod peer;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use peer::{await_agreement, mntr, Ports, Proc};
use zkfle::config::ZkConfig;
use zkfle::tls::QuorumTls;

const PORTS: Ports = Ports { base: 20000 };
const RELAY_PORT: u16 = 20300;

fn probe_script() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/tools/zk-election-probe.py"
    ))
}

/// A plaintext-to-TLS relay to one target, run on its own threads until
/// dropped (the listener thread then stops accepting).
struct Relay {
    stop: Arc<AtomicBool>,
    /// Connections whose TLS handshake with the target succeeded.
    established: Arc<AtomicU64>,
    /// The accepting thread; joined on drop, which closes the listener.
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(listen: u16, target: SocketAddr, tls: Arc<QuorumTls>) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", listen)).expect("relay port free");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let established = Arc::new(AtomicU64::new(0));
        let (s, e) = (stop.clone(), established.clone());
        let acceptor = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((plain, _)) => {
                        let (tls, e) = (tls.clone(), e.clone());
                        std::thread::spawn(move || relay_one(plain, target, &tls, &e));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Relay {
            stop,
            established,
            acceptor: Some(acceptor),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// Copies `plain` <-> a fresh TLS connection to `target` until either
/// side ends; then ends both (close_notify and shutdown on the TLS side,
/// shutdown on the plaintext side), so a close by the target reaches the
/// probe at once.
fn relay_one(plain: TcpStream, target: SocketAddr, tls: &QuorumTls, established: &AtomicU64) {
    let _ = plain.set_nonblocking(false);
    let Ok(tcp) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
        return;
    };
    let _ = tcp.set_nodelay(true);
    let Ok(stream) =
        zkfle::tls::connect_blocking(tls, tcp, &["127.0.0.1".to_string()], Duration::from_secs(3))
    else {
        return;
    };
    established.fetch_add(1, Ordering::Relaxed);
    let Ok((mut from_target, mut to_target, closer)) = stream.split() else {
        return;
    };
    let closer = Arc::new(closer);
    let Ok(mut plain_in) = plain.try_clone() else {
        return;
    };
    let mut plain_out = plain;
    let up = {
        let closer = closer.clone();
        let Ok(plain_end) = plain_out.try_clone() else {
            return;
        };
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match plain_in.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to_target.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            closer.close();
            let _ = plain_end.shutdown(Shutdown::Both);
        })
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from_target.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if plain_out.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = plain_out.shutdown(Shutdown::Both);
    closer.close();
    let _ = up.join();
}

/// Runs every probe through the relay at `target`.
fn run_probes(target: i64, others: &[i64], pid: u32, log: &Path) -> (i32, String) {
    let peers = others
        .iter()
        .map(|s| format!("127.0.0.1:{}", PORTS.client(*s)))
        .collect::<Vec<_>>()
        .join(",");
    let out = Command::new("python3")
        .arg(probe_script())
        .args(["--target", &format!("127.0.0.1:{RELAY_PORT}")])
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

fn m(sid: i64, key: &str) -> Option<String> {
    mntr(PORTS.client_addr(sid)).and_then(|m| m.get(key).cloned())
}

/// One leader, every running peer linked to the other two.
fn assert_healthy(sids: &[i64]) -> i64 {
    let (leader, _) = await_agreement(PORTS, sids, Duration::from_secs(20));
    for &sid in sids {
        peer::poll(
            Duration::from_secs(5),
            &format!("sid {sid} linked to both peers"),
            || match m(sid, "zk_connected_peers").as_deref() {
                Some("2") => Ok(()),
                other => Err(format!("zk_connected_peers {other:?}")),
            },
        );
    }
    leader
}

#[test]
fn every_probe_inside_tls_passes_against_follower_and_leader() {
    assert!(
        probe_script().exists(),
        "{} is missing: shared/ must sit beside the checkout",
        probe_script().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::Ca::new("zk-probe-ca");
    let ks = ca.peer("zk-peer").write_pem(&dir.path().join("peer.pem"));
    let ts = certs::write_trust(&dir.path().join("trust.pem"), &[&ca]);
    let tls_lines = format!("sslQuorum=true\n{}", certs::tls_lines(&ks, &ts));
    let cfgs = peer::write_ensemble(dir.path(), 4, PORTS, &tls_lines);
    // The relay speaks as sid 4, with sid 4's configuration (its stores).
    let relay_tls = ZkConfig::load(&cfgs[3], Some(4))
        .map_err(|e| e.to_string())
        .and_then(|c| QuorumTls::load(&c).map_err(|e| e.to_string()))
        .expect("sid 4's TLS configuration loads")
        .expect("sslQuorum=true");
    let relay_tls = Arc::new(relay_tls);
    // Highest sid first, so the fresh ensemble elects 3 at once.
    let mut procs: Vec<Proc> = cfgs[..3].iter().rev().map(|c| Proc::run_cfg(c)).collect();
    procs.reverse();
    let sids = [1, 2, 3];
    let leader = assert_healthy(&sids);
    let elections: Vec<Option<String>> = sids.iter().map(|&s| m(s, "zk_election_count")).collect();

    for (role, target) in [("follower", 1), ("leader", leader)] {
        let relay = Relay::start(
            RELAY_PORT,
            SocketAddr::from(([127, 0, 0, 1], PORTS.election(target))),
            relay_tls.clone(),
        );
        let idx = (target - 1) as usize;
        let pid = procs[idx].pid().expect("target running");
        let others: Vec<i64> = sids.iter().copied().filter(|s| *s != target).collect();
        let (code, text) = run_probes(target, &others, pid, &procs[idx].log);
        eprintln!("{role} (sid {target}):\n{text}");
        assert!(
            code == 0 && text.contains("probes passed 27/27"),
            "probing the {role} (sid {target}) inside TLS failed (exit {code}):\n{text}"
        );
        // The probes really went through TLS: hundreds of handshakes.
        let through = relay.established.load(Ordering::Relaxed);
        assert!(through > 300, "only {through} TLS connections relayed");
        drop(relay);
        let after = assert_healthy(&sids);
        assert_eq!(after, leader, "probing the {role} changed the leader");
    }
    let elections_after: Vec<Option<String>> =
        sids.iter().map(|&s| m(s, "zk_election_count")).collect();
    assert_eq!(elections, elections_after, "the probes caused an election");
    // Nothing the relay sent was refused at the TLS layer: the probes were
    // judged by the layers behind it.
    assert_eq!(m(1, "zk_tls_refused").as_deref(), Some("0"));
}
