//! `zkfle sim --seeds N [--seed S] [--peers MIN..MAX]`: runs seeded
//! schedules and prints, for each failing one, the single command that
//! replays it. The last line is `schedules <n> failures <f> per_sec <x>`.
//! A soak run is just a large `--seeds`: it reports its progress on stderr
//! about once a second, and runs on every CPU unless `--jobs` says
//! otherwise.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;

use super::world::{run, InjectedBug, Outcome, SimOptions};

/// `zkfle sim` arguments.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// How many schedules to run (seeds S, S+1, ..., S+N-1).
    #[arg(long, default_value_t = 1000)]
    pub seeds: u64,
    /// The first seed. Without it one is taken from the clock and printed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Ensemble sizes, `MIN..MAX` (inclusive) or a single number.
    #[arg(long, default_value = "3..9")]
    pub peers: String,
    /// Print the event trace of each failing schedule (of every schedule
    /// when `--seeds 1`).
    #[arg(long)]
    pub trace: bool,
    /// Worker threads (default: the number of CPUs).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Wrap the election in a deliberate bug to see the invariants catch
    /// it: `inverted-order` (vote order prefers the shorter log),
    /// `self-quorum` (one voter's quorum check accepts itself alone) or
    /// `eager-down` (the election driver counts voters whose link is up as
    /// Down).
    #[arg(long)]
    pub inject: Option<String>,
    /// Check that logical clocks never go backwards with no exception, not
    /// even ZooKeeper's out-of-election join (which sets the clock to the
    /// ensemble's round): shows why the exception is documented.
    #[arg(long)]
    pub strict_clock: bool,
}

/// Parses `MIN..MAX`, `MIN..=MAX` or `N`.
pub fn parse_peers(s: &str) -> Option<(usize, usize)> {
    let s = s.trim();
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (a, b.trim_start_matches('=')),
        None => (s, s),
    };
    let lo: usize = a.trim().parse().ok()?;
    let hi: usize = b.trim().parse().ok()?;
    if lo == 0 || hi > 64 || lo > hi {
        return None;
    }
    Some((lo, hi))
}

/// The command that replays one schedule.
pub fn replay_command(seed: u64, peers: usize, bug: Option<&str>) -> String {
    let mut c = format!("zkfle sim --seeds 1 --seed {seed} --peers {peers}..{peers}");
    if let Some(b) = bug {
        c.push_str(" --inject ");
        c.push_str(b);
    }
    c
}

fn replay_line(seed: u64, peers: usize, args: &SimArgs) -> String {
    let mut c = replay_command(seed, peers, args.inject.as_deref());
    if args.strict_clock {
        c.push_str(" --strict-clock");
    }
    c
}

