//! Java ZooKeeper 3.8 alongside zkfle in tests: a wrapper around
//! `shared/tools/zk-ensemble.sh` that owns one working directory and stops
//! every JVM it started when dropped.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

    /// `srvr`'s `Mode:` of Java `sid`, through the script.
    pub fn srvr_mode(&self, sid: i64) -> Option<String> {
        let (_, text) = self.try_cmd(&["srvr", &sid.to_string()]);
        text.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(|m| m.trim().to_string())
    }

    /// `mntr` of Java `sid` as a map (empty if it does not answer).
    pub fn mntr(&self, sid: i64) -> std::collections::BTreeMap<String, String> {
        let (_, text) = self.try_cmd(&["mntr", &sid.to_string()]);
        text.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }

    /// `sid`'s log4j log so far.
    pub fn log(&self, sid: i64) -> String {
        std::fs::read_to_string(self.zk_dir.join(format!("node{sid}/zookeeper.log")))
            .unwrap_or_default()
    }
}

impl Drop for JavaEnsemble {
    fn drop(&mut self) {
        // A test may end (or fail) with a JVM still SIGSTOPped: resume it so
        // the script's SIGTERM stops it at once rather than after its 10 s
        // SIGKILL fallback.
        for sid in 1..=self.size {
            let _ = self
                .command(&["kill", &sid.to_string(), "CONT"], &[])
                .output();
        }
        let _ = self.command(&["stop"], &[]).output();
    }
}

/// What one run of ZooKeeper's own command-line client did.
#[derive(Debug)]
pub struct ClientRun {
    /// Exit code; `None` if it was killed by the guard (or by a signal).
    pub exit: Option<i32>,
    /// stdout and stderr together.
    pub output: String,
    pub elapsed: Duration,
    /// True if it was still running when `guard` expired: a hang.
    pub hung: bool,
}

/// Runs Debian's `zkCli.sh -timeout <session_timeout_ms> -server <server>
/// <command...>` and waits at most `guard` before killing it (by its pid).
pub fn zk_client(
    server: SocketAddr,
    session_timeout_ms: u32,
    command: &[&str],
    guard: Duration,
) -> ClientRun {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out_path = tmp.path().join("client.out");
    let out = std::fs::File::create(&out_path).expect("client output file");
    let err = out.try_clone().expect("client output file");
    let start = Instant::now();
    // zkCli.sh runs java as its child, not by exec: its own process group
    // lets the guard stop both.
    use std::os::unix::process::CommandExt;
    let mut child = Command::new("/usr/share/zookeeper/bin/zkCli.sh")
        .process_group(0)
        .arg("-timeout")
        .arg(session_timeout_ms.to_string())
        .arg("-server")
        .arg(server.to_string())
        .args(command)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("zkCli.sh starts");
    let (exit, hung) = loop {
        match child.try_wait() {
            Ok(Some(st)) => break (st.code(), false),
            Ok(None) if start.elapsed() < guard => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(format!("-{}", child.id()))
                    .status();
                let _ = child.wait();
                break (None, true);
            }
        }
    };
    ClientRun {
        exit,
        output: std::fs::read_to_string(&out_path).unwrap_or_default(),
        elapsed: start.elapsed(),
        hung,
    }
}
