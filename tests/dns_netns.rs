//! Host names in a real ensemble (issue 16 item 5): three `zkfle run`
//! processes, each in its own network namespace on a bridge, find each
//! other by `server.N` names that each namespace resolves through its own
//! `/etc/hosts` (`ip netns exec` bind-mounts `/etc/netns/<ns>/hosts` over
//! it; the tests edit that file in place, and glibc reads it again at every
//! lookup). A name can be missing from some namespaces for a while (a
//! Kubernetes pod whose DNS record is not there yet) and can move to
//! another address (a rescheduled pod).
//!
//! * a peer whose name resolves only after a delay: the ensemble is whole,
//!   one leader agreed by all, shortly after the name resolves (the time
//!   is printed; Java ZooKeeper 3.8 is measured in the same lab, with the
//!   same files, when it is installed);
//! * a peer that comes back on a new address is found there.
//!
//! Each peer also has a point-to-point management link to the root
//! namespace for its client port (four-letter words), so the test can ask
//! any peer for its mode. Needs root (`ip netns add`): skipped with a
//! message without it, a failure when `CI` is set. Addresses: two unused
//! /24s inside 10.214.0.0/16; ports 2181/2888/3888 inside the namespaces.

#[path = "common/java.rs"]
mod java;
#[path = "common/peer.rs"]
mod peer;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use peer::{mode, zkfle_bin, Proc};

const CLIENT_PORT: u16 = 2181;
const QUORUM_PORT: u16 = 2888;
const ELECTION_PORT: u16 = 3888;
/// ZooKeeper's usual timing, as in the Java comparison the issue asks for.
const TICK_MS: u64 = 1000;
const SETTLE: Duration = Duration::from_secs(40);

/// One lab at a time: the tests share CPU-sensitive timings.
static SERIAL: Mutex<()> = Mutex::new(());
static LAB_SEQ: AtomicUsize = AtomicUsize::new(0);

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

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
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    ip(&all)
}

/// Third octets of 10.214.x.y addresses already on this host.
fn used_octets() -> Vec<u8> {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    out.split_whitespace()
        .filter_map(|w| w.strip_prefix("10.214."))
        .filter_map(|rest| rest.split('.').next()?.parse().ok())
        .collect()
}

enum LabError {
    NotPermitted(String),
    Setup(String),
}

/// Three namespaces on a bridge, each with its own hosts file; everything
/// is removed on drop. Declare it before the processes, so they go first.
struct Lab {
    bridge: String,
    bridge_made: bool,
    /// Namespace names: `prefix` + sid.
    prefix: String,
    namespaces: Vec<String>,
    links: Vec<String>,
    data_net: u8,
    mgmt_net: u8,
    /// Last octet of each sid's data address (it changes when it moves).
    host_octet: Mutex<Vec<u8>>,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(n: i64) -> Result<Lab, LabError> {
        let pid = std::process::id();
        let seq = LAB_SEQ.fetch_add(1, Ordering::SeqCst);
        let tag = format!("zkd{}{}", pid % 1000, seq);
        let used = used_octets();
        let mut free = (20..250u8).filter(|o| !used.contains(o));
        let (Some(data_net), Some(mgmt_net)) = (free.next(), free.next()) else {
            return Err(LabError::Setup("no free 10.214.x.0/24".into()));
        };
        let dir = tempfile::tempdir().map_err(|e| LabError::Setup(e.to_string()))?;
        let prefix = format!("zkdns-{pid}-{seq}-");
        let mut lab = Lab {
            bridge: tag.clone(),
            bridge_made: false,
            prefix: prefix.clone(),
            namespaces: Vec::new(),
            links: Vec::new(),
            data_net,
            mgmt_net,
            host_octet: Mutex::new((1..=n).map(|s| 10 + s as u8).collect()),
            dir,
        };
        let first = format!("{prefix}1");
        ip(&["netns", "add", &first]).map_err(LabError::NotPermitted)?;
        lab.namespaces.push(first);
        lab.build(n, &tag).map_err(LabError::Setup)?;
        Ok(lab)
    }

