//! The `zkfle` binary: `run`, `ensemble`, `status`, `4lw`, `bench`, `sim`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use zkfle::admin::Admin;
use zkfle::cnx::CnxError;
use zkfle::config::ZkConfig;
use zkfle::peer::{PeerError, PeerOptions, QuorumPeer};

#[derive(Debug, Parser)]
#[command(
    name = "zkfle",
    version,
    about = "ZooKeeper's leader election, in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one ensemble member from a ZooKeeper zoo.cfg.
    Run(RunArgs),
    /// Run the local three-peer ensemble of `conf/` in this process and show
    /// who leads.
    Ensemble(EnsembleArgs),
    /// Print a server's Mode as `zkServer.sh status` does (exit 0 with a
    /// Mode, 1 without). Works against Java ZooKeeper too.
    Status(StatusArgs),
    /// Send a four-letter word and print the answer.
    #[command(name = "4lw")]
    FourLetterWord(FourLetterWordArgs),
    /// Benchmarks against any election port (zkfle or Java ZooKeeper).
    Bench(zkfle::bench::cli::BenchArgs),
    /// Seeded simulation of the election under faults.
    Sim(zkfle::sim::cli::SimArgs),
}

/// `zkfle run`.
#[derive(Debug, Args)]
struct RunArgs {
    /// The zoo.cfg to read (the same file Java ZooKeeper 3.8 reads).
    config: PathBuf,
    /// This server's sid; default: the number in `dataDir/myid`.
    #[arg(long)]
    myid: Option<i64>,
}

/// `zkfle status`.
#[derive(Debug, Args)]
struct StatusArgs {
    /// A zoo.cfg (its clientPort/clientPortAddress, or this server's
    /// server.N client part) or HOST:PORT of a client port.
    target: String,
}

/// `zkfle 4lw`.
#[derive(Debug, Args)]
struct FourLetterWordArgs {
    /// The client port, HOST:PORT.
    addr: String,
    /// The word: ruok, srvr, stat, conf, mntr, ...
    word: String,
}

/// `zkfle ensemble`.
#[derive(Debug, Args)]
struct EnsembleArgs {
    /// Directory holding zoo1.cfg, zoo2.cfg and zoo3.cfg (peer N is sid N).
    #[arg(long, default_value = "conf")]
    conf: PathBuf,
    /// Exit once every peer agrees on the leader (for tests and scripts).
    #[arg(long)]
    exit_after_election: bool,
    /// Give up waiting for agreement after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

/// Exit status for a configuration the peer cannot run with.
const EXIT_BAD_CONFIG: u8 = 2;
/// Exit status when the election address cannot be bound (or, a host
/// name, resolved) within `electionPortBindRetry` attempts: ZooKeeper's
/// `ExitCode.UNABLE_TO_BIND_QUORUM_PORT`.
const EXIT_UNABLE_TO_BIND: u8 = 14;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The simulator runs the protocol machines through thousands of fault
    // schedules: their log lines would swamp its output and most of its
    // time. RUST_LOG still turns them on.
    let default_filter = if matches!(cli.command, Command::Sim(_)) {
        "off"
    } else {
        "info"
    };
    // Millisecond timestamps: election and failover steps take milliseconds,
    // and ZooKeeper's own log lines carry them too.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter))
        .format_timestamp_millis()
        .init();
    match cli.command {
        Command::Run(args) => run(&args),
        Command::Ensemble(args) => ensemble(&args),
        Command::Status(args) => status(&args),
        Command::FourLetterWord(args) => four_letter_word(&args),
        Command::Bench(args) => exit_code(zkfle::bench::cli::main(args)),
        Command::Sim(args) => exit_code(zkfle::sim::cli::main(args)),
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn load(path: &Path, myid: Option<i64>) -> Result<ZkConfig, ExitCode> {
    ZkConfig::load(path, myid).map_err(|e| {
        eprintln!("zkfle: {e}");
        ExitCode::from(EXIT_BAD_CONFIG)
    })
}

fn run(args: &RunArgs) -> ExitCode {
    limit_malloc_arenas();
    let cfg = match load(&args.config, args.myid) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (mut peer, mut admin) = match start_peer(cfg) {
        Ok(p) => p,
        Err((e, code)) => {
            eprintln!("zkfle: {e}");
            return code;
        }
    };
    wait_for_signal();
    admin.shutdown();
    peer.shutdown();
    ExitCode::SUCCESS
}

/// Caps glibc's malloc arenas for a peer process.
///
/// glibc hands each new thread that allocates an arena of its own while
/// there are fewer than 8 × cores, and an arena keeps the pages it touched.
/// A peer of N voters runs two worker threads per election link; they
/// allocate almost nothing once running (fixed notification buffers,
/// preallocated queues), yet at N = 51 fourteen arenas held ~680 KB of the
/// process's RSS (issue 18). Two arenas keep the election thread and the
/// workers from contending on one lock during the connection storm of a
/// cold start. `MALLOC_ARENA_MAX` in the environment still wins: glibc
/// reads it before `main`, and an operator who set it meant it.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator parameters; it is called
        // before this process starts any thread of its own.
        let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
        if ok == 0 {
            log::debug!("mallopt(M_ARENA_MAX) refused; keeping glibc's arena limit");
        }
    }
}

