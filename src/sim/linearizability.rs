//! A linearizability checker for key-value histories (issue 14 item 6):
//! the simulator records what its clients saw and asks whether some
//! sequential execution of a register per key explains it.
//!
//! # Model
//! Each key is an independent register, initially *not found*. `Write(v)`
//! sets it; `Read` returns its value (`None` = not found). A history is a
//! list of [`Op`]s, each with the client that issued it, its invocation
//! time and, if it answered, its response time (virtual time in any
//! monotonic unit, e.g. the simulator's ticks or nanoseconds).
//!
//! - Operation A precedes B in real time iff A's response is *strictly*
//!   before B's invocation; equal times count as overlapping (the checker
//!   never demands an order the clock cannot prove).
//! - A write whose outcome is unknown (`response: None`: it timed out, the
//!   connection dropped) may have taken effect at any point after its
//!   invocation, or never: it is treated as responding after everything
//!   else, so it can be placed anywhere after its invocation, and placing it
//!   last is the same as "it never happened".
//! - A read without a response constrains nothing and is ignored.
//!
//! # Algorithm
//! Wing & Gong's search with Lowe's memoisation, as in Porcupine: walk the
//! invocation/response events in time order; at an invocation try to
//! linearize that operation next (if the register model accepts it and the
//! pair (set of linearized ops, register value) was not explored before);
//! at a response whose operation is not linearized yet, backtrack. By
//! P-compositionality (linearizability is local, Herlihy & Wing) each key
//! is checked on its own, which keeps the search small.
//!
//! The search is exponential in the worst case, so each key has a step
//! budget ([`CheckOptions::max_steps_per_key`]): a key that exhausts it is
//! [`KeyVerdict::Undecided`], never a hang and never a false verdict.
//!
//! # Why not stateright's tester
//! stateright 0.31's `LinearizabilityTester` was evaluated: it records
//! invoke/return events per thread (at most one operation in flight per
//! thread, so a client that timed out could not go on), searches without
//! memoisation or a budget, and the crate pulls in an HTTP explorer
//! (`tiny_http`), `serde_json`, `rand`, `dashmap` and more. A purpose-built
//! checker is ~400 lines and gives budgets, unknown outcomes and
//! explanations.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;

/// What an operation did.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OpKind<V> {
    /// Set the key to the value.
    Write(V),
    /// A read and what it returned (`None` = not found). Ignored if the op
    /// has no response.
    Read(Option<V>),
}

/// One client operation on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op<K, V> {
    /// The client that issued it (for explanations; the model does not need
    /// it: a client's ops are ordered by their times like anyone's).
    pub client: u64,
    /// The key.
    pub key: K,
    /// Write or read (with its result).
    pub kind: OpKind<V>,
    /// When the client sent it.
    pub invoke: u64,
    /// When the client got the answer; `None` if it never did (outcome
    /// unknown).
    pub response: Option<u64>,
}

impl<K, V> Op<K, V> {
    /// An acknowledged write.
    pub fn write(client: u64, key: K, value: V, invoke: u64, response: u64) -> Op<K, V> {
        Op {
            client,
            key,
            kind: OpKind::Write(value),
            invoke,
            response: Some(response),
        }
    }

    /// A write whose outcome is unknown (timed out, connection lost).
    pub fn write_unknown(client: u64, key: K, value: V, invoke: u64) -> Op<K, V> {
        Op {
            client,
            key,
            kind: OpKind::Write(value),
            invoke,
            response: None,
        }
    }

    /// A read that returned `result` (`None` = not found).
    pub fn read(client: u64, key: K, result: Option<V>, invoke: u64, response: u64) -> Op<K, V> {
        Op {
            client,
            key,
            kind: OpKind::Read(result),
            invoke,
            response: Some(response),
        }
    }
}

/// A malformed history (a recording bug, not a linearizability verdict).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// An operation answered before it was sent.
    #[error("op #{index} responds at {response}, before its invocation at {invoke}")]
    ResponseBeforeInvoke {
        /// Index in the history.
        index: usize,
        /// Its invocation time.
        invoke: u64,
        /// Its response time.
        response: u64,
    },
}

/// Search bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// Most search steps (attempts to linearize an op) for one key before
    /// it is declared undecided. It also bounds memory: each step stores at
    /// most one memo entry of about `ops / 8 + 48` bytes (plus the value),
    /// freed when the key is done.
    pub max_steps_per_key: u64,
}

impl Default for CheckOptions {
    /// One million steps per key: exhausting it took 0.4 s in a debug build
    /// here (`tests/linearizability.rs`, 28 concurrent ops) and at most
    /// ~200 MB of memo for a key with 1,000 operations; histories of a few
    /// hundred mostly sequential operations per key need far fewer steps.
    fn default() -> Self {
        CheckOptions {
            max_steps_per_key: 1_000_000,
        }
    }
}

