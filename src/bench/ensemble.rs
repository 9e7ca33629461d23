//! The ensembles `zkfle bench election` runs: zkfle processes and Java
//! ZooKeeper 3.8 JVMs, both launched by this process (so it stops only what
//! it started), both watched the same way through their client ports.
//!
//! Java is launched directly, with the settings of
//! `shared/tools/zk-ensemble.sh` (Debian's jar, log4j 1.2 file logging at
//! a chosen level, `-Xmx1000m`), because that script stops at nine sids
//! and has no observers.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::election::{ElectionBenchError, ElectionBenchOptions, Implementation};
use super::workdir::WorkDir;

/// Debian's ZooKeeper 3.8 jar and the logging jars that give it a log file
/// (the same classpath as `zk-ensemble.sh`).
const ZK_CLASSPATH: &[&str] = &[
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
];

/// Needed on Java's classpath for quorum TLS.
const NETTY_CODEC: &str = "/usr/share/java/netty-codec.jar";

/// The zoo.cfg lines of quorum TLS (stores written into `dir`), or nothing.
fn tls_lines(
    opts: &ElectionBenchOptions,
    dir: &std::path::Path,
) -> Result<String, ElectionBenchError> {
    if opts.tls {
        Ok(super::certs::write_stores(dir)?)
    } else {
        Ok(String::new())
    }
}

/// Nanoseconds since the Unix epoch (the clock both ensembles are timed on).
pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Where a sid's ports are: client `base + sid`, quorum
/// `base + stride + sid`, election `base + 2 * stride + sid`. The stride
/// bounds the sids (1 .. stride-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortPlan {
    /// Base of the three ranges.
    pub base: u16,
    /// Distance between the ranges.
    pub stride: u16,
}

impl PortPlan {
    /// A sid's client port.
    pub fn client(&self, sid: usize) -> u16 {
        self.base + sid as u16
    }
    /// A sid's quorum port.
    pub fn quorum(&self, sid: usize) -> u16 {
        self.base + self.stride + sid as u16
    }
    /// A sid's election port.
    pub fn election(&self, sid: usize) -> u16 {
        self.base + 2 * self.stride + sid as u16
    }
    /// True if every port of sids 1..=sids fits below 65536 and inside
    /// its range.
    pub fn fits(&self, sids: usize) -> bool {
        sids < self.stride as usize
            && (self.base as usize + 3 * self.stride as usize) <= u16::MAX as usize
    }
}

/// The role a peer should end up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A participant: leader or follower.
    Voter,
    /// An observer.
    Observer,
}

/// One peer's resource use, read from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessStats {
    /// Resident set now.
    pub rss_kb: u64,
    /// Peak resident set (VmHWM).
    pub hwm_kb: u64,
    /// The anonymous part of the resident set (RssAnon: heap, stacks),
    /// which unlike the mapped binary and libc is not shared between the
    /// peers.
    pub anon_kb: u64,
    /// Threads now.
    pub threads: u64,
    /// User + system CPU time so far.
    pub cpu_ms: u64,
}

/// Reads RSS, peak RSS, thread count and CPU time of a process from /proc.
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
        hwm_kb: field("VmHWM:")?,
        anon_kb: field("RssAnon:")?,
        threads: field("Threads:")?,
        cpu_ms: (utime + stime) * 10,
    })
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

/// A serving peer's `Mode:` (leader, follower, observer) from `srvr`,
/// the lightest four-letter word that carries it (`mntr` formats some fifty
/// keys: polled back to back it took 7 % of a 51-peer ensemble's CPU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The Mode line.
    pub mode: String,
}

/// Asks `srvr` on a client port; `None` unless it serves.
pub fn served(port: u16) -> Option<Served> {
    let text = four_letter(SocketAddr::from(([127, 0, 0, 1], port)), "srvr");
    let mode = text
        .lines()
        .find_map(|l| l.strip_prefix("Mode: ").map(|m| m.trim().to_string()))?;
    matches!(mode.as_str(), "leader" | "follower" | "observer").then_some(Served { mode })
}

