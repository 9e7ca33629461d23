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
}

/// Runs `zkfle bench ...`; returns the process exit status.
pub fn main(args: BenchArgs) -> i32 {
    match args.what {
        BenchCommand::Notify(a) => notify_main(a),
    }
}

fn notify_main(a: NotifyArgs) -> i32 {
    if !(a.duration.is_finite() && a.duration > 0.0) {
        eprintln!("zkfle bench notify: --duration must be a positive number of seconds");
        return 2;
    }
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
