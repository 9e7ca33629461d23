//! A partition lab for `replicated_kv` processes, in the style of
//! `tests/zab_partition.rs`: each node in its own network namespace, its
//! quorum and election ports on a veth to a bridge in the root namespace
//! (the partition takes the host side of that veth down: no FIN, like a
//! pulled cable), its kvAddress and client port on a second point-to-point
//! veth to the root namespace that partitions never touch, so the test can
//! still ask an isolated node to read. The root namespace does not forward,
//! so the management links join no two nodes. Needs root (`ip netns add`).
//! Addresses: two unused /24s inside 10.215.0.0/16; ports 13901..=13904
//! inside the namespaces.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::kv_procs::{write_cfgs, Cluster, Layout};

const KV_PORT: u16 = 13901;
const CLIENT_PORT: u16 = 13902;
const QUORUM_PORT: u16 = 13903;
const ELECTION_PORT: u16 = 13904;

static LAB_SEQ: AtomicUsize = AtomicUsize::new(0);

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

/// Third octets of 10.215.x.y addresses already on this host.
fn used_octets() -> Vec<u8> {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    out.split_whitespace()
        .filter_map(|w| w.strip_prefix("10.215."))
        .filter_map(|rest| rest.split('.').next()?.parse().ok())
        .collect()
}

/// Why a lab could not be built.
pub enum LabError {
    /// `ip netns add` refused: not root, or no namespace support.
    NotPermitted(String),
    /// Anything later: a real failure.
    Setup(String),
}

/// The namespaces, links and bridge of one cluster; removed on drop.
/// Declare it before the [`Cluster`], so the processes go first.
pub struct Lab {
    n: i64,
    bridge: String,
    bridge_made: bool,
    pub namespaces: Vec<String>,
    data_links: Vec<String>,
    mgmt_links: Vec<String>,
    data_net: u8,
    mgmt_net: u8,
    pub dir: tempfile::TempDir,
}

impl Lab {
    pub fn new(n: i64) -> Result<Lab, LabError> {
        let pid = std::process::id();
        let seq = LAB_SEQ.fetch_add(1, Ordering::SeqCst);
        let tag = format!("zkk{}{}", pid % 1000, seq);
        let used = used_octets();
        let start = 20 + (pid as usize * 7 + seq * 2) % 200;
        let mut free = (0..230)
            .map(|i| (20 + (start - 20 + i) % 230) as u8)
            .filter(|o| !used.contains(o));
        let (Some(data_net), Some(mgmt_net)) = (free.next(), free.next()) else {
            return Err(LabError::Setup("no free 10.215.x.0/24".into()));
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
        let first_ns = format!("zkkv-{pid}-{seq}-1");
        ip(&["netns", "add", &first_ns]).map_err(LabError::NotPermitted)?;
        lab.namespaces.push(first_ns);
        lab.build(&tag, pid, seq).map_err(LabError::Setup)?;
        Ok(lab)
    }

    fn build(&mut self, tag: &str, pid: u32, seq: usize) -> Result<(), String> {
        let bridge_ip = format!("10.215.{}.1/24", self.data_net);
        ip(&["link", "add", &self.bridge, "type", "bridge"])?;
        self.bridge_made = true;
        ip(&["addr", "add", &bridge_ip, "dev", &self.bridge])?;
        ip(&["link", "set", &self.bridge, "up"])?;
        for sid in 1..=self.n {
            let ns = format!("zkkv-{pid}-{seq}-{sid}");
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
            let (host_mgmt, ns_mgmt) = self.mgmt_pair(sid);
            ip(&["addr", "add", &format!("{host_mgmt}/30"), "dev", &mgmt])?;
            ip(&["link", "set", &mgmt, "up"])?;
            let data_ip = format!("{}/24", self.data_ip(sid));
            ip_in(&ns, &["addr", "add", &data_ip, "dev", "data0"])?;
            let mgmt_ip = format!("{ns_mgmt}/30");
            ip_in(&ns, &["addr", "add", &mgmt_ip, "dev", "mgmt0"])?;
            ip_in(&ns, &["link", "set", "data0", "up"])?;
            ip_in(&ns, &["link", "set", "mgmt0", "up"])?;
        }
        Ok(())
    }

    fn data_ip(&self, sid: i64) -> Ipv4Addr {
        Ipv4Addr::new(10, 215, self.data_net, 10 + sid as u8)
    }

    /// (host side, namespace side) of sid's management /30.
    fn mgmt_pair(&self, sid: i64) -> (Ipv4Addr, Ipv4Addr) {
        let b = 4 * sid as u8;
        (
            Ipv4Addr::new(10, 215, self.mgmt_net, b + 1),
            Ipv4Addr::new(10, 215, self.mgmt_net, b + 2),
        )
    }

    /// Writes the configs and starts every node in its namespace.
    pub fn cluster(&self, bin: &Path) -> Cluster {
        let dir: PathBuf = self.dir.path().to_path_buf();
        let servers: Vec<String> = (1..=self.n)
            .map(|s| {
                format!(
                    "server.{s}={}:{QUORUM_PORT}:{ELECTION_PORT}",
                    self.data_ip(s)
                )
            })
            .collect();
        let kv: Vec<SocketAddr> = (1..=self.n)
            .map(|s| SocketAddr::from((self.mgmt_pair(s).1, KV_PORT)))
            .collect();
        let clients: Vec<SocketAddr> = (1..=self.n)
            .map(|s| SocketAddr::from((self.mgmt_pair(s).1, CLIENT_PORT)))
            .collect();
        let cfgs = write_cfgs(&dir, &servers, &kv, &clients);
        let layout = Layout {
            dir,
            kv,
            clients,
            cfgs,
            netns: Some(self.namespaces.clone()),
        };
        Cluster::with(bin, layout, Vec::new())
    }

    /// Cuts sid off from every other node, both ways.
    pub fn isolate(&self, sid: i64) {
        ip(&["link", "set", &self.data_links[sid as usize - 1], "down"]).expect("partition");
    }

    pub fn heal(&self, sid: i64) {
        ip(&["link", "set", &self.data_links[sid as usize - 1], "up"]).expect("heal");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
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

/// A lab, or `None` (test skipped, with a message) where namespaces are not
/// permitted and `CI` is unset; with `CI` set a missing capability fails.
pub fn lab(n: i64) -> Option<Lab> {
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
