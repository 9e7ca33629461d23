//! Real network partitions between `zkfle run` processes (PROTOCOL.md §6.6):
//! each peer runs in its own Linux network namespace, wired to a bridge in
//! the root namespace by a veth pair; a partition takes the host side of a
//! peer's veth down, which cuts it off both ways without a FIN, the way a
//! pulled cable or a dead switch port does. Asserts the roles every peer
//! reports and the epochs on disk in 3- and 5-peer ensembles.
//!
//! Each peer also has a second, point-to-point veth to the root namespace
//! that carries only its client port (four-letter words): partitions never
//! touch it, so the test can still ask an isolated peer what it thinks it
//! is. The root namespace does not forward (no route, no NAT, nothing
//! bridged to a real interface), so this link joins no two peers.
//!
//! Needs root (`ip netns add`). Without it the tests skip with a message,
//! or fail when `CI` is set. Addresses: two unused /24s inside 10.213.0.0/16;
//! ports 2181/2888/3888 inside the namespaces (nothing is bound on the host).

#[path = "common/peer.rs"]
mod peer;

use peer::{mntr, poll, zkfle_bin, Proc};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const TICK_MS: u64 = 200;
const INIT: u64 = 10;
const SYNC: u64 = 5;
/// Generous bound for anything that should take a few ticks.
const SETTLE: Duration = Duration::from_secs(20);
const CLIENT_PORT: u16 = 2181;
const QUORUM_PORT: u16 = 2888;
const ELECTION_PORT: u16 = 3888;

/// The tests in this file share the CPU-sensitive tick timing: run them one
/// at a time (2 cores, other suites alongside).
static SERIAL: Mutex<()> = Mutex::new(());
static LAB_SEQ: AtomicUsize = AtomicUsize::new(0);

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `ip <args>`; `Err` with its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip_in(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["netns", "exec", ns, "ip"];
    all.extend_from_slice(args);
    ip(&all)
}

/// Third octets of 10.213.x.y addresses already on this host (another
/// test run's lab): we pick others, so no two bridges claim one subnet.
fn used_octets() -> Vec<u8> {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    out.split_whitespace()
        .filter_map(|w| w.strip_prefix("10.213."))
        .filter_map(|rest| rest.split('.').next()?.parse().ok())
        .collect()
}

/// One ensemble's namespaces, links and bridge; all removed on drop (also
/// when a test panics). Declare it before the processes, so they are killed
/// first.
struct Lab {
    n: i64,
    bridge: String,
    /// Set once the bridge exists: drop removes only what this lab made.
    bridge_made: bool,
    namespaces: Vec<String>,
    /// Host-side veth names: data (on the bridge) and management, per sid.
    data_links: Vec<String>,
    mgmt_links: Vec<String>,
    data_net: u8,
    mgmt_net: u8,
    dir: tempfile::TempDir,
}

/// Why a lab could not be built.
enum LabError {
    /// `ip netns add` refused: not root, or no namespace support.
    NotPermitted(String),
    /// Anything later: a real failure.
    Setup(String),
}

impl Lab {
    fn new(n: i64) -> Result<Lab, LabError> {
        let pid = std::process::id();
        let seq = LAB_SEQ.fetch_add(1, Ordering::SeqCst);
        let tag = format!("zkp{}{}", pid % 1000, seq);
        let used = used_octets();
        let start = 20 + (pid as usize * 7 + seq * 2) % 200;
        let mut free = (0..230)
            .map(|i| (20 + (start - 20 + i) % 230) as u8)
            .filter(|o| !used.contains(o));
        let (data_net, mgmt_net) = match (free.next(), free.next()) {
            (Some(d), Some(m)) => (d, m),
            _ => return Err(LabError::Setup("no free 10.213.x.0/24".into())),
        };
        let dir = tempfile::tempdir().map_err(|e| LabError::Setup(e.to_string()))?;
        let mut lab = Lab {
            n,
            bridge: tag.clone(),
            bridge_made: false,
            namespaces: Vec::new(),
            data_links: Vec::new(),
            mgmt_links: Vec::new(),
            data_net,
            mgmt_net,
            dir,
        };
        let first_ns = format!("zkpart-{pid}-{seq}-1");
        ip(&["netns", "add", &first_ns]).map_err(LabError::NotPermitted)?;
        lab.namespaces.push(first_ns);
        lab.build(&tag, pid, seq).map_err(LabError::Setup)?;
        Ok(lab)
    }

