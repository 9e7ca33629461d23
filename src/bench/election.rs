//! `zkfle bench election`: election latency of whole ensembles, zkfle and
//! Java ZooKeeper measured by the same code in the same run.
//!
//! Cold start: all N processes launched back to back; the time from the
//! first launch until every peer reports `Mode: leader|follower` with
//! exactly one leader. Failover: SIGKILL of the leader; the time until the
//! survivors again report exactly one leader and only followers. For both
//! implementations `Mode:` appears only once the quorum-port session is
//! synchronised, so the figure includes Zab's discovery and sync.
//!
//! Java runs through `shared/tools/zk-ensemble.sh`, whose launch and kill
//! timestamps (`node<sid>/start_ns`, `killed_ns`) start the clocks, so the
//! script's own start-up costs are not charged to Java.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::workdir::WorkDir;

/// Which implementation an ensemble runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    Zkfle,
    Java,
}

impl std::fmt::Display for Implementation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Implementation::Zkfle => "zkfle",
            Implementation::Java => "java",
        })
    }
}

/// Settings shared by both implementations, so they are measured alike.
#[derive(Debug, Clone)]
pub struct ElectionBenchOptions {
    pub sizes: Vec<usize>,
    pub trials: usize,
    pub implementations: Vec<Implementation>,
    pub cold: bool,
    pub failover: bool,
    /// Hung leader instead of a crashed one: SIGSTOP, time until the others
    /// serve a new leader, then SIGCONT and time until it rejoins.
    pub hung: bool,
    pub tick_ms: u64,
    pub init_limit: u32,
    pub sync_limit: u32,
    /// Ports: client base+sid, quorum base+100+sid, election base+200+sid.
    pub zkfle_base_port: u16,
    /// zk-ensemble.sh's ZK_CLIENT_BASE; quorum +100, election +200.
    pub java_base_port: u16,
    pub zk_ensemble: PathBuf,
    /// The zkfle binary to launch (`zkfle run`).
    pub zkfle_bin: PathBuf,
    /// Give up on one trial after this long.
    pub trial_timeout: Duration,
    /// Pause between the cold start settling and the failover or hung-leader
    /// step, for both implementations alike.
    pub settle: Duration,
    /// Where zkfle peers' logs go instead of the ensemble's temporary
    /// directory, which is deleted with it.
    pub keep_logs: Option<PathBuf>,
    /// Quorum TLS (`sslQuorum=true`) for both implementations, with a CA
    /// and peer certificate made per ensemble (`certs::write_stores`).
    pub tls: bool,
}

/// Failures that stop the benchmark.
#[derive(Debug, thiserror::Error)]
pub enum ElectionBenchError {
    #[error("cannot create a working directory: {0}")]
    WorkDir(std::io::Error),
    #[error("{0}")]
    Certs(#[from] super::certs::CertError),
    #[error("cannot launch {what}: {source}")]
    Launch {
        what: String,
        source: std::io::Error,
    },
    #[error("zk-ensemble.sh {cmd} failed: {output}")]
    Script { cmd: String, output: String },
    #[error("{implementation} N={n}: {what} did not settle within {secs} s (last seen: {last})")]
    Timeout {
        implementation: Implementation,
        n: usize,
        what: &'static str,
        secs: u64,
        last: String,
    },
}

/// One peer's resource use, read from /proc once the ensemble settled.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessStats {
    pub rss_kb: u64,
    pub threads: u64,
    pub cpu_ms: u64,
}

/// Min/median/max of a series of milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub min: f64,
    pub median: f64,
    pub max: f64,
    pub samples: usize,
}

impl Summary {
    /// `None` for an empty series.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        let median = if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        Some(Summary {
            min: v[0],
            median,
            max: v[v.len() - 1],
            samples: v.len(),
        })
    }
}

