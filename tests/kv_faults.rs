//! Process-level faults on the replicated store (issue 14 item 7): real
//! `replicated_kv` processes (the example binary, built by the test if
//! needed), SIGKILL, SIGSTOP/SIGCONT, 3 and 5 nodes, while a client writes
//! continuously and one reader per node reads keys that were acknowledged
//! before each read began.
//!
//! * overlapping leader crashes with lagging followers (the "Why"):
//!   followers are paused while the leader and the rest acknowledge writes,
//!   the leader is killed, the laggards resume, the new leader is killed as
//!   soon as it is established, the first leader returns — then every node
//!   is killed at once and restarted;
//! * a paused old leader asked to read after the majority elected a new
//!   leader and wrote: it must not answer with the older value;
//! * the same with a partitioned old leader (network namespaces, in the
//!   style of `tests/zab_partition.rs`: the old leader keeps running and
//!   may believe it leads for up to `syncLimit` ticks while the majority
//!   elects and writes; it is read throughout). Needs root: skipped with a
//!   message without it, a failure when `CI` is set.
//!
//! Afterwards every acknowledged write is readable on every node (`LOCAL`)
//! and on the leader (`GET`), and no `GET` returned a value older than a
//! write acknowledged before it began. `KV_FAULTS_SOAK=N` repeats the
//! overlapping-crash sequence N times (a longer soak; default once). Each
//! test prints its counts
//! (acknowledged, outcome unknown, lost, reads, stale, refused). Ports
//! 13000..=13499 (13901..=13904 inside the namespaces); run under `flock /tmp/zkfle-net.lock`.

#[path = "common/embed.rs"]
mod embed;
#[path = "common/kv_netns.rs"]
mod kv_netns;
#[path = "common/kv_procs.rs"]
mod kv_procs;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use embed::eventually;
use kv_procs::*;
use parking_lot::Mutex;

const T: Duration = Duration::from_secs(60);

/// One cluster at a time on a 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

