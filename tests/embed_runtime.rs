//! Shutting an embedded peer down from every context an embedder calls
//! from. Ports 32000..=32199.

#[path = "common/embed.rs"]
mod embed;

use std::net::SocketAddr;
use std::time::Duration;

use embed::*;
use zkfle::{PeerBuilder, PeerHandle};

const T: Duration = Duration::from_secs(30);

/// A one-voter peer with a client port, so it owns both private runtimes
/// (the connection manager's and the four-letter-word server's).
fn solo(base: u16, dir: &std::path::Path) -> PeerHandle {
    let ports = Ports { base };
    PeerBuilder::new(1)
        .tick_time(Duration::from_millis(100))
        .server(1, ports.quorum(1), ports.election(1))
        .client_addr(SocketAddr::from(([127, 0, 0, 1], base + 5)))
        .data_dir(dir)
        .start()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_on_a_multi_thread_worker() {
    let dir = tempfile::tempdir().unwrap();
    let p = solo(32000, dir.path());
    p.wait_for(|s| s.role.is_leader(), T).unwrap();
    p.shutdown();
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let p = solo(32040, dir.path());
    p.wait_for(|s| s.role.is_leader(), T).unwrap();
    p.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_on_a_multi_thread_worker() {
    let dir = tempfile::tempdir().unwrap();
    let p = solo(32070, dir.path());
    p.wait_for(|s| s.role.is_leader(), T).unwrap();
    drop(p);
}
