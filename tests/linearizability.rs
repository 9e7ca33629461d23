//! The key-value linearizability checker on known histories: linearizable
//! ones (overlapping writes and reads, unknown-outcome writes that did or
//! did not happen) must pass, non-linearizable ones (stale reads, values
//! never written, read orders no serialization allows) must fail, and
//! budgets must end in "undecided". Proptests: histories generated from a
//! sequential execution with random overlap always pass; a strictly
//! sequential one with one read altered always fails.

use proptest::prelude::*;
use zkfle::sim::linearizability::{
    check, CheckOptions, HistoryError, KeyVerdict, Op, OpKind, Verdict,
};

type H = Vec<Op<&'static str, u32>>;

fn verdict(h: &H) -> Verdict {
    check(h, CheckOptions::default()).unwrap().verdict()
}

/// Asserts linearizable and that the witness order is legal: it respects
/// real time and the register.
fn assert_linearizable(h: &H) {
    let r = check(h, CheckOptions::default()).unwrap();
    assert_eq!(r.verdict(), Verdict::Linearizable, "{r:?}");
    for k in &r.keys {
        let KeyVerdict::Linearizable { order } = &k.verdict else {
            unreachable!()
        };
        let mut value = None;
        for (pos, &i) in order.iter().enumerate() {
            match &h[i].kind {
                OpKind::Write(v) => value = Some(*v),
                OpKind::Read(r) => assert_eq!(*r, value, "witness read #{i}"),
            }
            for &j in &order[pos + 1..] {
                if let Some(resp) = h[j].response {
                    assert!(
                        resp >= h[i].invoke,
                        "witness puts #{i} after #{j}, which returned before #{i} began"
                    );
                }
            }
        }
    }
}

fn assert_not_linearizable(h: &H) -> String {
    let r = check(h, CheckOptions::default()).unwrap();
    assert_eq!(r.verdict(), Verdict::NotLinearizable, "{r:?}");
    r.violation().unwrap().1.reason.clone()
}

// ---- linearizable ------------------------------------------------------

#[test]
fn sequential_writes_and_reads() {
    assert_linearizable(&vec![
        Op::read(0, "k", None, 0, 1),
        Op::write(0, "k", 1, 2, 3),
        Op::read(1, "k", Some(1), 4, 5),
        Op::write(1, "k", 2, 6, 7),
        Op::read(0, "k", Some(2), 8, 9),
    ]);
}

#[test]
fn a_read_overlapping_a_write_may_see_either_value() {
    for seen in [Some(1), Some(2)] {
        assert_linearizable(&vec![
            Op::write(0, "k", 1, 0, 1),
            Op::write(0, "k", 2, 10, 20),
            Op::read(1, "k", seen, 12, 15),
        ]);
    }
}

#[test]
fn overlapping_writes_may_take_effect_in_either_order() {
    // w1 [0,10] and w2 [5,15] overlap: a later read may see either, but
    // two later reads must agree.
    for last in [1, 2] {
        assert_linearizable(&vec![
            Op::write(0, "k", 1, 0, 10),
            Op::write(1, "k", 2, 5, 15),
            Op::read(2, "k", Some(last), 20, 21),
            Op::read(3, "k", Some(last), 22, 23),
        ]);
    }
}

#[test]
fn concurrent_reads_may_straddle_a_write() {
    // Reads overlapping the write: one before its effect, one after.
    assert_linearizable(&vec![
        Op::write(0, "k", 1, 0, 1),
        Op::write(0, "k", 2, 10, 40),
        Op::read(1, "k", Some(2), 12, 20),
        Op::read(2, "k", Some(1), 15, 30),
    ]);
}

#[test]
fn equal_times_count_as_overlapping() {
    // The write answered at 5 and the read began at 5: the read may come
    // first.
    assert_linearizable(&vec![
        Op::write(0, "k", 1, 0, 5),
        Op::read(1, "k", None, 5, 6),
    ]);
}

