//! The seeded election simulation (`zkfle::sim`): thousands of fault
//! schedules against the production `Fle`, determinism of a seed, and proof
//! that the invariants catch a broken vote order and a broken quorum check.

use std::collections::BTreeSet;
use std::process::Command;

use zkfle::sim::cli::{replay_command, run_many};
use zkfle::sim::{run, InjectedBug, Outcome, SimOptions};

/// CI runs `cargo test --release`: 10,000 schedules there. A debug build is
/// an order of magnitude slower, so it runs a tenth.
const SEEDS: u64 = if cfg!(debug_assertions) {
    1_000
} else {
    10_000
};
const BASE: u64 = 0x5eed_0000;

fn opts(seed: u64) -> SimOptions {
    SimOptions::new(seed)
}

fn failures(outcomes: &[Outcome], bug: Option<&str>) -> Vec<String> {
    outcomes
        .iter()
        .filter(|o| !o.violations.is_empty())
        .map(|o| {
            format!(
                "{}\n  replay: {}",
                o.violations[0],
                replay_command(o.seed, o.stats.peers, bug)
            )
        })
        .collect()
}

#[test]
fn ten_thousand_mixed_schedules_keep_every_invariant() {
    let outcomes = run_many(BASE, SEEDS, 2, &opts);
    assert_eq!(outcomes.len() as u64, SEEDS);
    let failed = failures(&outcomes, None);
    assert!(
        failed.is_empty(),
        "{} of {SEEDS} schedules broke an invariant; first ones:\n{}",
        failed.len(),
        failed
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The schedules must actually cover what they claim to.
    let sizes: BTreeSet<usize> = outcomes.iter().map(|o| o.stats.peers).collect();
    assert_eq!(sizes, (3..=9).collect(), "every ensemble size 3..9 ran");
    let layouts: BTreeSet<&str> = outcomes.iter().map(|o| o.stats.layout).collect();
    assert_eq!(
        layouts,
        BTreeSet::from(["hierarchical", "majority", "majority+observers"])
    );
    let calm = outcomes.iter().filter(|o| o.stats.calm).count();
    assert!(
        calm > 0 && calm < outcomes.len(),
        "both calm and faulty schedules"
    );
    let faults: u64 = outcomes.iter().map(|o| o.stats.faults).sum();
    let established: u64 = outcomes.iter().map(|o| o.stats.established).sum();
    let splits: u64 = outcomes.iter().map(|o| o.stats.split_rounds).sum();
    assert!(faults > SEEDS, "faults were injected ({faults})");
    assert!(established >= SEEDS, "every schedule established an epoch");
    assert!(
        splits > 0,
        "faults produced split rounds, so agreement was really tested"
    );
    assert!(
        outcomes.iter().all(|o| o.stats.converged_after.is_some()),
        "every schedule converged after its heal"
    );
    let rest_down: u64 = outcomes.iter().map(|o| o.stats.decisions_rest_down).sum();
    assert!(
        rest_down * 20 > SEEDS,
        "fast_decide rule (b) fired often enough for down_voters_were_cut to mean something ({rest_down})"
    );
}

#[test]
fn same_seed_same_trace_and_a_narrowed_range_replays_it() {
    for seed in [1u64, 7, 42, 1234, 99_999] {
        let a = run(&opts(seed));
        let b = run(&opts(seed));
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
        assert_eq!(a.stats.events, b.stats.events, "seed {seed}");
        // With a trace the hash is the same and the text is identical.
        let mut t = opts(seed);
        t.trace = true;
        let c = run(&t);
        let d = run(&t);
        assert_eq!(
            c.trace_hash, a.trace_hash,
            "tracing must not change the run"
        );
        assert!(!c.trace.is_empty());
        assert_eq!(c.trace, d.trace, "seed {seed}");
        // The printed replay command narrows --peers to N..N: same schedule.
        let n = a.stats.peers;
        let mut narrow = opts(seed);
        narrow.min_peers = n;
        narrow.max_peers = n;
        assert_eq!(
            run(&narrow).trace_hash,
            a.trace_hash,
            "seed {seed} at {n}..{n}"
        );
    }
    let hashes: BTreeSet<u64> = (0..50).map(|s| run(&opts(s)).trace_hash).collect();
    assert_eq!(hashes.len(), 50, "different seeds give different schedules");
}

fn with_bug(bug: InjectedBug) -> impl Fn(u64) -> SimOptions + Sync {
    move |seed| {
        let mut o = SimOptions::new(seed);
        o.bug = Some(bug);
        o
    }
}

#[test]
fn a_broken_vote_order_is_caught() {
    let outcomes = run_many(BASE, 300, 2, &with_bug(InjectedBug::InvertedZxidOrder));
    let caught: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !o.violations.is_empty())
        .collect();
    let by_order = caught
        .iter()
        .filter(|o| o.violations[0].invariant == "decision_not_beaten")
        .count();
    assert!(
        by_order * 2 > outcomes.len(),
        "an order preferring shorter logs must break decision_not_beaten in most schedules, got {by_order} of {}",
        outcomes.len()
    );
    // Whatever else fires is one of the properties a wrong order breaks.
    for o in &caught {
        assert!(
            ["decision_not_beaten", "calm_round_agrees"].contains(&o.violations[0].invariant),
            "seed {}: {}",
            o.seed,
            o.violations[0]
        );
    }
}