/// Why a key's history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Operator-readable explanation.
    pub reason: String,
    /// The longest order (history indices) the search could build before
    /// it got stuck.
    pub longest: Vec<usize>,
    /// The op (history index) that could not be placed: its response came
    /// while it was still unplaceable (or a read of a value never written).
    pub blocked: usize,
}

/// The outcome for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    /// A witness order (history indices; ignored reads are absent).
    Linearizable {
        /// The operations in a legal sequential order.
        order: Vec<usize>,
    },
    /// No sequential order explains the key's history.
    NotLinearizable(Violation),
    /// The step budget ran out first.
    Undecided,
}

/// One key's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyReport<K> {
    /// The key.
    pub key: K,
    /// How many of its ops were checked (unanswered reads excluded).
    pub ops: usize,
    /// Search steps spent.
    pub steps: u64,
    /// The verdict.
    pub verdict: KeyVerdict,
}

/// The whole history's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key is linearizable.
    Linearizable,
    /// At least one key is not (whatever the others are).
    NotLinearizable,
    /// No key failed, but at least one ran out of budget.
    Undecided,
}

/// Per-key results, in key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report<K> {
    /// One entry per key.
    pub keys: Vec<KeyReport<K>>,
}

impl<K> Report<K> {
    /// The overall verdict.
    pub fn verdict(&self) -> Verdict {
        let mut undecided = false;
        for k in &self.keys {
            match k.verdict {
                KeyVerdict::NotLinearizable(_) => return Verdict::NotLinearizable,
                KeyVerdict::Undecided => undecided = true,
                KeyVerdict::Linearizable { .. } => {}
            }
        }
        if undecided {
            Verdict::Undecided
        } else {
            Verdict::Linearizable
        }
    }

    /// The first violation, with its key.
    pub fn violation(&self) -> Option<(&K, &Violation)> {
        self.keys.iter().find_map(|k| match &k.verdict {
            KeyVerdict::NotLinearizable(v) => Some((&k.key, v)),
            _ => None,
        })
    }

    /// Search steps over all keys.
    pub fn steps(&self) -> u64 {
        self.keys.iter().map(|k| k.steps).sum()
    }
}

/// Checks `history` key by key. Errors only on a malformed history.
pub fn check<K, V>(history: &[Op<K, V>], opts: CheckOptions) -> Result<Report<K>, HistoryError>
where
    K: Ord + Clone + Debug,
    V: Eq + Hash + Clone + Debug,
{
    let mut by_key: BTreeMap<&K, Vec<usize>> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        if let Some(response) = op.response {
            if response < op.invoke {
                return Err(HistoryError::ResponseBeforeInvoke {
                    index,
                    invoke: op.invoke,
                    response,
                });
            }
        }
        let ignored = matches!(op.kind, OpKind::Read(_)) && op.response.is_none();
        if !ignored {
            by_key.entry(&op.key).or_default().push(index);
        }
    }
    let keys = by_key
        .into_iter()
        .map(|(key, ops)| {
            let (verdict, steps) = check_key(history, &ops, opts.max_steps_per_key);
            KeyReport {
                key: key.clone(),
                ops: ops.len(),
                steps,
                verdict,
            }
        })
        .collect();
    Ok(Report { keys })
}

/// Events of one key's history in a doubly linked list (index 0 is the
/// head sentinel), so linearized operations can be lifted out and put back
/// in O(1) (Lowe's "dancing links" variant of Wing & Gong).
struct Events {
    /// `(local op, is_call)` per event; index 0 unused.
    ev: Vec<(usize, bool)>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Per local op: its call and return event indices.
    call: Vec<usize>,
    ret: Vec<usize>,
}

const NIL: usize = usize::MAX;

impl Events {
    fn new<K, V>(history: &[Op<K, V>], ops: &[usize]) -> Events {
        // (time, is_return, local op): calls before returns at equal times,
        // so equal times overlap; unknown responses come after everything.
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * ops.len());
        for (local, &g) in ops.iter().enumerate() {
            let op = &history[g];
            order.push((op.invoke, false, local));
            order.push((op.response.unwrap_or(u64::MAX), true, local));
        }
        order.sort_unstable();
        let n = order.len();
        let mut ev = vec![(0, false); n + 1];
        let mut call = vec![0; ops.len()];
        let mut ret = vec![0; ops.len()];
        for (i, &(_, is_ret, local)) in order.iter().enumerate() {
            ev[i + 1] = (local, !is_ret);
            if is_ret {
                ret[local] = i + 1;
            } else {
                call[local] = i + 1;
            }
        }
        let next = (0..=n).map(|i| if i == n { NIL } else { i + 1 }).collect();
        let prev = (0..=n).map(|i| i.wrapping_sub(1)).collect();
        Events {
            ev,
            next,
            prev,
            call,
            ret,
        }
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        if n != NIL {
            self.prev[n] = e;
        }
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call[op]);
        self.unlink(self.ret[op]);
    }

    /// Undoes `lift` (relinking in reverse order restores the list).
    fn unlift(&mut self, op: usize) {
        self.relink(self.ret[op]);
        self.relink(self.call[op]);
    }
}

