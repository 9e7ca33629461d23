//! `zkfle bench election`: election latency of whole ensembles, zkfle and
//! Java ZooKeeper measured by the same code in the same run.
//!
//! Cold start: all processes (N voters, then K observers) launched back to
//! back, sid 1 first; the time from the first launch until every voter
//! reports `Mode: leader|follower` with exactly one leader and every
//! observer `Mode: observer`. Failover: SIGKILL of the leader; the time
//! until the survivors again report exactly one leader, only followers and
//! observers, all in a newer epoch. For both implementations `Mode:`
//! appears only once the quorum-port session is synchronised, so the
//! figure includes Zab's discovery and sync.
//!
//! Both implementations are launched by this process ([`super::ensemble`])
//! and timed on the same clock.

use std::path::PathBuf;
use std::time::Duration;

use super::ensemble::{self, process_stats, PortPlan, ProcessStats, Role, Watch};

/// Which implementation an ensemble runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// `zkfle run` processes.
    Zkfle,
    /// Java ZooKeeper 3.8 JVMs.
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
    /// Numbers of voters.
    pub sizes: Vec<usize>,
    /// Observers added to every ensemble (sids after the voters).
    pub observers: usize,
    /// Trials per size and implementation.
    pub trials: usize,
    /// Implementations to run.
    pub implementations: Vec<Implementation>,
    /// Java runs only for ensembles of at most this many processes
    /// (voters + observers); larger ones are zkfle only.
    pub java_max_peers: usize,
    /// Record the cold start.
    pub cold: bool,
    /// Kill the leader after the cold start.
    pub failover: bool,
    /// Hung leader instead of a crashed one: SIGSTOP, time until the others
    /// serve a new leader, then SIGCONT and time until it rejoins.
    pub hung: bool,
    /// tickTime (ms).
    pub tick_ms: u64,
    /// initLimit (ticks).
    pub init_limit: u32,
    /// syncLimit (ticks).
    pub sync_limit: u32,
    /// zkfle's ports.
    pub zkfle_ports: PortPlan,
    /// Java's ports.
    pub java_ports: PortPlan,
    /// The java binary.
    pub java_bin: PathBuf,
    /// Java's -Xmx in MB.
    pub java_heap_mb: u32,
    /// Java's log4j root level (INFO is ZooKeeper's default).
    pub java_log_level: String,
    /// The zkfle binary to launch (`zkfle run`).
    pub zkfle_bin: PathBuf,
    /// Give up on one trial after this long.
    pub trial_timeout: Duration,
    /// Pause between the cold start settling and the failover or hung-leader
    /// step, for both implementations alike.
    pub settle: Duration,
    /// Where every peer's data directory goes (both implementations): the
    /// system's temporary directory by default; a tmpfs such as /dev/shm
    /// takes the disk's fsync latency out of the figures.
    pub data_root: PathBuf,
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
    /// A scratch directory or file could not be made.
    #[error("cannot create a working directory: {0}")]
    WorkDir(std::io::Error),
    /// The throw-away TLS stores could not be made.
    #[error("{0}")]
    Certs(#[from] super::certs::CertError),
    /// A process could not be launched.
    #[error("cannot launch {what}: {source}")]
    Launch {
        /// What.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// A trial did not settle in time.
    #[error("{implementation} N={n}: {what} did not settle within {secs} s (last seen: {last})")]
    Timeout {
        /// Which implementation.
        implementation: Implementation,
        /// Voters.
        n: usize,
        /// Which step.
        what: &'static str,
        /// The timeout.
        secs: u64,
        /// What the last checks saw.
        last: String,
    },
}

/// Min/median/max of a series of milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Smallest.
    pub min: f64,
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// Largest.
    pub max: f64,
    /// Count.
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
    /// Which implementation.
    pub implementation: Implementation,
    /// Voters.
    pub n: usize,
    /// Observers.
    pub observers: usize,
    /// First launch until all settled, per trial.
    pub cold_ms: Vec<f64>,
    /// First launch until the last launch returned, per trial.
    pub launch_ms: Vec<f64>,
    /// SIGKILL of the leader until the survivors settled.
    pub failover_ms: Vec<f64>,
    /// SIGSTOP of the leader until the others serve a new one.
    pub hung_ms: Vec<f64>,
    /// SIGCONT of the old leader until all serve again.
    pub rejoin_ms: Vec<f64>,
    /// Per-peer stats of the last trial, once it had settled for
    /// [`ElectionBenchOptions::settle`], with the peer's role.
    pub stats: Vec<(Role, ProcessStats)>,
    /// Notifications sent and received by all peers together (zkfle's
    /// `mntr`) up to the end of the settle pause, per trial.
    pub notifications: Vec<(u64, u64)>,
}