/// `mntr`'s `zk_looking_count`: elections entered since start (ZooKeeper
/// 3.8's `looking_count` metric; zkfle's key of the same name).
pub fn looking_count(port: u16) -> Option<i64> {
    let text = four_letter(SocketAddr::from(([127, 0, 0, 1], port)), "mntr");
    text.lines().find_map(|l| {
        let (name, value) = l.split_once('\t')?;
        if name == "zk_looking_count" {
            value.trim().parse().ok()
        } else {
            None
        }
    })
}

/// The peers to watch and what "settled" means for them.
#[derive(Debug, Clone)]
pub struct Watch {
    /// Client port and expected role of every peer that must settle.
    pub peers: Vec<(u16, Role)>,
    /// Per peer, the `zk_looking_count` it must exceed (empty: any). After
    /// a failover a survivor that has not noticed the crash yet still
    /// reports its old state; only a new election tells the two apart.
    pub looking_above: Vec<i64>,
}

/// When the last peer settled (ns since the epoch), and how many `srvr`
/// questions that took.
#[derive(Debug, Clone, Copy)]
pub struct Settled {
    /// The time of the first answer, in the final round of checks, in
    /// which the peer that settled last was seen settled.
    pub at: u128,
    /// `srvr` round trips spent watching.
    pub polls: usize,
}

/// Polls `srvr` until one voter is leader, every other voter follower and
/// every observer observer, each (by `mntr`, asked once it serves) past
/// its [`Watch::looking_above`].
///
/// The time returned is when the *last* peer was first seen in its final
/// state, not the end of a sweep: peers not yet settled are polled again
/// and again (one `srvr` each, back to back), so at N = 101 the error is
/// about one round trip per peer still unsettled, not one per peer. A
/// sweep over all peers then confirms that nobody moved on; anyone who did
/// is watched again.
// `i` indexes three parallel things (seen, the peers, the election flags).
#[allow(clippy::needless_range_loop)]
pub fn wait_settled(watch: &Watch, timeout: Duration) -> Result<Settled, String> {
    let deadline = Instant::now() + timeout;
    let n = watch.peers.len();
    // For each peer: its settled mode and when it was first seen in it.
    let mut seen: Vec<Option<(String, u128)>> = vec![None; n];
    let mut polls = 0usize;
    // Peers whose looking count was seen past the bound; it only grows.
    let mut new_election = vec![watch.looking_above.is_empty(); n];
    let mut ok = |i: usize, s: &Option<Served>, polls: &mut usize| -> Option<String> {
        let s = s.as_ref()?;
        let good = match watch.peers[i].1 {
            Role::Voter => s.mode == "leader" || s.mode == "follower",
            Role::Observer => s.mode == "observer",
        };
        if !good {
            return None;
        }
        if !new_election[i] {
            *polls += 1;
            let bound = watch.looking_above.get(i).copied().unwrap_or(i64::MIN);
            new_election[i] = looking_count(watch.peers[i].0).is_some_and(|c| c > bound);
        }
        new_election[i].then(|| s.mode.clone())
    };
    let mut last = String::new();
    while Instant::now() < deadline {
        // Stragglers first, as often as a round trip allows.
        let mut progress = false;
        for i in 0..n {
            if seen[i].is_some() {
                continue;
            }
            let s = served(watch.peers[i].0);
            let t = now_ns();
            polls += 1;
            if let Some(mode) = ok(i, &s, &mut polls) {
                seen[i] = Some((mode, t));
                progress = true;
            }
        }
        if seen.iter().any(|s| s.is_none()) {
            if !progress {
                std::thread::sleep(Duration::from_millis(1));
            }
            continue;
        }
        // Everyone was seen settled once: confirm with a full sweep.
        let mut moved = false;
        for i in 0..n {
            let s = served(watch.peers[i].0);
            polls += 1;
            match ok(i, &s, &mut polls) {
                Some(mode) if seen[i].as_ref().is_some_and(|(m, _)| *m == mode) => {}
                Some(mode) => {
                    seen[i] = Some((mode, now_ns()));
                    moved = true;
                }
                None => {
                    seen[i] = None;
                    moved = true;
                }
            }
        }
        let leaders = seen.iter().flatten().filter(|(m, _)| m == "leader").count();
        if !moved && leaders == 1 {
            let at = seen.iter().flatten().map(|(_, t)| *t).max().unwrap_or(0);
            return Ok(Settled { at, polls });
        }
        last = format!(
            "{} leaders; unsettled: {:?}",
            leaders,
            seen.iter()
                .enumerate()
                .filter(|(_, s)| s.is_none())
                .map(|(i, _)| watch.peers[i].0)
                .collect::<Vec<_>>()
        );
        if leaders != 1 {
            // Two leaders (one stale) or none: look at everyone again.
            seen.iter_mut().for_each(|s| *s = None);
        }
    }
    if last.is_empty() {
        last = format!(
            "unsettled client ports: {:?}",
            seen.iter()
                .enumerate()
                .filter(|(_, s)| s.is_none())
                .map(|(i, _)| watch.peers[i].0)
                .collect::<Vec<_>>()
        );
    }
    Err(last)
}