/// Runs `zkfle sim ...`; returns the process exit status (0 all passed,
/// 1 some schedule failed, 2 bad arguments).
pub fn main(args: SimArgs) -> i32 {
    let Some((lo, hi)) = parse_peers(&args.peers) else {
        eprintln!(
            "zkfle sim: --peers must be MIN..MAX with 1 <= MIN <= MAX <= 64, got {:?}",
            args.peers
        );
        return 2;
    };
    let bug = match args.inject.as_deref() {
        None => None,
        Some(name) => match InjectedBug::from_name(name) {
            Some(b) => Some(b),
            None => {
                eprintln!(
                    "zkfle sim: --inject must be inverted-order, self-quorum or eager-down, got {name:?}"
                );
                return 2;
            }
        },
    };
    let base = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    if args.seed.is_none() {
        println!("base seed {base}");
    }
    let jobs = args.jobs.unwrap_or_else(default_jobs).clamp(1, 64);
    let started = Instant::now();
    let opts = |seed: u64| SimOptions {
        seed,
        min_peers: lo,
        max_peers: hi,
        trace: false,
        bug,
        strict_clock: args.strict_clock,
    };
    let mut report = |p: Progress| eprintln!("{}", p.line());
    let summaries = run_many_with(
        base,
        args.seeds,
        jobs,
        &opts,
        Some((PROGRESS_EVERY, &mut report)),
    );
    let elapsed = started.elapsed();

    let mut failures = 0u64;
    let mut agg = Aggregate::default();
    for o in &summaries {
        agg.add(o);
        let show_trace = args.trace && (args.seeds == 1 || !o.violations.is_empty());
        if o.violations.is_empty() && !show_trace {
            continue;
        }
        let full = if show_trace {
            let mut oo = opts(o.seed);
            oo.trace = true;
            Some(run(&oo))
        } else {
            None
        };
        if let Some(t) = &full {
            for line in &t.trace {
                println!("{line}");
            }
        }
        if !o.violations.is_empty() {
            failures += 1;
            println!(
                "FAIL seed {} ({} peers, {}, calm {}): {}",
                o.seed, o.stats.peers, o.stats.layout, o.stats.calm, o.violations[0]
            );
            println!("  replay: {}", replay_line(o.seed, o.stats.peers, &args));
        }
    }
    if args.seeds == 1 {
        if let Some(o) = summaries.first() {
            println!(
                "seed {} trace_hash {:016x} peers {} layout {} calm {} events {} messages {} faults {} decisions {} established {} split_rounds {} clock_rewinds {} healed_at {:?} converged_after {:?} bound {:?}",
                o.seed,
                o.trace_hash,
                o.stats.peers,
                o.stats.layout,
                o.stats.calm,
                o.stats.events,
                o.stats.messages,
                o.stats.faults,
                o.stats.decisions,
                o.stats.established,
                o.stats.split_rounds,
                o.stats.clock_rewinds,
                o.stats.healed_at,
                o.stats.converged_after,
                o.stats.bound
            );
        }
    }
    println!(
        "events {} messages {} decisions {} decisions_rest_down {} established {} split_rounds {} clock_rewinds {} calm {} max_converge {:?} max_ratio_to_bound {:.3}",
        agg.events,
        agg.messages,
        agg.decisions,
        agg.decisions_rest_down,
        agg.established,
        agg.split_rounds,
        agg.clock_rewinds,
        agg.calm,
        agg.max_converge,
        agg.max_ratio
    );
    if let Some((seed, peers)) = agg.slowest_seed {
        println!(
            "slowest convergence (closest to the bound): {}",
            replay_line(seed, peers, &args)
        );
    }
    let n = summaries.len() as u64;
    let per_sec = n as f64 / elapsed.as_secs_f64().max(1e-9);
    println!("schedules {n} failures {failures} per_sec {per_sec:.1}");
    i32::from(failures > 0)
}

/// How often a run reports its progress on stderr.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// `--jobs` without a value: one worker per CPU.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How far a run of many schedules has come.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Schedules finished.
    pub done: u64,
    /// Schedules in the run.
    pub total: u64,
    /// Finished schedules with a violated invariant.
    pub failures: u64,
    /// Time since the run started.
    pub elapsed: Duration,
}

impl Progress {
    /// The stderr line: `sim: 4200/10000 schedules, 0 failures, 3512/s,
    /// about 2 s left`.
    pub fn line(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let rate = self.done as f64 / secs;
        let left = if rate > 0.0 {
            format!(
                ", about {:.0} s left",
                (self.total - self.done.min(self.total)) as f64 / rate
            )
        } else {
            String::new()
        };
        format!(
            "sim: {}/{} schedules, {} failures, {rate:.0}/s{left}",
            self.done, self.total, self.failures
        )
    }
}

/// Runs `count` schedules from seed `base` on `jobs` threads; results in
/// seed order.
pub fn run_many(
    base: u64,
    count: u64,
    jobs: usize,
    opts: &(dyn Fn(u64) -> SimOptions + Sync),
) -> Vec<Outcome> {
    run_many_with(base, count, jobs, opts, None)
}