impl SizeResult {
    /// No figures yet.
    pub fn new(implementation: Implementation, n: usize, observers: usize) -> SizeResult {
        SizeResult {
            implementation,
            n,
            observers,
            cold_ms: Vec::new(),
            launch_ms: Vec::new(),
            failover_ms: Vec::new(),
            hung_ms: Vec::new(),
            rejoin_ms: Vec::new(),
            stats: Vec::new(),
            notifications: Vec::new(),
        }
    }

    /// "N=51" or "N=7+50" (voters + observers).
    pub fn label(&self) -> String {
        if self.observers > 0 {
            format!("N={}+{}", self.n, self.observers)
        } else {
            format!("N={}", self.n)
        }
    }
}

/// Notifications sent and received by the peers on `ports` together.
fn notification_total(ports: &[u16]) -> (u64, u64) {
    ports
        .iter()
        .filter_map(|p| ensemble::notification_counts(*p))
        .fold((0, 0), |(s, r), (a, b)| (s + a, r + b))
}

fn ms_between(t0: u128, t1: u128) -> f64 {
    t1.saturating_sub(t0) as f64 / 1e6
}

/// True if at least `mb` MB of memory are available (MemAvailable).
fn memory_available_mb(mb: u64) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/meminfo") else {
        return true;
    };
    info.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(true, |kb| kb / 1024 >= mb)
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
        let total = n + opts.observers;
        for &imp in &opts.implementations {
            if imp == Implementation::Java {
                if total > opts.java_max_peers {
                    println!(
                        "skip impl=java n={n} observers={}: {total} JVMs is more than --java-max-peers {}",
                        opts.observers, opts.java_max_peers
                    );
                    continue;
                }
                // A JVM here takes 80-120 MB resident; keep a margin for
                // everyone else on the machine.
                if !memory_available_mb(total as u64 * 200 + 2048) {
                    println!("skip impl=java n={n}: not enough memory for {total} JVMs");
                    continue;
                }
            }
            let mut r = SizeResult::new(imp, n, opts.observers);
            for trial in 1..=opts.trials {
                run_trial(opts, imp, n, trial, &mut r)?;
            }
            results.push(r);
        }
    }
    Ok(results)
}