    fn build(&mut self, n: i64, tag: &str) -> Result<(), String> {
        ip(&["link", "add", &self.bridge, "type", "bridge"])?;
        self.bridge_made = true;
        ip(&["link", "set", &self.bridge, "up"])?;
        for sid in 1..=n {
            let ns = format!("{}{sid}", self.prefix);
            if sid > 1 {
                ip(&["netns", "add", &ns])?;
                self.namespaces.push(ns.clone());
            }
            // Only the test's hosts files answer: a resolver that nothing
            // serves keeps DNS out of it.
            let etc = Path::new("/etc/netns").join(&ns);
            std::fs::create_dir_all(&etc).map_err(|e| format!("{}: {e}", etc.display()))?;
            std::fs::write(etc.join("hosts"), "127.0.0.1 localhost\n")
                .map_err(|e| e.to_string())?;
            std::fs::write(
                etc.join("resolv.conf"),
                "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
            )
            .map_err(|e| e.to_string())?;
            ip_in(&ns, &["link", "set", "lo", "up"])?;
            let (data, mgmt) = (format!("{tag}d{sid}"), format!("{tag}m{sid}"));
            for (host, inner) in [(&data, "data0"), (&mgmt, "mgmt0")] {
                ip(&[
                    "link", "add", host, "type", "veth", "peer", "name", inner, "netns", &ns,
                ])?;
                self.links.push(host.clone());
                ip_in(&ns, &["link", "set", inner, "up"])?;
            }
            ip(&["link", "set", &data, "master", &self.bridge])?;
            ip(&["link", "set", &data, "up"])?;
            let (host_mgmt, ns_mgmt) = self.mgmt_pair(sid);
            ip(&["addr", "add", &format!("{host_mgmt}/30"), "dev", &mgmt])?;
            ip(&["link", "set", &mgmt, "up"])?;
            ip_in(
                &ns,
                &["addr", "add", &format!("{ns_mgmt}/30"), "dev", "mgmt0"],
            )?;
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
        }
        Ok(())
    }

    fn ns(&self, sid: i64) -> &str {
        &self.namespaces[sid as usize - 1]
    }

    fn data_ip(&self, sid: i64) -> Ipv4Addr {
        let o = self.host_octet.lock().unwrap_or_else(|e| e.into_inner())[sid as usize - 1];
        Ipv4Addr::new(10, 214, self.data_net, o)
    }

    fn mgmt_pair(&self, sid: i64) -> (Ipv4Addr, Ipv4Addr) {
        let b = 4 * sid as u8;
        (
            Ipv4Addr::new(10, 214, self.mgmt_net, b + 1),
            Ipv4Addr::new(10, 214, self.mgmt_net, b + 2),
        )
    }

    fn client_addr(&self, sid: i64) -> SocketAddr {
        SocketAddr::from((self.mgmt_pair(sid).1, CLIENT_PORT))
    }

    fn name(sid: i64) -> String {
        format!("zk{sid}.dnslab.test")
    }

    /// Rewrites `in_sid`'s hosts file in place (same inode: it is
    /// bind-mounted) so that it lists the names of `sids`.
    fn set_hosts(&self, in_sid: i64, sids: &[i64]) {
        let mut text = String::from("127.0.0.1 localhost\n");
        for &s in sids {
            text.push_str(&format!("{} {}\n", self.data_ip(s), Lab::name(s)));
        }
        let path = Path::new("/etc/netns").join(self.ns(in_sid)).join("hosts");
        std::fs::write(&path, text).expect("hosts file");
    }

    /// Moves `sid` to data address `octet` (its process should be down).
    fn move_to(&self, sid: i64, octet: u8) {
        let old = format!("{}/24", self.data_ip(sid));
        self.host_octet.lock().unwrap_or_else(|e| e.into_inner())[sid as usize - 1] = octet;
        let new = format!("{}/24", self.data_ip(sid));
        ip_in(self.ns(sid), &["addr", "del", &old, "dev", "data0"]).expect("del address");
        ip_in(self.ns(sid), &["addr", "add", &new, "dev", "data0"]).expect("add address");
    }

    /// The zoo.cfg text for `sid` (shared by zkfle and Java).
    fn cfg_text(&self, sid: i64, data_dir: &Path) -> String {
        let mut t = format!(
            "tickTime={TICK_MS}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={CLIENT_PORT}\n\
             clientPortAddress={}\n4lw.commands.whitelist=*\nadmin.enableServer=false\n",
            data_dir.display(),
            self.mgmt_pair(sid).1
        );
        for s in 1..=3 {
            t.push_str(&format!(
                "server.{s}={}:{QUORUM_PORT}:{ELECTION_PORT}\n",
                Lab::name(s)
            ));
        }
        t
    }

