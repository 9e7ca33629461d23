//! Command-line arguments of `zkfle bench ...`, kept here so `main.rs` only
//! dispatches.

use super::notify::{self, Mode, NotifyOptions};
use clap::{Args, Subcommand, ValueEnum};
use std::time::Duration;

/// `zkfle bench <what>`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which benchmark.
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
    /// Writes throw-away quorum TLS stores (a CA and one peer certificate
    /// for 127.0.0.1, PEM, as both zkfle and Java 3.8 read them) into DIR
    /// and prints the zoo.cfg lines that use them (sslQuorum=true
    /// included), for benchmarks and experiments.
    TlsStores(TlsStoresArgs),
    /// Acknowledged durable writes/s and latency of the replicated
    /// key-value store (`examples/replicated_kv`, line protocol).
    Kv(KvArgs),
}

/// `zkfle bench tls-stores`.
#[derive(Debug, Args)]
pub struct TlsStoresArgs {
    /// An existing directory; ca.pem and peer.pem are written into it.
    #[arg(long)]
    pub dir: std::path::PathBuf,
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
    /// Ensemble sizes (voters), comma-separated, 1..99.
    #[arg(long, value_delimiter = ',', default_value = "3,5,7")]
    pub n: Vec<usize>,
    /// Observers added to every ensemble (sids N+1..N+K).
    #[arg(long, default_value_t = 0)]
    pub observers: usize,
    /// Trials per size and implementation.
    #[arg(long, default_value_t = 5)]
    pub trials: usize,
    /// Also run Java ZooKeeper 3.8 (Debian's package).
    #[arg(long)]
    pub java: bool,
    /// Only Java (with --java).
    #[arg(long)]
    pub java_only: bool,
    /// Run Java only for ensembles of at most this many processes (voters
    /// + observers); a JVM takes ~100 MB and seconds of CPU to start.
    #[arg(long, default_value_t = 9)]
    pub java_max_peers: usize,
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
    /// zkfle ports: client base+sid, quorum base+200+sid, election
    /// base+400+sid (below the ephemeral range and clear of the tests').
    #[arg(long, default_value_t = 11000)]
    pub base_port: u16,
    /// Java ports, laid out the same way.
    #[arg(long, default_value_t = 12000)]
    pub java_base_port: u16,
    /// The java binary.
    #[arg(long, default_value = "/usr/bin/java")]
    pub java_bin: std::path::PathBuf,
    /// Java's -Xmx in MB (zkServer.sh's default).
    #[arg(long, default_value_t = 1000)]
    pub java_heap_mb: u32,
    /// Java's log4j root level (ZooKeeper's default: INFO).
    #[arg(long, default_value = "INFO")]
    pub java_log_level: String,
    /// Seconds before a trial is declared stuck.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Milliseconds to let an ensemble settle after its cold start before
    /// resources are read and the leader is killed or stopped (same for
    /// both implementations).
    #[arg(long, default_value_t = 1000)]
    pub settle_ms: u64,
    /// Also write a bar chart of the medians to this SVG file.
    #[arg(long)]
    pub svg: Option<std::path::PathBuf>,
    /// Also write the growth chart (cold start and failover against N) to
    /// this SVG file.
    #[arg(long)]
    pub growth_svg: Option<std::path::PathBuf>,
    /// Put every peer's data directory (epoch files, Java's snapshots and
    /// log) under this directory, for both implementations. Default: the
    /// system's temporary directory. On a tmpfs (/dev/shm) fsync costs
    /// nothing, so the figures show the election and not the disk.
    #[arg(long)]
    pub data_root: Option<std::path::PathBuf>,
    /// Keep every zkfle peer's log as `DIR/n<N>-trial<T>-sid<S>.log` (RUST_LOG
    /// sets their level, info by default) to see why a trial was slow.
    #[arg(long)]
    pub keep_logs: Option<std::path::PathBuf>,
    /// Run every ensemble with quorum TLS (sslQuorum=true on both ports,
    /// mutual authentication): a CA and one peer certificate (ECDSA P-256,
    /// IP:127.0.0.1) are made for each ensemble in its working directory,
    /// as PEM stores both implementations read.
    #[arg(long)]
    pub tls: bool,
}

/// `--mode` of `zkfle bench notify`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// Count the target's replies with a window of notifications in flight.
    Reply,
    /// Send only; the target's `mntr` counts what it received.
    Ingest,
    /// One notification at a time; round-trip percentiles.
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
        BenchCommand::TlsStores(a) => match super::certs::write_stores(&a.dir) {
            Ok(lines) => {
                print!("{lines}");
                0
            }
            Err(e) => {
                eprintln!("zkfle bench tls-stores: {e}");
                1
            }
        },
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

/// Distance between the client, quorum and election port ranges.
const PORT_STRIDE: u16 = 200;

fn election_main(a: ElectionArgs) -> i32 {
    use super::chart;
    use super::election::{self, ElectionBenchOptions, Implementation};
    use super::ensemble::PortPlan;
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
    let plan = |base| PortPlan {
        base,
        stride: PORT_STRIDE,
    };
    let (zkfle_ports, java_ports) = (plan(a.base_port), plan(a.java_base_port));
    let largest = a.n.iter().max().copied().unwrap_or(0) + a.observers;
    if a.n.iter().any(|&n| !(1..=99).contains(&n)) || a.trials == 0 {
        eprintln!("zkfle bench election: --n takes sizes 1..99 and --trials at least 1");
        return 2;
    }
    if !zkfle_ports.fits(largest) || !java_ports.fits(largest) {
        eprintln!(
            "zkfle bench election: {largest} peers do not fit the port plan (at most {} peers, base + 3 x {PORT_STRIDE} below 65536)",
            PORT_STRIDE - 1
        );
        return 2;
    }
    let opts = ElectionBenchOptions {
        sizes: a.n,
        observers: a.observers,
        trials: a.trials,
        implementations,
        java_max_peers: a.java_max_peers,
        cold: true,
        failover: !a.no_failover,
        hung: a.hung,
        tick_ms: a.tick,
        init_limit: a.init,
        sync_limit: a.sync,
        zkfle_ports,
        java_ports,
        java_bin: a.java_bin,
        java_heap_mb: a.java_heap_mb,
        java_log_level: a.java_log_level,
        zkfle_bin,
        trial_timeout: Duration::from_secs(a.timeout),
        settle: Duration::from_millis(a.settle_ms),
        data_root: a.data_root.unwrap_or_else(std::env::temp_dir),
        keep_logs: a.keep_logs,
        tls: a.tls,
    };
    match election::run(&opts) {
        Ok(results) => {
            for line in election::summary_lines(&results) {
                println!("{line}");
            }
            let mut charts = Vec::new();
            if let Some(path) = a.svg {
                charts.push((path, chart::svg_chart(&results)));
            }
            if let Some(path) = a.growth_svg {
                charts.push((
                    path,
                    chart::growth_chart(
                        &results,
                        &[
                            (300.0, "cold target 300 ms"),
                            (50.0, "failover target 50 ms"),
                        ],
                    ),
                ));
            }
            for (path, svg) in charts {
                if let Err(e) = std::fs::write(&path, svg) {
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