#[test]
fn an_unknown_write_that_took_effect_late() {
    // The timed-out write is invisible at 50 and visible at 100: it took
    // effect in between, long after its invocation.
    assert_linearizable(&vec![
        Op::write(0, "k", 1, 0, 1),
        Op::write_unknown(1, "k", 2, 10),
        Op::read(2, "k", Some(1), 50, 51),
        Op::read(2, "k", Some(2), 100, 101),
    ]);
}

#[test]
fn an_unknown_write_that_never_happened() {
    assert_linearizable(&vec![
        Op::write(0, "k", 1, 0, 1),
        Op::write_unknown(1, "k", 2, 10),
        Op::read(2, "k", Some(1), 50, 51),
        Op::read(2, "k", Some(1), 100, 101),
    ]);
}

#[test]
fn a_read_without_a_response_is_ignored() {
    let h = vec![
        Op::write(0, "k", 1, 0, 1),
        Op {
            client: 1,
            key: "k",
            kind: OpKind::Read(Some(99)),
            invoke: 2,
            response: None,
        },
    ];
    let r = check(&h, CheckOptions::default()).unwrap();
    assert_eq!(r.verdict(), Verdict::Linearizable);
    assert_eq!(r.keys[0].ops, 1);
}

#[test]
fn keys_are_independent() {
    // On one register this would be a stale read; on two keys it is fine.
    assert_linearizable(&vec![
        Op::write(0, "a", 1, 0, 1),
        Op::write(0, "b", 2, 2, 3),
        Op::read(1, "a", Some(1), 4, 5),
        Op::read(1, "b", Some(2), 4, 5),
    ]);
}

// ---- not linearizable --------------------------------------------------

#[test]
fn a_stale_read_after_a_completed_write() {
    let why = assert_not_linearizable(&vec![
        Op::write(0, "k", 1, 0, 5),
        Op::write(0, "k", 2, 6, 10),
        Op::read(1, "k", Some(1), 11, 12),
    ]);
    assert!(why.contains("op #2"), "{why}");
}

#[test]
fn not_found_after_a_completed_write() {
    assert_not_linearizable(&vec![
        Op::write(0, "k", 1, 0, 5),
        Op::read(1, "k", None, 6, 7),
    ]);
}

#[test]
fn a_read_of_a_value_never_written() {
    let why = assert_not_linearizable(&vec![
        Op::write(0, "k", 1, 0, 5),
        Op::read(1, "k", Some(7), 6, 7),
    ]);
    assert!(why.contains("never written"), "{why}");
    // Written to another key does not count.
    assert_not_linearizable(&vec![
        Op::write(0, "other", 7, 0, 5),
        Op::read(1, "k", Some(7), 6, 7),
    ]);
}

#[test]
fn a_read_of_a_value_before_its_write_began() {
    assert_not_linearizable(&vec![
        Op::read(1, "k", Some(1), 0, 2),
        Op::write(0, "k", 1, 3, 4),
    ]);
    // Unknown-outcome writes too: they can only take effect after invocation.
    assert_not_linearizable(&vec![
        Op::read(1, "k", Some(1), 0, 2),
        Op::write_unknown(0, "k", 1, 3),
    ]);
}

#[test]
fn reads_that_see_values_in_an_order_no_serialization_allows() {
    // Two overlapping writes; one client sees 1 then 2, another 2 then 1,
    // all reads after both writes began and in real-time order.
    assert_not_linearizable(&vec![
        Op::write(0, "k", 1, 0, 100),
        Op::write(1, "k", 2, 0, 100),
        Op::read(2, "k", Some(1), 10, 20),
        Op::read(2, "k", Some(2), 30, 40),
        Op::read(3, "k", Some(2), 10, 20),
        Op::read(3, "k", Some(1), 30, 40),
    ]);
    // A value coming back after it was overwritten: 1, 2, 1 with one write
    // of each.
    assert_not_linearizable(&vec![
        Op::write(0, "k", 1, 0, 100),
        Op::write(1, "k", 2, 0, 100),
        Op::read(2, "k", Some(1), 10, 20),
        Op::read(3, "k", Some(2), 30, 40),
        Op::read(2, "k", Some(1), 50, 60),
    ]);
}