fn run_trial(
    opts: &ElectionBenchOptions,
    imp: Implementation,
    n: usize,
    trial: usize,
    r: &mut SizeResult,
) -> Result<(), ElectionBenchError> {
    let label = r.label();
    let mut ens = ensemble::make(imp, opts, n, trial)?;
    let peers = ens.peers();
    let ports: Vec<u16> = peers.iter().map(|p| p.0).collect();
    let timeout = |what: &'static str, last: String| ElectionBenchError::Timeout {
        implementation: imp,
        n,
        what,
        secs: opts.trial_timeout.as_secs(),
        last,
    };
    let (t0, t_launched) = ens.start()?;
    let settled = ensemble::wait_settled(
        &Watch {
            peers: peers.clone(),
            looking_above: Vec::new(),
        },
        opts.trial_timeout,
    )
    .map_err(|last| timeout("cold start", last))?;
    let cold = ms_between(t0, settled.at);
    let launch = ms_between(t0, t_launched);
    if opts.cold {
        println!(
            "trial impl={imp} {label} trial={trial} scenario=cold ms={cold:.1} launch_ms={launch:.1} polls={}",
            settled.polls
        );
        r.cold_ms.push(cold);
        r.launch_ms.push(launch);
    }
    // Failover is measured on a settled ensemble, as it happens in
    // service: right after a cold start the peers are still finishing
    // connection set-up (dial loops, call-backs). Resources are read then
    // too, once every link exists.
    std::thread::sleep(opts.settle);
    r.stats = ens
        .pids()
        .into_iter()
        .filter_map(|(i, pid)| process_stats(pid).map(|s| (peers[i].1, s)))
        .collect();
    println!(
        "trial impl={imp} {label} trial={trial} scenario=cold all_cpu_ms={}",
        r.stats.iter().map(|(_, s)| s.cpu_ms).sum::<u64>()
    );
    if imp == Implementation::Zkfle {
        let total = notification_total(&ports);
        println!(
            "trial impl={imp} {label} trial={trial} scenario=cold notifications_sent={} notifications_received={}",
            total.0, total.1
        );
        r.notifications.push(total);
    }
    let before = ensemble::modes(&ports);
    let leader = before
        .iter()
        .position(|m| m.as_ref().is_some_and(|m| m.mode == "leader"));
    let Some(leader) = leader else {
        ens.stop();
        return Ok(());
    };
    // Everyone must go through a new election: the count each peer
    // reports now is what it must exceed.
    let counts: Vec<i64> = ports
        .iter()
        .map(|p| ensemble::looking_count(*p).unwrap_or(0))
        .collect();
    let count = |i: usize| counts[i];
    let others = Watch {
        peers: (0..peers.len())
            .filter(|&i| i != leader)
            .map(|i| peers[i])
            .collect(),
        looking_above: (0..peers.len())
            .filter(|&i| i != leader)
            .map(count)
            .collect(),
    };
    let survivor_ports: Vec<u16> = others.peers.iter().map(|p| p.0).collect();
    let survivors_before =
        (imp == Implementation::Zkfle).then(|| notification_total(&survivor_ports));
    let everyone = Watch {
        peers: peers.clone(),
        looking_above: (0..peers.len()).map(count).collect(),
    };
    if opts.hung {
        let t_stop = ens.signal(leader, "STOP")?;
        // A stopped leader answers nothing: its client port hangs, so
        // only the others are watched.
        let s = ensemble::wait_settled(&others, opts.trial_timeout)
            .map_err(|last| timeout("hung leader", last))?;
        let ms = ms_between(t_stop, s.at);
        println!("trial impl={imp} {label} trial={trial} scenario=hung ms={ms:.1}");
        r.hung_ms.push(ms);
        let t_cont = ens.signal(leader, "CONT")?;
        let s = ensemble::wait_settled(&everyone, opts.trial_timeout)
            .map_err(|last| timeout("rejoin", last))?;
        let ms = ms_between(t_cont, s.at);
        println!("trial impl={imp} {label} trial={trial} scenario=rejoin ms={ms:.1}");
        r.rejoin_ms.push(ms);
    } else if opts.failover {
        let cpu = |ens: &dyn ensemble::Ensemble| -> u64 {
            ens.pids()
                .into_iter()
                .filter(|(i, _)| *i != leader)
                .filter_map(|(_, pid)| process_stats(pid))
                .map(|s| s.cpu_ms)
                .sum()
        };
        let cpu_before = cpu(ens.as_ref());
        let t_kill = ens.kill(leader)?;
        let s = ensemble::wait_settled(&others, opts.trial_timeout)
            .map_err(|last| timeout("failover", last))?;
        let ms = ms_between(t_kill, s.at);
        println!(
            "trial impl={imp} {label} trial={trial} scenario=failover survivors_cpu_ms={}",
            cpu(ens.as_ref()).saturating_sub(cpu_before)
        );
        println!(
            "trial impl={imp} {label} trial={trial} scenario=failover ms={ms:.1} polls={}",
            s.polls
        );
        r.failover_ms.push(ms);
        if let Some(before) = survivors_before {
            // The survivors' counters grew by the failover's traffic (what
            // the dead leader sent before dying is not in it).
            let after = notification_total(&survivor_ports);
            println!(
                "trial impl={imp} {label} trial={trial} scenario=failover notifications_sent={} notifications_received={}",
                after.0.saturating_sub(before.0),
                after.1.saturating_sub(before.1)
            );
        }
    }
    ens.stop();
    Ok(())
}

