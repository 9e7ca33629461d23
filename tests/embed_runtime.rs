//! Stopping an embedded peer from every context an embedder calls from: a
//! plain thread, a multi-thread tokio runtime's worker, a current-thread
//! runtime; by `shutdown()`, `shutdown_async().await` and by dropping the
//! last handle. Each peer has a client port, so it owns both private tokio
//! runtimes (the connection manager's and the four-letter-word server's),
//! whose shutdown on an async thread used to panic ("Cannot drop a runtime
//! in a context where blocking is not allowed"). After each stop the
//! peer's election and client ports are bound again, which only works once
//! everything was joined and closed. Ports 32000..=32099.

#[path = "common/embed.rs"]
mod embed;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use embed::*;
use zkfle::{PeerBuilder, PeerHandle, ZkfleError};

const T: Duration = Duration::from_secs(30);

fn client_addr(base: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], base + 5))
}

/// A one-voter peer with a client port.
fn solo_builder(base: u16, dir: &Path) -> PeerBuilder {
    let ports = Ports { base };
    PeerBuilder::new(1)
        .tick_time(Duration::from_millis(100))
        .server(1, ports.quorum(1), ports.election(1))
        .client_addr(client_addr(base))
        .data_dir(dir)
}

fn solo(base: u16, dir: &Path) -> PeerHandle {
    solo_builder(base, dir).start().unwrap()
}

/// The ports the peer had are free again: it is fully stopped.
fn ports_released(base: u16) {
    let ports = Ports { base };
    for addr in [ports.election(1), client_addr(base)] {
        if let Err(e) = TcpListener::bind(addr) {
            panic!("{addr} still taken after shutdown: {e}");
        }
    }
}

#[test]
fn shutdown_and_drop_on_a_plain_thread() {
    let dir = tempfile::tempdir().unwrap();
    let p = solo(32000, dir.path());
    p.wait_for(|s| s.role.is_leader(), T).unwrap();
    p.shutdown();
    ports_released(32000);
    let p = solo(32000, dir.path());
    p.wait_for(|s| s.role.is_leader(), T).unwrap();
    drop(p);
    ports_released(32000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_on_a_multi_thread_worker() {
    let dir = tempfile::tempdir().unwrap();
    let p = solo(32010, dir.path());
    p.wait_until_timeout(|s| s.role.is_leader(), T)
        .await
        .unwrap();
    p.shutdown();
    ports_released(32010);
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let p = solo(32020, dir.path());
    p.wait_until_timeout(|s| s.role.is_leader(), T)
        .await
        .unwrap();
    p.shutdown();
    ports_released(32020);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_on_a_multi_thread_worker() {
    let dir = tempfile::tempdir().unwrap();
    let p = solo(32030, dir.path());
    let clone = p.clone();
    p.wait_until_timeout(|s| s.role.is_leader(), T)
        .await
        .unwrap();
    drop(p);
    assert!(clone.is_leader(), "a clone keeps the peer running");
    // The last handle goes inside a spawned task, on a worker thread.
    tokio::spawn(async move { drop(clone) }).await.unwrap();
    ports_released(32030);
}

#[tokio::test(flavor = "current_thread")]
async fn drop_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let p = solo(32040, dir.path());
    p.wait_until_timeout(|s| s.role.is_leader(), T)
        .await
        .unwrap();
    drop(p);
    ports_released(32040);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_async_on_a_multi_thread_worker() {
    let dir = tempfile::tempdir().unwrap();
    let p = solo(32050, dir.path());
    p.wait_until_timeout(|s| s.role.is_leader(), T)
        .await
        .unwrap();
    let waiter = {
        let p = p.clone();
        tokio::spawn(async move { p.wait_until(|_| false).await })
    };
    p.shutdown_async().await;
    ports_released(32050);
    assert!(matches!(waiter.await.unwrap(), Err(ZkfleError::Shutdown)));
    assert!(!p.is_leader());
    p.shutdown_async().await; // idempotent
}

/// `shutdown_async` must not block the executor while the peer stops. Made
/// deterministic: the peer cannot finish stopping until a task on the same
/// current-thread runtime lets it. A `restart_election` on another thread
/// holds the peer while the (new) peer's zxid supplier waits for a
/// go-ahead; that task gives it once it sees the shutdown begin. Were the
/// executor blocked, that task could never run: the runtime's thread then
/// fails to report back within `T`.
#[test]
fn shutdown_async_lets_the_executor_run_while_the_peer_stops() {
    let dir = tempfile::tempdir().unwrap();
    let armed = Arc::new(AtomicBool::new(false));
    let (entered_tx, entered_rx) = crossbeam_channel::bounded::<()>(1);
    let (go_tx, go_rx) = crossbeam_channel::bounded::<()>(1);
    let supplier = {
        let armed = armed.clone();
        move || {
            if armed.swap(false, Ordering::SeqCst) {
                let _ = entered_tx.send(());
                let _ = go_rx.recv();
            }
            0
        }
    };
    let p = solo_builder(32060, dir.path())
        .last_zxid(supplier)
        .start()
        .unwrap();
    p.wait_for(|s| s.role.is_leader(), T).unwrap();
    armed.store(true, Ordering::SeqCst);
    let restarter = {
        let p = p.clone();
        std::thread::spawn(move || p.restart_election())
    };
    entered_rx
        .recv_timeout(T)
        .expect("the restarted peer asks its supplier");

    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
    let p2 = p.clone();
    let runtime_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut states = p2.watch();
            let release = async {
                // The shutdown has begun once the watch channel closes.
                while states.changed().await.is_ok() {}
                go_tx.send(()).unwrap();
            };
            tokio::join!(p2.shutdown_async(), release);
        });
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(T)
        .expect("shutdown_async blocked the current-thread executor");
    runtime_thread.join().unwrap();
    restarter.join().unwrap().unwrap();
    ports_released(32060);
}

#[tokio::test(flavor = "current_thread")]
async fn a_start_that_fails_on_a_runtime_thread_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // The client port is taken: the admin listeners (started by the
    // builder beside the peer) cannot bind, after the connection manager's
    // runtime was already started, so that runtime must be stopped safely.
    let _busy = TcpListener::bind(client_addr(32070)).unwrap();
    let r = solo_builder(32070, dir.path()).start();
    assert!(matches!(r, Err(ZkfleError::Admin(_))), "{r:?}");
    let ports = Ports { base: 32070 };
    TcpListener::bind(ports.election(1)).expect("the election port was released");
}