/// `zk_notifications_sent` and `zk_notifications_received` of a zkfle peer
/// (Java has no such counters).
pub fn notification_counts(port: u16) -> Option<(u64, u64)> {
    let text = four_letter(SocketAddr::from(([127, 0, 0, 1], port)), "mntr");
    let key = |k: &str| {
        text.lines().find_map(|l| {
            let (name, value) = l.split_once('\t')?;
            if name == k {
                value.trim().parse::<u64>().ok()
            } else {
                None
            }
        })
    };
    Some((
        key("zk_notifications_sent")?,
        key("zk_notifications_received")?,
    ))
}

/// The Mode of every peer now (`None`: not serving or gone).
pub fn modes(ports: &[u16]) -> Vec<Option<Served>> {
    ports.iter().map(|p| served(*p)).collect()
}

/// One ensemble of processes this benchmark started.
pub trait Ensemble {
    /// Client port and role of every sid (index = sid - 1).
    fn peers(&self) -> Vec<(u16, Role)>;
    /// Launches every peer back to back, sid 1 first (the best vote, the
    /// highest sid, comes last: every peer changes its proposal as the
    /// larger sids appear, the costly order); returns the first and last
    /// launch times.
    fn start(&mut self) -> Result<(u128, u128), ElectionBenchError>;
    /// SIGKILLs peer `index`; returns the kill time.
    fn kill(&mut self, index: usize) -> Result<u128, ElectionBenchError>;
    /// Sends SIGSTOP or SIGCONT to peer `index`; returns the time sent.
    fn signal(&mut self, index: usize, sig: &str) -> Result<u128, ElectionBenchError>;
    /// Pids of the peers still running, with their index.
    fn pids(&self) -> Vec<(usize, u32)>;
    /// Stops every peer it started.
    fn stop(&mut self);
}

/// The `server.N` lines of an ensemble of `voters` participants followed
/// by `observers` observers.
fn server_lines(plan: PortPlan, voters: usize, observers: usize) -> String {
    let mut s = String::new();
    for sid in 1..=voters + observers {
        let _ = writeln!(
            s,
            "server.{sid}=127.0.0.1:{}:{}{}",
            plan.quorum(sid),
            plan.election(sid),
            if sid > voters { ":observer" } else { "" }
        );
    }
    s
}

/// Processes launched by this benchmark, stopped on drop.
struct Children {
    procs: Vec<Option<Child>>,
}