/// The summary table: one line per implementation, size and scenario, then
/// resource use, then the zkfle/Java ratios where both ran.
pub fn summary_lines(results: &[SizeResult]) -> Vec<String> {
    let mut out = Vec::new();
    for r in results {
        let label = r.label();
        for (scenario, v) in [
            ("cold", &r.cold_ms),
            ("launch", &r.launch_ms),
            ("failover", &r.failover_ms),
            ("hung", &r.hung_ms),
            ("rejoin", &r.rejoin_ms),
        ] {
            if let Some(s) = Summary::of(v) {
                out.push(format!(
                    "result impl={} {label} scenario={scenario} min_ms={:.1} median_ms={:.1} max_ms={:.1} trials={}",
                    r.implementation, s.min, s.median, s.max, s.samples
                ));
            }
        }
        for (role, name) in [(Role::Voter, "voters"), (Role::Observer, "observers")] {
            let s: Vec<&ProcessStats> = r
                .stats
                .iter()
                .filter(|(x, _)| *x == role)
                .map(|(_, s)| s)
                .collect();
            if s.is_empty() {
                continue;
            }
            let k = s.len() as u64;
            let max = |f: fn(&ProcessStats) -> u64| s.iter().map(|x| f(x)).max().unwrap_or(0);
            let avg = |f: fn(&ProcessStats) -> u64| s.iter().map(|x| f(x)).sum::<u64>() / k;
            out.push(format!(
                "resources impl={} {label} {name}={k} rss_kb_avg={} rss_kb_max={} hwm_kb_max={} anon_kb_avg={} anon_kb_max={} threads_avg={} threads_max={} cpu_ms_avg={} cpu_ms_max={}",
                r.implementation,
                avg(|x| x.rss_kb),
                max(|x| x.rss_kb),
                max(|x| x.hwm_kb),
                avg(|x| x.anon_kb),
                max(|x| x.anon_kb),
                avg(|x| x.threads),
                max(|x| x.threads),
                avg(|x| x.cpu_ms),
                max(|x| x.cpu_ms),
            ));
        }
    }
    for z in results
        .iter()
        .filter(|r| r.implementation == Implementation::Zkfle)
    {
        let Some(j) = results.iter().find(|r| {
            r.implementation == Implementation::Java && r.n == z.n && r.observers == z.observers
        }) else {
            continue;
        };
        for (scenario, zv, jv) in [
            ("cold", &z.cold_ms, &j.cold_ms),
            ("failover", &z.failover_ms, &j.failover_ms),
        ] {
            if let (Some(zs), Some(js)) = (Summary::of(zv), Summary::of(jv)) {
                out.push(format!(
                    "ratio {} scenario={scenario} java_over_zkfle_median={:.1}",
                    z.label(),
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
    fn summary_lines_split_voters_and_observers() {
        let mut r = SizeResult::new(Implementation::Zkfle, 7, 2);
        r.cold_ms = vec![30.0, 10.0, 20.0];
        let st = |rss_kb| ProcessStats {
            rss_kb,
            hwm_kb: rss_kb + 1,
            anon_kb: rss_kb / 2,
            threads: 10,
            cpu_ms: 20,
        };
        r.stats = vec![
            (Role::Voter, st(5000)),
            (Role::Voter, st(7000)),
            (Role::Observer, st(4000)),
        ];
        let lines = summary_lines(&[r]);
        assert!(lines.contains(&"result impl=zkfle N=7+2 scenario=cold min_ms=10.0 median_ms=20.0 max_ms=30.0 trials=3".to_string()), "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("voters=2 rss_kb_avg=6000 rss_kb_max=7000 hwm_kb_max=7001")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("observers=1 rss_kb_avg=4000")),
            "{lines:?}"
        );
    }
}