    fn start_zkfle(&self, sid: i64) -> Proc {
        let data = self.dir.path().join(format!("node{sid}"));
        std::fs::create_dir_all(&data).expect("data dir");
        std::fs::write(data.join("myid"), format!("{sid}\n")).expect("myid");
        let cfg = self.dir.path().join(format!("zoo{sid}.cfg"));
        std::fs::write(&cfg, self.cfg_text(sid, &data)).expect("zoo.cfg");
        let log = cfg.with_extension("log");
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", self.ns(sid)])
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

    /// Java ZooKeeper 3.8 for every sid, through zk-ensemble.sh, each JVM
    /// in its namespace (the script's `JAVA` is a wrapper that enters it).
    fn start_java(&self) -> java::JavaEnsemble {
        let wrapper = self.dir.path().join("java-in-netns.sh");
        std::fs::write(
            &wrapper,
            "#!/bin/sh\n# the last argument is .../node<sid>/zoo.cfg\nfor a; do cfg=$a; done\n\
             d=${cfg%/zoo.cfg}; sid=${d##*/node}\n\
             exec ip netns exec \"$ZKDNS_NS_PREFIX$sid\" /usr/bin/java \"$@\"\n",
        )
        .expect("wrapper");
        Command::new("chmod")
            .args(["+x", &wrapper.display().to_string()])
            .status()
            .expect("chmod");
        let zk = java::JavaEnsemble::new(23100, 3)
            .with_env("JAVA", &wrapper.display().to_string())
            .with_env("ZKDNS_NS_PREFIX", &self.prefix)
            .with_env("ZK_HEAP_MB", "256");
        zk.cmd(&["init", "3"], &[]);
        for sid in 1..=3 {
            let cfg = zk.cfg(sid);
            let data = cfg.parent().expect("node dir").join("data");
            std::fs::write(&cfg, self.cfg_text(sid, &data)).expect("java zoo.cfg");
        }
        for sid in 1..=3 {
            zk.cmd(&["restart", &sid.to_string()], &[]);
        }
        zk
    }

    fn log(&self, sid: i64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("zoo{sid}.log"))).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(ns));
        }
        for l in &self.links {
            let _ = ip(&["link", "del", l]);
        }
        if self.bridge_made {
            let _ = ip(&["link", "del", &self.bridge]);
        }
    }
}

fn lab() -> Option<Lab> {
    match Lab::new(3) {
        Ok(l) => Some(l),
        Err(LabError::NotPermitted(e)) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: network namespaces not available (needs root): {e}");
            None
        }
        Err(LabError::NotPermitted(e)) => panic!("CI: network namespaces not available: {e}"),
        Err(LabError::Setup(e)) => panic!("building the namespace lab: {e}"),
    }
}

/// `Ok(leader)` when all three serve with exactly one leader.
fn agreed(lab: &Lab) -> Result<i64, String> {
    let modes: Vec<Option<String>> = (1..=3).map(|s| mode(lab.client_addr(s))).collect();
    let leaders: Vec<i64> = (1..=3)
        .filter(|&s| modes[s as usize - 1].as_deref() == Some("leader"))
        .collect();
    let followers = modes
        .iter()
        .filter(|m| m.as_deref() == Some("follower"))
        .count();
    match leaders.as_slice() {
        [l] if followers == 2 => Ok(*l),
        _ => Err(format!("{modes:?}")),
    }
}

/// Polls [`agreed`] until `limit`; the leader and when it was first seen.
fn await_agreement(lab: &Lab, limit: Duration) -> Result<(i64, Duration), String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        match agreed(lab) {
            Ok(l) => return Ok((l, start.elapsed())),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(last)
}

/// What one late-name trial saw.
#[derive(Debug)]
struct LateName {
    /// Agreement reached while the name was still missing (after start).
    before: Option<Duration>,
    /// Agreement after the name appeared (since it appeared), and leader.
    after: Result<(i64, Duration), String>,
}

