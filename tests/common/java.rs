//! Java ZooKeeper 3.8 alongside zkfle in tests: a wrapper around
//! `shared/tools/zk-ensemble.sh` that owns one working directory and stops
//! every JVM it started when dropped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The script, beside the checkout as CI lays it out.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/zk-ensemble.sh")
}

/// True if Java ZooKeeper can run here. Under CI (`CI` set) a missing
/// ZooKeeper is a failure, never a silent skip.
pub fn java_available() -> bool {
    let ok = script().exists()
        && Path::new("/usr/share/java/zookeeper.jar").exists()
        && Command::new("java")
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!(
                "Java ZooKeeper 3.8 is required under CI (apt-get install -y zookeeper) \
                 and ../shared/tools/zk-ensemble.sh must exist"
            );
        }
        eprintln!("SKIPPED: Java ZooKeeper not installed (apt-get install -y zookeeper)");
    }
    ok
}

/// One zk-ensemble.sh working directory. Ports: client `base+sid`, quorum
/// `base+100+sid`, election `base+200+sid` (the layout of the zkfle test
/// helpers, so mixed ensembles share the numbers).
pub struct JavaEnsemble {
    _tmp: tempfile::TempDir,
    pub zk_dir: PathBuf,
    pub base: u16,
    pub size: u32,
    /// Extra environment for every call (ZK_TICK, ZK_EXTRA_CFG, ...).
    pub env: Vec<(String, String)>,
}

impl JavaEnsemble {
    pub fn new(base: u16, size: u32) -> JavaEnsemble {
        let tmp = tempfile::tempdir().expect("temp dir");
        let zk_dir = tmp.path().join("zk");
        JavaEnsemble {
            _tmp: tmp,
            zk_dir,
            base,
            size,
            env: Vec::new(),
        }
    }

    /// Adds an environment setting for every later call.
    pub fn with_env(mut self, key: &str, value: &str) -> JavaEnsemble {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    fn command(&self, args: &[&str], extra: &[(&str, &str)]) -> Command {
        let mut c = Command::new("bash");
        c.arg(script())
            .args(args)
            .env("ZK_DIR", &self.zk_dir)
            .env("ZK_SIZE", self.size.to_string())
            .env("ZK_CLIENT_BASE", self.base.to_string())
            .env("ZK_QUORUM_BASE", (self.base + 100).to_string())
            .env("ZK_ELECTION_BASE", (self.base + 200).to_string());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        c
    }

    /// Runs the script; panics with its output if it fails.
    pub fn cmd(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let out = self
            .command(args, extra)
            .output()
            .expect("bash runs zk-ensemble.sh");
        assert!(
            out.status.success(),
            "zk-ensemble.sh {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs the script; returns whether it succeeded and its output.
    pub fn try_cmd(&self, args: &[&str]) -> (bool, String) {
        match self.command(args, &[]).output() {
            Ok(o) => (
                o.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
            ),
            Err(e) => (false, e.to_string()),
        }
    }

    /// The zoo.cfg the script wrote for `sid`.
    pub fn cfg(&self, sid: i64) -> PathBuf {
        let out = self.cmd(&["cfg", &sid.to_string()], &[]);
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    }

    /// `sid`'s log4j log so far.
    pub fn log(&self, sid: i64) -> String {
        std::fs::read_to_string(self.zk_dir.join(format!("node{sid}/zookeeper.log")))
            .unwrap_or_default()
    }
}

impl Drop for JavaEnsemble {
    fn drop(&mut self) {
        let _ = self.command(&["stop"], &[]).output();
    }
}