/// [`run_many`], calling `progress.1` from the calling thread every
/// `progress.0` while schedules still run (never for a run that ends
/// sooner).
pub fn run_many_with(
    base: u64,
    count: u64,
    jobs: usize,
    opts: &(dyn Fn(u64) -> SimOptions + Sync),
    progress: Option<(Duration, &mut dyn FnMut(Progress))>,
) -> Vec<Outcome> {
    let jobs = jobs.max(1);
    let started = Instant::now();
    let done = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let running = AtomicUsize::new(jobs);
    let mut all: Vec<Outcome> = std::thread::scope(|s| {
        let (done, failures, running) = (&done, &failures, &running);
        let handles: Vec<_> = (0..jobs as u64)
            .map(|j| {
                s.spawn(move || {
                    let mut v = Vec::new();
                    let mut i = j;
                    while i < count {
                        let mut o = run(&opts(base.wrapping_add(i)));
                        // Keep results small: traces are re-run on demand.
                        o.trace = Vec::new();
                        if !o.violations.is_empty() {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                        v.push(o);
                        i += jobs as u64;
                    }
                    running.fetch_sub(1, Ordering::Release);
                    v
                })
            })
            .collect();
        if let Some((every, report)) = progress {
            let mut next = started + every;
            // Polls the workers every 20 ms (or every period, if shorter)
            // so a run ends without waiting out a reporting period;
            // reports once per period.
            let nap = every.min(Duration::from_millis(20));
            while running.load(Ordering::Acquire) > 0 {
                std::thread::sleep(nap);
                let now = Instant::now();
                if now >= next && running.load(Ordering::Acquire) > 0 {
                    report(Progress {
                        done: done.load(Ordering::Relaxed),
                        total: count,
                        failures: failures.load(Ordering::Relaxed),
                        elapsed: now - started,
                    });
                    next = now + every;
                }
            }
        }
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    all.sort_by_key(|o| o.seed.wrapping_sub(base));
    all
}

#[derive(Default)]
struct Aggregate {
    events: u64,
    messages: u64,
    decisions: u64,
    decisions_rest_down: u64,
    established: u64,
    split_rounds: u64,
    clock_rewinds: u64,
    calm: u64,
    max_converge: Duration,
    max_ratio: f64,
    slowest_seed: Option<(u64, usize)>,
}

impl Aggregate {
    fn add(&mut self, o: &Outcome) {
        self.events += o.stats.events;
        self.messages += o.stats.messages;
        self.decisions += o.stats.decisions;
        self.decisions_rest_down += o.stats.decisions_rest_down;
        self.established += o.stats.established;
        self.split_rounds += o.stats.split_rounds;
        self.clock_rewinds += o.stats.clock_rewinds;
        self.calm += u64::from(o.stats.calm);
        if let Some(c) = o.stats.converged_after {
            self.max_converge = self.max_converge.max(c);
            let r = c.as_secs_f64() / o.stats.bound.as_secs_f64().max(1e-9);
            if r > self.max_ratio {
                self.max_ratio = r;
                self.slowest_seed = Some((o.seed, o.stats.peers));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_ranges_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_peers("3..9"), Some((3, 9)));
        assert_eq!(parse_peers("5..=5"), Some((5, 5)));
        assert_eq!(parse_peers("7"), Some((7, 7)));
        assert_eq!(parse_peers("9..3"), None);
        assert_eq!(parse_peers("0..3"), None);
        assert_eq!(parse_peers("x"), None);
    }

    #[test]
    fn progress_line_and_default_jobs() {
        let p = Progress {
            done: 4200,
            total: 10_000,
            failures: 1,
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(
            p.line(),
            "sim: 4200/10000 schedules, 1 failures, 2100/s, about 3 s left"
        );
        assert!(default_jobs() >= 1);
    }

    #[test]
    fn progress_is_reported_while_schedules_run() {
        let opts = |seed: u64| SimOptions {
            seed,
            min_peers: 3,
            max_peers: 5,
            trace: false,
            bug: None,
            strict_clock: false,
        };
        let mut seen: Vec<Progress> = Vec::new();
        let mut report = |p: Progress| seen.push(p);
        // A period far shorter than the run: it must report, with counts
        // that only grow.
        let out = run_many_with(
            7,
            200,
            2,
            &opts,
            Some((Duration::from_millis(1), &mut report)),
        );
        assert_eq!(out.len(), 200);
        assert!(!seen.is_empty(), "no progress reported");
        assert!(seen.windows(2).all(|w| w[0].done <= w[1].done));
        assert!(seen.iter().all(|p| p.total == 200 && p.done <= 200));
    }

    #[test]
    fn replay_command_is_the_documented_one() {
        assert_eq!(
            replay_command(42, 5, None),
            "zkfle sim --seeds 1 --seed 42 --peers 5..5"
        );
    }
}