/// Rounds of the overlapping-crash sequence: 1, or `KV_FAULTS_SOAK` (a
/// longer soak, e.g. `KV_FAULTS_SOAK=50`).
fn soak_rounds() -> usize {
    std::env::var("KV_FAULTS_SOAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// Waits until `n` more writes were acknowledged after `since`.
fn acked_after(rec: &Record, since: Instant, n: usize, what: &str) {
    eventually(what, T, || (rec.acked_since(since) >= n).then_some(()));
}

/// Stops the workload, waits for a settled ensemble that applied the last
/// acknowledged write everywhere, checks every acknowledged write and the
/// reads; prints the counts and asserts nothing was lost or stale.
fn finish(name: &str, cluster: &Cluster, w: Workload) {
    let (lost, stale) = check(name, cluster, w);
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert!(stale.is_empty(), "stale reads: {stale:?}");
}

/// [`finish`] without the asserts: (lost writes, stale reads).
fn check(name: &str, cluster: &Cluster, w: Workload) -> (Vec<String>, Vec<String>) {
    let rec = w.stop();
    let leader = eventually("a settled leader at the end", T, || {
        cluster.settled_leader()
    });
    let acked: Vec<u64> = rec.acked.lock().iter().map(|a| a.0).collect();
    let last = *acked.last().expect("writes were acknowledged");
    for sid in 1..=cluster.n {
        eventually(&format!("sid {sid} applied k{last}"), T, || {
            let mut c = Conn::open(cluster.kv(sid), Duration::from_secs(5))?;
            (c.ask(&format!("LOCAL k{last}"))? == format!("VALUE v{last}")).then_some(())
        });
    }
    let lost = lost_writes(cluster, leader, &acked);
    let stale = rec.stale.lock().clone();
    eprintln!(
        "kv_faults {name}: {} acknowledged, {} outcome unknown, {} lost, {} reads answered, \
         {} stale, {} reads refused (REDIRECT/ERR/no answer)",
        acked.len(),
        rec.unknown.load(Ordering::SeqCst),
        lost.len(),
        rec.reads.load(Ordering::SeqCst),
        stale.len(),
        rec.refused.load(Ordering::SeqCst),
    );
    if !lost.is_empty() || !stale.is_empty() {
        eprintln!("{}", cluster.logs_tail());
    }
    (lost, stale)
}

/// The scenario with `lagging` followers paused: the leader
/// crashes while they lag, the next leader crashes as soon as it is
/// established, the first leader returns; then every node restarts.
fn overlapping_crashes(name: &str, n: i64, lagging: usize, base: u16) {
    let _serial = SERIAL.lock();
    let bin = example_bin();
    let mut c = Cluster::start(n, base, &bin);
    let a = eventually("a settled leader", T, || c.settled_leader());
    let w = Workload::start(c.kv_addrs());
    eventually("20 acknowledged writes", T, || {
        (w.rec.acked_count() >= 20).then_some(())
    });

    let mut leader = a;
    for round in 0..soak_rounds() {
        let a = leader;
        // Different followers lag in different soak rounds.
        let followers: Vec<i64> = (1..=n).filter(|&s| s != a).collect();
        let laggards: Vec<i64> = (0..lagging)
            .map(|k| followers[(round + k) % followers.len()])
            .collect();
        for &s in &laggards {
            c.pause(s);
        }
        let paused = Instant::now();
        acked_after(
            &w.rec,
            paused,
            30,
            "30 writes acknowledged without the laggards",
        );
        c.kill(a);
        for &s in &laggards {
            c.resume(s);
        }
        let b = eventually("a second leader", T, || c.any_leader().filter(|&s| s != a));
        // Overlap: the second leader dies as soon as a quorum (laggards
        // possibly among it) has acknowledged its NEWLEADER.
        c.kill(b);
        c.launch(a);
        let t = Instant::now();
        acked_after(&w.rec, t, 20, "writes acknowledged after the second crash");
        let third = eventually("a third leader", T, || c.any_leader());
        eprintln!(
            "{name}, round {round}: leaders sid {a} (killed), sid {b} (killed at once), sid {third}; laggards {laggards:?}"
        );
        c.launch(b);
        leader = eventually("a settled leader", T, || c.settled_leader());
    }

    // Every node restarted at once, with writes in flight.
    let t = Instant::now();
    acked_after(&w.rec, t, 20, "writes with every node back");
    for s in 1..=n {
        c.kill(s);
    }
    for s in 1..=n {
        c.launch(s);
    }
    let t = Instant::now();
    acked_after(&w.rec, t, 20, "writes after the full restart");
    finish(name, &c, w);
}

#[test]
fn overlapping_leader_crashes_with_a_lagging_follower_lose_nothing_3_nodes() {
    overlapping_crashes("3 nodes, overlapping crashes", 3, 1, 13000);
}

#[test]
fn overlapping_leader_crashes_with_lagging_followers_lose_nothing_5_nodes() {
    overlapping_crashes("5 nodes, overlapping crashes", 5, 2, 13100);
}

/// A paused (SIGSTOP) old leader: the others elect a leader and write on;
/// `GET`s of those writes are queued at the old leader, which then
/// resumes. It must not answer them from its old state.
///
/// With `inject`, the nodes run with the stale-read bug injected
/// (`GET` without the read barrier): then the checks must find stale reads.
fn paused_leader_reads(name: &str, n: i64, base: u16, inject: bool) {
    let _serial = SERIAL.lock();
    let bin = example_bin();
    let env = if inject {
        vec![(
            "REPLICATED_KV_INJECT".to_string(),
            "get-without-barrier".to_string(),
        )]
    } else {
        Vec::new()
    };
    let mut c = Cluster::start_with_env(n, base, &bin, env);
    let a = eventually("a settled leader", T, || c.settled_leader());
    let w = Workload::start(c.kv_addrs());
    eventually("20 acknowledged writes", T, || {
        (w.rec.acked_count() >= 20).then_some(())
    });
    // A connection to the old leader opened while it runs.
    let mut probe = Conn::open(c.kv(a), Duration::from_secs(30)).expect("connect");
    assert!(probe.ask("LOCAL k0").is_some());

    c.pause(a);
    let paused = Instant::now();
    let b = eventually("a new leader", T, || c.any_leader().filter(|&s| s != a));
    acked_after(&w.rec, paused, 30, "30 writes acknowledged by the majority");
    let (j, acked_at) = *w.rec.acked.lock().last().unwrap();
    assert!(acked_at > paused);
    // Queued in the paused process's socket: read when it resumes.
    let keys: Vec<String> = (0..10).map(|d| format!("GET k{}", j - d)).collect();
    c.resume(a);
    let answers = probe.ask_all(&keys).expect("the old leader answers");
    let mut stale = Vec::new();
    for (q, a) in keys.iter().zip(&answers) {
        let want = format!("VALUE v{}", &q["GET k".len()..]);
        let ok = *a == want || a.starts_with("REDIRECT ") || a.starts_with("ERR ");
        if !ok {
            stale.push(format!("{q} -> {a}"));
        }
    }
    eprintln!(
        "{name}: old leader sid {a} paused, new leader sid {b}; its answers: {:?}",
        answers.iter().take(2).collect::<Vec<_>>()
    );
    if inject {
        assert!(
            !stale.is_empty(),
            "GET without the barrier on the resumed old leader went unnoticed: {answers:?}"
        );
    } else {
        assert!(
            stale.is_empty(),
            "the old leader answered stale reads: {stale:?}"
        );
    }
    eventually("the old leader follows again", T, || {
        (c.state(a).as_deref() == Some("follower")).then_some(())
    });
    let t = Instant::now();
    acked_after(&w.rec, t, 10, "writes after the old leader rejoined");
    if inject {
        let (lost, stale) = check(name, &c, w);
        assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
        assert!(
            !stale.is_empty(),
            "the workload's reads caught no stale read"
        );
    } else {
        finish(name, &c, w);
    }
}

#[test]
fn a_paused_old_leader_never_answers_a_read_with_a_stale_value_3_nodes() {
    paused_leader_reads("3 nodes, paused old leader", 3, 13200, false);
}

#[test]
fn a_paused_old_leader_never_answers_a_read_with_a_stale_value_5_nodes() {
    paused_leader_reads("5 nodes, paused old leader", 5, 13300, false);
}

/// The checks are trusted because they catch the bug: with `GET` answering
/// from the local map without the read barrier, the resumed old leader's
/// answers and the workload's reads are flagged stale.
#[test]
fn the_stale_read_check_catches_a_get_without_the_read_barrier() {
    paused_leader_reads(
        "3 nodes, paused old leader, GET without barrier (injected)",
        3,
        13400,
        true,
    );
}

/// A partitioned old leader: cut off from the others (no FIN) but still
/// reachable by clients; the per-node readers keep reading from it while
/// the majority elects a new leader and writes, then a probe reads the
/// newest writes from it. It must answer them with their values or refuse.
fn partitioned_leader_reads(name: &str, n: i64) {
    let _serial = SERIAL.lock();
    let bin = example_bin();
    let Some(lab) = kv_netns::lab(n) else {
        return;
    };
    let mut c = lab.cluster(&bin);
    let a = eventually("a settled leader", T, || c.settled_leader());
    let w = Workload::start(c.kv_addrs());
    eventually("20 acknowledged writes", T, || {
        (w.rec.acked_count() >= 20).then_some(())
    });
    let mut probe = Conn::open(c.kv(a), Duration::from_secs(30)).expect("connect");

    lab.isolate(a);
    let cut = Instant::now();
    let b = eventually("a new leader", T, || {
        (1..=n)
            .filter(|&s| s != a)
            .find(|&s| c.state(s).as_deref() == Some("leader"))
    });
    acked_after(&w.rec, cut, 30, "30 writes acknowledged by the majority");
    let (j, _) = *w.rec.acked.lock().last().unwrap();
    let keys: Vec<String> = (0..10).map(|d| format!("GET k{}", j - d)).collect();
    let answers = probe.ask_all(&keys).expect("the old leader answers");
    let stale: Vec<String> = keys
        .iter()
        .zip(&answers)
        .filter(|(q, a)| {
            let want = format!("VALUE v{}", &q["GET k".len()..]);
            !(**a == want || a.starts_with("REDIRECT ") || a.starts_with("ERR "))
        })
        .map(|(q, a)| format!("{q} -> {a}"))
        .collect();
    eprintln!(
        "{name}: old leader sid {a} partitioned, new leader sid {b}; its answers: {:?}",
        answers.iter().take(2).collect::<Vec<_>>()
    );
    assert!(
        stale.is_empty(),
        "the partitioned old leader answered stale reads: {stale:?}"
    );
    lab.heal(a);
    eventually("the old leader follows again", T, || {
        (c.state(a).as_deref() == Some("follower")).then_some(())
    });
    let t = Instant::now();
    acked_after(&w.rec, t, 10, "writes after the partition healed");
    finish(name, &c, w);
    // The processes stop before the lab removes their namespaces.
    for s in 1..=n {
        c.kill(s);
    }
}

#[test]
fn a_partitioned_old_leader_never_answers_a_read_with_a_stale_value_3_nodes() {
    partitioned_leader_reads("3 nodes, partitioned old leader", 3);
}

#[test]
fn a_partitioned_old_leader_never_answers_a_read_with_a_stale_value_5_nodes() {
    partitioned_leader_reads("5 nodes, partitioned old leader", 5);
}