    fn build(&mut self, tag: &str, pid: u32, seq: usize) -> Result<(), String> {
        let bridge_ip = format!("10.213.{}.1/24", self.data_net);
        ip(&["link", "add", &self.bridge, "type", "bridge"])?;
        self.bridge_made = true;
        ip(&["addr", "add", &bridge_ip, "dev", &self.bridge])?;
        ip(&["link", "set", &self.bridge, "up"])?;
        for sid in 1..=self.n {
            let ns = format!("zkpart-{pid}-{seq}-{sid}");
            if sid > 1 {
                ip(&["netns", "add", &ns])?;
                self.namespaces.push(ns.clone());
            }
            ip_in(&ns, &["link", "set", "lo", "up"])?;
            let data = format!("{tag}d{sid}");
            let mgmt = format!("{tag}m{sid}");
            ip(&[
                "link", "add", &data, "type", "veth", "peer", "name", "data0", "netns", &ns,
            ])?;
            self.data_links.push(data.clone());
            ip(&[
                "link", "add", &mgmt, "type", "veth", "peer", "name", "mgmt0", "netns", &ns,
            ])?;
            self.mgmt_links.push(mgmt.clone());
            ip(&["link", "set", &data, "master", &self.bridge])?;
            ip(&["link", "set", &data, "up"])?;
            let (host_mgmt, _) = self.mgmt_pair(sid);
            ip(&["addr", "add", &format!("{host_mgmt}/30"), "dev", &mgmt])?;
            ip(&["link", "set", &mgmt, "up"])?;
            ip_in(
                &ns,
                &[
                    "addr",
                    "add",
                    &format!("{}/24", self.data_ip(sid)),
                    "dev",
                    "data0",
                ],
            )?;
            ip_in(
                &ns,
                &[
                    "addr",
                    "add",
                    &format!("{}/30", self.mgmt_pair(sid).1),
                    "dev",
                    "mgmt0",
                ],
            )?;
            ip_in(&ns, &["link", "set", "data0", "up"])?;
            ip_in(&ns, &["link", "set", "mgmt0", "up"])?;
        }
        Ok(())
    }

    fn data_ip(&self, sid: i64) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.data_net, 10 + sid as u8)
    }

    /// (host side, namespace side) of sid's management /30.
    fn mgmt_pair(&self, sid: i64) -> (Ipv4Addr, Ipv4Addr) {
        let b = 4 * sid as u8;
        (
            Ipv4Addr::new(10, 213, self.mgmt_net, b + 1),
            Ipv4Addr::new(10, 213, self.mgmt_net, b + 2),
        )
    }

    fn client_addr(&self, sid: i64) -> SocketAddr {
        SocketAddr::from((self.mgmt_pair(sid).1, CLIENT_PORT))
    }

    fn data_dir(&self, sid: i64) -> PathBuf {
        self.dir.path().join(format!("node{sid}"))
    }

    fn write_cfg(&self, sid: i64) -> PathBuf {
        let mut servers = String::new();
        for s in 1..=self.n {
            servers.push_str(&format!(
                "server.{s}={}:{QUORUM_PORT}:{ELECTION_PORT}\n",
                self.data_ip(s)
            ));
        }
        let data = self.data_dir(sid);
        std::fs::create_dir_all(&data).expect("data dir");
        std::fs::write(data.join("myid"), format!("{sid}\n")).expect("myid");
        let path = self.dir.path().join(format!("zoo{sid}.cfg"));
        std::fs::write(
            &path,
            format!(
                "tickTime={TICK_MS}\ninitLimit={INIT}\nsyncLimit={SYNC}\ndataDir={}\nclientPort={CLIENT_PORT}\nclientPortAddress={}\n4lw.commands.whitelist=*\n{servers}",
                data.display(),
                self.mgmt_pair(sid).1
            ),
        )
        .expect("zoo.cfg");
        path
    }

    /// `ip netns exec <ns> zkfle run <cfg>`: `ip` execs zkfle in place, so
    /// the child's pid is zkfle's and `Proc` kills the right process.
    fn start(&self, sid: i64) -> Proc {
        let cfg = self.write_cfg(sid);
        let log = cfg.with_extension("log");
        let err = std::fs::File::create(&log).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.namespaces[sid as usize - 1]])
            .arg(zkfle_bin())
            .arg("run")
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn ip netns exec zkfle");
        Proc {
            name: format!("sid {sid}"),
            child: Some(child),
            log,
        }
    }

    /// Cuts sid off from every other peer, both ways.
    fn isolate(&self, sid: i64) {
        ip(&["link", "set", &self.data_links[sid as usize - 1], "down"]).expect("partition");
    }

    fn heal(&self, sid: i64) {
        ip(&["link", "set", &self.data_links[sid as usize - 1], "up"]).expect("heal");
    }

    fn mntr(&self, sid: i64) -> Option<BTreeMap<String, String>> {
        mntr(self.client_addr(sid))
    }

    /// (acceptedEpoch, currentEpoch) as on disk; -1 for a missing file.
    fn epochs(&self, sid: i64) -> (i64, i64) {
        let v = self.data_dir(sid).join("version-2");
        let read = |name: &str| {
            std::fs::read_to_string(v.join(name))
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(-1)
        };
        (read("acceptedEpoch"), read("currentEpoch"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace destroys the veth ends inside it, and with
        // them the pairs; the explicit link deletes cover a half-built lab.
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        for l in self.data_links.iter().chain(&self.mgmt_links) {
            let _ = ip(&["link", "del", l]);
        }
        if self.bridge_made {
            let _ = ip(&["link", "del", &self.bridge]);
        }
    }
}

/// A lab, or `None` (test skipped) where namespaces are not permitted and
/// `CI` is unset.
fn lab(n: i64) -> Option<Lab> {
    match Lab::new(n) {
        Ok(l) => Some(l),
        Err(LabError::NotPermitted(e)) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: network namespaces not available (needs root): {e}");
            None
        }
        Err(LabError::NotPermitted(e)) => panic!("CI: network namespaces not available: {e}"),
        Err(LabError::Setup(e)) => panic!("building the namespace lab: {e}"),
    }
}

