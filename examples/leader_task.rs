//! One scheduler in a cluster: a job that runs on whichever peer leads, only
//! while it leads, and moves to the new leader when the leader goes.
//!
//! ```text
//! cargo run --example leader_task -- conf/zoo1.cfg --myid 1   # and 2, 3 in two more shells
//! ```
//!
//! Each process runs one ensemble member from an ordinary `zoo.cfg`, waits
//! on [`zkfle::PeerHandle::watch`] until it leads, starts the job, and
//! stops it as soon as the role changes (leader gone, quorum lost, Ctrl-C).
//! Every side effect carries the epoch of the leadership it ran under —
//! [`zkfle::Role::Leading`]'s `epoch`, higher for every new leader — and the
//! resource it acts on refuses an epoch older than one it has seen: that,
//! not `is_leader()`, keeps a deposed leader that has not noticed yet from
//! acting. Here each process has its own stand-in resource
//! (`leader_task/task.rs`); `tests/leader_task.rs` runs three peers against
//! one, stops the leader and checks that the job moved and the epoch rose.

#[path = "leader_task/task.rs"]
mod task;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

#[tokio::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let Some((config, myid)) = parse_args(std::env::args().skip(1)) else {
        eprintln!("usage: leader_task <zoo.cfg> [--myid N]");
        return ExitCode::from(2);
    };
    let mut builder = zkfle::PeerBuilder::from_config_file(&config);
    if let Some(id) = myid {
        builder = builder.myid(id);
    }
    let peer = match builder.start() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("leader_task: {e}");
            return ExitCode::from(2);
        }
    };
    let resource = Arc::new(Mutex::new(task::FencedResource::default()));
    let scheduler = tokio::spawn(task::lead_singleton(
        peer.clone(),
        resource.clone(),
        Duration::from_secs(1),
    ));
    let _ = tokio::signal::ctrl_c().await;
    // Stops the job (the watch channel drops to Looking and closes), then
    // the peer, without blocking this runtime.
    peer.shutdown_async().await;
    let _ = scheduler.await;
    let resource = resource.lock();
    let taken = resource
        .log()
        .iter()
        .filter(|e| matches!(e, task::Entry::Accepted(_)))
        .count();
    println!("{taken} side effects taken while this peer led");
    ExitCode::SUCCESS
}

/// `<zoo.cfg> [--myid N]`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Option<(PathBuf, Option<i64>)> {
    let (mut config, mut myid) = (None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--myid" => myid = Some(args.next()?.parse::<i64>().ok()?),
            _ if config.is_none() && !a.starts_with('-') => config = Some(PathBuf::from(a)),
            _ => return None,
        }
    }
    Some((config?, myid))
}
