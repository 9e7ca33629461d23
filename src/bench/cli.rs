//! Command-line arguments of `zkfle bench ...`, kept here so `main.rs` only
//! dispatches.

use super::notify::{self, Mode, NotifyOptions};
use clap::{Args, Subcommand, ValueEnum};
use std::time::Duration;

/// `zkfle bench <what>`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchCommand,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Notification throughput (or latency) of any election port, zkfle or
    /// Java ZooKeeper.
    Notify(NotifyArgs),
    /// Election latency (cold start, failover) and resource use of whole
    /// ensembles, zkfle and Java ZooKeeper side by side.
    Election(ElectionArgs),
    /// Acknowledged durable writes/s and latency of the replicated
    /// key-value store (`examples/replicated_kv`, line protocol).
    Kv(KvArgs),
}

/// `zkfle bench kv`.
#[derive(Debug, Args)]
pub struct KvArgs {
    /// Store addresses (any node's kvAddress, comma-separated); REDIRECTs
    /// lead to the leader.
    #[arg(long, value_delimiter = ',', required = true)]
    pub kv: Vec<String>,
    /// Client connections to the leader.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Outstanding SETs per connection.
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Bytes per value.
    #[arg(long, default_value_t = 16)]
    pub value_size: usize,
}

/// `zkfle bench election`.
#[derive(Debug, Args)]
pub struct ElectionArgs {
    /// Ensemble sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "3,5,7")]
    pub n: Vec<usize>,
    /// Trials per size and implementation.
    #[arg(long, default_value_t = 5)]
    pub trials: usize,
    /// Also run Java ZooKeeper (Debian's package) through zk-ensemble.sh.
    #[arg(long)]
    pub java: bool,
    /// Only Java (with --java).
    #[arg(long)]
    pub java_only: bool,
    /// Skip the failover scenario.
    #[arg(long)]
    pub no_failover: bool,
    /// Hung leader (SIGSTOP, then SIGCONT) instead of a crashed one.
    #[arg(long)]
    pub hung: bool,
    /// tickTime in ms (both implementations).
    #[arg(long, default_value_t = 2000)]
    pub tick: u64,
    /// initLimit in ticks.
    #[arg(long, default_value_t = 10)]
    pub init: u32,
    /// syncLimit in ticks.
    #[arg(long, default_value_t = 5)]
    pub sync: u32,
    /// zkfle ports: client base+sid, quorum base+100+sid, election base+200+sid.
    #[arg(long, default_value_t = 29400)]
    pub base_port: u16,
    /// Java ports (zk-ensemble.sh ZK_CLIENT_BASE; quorum +100, election +200).
    #[arg(long, default_value_t = 29700)]
    pub java_base_port: u16,
    /// Path of zk-ensemble.sh.
    #[arg(long, default_value = "../shared/tools/zk-ensemble.sh")]
    pub zk_ensemble: std::path::PathBuf,
    /// Seconds before a trial is declared stuck.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Milliseconds to let an ensemble settle after its cold start before
    /// the leader is killed or stopped (same for both implementations).
    #[arg(long, default_value_t = 1000)]
    pub settle_ms: u64,
    /// Also write a bar chart of the medians to this SVG file.
    #[arg(long)]
    pub svg: Option<std::path::PathBuf>,
    /// Keep every zkfle peer's log as DIR/n<N>-trial<T>-sid<S>.log (RUST_LOG
    /// sets their level, info by default) to see why a trial was slow.
    #[arg(long)]
    pub keep_logs: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Reply,
    Ingest,
    Latency,
}

/// `zkfle bench notify`.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// The target's election port, HOST:PORT.
    #[arg(long)]
    pub peer: String,
    /// The sid to connect as: listed in the target's zoo.cfg (best as an
    /// observer that never runs) and larger than the target's sid.
    /// Connection i uses sid + i.
    #[arg(long)]
    pub sid: i64,
    /// Notifications outstanding per connection.
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Parallel connections (sids sid..sid+C-1).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Notification body size: 40 (3.4.6+ layout) or 44 (3.5+ layout).
    #[arg(long, default_value_t = 40)]
    pub size: usize,
    /// reply: pipelined request/reply; ingest: send only; latency: window 1.
    #[arg(long, value_enum, default_value = "reply")]
    pub mode: ModeArg,
    /// The target's client port (HOST:PORT) for its mntr counters.
    #[arg(long)]
    pub mntr: Option<String>,
    /// Print the result as JSON after the last line.
    #[arg(long)]
    pub json: bool,
    /// Connect with quorum TLS, using the `ssl.quorum.*` stores of this
    /// zoo.cfg (the target's own is fine: it must list --sid and say
    /// sslQuorum=true).
    #[arg(long, value_name = "ZOO_CFG")]
    pub tls: Option<std::path::PathBuf>,
}

/// Runs `zkfle bench ...`; returns the process exit status.
pub fn main(args: BenchArgs) -> i32 {
    match args.what {
        BenchCommand::Notify(a) => notify_main(a),
        BenchCommand::Election(a) => election_main(a),
        BenchCommand::Kv(a) => kv_main(a),
    }
}