fn field(m: &BTreeMap<String, String>, k: &str) -> String {
    m.get(k).cloned().unwrap_or_default()
}

fn num(m: &BTreeMap<String, String>, k: &str) -> i64 {
    m.get(k).and_then(|v| v.parse().ok()).unwrap_or(-1)
}

/// What the watcher saw: violations, epoch -> the sid that led it, sweeps.
type Seen = (Vec<String>, BTreeMap<i64, i64>, u64);

/// Every `mntr` of every peer, all along the run: no epoch is ever led by
/// two sids (so no two peers report `leader` in one epoch, at one time or
/// another) and no peer ever has acceptedEpoch < currentEpoch, in `mntr` or
/// on disk.
struct Watch {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Seen>>,
}

impl Watch {
    fn start(lab: &Lab) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let addrs: Vec<(i64, SocketAddr, PathBuf)> = (1..=lab.n)
            .map(|s| (s, lab.client_addr(s), lab.data_dir(s).join("version-2")))
            .collect();
        let thread = std::thread::spawn(move || {
            let mut bad = Vec::new();
            let mut led_by: BTreeMap<i64, i64> = BTreeMap::new();
            let mut sweeps = 0u64;
            while !stop2.load(Ordering::SeqCst) {
                let mut leaders_now: Vec<(i64, i64)> = Vec::new();
                for (sid, addr, vdir) in &addrs {
                    let Some(m) = mntr(*addr) else { continue };
                    let cur = num(&m, "zk_current_epoch");
                    let acc = num(&m, "zk_accepted_epoch");
                    if acc < cur {
                        bad.push(format!("sid {sid} mntr: accepted {acc} < current {cur}"));
                    }
                    if field(&m, "zk_server_state") == "leader" {
                        leaders_now.push((*sid, cur));
                        match led_by.get(&cur) {
                            Some(&other) if other != *sid => {
                                bad.push(format!("epoch {cur} led by sid {other} and by sid {sid}"))
                            }
                            _ => {
                                led_by.insert(cur, *sid);
                            }
                        }
                    }
                    let rd = |n: &str| {
                        std::fs::read_to_string(vdir.join(n))
                            .ok()
                            .and_then(|t| t.trim().parse::<i64>().ok())
                    };
                    if let (Some(a), Some(c)) = (rd("acceptedEpoch"), rd("currentEpoch")) {
                        if a < c {
                            bad.push(format!("sid {sid} on disk: accepted {a} < current {c}"));
                        }
                    }
                }
                for (i, (s1, e1)) in leaders_now.iter().enumerate() {
                    for (s2, e2) in &leaders_now[i + 1..] {
                        if e1 == e2 {
                            bad.push(format!("sids {s1} and {s2} both leader of epoch {e1}"));
                        }
                    }
                }
                sweeps += 1;
                std::thread::sleep(Duration::from_millis(40));
            }
            (bad, led_by, sweeps)
        });
        Watch {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the watcher and fails on anything it saw.
    fn finish(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let (bad, led_by, sweeps) = self
            .thread
            .take()
            .expect("watcher running")
            .join()
            .expect("watcher thread");
        println!("watcher: {sweeps} sweeps, epoch -> leader {led_by:?}");
        assert!(bad.is_empty(), "invariant violations: {bad:#?}");
        assert!(sweeps > 10, "the watcher hardly ran ({sweeps} sweeps)");
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Waits until `sids` all serve under one leader (itself among `sids`),
/// that leader not in `not`; returns (leader, its epoch, per-sid mntr).
fn await_leader(
    lab: &Lab,
    sids: &[i64],
    not: &[i64],
) -> (i64, i64, BTreeMap<i64, BTreeMap<String, String>>) {
    poll(
        SETTLE,
        &format!("sids {sids:?} serving under one leader not in {not:?}"),
        || {
            let mut all = BTreeMap::new();
            for &sid in sids {
                let m = lab.mntr(sid).ok_or(format!("sid {sid}: no mntr"))?;
                all.insert(sid, m);
            }
            let leader = num(&all[&sids[0]], "zk_leader_sid");
            let ok = leader > 0
                && !not.contains(&leader)
                && all.iter().all(|(&sid, m)| {
                    let want = if sid == leader { "leader" } else { "follower" };
                    field(m, "zk_server_state") == want && num(m, "zk_leader_sid") == leader
                });
            if !ok {
                return Err(format!(
                    "{:?}",
                    all.iter()
                        .map(|(s, m)| (*s, field(m, "zk_peer_state"), num(m, "zk_leader_sid")))
                        .collect::<Vec<_>>()
                ));
            }
            let epoch = num(&all[&leader], "zk_current_epoch");
            Ok((leader, epoch, all))
        },
    )
}

fn await_looking(lab: &Lab, sid: i64) {
    poll(SETTLE, &format!("sid {sid} to report looking"), || {
        let m = lab.mntr(sid).ok_or("no mntr")?;
        match field(&m, "zk_server_state").as_str() {
            "looking" => Ok(()),
            s => Err(format!("{s} ({})", field(&m, "zk_peer_state"))),
        }
    })
}

fn assert_epochs(lab: &Lab, sids: &[i64], epoch: i64, when: &str) {
    for &sid in sids {
        assert_eq!(
            lab.epochs(sid),
            (epoch, epoch),
            "sid {sid} (acceptedEpoch, currentEpoch) on disk {when}"
        );
    }
}

/// `Proc` kills by pid: make sure that pid is zkfle itself, not an `ip`
/// that forked it (which would leave zkfle running after the test).
fn assert_pids_are_zkfle(procs: &[Proc]) {
    let bin = std::fs::canonicalize(zkfle_bin()).expect("zkfle binary");
    for p in procs {
        let pid = p.pid().expect("running");
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("/proc/<pid>/exe");
        assert_eq!(exe, bin, "{}: pid {pid} is not zkfle", p.name);
    }
}

fn stop_all(procs: &mut [Proc]) {
    for p in procs.iter_mut() {
        let st = p.terminate(Duration::from_secs(10));
        assert!(
            st.is_some_and(|s| s.success()),
            "{} did not exit cleanly: {st:?}\n{}",
            p.name,
            p.log_text()
        );
    }
}

#[test]
fn three_peers_isolated_leader_steps_down_and_rejoins_as_follower() {
    let _serial = serial();
    let Some(lab) = lab(3) else { return };
    let mut procs: Vec<Proc> = (1..=3).map(|sid| lab.start(sid)).collect();
    let (old, e1, _) = await_leader(&lab, &[1, 2, 3], &[]);
    assert_pids_are_zkfle(&procs);
    let followers: Vec<i64> = (1..=3).filter(|&s| s != old).collect();
    assert_epochs(&lab, &[1, 2, 3], e1, "after the first election");
    let watch = Watch::start(&lab);

    let cut = Instant::now();
    lab.isolate(old);
    await_looking(&lab, old);
    let step_down = cut.elapsed();
    let (new, e2, _) = await_leader(&lab, &followers, &[old]);
    let failover = cut.elapsed();
    println!(
        "3 peers, leader {old} isolated: it reported looking after {step_down:?} \
         (syncLimit+1 ticks = {} ms); sids {followers:?} serving under leader {new} \
         (epoch {e2}) after {failover:?}",
        (SYNC + 1) * TICK_MS
    );
    assert!(e2 > e1, "the new leader's epoch {e2} above the old {e1}");
    assert_epochs(&lab, &followers, e2, "once the majority side serves");
    // Alone, the old leader can win no election: its files stay as they were.
    assert_eq!(
        lab.mntr(old).map(|m| field(&m, "zk_server_state")),
        Some("looking".to_string()),
        "isolated sid {old} while the majority serves"
    );
    assert_epochs(&lab, &[old], e1, "on the isolated old leader");

    let healed = Instant::now();
    lab.heal(old);
    let (leader, e3, all) = await_leader(&lab, &[1, 2, 3], &[]);
    println!(
        "healed: former leader {old} following {leader} after {:?}",
        healed.elapsed()
    );
    assert_eq!(leader, new, "the majority's leader stays");
    assert_eq!(e3, e2, "rejoining a serving leader starts no new epoch");
    assert_eq!(field(&all[&old], "zk_server_state"), "follower");
    assert_eq!(num(&all[&old], "zk_current_epoch"), e2);
    assert_epochs(&lab, &[1, 2, 3], e2, "after the heal");

    watch.finish();
    stop_all(&mut procs);
}

#[test]
fn five_peers_keep_serving_without_one_follower_and_step_down_without_quorum() {
    let _serial = serial();
    let Some(lab) = lab(5) else { return };
    let mut procs: Vec<Proc> = (1..=5).map(|sid| lab.start(sid)).collect();
    let (leader, e1, before) = await_leader(&lab, &[1, 2, 3, 4, 5], &[]);
    assert_pids_are_zkfle(&procs);
    assert_epochs(&lab, &[1, 2, 3, 4, 5], e1, "after the first election");
    let followers: Vec<i64> = (1..=5).filter(|&s| s != leader).collect();
    let watch = Watch::start(&lab);

    // One follower cut off: 4 of 5 remain, no election anywhere else.
    let lone = followers[0];
    let rest: Vec<i64> = (1..=5).filter(|&s| s != lone).collect();
    let cut = Instant::now();
    lab.isolate(lone);
    await_looking(&lab, lone);
    let lone_gone = cut.elapsed();
    // The leader drops a silent learner on the same syncLimit clock the
    // learner uses: watch the others over two more syncLimit spans.
    let window = Duration::from_millis(2 * SYNC * TICK_MS);
    let watch_until = Instant::now() + window;
    let mut checks = 0;
    while Instant::now() < watch_until {
        for &sid in &rest {
            let m = lab.mntr(sid).expect("mntr of a connected peer");
            let want = if sid == leader { "leader" } else { "follower" };
            assert_eq!(field(&m, "zk_server_state"), want, "sid {sid}: {m:?}");
            assert_eq!(num(&m, "zk_leader_sid"), leader, "sid {sid}");
            assert_eq!(
                field(&m, "zk_election_count"),
                field(&before[&sid], "zk_election_count"),
                "sid {sid} started an election with 4 of 5 still connected"
            );
        }
        checks += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(checks > 3, "too few checks in the window ({checks})");
    println!(
        "5 peers, follower {lone} isolated: it reported looking after {lone_gone:?}; \
         leader {leader} and the other three unchanged for {window:?} after that ({checks} checks)"
    );

    // Two more: the leader keeps itself and one follower, 2 of 5.
    let more = [followers[1], followers[2]];
    let cut = Instant::now();
    for &s in &more {
        lab.isolate(s);
    }
    await_looking(&lab, leader);
    let step_down = cut.elapsed();
    println!(
        "followers {more:?} isolated too: leader {leader} reported looking after {step_down:?} \
         (syncLimit+1 ticks = {} ms)",
        (SYNC + 1) * TICK_MS
    );
    for sid in 1..=5 {
        await_looking(&lab, sid);
    }
    // No side holds a quorum, so nobody decides and no epoch moves.
    assert_epochs(&lab, &[1, 2, 3, 4, 5], e1, "with the quorum lost");

    let healed = Instant::now();
    for &s in [lone].iter().chain(&more) {
        lab.heal(s);
    }
    let (leader2, e2, all) = await_leader(&lab, &[1, 2, 3, 4, 5], &[]);
    println!(
        "healed: all five serving under leader {leader2} (epoch {e2}) after {:?}",
        healed.elapsed()
    );
    assert!(e2 > e1, "epoch after the quorum loss {e2} above {e1}");
    for (sid, m) in &all {
        assert_eq!(num(m, "zk_current_epoch"), e2, "sid {sid} mntr");
        assert!(
            num(m, "zk_election_count") > num(&before[sid], "zk_election_count"),
            "sid {sid} went through an election"
        );
    }
    assert_epochs(&lab, &[1, 2, 3, 4, 5], e2, "after the heal");

    watch.finish();
    stop_all(&mut procs);
}
