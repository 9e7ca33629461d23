//! `replicated_kv` example processes for the process-level fault tests:
//! start, SIGKILL, SIGSTOP/SIGCONT (only the processes a test started, by
//! pid), `mntr` on each node's client port, and a client workload that
//! records what was acknowledged and checks every read for staleness.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The example binary next to this test (`target/<profile>/examples/`),
/// built first (`cargo build [--release] --example replicated_kv`, a no-op
/// when it is fresh) so a test never runs a stale binary.
pub fn example_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary under target/<profile>/deps")
        .to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "build",
        "--example",
        "replicated_kv",
        "--quiet",
    ]);
    if release {
        cmd.arg("--release");
    }
    let st = cmd
        .status()
        .expect("run cargo build --example replicated_kv");
    assert!(st.success(), "cargo build --example replicated_kv: {st}");
    let bin = profile_dir.join("examples").join("replicated_kv");
    assert!(bin.is_file(), "{} missing after the build", bin.display());
    bin
}

/// One node's process; SIGKILLed and reaped on drop.
pub struct Proc {
    pub child: Child,
    pub stopped: bool,
}

impl Proc {
    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(st.success(), "kill -{sig} {}", self.child.id());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One cluster of `replicated_kv` processes. Local clusters: kvAddress
/// `base+sid`, quorum `base+10+sid`, election `base+20+sid`, client (4lw)
/// `base+30+sid` on 127.0.0.1 (sids 1..=9). Namespaced clusters (a
/// partition lab) give their own addresses and run each process through
/// `ip netns exec`.
pub struct Cluster {
    pub n: i64,
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub procs: Vec<Option<Proc>>,
    kv: Vec<SocketAddr>,
    clients: Vec<SocketAddr>,
    cfgs: Vec<PathBuf>,
    netns: Option<Vec<String>>,
    /// Extra environment for every process launched from now on.
    pub env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

/// Where a cluster's nodes live: one entry per sid (index sid - 1).
pub struct Layout {
    /// Configs and logs.
    pub dir: PathBuf,
    /// kvAddress of each sid, as the test reaches it.
    pub kv: Vec<SocketAddr>,
    /// Client (4lw) address of each sid.
    pub clients: Vec<SocketAddr>,
    /// zoo.cfg of each sid.
    pub cfgs: Vec<PathBuf>,
    /// Network namespace of each sid (`ip netns exec`), if any.
    pub netns: Option<Vec<String>>,
}

impl Cluster {
    /// Writes local configs (tickTime 100 ms, initLimit 20, syncLimit 10)
    /// and starts every node.
    pub fn start(n: i64, base: u16, bin: &Path) -> Cluster {
        Cluster::start_with_env(n, base, bin, Vec::new())
    }

    /// [`Cluster::start`] with extra environment for the processes.
    pub fn start_with_env(n: i64, base: u16, bin: &Path, env: Vec<(String, String)>) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let ip = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let kv: Vec<SocketAddr> = (1..=n).map(|s| ip(base + s as u16)).collect();
        let clients: Vec<SocketAddr> = (1..=n).map(|s| ip(base + 30 + s as u16)).collect();
        let servers: Vec<String> = (1..=n)
            .map(|s| {
                let b = base + s as u16;
                format!("server.{s}=127.0.0.1:{}:{}", b + 10, b + 20)
            })
            .collect();
        let cfgs = write_cfgs(&dir, &servers, &kv, &clients);
        let layout = Layout {
            dir,
            kv,
            clients,
            cfgs,
            netns: None,
        };
        let mut c = Cluster::with(bin, layout, env);
        c._tmp = Some(tmp);
        c
    }

    /// A cluster over given configs and addresses; starts every node.
    pub fn with(bin: &Path, l: Layout, env: Vec<(String, String)>) -> Cluster {
        let n = l.cfgs.len() as i64;
        let mut c = Cluster {
            n,
            dir: l.dir,
            bin: bin.to_path_buf(),
            procs: (0..n).map(|_| None).collect(),
            kv: l.kv,
            clients: l.clients,
            cfgs: l.cfgs,
            netns: l.netns,
            env,
            _tmp: None,
        };
        for sid in 1..=n {
            c.launch(sid);
        }
        c
    }