/// Starts a peer and, beside it, its four-letter words and metrics; on
/// failure, the message and the exit status: a quorum TLS store that cannot
/// be used is a configuration error (exit 2, the message names the key), an
/// election address that cannot be bound or resolved within
/// `electionPortBindRetry` exits 14 as ZooKeeper does, anything else 1.
fn start_peer(cfg: ZkConfig) -> Result<(QuorumPeer, Admin), (String, ExitCode)> {
    let mut peer = QuorumPeer::start(cfg, PeerOptions::default()).map_err(|e| {
        let code = match e {
            PeerError::Tls(_) => ExitCode::from(EXIT_BAD_CONFIG),
            PeerError::Cnx(CnxError::Bind { .. } | CnxError::Unresolvable { .. }) => {
                ExitCode::from(EXIT_UNABLE_TO_BIND)
            }
            _ => ExitCode::FAILURE,
        };
        (e.to_string(), code)
    })?;
    match Admin::start(&peer) {
        Ok(admin) => Ok((peer, admin)),
        Err(e) => {
            peer.shutdown();
            Err((e.to_string(), ExitCode::FAILURE))
        }
    }
}

fn status(args: &StatusArgs) -> ExitCode {
    let r = zkfle::admin::client::status(&args.target);
    for l in &r.stderr {
        eprintln!("{l}");
    }
    for l in &r.stdout {
        println!("{l}");
    }
    ExitCode::from(r.code)
}

fn four_letter_word(args: &FourLetterWordArgs) -> ExitCode {
    use std::io::Write as _;
    match zkfle::admin::client::send_word(&args.addr, &args.word) {
        Ok(bytes) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&bytes);
            // `ruok` and `isro` answer without a newline; a shell prompt
            // should not end up on the answer's line.
            if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                let _ = out.write_all(b"\n");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zkfle: {e}");
            ExitCode::FAILURE
        }
    }
}

fn ensemble(args: &EnsembleArgs) -> ExitCode {
    let mut peers = Vec::new();
    for sid in 1..=3i64 {
        let path = args.conf.join(format!("zoo{sid}.cfg"));
        let cfg = match load(&path, Some(sid)) {
            Ok(c) => c,
            Err(code) => return code,
        };
        match start_peer(cfg) {
            Ok(p) => peers.push(p),
            Err((e, code)) => {
                eprintln!("zkfle: {}: {e}", path.display());
                return code;
            }
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(args.timeout);
    let mut agreed = false;
    while std::time::Instant::now() < deadline {
        let snaps: Vec<_> = peers.iter().map(|(p, _)| p.status().snapshot()).collect();
        let leader = snaps[0].leader_sid;
        if snaps.iter().all(|s| s.serving && s.leader_sid == leader) {
            for s in &snaps {
                println!(
                    "sid {}: {}, leader {}, election {} ms",
                    s.my_sid,
                    s.server_state_text(),
                    s.leader_sid,
                    s.last_election_ms.unwrap_or(0)
                );
            }
            agreed = true;
            break;
        }
        // Wake on the first peer's changes, and re-check the others at
        // least every 20 ms.
        peers[0]
            .0
            .status()
            .wait_until(Duration::from_millis(20), |s| s.leader_sid != leader);
    }
    if !agreed {
        eprintln!(
            "zkfle: the ensemble did not agree on a leader within {} s",
            args.timeout
        );
    } else if !args.exit_after_election {
        wait_for_signal();
    }
    for (p, a) in peers.iter_mut() {
        a.shutdown();
        p.shutdown();
    }
    if agreed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Blocks until SIGINT or SIGTERM, so both Ctrl-C and a service manager's
/// stop shut the peer down cleanly.
fn wait_for_signal() {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("cannot wait for signals: {e}; running until killed");
            loop {
                std::thread::park();
            }
        }
    };
    rt.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    });
    log::info!("signal received, shutting down");
}