/// The set of linearized ops, as a hashable bitset.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// The register: `Some(state after)` if `op` is legal in `state`.
fn step<V: Eq + Clone>(state: &Option<V>, op: &OpKind<V>) -> Option<Option<V>> {
    match op {
        OpKind::Write(v) => Some(Some(v.clone())),
        OpKind::Read(r) => (r == state).then(|| state.clone()),
    }
}

fn check_key<K, V>(history: &[Op<K, V>], ops: &[usize], budget: u64) -> (KeyVerdict, u64)
where
    K: Debug,
    V: Eq + Hash + Clone + Debug,
{
    // A read of a value no write on this key carries cannot be explained
    // by any order: say so plainly instead of searching.
    let written: HashSet<&V> = ops
        .iter()
        .filter_map(|&g| match &history[g].kind {
            OpKind::Write(v) => Some(v),
            OpKind::Read(_) => None,
        })
        .collect();
    for &g in ops {
        if let OpKind::Read(Some(v)) = &history[g].kind {
            if !written.contains(v) {
                let op = &history[g];
                let reason = format!(
                    "key {:?}: op #{g} (client {}) read {v:?}, a value never written to this key",
                    op.key, op.client
                );
                return (
                    KeyVerdict::NotLinearizable(Violation {
                        reason,
                        longest: Vec::new(),
                        blocked: g,
                    }),
                    0,
                );
            }
        }
    }

    let mut events = Events::new(history, ops);
    let mut state: Option<V> = None;
    let mut done = Bits::new(ops.len());
    let mut seen: HashSet<(Bits, Option<V>)> = HashSet::new();
    let mut stack: Vec<(usize, Option<V>)> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut blocked = 0usize;
    let mut steps = 0u64;
    let mut e = events.next[0];
    while events.next[0] != NIL {
        if e == NIL {
            // Cannot happen: the last event is a return, which either
            // backtracks or was lifted with its op.
            break;
        }
        let (op, is_call) = events.ev[e];
        if is_call {
            if steps >= budget {
                return (KeyVerdict::Undecided, steps);
            }
            steps += 1;
            if let Some(after) = step(&state, &history[ops[op]].kind) {
                done.set(op);
                if seen.insert((done.clone(), after.clone())) {
                    stack.push((op, std::mem::replace(&mut state, after)));
                    events.lift(op);
                    e = events.next[0];
                    continue;
                }
                done.clear(op);
            }
            e = events.next[e];
        } else {
            // `op` responded but cannot be placed with the current prefix.
            if stack.len() >= longest.len() {
                longest = stack.iter().map(|&(o, _)| ops[o]).collect();
                blocked = ops[op];
            }
            let Some((last, before)) = stack.pop() else {
                let b = &history[blocked];
                let reason = format!(
                    "key {:?}: no sequential order explains the history; at most {} of {} ops \
                     can be ordered, then op #{blocked} (client {}, {:?}, invoked {}, answered {:?}) \
                     cannot be placed",
                    b.key,
                    longest.len(),
                    ops.len(),
                    b.client,
                    b.kind,
                    b.invoke,
                    b.response
                );
                return (
                    KeyVerdict::NotLinearizable(Violation {
                        reason,
                        longest,
                        blocked,
                    }),
                    steps,
                );
            };
            state = before;
            done.clear(last);
            events.unlift(last);
            e = events.next[events.call[last]];
        }
    }
    let order = stack.iter().map(|&(o, _)| ops[o]).collect();
    (KeyVerdict::Linearizable { order }, steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lift_and_unlift_restore_the_event_list() {
        let h: Vec<Op<u8, u8>> = vec![
            Op::write(0, 0, 1, 0, 10),
            Op::read(1, 0, Some(1), 5, 6),
            Op::write_unknown(2, 0, 2, 7),
        ];
        let mut ev = Events::new(&h, &[0, 1, 2]);
        let walk = |ev: &Events| {
            let mut v = Vec::new();
            let mut e = ev.next[0];
            while e != NIL {
                v.push(ev.ev[e]);
                e = ev.next[e];
            }
            v
        };
        let full = walk(&ev);
        assert_eq!(
            full,
            [
                (0, true),
                (1, true),
                (1, false),
                (2, true),
                (0, false),
                (2, false)
            ]
        );
        ev.lift(1);
        assert_eq!(walk(&ev), [(0, true), (2, true), (0, false), (2, false)]);
        ev.lift(0);
        ev.unlift(0);
        ev.unlift(1);
        assert_eq!(walk(&ev), full);
    }
}
