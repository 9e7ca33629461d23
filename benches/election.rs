//! Cost of the sans-IO election machine: one LOOKING notification through
//! the loop, one reply from a settled server (the path `zkfle bench notify`
//! exercises), a whole 5-server cold start in the simulator's scripted runs
//! (`zkfle::sim::testkit`: drivers on the simulated network), and
//! the vote tally (record every voter's vote, check the quorum) at N = 3..51.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use zkfle::config::QuorumVerifier;
use zkfle::election::tally::{TallyVote, VoteSet};
use zkfle::election::{Fle, FleConfig, Vote};
use zkfle::sim::testkit::{notif, Cluster};
use zkfle::wire::ServerState;

fn bench_election(c: &mut Criterion) {
    let q = QuorumVerifier::majority(1..=5);
    let mut looking = Fle::new(FleConfig::new(1, q.clone()));
    looking.start_election(Duration::ZERO, 0, 0);
    let n = notif(ServerState::Looking, 2, 0, 1, 0);
    c.bench_function("fle_looking_notification_5", |b| {
        b.iter(|| {
            let out = looking.on_notification(Duration::from_millis(1), 2, black_box(&n));
            black_box(out)
        })
    });

    let mut settled = Fle::new(FleConfig::new(1, q.clone()));
    settled.start_election(Duration::ZERO, 0, 0);
    for s in 2..=5 {
        settled.on_notification(Duration::ZERO, s, &notif(ServerState::Looking, 5, 0, 1, 0));
    }
    assert_eq!(settled.state(), ServerState::Following);
    let asker = notif(ServerState::Looking, 100, 0, 1, 0);
    c.bench_function("fle_settled_reply", |b| {
        b.iter(|| black_box(settled.on_notification(Duration::ZERO, 100, black_box(&asker))))
    });

    c.bench_function("sim_cold_start_5", |b| {
        b.iter(|| {
            let mut cl = Cluster::majority(5, true);
            cl.start_all();
            let ok = cl.run_until(Duration::from_secs(5), |c| c.all_up_decided());
            assert!(ok);
            black_box(cl.now())
        })
    });
}

/// One election round's tally at size N: each voter's LOOKING vote recorded,
/// then the quorum check for the agreed vote (what lookForLeader does on the
/// last notification of a round).
fn bench_tally(c: &mut Criterion) {
    let mut group = c.benchmark_group("tally");
    for n in [3i64, 5, 7, 9, 15, 25, 51] {
        let q = QuorumVerifier::majority(1..=n);
        let target = TallyVote::looking(Vote::new(n, 0x1_0000_0005, 1), 1);
        group.bench_function(format!("record_and_check_n{n}"), |b| {
            b.iter(|| {
                let mut set = VoteSet::new();
                for sid in 1..=n {
                    set.insert(sid, target);
                }
                black_box(set.has_quorum(black_box(&target), &q))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_election, bench_tally);
criterion_main!(benches);