/// Starts the ensemble (`start`) with `late`'s name missing from the other
/// peers' hosts files (its own lists everyone), waits `missing`, adds the
/// name, and times the agreement.
fn late_name_trial<T>(
    lab: &Lab,
    late: i64,
    missing: Duration,
    start: impl FnOnce(&Lab) -> T,
) -> (LateName, T) {
    for s in 1..=3 {
        let known: Vec<i64> = (1..=3).filter(|&o| s == late || o != late).collect();
        lab.set_hosts(s, &known);
    }
    let procs = start(lab);
    let began = Instant::now();
    let mut before = None;
    while began.elapsed() < missing {
        if before.is_none() && agreed(lab).is_ok() {
            before = Some(began.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for s in 1..=3 {
        lab.set_hosts(s, &[1, 2, 3]);
    }
    let after = await_agreement(lab, SETTLE);
    (LateName { before, after }, procs)
}

#[test]
fn a_peer_whose_name_resolves_late_is_taken_in_once_it_does() {
    let _serial = serial();
    let Some(lab) = lab() else { return };
    // Sid 1 is the smallest: the others must call it back by name, so the
    // ensemble cannot be whole before its name resolves.
    let (trial, mut procs) = late_name_trial(&lab, 1, Duration::from_secs(4), |lab| {
        (1..=3).map(|s| lab.start_zkfle(s)).collect::<Vec<_>>()
    });
    println!("zkfle, sid 1's name late by 4 s: {trial:?}");
    let logs = || {
        (1..=3)
            .map(|s| lab.log(s))
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    assert!(
        trial.before.is_none(),
        "whole before sid 1's name resolved?\n{}",
        logs()
    );
    let (leader, after) = trial.after.unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!(leader, 3, "equal zxids: the largest sid leads");
    // Far below the initLimit stall (10 s) the issue saw with Java; the
    // target (1 s) is printed above, not asserted on a shared machine.
    assert!(after < Duration::from_secs(5), "{after:?}");
    // Every process logged the unresolved name of sid 1, naming both.
    for s in [2, 3] {
        assert!(
            lab.log(s).contains(&format!(
                "sid 1: cannot resolve its election address {}:",
                Lab::name(1)
            )),
            "sid {s} did not name sid 1's name:\n{}",
            lab.log(s)
        );
    }
    if std::env::var_os("ZKDNS_SHOW_LOGS").is_some() {
        println!("{}", logs());
    }
    for p in &mut procs {
        assert!(p
            .terminate(Duration::from_secs(10))
            .is_some_and(|s| s.success()));
    }
}

#[test]
fn a_peer_that_moves_is_found_at_its_new_address() {
    let _serial = serial();
    let Some(lab) = lab() else { return };
    for s in 1..=3 {
        lab.set_hosts(s, &[1, 2, 3]);
    }
    let mut procs: Vec<Proc> = (1..=3).map(|s| lab.start_zkfle(s)).collect();
    let (leader, _) = await_agreement(&lab, SETTLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(leader, 3);
    // Sid 1 (which the others call back by name) goes down and comes back
    // on another address; every hosts file is updated, as DNS would be.
    procs[0].kill();
    lab.move_to(1, 41);
    for s in 1..=3 {
        lab.set_hosts(s, &[1, 2, 3]);
    }
    let moved = Instant::now();
    procs[0] = lab.start_zkfle(1);
    let (leader, took) = await_agreement(&lab, SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}\n----\n{}", lab.log(2), lab.log(3)));
    println!(
        "zkfle, sid 1 moved to {}: whole again {took:?} after restarting it ({:?} since the move)",
        lab.data_ip(1),
        moved.elapsed()
    );
    assert_eq!(leader, 3);
    for s in [2, 3] {
        assert!(
            lab.log(s)
                .contains(&format!("now resolves to {}:", lab.data_ip(1))),
            "sid {s} did not log sid 1's new address:\n{}",
            lab.log(s)
        );
    }
    for p in &mut procs {
        assert!(p
            .terminate(Duration::from_secs(10))
            .is_some_and(|s| s.success()));
    }
}

/// The same late-name trial with Java ZooKeeper 3.8 (tickTime 1000), for
/// the side-by-side numbers; it asserts only that Java ends up whole.
/// Run with `--ignored --nocapture` (needs root and Java ZooKeeper).
#[test]
#[ignore = "measurement: Java ZooKeeper 3.8 in the namespace lab"]
fn java_late_name_timings() {
    let _serial = serial();
    if !java::java_available() {
        return;
    }
    for late in [1, 3] {
        let Some(lab) = lab() else { return };
        let (trial, zk) =
            late_name_trial(&lab, late, Duration::from_secs(8), |lab| lab.start_java());
        println!("java, sid {late}'s name late by 8 s: {trial:?}");
        if trial.after.is_err() {
            for s in 1..=3 {
                println!("--- java sid {s}\n{}", tail(&zk.log(s), 40));
            }
        }
        assert!(trial.after.is_ok());
        drop(zk);
    }
}

/// The leader's own name late (`late` = 3: sid 3 dials everyone, so it
/// wins at once, and its followers must find its quorum port by a name
/// they cannot resolve yet): they look it up again at every connection
/// attempt and follow as soon as it resolves. Prints the timing.
#[test]
fn a_leader_whose_name_resolves_late_is_followed_once_it_does() {
    let _serial = serial();
    let Some(lab) = lab() else { return };
    let (trial, _procs) = late_name_trial(&lab, 3, Duration::from_secs(8), |lab| {
        (1..=3).map(|s| lab.start_zkfle(s)).collect::<Vec<_>>()
    });
    println!("zkfle, sid 3's name late by 8 s: {trial:?}");
    if trial.after.is_err() {
        for s in 1..=3 {
            println!("--- zkfle sid {s}\n{}", tail(&lab.log(s), 30));
        }
    }
    assert!(trial.after.is_ok());
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