/// The figures of one implementation at one ensemble size.
#[derive(Debug, Clone)]
pub struct SizeResult {
    pub implementation: Implementation,
    pub n: usize,
    pub cold_ms: Vec<f64>,
    pub failover_ms: Vec<f64>,
    /// SIGSTOP of the leader until the others serve a new one.
    pub hung_ms: Vec<f64>,
    /// SIGCONT of the old leader until all N serve again.
    pub rejoin_ms: Vec<f64>,
    /// Per-peer stats of the last trial, after it settled.
    pub stats: Vec<ProcessStats>,
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Sends a four-letter word and returns the answer ("" if none).
pub fn four_letter(addr: SocketAddr, word: &str) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(word.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The `Mode:` of a `srvr` answer: leader, follower, observer, or None.
pub fn mode(addr: SocketAddr) -> Option<String> {
    four_letter(addr, "srvr")
        .lines()
        .find_map(|l| l.strip_prefix("Mode: ").map(|m| m.trim().to_string()))
}

/// Polls until exactly one of `ports` reports leader and all others
/// follower; returns the time that happened (ns since the epoch).
fn wait_settled(ports: &[u16], timeout: Duration) -> Result<u128, String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        let modes: Vec<Option<String>> = ports
            .iter()
            .map(|p| mode(SocketAddr::from(([127, 0, 0, 1], *p))))
            .collect();
        let t = now_ns();
        let leaders = modes
            .iter()
            .filter(|m| m.as_deref() == Some("leader"))
            .count();
        let followers = modes
            .iter()
            .filter(|m| m.as_deref() == Some("follower"))
            .count();
        if leaders == 1 && leaders + followers == ports.len() {
            return Ok(t);
        }
        last = format!("{modes:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(last)
}

fn leader_index(ports: &[u16]) -> Option<usize> {
    ports
        .iter()
        .position(|p| mode(SocketAddr::from(([127, 0, 0, 1], *p))).as_deref() == Some("leader"))
}

/// Reads RSS, thread count and CPU time of a process from /proc.
pub fn process_stats(pid: u32) -> Option<ProcessStats> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    // Linux reports in clock ticks of 100 Hz on every supported platform.
    Some(ProcessStats {
        rss_kb: field("VmRSS:")?,
        threads: field("Threads:")?,
        cpu_ms: (utime + stime) * 10,
    })
}

trait Ensemble {
    fn client_ports(&self) -> Vec<u16>;
    /// Launches every peer back to back; returns the first launch time.
    fn start(&mut self) -> Result<u128, ElectionBenchError>;
    /// SIGKILLs peer `index`; returns the kill time.
    fn kill(&mut self, index: usize) -> Result<u128, ElectionBenchError>;
    /// Sends SIGSTOP or SIGCONT to peer `index`; returns the time sent.
    fn signal(&mut self, index: usize, sig: &str) -> Result<u128, ElectionBenchError>;
    fn pids(&self) -> Vec<u32>;
    fn stop(&mut self);
}

struct ZkfleEnsemble {
    dir: WorkDir,
    bin: PathBuf,
    n: usize,
    base: u16,
    children: Vec<Option<Child>>,
    /// `Some((dir, trial))` when logs are kept.
    keep_logs: Option<(PathBuf, usize)>,
}

impl ZkfleEnsemble {
    fn new(
        opts: &ElectionBenchOptions,
        n: usize,
        trial: usize,
    ) -> Result<Self, ElectionBenchError> {
        let dir = WorkDir::new("zkfle-bench-").map_err(ElectionBenchError::WorkDir)?;
        let tls = if opts.tls {
            super::certs::write_stores(dir.path())?
        } else {
            String::new()
        };
        let mut servers = String::new();
        for sid in 1..=n as u16 {
            let _ = writeln!(
                servers,
                "server.{sid}=127.0.0.1:{}:{}",
                opts.zkfle_base_port + 100 + sid,
                opts.zkfle_base_port + 200 + sid
            );
        }
        for sid in 1..=n as u16 {
            let data = dir.path().join(format!("node{sid}"));
            std::fs::create_dir_all(&data).map_err(ElectionBenchError::WorkDir)?;
            std::fs::write(data.join("myid"), format!("{sid}\n"))
                .map_err(ElectionBenchError::WorkDir)?;
            let cfg = format!(
                "tickTime={}\ninitLimit={}\nsyncLimit={}\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n{servers}{tls}",
                opts.tick_ms,
                opts.init_limit,
                opts.sync_limit,
                data.display(),
                opts.zkfle_base_port + sid
            );
            std::fs::write(dir.path().join(format!("zoo{sid}.cfg")), cfg)
                .map_err(ElectionBenchError::WorkDir)?;
        }
        Ok(ZkfleEnsemble {
            dir,
            bin: opts.zkfle_bin.clone(),
            n,
            base: opts.zkfle_base_port,
            children: Vec::new(),
            keep_logs: opts.keep_logs.clone().map(|d| (d, trial)),
        })
    }