    pub fn kv(&self, sid: i64) -> SocketAddr {
        self.kv[sid as usize - 1]
    }

    pub fn client(&self, sid: i64) -> SocketAddr {
        self.clients[sid as usize - 1]
    }

    pub fn kv_addrs(&self) -> Vec<SocketAddr> {
        self.kv.clone()
    }

    /// Starts sid's process (its log appends to `node<sid>.log`).
    pub fn launch(&mut self, sid: i64) {
        assert!(self.procs[sid as usize - 1].is_none(), "sid {sid} runs");
        let log = self.dir.join(format!("node{sid}.log"));
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut cmd = match &self.netns {
            // `ip` execs the binary in place: the child's pid is the node's.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns[sid as usize - 1]])
                    .arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        let child = cmd
            .arg(&self.cfgs[sid as usize - 1])
            .arg("--myid")
            .arg(sid.to_string())
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn replicated_kv");
        self.procs[sid as usize - 1] = Some(Proc {
            child,
            stopped: false,
        });
    }

    /// SIGKILL (continues a stopped process first, so it dies at once).
    pub fn kill(&mut self, sid: i64) {
        if let Some(p) = self.procs[sid as usize - 1].take() {
            drop(p);
        }
    }

    /// SIGSTOP.
    pub fn pause(&mut self, sid: i64) {
        let p = self.procs[sid as usize - 1].as_mut().expect("running");
        p.signal("STOP");
        p.stopped = true;
    }

    /// SIGCONT.
    pub fn resume(&mut self, sid: i64) {
        let p = self.procs[sid as usize - 1].as_mut().expect("running");
        p.signal("CONT");
        p.stopped = false;
    }

    pub fn running(&self, sid: i64) -> bool {
        self.procs[sid as usize - 1]
            .as_ref()
            .is_some_and(|p| !p.stopped)
    }

    /// `zk_server_state` of a running, unpaused node.
    pub fn state(&self, sid: i64) -> Option<String> {
        if !self.running(sid) {
            return None;
        }
        mntr(self.client(sid)).and_then(|m| m.get("zk_server_state").cloned())
    }

    /// The only running node that reports `leader` while every other
    /// running node reports `follower` (of it: one leader).
    pub fn settled_leader(&self) -> Option<i64> {
        let states: Vec<(i64, String)> = (1..=self.n)
            .filter(|&s| self.running(s))
            .map(|s| Some((s, self.state(s)?)))
            .collect::<Option<_>>()?;
        let leaders: Vec<i64> = states
            .iter()
            .filter(|(_, st)| st == "leader")
            .map(|(s, _)| *s)
            .collect();
        (leaders.len() == 1
            && states
                .iter()
                .all(|(_, st)| st == "leader" || st == "follower"))
        .then(|| leaders[0])
    }

    /// A running node that reports `leader`.
    pub fn any_leader(&self) -> Option<i64> {
        (1..=self.n).find(|&s| self.state(s).as_deref() == Some("leader"))
    }

    /// The tail of every node's log (for a failure message).
    pub fn logs_tail(&self) -> String {
        let mut out = String::new();
        for sid in 1..=self.n {
            let p = self.dir.join(format!("node{sid}.log"));
            let t = std::fs::read_to_string(&p).unwrap_or_default();
            let lines: Vec<&str> = t.lines().collect();
            out.push_str(&format!("--- sid {sid}\n"));
            for l in &lines[lines.len().saturating_sub(25)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

/// Writes `kv<sid>.cfg` under `dir` for every sid (dataDir `dir/node<sid>`,
/// tickTime 100 ms, initLimit 20, syncLimit 10, the client port for 4lw).
pub fn write_cfgs(
    dir: &Path,
    servers: &[String],
    kv: &[SocketAddr],
    clients: &[SocketAddr],
) -> Vec<PathBuf> {
    let mut common = String::new();
    for (i, line) in servers.iter().enumerate() {
        common.push_str(&format!("{line}\nkvAddress.{}={}\n", i + 1, kv[i]));
    }
    (1..=servers.len())
        .map(|sid| {
            let c = clients[sid - 1];
            let text = format!(
                "tickTime=100\ninitLimit=20\nsyncLimit=10\ndataDir={}\nclientPort={}\nclientPortAddress={}\n4lw.commands.whitelist=*\n{common}",
                dir.join(format!("node{sid}")).display(),
                c.port(),
                c.ip()
            );
            let p = dir.join(format!("kv{sid}.cfg"));
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect()
}

/// `mntr` as a map; `None` if nobody answers.
pub fn mntr(addr: SocketAddr) -> Option<BTreeMap<String, String>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(800))).ok()?;
    s.write_all(b"mntr").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(
        out.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
    )
}

/// A line-protocol connection with a read timeout.
pub struct Conn {
    out: TcpStream,
    input: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr, timeout: Duration) -> Option<Conn> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(timeout)).ok()?;
        s.set_nodelay(true).ok()?;
        Some(Conn {
            out: s.try_clone().ok()?,
            input: BufReader::new(s),
        })
    }

    /// One request, one answer; `None` on a timeout or a closed connection.
    pub fn ask(&mut self, line: &str) -> Option<String> {
        self.out.write_all(format!("{line}\n").as_bytes()).ok()?;
        let mut a = String::new();
        match self.input.read_line(&mut a) {
            Ok(n) if n > 0 && a.ends_with('\n') => Some(a.trim_end().to_string()),
            _ => None,
        }
    }

    /// Many requests written at once, then every answer.
    pub fn ask_all(&mut self, lines: &[String]) -> Option<Vec<String>> {
        let mut text = String::new();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        self.out.write_all(text.as_bytes()).ok()?;
        let mut out = Vec::with_capacity(lines.len());
        for _ in lines {
            let mut a = String::new();
            match self.input.read_line(&mut a) {
                Ok(n) if n > 0 => out.push(a.trim_end().to_string()),
                _ => return None,
            }
        }
        Some(out)
    }
}

/// What the workload saw.
#[derive(Default)]
pub struct Record {
    /// Acknowledged writes: `k<i> v<i>`, with the instant the client got OK.
    pub acked: Mutex<Vec<(u64, Instant)>>,
    /// SETs whose answer was `ERR outcome unknown` or lost with the
    /// connection.
    pub unknown: AtomicU64,
    /// GETs answered with a value.
    pub reads: AtomicU64,
    /// GETs answered REDIRECT or ERR, or not at all (timeout, closed).
    pub refused: AtomicU64,
    /// GETs that returned less than a write acknowledged before they began.
    pub stale: Mutex<Vec<String>>,
}

impl Record {
    pub fn acked_count(&self) -> usize {
        self.acked.lock().len()
    }