#[test]
fn an_unknown_write_cannot_be_undone() {
    // Once a read saw the unknown write's value, a later read cannot see
    // the older value again.
    assert_not_linearizable(&vec![
        Op::write(0, "k", 1, 0, 1),
        Op::write_unknown(1, "k", 2, 10),
        Op::read(2, "k", Some(2), 50, 51),
        Op::read(2, "k", Some(1), 100, 101),
    ]);
}

#[test]
fn one_bad_key_fails_the_history_and_is_named() {
    let h = vec![
        Op::write(0, "a", 1, 0, 1),
        Op::read(0, "a", Some(1), 2, 3),
        Op::write(0, "b", 1, 0, 1),
        Op::write(0, "b", 2, 2, 3),
        Op::read(0, "b", Some(1), 4, 5),
    ];
    let r = check(&h, CheckOptions::default()).unwrap();
    assert_eq!(r.verdict(), Verdict::NotLinearizable);
    let (key, v) = r.violation().unwrap();
    assert_eq!(*key, "b");
    assert_eq!(v.blocked, 4);
    assert!(matches!(r.keys[0].verdict, KeyVerdict::Linearizable { .. }));
}

// ---- budgets and malformed input ---------------------------------------

/// Many concurrent writes of distinct values and reads that all overlap:
/// a wide search.
fn wide(n: u32) -> H {
    let mut h = Vec::new();
    for i in 0..n {
        h.push(Op::write(i as u64, "k", i, 0, 1000));
        h.push(Op::read(100 + i as u64, "k", Some((i * 7) % n), 0, 1000));
    }
    h
}

#[test]
fn an_exhausted_budget_is_undecided_never_a_verdict() {
    let tight = CheckOptions {
        max_steps_per_key: 10,
    };
    // Linearizable (every read's value is written by an overlapping write).
    let good = wide(6);
    assert_eq!(check(&good, tight).unwrap().verdict(), Verdict::Undecided);
    let full = check(&good, CheckOptions::default()).unwrap();
    assert_eq!(full.verdict(), Verdict::Linearizable);
    assert!(full.steps() > 10, "the budget did cut the search short");
    // Not linearizable (not found after every write completed): the tight
    // budget must not turn that into a pass either.
    let mut bad = wide(6);
    bad.push(Op::read(9, "k", None, 2000, 2001));
    assert_eq!(check(&bad, tight).unwrap().verdict(), Verdict::Undecided);
    assert_eq!(verdict(&bad), Verdict::NotLinearizable);
    // A wide history of 14 concurrent writes and 14 reads is beyond the
    // default budget: it ends, undecided, instead of running for hours.
    let r = check(&wide(14), CheckOptions::default()).unwrap();
    assert_eq!(r.verdict(), Verdict::Undecided);
    assert_eq!(r.steps(), CheckOptions::default().max_steps_per_key);
}

#[test]
fn undecided_never_hides_a_violation_on_another_key() {
    let mut h = wide(14);
    h.push(Op::write(0, "z", 1, 0, 1));
    h.push(Op::read(0, "z", None, 2, 3));
    let r = check(
        &h,
        CheckOptions {
            max_steps_per_key: 50,
        },
    )
    .unwrap();
    assert_eq!(r.verdict(), Verdict::NotLinearizable);
}

#[test]
fn a_response_before_the_invocation_is_a_history_error() {
    let h: H = vec![Op::write(0, "k", 1, 5, 4)];
    assert_eq!(
        check(&h, CheckOptions::default()),
        Err(HistoryError::ResponseBeforeInvoke {
            index: 0,
            invoke: 5,
            response: 4
        })
    );
}