    fn wipe_data(&self) {
        for sid in 1..=self.n {
            let _ = std::fs::remove_dir_all(self.dir.path().join(format!("node{sid}/version-2")));
        }
    }
}

impl Ensemble for ZkfleEnsemble {
    fn client_ports(&self) -> Vec<u16> {
        (1..=self.n as u16).map(|s| self.base + s).collect()
    }

    fn start(&mut self) -> Result<u128, ElectionBenchError> {
        self.wipe_data();
        let t0 = now_ns();
        for sid in 1..=self.n {
            let (log_path, level) = match &self.keep_logs {
                Some((dir, trial)) => {
                    std::fs::create_dir_all(dir).map_err(ElectionBenchError::WorkDir)?;
                    (
                        dir.join(format!("n{}-trial{trial}-sid{sid}.log", self.n)),
                        std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
                    )
                }
                None => (
                    self.dir.path().join(format!("node{sid}.log")),
                    "info".into(),
                ),
            };
            let log = std::fs::File::create(log_path).map_err(ElectionBenchError::WorkDir)?;
            let child = Command::new(&self.bin)
                .arg("run")
                .arg(self.dir.path().join(format!("zoo{sid}.cfg")))
                .env("RUST_LOG", level)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|source| ElectionBenchError::Launch {
                    what: self.bin.display().to_string(),
                    source,
                })?;
            self.children.push(Some(child));
        }
        Ok(t0)
    }

    fn kill(&mut self, index: usize) -> Result<u128, ElectionBenchError> {
        let t = now_ns();
        if let Some(Some(c)) = self.children.get_mut(index) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(slot) = self.children.get_mut(index) {
            *slot = None;
        }
        Ok(t)
    }

    fn signal(&mut self, index: usize, sig: &str) -> Result<u128, ElectionBenchError> {
        let Some(Some(c)) = self.children.get(index) else {
            return Ok(now_ns());
        };
        let t = now_ns();
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(c.id().to_string())
            .status()
            .map_err(|source| ElectionBenchError::Launch {
                what: "kill".into(),
                source,
            })?;
        Ok(t)
    }

    fn pids(&self) -> Vec<u32> {
        self.children.iter().flatten().map(|c| c.id()).collect()
    }

    fn stop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for ZkfleEnsemble {
    fn drop(&mut self) {
        self.stop();
    }
}

struct JavaEnsemble {
    script: PathBuf,
    dir: WorkDir,
    n: usize,
    base: u16,
    opts: (u64, u32, u32),
    /// ZK_EXTRA_CFG: the TLS lines, or nothing.
    extra_cfg: String,
    started: bool,
}

impl JavaEnsemble {
    fn new(opts: &ElectionBenchOptions, n: usize) -> Result<Self, ElectionBenchError> {
        let dir = WorkDir::new("zk-bench-").map_err(ElectionBenchError::WorkDir)?;
        let extra_cfg = if opts.tls {
            super::certs::write_stores(dir.path())?
        } else {
            String::new()
        };
        Ok(JavaEnsemble {
            script: opts.zk_ensemble.clone(),
            dir,
            n,
            base: opts.java_base_port,
            opts: (opts.tick_ms, opts.init_limit, opts.sync_limit),
            extra_cfg,
            started: false,
        })
    }

    fn zk_dir(&self) -> PathBuf {
        self.dir.path().join("zk")
    }

    fn script(&self, args: &[&str]) -> Result<String, ElectionBenchError> {
        let out = Command::new("bash")
            .arg(&self.script)
            .args(args)
            .env("ZK_DIR", self.zk_dir())
            .env("ZK_SIZE", self.n.to_string())
            .env("ZK_CLIENT_BASE", self.base.to_string())
            .env("ZK_QUORUM_BASE", (self.base + 100).to_string())
            .env("ZK_ELECTION_BASE", (self.base + 200).to_string())
            .env("ZK_TICK", self.opts.0.to_string())
            .env("ZK_INIT", self.opts.1.to_string())
            .env("ZK_SYNC", self.opts.2.to_string())
            .env("ZK_EXTRA_CFG", &self.extra_cfg)
            .output()
            .map_err(|source| ElectionBenchError::Launch {
                what: self.script.display().to_string(),
                source,
            })?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            return Err(ElectionBenchError::Script {
                cmd: args.join(" "),
                output: text,
            });
        }
        Ok(text)
    }