#[test]
fn a_broken_quorum_check_is_caught() {
    let outcomes = run_many(BASE, 300, 2, &with_bug(InjectedBug::SelfQuorum));
    let by_quorum = outcomes
        .iter()
        .filter(|o| {
            o.violations
                .first()
                .is_some_and(|v| v.invariant == "decision_has_quorum")
        })
        .count();
    assert!(
        by_quorum * 2 > outcomes.len(),
        "a voter that is a quorum on its own must break decision_has_quorum in most schedules, got {by_quorum} of {}",
        outcomes.len()
    );
}

/// The election driver counting voters whose link is up as Down lets rule
/// (b) stop waiting for voters that can still reach the decider:
/// `down_voters_were_cut` catches it first in most schedules (seeds
/// 0x5eed0000..+300), and whatever else fires is something that bug breaks.
#[test]
fn an_eager_down_driver_is_caught() {
    let outcomes = run_many(BASE, 300, 2, &with_bug(InjectedBug::EagerDown));
    let caught: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !o.violations.is_empty())
        .collect();
    let by_down = caught
        .iter()
        .filter(|o| o.violations[0].invariant == "down_voters_were_cut")
        .count();
    assert!(
        by_down * 2 > outcomes.len(),
        "a driver reporting live links Down must break down_voters_were_cut in most schedules, got {by_down} of {}",
        outcomes.len()
    );
    for o in &caught {
        assert!(
            [
                "down_voters_were_cut",
                "calm_round_agrees",
                "converges_after_heal"
            ]
            .contains(&o.violations[0].invariant),
            "seed {}: {}",
            o.seed,
            o.violations[0]
        );
    }
}

#[test]
fn the_cli_prints_a_replay_command_that_reproduces_the_failure() {
    let bin = env!("CARGO_BIN_EXE_zkfle");
    let ok = Command::new(bin)
        .args(["sim", "--seeds", "20", "--seed", "11", "--peers", "3..5"])
        .output()
        .expect("run zkfle sim");
    let stdout = String::from_utf8_lossy(&ok.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(ok.status.success(), "clean run must pass: {stdout}");
    assert!(
        last.starts_with("schedules 20 failures 0 per_sec "),
        "last line: {last:?}"
    );

    let bad = Command::new(bin)
        .args([
            "sim",
            "--seeds",
            "30",
            "--seed",
            "11",
            "--inject",
            "self-quorum",
        ])
        .output()
        .expect("run zkfle sim");
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "failures exit 1: {stdout}");
    let fail_line = stdout
        .lines()
        .find(|l| l.starts_with("FAIL seed "))
        .expect("a FAIL line");
    let replay = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: "))
        .expect("a replay line");
    assert!(
        replay.starts_with("zkfle sim --seeds 1 --seed ") && replay.contains(" --peers "),
        "{replay}"
    );
    let args: Vec<&str> = replay.split_whitespace().skip(1).collect();
    let again = Command::new(bin).args(&args).output().expect("replay");
    let again_out = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        again_out.lines().any(|l| l == fail_line),
        "the replay must fail the same way:\n{fail_line}\n---\n{again_out}"
    );
    assert!(again_out
        .lines()
        .last()
        .unwrap_or_default()
        .starts_with("schedules 1 failures 1 per_sec "));
}

#[test]
fn bad_arguments_exit_2() {
    let bin = env!("CARGO_BIN_EXE_zkfle");
    for args in [
        ["sim", "--peers", "9..3"].as_slice(),
        ["sim", "--inject", "nonsense"].as_slice(),
    ] {
        let out = Command::new(bin).args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