impl Children {
    fn kill(&mut self, index: usize) -> u128 {
        let t = now_ns();
        if let Some(slot) = self.procs.get_mut(index) {
            if let Some(mut c) = slot.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        t
    }

    fn signal(&self, index: usize, sig: &str) -> Result<u128, ElectionBenchError> {
        let Some(Some(c)) = self.procs.get(index) else {
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

    fn pids(&self) -> Vec<(usize, u32)> {
        self.procs
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i, c.id())))
            .collect()
    }

    fn stop(&mut self) {
        for c in self.procs.iter_mut() {
            if let Some(mut c) = c.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `zkfle run` processes.
pub struct ZkfleEnsemble {
    dir: WorkDir,
    bin: PathBuf,
    voters: usize,
    observers: usize,
    plan: PortPlan,
    children: Children,
    /// `Some((dir, trial))` when logs are kept.
    keep_logs: Option<(PathBuf, usize)>,
}

impl ZkfleEnsemble {
    /// Writes the configuration of trial `trial` of `voters` + `observers`.
    pub fn new(
        opts: &ElectionBenchOptions,
        voters: usize,
        trial: usize,
    ) -> Result<Self, ElectionBenchError> {
        let dir = WorkDir::new_in(&opts.data_root, "zkfle-bench-")
            .map_err(ElectionBenchError::WorkDir)?;
        let tls = tls_lines(opts, dir.path())?;
        let plan = opts.zkfle_ports;
        let observers = opts.observers;
        let servers = server_lines(plan, voters, observers);
        for sid in 1..=voters + observers {
            let data = dir.path().join(format!("node{sid}"));
            std::fs::create_dir_all(&data).map_err(ElectionBenchError::WorkDir)?;
            std::fs::write(data.join("myid"), format!("{sid}\n"))
                .map_err(ElectionBenchError::WorkDir)?;
            let cfg = format!(
                "tickTime={}\ninitLimit={}\nsyncLimit={}\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n{}{servers}{tls}",
                opts.tick_ms,
                opts.init_limit,
                opts.sync_limit,
                data.display(),
                plan.client(sid),
                if sid > voters { "peerType=observer\n" } else { "" }
            );
            std::fs::write(dir.path().join(format!("zoo{sid}.cfg")), cfg)
                .map_err(ElectionBenchError::WorkDir)?;
        }
        Ok(ZkfleEnsemble {
            dir,
            bin: opts.zkfle_bin.clone(),
            voters,
            observers,
            plan,
            children: Children { procs: Vec::new() },
            keep_logs: opts.keep_logs.clone().map(|d| (d, trial)),
        })
    }
}

impl Ensemble for ZkfleEnsemble {
    fn peers(&self) -> Vec<(u16, Role)> {
        (1..=self.voters + self.observers)
            .map(|s| {
                let role = if s > self.voters {
                    Role::Observer
                } else {
                    Role::Voter
                };
                (self.plan.client(s), role)
            })
            .collect()
    }

    fn start(&mut self) -> Result<(u128, u128), ElectionBenchError> {
        let total = self.voters + self.observers;
        // Open every log file before the clock starts.
        let mut logs = Vec::new();
        for sid in 1..=total {
            let (path, level) = match &self.keep_logs {
                Some((dir, trial)) => {
                    std::fs::create_dir_all(dir).map_err(ElectionBenchError::WorkDir)?;
                    let name = if self.observers > 0 {
                        format!(
                            "n{}o{}-trial{trial}-sid{sid}.log",
                            self.voters, self.observers
                        )
                    } else {
                        format!("n{}-trial{trial}-sid{sid}.log", self.voters)
                    };
                    (
                        dir.join(name),
                        std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
                    )
                }
                None => (
                    self.dir.path().join(format!("node{sid}.log")),
                    "info".to_string(),
                ),
            };
            let f = std::fs::File::create(path).map_err(ElectionBenchError::WorkDir)?;
            logs.push((f, level));
        }
        self.children.procs = (0..total).map(|_| None).collect();
        let t0 = now_ns();
        for (i, (log, level)) in logs.into_iter().enumerate() {
            let sid = i + 1;
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
            self.children.procs[sid - 1] = Some(child);
        }
        Ok((t0, now_ns()))
    }

    fn kill(&mut self, index: usize) -> Result<u128, ElectionBenchError> {
        Ok(self.children.kill(index))
    }

    fn signal(&mut self, index: usize, sig: &str) -> Result<u128, ElectionBenchError> {
        self.children.signal(index, sig)
    }

    fn pids(&self) -> Vec<(usize, u32)> {
        self.children.pids()
    }

    fn stop(&mut self) {
        self.children.stop();
    }
}

/// Java ZooKeeper 3.8 JVMs (`QuorumPeerMain`).
pub struct JavaEnsemble {
    dir: WorkDir,
    java: PathBuf,
    heap_mb: u32,
    voters: usize,
    observers: usize,
    plan: PortPlan,
    children: Children,
    /// Runs with quorum TLS (netty-codec goes on the classpath).
    tls: bool,
}

impl JavaEnsemble {
    /// Writes every sid's zoo.cfg and log4j.properties (log level
    /// `opts.java_log_level`).
    pub fn new(opts: &ElectionBenchOptions, voters: usize) -> Result<Self, ElectionBenchError> {
        for jar in ZK_CLASSPATH {
            if !std::path::Path::new(jar).exists() {
                return Err(ElectionBenchError::Launch {
                    what: format!(
                        "Java ZooKeeper ({jar} is missing; apt-get install -y zookeeper)"
                    ),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            }
        }
        let dir =
            WorkDir::new_in(&opts.data_root, "zk-bench-").map_err(ElectionBenchError::WorkDir)?;
        let tls = tls_lines(opts, dir.path())?;
        let plan = opts.java_ports;
        let observers = opts.observers;
        let servers = server_lines(plan, voters, observers);
        for sid in 1..=voters + observers {
            let d = dir.path().join(format!("node{sid}"));
            std::fs::create_dir_all(d.join("data")).map_err(ElectionBenchError::WorkDir)?;
            std::fs::write(d.join("data/myid"), format!("{sid}\n"))
                .map_err(ElectionBenchError::WorkDir)?;
            let cfg = format!(
                "tickTime={}\ninitLimit={}\nsyncLimit={}\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\nautopurge.purgeInterval=0\n{}{servers}{tls}",
                opts.tick_ms,
                opts.init_limit,
                opts.sync_limit,
                d.join("data").display(),
                plan.client(sid),
                if sid > voters { "peerType=observer\n" } else { "" }
            );
            std::fs::write(d.join("zoo.cfg"), cfg).map_err(ElectionBenchError::WorkDir)?;
            let log4j = format!(
                "log4j.rootLogger={}, ROLLINGFILE\n\
                 log4j.appender.ROLLINGFILE=org.apache.log4j.RollingFileAppender\n\
                 log4j.appender.ROLLINGFILE.File=${{zookeeper.log.dir}}/zookeeper.log\n\
                 log4j.appender.ROLLINGFILE.MaxFileSize=50MB\n\
                 log4j.appender.ROLLINGFILE.MaxBackupIndex=2\n\
                 log4j.appender.ROLLINGFILE.layout=org.apache.log4j.PatternLayout\n\
                 log4j.appender.ROLLINGFILE.layout.ConversionPattern=%d{{ISO8601}} - %-5p [%t:%C{{1}}@%L] - %m%n\n",
                opts.java_log_level
            );
            std::fs::write(d.join("log4j.properties"), log4j)
                .map_err(ElectionBenchError::WorkDir)?;
        }
        Ok(JavaEnsemble {
            dir,
            java: opts.java_bin.clone(),
            heap_mb: opts.java_heap_mb,
            voters,
            observers,
            plan,
            children: Children { procs: Vec::new() },
            tls: opts.tls,
        })
    }
}

impl Ensemble for JavaEnsemble {
    fn peers(&self) -> Vec<(u16, Role)> {
        (1..=self.voters + self.observers)
            .map(|s| {
                let role = if s > self.voters {
                    Role::Observer
                } else {
                    Role::Voter
                };
                (self.plan.client(s), role)
            })
            .collect()
    }

    fn start(&mut self) -> Result<(u128, u128), ElectionBenchError> {
        let total = self.voters + self.observers;
        self.children.procs = (0..total).map(|_| None).collect();
        let mut classpath = ZK_CLASSPATH.join(":");
        // Debian's zookeeper.jar does not name netty-codec in its manifest,
        // and 3.8's TLS listener needs it (its thread dies on the first TLS
        // connection without it), as zk-ensemble.sh notes.
        if self.tls && std::path::Path::new(NETTY_CODEC).exists() {
            classpath.push(':');
            classpath.push_str(NETTY_CODEC);
        }
        let mut outputs = Vec::new();
        for sid in 1..=total {
            let d = self.dir.path().join(format!("node{sid}"));
            let out =
                std::fs::File::create(d.join("stdout")).map_err(ElectionBenchError::WorkDir)?;
            let err = out.try_clone().map_err(ElectionBenchError::WorkDir)?;
            outputs.push((out, err));
        }
        let t0 = now_ns();
        for (i, (out, err)) in outputs.into_iter().enumerate() {
            let sid = i + 1;
            let d = self.dir.path().join(format!("node{sid}"));
            let child = Command::new(&self.java)
                .arg(format!("-Xmx{}m", self.heap_mb))
                .arg(format!("-Dzookeeper.log.dir={}", d.display()))
                .arg("-Dzookeeper.log.file=zookeeper.log")
                .arg(format!(
                    "-Dlog4j.configuration=file:{}",
                    d.join("log4j.properties").display()
                ))
                .arg("-cp")
                .arg(&classpath)
                .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                .arg(d.join("zoo.cfg"))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|source| ElectionBenchError::Launch {
                    what: self.java.display().to_string(),
                    source,
                })?;
            self.children.procs[sid - 1] = Some(child);
        }
        Ok((t0, now_ns()))
    }

    fn kill(&mut self, index: usize) -> Result<u128, ElectionBenchError> {
        Ok(self.children.kill(index))
    }

    fn signal(&mut self, index: usize, sig: &str) -> Result<u128, ElectionBenchError> {
        self.children.signal(index, sig)
    }

    fn pids(&self) -> Vec<(usize, u32)> {
        self.children.pids()
    }

    fn stop(&mut self) {
        self.children.stop();
    }
}

/// Builds the ensemble of `imp` for one trial.
pub fn make(
    imp: Implementation,
    opts: &ElectionBenchOptions,
    voters: usize,
    trial: usize,
) -> Result<Box<dyn Ensemble>, ElectionBenchError> {
    Ok(match imp {
        Implementation::Zkfle => Box::new(ZkfleEnsemble::new(opts, voters, trial)?),
        Implementation::Java => Box::new(JavaEnsemble::new(opts, voters)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_do_not_overlap() {
        let p = PortPlan {
            base: 11000,
            stride: 200,
        };
        assert_eq!(
            (p.client(1), p.quorum(1), p.election(1)),
            (11001, 11201, 11401)
        );
        assert!(p.fits(199) && !p.fits(200));
        assert!(p.client(199) < p.quorum(1) && p.quorum(199) < p.election(1));
    }

    #[test]
    fn observers_are_listed_after_the_voters() {
        let p = PortPlan {
            base: 11000,
            stride: 200,
        };
        let s = server_lines(p, 2, 1);
        assert_eq!(
            s,
            "server.1=127.0.0.1:11201:11401\nserver.2=127.0.0.1:11202:11402\nserver.3=127.0.0.1:11203:11403:observer\n"
        );
    }

    #[test]
    fn own_process_stats_are_read() {
        let s = process_stats(std::process::id()).expect("/proc is readable");
        assert!(s.rss_kb > 0 && s.hwm_kb >= s.rss_kb && s.threads >= 1);
    }
}
