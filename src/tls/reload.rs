//! `sslQuorumReloadCertFiles`: a thread that polls the key and trust store
//! files and reloads both when either changes. ZooKeeper watches the
//! directories (`FileChangeWatcher`); polling the two files' metadata is
//! as quick to notice here (every [`POLL`]) and needs no platform API.
//!
//! A file is "changed" when its modification time, length or inode
//! differs from the last *successful* load's, so a file caught half
//! written fails to load, is logged once, and is tried again on every poll
//! until it loads (the old stores serve meanwhile).

use std::path::Path;
use std::sync::Weak;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::Inner;

/// How often the store files are looked at.
pub(crate) const POLL: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode,
    })
}

fn stamps(inner: &Inner) -> Vec<Option<Stamp>> {
    [&inner.settings.key_store, &inner.settings.trust_store]
        .iter()
        .map(|s| s.as_ref().and_then(|s| stamp(&s.location)))
        .collect()
}

/// Starts the poller; it ends when the context is dropped (`stop`'s sender
/// goes with it).
pub(super) fn spawn(inner: Weak<Inner>, stop: Receiver<()>) {
    let first = match inner.upgrade() {
        Some(i) => stamps(&i),
        None => return,
    };
    let spawned = std::thread::Builder::new()
        .name("tls-reload".into())
        .spawn(move || run(inner, stop, first));
    if let Err(e) = spawned {
        log::warn!("sslQuorumReloadCertFiles: cannot start the reload thread: {e}");
    }
}

fn run(inner: Weak<Inner>, stop: Receiver<()>, mut loaded: Vec<Option<Stamp>>) {
    let mut failed: Option<Vec<Option<Stamp>>> = None;
    loop {
        match stop.recv_timeout(POLL) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(inner) = inner.upgrade() else { return };
        let now = stamps(&inner);
        if now == loaded {
            continue;
        }
        match super::reload_inner(&inner) {
            Ok(()) => {
                log::info!("sslQuorumReloadCertFiles: key and trust stores reloaded; new connections use them");
                loaded = now;
                failed = None;
            }
            Err(e) => {
                if failed.as_ref() != Some(&now) {
                    log::warn!("sslQuorumReloadCertFiles: keeping the current stores: {e}");
                    failed = Some(now);
                }
            }
        }
    }
}
