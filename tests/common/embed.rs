//! Helpers for the embedding-API and replicated-store tests (helper name
//! `embed`; ports 30000–32999): generated configs, polling with deadlines,
//! thread counting.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Port layout of one generated 3-node store: kvAddress `base+sid`,
/// quorum `base+10+sid`, election `base+20+sid`.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub base: u16,
}

impl Ports {
    pub fn kv(&self, sid: i64) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.base + sid as u16))
    }
    pub fn quorum(&self, sid: i64) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.base + 10 + sid as u16))
    }
    pub fn election(&self, sid: i64) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.base + 20 + sid as u16))
    }
}

/// Writes `kv<sid>.cfg` for sids 1..=n under `dir` (dataDir `dir/node<sid>`,
/// tickTime 100 ms, initLimit 40, syncLimit 20) and returns their paths.
pub fn write_store_configs(dir: &Path, n: i64, ports: Ports) -> Vec<PathBuf> {
    let mut common = String::from("tickTime=100\ninitLimit=40\nsyncLimit=20\n");
    for sid in 1..=n {
        let q = ports.quorum(sid);
        let e = ports.election(sid);
        common.push_str(&format!(
            "server.{sid}=127.0.0.1:{}:{}\nkvAddress.{sid}={}\n",
            q.port(),
            e.port(),
            ports.kv(sid)
        ));
    }
    (1..=n)
        .map(|sid| {
            let data = dir.join(format!("node{sid}"));
            std::fs::create_dir_all(&data).unwrap();
            let p = dir.join(format!("kv{sid}.cfg"));
            std::fs::write(&p, format!("dataDir={}\n{common}", data.display())).unwrap();
            p
        })
        .collect()
}

/// Polls `f` every 10 ms until it returns `Some`, or panics after
/// `timeout` naming what was awaited.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Threads of this process now.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Names of this process's threads (for a failure message).
pub fn thread_names() -> Vec<String> {
    let Ok(d) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    d.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect()
}