// ---- generated histories -------------------------------------------------

#[derive(Clone, Debug)]
struct Gen {
    key: u8,
    write: bool,
    before: u64,
    after: u64,
    /// 0: answered; 1: write outcome unknown (it happened); 2: read never
    /// answered.
    fate: u8,
}

fn gen() -> impl Strategy<Value = Gen> {
    (
        0u8..3,
        any::<bool>(),
        0u64..40,
        0u64..40,
        prop::sample::select(vec![0u8, 0, 0, 0, 1, 2]),
    )
        .prop_map(|(key, write, before, after, fate)| Gen {
            key,
            write,
            before,
            after,
            fate,
        })
}

const KEYS: [&str; 3] = ["a", "b", "c"];

/// Executes `ops` sequentially on registers, op i taking effect at time
/// 10 * (i + 1), and stretches each op's interval around that point by the
/// generated amounts: the effect points are a valid linearization, so the
/// history is linearizable. Also adds unknown-outcome writes that never
/// happened (values nobody reads).
fn history(ops: &[Gen], overlap: bool, phantoms: &[(u8, u64)]) -> H {
    let mut regs = [None; 3];
    let mut h = Vec::new();
    for (i, g) in ops.iter().enumerate() {
        let at = 10 * (i as u64 + 1);
        let (lo, hi) = if overlap {
            (at - g.before.min(at), at + g.after)
        } else {
            (at, at)
        };
        let key = KEYS[g.key as usize];
        let client = i as u64;
        if g.write {
            let value = i as u32 + 1;
            regs[g.key as usize] = Some(value);
            h.push(match g.fate {
                1 => Op::write_unknown(client, key, value, lo),
                _ => Op::write(client, key, value, lo, hi),
            });
        } else {
            let mut op = Op::read(client, key, regs[g.key as usize], lo, hi);
            if g.fate == 2 {
                op.response = None;
            }
            h.push(op);
        }
    }
    for (j, &(key, at)) in phantoms.iter().enumerate() {
        h.push(Op::write_unknown(
            1000 + j as u64,
            KEYS[key as usize],
            100_000 + j as u32,
            at,
        ));
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn histories_from_a_sequential_execution_are_linearizable(
        ops in prop::collection::vec(gen(), 0..60),
        phantoms in prop::collection::vec((0u8..3, 0u64..700), 0..4),
    ) {
        let h = history(&ops, true, &phantoms);
        let r = check(&h, CheckOptions::default()).unwrap();
        prop_assert_eq!(r.verdict(), Verdict::Linearizable, "{:?}", r.violation());
    }

    #[test]
    fn a_sequential_history_with_one_read_altered_is_not_linearizable(
        ops in prop::collection::vec(gen(), 1..40),
        pick in any::<prop::sample::Index>(),
        to in 0u32..50,
    ) {
        // Answered writes only: an unknown write may take effect late, and
        // then the sequential order is not the only legal one.
        let ops: Vec<Gen> = ops
            .into_iter()
            .map(|g| Gen { fate: if g.fate == 1 { 0 } else { g.fate }, ..g })
            .collect();
        let mut h = history(&ops, false, &[]);
        // Only answered reads constrain anything.
        let reads: Vec<usize> = (0..h.len())
            .filter(|&i| matches!(h[i].kind, OpKind::Read(_)) && h[i].response.is_some())
            .collect();
        prop_assume!(!reads.is_empty());
        let i = reads[pick.index(reads.len())];
        let OpKind::Read(old) = h[i].kind else { unreachable!() };
        let new = if to == 0 { None } else { Some(to) };
        prop_assume!(new != old);
        h[i].kind = OpKind::Read(new);
        let r = check(&h, CheckOptions::default()).unwrap();
        prop_assert_eq!(r.verdict(), Verdict::NotLinearizable);
    }
}