    fn read_ns(&self, sid: usize, file: &str) -> Option<u128> {
        std::fs::read_to_string(self.zk_dir().join(format!("node{sid}/{file}")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Ensemble for JavaEnsemble {
    fn client_ports(&self) -> Vec<u16> {
        (1..=self.n as u16).map(|s| self.base + s).collect()
    }

    fn start(&mut self) -> Result<u128, ElectionBenchError> {
        self.script(&["start"])?;
        self.started = true;
        Ok((1..=self.n)
            .filter_map(|s| self.read_ns(s, "start_ns"))
            .min()
            .unwrap_or_else(now_ns))
    }

    fn kill(&mut self, index: usize) -> Result<u128, ElectionBenchError> {
        let sid = index + 1;
        self.script(&["kill", &sid.to_string()])?;
        Ok(self.read_ns(sid, "killed_ns").unwrap_or_else(now_ns))
    }

    fn signal(&mut self, index: usize, sig: &str) -> Result<u128, ElectionBenchError> {
        let t = now_ns();
        self.script(&["kill", &(index + 1).to_string(), sig])?;
        Ok(t)
    }

    fn pids(&self) -> Vec<u32> {
        (1..=self.n)
            .filter_map(|s| {
                std::fs::read_to_string(self.zk_dir().join(format!("node{s}/pid"))).ok()
            })
            .filter_map(|p| p.trim().parse().ok())
            .filter(|p: &u32| Path::new(&format!("/proc/{p}")).exists())
            .collect()
    }

    fn stop(&mut self) {
        if self.started {
            let _ = self.script(&["stop"]);
            self.started = false;
        }
    }
}

impl Drop for JavaEnsemble {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ms_between(t0: u128, t1: u128) -> f64 {
    t1.saturating_sub(t0) as f64 / 1e6
}

/// Runs every configured trial; prints one line per trial to stdout.
pub fn run(opts: &ElectionBenchOptions) -> Result<Vec<SizeResult>, ElectionBenchError> {
    let mut results = Vec::new();
    println!(
        "quorum_tls={}",
        if opts.tls {
            "on (sslQuorum=true, ECDSA P-256 certificates)"
        } else {
            "off"
        }
    );
    for &n in &opts.sizes {
        for &imp in &opts.implementations {
            let mut r = SizeResult {
                implementation: imp,
                n,
                cold_ms: Vec::new(),
                failover_ms: Vec::new(),
                hung_ms: Vec::new(),
                rejoin_ms: Vec::new(),
                stats: Vec::new(),
            };
            for trial in 1..=opts.trials {
                let mut ens: Box<dyn Ensemble> = match imp {
                    Implementation::Zkfle => Box::new(ZkfleEnsemble::new(opts, n, trial)?),
                    Implementation::Java => Box::new(JavaEnsemble::new(opts, n)?),
                };
                let ports = ens.client_ports();
                let t0 = ens.start()?;
                let settled = wait_settled(&ports, opts.trial_timeout).map_err(|last| {
                    ElectionBenchError::Timeout {
                        implementation: imp,
                        n,
                        what: "cold start",
                        secs: opts.trial_timeout.as_secs(),
                        last,
                    }
                })?;
                let cold = ms_between(t0, settled);
                if opts.cold {
                    println!("trial impl={imp} n={n} trial={trial} scenario=cold ms={cold:.1}");
                    r.cold_ms.push(cold);
                }
                r.stats = ens.pids().into_iter().filter_map(process_stats).collect();
                // Failover is measured on a settled ensemble, as it happens in
                // service: right after a cold start the peers are still
                // finishing connection set-up (dial loops, call-backs).
                std::thread::sleep(opts.settle);
                let leader = leader_index(&ports);
                let survivors = |leader: usize| -> Vec<u16> {
                    ports
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != leader)
                        .map(|(_, p)| *p)
                        .collect()
                };
                let timeout = |what: &'static str, last: String| ElectionBenchError::Timeout {
                    implementation: imp,
                    n,
                    what,
                    secs: opts.trial_timeout.as_secs(),
                    last,
                };
                if let (true, Some(leader)) = (opts.hung, leader) {
                    let t_stop = ens.signal(leader, "STOP")?;
                    let others = survivors(leader);
                    // A stopped leader still answers nothing: its client port
                    // hangs, so only the others are polled.
                    let settled = wait_settled(&others, opts.trial_timeout)
                        .map_err(|last| timeout("hung leader", last))?;
                    let ms = ms_between(t_stop, settled);
                    println!("trial impl={imp} n={n} trial={trial} scenario=hung ms={ms:.1}");
                    r.hung_ms.push(ms);
                    let t_cont = ens.signal(leader, "CONT")?;
                    let settled = wait_settled(&ports, opts.trial_timeout)
                        .map_err(|last| timeout("rejoin", last))?;
                    let ms = ms_between(t_cont, settled);
                    println!("trial impl={imp} n={n} trial={trial} scenario=rejoin ms={ms:.1}");
                    r.rejoin_ms.push(ms);
                } else if let (true, Some(leader)) = (opts.failover, leader) {
                    let t_kill = ens.kill(leader)?;
                    let settled = wait_settled(&survivors(leader), opts.trial_timeout)
                        .map_err(|last| timeout("failover", last))?;
                    let ms = ms_between(t_kill, settled);
                    println!("trial impl={imp} n={n} trial={trial} scenario=failover ms={ms:.1}");
                    r.failover_ms.push(ms);
                }
                ens.stop();
            }
            results.push(r);
        }
    }
    Ok(results)
}

/// The summary table: one line per implementation, size and scenario, then
/// resource use, then the zkfle/Java ratios where both ran.
pub fn summary_lines(results: &[SizeResult]) -> Vec<String> {
    let mut out = Vec::new();
    for r in results {
        for (scenario, v) in [
            ("cold", &r.cold_ms),
            ("failover", &r.failover_ms),
            ("hung", &r.hung_ms),
            ("rejoin", &r.rejoin_ms),
        ] {
            if let Some(s) = Summary::of(v) {
                out.push(format!(
                    "result impl={} n={} scenario={scenario} min_ms={:.1} median_ms={:.1} max_ms={:.1} trials={}",
                    r.implementation, r.n, s.min, s.median, s.max, s.samples
                ));
            }
        }
        if !r.stats.is_empty() {
            let k = r.stats.len() as u64;
            out.push(format!(
                "resources impl={} n={} rss_kb_avg={} threads_avg={} cpu_ms_avg={}",
                r.implementation,
                r.n,
                r.stats.iter().map(|s| s.rss_kb).sum::<u64>() / k,
                r.stats.iter().map(|s| s.threads).sum::<u64>() / k,
                r.stats.iter().map(|s| s.cpu_ms).sum::<u64>() / k
            ));
        }
    }
    for z in results
        .iter()
        .filter(|r| r.implementation == Implementation::Zkfle)
    {
        let Some(j) = results
            .iter()
            .find(|r| r.implementation == Implementation::Java && r.n == z.n)
        else {
            continue;
        };
        for (scenario, zv, jv) in [
            ("cold", &z.cold_ms, &j.cold_ms),
            ("failover", &z.failover_ms, &j.failover_ms),
        ] {
            if let (Some(zs), Some(js)) = (Summary::of(zv), Summary::of(jv)) {
                out.push(format!(
                    "ratio n={} scenario={scenario} java_over_zkfle_median={:.1}",
                    z.n,
                    js.median / zs.median.max(0.001)
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_min_median_max() {
        let s = Summary::of(&[5.0, 1.0, 3.0, 9.0]).expect("non-empty");
        assert_eq!((s.min, s.median, s.max, s.samples), (1.0, 4.0, 9.0, 4));
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn own_process_stats_are_read() {
        let s = process_stats(std::process::id()).expect("/proc is readable");
        assert!(s.rss_kb > 0 && s.threads >= 1);
    }
}

/// A grouped bar chart (SVG) of the median figures: one group per scenario
/// and ensemble size, one bar per implementation, on a log scale because
/// Java's cold start (JVM boot included) and zkfle's differ by orders of
/// magnitude. Whiskers show min and max.
pub fn svg_chart(results: &[SizeResult]) -> String {
    struct Bar {
        label: String,
        implementation: Implementation,
        summary: Summary,
    }
    let mut groups: Vec<(String, Vec<Bar>)> = Vec::new();
    for scenario in ["cold", "failover", "hung"] {
        let mut sizes: Vec<usize> = results.iter().map(|r| r.n).collect();
        sizes.sort_unstable();
        sizes.dedup();
        for n in sizes {
            let bars: Vec<Bar> = results
                .iter()
                .filter(|r| r.n == n)
                .filter_map(|r| {
                    let v = match scenario {
                        "cold" => &r.cold_ms,
                        "failover" => &r.failover_ms,
                        _ => &r.hung_ms,
                    };
                    Summary::of(v).map(|summary| Bar {
                        label: format!("{:.0}", summary.median),
                        implementation: r.implementation,
                        summary,
                    })
                })
                .collect();
            if !bars.is_empty() {
                groups.push((format!("{scenario} N={n}"), bars));
            }
        }
    }
    let (w, h, left, bottom, top) = (
        120.0 * groups.len().max(1) as f64 + 80.0,
        360.0,
        60.0,
        60.0,
        30.0,
    );
    let plot_h = h - bottom - top;
    let (lo, hi) = (0.0f64, 4.0f64); // 1 ms .. 10 s
    let y =
        |ms: f64| top + plot_h * (1.0 - ((ms.max(1.0).log10() - lo) / (hi - lo)).clamp(0.0, 1.0));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"18\" font-size=\"13\">Election latency, median ms (log scale; whiskers: min-max)</text>"
    );
    for (ms, label) in [
        (1.0, "1"),
        (10.0, "10"),
        (100.0, "100"),
        (1000.0, "1 s"),
        (10000.0, "10 s"),
    ] {
        let yy = y(ms);
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{:.0}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/><text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            w - 10.0,
            left - 6.0,
            yy + 4.0
        );
    }
    for (gi, (name, bars)) in groups.iter().enumerate() {
        let gx = left + 10.0 + gi as f64 * 120.0;
        for (bi, b) in bars.iter().enumerate() {
            let x = gx + bi as f64 * 48.0;
            let color = match b.implementation {
                Implementation::Zkfle => "#2b7bb9",
                Implementation::Java => "#d9822b",
            };
            let (y_med, y_min, y_max) = (y(b.summary.median), y(b.summary.min), y(b.summary.max));
            let base = top + plot_h;
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y_med:.1}\" width=\"40\" height=\"{:.1}\" fill=\"{color}\"/>",
                (base - y_med).max(0.0)
            );
            let _ = writeln!(
                s,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{y_min:.1}\" y2=\"{y_max:.1}\" stroke=\"black\"/>",
                x + 20.0
            );
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + 20.0,
                y_max - 4.0,
                b.label
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{name}</text>",
            gx + 44.0,
            top + plot_h + 18.0
        );
    }
    let ly = h - 14.0;
    let _ = writeln!(
        s,
        "<rect x=\"{left}\" y=\"{:.0}\" width=\"12\" height=\"12\" fill=\"#2b7bb9\"/><text x=\"{:.0}\" y=\"{ly:.0}\">zkfle</text>",
        ly - 10.0,
        left + 16.0
    );
    let _ = writeln!(
        s,
        "<rect x=\"{:.0}\" y=\"{:.0}\" width=\"12\" height=\"12\" fill=\"#d9822b\"/><text x=\"{:.0}\" y=\"{ly:.0}\">Java ZooKeeper 3.8</text>",
        left + 70.0,
        ly - 10.0,
        left + 86.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod chart_tests {
    use super::*;

    #[test]
    fn chart_has_one_bar_per_implementation_and_figure() {
        let r = |implementation, cold: f64, failover: f64| SizeResult {
            implementation,
            n: 3,
            cold_ms: vec![cold],
            failover_ms: vec![failover],
            hung_ms: Vec::new(),
            rejoin_ms: Vec::new(),
            stats: Vec::new(),
        };
        let svg = svg_chart(&[
            r(Implementation::Zkfle, 40.0, 30.0),
            r(Implementation::Java, 2300.0, 400.0),
        ]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(
            !svg.contains(">hung N=3<"),
            "no hung bars without hung data"
        );
        assert_eq!(
            svg.matches("width=\"40\"").count(),
            4,
            "two scenarios x two implementations"
        );
        for label in [
            ">40<",
            ">2300<",
            ">30<",
            ">400<",
            ">cold N=3<",
            ">failover N=3<",
        ] {
            assert!(svg.contains(label), "missing {label}");
        }
        // A hung scenario gets its own bars with its own figures.
        let mut hung = r(Implementation::Zkfle, 40.0, 30.0);
        hung.hung_ms = vec![1015.0];
        let svg = svg_chart(&[hung]);
        assert!(svg.contains(">hung N=3<") && svg.contains(">1015<"));
    }
}