    /// Acknowledged after `t`.
    pub fn acked_since(&self, t: Instant) -> usize {
        self.acked.lock().iter().filter(|a| a.1 > t).count()
    }
}

/// A writer (one connection that follows REDIRECTs, `SET k<i> v<i>` for
/// ever larger i) and one reader per node (`GET` of the newest key
/// acknowledged before the GET is sent: anything but its value, REDIRECT or
/// ERR is a stale read).
pub struct Workload {
    pub rec: Arc<Record>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workload {
    pub fn start(addrs: Vec<SocketAddr>) -> Workload {
        let rec = Arc::new(Record::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        {
            let (rec, stop, addrs) = (rec.clone(), stop.clone(), addrs.clone());
            threads.push(std::thread::spawn(move || writer(&addrs, &rec, &stop)));
        }
        for (n, &a) in addrs.iter().enumerate() {
            let (rec, stop) = (rec.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                reader(n as i64 + 1, a, &rec, &stop)
            }));
        }
        Workload { rec, stop, threads }
    }

    pub fn stop(self) -> Arc<Record> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("workload thread");
        }
        self.rec
    }
}

fn writer(addrs: &[SocketAddr], rec: &Record, stop: &AtomicBool) {
    let mut i = 0u64;
    let mut target = 0usize;
    let mut conn: Option<Conn> = None;
    while !stop.load(Ordering::SeqCst) {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::open(addrs[target], Duration::from_secs(5)) {
                Some(c) => conn.insert(c),
                None => {
                    target = (target + 1) % addrs.len();
                    // Back-off between connection attempts while nodes are
                    // down (not a wait for a condition).
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            },
        };
        match c.ask(&format!("SET k{i} v{i}")) {
            Some(a) if a.starts_with("OK 0x") => {
                rec.acked.lock().push((i, Instant::now()));
                i += 1;
            }
            Some(a) if a.starts_with("REDIRECT ") => {
                let to: SocketAddr = a["REDIRECT ".len()..].parse().expect("REDIRECT address");
                target = addrs.iter().position(|&x| x == to).expect("known node");
                conn = None;
            }
            Some(a) if a.starts_with("ERR outcome unknown") => {
                // Maybe applied: never reuse the key.
                rec.unknown.fetch_add(1, Ordering::SeqCst);
                i += 1;
                target = (target + 1) % addrs.len();
                conn = None;
            }
            Some(a) => {
                assert!(a.starts_with("ERR "), "unexpected SET answer {a:?}");
                target = (target + 1) % addrs.len();
                conn = None;
                std::thread::sleep(Duration::from_millis(20));
            }
            None => {
                rec.unknown.fetch_add(1, Ordering::SeqCst);
                i += 1;
                target = (target + 1) % addrs.len();
                conn = None;
            }
        }
    }
}

