//! `zkfle sim --seeds N [--seed S] [--peers MIN..MAX] [--store] [--stats]
//! [--inject NAME]`: runs seeded schedules and prints, for each failing
//! one, the single command that replays it. With `--stats`, `key value`
//! lines summed over the schedules come before the last line, which is
//! always `schedules <n> failures <f> per_sec <x>`. A soak run is just a
//! large `--seeds`: it reports its progress on stderr about once a second,
//! and runs on every CPU unless `--jobs` says otherwise.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;

use super::world::{run, InjectedBug, Outcome, SimOptions, Stats};

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
    /// Wrap the protocol core in a deliberate bug to see the invariants
    /// catch it: `inverted-order` (vote order prefers the shorter log),
    /// `self-quorum` (one voter's quorum check accepts itself alone),
    /// `eager-down` (the connection layer makes drivers count voters whose
    /// link is up as Down), `ack-before-persist` (learners' disks report
    /// epoch writes durable before they are), `serve-without-quorum` (the
    /// network forges NEWLEADER ACKs); with `--store` also
    /// `epoch-before-sync` (a learner's currentEpoch moves before its log
    /// holds the leader's history), `ack-before-durable` (disks report log
    /// appends durable before they are) and `stale-read` (a leader answers
    /// reads without the read barrier).
    #[arg(long)]
    pub inject: Option<String>,
    /// Replicate a log through Zab with a key-value state machine on every
    /// peer and clients whose histories are checked for linearizability.
    #[arg(long)]
    pub store: bool,
    /// Print `key value` counters summed over the schedules before the
    /// last line.
    #[arg(long)]
    pub stats: bool,
    /// With `--store`: check only what clients can see (linearizability,
    /// no acknowledged write lost) and liveness, to show those catch the
    /// store bugs without the protocol-level invariants.
    #[arg(long)]
    pub end_to_end: bool,
    /// Run a named scenario instead of random schedules: a ZooKeeper
    /// ticket's fault schedule (`ZOOKEEPER-4643`, ...; `all` runs each).
    /// `--inject` and `--trace` apply.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Check that logical clocks never go backwards with no exception, not
    /// even ZooKeeper's out-of-election join (which sets the clock to the
    /// ensemble's round): shows why the exception is documented.
    #[arg(long)]
    pub strict_clock: bool,
    /// Established leaders resign now and then (`PeerHandle::resign`), with
    /// random hold-offs; checks that a resigned peer is never elected
    /// during its hold-off and only votes for a history at least its own
    /// (`--inject resign-stands` breaks the first, `--inject resign-no-floor` the second).
    #[arg(long)]
    pub resign: bool,
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
    if args.store {
        c.push_str(" --store");
    }
    if args.end_to_end {
        c.push_str(" --end-to-end");
    }
    if args.strict_clock {
        c.push_str(" --strict-clock");
    }
    if args.resign {
        c.push_str(" --resign");
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
            Some(b) if b.needs_store() && !args.store => {
                eprintln!("zkfle sim: --inject {name} needs --store");
                return 2;
            }
            Some(b) => Some(b),
            None => {
                let names: Vec<&str> = InjectedBug::ALL.iter().map(|(n, _)| *n).collect();
                eprintln!(
                    "zkfle sim: --inject must be one of {}, got {name:?}",
                    names.join(", ")
                );
                return 2;
            }
        },
    };
    if let Some(name) = args.scenario.as_deref() {
        return run_scenarios(name, bug, &args);
    }
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
        store: args.store,
        end_to_end_only: args.end_to_end,
        resign: args.resign,
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
    if args.stats {
        for (k, v) in agg.lines(args.store) {
            println!("{k} {v}");
        }
    } else {
        println!(
            "events {} messages {} packets {} decisions {} decisions_rest_down {} established {} split_rounds {} clock_rewinds {} calm {} max_converge {:?} max_ratio_to_bound {:.3}",
            agg.s.events,
            agg.s.messages,
            agg.s.packets,
            agg.s.decisions,
            agg.s.decisions_rest_down,
            agg.s.established,
            agg.s.split_rounds,
            agg.s.clock_rewinds,
            agg.calm,
            agg.max_converge,
            agg.max_ratio
        );
    }
    if let Some((seed, peers)) = agg.slowest_seed {
        if args.stats {
            println!("slowest_seed {seed}");
        } else {
            println!(
                "slowest convergence (closest to the bound): {}",
                replay_line(seed, peers, &args)
            );
        }
    }
    let n = summaries.len() as u64;
    let per_sec = n as f64 / elapsed.as_secs_f64().max(1e-9);
    println!("schedules {n} failures {failures} per_sec {per_sec:.1}");
    i32::from(failures > 0)
}

