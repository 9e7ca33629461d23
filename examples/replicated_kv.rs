//! A replicated key-value store prototype built on zkfle's embedding API.
//!
//! ```text
//! cargo run --release --example replicated_kv -- <zoo.cfg> [--myid N]
//! cargo run --release --example replicated_kv -- --demo
//! ```
//!
//! One process runs one node. Its `zoo.cfg` is an ordinary ZooKeeper one
//! (the `server.N` lines drive zkfle's election and Zab) plus one
//! `kvAddress.N=host:port` line per server: node N's client address.
//! Replication runs on the quorum port: the node is a zkfle peer built with
//! `PeerBuilder::replicated_log`, so every `SET` is a Zab proposal and
//! every node applies committed proposals to its map. `dataDir` holds
//! zkfle's epoch files and the replicated log (`zkfle-log/`, zkfle's
//! `FileLog`: CRC-checked segments, fsynced in batches). `conf/kv1.cfg`..
//! `kv3.cfg` run a local three-node store; `--demo` runs three nodes in this
//! process, writes, kills the leader and shows that the new leader has
//! every acknowledged write.
//!
//! # Client protocol
//!
//! Plain TCP to any node's `kvAddress`, one request per line (`\n`, a
//! trailing `\r` is ignored), one answer line per request, any number of
//! requests per connection. Requests may be pipelined (sent without
//! waiting for answers); answers come in request order, and a `GET` or
//! `LOCAL` sees every earlier `SET` of its connection that was answered
//! `OK`. Keys and values are non-empty and contain no whitespace.
//!
//! | request             | answer                                                   |
//! |---------------------|----------------------------------------------------------|
//! | `SET <key> <value>` | `OK 0x<zxid>` once a quorum (the leader counts itself) has the write durable and it is committed |
//! | `GET <key>`         | on the leader: `VALUE <value>` or `NOTFOUND`, after a read barrier (a quorum round started after the request): linearizable |
//! | `LOCAL <key>`       | on any node: its own applied (committed) copy, `VALUE <value>` or `NOTFOUND` |
//!
//! On a node that is not the serving leader, `SET` and `GET` answer
//! `REDIRECT <host:port>` (the leader's `kvAddress`) when it knows the
//! leader, else `ERR <reason>` (no leader, election in progress, leader not
//! serving yet). `ERR outcome unknown: ...` after a `SET` means the write
//! may or may not survive (leadership or quorum lost before it committed);
//! retry it. A leader cut off from its quorum answers `GET` with
//! `ERR leadership lost ...` (it never confirms the barrier), never with a
//! value older than a write acknowledged elsewhere. Anything else (unknown
//! command, wrong arity) answers `ERR <reason>` and the connection stays
//! usable.
//!
//! zxids are `(epoch << 32) | counter`, the counter starting at 1 in each
//! epoch: the epoch is the one zkfle's Zab session established for the
//! current leader (`Role::Leading { epoch }`), the fencing token.
//! `examples/replicated_kv/kv.rs` describes the node.

#[path = "replicated_kv/kv.rs"]
mod kv;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use zkfle::config::ZkConfig;

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "one node of zkfle's replicated key-value store prototype")]
struct Args {
    /// The node's zoo.cfg (with kvAddress.N lines).
    config: Option<PathBuf>,
    /// This node's sid (default: dataDir/myid).
    #[arg(long)]
    myid: Option<i64>,
    /// Run three nodes in this process, write, kill the leader, check.
    #[arg(long)]
    demo: bool,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    if args.demo {
        return match demo() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("demo failed: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let Some(path) = args.config else {
        eprintln!("usage: replicated_kv <zoo.cfg> [--myid N] | --demo");
        return ExitCode::from(2);
    };
    let cfg = match ZkConfig::load(&path, args.myid) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let node = match kv::Node::start(cfg) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    log::info!("sid {} serving the store on {}", node.sid(), node.kv_addr());
    // Runs until killed; the log is durable after every acknowledgement.
    loop {
        std::thread::park();
    }
}

/// Writes `ports` configs for a local 3-node store under `dir`.
fn demo_configs(dir: &std::path::Path, base: u16) -> std::io::Result<Vec<PathBuf>> {
    let mut common = String::from("tickTime=100\ninitLimit=10\nsyncLimit=5\n");
    for sid in 1..=3u16 {
        common.push_str(&format!(
            "server.{sid}=127.0.0.1:{}:{}\nkvAddress.{sid}=127.0.0.1:{}\n",
            base + 10 + sid,
            base + 20 + sid,
            base + sid
        ));
    }
    (1..=3)
        .map(|sid| {
            let data = dir.join(format!("node{sid}"));
            std::fs::create_dir_all(&data)?;
            let p = dir.join(format!("kv{sid}.cfg"));
            std::fs::write(&p, format!("dataDir={}\n{common}", data.display()))?;
            Ok(p)
        })
        .collect()
}

fn wait_leader(nodes: &[Option<kv::Node>]) -> Result<usize, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(i) = nodes
            .iter()
            .position(|n| n.as_ref().is_some_and(|n| n.is_serving_leader()))
        {
            return Ok(i);
        }
        if Instant::now() > deadline {
            return Err("no serving leader within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn demo() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cfgs = demo_configs(dir.path(), 7100).map_err(|e| e.to_string())?;
    let mut nodes: Vec<Option<kv::Node>> = Vec::new();
    for (i, c) in cfgs.iter().enumerate() {
        let cfg = ZkConfig::load(c, Some(i as i64 + 1)).map_err(|e| e.to_string())?;
        nodes.push(Some(kv::Node::start(cfg).map_err(|e| e.to_string())?));
    }
    let leader = wait_leader(&nodes)?;
    let addr = nodes[leader].as_ref().map(|n| n.kv_addr()).ok_or("gone")?;
    println!("leader: sid {} at {addr}", leader + 1);
    let mut client =
        kv::Client::connect(addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let mut acked = Vec::new();
    for i in 0..5 {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        let a = client
            .request(&format!("SET {k} {v}"))
            .map_err(|e| e.to_string())?;
        println!("SET {k} {v} -> {a}");
        if a.starts_with("OK ") {
            acked.push((k, v));
        }
    }
    println!("killing the leader, sid {}", leader + 1);
    let t = Instant::now();
    if let Some(n) = nodes[leader].take() {
        n.kill();
    }
    let new = wait_leader(&nodes)?;
    println!(
        "new leader: sid {} after {} ms without one",
        new + 1,
        t.elapsed().as_millis()
    );
    let addr = nodes[new].as_ref().map(|n| n.kv_addr()).ok_or("gone")?;
    let mut client =
        kv::Client::connect(addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let mut missing = 0;
    for (k, v) in &acked {
        let a = client
            .request(&format!("GET {k}"))
            .map_err(|e| e.to_string())?;
        println!("GET {k} -> {a}");
        if a != format!("VALUE {v}") {
            missing += 1;
        }
    }
    for n in nodes.into_iter().flatten() {
        n.kill();
    }
    if missing > 0 {
        return Err(format!("{missing} acknowledged writes missing"));
    }
    println!(
        "all {} acknowledged writes are on the new leader",
        acked.len()
    );
    Ok(())
}
