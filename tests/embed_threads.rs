//! `PeerHandle::shutdown` leaves no thread behind, restarts included. One
//! test in its own binary so nothing else runs threads meanwhile.
//! Ports 31100..=31199.

#[path = "common/embed.rs"]
mod embed;

use std::time::Duration;

use embed::*;
use zkfle::{PeerBuilder, Role};

#[test]
fn shutdown_joins_every_thread_the_peers_started() {
    let before = thread_count();
    assert!(before > 0, "/proc/self/task is readable");
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 31100 };
    let peers: Vec<_> = (1..=3)
        .map(|sid| {
            let mut b = PeerBuilder::new(sid)
                .tick_time(Duration::from_millis(100))
                .data_dir(dir.path().join(format!("n{sid}")))
                .client_addr(std::net::SocketAddr::from((
                    [127, 0, 0, 1],
                    31150 + sid as u16,
                )));
            for s in 1..=3 {
                b = b.server(s, ports.quorum(s), ports.election(s));
            }
            b.start().unwrap()
        })
        .collect();
    let _events = peers[0].subscribe();
    for p in &peers {
        p.wait_for(|s| s.role != Role::Looking, Duration::from_secs(30))
            .unwrap();
    }
    assert!(thread_count() > before, "the peers run threads");
    peers[0].restart_election().unwrap();
    peers[0]
        .wait_for(|s| s.role != Role::Looking, Duration::from_secs(30))
        .unwrap();
    for p in &peers {
        p.shutdown();
    }
    // Joined threads leave /proc at once; a short grace covers the kernel
    // reaping them.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while thread_count() != before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        thread_count(),
        before,
        "threads left after shutdown: {:?}",
        thread_names()
    );
}
