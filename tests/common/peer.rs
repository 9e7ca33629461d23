//! Helpers for tests that run `zkfle run` processes: generated zoo.cfg
//! files, kill-on-drop process guards, four-letter words and polling.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn zkfle_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zkfle"))
}

/// Port layout of one generated ensemble: client `base+sid`, quorum
/// `base+100+sid`, election `base+200+sid`.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub base: u16,
}

impl Ports {
    pub fn client(&self, sid: i64) -> u16 {
        self.base + sid as u16
    }
    pub fn quorum(&self, sid: i64) -> u16 {
        self.base + 100 + sid as u16
    }
    pub fn election(&self, sid: i64) -> u16 {
        self.base + 200 + sid as u16
    }
    pub fn client_addr(&self, sid: i64) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client(sid)))
    }
}

/// Writes `zoo<sid>.cfg` for sids 1..=n under `dir`, each with
/// `dir/node<sid>` as dataDir holding a `myid`, with ZooKeeper's default
/// timings (tickTime 2000, initLimit 10, syncLimit 5) and every
/// four-letter word enabled (`4lw.commands.whitelist=*`: ZooKeeper's
/// default is `srvr` only). Returns the paths.
pub fn write_ensemble(dir: &Path, n: i64, ports: Ports, extra: &str) -> Vec<PathBuf> {
    write_ensemble_timed(
        dir,
        n,
        ports,
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\n",
        extra,
    )
}

/// [`write_ensemble`] with the timing lines given (`tickTime=..\n...`).
pub fn write_ensemble_timed(
    dir: &Path,
    n: i64,
    ports: Ports,
    timing: &str,
    extra: &str,
) -> Vec<PathBuf> {
    let mut servers = String::new();
    for sid in 1..=n {
        servers.push_str(&format!(
            "server.{sid}=127.0.0.1:{}:{}\n",
            ports.quorum(sid),
            ports.election(sid)
        ));
    }
    (1..=n)
        .map(|sid| {
            let data = dir.join(format!("node{sid}"));
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("myid"), format!("{sid}\n")).unwrap();
            let path = dir.join(format!("zoo{sid}.cfg"));
            std::fs::write(
                &path,
                format!(
                    "{timing}dataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n{servers}{extra}",
                    data.display(),
                    ports.client(sid)
                ),
            )
            .unwrap();
            path
        })
        .collect()
}

/// A child process killed (SIGKILL, by its pid) when dropped.
pub struct Proc {
    pub name: String,
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `zkfle <args>` with stderr going to `log`.
    pub fn zkfle(name: &str, args: &[&str], log: &Path) -> Proc {
        let err = std::fs::File::create(log).unwrap();
        let child = Command::new(zkfle_bin())
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start zkfle {args:?}: {e}"));
        Proc {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    /// `zkfle run <cfg>` logging to `<cfg>.log`.
    pub fn run_cfg(cfg: &Path) -> Proc {
        let log = cfg.with_extension("log");
        let name = cfg.file_name().unwrap().to_string_lossy().to_string();
        Proc::zkfle(&name, &["run", cfg.to_str().unwrap()], &log)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGTERM by pid, then waits (up to `limit`) for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + limit;
        loop {
            match child.try_wait() {
                Ok(Some(st)) => return Some(st),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    }

    /// SIGKILL by pid (a crash, no goodbye on any socket) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The process's stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sends a four-letter word; `None` if nobody answers.
pub fn fourlw(addr: SocketAddr, word: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// `mntr` as a map; `None` if nobody answers.
pub fn mntr(addr: SocketAddr) -> Option<BTreeMap<String, String>> {
    let t = fourlw(addr, "mntr")?;
    Some(
        t.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
    )
}

/// `Mode:` from `srvr`: Some("leader"), Some("not-serving") or None.
pub fn mode(addr: SocketAddr) -> Option<String> {
    let t = fourlw(addr, "srvr")?;
    Some(
        t.lines()
            .find_map(|l| l.strip_prefix("Mode: ").map(|m| m.trim().to_string()))
            .unwrap_or_else(|| "not-serving".to_string()),
    )
}

/// Checks `f` every 250 ms for `span` and panics at the first failure,
/// saying how far into the span it came: "stays X for 30 s" claims.
pub fn hold_for<F: FnMut() -> Result<(), String>>(span: Duration, what: &str, mut f: F) {
    let start = Instant::now();
    loop {
        if let Err(e) = f() {
            panic!(
                "{what}: broke after {:.1} s of {:.0} s: {e}",
                start.elapsed().as_secs_f64(),
                span.as_secs_f64()
            );
        }
        if start.elapsed() >= span {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Polls `f` every 15 ms until it returns `Some`, or panics after `limit`
/// saying what was awaited (and the last thing seen).
pub fn poll<T, F: FnMut() -> Result<T, String>>(limit: Duration, what: &str, mut f: F) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) => {
                if Instant::now() >= deadline {
                    panic!("timed out after {limit:?} waiting for {what}; last: {last}");
                }
                std::thread::sleep(Duration::from_millis(15));
            }
        }
    }
}

/// Waits until every sid in `sids` reports, by `mntr`, a serving state and
/// the same leader; returns (leader, per-sid mntr).
pub fn await_agreement(
    ports: Ports,
    sids: &[i64],
    limit: Duration,
) -> (i64, BTreeMap<i64, BTreeMap<String, String>>) {
    poll(
        limit,
        &format!("sids {sids:?} to agree on a leader"),
        || {
            let mut all = BTreeMap::new();
            for &sid in sids {
                let m = mntr(ports.client_addr(sid)).ok_or(format!("sid {sid}: no mntr answer"))?;
                all.insert(sid, m);
            }
            let leaders: Vec<i64> = all
                .values()
                .map(|m| {
                    m.get("zk_leader_sid")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(-1)
                })
                .collect();
            let leader = leaders[0];
            let serving = all.values().all(|m| {
                matches!(
                    m.get("zk_server_state").map(String::as_str),
                    Some("leader" | "follower" | "observer")
                )
            });
            if leader >= 0 && serving && leaders.iter().all(|&l| l == leader) {
                Ok((leader, all))
            } else {
                Err(format!(
                    "leaders {leaders:?}, states {:?}",
                    all.values()
                        .map(|m| m.get("zk_server_state").cloned().unwrap_or_default())
                        .collect::<Vec<_>>()
                ))
            }
        },
    )
}

/// Waits until the client port of `sid` answers `ruok`.
pub fn await_up(ports: Ports, sid: i64, limit: Duration) {
    poll(
        limit,
        &format!("sid {sid}'s client port"),
        || match fourlw(ports.client_addr(sid), "ruok") {
            Some(s) if s == "imok" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
}

/// True if something listens on 127.0.0.1:`port` (asked with `ss`, so no
/// connection is made to an election port that would count as a peer).
/// Without `ss` (no iproute2) it connects and closes at once, which an
/// election port reads as an empty handshake and drops.
pub fn listening(port: u16) -> bool {
    match Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
    {
        Ok(o) if o.status.success() => !o.stdout.is_empty(),
        _ => TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(200),
        )
        .is_ok(),
    }
}

/// A tiny deterministic generator for seeded shuffles (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}