/// `--scenario NAME|all`: runs named scenarios, one result line each, and
/// the usual last line.
fn run_scenarios(name: &str, bug: Option<InjectedBug>, args: &SimArgs) -> i32 {
    let names: Vec<&str> = if name == "all" {
        super::scenarios::NAMES.to_vec()
    } else {
        vec![name]
    };
    let started = Instant::now();
    let mut failures = 0u64;
    for n in &names {
        let Some(r) = super::scenarios::run(n, bug, args.end_to_end, args.trace) else {
            let known = super::scenarios::NAMES.join(", ");
            eprintln!("zkfle sim: unknown scenario {n:?} (known: {known}, all)");
            return 2;
        };
        for line in &r.outcome.trace {
            println!("{line}");
        }
        let steps: Vec<&str> = r.fired.iter().map(|(s, _)| *s).collect();
        match r.outcome.violations.first() {
            None => println!(
                "PASS {n}: {} steps, writes_acked {} reads_checked {}",
                steps.len(),
                r.outcome.stats.writes_acked,
                r.outcome.stats.reads_checked
            ),
            Some(v) => {
                failures += 1;
                println!("FAIL {n}: {v}");
                println!("  steps fired: {steps:?}");
            }
        }
    }
    let n = names.len() as u64;
    let per_sec = n as f64 / started.elapsed().as_secs_f64().max(1e-9);
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

/// Counters summed over many schedules.
#[derive(Default)]
struct Aggregate {
    s: Stats,
    calm: u64,
    max_converge: Duration,
    max_ratio: f64,
    slowest_seed: Option<(u64, usize)>,
}

impl Aggregate {
    fn add(&mut self, o: &Outcome) {
        let (a, b) = (&mut self.s, &o.stats);
        a.events += b.events;
        a.messages += b.messages;
        a.packets += b.packets;
        a.faults += b.faults;
        a.decisions += b.decisions;
        a.decisions_fast_all += b.decisions_fast_all;
        a.decisions_rest_down += b.decisions_rest_down;
        a.decisions_finalize += b.decisions_finalize;
        a.established += b.established;
        a.leader_crashes += b.leader_crashes;
        a.leader_pauses += b.leader_pauses;
        a.pauses += b.pauses;
        a.crashes += b.crashes;
        a.partitions += b.partitions;
        a.restarts += b.restarts;
        a.resignations += b.resignations;
        a.split_rounds += b.split_rounds;
        a.epoch_rejections += b.epoch_rejections;
        a.rounds_untouched += b.rounds_untouched;
        a.clock_rewinds += b.clock_rewinds;
        a.writes_acked += b.writes_acked;
        a.writes_unknown += b.writes_unknown;
        a.reads_checked += b.reads_checked;
        a.keys_undecided += b.keys_undecided;
        a.snapshots_installed += b.snapshots_installed;
        a.truncations += b.truncations;
        self.calm += u64::from(b.calm);
        if let Some(c) = b.converged_after {
            self.max_converge = self.max_converge.max(c);
            let r = c.as_secs_f64() / b.bound.as_secs_f64().max(1e-9);
            if r > self.max_ratio {
                self.max_ratio = r;
                self.slowest_seed = Some((o.seed, b.peers));
            }
        }
    }

    /// The `--stats` lines, in a fixed order.
    fn lines(&self, store: bool) -> Vec<(&'static str, String)> {
        let s = &self.s;
        let mut v = vec![
            ("decisions", s.decisions.to_string()),
            ("decisions_fast_all", s.decisions_fast_all.to_string()),
            ("decisions_fast_down", s.decisions_rest_down.to_string()),
            ("decisions_finalize", s.decisions_finalize.to_string()),
            ("epochs_established", s.established.to_string()),
            ("faults", s.faults.to_string()),
            ("crashes", s.crashes.to_string()),
            ("leader_crashes", s.leader_crashes.to_string()),
            ("pauses", s.pauses.to_string()),
            ("leader_pauses", s.leader_pauses.to_string()),
            ("partitions", s.partitions.to_string()),
            ("restarts", s.restarts.to_string()),
            ("resignations", s.resignations.to_string()),
            ("split_rounds", s.split_rounds.to_string()),
            ("epoch_rejections", s.epoch_rejections.to_string()),
            ("rounds_untouched", s.rounds_untouched.to_string()),
            ("clock_rewinds", s.clock_rewinds.to_string()),
            ("calm_schedules", self.calm.to_string()),
            ("events", s.events.to_string()),
            ("messages", s.messages.to_string()),
            ("packets", s.packets.to_string()),
            ("max_converge_ms", self.max_converge.as_millis().to_string()),
            ("max_ratio_to_bound", format!("{:.3}", self.max_ratio)),
        ];
        if store {
            v.extend([
                ("writes_acked", s.writes_acked.to_string()),
                ("writes_unknown", s.writes_unknown.to_string()),
                ("reads_checked", s.reads_checked.to_string()),
                ("keys_undecided", s.keys_undecided.to_string()),
                ("snapshots_installed", s.snapshots_installed.to_string()),
                ("truncations", s.truncations.to_string()),
            ]);
        }
        v
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
            store: false,
            end_to_end_only: false,
            resign: false,
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