fn reader(sid: i64, addr: SocketAddr, rec: &Record, stop: &AtomicBool) {
    let mut conn: Option<Conn> = None;
    while !stop.load(Ordering::SeqCst) {
        let Some(&(j, _)) = rec.acked.lock().last() else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::open(addr, Duration::from_secs(3)) {
                Some(c) => conn.insert(c),
                None => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            },
        };
        // k<j> was acknowledged before this GET is sent.
        match c.ask(&format!("GET k{j}")) {
            Some(a) if a == format!("VALUE v{j}") => {
                rec.reads.fetch_add(1, Ordering::SeqCst);
                // Pacing: at most ~1,000 reads/s per node, so readers that
                // are answered at once (an injected GET without barrier)
                // do not starve the nodes of CPU.
                std::thread::sleep(Duration::from_millis(1));
            }
            Some(a) if a.starts_with("REDIRECT ") || a.starts_with("ERR ") => {
                rec.refused.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
            Some(a) => {
                rec.reads.fetch_add(1, Ordering::SeqCst);
                rec.stale
                    .lock()
                    .push(format!("GET k{j} on sid {sid} answered {a:?}"));
                std::thread::sleep(Duration::from_millis(1));
            }
            None => {
                rec.refused.fetch_add(1, Ordering::SeqCst);
                conn = None;
            }
        }
    }
}

/// Every acknowledged key, read with `LOCAL` on every node and `GET` on the
/// leader; returns what is missing or wrong.
pub fn lost_writes(cluster: &Cluster, leader: i64, acked: &[u64]) -> Vec<String> {
    let mut lost = Vec::new();
    let check = |sid: i64, verb: &str, lost: &mut Vec<String>| {
        let lines: Vec<String> = acked.iter().map(|i| format!("{verb} k{i}")).collect();
        let mut c = Conn::open(cluster.kv(sid), Duration::from_secs(30)).expect("connect");
        for (chunk, keys) in lines.chunks(500).zip(acked.chunks(500)) {
            let answers = c.ask_all(chunk).expect("answers");
            for (a, i) in answers.iter().zip(keys) {
                if *a != format!("VALUE v{i}") {
                    lost.push(format!("{verb} k{i} on sid {sid}: {a}"));
                }
            }
        }
    };
    for sid in 1..=cluster.n {
        check(sid, "LOCAL", &mut lost);
    }
    check(leader, "GET", &mut lost);
    lost
}
