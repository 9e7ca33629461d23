//! The shared adversarial probe (shared/tools/zk-election-probe.py, 27
//! hostile inputs) against a QCM whose election layer is stood in for by a
//! responder that answers LOOKING votes like a settled follower.

#[path = "common/cnx.rs"]
mod cnx;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cnx::*;
use zkfle::cnx::{Qcm, QcmConfig};
use zkfle::wire::{Notification, ServerState};

static PORTS: PortPool = PortPool::new(22200, 22300);

#[test]
fn qcm_passes_every_election_port_probe() {
    let probe =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/zk-election-probe.py");
    let python = Command::new("python3").arg("--version").output();
    if !probe.exists() || python.is_err() {
        if std::env::var_os("CI").is_some() {
            panic!("python3 or {} missing, and CI is set", probe.display());
        }
        eprintln!("SKIPPED: python3 or the probe script is missing");
        return;
    }
    let ports = PORTS.take(3);
    // Sid 4 is configured and never runs: the probe impersonates it.
    let peers = BTreeMap::from([(2i64, vec![addr(ports[1])]), (4, vec![addr(ports[2])])]);
    let qcm = Qcm::start(QcmConfig::new(1, vec![addr(ports[0])], peers)).expect("start");
    let stop = Arc::new(AtomicBool::new(false));
    let responder = {
        let (q, stop) = (qcm.clone(), stop.clone());
        std::thread::spawn(move || {
            let rx = q.receiver();
            let vote = Notification {
                state: ServerState::Following,
                leader: 2,
                zxid: 0x1_0000_0000,
                election_epoch: 1,
                peer_epoch: 1,
                version: 0,
            };
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = rx.recv_timeout(Duration::from_millis(50)) {
                    if r.notification.state == ServerState::Looking {
                        q.send(r.sid, &vote);
                    }
                }
            }
        })
    };
    let out = Command::new("python3")
        .arg(&probe)
        .args([
            "--target",
            &addr(ports[0]).to_string(),
            "--target-sid",
            "1",
            "--as-sid",
            "4",
        ])
        .args(["--reply-ms", "5000", "--seed", "1"])
        .output()
        .expect("run the probe");
    stop.store(true, Ordering::Relaxed);
    let _ = responder.join();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("").to_string();
    assert!(
        out.status.success() && last.starts_with("probes passed 27/27"),
        "probe failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = qcm.stats();
    assert!(
        st.bad_handshakes > 0 && st.bad_frames > 0,
        "the probe's bad input was counted: {st:?}"
    );
    qcm.shutdown();
}