fn kv_main(a: KvArgs) -> i32 {
    let ok = |x: f64| x.is_finite() && x >= 0.0;
    if !(ok(a.duration) && a.duration > 0.0 && ok(a.warmup)) {
        eprintln!("zkfle bench kv: --duration must be positive, --warmup not negative");
        return 2;
    }
    let opts = super::kv::KvBenchOptions {
        addrs: a.kv,
        connections: a.connections,
        window: a.window,
        duration: Duration::from_secs_f64(a.duration),
        warmup: Duration::from_secs_f64(a.warmup),
        value_size: a.value_size,
    };
    match super::kv::run(&opts) {
        Ok(r) => {
            for line in super::kv::summary_lines(&r) {
                println!("{line}");
            }
            i32::from(r.errors > 0)
        }
        Err(e) => {
            eprintln!("zkfle bench kv: {e}");
            1
        }
    }
}

fn election_main(a: ElectionArgs) -> i32 {
    use super::election::{self, ElectionBenchOptions, Implementation};
    let zkfle_bin = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("zkfle bench election: cannot find my own binary: {e}");
            return 1;
        }
    };
    let mut implementations = Vec::new();
    if !a.java_only {
        implementations.push(Implementation::Zkfle);
    }
    if a.java || a.java_only {
        implementations.push(Implementation::Java);
    }
    if a.n.iter().any(|&n| !(1..=9).contains(&n)) || a.trials == 0 {
        eprintln!("zkfle bench election: --n takes sizes 1..9 and --trials at least 1");
        return 2;
    }
    let opts = ElectionBenchOptions {
        sizes: a.n,
        trials: a.trials,
        implementations,
        cold: true,
        failover: !a.no_failover,
        hung: a.hung,
        tick_ms: a.tick,
        init_limit: a.init,
        sync_limit: a.sync,
        zkfle_base_port: a.base_port,
        java_base_port: a.java_base_port,
        zk_ensemble: a.zk_ensemble,
        zkfle_bin,
        trial_timeout: Duration::from_secs(a.timeout),
        settle: Duration::from_millis(a.settle_ms),
        keep_logs: a.keep_logs,
    };
    match election::run(&opts) {
        Ok(results) => {
            for line in election::summary_lines(&results) {
                println!("{line}");
            }
            if let Some(path) = a.svg {
                if let Err(e) = std::fs::write(&path, election::svg_chart(&results)) {
                    eprintln!("zkfle bench election: cannot write {}: {e}", path.display());
                    return 1;
                }
            }
            0
        }
        Err(e) => {
            eprintln!("zkfle bench election: {e}");
            1
        }
    }
}

fn notify_main(a: NotifyArgs) -> i32 {
    if !(a.duration.is_finite() && a.duration > 0.0) {
        eprintln!("zkfle bench notify: --duration must be a positive number of seconds");
        return 2;
    }
    let tls = match &a.tls {
        None => None,
        Some(path) => {
            let loaded = crate::config::ZkConfig::load(path, Some(a.sid))
                .map_err(|e| e.to_string())
                .and_then(|c| crate::tls::QuorumTls::load(&c).map_err(|e| e.to_string()));
            match loaded {
                Ok(Some(t)) => Some(t),
                Ok(None) => {
                    eprintln!(
                        "zkfle bench notify: {}: sslQuorum is not true",
                        path.display()
                    );
                    return 2;
                }
                Err(e) => {
                    eprintln!("zkfle bench notify: {e}");
                    return 2;
                }
            }
        }
    };
    let opts = NotifyOptions {
        peer: a.peer,
        sid: a.sid,
        window: a.window,
        connections: a.connections,
        duration: Duration::from_secs_f64(a.duration),
        size: a.size,
        mode: match a.mode {
            ModeArg::Reply => Mode::Reply,
            ModeArg::Ingest => Mode::Ingest,
            ModeArg::Latency => Mode::Latency,
        },
        mntr: a.mntr,
        progress: true,
        tls,
    };
    match notify::run(&opts) {
        Ok(r) => {
            if let Some((state, leader, epoch)) = r.target_vote {
                println!("target_vote state={state} leader={leader} peer_epoch={epoch}");
            }
            println!(
                "sent {} replies {} lost {} elapsed_s {:.3}",
                r.sent,
                r.replies,
                r.lost,
                r.elapsed.as_secs_f64()
            );
            if let Some(l) = r.latency_us {
                println!(
                    "latency_us p50 {} p99 {} max {} samples {}",
                    l.p50, l.p99, l.max, l.samples
                );
            }
            if let Some(t) = r.target_received_per_sec {
                println!("target_received_per_sec {t:.0}");
            }
            if a.json {
                println!("{}", r.to_json());
            }
            println!("notifications_per_sec {:.0}", r.notifications_per_sec);
            0
        }
        Err(e) => {
            eprintln!("zkfle bench notify: {e}");
            1
        }
    }
}
